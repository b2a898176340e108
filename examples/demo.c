/* examples/demo.c - acem on an embedded multi-task problem; no files needed.

   Build and run:  make demo   (runs `build/acem demo`, the same code), or
                   cc -O2 examples/demo.c -lm && ./a.out

   The problem: one shared linear model W0 (32 x 64, stored (out, in) row-major)
   and 5 linear-regression tasks y = (W0 + D_t) x + noise. Each task's inputs
   live mostly in a 10-dimensional subspace (4 directions shared by all tasks,
   6 of its own) plus small isotropic noise; two tasks have twice the input
   scale. Each expert is W0 after 30 full-batch gradient steps on its task's
   squared loss, with one step size for all: the tasks with larger inputs move
   further, so the experts' deltas differ in size. The experts are merged with
   every method acem offers (default options), and with ACE's gate forced
   closed and its refinement skipped, and each merged model is tested on fresh
   samples of every task.

   Everything is generated from a fixed-seed PRNG: the output is the same on
   every run of a given build.

   Used as a library (the `acem demo` command): define ACEM_DEMO_NO_MAIN, and
   ACEM_DEMO_NO_IMPLEMENTATION if another file of the program already holds
   the acem implementation, then call acem_demo(stdout). */
#ifndef ACEM_DEMO_NO_IMPLEMENTATION
#define ACEM_IMPLEMENTATION
#endif
#include "../acem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int acem_demo(FILE *out);

enum {
    DEMO_OUT = 32,        /* rows of W (outputs)                              */
    DEMO_IN = 64,         /* columns of W (inputs)                            */
    DEMO_T = 5,           /* tasks = experts                                  */
    DEMO_SHARED = 4,      /* input directions every task uses                 */
    DEMO_OWN = 6,         /* input directions private to one task             */
    DEMO_SUB = DEMO_SHARED + DEMO_OWN,
    DEMO_NTRAIN = 128,    /* training samples per task                        */
    DEMO_NTEST = 1000,    /* fresh test samples per task                      */
    DEMO_STEPS = 30,      /* full-batch gradient steps per expert             */
    DEMO_MODELS = 1 + DEMO_T + ACEM_METHOD_COUNT
};

static const double demo_scale[DEMO_T] = {1.0, 1.0, 1.0, 2.0, 2.0};
#define DEMO_NOISE_X 0.05   /* isotropic input noise (std per coordinate)   */
#define DEMO_NOISE_Y 0.10   /* label noise (std per output)                 */
#define DEMO_LR 0.02        /* one gradient step size for every task        */
#define DEMO_SEED 20260302u

/* ---- a small deterministic PRNG (splitmix64) and Gaussian samples ---------- */
typedef struct demo_rng { uint64_t s; } demo_rng;

