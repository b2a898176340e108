/* bench/bench_lora.c - LoRA merging: the exact low-rank path (acem_lora_merge)
   against the dense path (each adapter expanded to a dense R x C delta with
   acem_gemm and streamed through the layer API, as `acem merge` does for rules
   without a low-rank form), for T = 4 rank-16 adapters on LLaMA-7B-shaped
   layers (4096 x 4096 attention, 11008 x 4096 up/gate, 4096 x 11008 down),
   methods ACE and task arithmetic, single thread.

   Every (shape, method, path) runs in its own child process (fork), so the
   max RSS reported is that run's alone (wait4). Columns:
     time     wall seconds of the merge (dense: including the delta expansion,
              for every pass the rule makes over the experts)
     arena    the library's size query: acem_lora_bytes / acem_layer_bytes
     held     what the caller must hold besides the arena: the factors
              (sum r (R + C) floats) for the low-rank path; the base-free
              streaming of the dense path holds one dense delta (R x C f32)
              and the merged output (R x C f32)
     RSS      the child's max resident set size (includes the inputs: the
              adapters' factors, and for the dense path its R x C buffers)
     diff     relative Frobenius difference of the two paths' merged deltas
              (computed in a separate child; "-" when skipped)
   Usage: bench_lora [--quick] [--no-dense-ace-wide]
     --quick              only the 4096 x 4096 layer
     --no-dense-ace-wide  skip the dense ACE path on the 11008-column layer
                          (a C x C = 11008^2 f32 Gram, ~0.5 GB, and C^3 work)
   The table goes to stdout (make bench-lora also writes it to
   bench/results/lora-<date>.txt). */
#define _DEFAULT_SOURCE
#define ACEM_IMPLEMENTATION
#include "acem.h"
#include "rows.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T 4
#define RANK 16

