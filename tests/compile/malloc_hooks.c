/* tests/compile/malloc_hooks.c - ACEM_MALLOC / ACEM_FREE hooks: the allocating
   convenience function must go through them, freeing what it allocates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t n_malloc = 0, n_free = 0;
static void *counting_malloc(size_t sz, void *ctx) {
    (void)ctx;
    ++n_malloc;
    return malloc(sz);
}
static void counting_free(void *p, void *ctx) {
    (void)ctx;
    if (p) ++n_free;
    free(p);
}
#define ACEM_MALLOC(sz, ctx) counting_malloc(sz, ctx)
#define ACEM_FREE(p, ctx) counting_free(p, ctx)
#define ACEM_IMPLEMENTATION
#include "acem.h"

int main(void) {
    float d0[20], d1[20], out[20];
    const float *deltas[2];
    acem_options opt;
    acem_error err;
    acem_layer_info info;
    acem_result r;
    int i, ok;
    for (i = 0; i < 20; ++i) {
        d0[i] = (float)(i % 7) - 3.0f;
        d1[i] = (float)(i % 5) * 0.5f;
    }
    deltas[0] = d0;
    deltas[1] = d1;
    memset(&opt, 0, sizeof opt); /* ACE */
    r = acem_merge_alloc(&opt, ACEM_RULE_METHOD, "w", 4, 5, 2, NULL, deltas, out, &info,
                         &err);
    ok = r == ACEM_OK && n_malloc >= 1 && n_malloc == n_free;
    printf("malloc_hooks: %s (%s, %lu allocations, %lu frees)\n", ok ? "ok" : "FAILED",
           acem_result_string(r), (unsigned long)n_malloc, (unsigned long)n_free);
    return !ok;
}
