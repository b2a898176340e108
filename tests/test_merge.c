/* tests/test_merge.c - differential tests of every acem merge rule against the
   plain float64 reference in tests/ref.c, plus the spec's reference vectors,
   tensor rules, arena exactness and bounds, determinism, error reporting.
   Build: cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -o /tmp/test_merge \
              tests/test_merge.c tests/ref.c -lm */
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "testing.h"
#include "ref.h"

#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXT 8
#define TOL_MATRIX 1e-4 /* f32 library vs f64 reference, matrix methods     */
#define TOL_ELEM 1e-5   /* element-wise methods: sums of <= 8 f32 numbers    */
/* A case whose f64 reference moves by more than this (relative) when the
   inputs are perturbed at f32 rounding level (1e-7 relative) is not well posed
   in single precision: it is reported and skipped, never compared. */
#define SENS_MAX 5e-6

/* ---- small deterministic PRNG (splitmix64) -------------------------------- */
static uint64_t g_rng = 1;
static void rnd_seed(uint64_t s) { g_rng = s * 0x2545F4914F6CDD1Dull + 12345u; }
static uint64_t rnd_u64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rnd_unif(void) { return (double)(rnd_u64() >> 11) * 0x1.0p-53; }
static size_t rnd_below(size_t n) { return (size_t)(rnd_u64() % n); }
static double rnd_gauss(void) {
    double u1 = rnd_unif(), u2 = rnd_unif();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- test cases ----------------------------------------------------------- */
typedef struct tcase {
    size_t R, C, T;
    float *f[MAXT];  /* deltas, f32 (what the library gets)                   */
    double *d[MAXT]; /* the same values in f64 (what the reference gets)      */
} tcase;

static void tc_init(tcase *c, size_t R, size_t C, size_t T) {
    size_t t;
    memset(c, 0, sizeof *c);
    c->R = R; c->C = C; c->T = T;
    for (t = 0; t < T; ++t) {
        c->f[t] = (float *)calloc(R * C, sizeof(float));
        c->d[t] = (double *)calloc(R * C, sizeof(double));
        if (!c->f[t] || !c->d[t]) { printf("out of memory\n"); exit(2); }
    }
}
static void tc_free(tcase *c) {
    size_t t;
    for (t = 0; t < c->T; ++t) { free(c->f[t]); free(c->d[t]); }
    memset(c, 0, sizeof *c);
}
static void tc_sync(tcase *c) {
    size_t t, i;
    for (t = 0; t < c->T; ++t)
        for (i = 0; i < c->R * c->C; ++i) c->d[t][i] = (double)c->f[t][i];
}

enum { K_GAUSS, K_LOWRANK, K_ZEROS, K_ZERO, K_TIES, K_GRID };
/* fill x (R x C) with a matrix of the given kind, entries of size ~scale */
static void gen_matrix(float *x, size_t R, size_t C, int kind, double scale) {
    size_t i, j, l;
    switch (kind) {
    case K_GAUSS:
        for (i = 0; i < R * C; ++i) x[i] = (float)(scale * rnd_gauss());
        break;
    case K_LOWRANK: { /* rank 1..3 product, LoRA-like */
        size_t r = 1 + rnd_below(3);
        double P[64 * 3], Q[3 * 64];
        if (R > 64 || C > 64) { printf("gen_matrix: too large\n"); exit(2); }
        for (i = 0; i < R * r; ++i) P[i] = rnd_gauss();
        for (i = 0; i < r * C; ++i) Q[i] = rnd_gauss();
        for (i = 0; i < R; ++i)
            for (j = 0; j < C; ++j) {
                double s = 0;
                for (l = 0; l < r; ++l) s += P[i * r + l] * Q[l * C + j];
                x[i * C + j] = (float)(scale * s / sqrt((double)r));
            }
        break;
    }
    case K_ZEROS: /* gaussian with ~35% exact zeros */
        for (i = 0; i < R * C; ++i) x[i] = rnd_unif() < 0.35 ? 0.0f : (float)(scale * rnd_gauss());
        break;
    case K_ZERO:
        for (i = 0; i < R * C; ++i) x[i] = 0.0f;
        break;
    case K_TIES: { /* few distinct dyadic magnitudes, random signs: many exact
                      ties, and sums of a few of them are exact in f32 too (so
                      the elected sign is not a rounding artefact) */
        double q = pow(2.0, floor(log2(scale)));
        for (i = 0; i < R * C; ++i) {
            double m = 0.5 * (double)(1 + rnd_below(4)) * q;
            x[i] = (float)(rnd_unif() < 0.5 ? -m : m);
        }
        break;
    }
    case K_GRID: /* gaussian quantised to multiples of 2^-12 (exact sums) */
        for (i = 0; i < R * C; ++i) x[i] = (float)(floor(scale * rnd_gauss() * 4096.0 + 0.5) / 4096.0);
        break;
    }
}

/* ---- helpers -------------------------------------------------------------- */
static void *aligned_block(size_t n, void **raw) {
    uintptr_t p;
    *raw = malloc(n + 128);
    if (!*raw) { printf("out of memory\n"); exit(2); }
    p = ((uintptr_t)*raw + 63u) & ~(uintptr_t)63u;
    return (void *)p;
}

static const char *mname(int m) { return acem_method_name((acem_method)m); }

/* the test's reading of the documented defaults (independent of the library) */
static ref_opts to_ref(const acem_options *o) {
    ref_opts r = ref_defaults((int)o->method);
    if (o->eps != 0) r.eps = o->eps;
    if (o->tau != 0) r.tau = o->tau;
    if (o->k_frac != 0) r.k_frac = o->k_frac;
    if (o->lambda != 0) r.lambda = o->lambda;
    if (o->density != 0) r.density = o->density;
    if (o->drop != 0) r.drop = o->drop;
    r.seed = o->seed;
    r.flags = o->flags;
    return r;
}

/* library through acem_merge, exact arena from acem_layer_bytes */
static acem_result lib_merge(const acem_options *opt, acem_rule rule, const char *name,
                             size_t R, size_t C, size_t T, const float *base,
                             const float *const *experts, float *out, acem_layer_info *info,
                             acem_error *err) {
    size_t need = 0;
    void *raw, *arena;
    acem_result r = acem_layer_bytes(opt, rule, R, C, T, &need);
    if (r != ACEM_OK) {
        if (err) { err->code = r; snprintf(err->message, sizeof err->message, "acem_layer_bytes failed"); }
        return r;
    }
    arena = aligned_block(need, &raw);
    r = acem_merge(opt, rule, name, R, C, T, base, experts, out, arena, need, info, err);
    free(raw);
    return r;
}

/* library through init / passes x feed / finish on a caller arena */
static acem_result lib_layer(const acem_options *opt, acem_rule rule, const char *name,
                             size_t R, size_t C, size_t T, const float *feed_base,
                             const float *const *experts, const float *fin_base, float *out,
                             void *arena, size_t bytes, acem_layer_info *info, acem_error *err) {
    acem_layer L;
    int pass, np;
    size_t t;
    acem_result r = acem_layer_init(&L, opt, rule, name, R, C, T, arena, bytes, err);
    if (r != ACEM_OK) return r;
    np = acem_layer_passes(&L);
    for (pass = 0; pass < np; ++pass)
        for (t = 0; t < T; ++t) {
            r = acem_layer_feed(&L, experts[t], feed_base, err);
            if (r != ACEM_OK) return r;
        }
    return acem_layer_finish(&L, fin_base, out, info, err);
}

static double rel_ff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    size_t i;
    for (i = 0; i < n; ++i) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den < 1e-300) return sqrt(num);
    return sqrt(num / den);
}

static int rel_close(double a, double b, double rtol, double atol) {
    return fabs(a - b) <= rtol * fabs(b) + atol;
}

/* how much the f64 reference moves under 1e-7 relative input perturbations,
   or when the accumulators an f32 implementation must store are rounded to f32 */
static double ref_sensitivity(const ref_opts *o, const tcase *c, uint64_t stream,
                              const double *out0) {
    size_t n = c->R * c->C, t, i, trial;
    double worst = 0;
    double *buf = (double *)malloc((c->T * n + n) * sizeof(double));
    const double *P[MAXT];
    uint64_t save = g_rng;
    if (!buf) exit(2);
    g_rng = 0xC0FFEEull; /* keep the main stream untouched */
    for (trial = 0; trial < 2; ++trial) {
        double num = 0, den = 0;
        for (t = 0; t < c->T; ++t) {
            for (i = 0; i < n; ++i)
                buf[t * n + i] = c->d[t][i] * (1.0 + 1e-7 * (2.0 * rnd_unif() - 1.0));
            P[t] = buf + t * n;
        }
        if (ref_merge(o, c->R, c->C, c->T, P, stream, buf + c->T * n, NULL) != 0) { worst = 1e300; break; }
        for (i = 0; i < n; ++i) {
            double d = buf[c->T * n + i] - out0[i];
            num += d * d;
            den += out0[i] * out0[i];
        }
        num = den < 1e-300 ? sqrt(num) : sqrt(num / den);
        if (num > worst) worst = num;
    }
    if (worst < 1e300) { /* the algorithm's own f32 storage: how far it moves the result */
        double num = 0, den = 0;
        ref_f32_storage = 1;
        if (ref_merge(o, c->R, c->C, c->T, (const double *const *)c->d, stream, buf + c->T * n, NULL) != 0) worst = 1e300;
        ref_f32_storage = 0;
        for (i = 0; i < n && worst < 1e300; ++i) {
            double d = buf[c->T * n + i] - out0[i];
            num += d * d;
            den += out0[i] * out0[i];
        }
        num = den < 1e-300 ? sqrt(num) : sqrt(num / den);
        if (num > worst) worst = num;
    }
    g_rng = save;
    free(buf);
    return worst;
}

static int n_skipped = 0, n_gated = 0, n_ungated = 0, n_compared = 0;

/* one differential comparison of the method in *opt against the reference.
   Returns the relative error (or -1 when skipped). */
static double diff_case(const char *label, const acem_options *opt, const tcase *c,
                        const char *name, double tol, int sens_filter) {
    size_t n = c->R * c->C;
    float *out = (float *)malloc(n * sizeof(float));
    double *ref = (double *)malloc(n * sizeof(double));
    ref_opts ro = to_ref(opt);
    ref_info ri;
    acem_layer_info li;
    acem_error err;
    acem_result r;
    int rr;
    double e = -1;
    uint64_t stream = ref_name_stream(name);
    if (!out || !ref) exit(2);
    rr = ref_merge(&ro, c->R, c->C, c->T, (const double *const *)c->d, stream, ref, &ri);
    CHECK(rr == 0, "%s: reference failed", label);
    if (rr != 0) goto done;
    if (sens_filter) {
        double s = ref_sensitivity(&ro, c, stream, ref);
        if (s > SENS_MAX) {
            n_skipped++;
            printf("note: %s skipped: ill-posed in f32 (reference sensitivity %.2e)\n", label, s);
            goto done;
        }
    }
    memset(&li, 0, sizeof li);
    memset(&err, 0, sizeof err);
    r = lib_merge(opt, ACEM_RULE_METHOD, name, c->R, c->C, c->T, NULL,
                  (const float *const *)c->f, out, &li, &err);
    CHECK(r == ACEM_OK, "%s: acem_merge returned %d (%s)", label, (int)r, err.message);
    if (r != ACEM_OK) goto done;
    n_compared++;
    e = test_rel_err_fd(out, ref, n);
    CHECK(e <= tol, "%s: %s %zux%zu T=%zu rel err %.3e > %.1e", label, mname(opt->method),
          c->R, c->C, c->T, e, tol);
    CHECK(li.rule == ACEM_RULE_METHOD && li.method == opt->method, "%s: info rule/method %d/%d",
          label, (int)li.rule, (int)li.method);
    if (opt->method == ACEM_ACE && c->T > 1) {
        if (ri.gated) n_gated++; else n_ungated++;
        CHECK(li.gated == ri.gated, "%s: gated lib %d ref %d (gamma lib %.6e ref %.6e)", label,
              li.gated, ri.gated, li.gamma, ri.gamma);
        CHECK(rel_close(li.gamma, ri.gamma, 1e-4, 1e-6), "%s: gamma lib %.8e ref %.8e", label,
              li.gamma, ri.gamma);
        CHECK(li.k == ri.k, "%s: k lib %zu ref %zu", label, li.k, ri.k);
        if (ri.refined == 0 || ri.directions > 0)
            CHECK(li.refined == ri.refined, "%s: refined lib %d ref %d", label, li.refined, ri.refined);
        if (ri.refined) {
            CHECK(li.directions == ri.directions, "%s: directions lib %zu ref %zu", label,
                  li.directions, ri.directions);
            CHECK(rel_close(li.sigma_iso, ri.sigma_iso, 1e-4, 1e-30), "%s: sigma_iso lib %.8e ref %.8e",
                  label, li.sigma_iso, ri.sigma_iso);
        }
    }
    if (opt->method == ACEM_ISO_C) {
        CHECK(li.k == ri.k, "%s: iso-c k lib %zu ref %zu", label, li.k, ri.k);
        CHECK(rel_close(li.sigma_iso, ri.sigma_iso, 1e-4, 1e-30), "%s: iso-c sigma lib %.8e ref %.8e",
              label, li.sigma_iso, ri.sigma_iso);
        CHECK(li.directions == ri.directions, "%s: iso-c directions lib %zu ref %zu", label,
              li.directions, ri.directions);
    }
    if (opt->method == ACEM_TSV_M)
        CHECK(li.k == ri.k, "%s: tsv-m k lib %zu ref %zu", label, li.k, ri.k);
done:
    free(out);
    free(ref);
    return e;
}

