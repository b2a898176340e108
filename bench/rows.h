/* bench/rows.h - the rows a benchmark contributes to the one table of `make bench`
   (bench/run.sh). When the environment names a file in ACEM_BENCH_ROWS, each
   bench_row() call appends one tab-separated line to it:

     section  operation  shape  acem  reference  ratio  threads  target  note

   ratio: > 1 means acem is better (reference time / acem time; for memory,
   reference bytes / acem bytes; against a bandwidth limit, limit time / acem
   time). target: the least ratio the performance issue asks for (0: none). */
#ifndef ACEM_BENCH_ROWS_H
#define ACEM_BENCH_ROWS_H
#include <stdio.h>
#include <stdlib.h>

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
