/* tests/compile/freestanding.c - every hook defined: the implementation must
   compile with no libc headers at all (-ffreestanding -nostdinc, only the
   compiler's own <stddef.h> / <stdint.h>). */
#define ACEM_NO_STDIO
#define ACEM_NO_MALLOC
#define ACEM_ASSERT(x) ((void)0)
#define ACEM_MEMCPY __builtin_memcpy
#define ACEM_MEMSET __builtin_memset
#define ACEM_SQRT(x) __builtin_sqrt(x)
#define ACEM_LOG(x) __builtin_log(x)
#define ACEM_IMPLEMENTATION
#include "acem.h"

int freestanding_probe(void);
int freestanding_probe(void) { return (int)acem_method_from_name("iso-c"); }