/* ---- 0. the reference against the spec's vectors (f64) --------------------- */
static const double SPEC_M1[20] = {
    9.604968e-02, 1.359419e-02, -8.465004e-02, -3.905521e-02, 9.332188e-03,
    4.074697e-02, 3.531878e-02, -3.286280e-02, -7.777140e-03, 6.424796e-03,
    -6.350259e-02, 6.116873e-03, 3.556643e-02, 1.716386e-02, -2.281238e-03,
    -7.329406e-02, -5.502984e-02, 8.194640e-02, 2.966848e-02, -1.347575e-02};
static const double SPEC_WPRE2[20] = {
    4.010767e-02, -6.536702e-03, -3.326415e-02, -3.008304e-03, 4.344440e-03,
    2.264126e-02, 3.027044e-03, -1.815579e-02, -1.520629e-03, 2.703953e-03,
    -2.151849e-02, 5.328868e-03, 1.612969e-02, 4.886373e-04, -1.999012e-03,
    -4.123044e-02, -1.819210e-03, 3.529025e-02, 4.040296e-03, -5.049381e-03};
static const double SPEC_M2[20] = {
    -2.378785e+00, -3.605137e+00, 2.088887e+00, 6.141236e+00, 1.406397e-01,
    -3.633358e+00, -5.436023e+00, 3.189337e+00, 9.285106e+00, 2.087054e-01,
    -2.812463e+00, -4.146775e+00, 2.464690e+00, 7.089785e+00, 1.552600e-01,
    -9.380596e-01, -1.336037e+00, 8.220993e-01, 2.282082e+00, 4.548349e-02};
static const double SPEC_SCALE[2][3] = {{0.10, 0.11, 0.095}, {0.01, 0.1, 1.0}};
static const double SPEC_GAMMA[2] = {8.764314e-03, 3.825191e+00};
static const double SPEC_N[2][3] = {{1.103400e-01, 1.220915e-01, 8.114083e-02},
                                    {1.103400e-03, 1.009021e-01, 8.990673e+00}};

static double rel_dd(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    size_t i;
    for (i = 0; i < n; ++i) { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i]; }
    return den < 1e-300 ? sqrt(num) : sqrt(num / den);
}

static void spec_case(tcase *c, int which, int as_float) {
    size_t t, i, j;
    tc_init(c, 4, 5, 3);
    for (t = 0; t < 3; ++t)
        for (i = 0; i < 4; ++i)
            for (j = 0; j < 5; ++j) {
                double v = SPEC_SCALE[which][t] *
                           sin(1.0 + 5.0 * (double)i + (double)j + 7.0 * (double)t + 0.3 * (double)i * (double)j);
                c->d[t][i * 5 + j] = v;
                c->f[t][i * 5 + j] = (float)v;
            }
    if (as_float) tc_sync(c);
}

static void test_reference_self(void) {
    int which;
    for (which = 0; which < 2; ++which) {
        tcase c;
        ref_opts o = ref_defaults(REF_ACE);
        ref_info ri;
        double M[20];
        size_t t, i;
        spec_case(&c, which, 0);
        CHECK(ref_merge(&o, 4, 5, 3, (const double *const *)c.d, 0, M, &ri) == 0, "ref spec case %d", which + 1);
        CHECK(rel_dd(M, which ? SPEC_M2 : SPEC_M1, 20) < 1e-6, "ref spec case %d: rel %.3e", which + 1,
              rel_dd(M, which ? SPEC_M2 : SPEC_M1, 20));
        CHECK(ri.gated == which, "ref spec case %d gated %d", which + 1, ri.gated);
        CHECK(rel_close(ri.gamma, SPEC_GAMMA[which], 1e-6, 0), "ref spec case %d gamma %.8e", which + 1, ri.gamma);
        for (t = 0; t < 3; ++t) {
            double nn = 0;
            for (i = 0; i < 20; ++i) nn += c.d[t][i] * c.d[t][i];
            CHECK(rel_close(nn, SPEC_N[which][t], 1e-6, 0), "ref spec case %d n_%zu %.8e", which + 1, t, nn);
        }
        if (which == 1) {
            CHECK(rel_close(ri.sigma_iso, 1.703818e+01, 1e-6, 0), "ref spec sigma_iso %.8e", ri.sigma_iso);
            CHECK(ri.refined == 1 && ri.k == 1 && ri.directions == 1, "ref spec case 2 refined %d k %zu dirs %zu",
                  ri.refined, ri.k, ri.directions);
            o.flags = REF_FLAG_NO_REFINE;
            CHECK(ref_merge(&o, 4, 5, 3, (const double *const *)c.d, 0, M, &ri) == 0, "ref spec W_pre");
            CHECK(rel_dd(M, SPEC_WPRE2, 20) < 1e-6, "ref spec W_pre rel %.3e", rel_dd(M, SPEC_WPRE2, 20));
        }
        tc_free(&c);
    }
    /* linear-algebra sanity of the reference itself */
    {
        size_t m, n, i, j, q, trial;
        rnd_seed(99);
        for (trial = 0; trial < 12; ++trial) {
            double A[30 * 30], U[30 * 30], s[30], Vt[30 * 30], B[30 * 30];
            size_t r;
            m = 1 + rnd_below(30);
            n = 1 + rnd_below(30);
            r = m < n ? m : n;
            for (i = 0; i < m * n; ++i) A[i] = rnd_gauss();
            if (trial % 3 == 0) /* rank 1 */
                for (i = 0; i < m; ++i)
                    for (j = 0; j < n; ++j) A[i * n + j] = ((double)i + 1.0) * ((double)j - 2.5);
            CHECK(ref_svd(m, n, A, U, s, Vt) == 0, "ref_svd %zux%zu", m, n);
            memset(B, 0, sizeof B);
            for (i = 0; i < m; ++i)
                for (j = 0; j < n; ++j)
                    for (q = 0; q < r; ++q) B[i * n + j] += U[i * r + q] * s[q] * Vt[q * n + j];
            CHECK(rel_dd(B, A, m * n) < 1e-13, "ref_svd %zux%zu reconstruction %.3e", m, n, rel_dd(B, A, m * n));
            for (q = 1; q < r; ++q) CHECK(s[q] <= s[q - 1], "ref_svd not sorted");
        }
        for (trial = 0; trial < 6; ++trial) {
            double A[25 * 25], A2[25 * 25], w[25], V[25 * 25], B[25 * 25], X[3 * 25];
            size_t k = rnd_below(4);
            n = 1 + rnd_below(25);
            for (i = 0; i < k * n; ++i) X[i] = rnd_gauss();
            for (i = 0; i < n; ++i) /* PSD, rank k (+ diagonal for trial 0) */
                for (j = 0; j < n; ++j) {
                    double v = (trial == 0 && i == j) ? 1.0 : 0.0;
                    for (q = 0; q < k; ++q) v += X[q * n + i] * X[q * n + j];
                    A[i * n + j] = A2[i * n + j] = v;
                }
            CHECK(ref_syev(n, A2, w, V) == 0, "ref_syev n=%zu", n);
            memset(B, 0, sizeof B);
            for (i = 0; i < n; ++i)
                for (j = 0; j < n; ++j)
                    for (q = 0; q < n; ++q) B[i * n + j] += V[i * n + q] * w[q] * V[j * n + q];
            CHECK(rel_dd(B, A, n * n) < 1e-13 || (k == 0 && trial != 0), "ref_syev n=%zu reconstruction %.3e", n,
                  rel_dd(B, A, n * n));
        }
    }
    /* identities of the reference rules on a full-rank single expert */
    {
        tcase c;
        double out[12 * 5];
        ref_opts o;
        rnd_seed(7);
        tc_init(&c, 12, 5, 1);
        gen_matrix(c.f[0], 12, 5, K_GAUSS, 1.0);
        tc_sync(&c);
        o = ref_defaults(REF_TSV_M);
        ref_merge(&o, 12, 5, 1, (const double *const *)c.d, 0, out, NULL);
        CHECK(rel_dd(out, c.d[0], 60) < 1e-12, "ref tsv-m T=1 is the delta: %.3e", rel_dd(out, c.d[0], 60));
        o = ref_defaults(REF_ACTMAT);
        ref_merge(&o, 12, 5, 1, (const double *const *)c.d, 0, out, NULL);
        CHECK(rel_dd(out, c.d[0], 60) < 1e-12, "ref actmat T=1 is the delta: %.3e", rel_dd(out, c.d[0], 60));
        o = ref_defaults(REF_TIES);
        o.density = 1.0;
        ref_merge(&o, 12, 5, 1, (const double *const *)c.d, 0, out, NULL);
        CHECK(rel_dd(out, c.d[0], 60) < 1e-15, "ref ties density 1, T=1 is the delta");
        o = ref_defaults(REF_ACE);
        ref_merge(&o, 12, 5, 1, (const double *const *)c.d, 0, out, NULL);
        CHECK(rel_dd(out, c.d[0], 60) == 0, "ref ace T=1 is the delta");
        tc_free(&c);
    }
    /* DARE stream definition */
    CHECK(ref_name_stream(NULL) == 0, "stream(NULL)");
    CHECK(ref_name_stream("") == 0xcbf29ce484222325ull, "stream(\"\")");
    CHECK(ref_name_stream("a") == 0xaf63dc4c8601ec8cull, "stream(\"a\") = FNV-1a 64");
}

/* ---- 1. the spec's vectors through the library (f32) ---------------------- */
static void test_spec_vectors(void) {
    int which;
    for (which = 0; which < 2; ++which) {
        tcase c;
        acem_options opt;
        acem_layer_info li;
        acem_error err;
        float out[20];
        acem_result r;
        double e;
        memset(&opt, 0, sizeof opt);
        spec_case(&c, which, 1);
        r = lib_merge(&opt, ACEM_RULE_METHOD, "spec", 4, 5, 3, NULL, (const float *const *)c.f, out, &li, &err);
        CHECK(r == ACEM_OK, "spec case %d: %d %s", which + 1, (int)r, err.message);
        e = test_rel_err_fd(out, which ? SPEC_M2 : SPEC_M1, 20);
        CHECK(e <= 1e-4, "spec case %d: rel err %.3e", which + 1, e);
        CHECK(li.gated == which, "spec case %d: gated %d", which + 1, li.gated);
        CHECK(rel_close(li.gamma, SPEC_GAMMA[which], 1e-4, 0), "spec case %d: gamma %.8e", which + 1, li.gamma);
        if (which == 1) {
            CHECK(li.refined == 1, "spec case 2: refined %d", li.refined);
            CHECK(li.k == 1, "spec case 2: k %zu", li.k);
            CHECK(li.directions == 1, "spec case 2: directions %zu", li.directions);
            CHECK(rel_close(li.sigma_iso, 1.703818e+01, 1e-4, 0), "spec case 2: sigma_iso %.8e", li.sigma_iso);
            opt.flags = ACEM_FLAG_NO_REFINE;
            r = lib_merge(&opt, ACEM_RULE_METHOD, "spec", 4, 5, 3, NULL, (const float *const *)c.f, out, &li, &err);
            CHECK(r == ACEM_OK, "spec case 2 W_pre: %d %s", (int)r, err.message);
            e = test_rel_err_fd(out, SPEC_WPRE2, 20);
            CHECK(e <= 1e-4, "spec case 2 W_pre (ACEM_FLAG_NO_REFINE): rel err %.3e", e);
            CHECK(li.gated == 1 && li.refined == 0, "spec case 2 NO_REFINE: gated %d refined %d", li.gated, li.refined);
        } else {
            CHECK(li.refined == 0, "spec case 1: refined %d", li.refined);
        }
        tc_free(&c);
    }
}