static uint64_t demo_next(demo_rng *r) {
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static double demo_uniform(demo_rng *r) { /* in (0, 1) */
    return ((double)(demo_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double demo_gauss(demo_rng *r) {   /* Box-Muller, one value per call */
    double u1 = demo_uniform(r), u2 = demo_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- the problem ---------------------------------------------------------- */
typedef struct demo_problem {
    double basis[DEMO_IN * DEMO_IN];        /* orthonormal rows: input directions */
    double w0[DEMO_OUT * DEMO_IN];          /* base model                         */
    double target[DEMO_T][DEMO_OUT * DEMO_IN];
} demo_problem;

/* Input direction j (a row of basis) used by task t as its local direction d. */
static size_t demo_dir(size_t t, size_t d) {
    return d < DEMO_SHARED ? d : DEMO_SHARED + t * DEMO_OWN + (d - DEMO_SHARED);
}

/* n samples of task t: X (n x in), Y (n x out), row-major. */
static void demo_sample(const demo_problem *P, size_t t, size_t n, demo_rng *r,
                        double *X, double *Y) {
    size_t s, d, i, o;
    for (s = 0; s < n; ++s) {
        double *x = X + s * DEMO_IN, *y = Y + s * DEMO_OUT;
        for (i = 0; i < DEMO_IN; ++i) x[i] = DEMO_NOISE_X * demo_gauss(r);
        for (d = 0; d < DEMO_SUB; ++d) {
            const double *b = P->basis + demo_dir(t, d) * DEMO_IN;
            double z = demo_scale[t] * demo_gauss(r);
            for (i = 0; i < DEMO_IN; ++i) x[i] += z * b[i];
        }
        for (o = 0; o < DEMO_OUT; ++o) {
            const double *w = P->target[t] + o * DEMO_IN;
            double acc = 0.0;
            for (i = 0; i < DEMO_IN; ++i) acc += w[i] * x[i];
            y[o] = acc + DEMO_NOISE_Y * demo_gauss(r);
        }
    }
}

static void demo_make_problem(demo_problem *P, demo_rng *r) {
    size_t i, j, k, t;
    /* random orthonormal basis of R^in (modified Gram-Schmidt) */
    for (i = 0; i < DEMO_IN * DEMO_IN; ++i) P->basis[i] = demo_gauss(r);
    for (i = 0; i < DEMO_IN; ++i) {
        double *v = P->basis + i * DEMO_IN, nrm = 0.0;
        for (j = 0; j < i; ++j) {
            const double *u = P->basis + j * DEMO_IN;
            double dot = 0.0;
            for (k = 0; k < DEMO_IN; ++k) dot += u[k] * v[k];
            for (k = 0; k < DEMO_IN; ++k) v[k] -= dot * u[k];
        }
        for (k = 0; k < DEMO_IN; ++k) nrm += v[k] * v[k];
        nrm = 1.0 / sqrt(nrm);
        for (k = 0; k < DEMO_IN; ++k) v[k] *= nrm;
    }
    /* base model and per-task targets W0 + D_t, entries of D_t ~ N(0, 1/in) */
    for (i = 0; i < DEMO_OUT * DEMO_IN; ++i) P->w0[i] = demo_gauss(r) / 8.0;
    for (t = 0; t < DEMO_T; ++t)
        for (i = 0; i < DEMO_OUT * DEMO_IN; ++i)
            P->target[t][i] = P->w0[i] + demo_gauss(r) / 8.0;
}

/* Full-batch gradient descent on 1/(2n) sum ||W x - y||^2, starting from W0. */
static void demo_finetune(const demo_problem *P, const double *X, const double *Y,
                          size_t n, double *W, double *grad) {
    size_t step, s, o, i;
    memcpy(W, P->w0, sizeof P->w0);
    for (step = 0; step < DEMO_STEPS; ++step) {
        memset(grad, 0, sizeof(double) * DEMO_OUT * DEMO_IN);
        for (s = 0; s < n; ++s) {
            const double *x = X + s * DEMO_IN, *y = Y + s * DEMO_OUT;
            for (o = 0; o < DEMO_OUT; ++o) {
                const double *w = W + o * DEMO_IN;
                double *g = grad + o * DEMO_IN, res = -y[o];
                for (i = 0; i < DEMO_IN; ++i) res += w[i] * x[i];
                for (i = 0; i < DEMO_IN; ++i) g[i] += res * x[i];
            }
        }
        for (i = 0; i < DEMO_OUT * DEMO_IN; ++i) W[i] -= DEMO_LR * grad[i] / (double)n;
    }
}

/* A test set kept as its moments: sum x x^T, sum y x^T, sum ||y||^2 over n
   samples, so that testing a model costs out*in*in, not n*out*in. */
typedef struct demo_testset {
    double xx[DEMO_IN * DEMO_IN], yx[DEMO_OUT * DEMO_IN], yy;
    size_t n;
} demo_testset;

static void demo_moments(demo_testset *m, const double *X, const double *Y, size_t n) {
    size_t s, i, j, o;
    memset(m, 0, sizeof *m);
    m->n = n;
    for (s = 0; s < n; ++s) {
        const double *x = X + s * DEMO_IN, *y = Y + s * DEMO_OUT;
        for (i = 0; i < DEMO_IN; ++i)
            for (j = 0; j < DEMO_IN; ++j) m->xx[i * DEMO_IN + j] += x[i] * x[j];
        for (o = 0; o < DEMO_OUT; ++o) {
            for (i = 0; i < DEMO_IN; ++i) m->yx[o * DEMO_IN + i] += y[o] * x[i];
            m->yy += y[o] * y[o];
        }
    }
}

/* Mean squared error per output of the float model W on the test set:
   (1/(n out)) sum_samples ||W x - y||^2, expanded in the moments. */
static double demo_loss(const float *W, const demo_testset *m) {
    size_t o, i, j;
    double total = m->yy;
    for (o = 0; o < DEMO_OUT; ++o) {
        const float *w = W + o * DEMO_IN;
        for (i = 0; i < DEMO_IN; ++i) {
            double acc = 0.0;
            for (j = 0; j < DEMO_IN; ++j) acc += m->xx[i * DEMO_IN + j] * (double)w[j];
            total += (double)w[i] * (acc - 2.0 * m->yx[o * DEMO_IN + i]);
        }
    }
    return total / ((double)m->n * DEMO_OUT);
}

/* ---- the demo ------------------------------------------------------------- */
typedef struct demo_state {
    demo_problem P;
    float base[DEMO_OUT * DEMO_IN];
    float expert[DEMO_T][DEMO_OUT * DEMO_IN];
    float merged[ACEM_METHOD_COUNT][DEMO_OUT * DEMO_IN];
    double loss[DEMO_MODELS][DEMO_T];       /* row: base, experts, methods  */
    float variant[2][DEMO_OUT * DEMO_IN];   /* ACE with NO_GATE, NO_REFINE   */
    demo_testset test;
    double variant_loss[2][DEMO_T];
    size_t bytes[ACEM_METHOD_COUNT];
    acem_layer_info info[ACEM_METHOD_COUNT];
} demo_state;

static double demo_mean(const double *v) {
    double s = 0.0;
    size_t t;
    for (t = 0; t < DEMO_T; ++t) s += v[t];
    return s / DEMO_T;
}

static void demo_row(FILE *out, const char *label, const double *loss, int own) {
    size_t t;
    fprintf(out, "%-24s", label);
    for (t = 0; t < DEMO_T; ++t)
        fprintf(out, " %8.4f%c", loss[t], (int)t == own ? '*' : ' ');
    fprintf(out, " %8.4f", demo_mean(loss));
}

/* "12.3% below" / "4.5% above" */
static void demo_compare(char *buf, size_t cap, double v, double ref) {
    double pct = 100.0 * (v - ref) / ref;
    snprintf(buf, cap, "%.1f%% %s", fabs(pct), pct <= 0.0 ? "below" : "above");
}

/* Merge the experts with opt, in an arena of exactly acem_layer_bytes() bytes. */
static int demo_merge(FILE *out, const acem_options *opt, const float *base,
                      const float *const *experts, float *merged, size_t *bytes,
                      acem_layer_info *info) {
    acem_rule rule = acem_tensor_rule(opt, "layer.weight", 2);
    acem_error err;
    acem_result r;
    void *arena;
    r = acem_layer_bytes(opt, rule, DEMO_OUT, DEMO_IN, DEMO_T, bytes);
    if (r != ACEM_OK) {
        fprintf(out, "demo: acem_layer_bytes(%s): %s\n", acem_method_name(opt->method),
                acem_result_string(r));
        return 0;
    }
    arena = malloc(*bytes ? *bytes : 1);
    if (!arena) {
        fprintf(out, "demo: out of memory\n");
        return 0;
    }
    r = acem_merge(opt, rule, "layer.weight", DEMO_OUT, DEMO_IN, DEMO_T, base, experts,
                   merged, arena, *bytes, info, &err);
    free(arena);
    if (r != ACEM_OK) {
        fprintf(out, "demo: acem_merge(%s): %s\n", acem_method_name(opt->method),
                err.message);
        return 0;
    }
    return 1;
}

int acem_demo(FILE *out) {
    demo_state *S = NULL;
    double *X = NULL, *Y = NULL, *Wd = NULL, *grad = NULL;
    demo_rng rng;
    acem_options opt, resolved;
    const float *experts[DEMO_T];
    size_t t, u, i, m, best = 0, rank = 1;
    double own[DEMO_T], mean_ace, mean_ta, mean_base, mean_best;
    char cmp_ta[48], cmp_base[48];
    const acem_layer_info *ai;
    int rc = 1;

    S = (demo_state *)calloc(1, sizeof *S);
    X = (double *)malloc(sizeof(double) * DEMO_NTEST * DEMO_IN);
    Y = (double *)malloc(sizeof(double) * DEMO_NTEST * DEMO_OUT);
    Wd = (double *)malloc(sizeof(double) * DEMO_OUT * DEMO_IN);
    grad = (double *)malloc(sizeof(double) * DEMO_OUT * DEMO_IN);
    if (!S || !X || !Y || !Wd || !grad) {
        fprintf(out, "demo: out of memory\n");
        goto done;
    }

    /* 1. the problem, the base model and one expert per task */
    rng.s = DEMO_SEED;
    demo_make_problem(&S->P, &rng);
    for (i = 0; i < DEMO_OUT * DEMO_IN; ++i) S->base[i] = (float)S->P.w0[i];
    for (t = 0; t < DEMO_T; ++t) {
        demo_sample(&S->P, t, DEMO_NTRAIN, &rng, X, Y);
        demo_finetune(&S->P, X, Y, DEMO_NTRAIN, Wd, grad);
        for (i = 0; i < DEMO_OUT * DEMO_IN; ++i) S->expert[t][i] = (float)Wd[i];
        experts[t] = S->expert[t];
    }

    /* 2. merge with every method, default options; then ACE with its gate
          forced closed and with the refinement skipped, for comparison */
    for (m = 0; m < ACEM_METHOD_COUNT; ++m) {
        memset(&opt, 0, sizeof opt);
        opt.method = (acem_method)m;
        if (!demo_merge(out, &opt, S->base, experts, S->merged[m], &S->bytes[m],
                        &S->info[m]))
            goto done;
    }
    for (u = 0; u < 2; ++u) {
        acem_layer_info vinfo;
        size_t vbytes;
        memset(&opt, 0, sizeof opt);
        opt.flags = u == 0 ? ACEM_FLAG_NO_GATE : ACEM_FLAG_NO_REFINE;
        if (!demo_merge(out, &opt, S->base, experts, S->variant[u], &vbytes, &vinfo))
            goto done;
    }

    /* 3. test every model on fresh samples of every task */
    for (t = 0; t < DEMO_T; ++t) {
        demo_sample(&S->P, t, DEMO_NTEST, &rng, X, Y);
        demo_moments(&S->test, X, Y, DEMO_NTEST);
        S->loss[0][t] = demo_loss(S->base, &S->test);
        for (u = 0; u < DEMO_T; ++u)
            S->loss[1 + u][t] = demo_loss(S->expert[u], &S->test);
        for (m = 0; m < ACEM_METHOD_COUNT; ++m)
            S->loss[1 + DEMO_T + m][t] = demo_loss(S->merged[m], &S->test);
        for (u = 0; u < 2; ++u)
            S->variant_loss[u][t] = demo_loss(S->variant[u], &S->test);
    }

    /* 4. report */
    fprintf(out, "acem %s demo: merge %d linear-regression experts of one %d x %d "
            "weight, data-free\n\n", ACEM_VERSION_STRING, DEMO_T, DEMO_OUT, DEMO_IN);
    fprintf(out, "Task t: y = (W0 + D_t) x + noise(%.2f); x spans %d directions (%d "
            "shared by all tasks,\n%d its own) plus noise(%.2f); input scale",
            DEMO_NOISE_Y, DEMO_SUB, DEMO_SHARED, DEMO_OWN, DEMO_NOISE_X);
    for (t = 0; t < DEMO_T; ++t) fprintf(out, "%s%.0f", t ? "," : " ", demo_scale[t]);
    fprintf(out, ". Expert t = W0 after %d\nfull-batch gradient steps on %d samples "
            "of task t. Test loss = mean squared error\nper output on %d fresh samples "
            "per task (lower is better; noise floor %.4f).\n\n",
            DEMO_STEPS, DEMO_NTRAIN, DEMO_NTEST, DEMO_NOISE_Y * DEMO_NOISE_Y);

    fprintf(out, "%-24s", "model");
    for (t = 0; t < DEMO_T; ++t) fprintf(out, "   task %d ", (int)t + 1);
    fprintf(out, "     mean  arena bytes\n");
    demo_row(out, "base W0", S->loss[0], -1);
    fprintf(out, "\n");
    for (u = 0; u < DEMO_T; ++u) {
        char label[32];
        snprintf(label, sizeof label, "expert %d", (int)u + 1);
        demo_row(out, label, S->loss[1 + u], (int)u);
        fprintf(out, "\n");
    }
    for (t = 0; t < DEMO_T; ++t) own[t] = S->loss[1 + t][t];
    demo_row(out, "experts, own task", own, -1);
    fprintf(out, "\n");
    for (m = 0; m < ACEM_METHOD_COUNT; ++m) {
        char label[32];
        snprintf(label, sizeof label, "merged: %s", acem_method_name((acem_method)m));
        demo_row(out, label, S->loss[1 + DEMO_T + m], -1);
        fprintf(out, " %12lu\n", (unsigned long)S->bytes[m]);
    }
    fprintf(out, "(* = an expert on its own task)\n\n");

    ai = &S->info[ACEM_ACE];
    memset(&opt, 0, sizeof opt);
    if (acem_options_resolve(&opt, &resolved, NULL) != ACEM_OK) goto done;
    fprintf(out, "ACE layer info: gamma = %.4f (%s tau = %.2f), gate %s, refined %s "
            "(k = %lu,\n  %lu directions added, sigma_iso = %.4f), fallback %s\n",
            ai->gamma, ai->gamma > resolved.tau ? ">" : "<=", resolved.tau,
            ai->gated ? "open" : "closed", ai->refined ? "yes" : "no",
            (unsigned long)ai->k, (unsigned long)ai->directions, ai->sigma_iso,
            ai->fallback ? "yes" : "no");
    fprintf(out, "ACE with ACEM_FLAG_NO_GATE: mean loss %.4f; with ACEM_FLAG_NO_REFINE "
            "(gate, no refinement): %.4f\n", demo_mean(S->variant_loss[0]),
            demo_mean(S->variant_loss[1]));
    fprintf(out, "ACE arena: %lu bytes for this %d x %d tensor (acem_layer_bytes; "
            "the same for any number of experts)\n",
            (unsigned long)S->bytes[ACEM_ACE], DEMO_OUT, DEMO_IN);

    /* 5. one line that says what the table shows */
    for (m = 1; m < ACEM_METHOD_COUNT; ++m)
        if (demo_mean(S->loss[1 + DEMO_T + m]) < demo_mean(S->loss[1 + DEMO_T + best]))
            best = m;
    mean_best = demo_mean(S->loss[1 + DEMO_T + best]);
    mean_ace = demo_mean(S->loss[1 + DEMO_T + ACEM_ACE]);
    mean_ta = demo_mean(S->loss[1 + DEMO_T + ACEM_TASK_ARITHMETIC]);
    mean_base = demo_mean(S->loss[0]);
    for (m = 0; m < ACEM_METHOD_COUNT; ++m)
        if (demo_mean(S->loss[1 + DEMO_T + m]) < mean_ace) ++rank;
    demo_compare(cmp_ta, sizeof cmp_ta, mean_best, mean_ta);
    demo_compare(cmp_base, sizeof cmp_base, mean_best, mean_base);
    fprintf(out, "\nResult: best mean loss %s %.4f (", acem_method_name((acem_method)best),
            mean_best);
    if (best != ACEM_TASK_ARITHMETIC)
        fprintf(out, "%s task-arithmetic %.4f, ", cmp_ta, mean_ta);
    fprintf(out, "%s base %.4f)", cmp_base, mean_base);
    if (best != ACEM_ACE) {
        demo_compare(cmp_ta, sizeof cmp_ta, mean_ace, mean_best);
        fprintf(out, "; ace %.4f, %s the best (rank %lu of %d)", mean_ace, cmp_ta,
                (unsigned long)rank, (int)ACEM_METHOD_COUNT);
    }
    fprintf(out, "; experts on own tasks %.4f.\n", demo_mean(own));
    rc = 0;

done:
    free(grad);
    free(Wd);
    free(Y);
    free(X);
    free(S);
    return rc;
}

#ifndef ACEM_DEMO_NO_MAIN
int main(void) { return acem_demo(stdout); }
#endif