static double now(void) { return bench_wall(); }
static void *xmalloc(size_t n) { return bench_alloc("bench_lora", n); }
static uint64_t g_rng;
static float nrand(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    double u, v;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    u = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
    z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    v = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

typedef struct adapters { size_t R, C; float *A[T], *B[T]; float scale[T]; } adapters;
static void make(adapters *a, size_t R, size_t C) {
    size_t t, i;
    static const double mag[T] = {1.0, 0.3, 2.0, 0.7};
    a->R = R; a->C = C;
    g_rng = 0x243F6A8885A308D3ull;
    for (t = 0; t < T; ++t) {
        a->A[t] = (float *)xmalloc(RANK * C * sizeof(float));
        a->B[t] = (float *)xmalloc(R * RANK * sizeof(float));
        for (i = 0; i < RANK * C; ++i) a->A[t][i] = nrand() * 0.02f;
        for (i = 0; i < R * RANK; ++i) a->B[t][i] = nrand() * (float)(0.01 * mag[t]);
        a->scale[t] = 2.0f; /* alpha 32 / r 16 */
    }
}

/* low-rank: the merged delta as B (R x q) A (q x C) into out (if not NULL) */
static double run_low(const adapters *a, acem_method m, size_t *arena_bytes, float *out) {
    acem_options o;
    acem_lora ex[T];
    acem_lora_out lo;
    acem_error err;
    size_t ranks[T], t;
    void *arena;
    double t0, el;
    memset(&o, 0, sizeof o);
    o.method = m;
    for (t = 0; t < T; ++t) { ranks[t] = RANK; ex[t].rank = RANK; ex[t].scale = a->scale[t]; ex[t].A = a->A[t]; ex[t].B = a->B[t]; }
    if (acem_lora_bytes(&o, a->R, a->C, T, ranks, arena_bytes) != ACEM_OK) { fprintf(stderr, "lora_bytes failed\n"); exit(2); }
    arena = xmalloc(*arena_bytes);
    t0 = now();
    if (acem_lora_merge(&o, "bench", a->R, a->C, T, ex, arena, *arena_bytes, &lo, NULL, &err) != ACEM_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(2);
    }
    el = now() - t0;
    if (out) {
        void *w = xmalloc(acem_gemm_work_bytes(a->R, a->C, lo.rank));
        acem_gemm(0, 0, a->R, a->C, lo.rank, 1.0f, lo.B, lo.rank, lo.A, a->C, 0.0f, out, a->C, w);
    }
    return el;
}

/* dense: one expanded delta at a time through the layer API (base NULL: deltas) */
static double run_dense(const adapters *a, acem_method m, size_t *arena_bytes, float *out) {
    acem_options o;
    acem_layer L;
    acem_error err;
    size_t R = a->R, C = a->C, t;
    void *arena, *w;
    float *D = (float *)xmalloc(R * C * sizeof(float)), *M = out ? out : (float *)xmalloc(R * C * sizeof(float));
    int pass;
    double t0, el;
    memset(&o, 0, sizeof o);
    o.method = m;
    if (acem_layer_bytes(&o, ACEM_RULE_METHOD, R, C, T, arena_bytes) != ACEM_OK) { fprintf(stderr, "layer_bytes failed\n"); exit(2); }
    arena = xmalloc(*arena_bytes);
    w = xmalloc(acem_gemm_work_bytes(R, C, RANK));
    t0 = now();
    if (acem_layer_init(&L, &o, ACEM_RULE_METHOD, "bench", R, C, T, arena, *arena_bytes, &err) != ACEM_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(2);
    }
    for (pass = 0; pass < acem_layer_passes(&L); ++pass)
        for (t = 0; t < T; ++t) {
            acem_gemm(0, 0, R, C, RANK, a->scale[t], a->B[t], RANK, a->A[t], C, 0.0f, D, C, w);
            if (acem_layer_feed(&L, D, NULL, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(2); }
        }
    if (acem_layer_finish(&L, NULL, M, NULL, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(2); }
    el = now() - t0;
    return el;
}

typedef struct result { double time; size_t arena; double diff; } result;

/* runs fn in a child; returns its result and max RSS (KiB) */
static int in_child(int what, size_t R, size_t C, acem_method m, result *res, long *rss_kib) {
    int fd[2], st;
    pid_t pid;
    struct rusage ru;
    if (pipe(fd) != 0) return -1;
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        adapters a;
        result r;
        close(fd[0]);
        memset(&r, 0, sizeof r);
        make(&a, R, C);
        if (what == 0) r.time = run_low(&a, m, &r.arena, NULL);
        else if (what == 1) r.time = run_dense(&a, m, &r.arena, NULL);
        else { /* both, compare */
            float *x = (float *)xmalloc(R * C * sizeof(float)), *y = (float *)xmalloc(R * C * sizeof(float));
            double num = 0, den = 0;
            size_t i;
            run_low(&a, m, &r.arena, x);
            run_dense(&a, m, &r.arena, y);
            for (i = 0; i < R * C; ++i) { double d = (double)x[i] - y[i]; num += d * d; den += (double)y[i] * y[i]; }
            r.diff = den > 0 ? sqrt(num / den) : sqrt(num);
        }
        if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], res, sizeof *res) != (ssize_t)sizeof *res) { close(fd[0]); wait4(pid, &st, 0, &ru); return -1; }
    close(fd[0]);
    if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) return -1;
    *rss_kib = ru.ru_maxrss;
    return 0;
}