/* ---- 2. ACE differential ---------------------------------------------------- */
static const size_t SHAPES[][2] = {{1, 7}, {7, 1}, {1, 1}, {2, 2}, {3, 9}, {9, 3}, {5, 5},
                                   {12, 12}, {8, 20}, {20, 8}, {16, 33}, {33, 16}, {24, 24},
                                   {40, 40}, {13, 29}, {29, 13}, {40, 17}, {17, 40}};
#define NSHAPES (sizeof SHAPES / sizeof SHAPES[0])

static void test_ace_random(void) {
    int cs;
    char label[160];
    for (cs = 0; cs < 240; ++cs) {
        tcase c;
        acem_options opt;
        size_t R = SHAPES[cs % NSHAPES][0], C = SHAPES[cs % NSHAPES][1];
        size_t T = 1 + (size_t)((cs / 3) % MAXT), t;
        int mode = cs % 5, kind;
        double base_scale;
        rnd_seed(1000 + (uint64_t)cs);
        tc_init(&c, R, C, T);
        memset(&opt, 0, sizeof opt);
        /* ungated: similar norms far from 1; gated: scales spanning 1e-2..1 */
        base_scale = 0.02 + 0.05 * rnd_unif();
        for (t = 0; t < T; ++t) {
            double s;
            kind = K_GAUSS;
            if (mode == 1 || mode == 3) s = pow(10.0, -2.0 * rnd_unif()); /* 1e-2 .. 1 */
            else s = base_scale * (0.8 + 0.4 * rnd_unif());
            if (mode == 2) kind = K_LOWRANK;
            if (mode == 3) kind = (t % 2) ? K_LOWRANK : K_ZEROS;
            if (mode == 4) kind = K_ZEROS;
            gen_matrix(c.f[t], R, C, kind, s);
        }
        tc_sync(&c);
        /* options: mostly defaults, sometimes other eps / k_frac / flags */
        switch (cs % 7) {
        case 1: opt.eps = 4e-2; break;
        case 2: opt.k_frac = 0.5; break;
        case 3: opt.k_frac = 1.0; opt.flags = ACEM_FLAG_ALWAYS_GATE; break;
        case 4: opt.flags = ACEM_FLAG_NO_GATE; break;
        case 5: opt.flags = ACEM_FLAG_ALWAYS_GATE | ACEM_FLAG_NO_REFINE; break;
        case 6: opt.lambda = 0.7; opt.tau = 0.5; break;
        default: break;
        }
        snprintf(label, sizeof label, "ace#%d(mode %d, eps %g, kf %g, flags %u, lambda %g)", cs, mode, opt.eps,
                 opt.k_frac, opt.flags, opt.lambda);
        diff_case(label, &opt, &c, "layers.0.attn.q_proj.weight", TOL_MATRIX, 1);
        tc_free(&c);
    }
}

static void test_ace_special(void) {
    tcase c;
    acem_options opt;
    size_t t;
    char label[128];
    unsigned fl[5] = {0, ACEM_FLAG_NO_GATE, ACEM_FLAG_ALWAYS_GATE, ACEM_FLAG_ALWAYS_GATE | ACEM_FLAG_NO_REFINE,
                      ACEM_FLAG_NO_REFINE};
    int f;
    /* all-zero layer, with every flag */
    for (f = 0; f < 5; ++f) {
        tc_init(&c, 6, 9, 3);
        tc_sync(&c);
        memset(&opt, 0, sizeof opt);
        opt.flags = fl[f];
        snprintf(label, sizeof label, "ace all-zero layer flags %u", fl[f]);
        diff_case(label, &opt, &c, "zero", TOL_MATRIX, 0);
        tc_free(&c);
    }
    /* a gated layer and an ungated layer under every flag (flag 4 alone on
       an ungated layer must not open the gate) */
    for (f = 0; f < 5; ++f) {
        int g;
        for (g = 0; g < 2; ++g) {
            rnd_seed(77 + (uint64_t)g);
            tc_init(&c, 10, 14, 4);
            for (t = 0; t < 4; ++t) gen_matrix(c.f[t], 10, 14, K_GAUSS, g ? pow(10.0, -(double)t * 0.6) : 0.03);
            tc_sync(&c);
            memset(&opt, 0, sizeof opt);
            opt.flags = fl[f];
            snprintf(label, sizeof label, "ace %s layer flags %u", g ? "gated" : "ungated", fl[f]);
            diff_case(label, &opt, &c, "blk", TOL_MATRIX, 1);
            tc_free(&c);
        }
    }
    /* one zero expert among gated ones (tr_t = g: huge ridge) */
    rnd_seed(5);
    tc_init(&c, 12, 10, 3);
    gen_matrix(c.f[0], 12, 10, K_GAUSS, 1.0);
    gen_matrix(c.f[1], 12, 10, K_GAUSS, 0.01);
    tc_sync(&c);
    memset(&opt, 0, sizeof opt);
    diff_case("ace gated with an all-zero expert", &opt, &c, "z", TOL_MATRIX, 1);
    tc_free(&c);
    /* LoRA-like: k exceeds rank(F) -> fewer directions than k */
    for (f = 0; f < 4; ++f) {
        size_t R = f % 2 ? 40 : 32, C = f % 2 ? 32 : 40;
        rnd_seed(300 + (uint64_t)f);
        tc_init(&c, R, C, 2 + (size_t)f);
        for (t = 0; t < c.T; ++t) gen_matrix(c.f[t], R, C, K_LOWRANK, pow(10.0, -(double)t));
        tc_sync(&c);
        memset(&opt, 0, sizeof opt);
        opt.k_frac = 0.5;
        snprintf(label, sizeof label, "ace lora %zux%zu T=%zu (k > rank F)", R, C, c.T);
        diff_case(label, &opt, &c, "lora", TOL_MATRIX, 1);
        tc_free(&c);
    }
    /* LoRA-like, not gated, entries ~1 with the default eps: A0 = sum S_t + T eps I
       has a large null space (rank-deficient S_t) where only the ridge acts */
    for (f = 0; f < 2; ++f) {
        size_t R = f ? 40 : 24, C = f ? 24 : 40;
        rnd_seed(7001 + (uint64_t)f);
        tc_init(&c, R, C, 3);
        for (t = 0; t < 3; ++t) gen_matrix(c.f[t], R, C, K_LOWRANK, pow(10.0, -0.5 * (double)t));
        tc_sync(&c);
        memset(&opt, 0, sizeof opt);
        opt.flags = ACEM_FLAG_NO_GATE;
        snprintf(label, sizeof label, "ace lora ungated %zux%zu T=3 scales 1..0.1", R, C);
        diff_case(label, &opt, &c, "lora", TOL_MATRIX, 1);
        tc_free(&c);
    }
    /* the paper's per-family eps values on realistic delta sizes */
    {
        static const double eps_list[3] = {4e-2, 2e-4, 1e-5};
        int e;
        for (e = 0; e < 3; ++e)
            for (f = 0; f < 4; ++f) {
                size_t R = SHAPES[8 + f][0], C = SHAPES[8 + f][1], T = 2 + (size_t)f;
                rnd_seed(8100 + 10 * (uint64_t)e + (uint64_t)f);
                tc_init(&c, R, C, T);
                for (t = 0; t < T; ++t) gen_matrix(c.f[t], R, C, K_GAUSS, 0.01 * (0.8 + 0.4 * rnd_unif()));
                tc_sync(&c);
                memset(&opt, 0, sizeof opt);
                opt.eps = eps_list[e];
                snprintf(label, sizeof label, "ace eps %g %zux%zu T=%zu deltas ~1e-2", opt.eps, R, C, T);
                diff_case(label, &opt, &c, "blk", TOL_MATRIX, 1);
                tc_free(&c);
            }
    }
    /* T = 1 returns the delta (times lambda), any flags */
    for (f = 0; f < 3; ++f) {
        rnd_seed(9 + (uint64_t)f);
        tc_init(&c, 6, 4, 1);
        gen_matrix(c.f[0], 6, 4, K_GAUSS, 0.1);
        tc_sync(&c);
        memset(&opt, 0, sizeof opt);
        opt.lambda = f == 2 ? 0.25 : 0;
        opt.flags = f == 1 ? ACEM_FLAG_ALWAYS_GATE : 0;
        snprintf(label, sizeof label, "ace T=1 (lambda %g flags %u)", opt.lambda, opt.flags);
        diff_case(label, &opt, &c, "single", 1e-7, 0);
        tc_free(&c);
    }
}

/* ---- 3. the other methods ------------------------------------------------- */
static const size_t ESHAPES[][2] = {{1, 1}, {7, 1}, {1, 9}, {5, 9}, {16, 16}, {33, 20}, {100, 1}, {12, 30}};
#define NESHAPES (sizeof ESHAPES / sizeof ESHAPES[0])

static void test_elementwise(void) {
    static const double dens[4] = {0.1, 0.2, 1.0, 0.0};
    static const double drops[4] = {0.5, 0.3, 0.9, 0.0};
    static const uint64_t seeds[4] = {0, 1, 12345, 0xFFFFFFFFFFFFFFFFull};
    static const char *names[4] = {"a", "model.layers.3.mlp.up_proj.weight", NULL, "bias"};
    int m, cs;
    char label[200];
    for (m = ACEM_AVERAGE; m <= ACEM_DARE_TIES; ++m) {
        for (cs = 0; cs < 32; ++cs) {
            tcase c;
            acem_options opt;
            size_t R = ESHAPES[cs % NESHAPES][0], C = ESHAPES[cs % NESHAPES][1];
            size_t T = 1 + (size_t)((cs * 3 + m) % MAXT), t;
            int kind = (cs % 4 == 1) ? K_TIES : (cs % 4 == 2) ? K_ZEROS : K_GAUSS;
            const char *name = names[cs % 4];
            rnd_seed(5000 + 100 * (uint64_t)m + (uint64_t)cs);
            tc_init(&c, R, C, T);
            for (t = 0; t < T; ++t) gen_matrix(c.f[t], R, C, kind, 0.01 * (1.0 + (double)t));
            tc_sync(&c);
            memset(&opt, 0, sizeof opt);
            opt.method = (acem_method)m;
            opt.density = dens[cs % 4];
            opt.drop = drops[(cs / 4) % 4];
            /* exact rescale 1/(1-p) for tie data: keeps sums exact */
            if (kind == K_TIES && opt.drop != 0.5 && opt.drop != 0.0) opt.drop = 0.75;
            opt.seed = seeds[(cs / 2) % 4];
            if (cs % 5 == 3) opt.lambda = 0.6;
            snprintf(label, sizeof label, "%s#%d (%zux%zu T=%zu kind %d density %g drop %g seed %llu name %s)",
                     mname(m), cs, R, C, T, kind, opt.density, opt.drop, (unsigned long long)opt.seed,
                     name ? name : "NULL");
            diff_case(label, &opt, &c, name, TOL_ELEM, 0);
            tc_free(&c);
        }
    }
    /* TIES threshold ties: every magnitude repeated, densities 0.1 / 0.2 / 1.0 */
    for (cs = 0; cs < 3; ++cs) {
        tcase c;
        acem_options opt;
        size_t t, i;
        tc_init(&c, 10, 10, 4);
        for (t = 0; t < 4; ++t)
            for (i = 0; i < 100; ++i) {
                double mg = (double)(1 + (i * 7 + t) % 5) * 0.25; /* 5 magnitudes */
                c.f[t][i] = (float)(((i * 13 + t * 5) % 3 == 0) ? -mg : mg);
            }
        tc_sync(&c);
        memset(&opt, 0, sizeof opt);
        opt.method = ACEM_TIES;
        opt.density = dens[cs];
        snprintf(label, sizeof label, "ties repeated magnitudes density %g", opt.density);
        diff_case(label, &opt, &c, "ties", TOL_ELEM, 0);
        opt.method = ACEM_DARE_TIES;
        snprintf(label, sizeof label, "dare-ties repeated magnitudes density %g", opt.density);
        diff_case(label, &opt, &c, "ties", TOL_ELEM, 0);
        tc_free(&c);
    }
    /* tensors large enough for the sampled threshold selection and several
       parallel chunks, against the reference */
    for (cs = 0; cs < 4; ++cs) {
        tcase c;
        acem_options opt;
        size_t t;
        rnd_seed(6100 + (uint64_t)cs);
        tc_init(&c, 200, 201, 3);
        for (t = 0; t < 3; ++t) gen_matrix(c.f[t], 200, 201, cs % 2 ? K_ZEROS : K_GAUSS, 0.01 * (double)(t + 1));
        tc_sync(&c);
        memset(&opt, 0, sizeof opt);
        opt.method = cs < 2 ? ACEM_TIES : ACEM_DARE_TIES;
        opt.density = cs == 2 ? 0.5 : 0.0;
        snprintf(label, sizeof label, "%s 200x201 T=3 (sampled threshold) #%d", mname(opt.method), cs);
        diff_case(label, &opt, &c, "big.ties", TOL_ELEM, 0);
        opt.method = cs % 2 ? ACEM_DARE_TA : ACEM_AVERAGE;
        snprintf(label, sizeof label, "%s 200x201 T=3 #%d", mname(opt.method), cs);
        diff_case(label, &opt, &c, "big.avg", TOL_ELEM, 0);
        tc_free(&c);
    }
    /* sign election with exact cancellations (majority sign path) */
    {
        tcase c;
        acem_options opt;
        size_t i;
        tc_init(&c, 1, 12, 2);
        for (i = 0; i < 12; ++i) {
            c.f[0][i] = (float)(0.5 * (double)(1 + i % 3));
            c.f[1][i] = (i % 2) ? -c.f[0][i] : (float)(i % 4 == 0 ? 0.25 : -0.125);
        }
        tc_sync(&c);
        memset(&opt, 0, sizeof opt);
        opt.method = ACEM_TIES;
        opt.density = 1.0;
        diff_case("ties exact cancellations (majority sign)", &opt, &c, "x", TOL_ELEM, 0);
        for (i = 0; i < 12; ++i) { c.f[0][i] = (i % 2) ? 1.0f : -1.0f; c.f[1][i] = -c.f[0][i]; }
        tc_sync(&c);
        diff_case("ties every sum zero, majority zero", &opt, &c, "x", TOL_ELEM, 0);
        tc_free(&c);
    }
}

