/* tests/compile/static_a.c - first of two translation units that both include
   acem.h with ACEM_STATIC + ACEM_IMPLEMENTATION; linked with static_b.c they
   must not clash (every symbol of the implementation is private to its TU). */
#define ACEM_STATIC
#define ACEM_IMPLEMENTATION
#include "acem.h"

#include <string.h>

int static_a_check(void);

int static_a_check(void) {
    float d0[6] = {1, 2, 3, 4, 5, 6}, d1[6] = {3, 2, 1, 0, -1, -2}, out[6];
    const float *deltas[2];
    static double arena[4096];
    acem_options opt;
    acem_error err;
    acem_layer_info info;
    deltas[0] = d0;
    deltas[1] = d1;
    memset(&opt, 0, sizeof opt);
    opt.method = ACEM_AVERAGE;
    if (acem_merge(&opt, ACEM_RULE_METHOD, "a", 2, 3, 2, NULL, deltas, out, arena,
                   sizeof arena, &info, &err) != ACEM_OK)
        return 0;
    return out[0] == 2.0f && out[5] == 2.0f &&
           acem_method_from_name("ties") == ACEM_TIES;
}