int main(int argc, char **argv) {
    static const size_t shapes[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    static const acem_method methods[2] = {ACEM_ACE, ACEM_TASK_ARITHMETIC};
    int quick = 0, skip_wide = 0, s, k;
    time_t tt = time(NULL);
    char date[32];
    for (s = 1; s < argc; ++s) {
        if (!strcmp(argv[s], "--quick")) quick = 1;
        else if (!strcmp(argv[s], "--no-dense-ace-wide")) skip_wide = 1;
        else { fprintf(stderr, "usage: bench_lora [--quick] [--no-dense-ace-wide]\n"); return 1; }
    }
    strftime(date, sizeof date, "%Y-%m-%d", localtime(&tt));
    printf("bench_lora %s: acem %s, T = %d adapters of rank %d, single thread, %s build\n", date, ACEM_VERSION_STRING, T, RANK,
#if defined(ACEM_NO_SIMD)
           "scalar"
#elif defined(__AVX512F__)
           "AVX-512"
#elif defined(__AVX2__)
           "AVX2"
#else
           "portable"
#endif
    );
    printf("low-rank = acem_lora_merge (exact, no R x C or C x C matrix); dense = expand each delta (acem_gemm), layer API\n");
    printf("held = factors (low-rank) / one R x C delta + the R x C output (dense); RSS = the run's child process\n\n");
    printf("%-14s %-16s %-8s %10s %12s %12s %12s %11s\n", "layer R x C", "method", "path", "time s", "arena MiB", "held MiB",
           "max RSS MiB", "diff");
    for (s = 0; s < (quick ? 1 : 3); ++s)
        for (k = 0; k < 2; ++k) {
            size_t R = shapes[s][0], C = shapes[s][1];
            result lo, de, cmp;
            long rl = 0, rd = 0, rc = 0;
            int have_dense = !(skip_wide && methods[k] == ACEM_ACE && C > 4096);
            char shape[32];
            snprintf(shape, sizeof shape, "%zu x %zu", R, C);
            if (in_child(0, R, C, methods[k], &lo, &rl) != 0) { printf("%-14s %-16s low-rank FAILED\n", shape, acem_method_name(methods[k])); continue; }
            printf("%-14s %-16s %-8s %10.3f %12.1f %12.1f %12.1f %11s\n", shape, acem_method_name(methods[k]), "low-rank", lo.time,
                   lo.arena / 1048576.0, (double)T * RANK * (R + C) * 4 / 1048576.0, rl / 1024.0, "");
            fflush(stdout);
            if (!have_dense) { printf("%-14s %-16s %-8s %10s   (skipped: --no-dense-ace-wide)\n", shape, acem_method_name(methods[k]), "dense", "-"); continue; }
            if (in_child(1, R, C, methods[k], &de, &rd) != 0) { printf("%-14s %-16s dense FAILED\n", shape, acem_method_name(methods[k])); continue; }
            if (in_child(2, R, C, methods[k], &cmp, &rc) != 0) cmp.diff = -1;
            printf("%-14s %-16s %-8s %10.3f %12.1f %12.1f %12.1f %11.2e\n", shape, acem_method_name(methods[k]), "dense", de.time,
                   de.arena / 1048576.0, 2.0 * R * C * 4 / 1048576.0, rd / 1024.0, cmp.diff);
            printf("%-14s %-16s %-8s %10.1fx %11.1fx\n", "", "", "ratio", de.time / (lo.time > 0 ? lo.time : 1e-9),
                   (double)de.arena / (double)(lo.arena ? lo.arena : 1));
            fflush(stdout);
            { /* make bench: the low-rank path against the dense path */
                char op[64], sh[64], a[32], r[32], note[96];
                snprintf(op, sizeof op, "lora %s", acem_method_name(methods[k]));
                snprintf(sh, sizeof sh, "%d x rank %d, %s", T, RANK, shape);
                snprintf(a, sizeof a, "%.3f s", lo.time);
                snprintf(r, sizeof r, "%.3f s dense", de.time);
                snprintf(note, sizeof note, "arena %.1f vs %.1f MiB", lo.arena / 1048576.0, de.arena / 1048576.0);
                bench_row("lora", op, sh, a, r, de.time / (lo.time > 0 ? lo.time : 1e-9), 1, 0, note);
            }
        }
    return 0;
}
