/* tests/testing.h - the tiny harness every test program uses.
   CHECK(cond, fmt, ...) counts one test; a failure prints file:line and the
   message. TEST_END() prints "<program>: N passed, N failed" and returns the
   exit status (non-zero when anything failed). tests/run.sh sums the programs'
   lines into the suite's closing line "N passed, N failed". */
#ifndef ACEM_TESTING_H
#define ACEM_TESTING_H
#include <stdio.h>
#include <math.h>

static int test__passed = 0, test__failed = 0;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            test__passed++;                                                 \
        } else {                                                            \
            test__failed++;                                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                     \
            printf(__VA_ARGS__);                                            \
            printf("\n");                                                   \
            fflush(stdout);                                                 \
        }                                                                   \
    } while (0)

#define TEST_END(progname)                                                  \
    (printf("%s: %d passed, %d failed\n", (progname), test__passed,         \
            test__failed),                                                  \
     test__failed ? 1 : 0)

/* relative Frobenius distance ||a-b|| / max(||b||, tiny) in double */
static inline double test_rel_err_fd(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    size_t i;
    for (i = 0; i < n; ++i) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    if (den < 1e-300) return sqrt(num);
    return sqrt(num / den);
}
#endif
