/* tests/compile/decl_only.c - includes only the declarations of acem.h (no
   ACEM_IMPLEMENTATION) and is compiled with -Werror, as C99 and as C++11; linked
   with impl.c (compiled as C). Valid C and C++. */
#include "acem.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    float d0[4] = {1, 2, 3, 4}, d1[4] = {3, 2, 1, 0}, out[4];
    const float *deltas[2];
    static double arena[4096];
    size_t need = 0;
    acem_options opt;
    acem_error err;
    acem_layer_info info;
    acem_result r;
    int ok;
    deltas[0] = d0;
    deltas[1] = d1;
    memset(&opt, 0, sizeof opt);
    opt.method = ACEM_TASK_ARITHMETIC;
    opt.lambda = 1.0;
    r = acem_layer_bytes(&opt, ACEM_RULE_METHOD, 4, 1, 2, &need);
    ok = r == ACEM_OK && need <= sizeof arena;
    r = acem_merge(&opt, ACEM_RULE_METHOD, "bias", 4, 1, 2, NULL, deltas, out, arena,
                   sizeof arena, &info, &err);
    ok = ok && r == ACEM_OK && out[0] == 4.0f && out[3] == 4.0f;
    ok = ok && strcmp(acem_result_string(ACEM_ERR_SEQUENCE), "call out of sequence") == 0;
    ok = ok && acem_method_from_name("dare-ties") == ACEM_DARE_TIES;
    printf("decl_only: %s\n", ok ? "ok" : "FAILED");
    return !ok;
}
