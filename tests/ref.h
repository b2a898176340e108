/* tests/ref.h - plain float64 reference implementation of every acem merge rule.
   Independent of acem.h on purpose: straightforward loops, no streaming, no
   Cholesky / Sherman-Morrison, own Jacobi eigensolver and one-sided Jacobi SVD.
   C99, libc + libm only. Used by tests/test_merge.c as the differential oracle. */
#ifndef ACEM_REF_H
#define ACEM_REF_H
#include <stddef.h>
#include <stdint.h>

/* method numbering = acem_method */
enum {
    REF_ACE = 0, REF_AVERAGE, REF_TASK_ARITHMETIC, REF_TIES, REF_DARE_TA,
    REF_DARE_TIES, REF_ACTMAT, REF_ISO_C, REF_TSV_M, REF_METHOD_COUNT
};
#define REF_FLAG_NO_GATE     1u
#define REF_FLAG_ALWAYS_GATE 2u
#define REF_FLAG_NO_REFINE   4u

typedef struct ref_opts {
    int method;
    double eps, tau, k_frac, lambda, density, drop; /* all explicit, no defaults */
    uint64_t seed;
    unsigned flags;
} ref_opts;

typedef struct ref_info {
    int gated, refined;
    double gamma, sigma_iso;
    size_t k;           /* ACE: refinement rank k (0 when no refinement runs);
                           Iso-C: r; TSV-M: r/T */
    size_t directions;  /* ACE / Iso-C: singular directions actually added */
} ref_info;

/* ref_opts with the library's documented defaults for method m made explicit */
ref_opts ref_defaults(int method);

/* D[t]: R x C row-major delta of expert t. out (R*C) receives lambda*M.
   stream: DARE stream id (ref_name_stream of the tensor name). info may be NULL.
   Returns 0 on success, -1 on invalid input / allocation failure / singular. */
int ref_merge(const ref_opts *o, size_t R, size_t C, size_t T,
              const double *const *D, uint64_t stream, double *out, ref_info *info);

/* non-zero: round the stored accumulators (ACE A0 and B, ACTMat Gram and N)
   to float, as an f32 implementation must (conditioning probe) */
extern int ref_f32_storage;

/* mean-of-deltas rule: out[i] = lambda * (1/T) sum_t D[t][i] */
void ref_mean_rule(size_t n, size_t T, const double *const *D, double lambda,
                   double *out);

/* FNV-1a 64 of the name; NULL -> 0 */
uint64_t ref_name_stream(const char *name);
/* the DARE uniform in [0,1) for expert t and flat index idx */
double ref_dare_u(uint64_t seed, uint64_t stream, size_t t, size_t idx);

/* ---- linear algebra used by the reference (exposed for self-tests) -------- */
/* cyclic Jacobi: A (n x n symmetric, row-major, destroyed). w: eigenvalues in
   descending order; V (n x n, row-major): eigenvector i in column i. 0 = ok. */
int ref_syev(size_t n, double *A, double *w, double *V);
/* thin SVD of A (m x n row-major), r = min(m,n): U m x r, s r (descending),
   Vt r x n (row-major, row i = v_i^T). 0 = ok. */
int ref_svd(size_t m, size_t n, const double *A, double *U, double *s, double *Vt);
/* solve X A = B for X (B, X: m x n, A: n x n) by Gaussian elimination with
   partial pivoting on A^T X^T = B^T. 0 = ok, -1 = singular. */
int ref_solve_right(size_t m, size_t n, const double *A, const double *B, double *X);

#endif