static void test_matrix_methods(void) {
    static const int methods[3] = {ACEM_ACTMAT, ACEM_ISO_C, ACEM_TSV_M};
    int mi, cs;
    char label[200];
    for (mi = 0; mi < 3; ++mi) {
        int m = methods[mi];
        for (cs = 0; cs < 40; ++cs) {
            tcase c;
            acem_options opt;
            size_t R = SHAPES[cs % NSHAPES][0], C = SHAPES[cs % NSHAPES][1];
            size_t T = 1 + (size_t)((cs / 2) % MAXT), t;
            int kind = (cs % 4 == 3) ? K_LOWRANK : (cs % 4 == 2) ? K_ZEROS : K_GAUSS;
            if (m == ACEM_ACTMAT) { /* well-posed: sum_t D_t^T D_t full rank */
                while (R * T < 2 * C) ++T;
                if (T > MAXT) { T = MAXT; R = (2 * C + T - 1) / T; }
                if (kind == K_LOWRANK) kind = K_GAUSS;
            }
            rnd_seed(9000 + 100 * (uint64_t)m + (uint64_t)cs);
            tc_init(&c, R, C, T);
            for (t = 0; t < T; ++t) gen_matrix(c.f[t], R, C, kind, pow(10.0, -2.0 * rnd_unif()));
            tc_sync(&c);
            memset(&opt, 0, sizeof opt);
            opt.method = (acem_method)m;
            if (cs % 6 == 5) opt.lambda = 0.4;
            snprintf(label, sizeof label, "%s#%d (%zux%zu T=%zu kind %d)", mname(m), cs, R, C, T, kind);
            diff_case(label, &opt, &c, "w", TOL_MATRIX, 1);
            tc_free(&c);
        }
    }
    /* rank-deficient / special inputs */
    for (mi = 0; mi < 3; ++mi) {
        int m = methods[mi];
        tcase c;
        acem_options opt;
        size_t t;
        memset(&opt, 0, sizeof opt);
        opt.method = (acem_method)m;
        /* all zero */
        tc_init(&c, 7, 5, 3);
        tc_sync(&c);
        snprintf(label, sizeof label, "%s all-zero layer", mname(m));
        diff_case(label, &opt, &c, "w", TOL_MATRIX, 0);
        tc_free(&c);
        /* low-rank experts on a large layer: rank(sum) < r */
        rnd_seed(4242 + (uint64_t)m);
        tc_init(&c, 36, 30, 3);
        for (t = 0; t < 3; ++t) gen_matrix(c.f[t], 36, 30, K_LOWRANK, 0.1);
        tc_sync(&c);
        snprintf(label, sizeof label, "%s low-rank experts 36x30 T=3", mname(m));
        diff_case(label, &opt, &c, "w", TOL_MATRIX, 1);
        tc_free(&c);
        /* rank-deficient sum of Grams (R*T < C) */
        rnd_seed(4343 + (uint64_t)m);
        tc_init(&c, 4, 30, 3);
        for (t = 0; t < 3; ++t) gen_matrix(c.f[t], 4, 30, K_GAUSS, 0.1);
        tc_sync(&c);
        snprintf(label, sizeof label, "%s wide 4x30 T=3 (rank-deficient Gram)", mname(m));
        diff_case(label, &opt, &c, "w", TOL_MATRIX, 1);
        tc_free(&c);
        /* one zero expert among others; TSV-M kt = 0 (T > r) */
        rnd_seed(4444 + (uint64_t)m);
        tc_init(&c, 3, 12, 5);
        for (t = 1; t < 5; ++t) gen_matrix(c.f[t], 3, 12, K_GAUSS, 0.1);
        tc_sync(&c);
        snprintf(label, sizeof label, "%s 3x12 T=5, one zero expert", mname(m));
        diff_case(label, &opt, &c, "w", TOL_MATRIX, 1);
        tc_free(&c);
    }
}

/* DARE determinism / seeds / names */
static void test_dare_streams(void) {
    int m;
    for (m = ACEM_DARE_TA; m <= ACEM_DARE_TIES; ++m) {
        tcase c;
        acem_options opt;
        float *o1, *o2, *o3, *o4;
        size_t t, n = 20 * 12, i, nzero = 0;
        acem_error err;
        rnd_seed(31337 + (uint64_t)m);
        tc_init(&c, 20, 12, 3);
        for (t = 0; t < 3; ++t) gen_matrix(c.f[t], 20, 12, K_GAUSS, 0.05);
        tc_sync(&c);
        o1 = (float *)malloc(n * 4); o2 = (float *)malloc(n * 4); o3 = (float *)malloc(n * 4); o4 = (float *)malloc(n * 4);
        memset(&opt, 0, sizeof opt);
        opt.method = (acem_method)m;
        opt.seed = 42;
        lib_merge(&opt, ACEM_RULE_METHOD, "dare.w", 20, 12, 3, NULL, (const float *const *)c.f, o1, NULL, &err);
        lib_merge(&opt, ACEM_RULE_METHOD, "dare.w", 20, 12, 3, NULL, (const float *const *)c.f, o2, NULL, &err);
        CHECK(memcmp(o1, o2, n * 4) == 0, "%s: same seed and name give identical output", mname(m));
        opt.seed = 43;
        lib_merge(&opt, ACEM_RULE_METHOD, "dare.w", 20, 12, 3, NULL, (const float *const *)c.f, o3, NULL, &err);
        CHECK(memcmp(o1, o3, n * 4) != 0, "%s: another seed gives another output", mname(m));
        opt.seed = 42;
        lib_merge(&opt, ACEM_RULE_METHOD, "dare.v", 20, 12, 3, NULL, (const float *const *)c.f, o4, NULL, &err);
        CHECK(memcmp(o1, o4, n * 4) != 0, "%s: another tensor name gives another output", mname(m));
        for (i = 0; i < n; ++i) nzero += o1[i] == 0.0f;
        if (m == ACEM_DARE_TA) CHECK(nzero > 0 && nzero < n, "dare-ta: some entries dropped (%zu zero)", nzero);
        diff_case("dare seed 42 name dare.w", &opt, &c, "dare.w", TOL_ELEM, 0);
        diff_case("dare seed 42 name dare.v", &opt, &c, "dare.v", TOL_ELEM, 0);
        opt.seed = 43;
        diff_case("dare seed 43 name dare.w", &opt, &c, "dare.w", TOL_ELEM, 0);
        /* drop = tiny: nothing dropped in practice, rescale by ~1 */
        opt.drop = 1e-9;
        diff_case("dare drop 1e-9", &opt, &c, "dare.w", TOL_ELEM, 0);
        /* drop just below 1 */
        opt.drop = 0.999;
        diff_case("dare drop 0.999", &opt, &c, "dare.w", TOL_ELEM, 0);
        free(o1); free(o2); free(o3); free(o4);
        tc_free(&c);
    }
}

