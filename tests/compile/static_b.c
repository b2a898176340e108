/* tests/compile/static_b.c - second ACEM_STATIC translation unit (see
   static_a.c); holds main. */
#define ACEM_STATIC
#define ACEM_IMPLEMENTATION
#include "acem.h"

#include <stdio.h>
#include <string.h>

int static_a_check(void);

int main(void) {
    int a = static_a_check();
    int b = acem_f32_to_f16(1.0f) == 0x3c00 &&
            strcmp(acem_result_string(ACEM_OK), "ok") == 0 &&
            strcmp(acem_method_name(ACEM_ACE), "ace") == 0;
    printf("static_a %s, static_b %s\n", a ? "ok" : "FAILED", b ? "ok" : "FAILED");
    return !(a && b);
}
