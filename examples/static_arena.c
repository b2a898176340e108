/* examples/static_arena.c - firmware-style merging: no malloc, one static arena.

   Build:  cc -std=c99 -DACEM_NO_MALLOC examples/static_arena.c -lm   (or: make)

   Three experts of a tiny layer (weight 8 x 16, bias 16) are merged with ACE
   (the zero-valued options) through the streaming API: acem_tensor_rule picks
   the rule per tensor, acem_layer_bytes says how much of the arena a tensor
   needs, acem_layer_init / feed / finish do the work. The arena is reused for
   every tensor; acem keeps nothing between tensors. */
#ifndef ACEM_NO_MALLOC
#define ACEM_NO_MALLOC                 /* also fine as -DACEM_NO_MALLOC */
#endif
#define ACEM_IMPLEMENTATION
#include "../acem.h"

#include <stdio.h>
#include <string.h>

#define N_EXPERTS 3
/* Enough for this model in every build: the exact need depends on the shapes,
   the method and the SIMD kernels compiled in (about 16 KiB with AVX2 here,
   15.4 KiB scalar, more with AVX-512's wider tiles); the program checks it with
   acem_layer_bytes before use. */
#ifndef ARENA_BYTES
#define ARENA_BYTES 32768
#endif

static unsigned char arena[ARENA_BYTES];

/* the model: a base and three experts for each tensor */
static float w_base[8 * 16], w_expert[N_EXPERTS][8 * 16], w_merged[8 * 16];
static float b_base[16], b_expert[N_EXPERTS][16], b_merged[16];

typedef struct tensor {
    const char *name;
    size_t ndim, rows, cols;           /* a 1-D tensor of n is merged as n x 1 */
    const float *base, *expert[N_EXPERTS];
    float *merged;
} tensor;

/* Any deterministic values will do. These are small multiples of 2^-12, so the
   inputs are bit-identical in every build (no rounding, nothing to contract). */
static float small(unsigned i, unsigned mul, unsigned mod) {
    return (float)((int)((i * mul) % mod) - (int)(mod / 2)) / 4096.0f;
}

static void make_weights(void) {
    unsigned i, t;
    for (i = 0; i < 8 * 16; ++i) {
        w_base[i] = 8.0f * small(i, 7919u, 101u);
        for (t = 0; t < N_EXPERTS; ++t)
            w_expert[t][i] = w_base[i] + (float)(t + 1) * small(i + 17u * t, 31u, 41u);
    }
    for (i = 0; i < 16; ++i) {
        b_base[i] = small(i, 13u, 29u);
        for (t = 0; t < N_EXPERTS; ++t) b_expert[t][i] = b_base[i] + small(i + t, 5u, 7u);
    }
}

int main(void) {
    tensor model[2];
    acem_options opt;
    acem_error err;
    size_t k, i, t, most = 0;
    unsigned long hash = 2166136261ul;        /* FNV-1a over the merged floats */
    double sum = 0.0;

    make_weights();
    model[0].name = "layer.weight"; model[0].ndim = 2; model[0].rows = 8;  model[0].cols = 16;
    model[0].base = w_base;  model[0].merged = w_merged;
    model[1].name = "layer.bias";   model[1].ndim = 1; model[1].rows = 16; model[1].cols = 1;
    model[1].base = b_base;  model[1].merged = b_merged;
    for (t = 0; t < N_EXPERTS; ++t) {
        model[0].expert[t] = w_expert[t];
        model[1].expert[t] = b_expert[t];
    }

    memset(&opt, 0, sizeof opt);              /* zero = defaults: ACE */

    for (k = 0; k < 2; ++k) {
        tensor *x = &model[k];
        acem_rule rule = acem_tensor_rule(&opt, x->name, x->ndim);
        acem_layer L;
        acem_layer_info info;
        size_t need;
        int pass;

        if (acem_layer_bytes(&opt, rule, x->rows, x->cols, N_EXPERTS, &need) != ACEM_OK) {
            printf("%s: cannot size this tensor\n", x->name);
            return 1;
        }
        if (need > sizeof arena) {
            printf("%s: the arena is too small: %lu bytes needed, %lu available; "
                   "raise ARENA_BYTES\n", x->name, (unsigned long)need,
                   (unsigned long)sizeof arena);
            return 1;
        }
        if (need > most) most = need;

        if (acem_layer_init(&L, &opt, rule, x->name, x->rows, x->cols, N_EXPERTS,
                            arena, sizeof arena, &err) != ACEM_OK) {
            printf("%s\n", err.message);
            return 1;
        }
        for (pass = 0; pass < acem_layer_passes(&L); ++pass)
            for (t = 0; t < N_EXPERTS; ++t)
                if (acem_layer_feed(&L, x->expert[t], x->base, &err) != ACEM_OK) {
                    printf("%s\n", err.message);
                    return 1;
                }
        if (acem_layer_finish(&L, x->base, x->merged, &info, &err) != ACEM_OK) {
            printf("%s\n", err.message);
            return 1;
        }
        printf("%-13s %2lu x %-2lu  rule %-5s %5lu arena bytes  %d pass(es)%s\n",
               x->name, (unsigned long)x->rows, (unsigned long)x->cols,
               rule == ACEM_RULE_METHOD ? acem_method_name(opt.method) : acem_rule_name(rule),
               (unsigned long)need, acem_layer_passes(&L), info.gated ? "  (gated)" : "");

        for (i = 0; i < x->rows * x->cols; ++i) {
            unsigned char b[sizeof(float)];
            size_t j;
            memcpy(b, &x->merged[i], sizeof b);
            for (j = 0; j < sizeof b; ++j) hash = ((hash ^ b[j]) * 16777619ul) & 0xfffffffful;
            sum += x->merged[i];
        }
    }
    printf("checksum: sum %.6f, fnv1a %08lx; arena used %lu of %lu bytes\n", sum, hash,
           (unsigned long)most, (unsigned long)sizeof arena);
    return 0;
}