/* mean and keep rules, base handling, in-place output */
static void test_rules_and_base(void) {
    int m;
    char label[160];
    for (m = 0; m < ACEM_METHOD_COUNT; ++m) {
        tcase c, cd;
        acem_options opt;
        size_t R = 9, C = 6, n = R * C, T = 3, t, i;
        float *base, *exps[MAXT], *o1, *o2, *o3, *o4;
        double *ref;
        acem_layer_info li;
        acem_error err;
        acem_result r;
        double e;
        int is_elem = m >= ACEM_AVERAGE && m <= ACEM_DARE_TIES;
        rnd_seed(777 + (uint64_t)m);
        /* grid values: expert = base + delta and expert - base are exact in f32 */
        tc_init(&c, R, C, T);
        tc_init(&cd, R, C, T);
        base = (float *)malloc(n * 4);
        o1 = (float *)malloc(n * 4); o2 = (float *)malloc(n * 4); o3 = (float *)malloc(n * 4); o4 = (float *)malloc(n * 4);
        ref = (double *)malloc(n * 8);
        gen_matrix(base, R, C, K_GRID, 1.0);
        for (t = 0; t < T; ++t) {
            gen_matrix(cd.f[t], R, C, K_GRID, 0.05 * (double)(t + 1));
            exps[t] = c.f[t];
            for (i = 0; i < n; ++i) c.f[t][i] = base[i] + cd.f[t][i];
        }
        tc_sync(&cd);
        memset(&opt, 0, sizeof opt);
        opt.method = (acem_method)m;
        opt.seed = 5;

        /* feed(expert, base) == feed(delta, NULL) */
        r = lib_merge(&opt, ACEM_RULE_METHOD, "t", R, C, T, NULL, (const float *const *)cd.f, o1, &li, &err);
        CHECK(r == ACEM_OK, "%s: merge deltas: %s", mname(m), err.message);
        {
            size_t need;
            void *raw, *arena;
            acem_layer_bytes(&opt, ACEM_RULE_METHOD, R, C, T, &need);
            arena = aligned_block(need, &raw);
            r = lib_layer(&opt, ACEM_RULE_METHOD, "t", R, C, T, base, (const float *const *)exps, NULL, o2,
                          arena, need, &li, &err);
            CHECK(r == ACEM_OK, "%s: feed(expert, base): %s", mname(m), err.message);
            e = rel_ff(o2, o1, n);
            CHECK(e <= 1e-6, "%s: feed(expert, base) vs feed(delta, NULL): rel %.3e", mname(m), e);
            if (memcmp(o1, o2, n * 4) != 0)
                printf("note: %s: feed(expert, base) and feed(delta, NULL) not bitwise equal (rel %.3e)\n",
                       mname(m), e);
            /* finish with base: out = base + lambda*M */
            r = lib_layer(&opt, ACEM_RULE_METHOD, "t", R, C, T, base, (const float *const *)exps, base, o3,
                          arena, need, &li, &err);
            CHECK(r == ACEM_OK, "%s: finish(base): %s", mname(m), err.message);
            {
                double worst = 0;
                for (i = 0; i < n; ++i) {
                    double want = (double)base[i] + (double)o1[i];
                    double d = fabs((double)o3[i] - want) / (fabs((double)base[i]) + fabs((double)o1[i]) + 1e-30);
                    if (d > worst) worst = d;
                }
                CHECK(worst <= 4e-7, "%s: finish(base) = base + lambda*M: worst rel %.3e", mname(m), worst);
            }
            /* out == base (in place) */
            memcpy(o4, base, n * 4);
            r = lib_layer(&opt, ACEM_RULE_METHOD, "t", R, C, T, base, (const float *const *)exps, o4, o4,
                          arena, need, &li, &err);
            CHECK(r == ACEM_OK && memcmp(o4, o3, n * 4) == 0, "%s: finish in place (out == base)", mname(m));
            free(raw);
        }
        /* versus the reference, through the deltas */
        {
            ref_opts ro = to_ref(&opt);
            ref_merge(&ro, R, C, T, (const double *const *)cd.d, ref_name_stream("t"), ref, NULL);
            e = test_rel_err_fd(o1, ref, n);
            CHECK(e <= (is_elem ? TOL_ELEM : TOL_MATRIX), "%s: grid case vs reference rel %.3e", mname(m), e);
        }

        /* KEEP: output is the base, bit for bit */
        memset(o1, 0x7f, n * 4);
        r = lib_merge(&opt, ACEM_RULE_KEEP, "classifier.weight", R, C, T, base, (const float *const *)exps, o1, &li,
                      &err);
        CHECK(r == ACEM_OK && memcmp(o1, base, n * 4) == 0, "%s: RULE_KEEP output == base (%d)", mname(m), (int)r);
        CHECK(li.rule == ACEM_RULE_KEEP, "%s: KEEP info.rule %d", mname(m), (int)li.rule);

        /* MEAN (only meaningful for matrix methods; element-wise methods too
           accept it when asked explicitly) */
        if (!is_elem) {
            double lams[2] = {0.0, 0.5};
            int li2;
            for (li2 = 0; li2 < 2; ++li2) {
                opt.lambda = lams[li2];
                r = lib_merge(&opt, ACEM_RULE_MEAN, "ln.weight", R, C, T, NULL, (const float *const *)cd.f, o1, &li,
                              &err);
                ref_mean_rule(n, T, (const double *const *)cd.d, lams[li2] == 0 ? 1.0 : lams[li2], ref);
                e = test_rel_err_fd(o1, ref, n);
                CHECK(r == ACEM_OK && e <= TOL_ELEM, "%s: RULE_MEAN lambda %g rel %.3e (%d)", mname(m), lams[li2], e,
                      (int)r);
                CHECK(li.rule == ACEM_RULE_MEAN, "%s: MEAN info.rule %d", mname(m), (int)li.rule);
                /* mean with base, 1-D shape n x 1 */
                r = lib_merge(&opt, ACEM_RULE_MEAN, "ln.weight", n, 1, T, base, (const float *const *)exps, o2, &li,
                              &err);
                {
                    double worst = 0;
                    for (i = 0; i < n; ++i) {
                        double want = (double)base[i] + ref[i];
                        double d = fabs((double)o2[i] - want) / (fabs((double)base[i]) + fabs(ref[i]) + 1e-30);
                        if (d > worst) worst = d;
                    }
                    CHECK(r == ACEM_OK && worst <= 1e-6, "%s: RULE_MEAN n x 1 with base: worst %.3e", mname(m), worst);
                }
            }
            opt.lambda = 0;
        }
        snprintf(label, sizeof label, "%s rules", mname(m));
        (void)label;
        free(base); free(o1); free(o2); free(o3); free(o4); free(ref);
        tc_free(&c);
        tc_free(&cd);
    }
}

/* ---- 4. tensor rules and the regular expressions behind them ------------------ */
/* a random pattern over {a, b, c} for the differential test against POSIX
   extended regular expressions (the same meaning for this subset: literals,
   ., [..], [^..], groups, |, * + ?; ^ and $ only at the ends of the whole
   pattern: glibc's regexec mishandles some anchors inside groups, e.g. it
   finds ($.|bb?)+[ab]([ab]$|b*ab|($|aa|$).([^a]ca|^|c[ab]^)*)+ in
   cbabbbacabb, which Python's re does not; the unit cases check anchors
   inside groups against values from Python's re) */
static unsigned long long re_rng = 0x2545F4914F6CDD1Dull;
static unsigned re_rand(unsigned n) {
    re_rng ^= re_rng >> 12; re_rng ^= re_rng << 25; re_rng ^= re_rng >> 27;
    return (unsigned)((re_rng * 0x2545F4914F6CDD1Dull) >> 33) % n;
}
static void re_gen(char *p, size_t *len, size_t cap, int depth) {
    int k, n = 1 + (int)re_rand(3);
    for (k = 0; k < n && *len + 12 < cap; ++k) {
        unsigned a = re_rand(depth > 0 ? 8 : 6);
        if (a < 3) p[(*len)++] = (char)('a' + a);
        else if (a == 3) p[(*len)++] = '.';
        else if (a == 4) { memcpy(p + *len, re_rand(2) ? "[ab]" : "[^a]", 4); *len += 4; }
        else if (a == 5) p[(*len)++] = (char)('a' + re_rand(3));
        else { /* a group of 1-3 alternatives */
            int b, nb = 1 + (int)re_rand(3);
            p[(*len)++] = '(';
            for (b = 0; b < nb && *len + 12 < cap; ++b) {
                if (b) p[(*len)++] = '|';
                re_gen(p, len, cap, depth - 1);
            }
            p[(*len)++] = ')';
        }
        if (re_rand(3) == 0) p[(*len)++] = "*+?"[re_rand(3)];
    }
    p[*len] = 0;
}
static void test_regex(void) {
    static const struct { const char *pat, *text; int want; } cases[] = {
        {"a|b", "xbx", 1}, {"^ab", "ab", 1}, {"^ab", "cab", 0}, {"b$", "ab", 1}, {"b$", "ba", 0},
        {"a.c", "abc", 1}, {"a.c", "a\nc", 0}, {"[a-c]+", "zzb", 1}, {"[^a-c]", "abc", 0}, {"\\d+", "x12", 1},
        {"\\D", "123", 0}, {"\\w", "-", 0}, {"\\s", "a b", 1}, {"\\S", " \t", 0}, {"\\.", "a.b", 1},
        {"\\.", "ab", 0}, {"(ab)+c", "ababc", 1}, {"(ab)+c", "abac", 0}, {"(a|)b", "b", 1}, {"()", "", 1},
        {"", "", 1}, {"", "xyz", 1}, {"x*", "", 1}, {"^$", "", 1}, {"^$", "a", 0}, {"(a*)*b", "aaab", 1},
        {"(a*)*b", "aaa", 0}, {"(^a|b$)", "ca", 0}, {"(^a|b$)", "ab", 1}, {"a\\|b", "a|b", 1},
        {"q_proj|k_proj", "model.layers.0.self_attn.k_proj", 1}, {"h\\.[0-9]+\\.mlp$", "h.11.mlp", 1},
        {"h\\.[0-9]+\\.mlp$", "h.11.mlp.c_fc", 0}, {"[]a]", "]", 1}, {"[\\]]", "]", 1}, {"[a\\-]", "-", 1},
        /* anchors inside groups (values from Python's re.search) */
        {"(^a|b)c", "xbc", 1}, {"(^a|b)c", "ac", 1}, {"(^a|b)c", "xac", 0}, {"a(^b)", "ab", 0}, {"a$b", "ab", 0},
        {"(a|$)$", "", 1}, {"(a|$)$", "b", 1}, {"x($|y)", "x", 1}, {"x($|y)", "xz", 0}, {"(^|a)b", "b", 1},
        {"(^|a)b", "cb", 0},
    };
    static const char *bad[] = {"(", ")", "a)", "[a", "\\", "*a", "a**", "a+?", "a{2}", "^*", "$+", "(|"};
    char pat[64], posix[64], text[16], *big;
    size_t i, k, len, n = 200000;
    int agree = 1, compiled = 0;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        CHECK(acem_regex_check(cases[i].pat) == ACEM_OK, "regex '%s' rejected", cases[i].pat);
        CHECK(acem_regex_search(cases[i].pat, cases[i].text) == cases[i].want, "regex '%s' on '%s': want %d",
              cases[i].pat, cases[i].text, cases[i].want);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i)
        CHECK(acem_regex_check(bad[i]) == ACEM_ERR_BAD_PATTERN && !acem_regex_search(bad[i], "a"),
              "regex '%s' accepted", bad[i]);
    /* patterns that take a backtracking matcher exponential time, or one stack
       frame per repetition; and the program-size limit */
    big = (char *)malloc(n + 2);
    memset(big, 'a', n);
    big[n] = 0;
    CHECK(acem_regex_search("(a|aa)*c", big) == 0, "(a|aa)*c on %zu a's", n);
    CHECK(acem_regex_search("(a*)*c", big) == 0, "(a*)*c on %zu a's", n);
    CHECK(acem_regex_search("(a|aa)*$", big) == 1, "(a|aa)*$ on %zu a's", n);
    big[n] = 'c';
    big[n + 1] = 0;
    CHECK(acem_regex_search("^(a)*c$", big) == 1, "^(a)*c$ on %zu a's and a c", n);
    free(big);
    memset(pat, 'x', 63);
    pat[63] = 0;
    CHECK(acem_regex_check(pat) == ACEM_OK, "a 63-byte literal");
    big = (char *)malloc(40010); /* a class beyond 32767 bytes into the pattern */
    big[0] = '[';
    memset(big + 1, 'a', 40000);
    memcpy(big + 40001, "]x[yz]", 7);
    CHECK(acem_regex_search(big, "axz") == 1 && acem_regex_search(big, "axa") == 0, "a class at offset 40001");
    free(big);
    {
        char many[400];
        for (len = 0; len + 18 < sizeof many;) { memcpy(many + len, "(|||||||||||||||)", 17); len += 17; }
        many[len] = 0;
        CHECK(acem_regex_check(many) == ACEM_ERR_BAD_PATTERN, "a program beyond the instruction limit is rejected");
    }
    /* differential: random patterns and texts against POSIX regexec */
    for (i = 0; i < 4000 && agree; ++i) {
        regex_t rx;
        len = 0;
        if (re_rand(4) == 0) pat[len++] = '^';
        re_gen(pat, &len, sizeof pat - 1, 2);
        if (re_rand(4) == 0) pat[len++] = '$';
        pat[len] = 0;
        memcpy(posix, pat, len + 1);
        CHECK(acem_regex_check(pat) == ACEM_OK, "regex '%s' rejected", pat);
        if (regcomp(&rx, posix, REG_EXTENDED | REG_NOSUB) != 0) continue;
        ++compiled;
        for (k = 0; k < 24; ++k) {
            size_t j, tl = re_rand(12);
            int want, got;
            for (j = 0; j < tl; ++j) text[j] = (char)('a' + re_rand(3));
            text[tl] = 0;
            want = regexec(&rx, text, 0, NULL, 0) == 0;
            got = acem_regex_search(pat, text);
            if (want != got) {
                CHECK(0, "regex '%s' on '%s': %d, POSIX says %d", pat, text, got, want);
                agree = 0;
                break;
            }
        }
        regfree(&rx);
    }
    CHECK(!agree || compiled >= 3000, "only %d of the random patterns compiled with POSIX regcomp", compiled);
}

