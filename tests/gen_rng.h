/* tests/gen_rng.h - the random numbers of the CLI test generators (cli_gen.c,
   cli_lora.c): SplitMix64, a uniform in (0, 1) and a Box-Muller normal. One
   stream per program, g_rng its state (a generator reseeds it to make a
   tensor's values independent of the order it is written in). */
#ifndef ACEM_TESTS_GEN_RNG_H
#define ACEM_TESTS_GEN_RNG_H
#include <math.h>
#include <stdint.h>

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static double uniform(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()); }
#endif
