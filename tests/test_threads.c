/* tests/test_threads.c - caller-driven parallelism: the parallel_for contract,
   bitwise-identical outputs for every number of workers, arena growth only
   with workers (never with T). */
#define _POSIX_C_SOURCE 200809L
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "testing.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A plain pthread parallel_for: one thread per index beyond the first, the
   caller runs index 0. (The CLI keeps a pool; this is the simplest correct
   implementation of the contract.) */
typedef struct { void (*fn)(void *, size_t); void *ctx; size_t i; } job;
static void *thread_main(void *p) {
    job *j = (job *)p;
    j->fn(j->ctx, j->i);
    return NULL;
}
static size_t calls = 0;
static void pfor(void *user, void (*fn)(void *, size_t), void *ctx, size_t count) {
    pthread_t th[16];
    job jobs[16];
    size_t i;
    (void)user;
    calls++;
    for (i = 1; i < count && i < 16; ++i) {
        jobs[i].fn = fn; jobs[i].ctx = ctx; jobs[i].i = i;
        pthread_create(&th[i], NULL, thread_main, &jobs[i]);
    }
    fn(ctx, 0);
    for (i = 1; i < count && i < 16; ++i) pthread_join(th[i], NULL);
}
/* a scheduler that runs indices in reverse order on the calling thread */
static void pfor_reverse(void *user, void (*fn)(void *, size_t), void *ctx, size_t count) {
    (void)user;
    while (count--) fn(ctx, count);
}

static unsigned long long rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* one merge of T experts through acem_merge or, when streaming, through
   init / feed (every pass) / finish; base NULL: the experts are deltas */
static int merge_with(acem_method m, size_t R, size_t C, size_t T, size_t workers,
                      void (*pf)(void *, void (*)(void *, size_t), void *, size_t), const float *base, float **ex,
                      float *out, acem_layer_info *info, int streaming) {
    acem_options o;
    acem_layer L;
    size_t bytes, t;
    void *arena;
    acem_error err;
    acem_result r;
    int p;
    memset(&o, 0, sizeof o);
    o.method = m;
    o.parallel_for = pf;
    o.n_workers = workers;
    if (m == ACEM_ACE) o.flags = ACEM_FLAG_ALWAYS_GATE; /* exercise the refinement too */
    if (acem_layer_bytes(&o, ACEM_RULE_METHOD, R, C, T, &bytes) != ACEM_OK) return -1;
    arena = malloc(bytes ? bytes : 1);
    if (!streaming)
        r = acem_merge(&o, ACEM_RULE_METHOD, "blk.1.w", R, C, T, base, (const float *const *)ex, out, arena, bytes,
                       info, &err);
    else {
        r = acem_layer_init(&L, &o, ACEM_RULE_METHOD, "blk.1.w", R, C, T, arena, bytes, &err);
        for (p = 0; r == ACEM_OK && p < acem_layer_passes(&L); ++p)
            for (t = 0; r == ACEM_OK && t < T; ++t) r = acem_layer_feed(&L, ex[t], base, &err);
        if (r == ACEM_OK) r = acem_layer_finish(&L, base, out, info, &err);
    }
    free(arena);
    if (r != ACEM_OK) printf("%s merge failed: %s\n", streaming ? "streaming" : "acem_merge", err.message);
    return (int)r;
}

