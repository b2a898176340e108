/* tests/compile/malloc_one_hook.c - ACEM_MALLOC without ACEM_FREE: "define both
   or neither", so this must not compile (an #error naming the macros). */
#include <stdlib.h>
#define ACEM_MALLOC(sz, ctx) malloc(sz)
#define ACEM_IMPLEMENTATION
#include "acem.h"

int main(void) { return 0; }
