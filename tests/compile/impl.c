/* tests/compile/impl.c - the one translation unit with the implementation, for
   the checks that link it with declarations-only code (decl_only.c, also
   compiled as C++) and for the exported-symbols check. */
#define ACEM_IMPLEMENTATION
#include "acem.h"