int main(void) {
    /* 520 x 700: several recursion levels of the Cholesky and the solves, cuts on
       48-row boundaries with 1..4 workers */
    static const size_t shapes[][2] = {{300, 270}, {270, 300}, {20, 600}, {520, 700}};
    size_t si, t, i;
    int m;
    for (si = 0; si < sizeof shapes / sizeof shapes[0]; ++si) {
        size_t R = shapes[si][0], C = shapes[si][1], T = 3;
        float *ex[3], *ref = (float *)malloc(R * C * 4), *got = (float *)malloc(R * C * 4);
        for (t = 0; t < T; ++t) {
            ex[t] = (float *)malloc(R * C * 4);
            for (i = 0; i < R * C; ++i) ex[t][i] = frand() * (float)(t + 1) * 0.1f;
        }
        for (m = 0; m < (int)ACEM_METHOD_COUNT; ++m) {
            acem_layer_info info;
            size_t w;
            int ok = merge_with((acem_method)m, R, C, T, 1, NULL, NULL, ex, ref, &info, 0) == 0;
            CHECK(ok, "%s %zux%zu: serial merge failed", acem_method_name((acem_method)m), R, C);
            for (w = 1; w <= 4; ++w) {
                calls = 0;
                ok = merge_with((acem_method)m, R, C, T, w, pfor, NULL, ex, got, &info, 0) == 0;
                CHECK(ok && memcmp(ref, got, R * C * 4) == 0,
                      "%s %zux%zu: %zu workers differ from the serial merge", acem_method_name((acem_method)m), R, C, w);
                if (w > 1 && R * C > 16384) /* more than one chunk for the element-wise rules */
                    CHECK(calls > 0, "%s %zux%zu: parallel_for never called with %zu workers",
                          acem_method_name((acem_method)m), R, C, w);
            }
            ok = merge_with((acem_method)m, R, C, T, 3, pfor_reverse, NULL, ex, got, &info, 0) == 0;
            CHECK(ok && memcmp(ref, got, R * C * 4) == 0, "%s %zux%zu: reverse scheduling differs",
                  acem_method_name((acem_method)m), R, C);
        }
        for (t = 0; t < T; ++t) free(ex[t]);
        free(ref);
        free(got);
    }
    { /* element-wise rules on the streaming path (init/feed/finish) with a base,
         against acem_merge's fused path, for 1-4 workers and reversed scheduling */
        size_t n = 300 * 270, T = 3, w;
        float *ex[3], *base = (float *)malloc(n * 4), *ref = (float *)malloc(n * 4), *got = (float *)malloc(n * 4);
        for (i = 0; i < n; ++i) base[i] = frand();
        for (t = 0; t < T; ++t) {
            ex[t] = (float *)malloc(n * 4);
            for (i = 0; i < n; ++i) ex[t][i] = base[i] + frand() * (float)(t + 1) * 0.1f;
        }
        for (m = ACEM_AVERAGE; m <= ACEM_DARE_TIES; ++m) {
            int ok = merge_with((acem_method)m, 300, 270, T, 1, NULL, base, ex, ref, NULL, 1) == 0;
            CHECK(ok, "%s: serial streaming merge failed", acem_method_name((acem_method)m));
            for (w = 1; w <= 4; ++w) {
                calls = 0;
                ok = merge_with((acem_method)m, 300, 270, T, w, w == 3 ? pfor_reverse : pfor, base, ex, got, NULL, 1) == 0;
                CHECK(ok && memcmp(ref, got, n * 4) == 0, "%s: streaming with %zu workers differs",
                      acem_method_name((acem_method)m), w);
                if (w > 1 && w != 3) CHECK(calls > 0, "%s: streaming never called parallel_for", acem_method_name((acem_method)m));
                ok = merge_with((acem_method)m, 300, 270, T, w, w == 3 ? pfor_reverse : pfor, base, ex, got, NULL, 0) == 0;
                CHECK(ok && memcmp(ref, got, n * 4) == 0, "%s: acem_merge with %zu workers differs from streaming",
                      acem_method_name((acem_method)m), w);
            }
        }
        for (t = 0; t < T; ++t) free(ex[t]);
        free(base);
        free(ref);
        free(got);
    }
    { /* arena: grows with workers, not with T */
        acem_options o;
        size_t b1, b2, b8;
        memset(&o, 0, sizeof o);
        o.parallel_for = pfor;
        o.n_workers = 1;
        acem_layer_bytes(&o, ACEM_RULE_METHOD, 64, 96, 2, &b1);
        acem_layer_bytes(&o, ACEM_RULE_METHOD, 64, 96, 50, &b8);
        CHECK(b1 == b8, "ACE arena grows with T: %zu vs %zu", b1, b8);
        o.n_workers = 2;
        acem_layer_bytes(&o, ACEM_RULE_METHOD, 64, 96, 2, &b2);
        CHECK(b2 > b1, "per-worker scratch not counted: %zu vs %zu", b2, b1);
    }
    return TEST_END("test_threads");
}