/* ---- 4b. tensor rules -------------------------------------------------------- */
static void test_tensor_rules(void) {
    static const char *ex1[1] = {"classifier|bias|LayerNorm|embeddings"};
    static const char *ex3[3] = {"^lm_head", "score$", "classifier"};
    static const char *exbad[2] = {"(", "head"};
    acem_options opt;
    int m;
    memset(&opt, 0, sizeof opt);
    opt.exclude = ex1;
    opt.n_exclude = 1;
    CHECK(acem_tensor_rule(&opt, "roberta.encoder.layer.0.attention.self.query.weight", 2) == ACEM_RULE_METHOD,
          "query.weight -> METHOD");
    CHECK(acem_tensor_rule(&opt, "roberta.encoder.layer.0.attention.self.query.bias", 1) == ACEM_RULE_KEEP,
          "query.bias (1-D, excluded) -> KEEP");
    CHECK(acem_tensor_rule(&opt, "roberta.encoder.layer.0.output.LayerNorm.weight", 1) == ACEM_RULE_KEEP,
          "LayerNorm -> KEEP");
    CHECK(acem_tensor_rule(&opt, "roberta.embeddings.word_embeddings.weight", 2) == ACEM_RULE_KEEP,
          "embeddings -> KEEP");
    CHECK(acem_tensor_rule(&opt, "classifier.dense.weight", 2) == ACEM_RULE_KEEP, "classifier -> KEEP");
    CHECK(acem_tensor_rule(&opt, "encoder.layer.0.output.dense.weight", 2) == ACEM_RULE_METHOD, "dense -> METHOD");
    CHECK(acem_tensor_rule(&opt, "encoder.layer.0.output.dense.weight", 1) == ACEM_RULE_MEAN, "1-D -> MEAN");
    CHECK(acem_tensor_rule(&opt, "Classifier.weight", 2) == ACEM_RULE_METHOD, "regex is case sensitive");
    opt.exclude = ex3;
    opt.n_exclude = 3;
    CHECK(acem_tensor_rule(&opt, "lm_head.weight", 2) == ACEM_RULE_KEEP, "^lm_head matches lm_head.weight");
    CHECK(acem_tensor_rule(&opt, "model.lm_head.weight", 2) == ACEM_RULE_METHOD, "^lm_head is anchored");
    CHECK(acem_tensor_rule(&opt, "score", 2) == ACEM_RULE_KEEP, "score$ matches score");
    CHECK(acem_tensor_rule(&opt, "model.score", 2) == ACEM_RULE_KEEP, "score$ matches model.score");
    CHECK(acem_tensor_rule(&opt, "score.weight", 2) == ACEM_RULE_METHOD, "score$ is anchored at the end");
    CHECK(acem_tensor_rule(&opt, "vit.classifier", 2) == ACEM_RULE_KEEP, "third pattern used");
    CHECK(acem_tensor_rule(&opt, "model.layers.0.mlp.up_proj.weight", 2) == ACEM_RULE_METHOD, "plain weight");
    CHECK(acem_tensor_rule(&opt, "model.layers.0.mlp.up_proj.weight", 3) == ACEM_RULE_MEAN, "3-D -> MEAN");
    CHECK(acem_tensor_rule(&opt, "model.layers.0.mlp.up_proj.weight", 0) == ACEM_RULE_MEAN, "scalar -> MEAN");
    CHECK(acem_tensor_rule(&opt, "model.layers.0.mlp.up_proj.weight", 4) == ACEM_RULE_MEAN, "4-D -> MEAN");
    CHECK(acem_tensor_rule(&opt, "text_projection.weight", 2) == ACEM_RULE_MEAN, "text_projection -> MEAN");
    CHECK(acem_tensor_rule(&opt, "model.text_projection", 2) == ACEM_RULE_MEAN, "model.text_projection -> MEAN");
    CHECK(acem_tensor_rule(&opt, "visual.proj", 2) == ACEM_RULE_METHOD, "visual.proj -> METHOD");
    CHECK(acem_tensor_rule(NULL, "x.weight", 2) == ACEM_RULE_METHOD, "NULL options = defaults (ACE)");
    /* invalid patterns never match */
    opt.exclude = exbad;
    opt.n_exclude = 2;
    CHECK(acem_regex_check("(") == ACEM_ERR_BAD_PATTERN, "regex_check \"(\"");
    CHECK(acem_regex_check("classifier|bias|LayerNorm|embeddings") == ACEM_OK, "regex_check ok");
    CHECK(acem_tensor_rule(&opt, "(x).weight", 2) == ACEM_RULE_METHOD, "invalid pattern counts as no match");
    CHECK(acem_tensor_rule(&opt, "lm_head.weight", 2) == ACEM_RULE_KEEP, "valid pattern after an invalid one");
    /* all methods: matrix methods give MEAN for non-2-D, element-wise never */
    for (m = 0; m < ACEM_METHOD_COUNT; ++m) {
        int is_elem = m >= ACEM_AVERAGE && m <= ACEM_DARE_TIES;
        size_t nd;
        acem_options o2;
        memset(&o2, 0, sizeof o2);
        o2.method = (acem_method)m;
        for (nd = 0; nd <= 4; ++nd) {
            acem_rule want = (nd == 2 || is_elem) ? ACEM_RULE_METHOD : ACEM_RULE_MEAN;
            CHECK(acem_tensor_rule(&o2, "enc.blocks.1.w", nd) == want, "%s ndim %zu: rule %d want %d", mname(m), nd,
                  (int)acem_tensor_rule(&o2, "enc.blocks.1.w", nd), (int)want);
            CHECK(acem_tensor_rule(&o2, "text_projection", nd) == (is_elem ? ACEM_RULE_METHOD : ACEM_RULE_MEAN),
                  "%s text_projection ndim %zu", mname(m), nd);
        }
        o2.exclude = ex1;
        o2.n_exclude = 1;
        CHECK(acem_tensor_rule(&o2, "classifier.out_proj.bias", 1) == ACEM_RULE_KEEP, "%s: excluded -> KEEP",
              mname(m));
        CHECK(acem_tensor_rule(&o2, "classifier.out_proj.weight", 2) == ACEM_RULE_KEEP, "%s: excluded 2-D -> KEEP",
              mname(m));
        /* method names round-trip */
        CHECK(acem_method_from_name(acem_method_name((acem_method)m)) == (acem_method)m, "method name %s", mname(m));
    }
    CHECK(acem_method_from_name("task_arithmetic") == ACEM_TASK_ARITHMETIC, "task_arithmetic alias");
    CHECK(acem_method_from_name("nope") == ACEM_METHOD_COUNT, "unknown method name");
}

/* ---- 5. arena exactness and bounds ------------------------------------------- */
#define CANARY 0xA7
static void test_arena(void) {
    static const size_t shp[4][2] = {{5, 9}, {9, 5}, {16, 16}, {1, 7}};
    int m, s, rl;
    for (m = 0; m < ACEM_METHOD_COUNT; ++m)
        for (rl = 0; rl < 3; ++rl)
            for (s = 0; s < 4; ++s) {
                acem_rule rule = (acem_rule)rl;
                size_t R = shp[s][0], C = shp[s][1], n = R * C, T = 3, N = 0, N8 = 0, N2 = 0, t, i;
                acem_options opt;
                tcase c;
                unsigned char *raw, *arena, *outraw;
                float *out, *base, *copy;
                acem_result r;
                acem_error err;
                acem_layer L;
                int bad = 0, outbad = 0;
                const size_t pad = 256;
                if (rule == ACEM_RULE_MEAN && m >= ACEM_AVERAGE && m <= ACEM_DARE_TIES) continue;
                memset(&opt, 0, sizeof opt);
                opt.method = (acem_method)m;
                rnd_seed(55 + (uint64_t)s);
                tc_init(&c, R, C, T);
                for (t = 0; t < T; ++t) gen_matrix(c.f[t], R, C, K_GAUSS, 0.1 * (double)(t + 1));
                base = (float *)malloc(n * 4);
                copy = (float *)malloc(T * n * 4);
                gen_matrix(base, R, C, K_GAUSS, 1.0);
                for (t = 0; t < T; ++t) memcpy(copy + t * n, c.f[t], n * 4);
                r = acem_layer_bytes(&opt, rule, R, C, T, &N);
                CHECK(r == ACEM_OK, "%s/%s: layer_bytes %d", mname(m), acem_rule_name(rule), (int)r);
                acem_layer_bytes(&opt, rule, R, C, 8, &N8);
                acem_layer_bytes(&opt, rule, R, C, 2, &N2);
                CHECK(N8 == N && N2 == N, "%s/%s %zux%zu: bytes depend on T (T=2 %zu, T=3 %zu, T=8 %zu)", mname(m),
                      acem_rule_name(rule), R, C, N2, N, N8);
                /* arena inside a canary-filled block; 64-aligned for even shapes,
                   only 8-aligned (like any malloc result) for odd ones */
                raw = (unsigned char *)malloc(N + 2 * pad + 64);
                arena = raw + pad + (64 - ((uintptr_t)(raw + pad) & 63u)) % 64 + (s % 2 ? 8 : 0);
                memset(raw, CANARY, N + 2 * pad + 64);
                outraw = (unsigned char *)malloc(n * 4 + 2 * pad);
                memset(outraw, CANARY, n * 4 + 2 * pad);
                out = (float *)(void *)(outraw + pad);
                r = acem_merge(&opt, rule, "arena.t", R, C, T, base, (const float *const *)c.f, out, arena, N, NULL,
                               &err);
                CHECK(r == ACEM_OK, "%s/%s %zux%zu: merge with exactly N=%zu bytes: %d %s", mname(m),
                      acem_rule_name(rule), R, C, N, (int)r, err.message);
                for (i = 0; i < (size_t)(arena - raw); ++i) bad += raw[i] != CANARY;
                for (i = (size_t)(arena - raw) + N; i < N + 2 * pad + 64; ++i) bad += raw[i] != CANARY;
                CHECK(bad == 0, "%s/%s %zux%zu: %d bytes outside the arena changed", mname(m), acem_rule_name(rule), R,
                      C, bad);
                for (i = 0; i < pad; ++i) outbad += (outraw[i] != CANARY) + (outraw[pad + n * 4 + i] != CANARY);
                CHECK(outbad == 0, "%s/%s: %d bytes around out changed", mname(m), acem_rule_name(rule), outbad);
                for (t = 0; t < T; ++t)
                    CHECK(memcmp(copy + t * n, c.f[t], n * 4) == 0, "%s: expert %zu modified", mname(m), t);
                /* same through init/feed/finish with exactly N */
                r = lib_layer(&opt, rule, "arena.t", R, C, T, NULL, (const float *const *)c.f, NULL, out, arena, N,
                              NULL, &err);
                CHECK(r == ACEM_OK, "%s/%s: layer API with exactly N bytes: %s", mname(m), acem_rule_name(rule),
                      err.message);
                /* N - 1 bytes */
                if (N > 0) {
                    memset(&err, 0, sizeof err);
                    r = acem_layer_init(&L, &opt, rule, "arena.t", R, C, T, arena, N - 1, &err);
                    CHECK(r == ACEM_ERR_ARENA_TOO_SMALL, "%s/%s %zux%zu: N-1 bytes gives %d", mname(m),
                          acem_rule_name(rule), R, C, (int)r);
                    CHECK(err.code == ACEM_ERR_ARENA_TOO_SMALL && err.bytes_required == N,
                          "%s/%s: err.code %d bytes_required %zu (N = %zu)", mname(m), acem_rule_name(rule),
                          (int)err.code, err.bytes_required, N);
                    CHECK(strstr(err.message, "arena.t") != NULL, "%s: arena message names the tensor: '%s'", mname(m),
                          err.message);
                    memset(&err, 0, sizeof err);
                    r = acem_merge(&opt, rule, "arena.t", R, C, T, base, (const float *const *)c.f, out, arena, N - 1,
                                   NULL, &err);
                    CHECK(r == ACEM_ERR_ARENA_TOO_SMALL && err.bytes_required == N,
                          "%s/%s: acem_merge with N-1: %d, bytes_required %zu", mname(m), acem_rule_name(rule), (int)r,
                          err.bytes_required);
                }
                free(raw);
                free(outraw);
                free(base);
                free(copy);
                tc_free(&c);
            }
}

