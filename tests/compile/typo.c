/* tests/compile/typo.c - the implementation macro misspelled (as in stb's own
   tests). This compiles, but must FAIL to link: acem_result_string is declared,
   never defined. A header that quietly defined its functions anyway would hide
   the mistake until a second TU defines them too. */
#define ACEM_IMPLEMENTAION
#include "acem.h"

#include <stdio.h>

int main(void) {
    puts(acem_result_string(ACEM_OK));
    return 0;
}
