/* bench/rows.h - the rows a benchmark contributes to the one table of `make bench`
   (bench/run.sh), and the two helpers every benchmark program needs (a wall
   clock and a 64-byte-aligned allocation that exits on failure). When the
   environment names a file in ACEM_BENCH_ROWS, each bench_row() call appends
   one tab-separated line to it:

     section  operation  shape  acem  reference  ratio  threads  target  note

   ratio: > 1 means acem is better (reference time / acem time; for memory,
   reference bytes / acem bytes; against a bandwidth limit, limit time / acem
   time). target: the least ratio the performance issue asks for (0: none). */
#ifndef ACEM_BENCH_ROWS_H
#define ACEM_BENCH_ROWS_H
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__GNUC__)
#define BENCH_MAYBE_UNUSED __attribute__((unused))
#else
#define BENCH_MAYBE_UNUSED
#endif

/* wall-clock seconds (monotonic) */
BENCH_MAYBE_UNUSED static double bench_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* n bytes aligned to 64 (free() releases them); on failure: a message naming
   the program and exit status 2 */
BENCH_MAYBE_UNUSED static void *bench_alloc(const char *prog, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0 || !p) {
        fprintf(stderr, "%s: out of memory (%zu bytes)\n", prog, n);
        exit(2);
    }
    return p;
}

static void bench_row(const char *section, const char *op, const char *shape, const char *acem,
                      const char *ref, double ratio, int threads, double target, const char *note) {
    const char *path = getenv("ACEM_BENCH_ROWS");
    FILE *f;
    if (!path || !*path || !(f = fopen(path, "a"))) return;
    fprintf(f, "%s\t%s\t%s\t%s\t%s\t%.3f\t%d\t%.2f\t%s\n", section, op, shape, acem, ref, ratio, threads, target,
            note ? note : "");
    fclose(f);
}
#endif