/* ---- 6. determinism ---------------------------------------------------------- */
static void test_determinism(void) {
    int m;
    for (m = 0; m < ACEM_METHOD_COUNT; ++m) {
        tcase c;
        acem_options opt;
        size_t R = 14, C = 11, n = R * C, T = 4, t, N;
        float *o1 = (float *)malloc(n * 4), *o2 = (float *)malloc(n * 4);
        void *raw, *arena;
        acem_error err;
        acem_result r1, r2;
        rnd_seed(2024 + (uint64_t)m);
        tc_init(&c, R, C, T);
        for (t = 0; t < T; ++t) gen_matrix(c.f[t], R, C, K_GAUSS, pow(10.0, -(double)t * 0.5));
        memset(&opt, 0, sizeof opt);
        opt.method = (acem_method)m;
        opt.seed = 77;
        acem_layer_bytes(&opt, ACEM_RULE_METHOD, R, C, T, &N);
        arena = aligned_block(N, &raw);
        memset(arena, 0, N);
        r1 = acem_merge(&opt, ACEM_RULE_METHOD, "det", R, C, T, NULL, (const float *const *)c.f, o1, arena, N, NULL,
                        &err);
        memset(arena, 0xA5, N); /* a dirty arena must not matter */
        r2 = acem_merge(&opt, ACEM_RULE_METHOD, "det", R, C, T, NULL, (const float *const *)c.f, o2, arena, N, NULL,
                        &err);
        CHECK(r1 == ACEM_OK && r2 == ACEM_OK && memcmp(o1, o2, n * 4) == 0, "%s: two runs bitwise identical",
              mname(m));
        r2 = lib_layer(&opt, ACEM_RULE_METHOD, "det", R, C, T, NULL, (const float *const *)c.f, NULL, o2, arena, N,
                       NULL, &err);
        CHECK(r2 == ACEM_OK && memcmp(o1, o2, n * 4) == 0, "%s: acem_merge and init/feed/finish bitwise identical",
              mname(m));
        free(raw);
        free(o1);
        free(o2);
        tc_free(&c);
    }
}

/* ---- 6b. the fused in-memory path against the streaming path ---------------
   acem_merge runs the element-wise rules in one blocked pass over all experts;
   acem_layer_feed streams them one at a time. Both must give bitwise the same
   output, the same error and the same message, for every element-wise method
   and the mean rule, any T, odd sizes (vector tails, chunk edges), base NULL
   or not, out == base, and data that exercises each branch of TIES's
   threshold selection (sampled bracket, ties at its ends, missed bracket,
   overflowing candidates). */
static void fill_kind(float *x, size_t n, int kind, double scale, const float *base) {
    size_t i;
    for (i = 0; i < n; ++i) {
        double v;
        switch (kind) {
        case 0: v = rnd_gauss(); break;
        case 1: v = rnd_unif() < 0.35 ? 0.0 : rnd_gauss(); break;                         /* exact zeros */
        case 2: v = (double)(1 + rnd_below(4)) * (rnd_unif() < 0.5 ? -0.5 : 0.5); break; /* heavy ties */
        case 3: v = rnd_gauss() * ((i / 5000) % 3 == 0 ? 100.0 : 1.0); break;             /* blocks of scale */
        case 4: v = (i % 16 == 8) ? 1.0 : 1e-3 * rnd_gauss(); break;        /* the sample sees other values */
        default: v = (i % 16 == 8) ? ((i / 16) % 2 ? 1e-6 : 1e6) : rnd_gauss(); break; /* a bracket too wide */
        }
        x[i] = (float)(v * scale) + (base ? base[i] : 0.0f);
    }
}
static acem_result merge_pair(const acem_options *o, acem_rule rule, size_t R, size_t C, size_t T, const float *base,
                              const float *const *ex, float *out_fused, float *out_stream, acem_error *ef,
                              acem_error *es, acem_result *rs) {
    size_t need = 0;
    void *raw, *arena;
    acem_result rf;
    acem_layer_bytes(o, rule, R, C, T, &need);
    arena = aligned_block(need, &raw);
    memset(ef, 0, sizeof *ef);
    memset(es, 0, sizeof *es);
    rf = acem_merge(o, rule, "fused.t", R, C, T, base, ex, out_fused, arena, need, NULL, ef);
    *rs = lib_layer(o, rule, "fused.t", R, C, T, base, ex, base, out_stream, arena, need, NULL, es);
    free(raw);
    return rf;
}
static void test_fused_streaming(void) {
    static const size_t sizes[] = {1, 7, 8, 9, 31, 4097, 16383, 16385, 40000, 100003};
    static const size_t Ts[] = {1, 2, 5};
    static const int methods[] = {ACEM_AVERAGE, ACEM_TASK_ARITHMETIC, ACEM_TIES, ACEM_DARE_TA, ACEM_DARE_TIES, -1};
    size_t si, ti, t;
    int mi, cs = 0;
    for (si = 0; si < sizeof sizes / sizeof *sizes; ++si)
        for (ti = 0; ti < 3; ++ti)
            for (mi = 0; mi < 6; ++mi) {
                size_t n = sizes[si], T = Ts[ti], R = n, C = 1;
                int hasb, kind = (cs / 2) % 6;
                acem_rule rule = methods[mi] < 0 ? ACEM_RULE_MEAN : ACEM_RULE_METHOD;
                acem_options o;
                memset(&o, 0, sizeof o);
                o.method = methods[mi] < 0 ? ACEM_ACE : (acem_method)methods[mi];
                o.density = (cs % 3 == 0) ? 0.5 : 0.0;
                o.drop = (cs % 4 == 1) ? 0.9 : 0.0;
                o.seed = (uint64_t)cs;
                if (n % 5 == 0) { R = n / 5; C = 5; }
                for (hasb = 0; hasb < 2; ++hasb) {
                    float *ex[5], *base = NULL, *of = (float *)malloc(n * 4), *os = (float *)malloc(n * 4), *alias;
                    acem_error ef, es;
                    acem_result rf, rs;
                    rnd_seed(9000 + (uint64_t)cs);
                    if (hasb) { base = (float *)malloc(n * 4); fill_kind(base, n, 0, 0.02, NULL); }
                    for (t = 0; t < T; ++t) {
                        ex[t] = (float *)malloc(n * 4);
                        fill_kind(ex[t], n, kind, 0.01 * (double)(t + 1), base);
                    }
                    memset(of, 0xA5, n * 4);
                    memset(os, 0x5A, n * 4);
                    rf = merge_pair(&o, rule, R, C, T, base, (const float *const *)ex, of, os, &ef, &es, &rs);
                    CHECK(rf == ACEM_OK && rs == ACEM_OK && memcmp(of, os, n * 4) == 0,
                          "fused vs streaming: %s rule %s n %zu T %zu base %d kind %d: %d/%d, %s", mname(o.method),
                          acem_rule_name(rule), n, T, hasb, kind, (int)rf, (int)rs,
                          rf || rs ? ef.message : "outputs differ");
                    if (hasb) { /* out == base: the same bits again */
                        alias = (float *)malloc(n * 4);
                        memcpy(alias, base, n * 4); /* a copy of base: the same deltas */
                        {
                            size_t need = 0;
                            void *raw, *arena;
                            acem_layer_bytes(&o, rule, R, C, T, &need);
                            arena = aligned_block(need, &raw);
                            rf = acem_merge(&o, rule, "fused.t", R, C, T, alias, (const float *const *)ex, alias, arena,
                                            need, NULL, &ef);
                            free(raw);
                        }
                        CHECK(rf == ACEM_OK && memcmp(alias, os, n * 4) == 0,
                              "fused with out == base: %s n %zu T %zu kind %d: %d", mname(o.method), n, T, kind, (int)rf);
                        free(alias);
                    }
                    /* a non-finite value: the same error and message from both paths */
                    if (n >= 7) {
                        size_t te = T > 1 ? 1 : 0, pos = n - 3;
                        float keep = ex[te][pos];
                        ex[te][pos] = (cs % 2) ? (float)NAN : (float)INFINITY;
                        if (T > 2) ex[T - 1][1] = (float)NAN; /* a later expert fails too, earlier in the tensor */
                        rf = merge_pair(&o, rule, R, C, T, base, (const float *const *)ex, of, os, &ef, &es, &rs);
                        CHECK(rf == ACEM_ERR_NONFINITE && rs == ACEM_ERR_NONFINITE && strcmp(ef.message, es.message) == 0,
                              "non-finite: %s n %zu T %zu base %d: fused %d '%s', streaming %d '%s'", mname(o.method), n,
                              T, hasb, (int)rf, ef.message, (int)rs, es.message);
                        CHECK(strstr(ef.message, "fused.t") && strstr(ef.message, te ? "expert 1" : "expert 0"),
                              "non-finite message names tensor and expert: '%s'", ef.message);
                        ex[te][pos] = keep;
                        if (T > 2) ex[T - 1][1] = 0.5f;
                    }
                    for (t = 0; t < T; ++t) free(ex[t]);
                    free(base);
                    free(of);
                    free(os);
                    ++cs;
                }
            }
}

/* TIES's threshold: the one-pass selection (sampled bracket, candidates) gives
   exactly the three-pass radix selection's value, on data built to reach each
   of its branches. (White-box: calls the two internal selections.) */
static void test_ties_select_exact(void) {
    static const size_t sizes[] = {32768, 40000, 65536, 262147};
    static const double dens[] = {0.2, 0.05, 0.5, 0.9, 0.999};
    size_t si, t, i;
    int kind, di, m;
    for (m = ACEM_TIES; m <= ACEM_DARE_TIES; m += ACEM_DARE_TIES - ACEM_TIES)
        for (si = 0; si < 4; ++si)
            for (kind = 0; kind < 7; ++kind)
                for (di = 0; di < 5; ++di) {
                    size_t n = sizes[si], need = 0;
                    float *x = (float *)malloc(n * 4), *b = (float *)malloc(n * 4);
                    acem_options o;
                    acem_layer L;
                    acem_error err;
                    void *raw, *arena;
                    int bad = 0;
                    uint32_t fast, slow;
                    memset(&o, 0, sizeof o);
                    o.method = (acem_method)m;
                    o.density = dens[di];
                    rnd_seed(777 + (uint64_t)(si * 100 + (size_t)kind * 10 + (size_t)di));
                    fill_kind(b, n, 0, 0.02, NULL);
                    if (kind < 6) fill_kind(x, n, kind, 0.01, b);
                    else for (i = 0; i < n; ++i) x[i] = b[i]; /* every delta zero */
                    acem_layer_bytes(&o, ACEM_RULE_METHOD, n, 1, 3, &need);
                    arena = aligned_block(need, &raw);
                    acem_layer_init(&L, &o, ACEM_RULE_METHOD, "sel.t", n, 1, 3, arena, need, &err);
                    for (t = 0; t < 2; ++t) {
                        const float *xp = x;
                        acem__ties_select(&L, &xp, t ? NULL : b, t, 1, &fast, &bad);
                        slow = acem__f2u(acem__ties_threshold(&L, acem__dare_key(&L, t), x, t ? NULL : b));
                        CHECK(!bad && fast == slow, "%s select n %zu kind %d density %g base %d: %08x vs %08x",
                              mname(m), n, kind, dens[di], !t, (unsigned)fast, (unsigned)slow);
                    }
                    { /* three experts selected together (one pass over base and them) */
                        const float *xs[3];
                        uint32_t th3[3];
                        xs[0] = x; xs[1] = b; xs[2] = x;
                        acem__ties_select(&L, xs, b, 0, 3, th3, &bad);
                        for (t = 0; t < 3; ++t) {
                            slow = acem__f2u(acem__ties_threshold(&L, acem__dare_key(&L, t), xs[t], b));
                            CHECK(!bad && th3[t] == slow, "%s group select n %zu kind %d density %g expert %zu: %08x vs %08x",
                                  mname(m), n, kind, dens[di], t, (unsigned)th3[t], (unsigned)slow);
                        }
                    }
                    free(raw);
                    free(x);
                    free(b);
                }
}

/* TIES's capture of a group of experts read together (the AVX2 path of the
   selection pass) gives the same counts and candidates, in the same order, as
   the capture of one expert after another (a group of one, then the scalar
   tail); with room for few candidates it stops early and the per-expert calls
   finish. (White-box; the thresholds themselves are checked against the
   three-pass selection above.) */
