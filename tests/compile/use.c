/* tests/compile/use.c - compile-matrix program (C99, C11, -Wconversion, clang).
   Includes acem.h with the implementation and calls a handful of functions: every
   method on a small problem, the streaming API with an exact-size arena, a kernel,
   dtype conversions, names and regexes. Exits non-zero if anything is off; the
   real checks are in tests/test_*.c. Must itself stay warning-free under
   -Wall -Wextra -Wpedantic -Wconversion. */
#define ACEM_IMPLEMENTATION
#include "acem.h"

#include <stdio.h>
#include <string.h>

enum { R = 6, C = 5, T = 3 };
static double arena[1 << 14]; /* 128 KiB */
static int bad = 0;

#define EXPECT(cond, what)                                             \
    do {                                                               \
        if (!(cond)) {                                                 \
            printf("use.c:%d: %s\n", __LINE__, what);                 \
            bad++;                                                     \
        }                                                              \
    } while (0)

static float pattern(size_t i, size_t t) {
    unsigned h = (unsigned)(i * 2654435761u + t * 40503u + 12345u);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return (float)(h % 2001u) / 1000.0f - 1.0f;
}

static int all_finite(const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (!(x[i] - x[i] == 0.0f)) return 0;
    return 1;
}

int main(void) {
    static float base[R * C], expert[T][R * C], out[R * C], out2[R * C];
    const float *experts[T];
    static const char *const exclude[] = {"lm_head", "^score\\."};
    acem_options opt, resolved;
    acem_layer_info info;
    acem_error err;
    acem_result r;
    size_t i, t, need = 0;
    int m;

    for (i = 0; i < (size_t)(R * C); ++i) {
        base[i] = pattern(i, 99);
        for (t = 0; t < (size_t)T; ++t)
            expert[t][i] = base[i] + 0.1f * (float)(t + 1) * pattern(i, t);
    }
    for (t = 0; t < (size_t)T; ++t) experts[t] = expert[t];

    memset(&opt, 0, sizeof opt);
    r = acem_options_resolve(&opt, &resolved, &err);
    EXPECT(r == ACEM_OK, "acem_options_resolve of the zero options");
    EXPECT(resolved.method == ACEM_ACE, "default method is ACE");
    EXPECT(resolved.eps > 0.0 && resolved.tau > 0.0 && resolved.k_frac > 0.0,
           "resolved defaults are positive");

    for (m = 0; m < (int)ACEM_METHOD_COUNT; ++m) {
        opt.method = (acem_method)m;
        r = acem_layer_bytes(&opt, ACEM_RULE_METHOD, R, C, T, &need);
        if (r != ACEM_OK || need > sizeof arena) {
            printf("%s: acem_layer_bytes: %s, %lu bytes\n", acem_method_name(opt.method),
                   acem_result_string(r), (unsigned long)need);
            bad++;
            continue;
        }
        r = acem_merge(&opt, ACEM_RULE_METHOD, "blk.0.w", R, C, T, base, experts, out,
                       arena, sizeof arena, &info, &err);
        if (r != ACEM_OK) {
            printf("%s: acem_merge: %s: %s\n", acem_method_name(opt.method),
                   acem_result_string(r), err.message);
            bad++;
            continue;
        }
        EXPECT(all_finite(out, (size_t)(R * C)), "merged tensor is finite");
        EXPECT(acem_method_from_name(acem_method_name(opt.method)) == opt.method,
               "method name round trip");
    }

    /* the streaming API, with exactly acem_layer_bytes() bytes */
    {
        acem_layer L;
        int pass;
        opt.method = ACEM_ACE;
        r = acem_layer_bytes(&opt, ACEM_RULE_METHOD, R, C, T, &need);
        EXPECT(r == ACEM_OK && need > 0 && need <= sizeof arena, "acem_layer_bytes (ACE)");
        r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "blk.0.w", R, C, T, arena,
                            need - 1, &err);
        EXPECT(r == ACEM_ERR_ARENA_TOO_SMALL && err.bytes_required == need,
               "arena one byte short: ACEM_ERR_ARENA_TOO_SMALL with bytes_required");
        r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "blk.0.w", R, C, T, arena, need,
                            &err);
        EXPECT(r == ACEM_OK, "acem_layer_init with the exact size");
        if (r == ACEM_OK) {
            for (pass = 0; pass < acem_layer_passes(&L); ++pass)
                for (t = 0; t < (size_t)T; ++t)
                    EXPECT(acem_layer_feed(&L, expert[t], base, &err) == ACEM_OK,
                           "acem_layer_feed");
            r = acem_layer_finish(&L, base, out2, &info, &err);
            EXPECT(r == ACEM_OK, "acem_layer_finish");
            r = acem_merge(&opt, ACEM_RULE_METHOD, "blk.0.w", R, C, T, base, experts, out,
                           arena, sizeof arena, &info, &err);
            EXPECT(r == ACEM_OK && memcmp(out, out2, sizeof out) == 0,
                   "streamed and in-memory ACE agree bitwise");
        }
    }

    /* rules and regular expressions */
    opt.exclude = exclude;
    opt.n_exclude = 2;
    EXPECT(acem_tensor_rule(&opt, "model.lm_head.weight", 2) == ACEM_RULE_KEEP, "excluded");
    EXPECT(acem_tensor_rule(&opt, "score.weight", 2) == ACEM_RULE_KEEP, "excluded (^)");
    EXPECT(acem_tensor_rule(&opt, "blk.0.score.weight", 2) == ACEM_RULE_METHOD, "not excluded");
    EXPECT(acem_tensor_rule(&opt, "blk.0.bias", 1) == ACEM_RULE_MEAN, "1-D: mean");
    EXPECT(acem_regex_check("a(b|c)*[0-9]+$") == ACEM_OK, "valid regex");
    EXPECT(acem_regex_check("a(b") != ACEM_OK, "invalid regex");
    EXPECT(acem_regex_search("^blk\\.[0-9]+\\.w$", "blk.12.w"), "regex match");
    EXPECT(!acem_regex_search("^blk\\.[0-9]+\\.w$", "xblk.12.w"), "regex no match");
    EXPECT(acem_method_from_name("task_arithmetic") == ACEM_TASK_ARITHMETIC, "alias");
    EXPECT(acem_method_from_name("no-such-method") == ACEM_METHOD_COUNT, "unknown method");
    EXPECT(strcmp(acem_rule_name(ACEM_RULE_KEEP), "") != 0, "rule name");
    EXPECT(strcmp(acem_result_string(ACEM_ERR_ARENA_TOO_SMALL), "arena too small") == 0,
           "result string");

    /* a kernel: C = A * I */
    {
        const float A[6] = {1, 2, 3, 4, 5, 6}, I3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        float Cm[6] = {0, 0, 0, 0, 0, 0};
        acem_gemm(0, 0, 2, 3, 3, 1.0f, A, 3, I3, 3, 0.0f, Cm, 3, NULL);
        EXPECT(memcmp(A, Cm, sizeof A) == 0, "acem_gemm by the identity");
    }

    /* dtypes */
    EXPECT(acem_f32_to_f16(1.0f) == 0x3c00, "f32 -> f16");
    EXPECT(acem_f16_to_f32(0xc000) == -2.0f, "f16 -> f32");
    EXPECT(acem_f32_to_bf16(1.0f) == 0x3f80, "f32 -> bf16");
    EXPECT(acem_bf16_to_f32(0x4040) == 3.0f, "bf16 -> f32");

#ifndef ACEM_NO_MALLOC
    opt.method = ACEM_TIES;
    r = acem_merge_alloc(&opt, ACEM_RULE_METHOD, "blk.0.w", R, C, T, base, experts, out,
                         &info, &err);
    EXPECT(r == ACEM_OK && all_finite(out, (size_t)(R * C)), "acem_merge_alloc");
#endif

    printf("use.c: %s\n", bad ? "FAILED" : "ok");
    return bad != 0;
}