static void test_ties_capture_group(void) {
#if defined(ACEM__EW_AVX2)
    static const size_t sizes[] = {0, 7, 512, 513, 4096, 16384, 20011};
    size_t si, ng, g, room, i;
    for (si = 0; si < sizeof sizes / sizeof *sizes; ++si)
        for (ng = 1; ng <= ACEM__TIES_G; ++ng)
            for (room = 0; room < 3; ++room) {
                size_t n = sizes[si], cap = room == 0 ? n + 8 : room == 1 ? n / 16 + 8 : 600;
                float *x[ACEM__TIES_G], *b = (float *)malloc((n + 1) * 4);
                uint32_t lo[ACEM__TIES_G], hi[ACEM__TIES_G], *c1 = (uint32_t *)malloc(ACEM__TIES_G * cap * 4),
                                                              *c2 = (uint32_t *)malloc(ACEM__TIES_G * cap * 4);
                acem__cap h1[ACEM__TIES_G], h2[ACEM__TIES_G];
                const float *xc[ACEM__TIES_G];
                int hasb = (int)((si + ng) % 2), same = 1;
                size_t done;
                rnd_seed(4242 + si * 100 + ng * 10 + room);
                fill_kind(b, n, 0, 0.02, NULL);
                for (g = 0; g < ng; ++g) {
                    float a = 0.01f * (float)(g + 1), l = a * 0.8f, u = a * (1.0f + 0.1f * (float)g);
                    x[g] = (float *)malloc((n + 1) * 4);
                    fill_kind(x[g], n, g == 3 ? 3 : 0, a, hasb ? b : NULL);
                    memcpy(&lo[g], &l, 4);
                    memcpy(&hi[g], &u, 4);
                    xc[g] = x[g];
                }
                memset(h1, 0, sizeof h1);
                memset(h2, 0, sizeof h2);
                for (g = 0; g < ng; ++g) {
                    h1[g].cand = c1 + g * cap; h1[g].cap = cap;
                    h2[g].cand = c2 + g * cap; h2[g].cap = cap;
                    acem__ties_capture2(&h1[g], x[g], hasb ? b : NULL, n, lo[g], hi[g]);
                }
                done = acem__ties_capture2_group(h2, xc, ng, hasb ? b : NULL, n, lo, hi);
                for (g = 0; g < ng; ++g)
                    acem__ties_capture2(&h2[g], x[g] + done, hasb ? b + done : NULL, n - done, lo[g], hi[g]);
                for (g = 0; g < ng; ++g) {
                    same &= h1[g].lt == h2[g].lt && h1[g].le_hi == h2[g].le_hi && h1[g].stored == h2[g].stored &&
                            h1[g].overflow == h2[g].overflow;
                    for (i = 0; same && i < h1[g].stored; ++i) same &= c1[g * cap + i] == c2[g * cap + i];
                }
                CHECK(same && done % 8 == 0 && done <= n && (room != 0 || n < 512 || done + 8 > n),
                      "capture of %zu experts together, n %zu room %zu base %d: done %zu, counts or candidates differ",
                      ng, n, cap, hasb, done);
                for (g = 0; g < ng; ++g) free(x[g]);
                free(b); free(c1); free(c2);
            }
#endif
}

/* ---- 7. sequence and option errors; 8. non-finite input ---------------------- */
static int names_tensor(const acem_error *e, const char *name) { return strstr(e->message, name) != NULL; }

static void test_errors(void) {
    static unsigned char arena[1 << 20];
    int m;
    acem_options opt, res;
    acem_error err;
    acem_result r;
    acem_layer L;
    tcase c;
    size_t t;
    float out[8 * 6];
    /* defaults made explicit */
    memset(&opt, 0, sizeof opt);
    r = acem_options_resolve(&opt, &res, &err);
    CHECK(r == ACEM_OK && res.method == ACEM_ACE && res.eps == 1e-2 && res.tau == 0.3 && res.k_frac == 0.3 &&
              res.lambda == 1.0 && res.density == 0.2 && res.drop == 0.5,
          "resolve defaults (ACE)");
    opt.method = ACEM_TASK_ARITHMETIC;
    r = acem_options_resolve(&opt, &res, &err);
    CHECK(r == ACEM_OK && res.lambda == 0.3, "task-arithmetic default lambda 0.3 (got %g)", res.lambda);
    opt.method = ACEM_DARE_TA;
    r = acem_options_resolve(&opt, &res, &err);
    CHECK(r == ACEM_OK && res.lambda == 0.3, "dare-ta default lambda 0.3 (got %g)", res.lambda);
    opt.method = ACEM_DARE_TIES;
    r = acem_options_resolve(&opt, &res, &err);
    CHECK(r == ACEM_OK && res.lambda == 1.0, "dare-ties default lambda 1 (got %g)", res.lambda);

    rnd_seed(8);
    tc_init(&c, 8, 6, 3);
    for (t = 0; t < 3; ++t) gen_matrix(c.f[t], 8, 6, K_GAUSS, 0.1);
    for (m = 0; m < ACEM_METHOD_COUNT; ++m) {
        int np, p;
        memset(&opt, 0, sizeof opt);
        opt.method = (acem_method)m;
        /* finish before all feeds */
        r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "seq.tensor", 8, 6, 3, arena, sizeof arena, &err);
        CHECK(r == ACEM_OK, "%s: init: %s", mname(m), err.message);
        acem_layer_feed(&L, c.f[0], NULL, &err);
        acem_layer_feed(&L, c.f[1], NULL, &err);
        memset(&err, 0, sizeof err);
        r = acem_layer_finish(&L, NULL, out, NULL, &err);
        CHECK(r == ACEM_ERR_SEQUENCE && err.code == ACEM_ERR_SEQUENCE, "%s: finish after 2 of 3 feeds: %d", mname(m),
              (int)r);
        CHECK(names_tensor(&err, "seq.tensor"), "%s: sequence message names the tensor: '%s'", mname(m), err.message);
        /* too many feeds */
        r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "seq.tensor", 8, 6, 3, arena, sizeof arena, &err);
        np = acem_layer_passes(&L);
        CHECK(np == 1 || np == 2, "%s: passes %d", mname(m), np);
        for (p = 0; p < np; ++p)
            for (t = 0; t < 3; ++t) {
                r = acem_layer_feed(&L, c.f[t], NULL, &err);
                CHECK(r == ACEM_OK, "%s: feed pass %d expert %zu: %s", mname(m), p, t, err.message);
            }
        memset(&err, 0, sizeof err);
        r = acem_layer_feed(&L, c.f[0], NULL, &err);
        CHECK(r == ACEM_ERR_SEQUENCE && names_tensor(&err, "seq.tensor"), "%s: one feed too many: %d '%s'", mname(m),
              (int)r, err.message);
        /* after the extra feed the layer is failed or still finishable; but a
           fresh, complete run finishes, and feeding after finish is refused */
        r = lib_layer(&opt, ACEM_RULE_METHOD, "seq.tensor", 8, 6, 3, NULL, (const float *const *)c.f, NULL, out, arena,
                      sizeof arena, NULL, &err);
        CHECK(r == ACEM_OK, "%s: complete run: %s", mname(m), err.message);
        r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "seq.tensor", 8, 6, 3, arena, sizeof arena, &err);
        for (p = 0; p < np; ++p)
            for (t = 0; t < 3; ++t) acem_layer_feed(&L, c.f[t], NULL, &err);
        r = acem_layer_finish(&L, NULL, out, NULL, &err);
        CHECK(r == ACEM_OK, "%s: finish", mname(m));
        r = acem_layer_feed(&L, c.f[0], NULL, &err);
        CHECK(r == ACEM_ERR_SEQUENCE, "%s: feed after finish: %d", mname(m), (int)r);

        /* non-finite input */
        {
            float bad[8 * 6], bbase[8 * 6];
            const float *ex[3];
            float vals[3];
            int v;
            vals[0] = (float)NAN;
            vals[1] = (float)INFINITY;
            vals[2] = -(float)INFINITY;
            for (v = 0; v < 3; ++v) {
                memcpy(bad, c.f[1], sizeof bad);
                bad[17] = vals[v];
                ex[0] = c.f[0]; ex[1] = bad; ex[2] = c.f[2];
                r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "nf.layer", 8, 6, 3, arena, sizeof arena, &err);
                acem_layer_feed(&L, ex[0], NULL, &err);
                memset(&err, 0, sizeof err);
                r = acem_layer_feed(&L, ex[1], NULL, &err);
                CHECK(r == ACEM_ERR_NONFINITE && err.code == ACEM_ERR_NONFINITE && names_tensor(&err, "nf.layer"),
                      "%s: non-finite (%g) in expert 1 at feed: %d '%s'", mname(m), (double)vals[v], (int)r,
                      err.message);
                memset(&err, 0, sizeof err);
                r = acem_merge(&opt, ACEM_RULE_METHOD, "nf.layer", 8, 6, 3, NULL, ex, out, arena, sizeof arena, NULL,
                               &err);
                CHECK(r == ACEM_ERR_NONFINITE && names_tensor(&err, "nf.layer"), "%s: acem_merge non-finite: %d '%s'",
                      mname(m), (int)r, err.message);
            }
            /* NaN in the base: every delta is NaN there */
            memcpy(bbase, c.f[0], sizeof bbase);
            bbase[3] = (float)NAN;
            ex[0] = c.f[0]; ex[1] = c.f[1]; ex[2] = c.f[2];
            memset(&err, 0, sizeof err);
            r = acem_merge(&opt, ACEM_RULE_METHOD, "nf.base", 8, 6, 3, bbase, ex, out, arena, sizeof arena, NULL, &err);
            CHECK(r == ACEM_ERR_NONFINITE && names_tensor(&err, "nf.base"), "%s: NaN in base: %d '%s'", mname(m),
                  (int)r, err.message);
        }
    }
    /* invalid options */
    {
        struct { acem_method m; double density, drop, eps; const char *what; } bad[] = {
            {ACEM_TIES, 1.5, 0, 0, "density 1.5"},
            {ACEM_DARE_TIES, -0.1, 0, 0, "density -0.1"},
            {ACEM_DARE_TA, 0, 1.0, 0, "drop 1.0"},
            {ACEM_DARE_TIES, 0, 1.5, 0, "drop 1.5"},
            {ACEM_DARE_TA, 0, -0.2, 0, "drop -0.2"},
            {ACEM_ACE, 0, 0, -1e-3, "eps -1e-3"},
        };
        size_t b, need;
        for (b = 0; b < sizeof bad / sizeof bad[0]; ++b) {
            memset(&opt, 0, sizeof opt);
            opt.method = bad[b].m;
            opt.density = bad[b].density;
            opt.drop = bad[b].drop;
            opt.eps = bad[b].eps;
            memset(&err, 0, sizeof err);
            r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "opt.tensor", 8, 6, 3, arena, sizeof arena, &err);
            CHECK(r == ACEM_ERR_INVALID_ARGUMENT && err.code == ACEM_ERR_INVALID_ARGUMENT,
                  "%s (%s): layer_init gives %d", bad[b].what, mname(bad[b].m), (int)r);
            CHECK(names_tensor(&err, "opt.tensor"), "%s: message names the tensor: '%s'", bad[b].what, err.message);
            memset(&err, 0, sizeof err);
            r = acem_merge(&opt, ACEM_RULE_METHOD, "opt.tensor", 8, 6, 3, NULL, (const float *const *)c.f, out, arena,
                           sizeof arena, NULL, &err);
            CHECK(r == ACEM_ERR_INVALID_ARGUMENT && names_tensor(&err, "opt.tensor"), "%s: acem_merge gives %d '%s'",
                  bad[b].what, (int)r, err.message);
            r = acem_options_resolve(&opt, &res, &err);
            CHECK(r == ACEM_ERR_INVALID_ARGUMENT, "%s: options_resolve gives %d", bad[b].what, (int)r);
            r = acem_layer_bytes(&opt, ACEM_RULE_METHOD, 8, 6, 3, &need);
            CHECK(r == ACEM_ERR_INVALID_ARGUMENT, "%s: layer_bytes gives %d", bad[b].what, (int)r);
        }
        memset(&opt, 0, sizeof opt);
        opt.method = ACEM_METHOD_COUNT;
        r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "opt.tensor", 8, 6, 3, arena, sizeof arena, &err);
        CHECK(r == ACEM_ERR_INVALID_ARGUMENT, "unknown method: %d", (int)r);
    }
    tc_free(&c);
}

int main(void) {
    test_reference_self();
    test_spec_vectors();
    test_ace_special();
    test_ace_random();
    test_elementwise();
    test_dare_streams();
    test_matrix_methods();
    test_rules_and_base();
    test_tensor_rules();
    test_regex();
    test_arena();
    test_determinism();
    test_fused_streaming();
    test_ties_select_exact();
    test_ties_capture_group();
    test_errors();
    CHECK(n_skipped * 20 <= n_compared + n_skipped, "too many cases skipped as ill-posed: %d of %d", n_skipped,
          n_compared + n_skipped);
    printf("test_merge: ACE cases gated %d, ungated %d; compared %d; skipped as ill-posed in f32 %d\n", n_gated,
           n_ungated, n_compared, n_skipped);
    return TEST_END("test_merge");
}
