/* bench/bench_kernels.c - acem's kernels against OpenBLAS (CBLAS / LAPACKE), one
   thread, in the same process: each repetition times acem and then the
   reference, and the table reports the medians and their ratio.

     cc -O2 -march=native -I. -o build/bench_kernels bench/bench_kernels.c \
        -lopenblas -llapacke -lm
     OPENBLAS_NUM_THREADS=1 build/bench_kernels [reps] [filter]

   (bench/run.sh, i.e. make bench, runs it: with OPENBLAS_CORETYPE=SkylakeX
   and OPENBLAS_L2_SIZE unset on a CPU with AVX-512, OpenBLAS's AVX-512
   kernels, else OpenBLAS's own choice; each row also goes to make bench's
   table through bench/rows.h.)

   Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that other
   load on a shared machine does not count (both libraries run single-threaded
   in this thread). LAPACK routines are called column-major on the transposed
   problem (row-major lower = column-major upper), so that LAPACKE does not
   transpose. reps (default 5) repetitions per row; filter (comma-separated)
   keeps the rows whose operation name contains one of its parts. GFLOP/s use the standard counts: gemm 2mnk, syrk n^2 k,
   potrf n^3/3, trsm m n^2; syev rows are in seconds: top-k eigenpairs of a
   Gram matrix as the refinement computes them (vs ssyevd and vs ssyevr), the
   refinement's whole top-k SVD of F (vs sgesdd), all eigenpairs (vs ssyevd,
   and vs dsyevd: LAPACK in acem's precision); "syev top-k resid" rows put
   the time in context: the largest residual ||G v - l v|| / |l| of the top-k
   pairs, acem's against ssyevd's (ratio: theirs / acem's). "ratio" > 1 means
   acem is faster (more accurate). The acem build (AVX-512 / AVX2 / scalar) follows the compiler flags
   (-mno-avx512f -mavx2 -mfma, or -DACEM_NO_SIMD); the reference kernels follow
   OPENBLAS_CORETYPE, printed on the machine line. */
#define _POSIX_C_SOURCE 200809L
#define ACEM_IMPLEMENTATION
#include "acem.h"
#include "rows.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char *openblas_get_corename(void);
extern int openblas_get_num_threads(void);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static void *xmalloc(size_t n) { return bench_alloc("bench_kernels", n); }
static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform [-1, 1) */
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (float)((double)((rng * 0x2545F4914F6CDD1Dull) >> 40) * (2.0 / 16777216.0) - 1.0);
}
static float *frandom(size_t n) {
    float *p = (float *)xmalloc(n * sizeof(float));
    size_t i;
    for (i = 0; i < n; ++i) p[i] = frand();
    return p;
}
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof(double), cmpd);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}
/* relative Frobenius difference over the lower triangle (lower) or all */
static double reldiff(const float *x, const float *y, size_t m, size_t n, size_t ld, int lower) {
    double num = 0, den = 0;
    size_t i, j;
    for (i = 0; i < m; ++i)
        for (j = 0; j < (lower ? i + 1 : n); ++j) {
            double d = (double)x[i * ld + j] - (double)y[i * ld + j];
            num += d * d;
            den += (double)y[i * ld + j] * (double)y[i * ld + j];
        }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int reps = 5;
static const char *filter = NULL;
static const char *build_name(void) {
#if defined(ACEM_USE_CBLAS)
    return "cblas"; /* acem's merge kernels routed to the CBLAS backend */
#elif defined(ACEM_NO_SIMD)
    return "scalar";
#elif defined(__AVX512F__)
    return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2";
#else
    return "scalar";
#endif
}

/* one row: acem and reference closures selected by op code */
typedef struct {
    const char *op;
    int code;           /* see run() */
    size_t m, n, k;     /* shape parameters */
    int trans;
} row;

/* filter: comma-separated substrings of the operation names */
static int want(const char *op) {
    const char *f = filter;
    if (!f) return 1;
    while (*f) {
        size_t n = strcspn(f, ",");
        char part[64];
        snprintf(part, sizeof part, "%.*s", (int)(n < sizeof part ? n : sizeof part - 1), f);
        if (n && strstr(op, part)) return 1;
        f += n + (f[n] == ',');
    }
    return 0;
}

/* the least ratio the performance issue asks of a row (0: reported only) */
static double target_of(const char *op, const char *shape) {
    const char *b = build_name();
    if (!strcmp(b, "scalar") || !strcmp(b, "cblas") || strstr(op, "full") || strstr(op, "resid")) return 0;
    if (!strncmp(op, "gemm", 4) || !strncmp(op, "syrk", 4)) return !strcmp(b, "avx512") ? 1.0 : 0.9;
    if (!strncmp(op, "potrf", 5) || !strncmp(op, "trsm", 4)) return 1.0;
    if (!strncmp(op, "syev", 4)) return strstr(shape, "dsyevd") ? 0 : 1.0 / 1.5;
    return 0;
}

/* the summary table's section of this build's rows */
static void kernel_section(char *sec, size_t cap) {
#if defined(ACEM_USE_CBLAS)
    snprintf(sec, cap, "kernels, ACEM_USE_CBLAS%s (OpenBLAS %s)",
#ifdef ACEM_USE_LAPACK
             " + LAPACK",
#else
             "",
#endif
             openblas_get_corename());
#else
    snprintf(sec, cap, "kernels, %s build", build_name());
#endif
}
static void print_row(const char *op, const char *shape, double flops, double ta, double tr,
                      double err) {
    char a[32], r[32];
    if (flops > 0) {
        snprintf(a, sizeof a, "%.1f GF/s", flops / ta * 1e-9);
        snprintf(r, sizeof r, "%.1f GF/s", flops / tr * 1e-9);
    } else {
        snprintf(a, sizeof a, "%.3f s", ta);
        snprintf(r, sizeof r, "%.3f s", tr);
    }
    printf("| %-7s | %-14s | %-22s | %12s | %12s | %5.2f | %d | %.1e |\n", build_name(), op, shape, a, r,
           tr / ta, 1, err);
    fflush(stdout);
    {
        char sec[96], note[48];
        kernel_section(sec, sizeof sec);
        snprintf(note, sizeof note, "rel. diff %.1e", err);
        bench_row(sec, op, shape, a, r, tr / ta, 1, target_of(op, shape), note);
    }
}

/* gemm: C(m x n) = op(A) op(B); ta=1 means A is k x m */
static void bench_gemm(const char *op, int ta, size_t m, size_t n, size_t k) {
    float *A = frandom(m * k), *B = frandom(k * n);
    float *C1 = (float *)xmalloc(m * n * sizeof(float)), *C2 = (float *)xmalloc(m * n * sizeof(float));
    void *work = xmalloc(acem_gemm_work_bytes(m, n, k));
    size_t lda = ta ? m : k;
    double *t1 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t2 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    char shape[64];
    int r;
    for (r = 0; r < reps; ++r) {
        double t0 = now();
        acem_gemm(ta, 0, m, n, k, 1.0f, A, lda, B, n, 0.0f, C1, n, work);
        t1[r] = now() - t0;
        t0 = now();
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k,
                    1.0f, A, (int)lda, B, (int)n, 0.0f, C2, (int)n);
        t2[r] = now() - t0;
    }
    if (ta) snprintf(shape, sizeof shape, "D^T E, D %zux%zu", k, m);
    else snprintf(shape, sizeof shape, "%zux%zu * %zux%zu", m, k, k, n);
    print_row(op, shape, 2.0 * (double)m * (double)n * (double)k, median(t1, reps), median(t2, reps),
              reldiff(C1, C2, m, n, n, 0));
    free(A); free(B); free(C1); free(C2); free(work); free(t1); free(t2);
}

/* syrk: trans=1: C = D^T D with D rows x cols (n = cols); trans=0: C = D D^T (n = rows).
   full 0: the lower triangle (ACEM_SYRK_LOWER), what ssyrk computes and what
   a merge calls; full 1: acem_syrk's default, the whole symmetric C (one more
   pass over C, which ssyrk does not make: reported, no target) */
static void bench_syrk(const char *op, int trans, int full, size_t rows, size_t cols) {
    size_t n = trans ? cols : rows, k = trans ? rows : cols;
    float *D = frandom(rows * cols);
    float *C1 = (float *)xmalloc(n * n * sizeof(float)), *C2 = (float *)xmalloc(n * n * sizeof(float));
    void *work = xmalloc(acem_gemm_work_bytes(n, n, k));
    double *t1 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t2 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    char shape[64];
    int r;
    for (r = 0; r < reps; ++r) {
        double t0 = now();
        acem_syrk(trans | (full ? 0 : ACEM_SYRK_LOWER), n, k, 1.0f, D, cols, 0.0f, C1, n, work);
        t1[r] = now() - t0;
        t0 = now();
        cblas_ssyrk(CblasRowMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, (int)n, (int)k, 1.0f, D,
                    (int)cols, 0.0f, C2, (int)n);
        t2[r] = now() - t0;
    }
    snprintf(shape, sizeof shape, "%s, D %zux%zu", trans ? "D^T D" : "D D^T", rows, cols);
    print_row(op, shape, (double)n * (double)n * (double)k, median(t1, reps), median(t2, reps),
              reldiff(C1, C2, n, n, n, 1));
    free(D); free(C1); free(C2); free(work); free(t1); free(t2);
}

/* a well-conditioned SPD matrix: G G^T / n + I */
static float *spd(size_t n) {
    float *G = frandom(n * n), *A = (float *)xmalloc(n * n * sizeof(float));
    size_t i;
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)n, 1.0f / (float)n, G, (int)n, 0.0f, A,
                (int)n);
    for (i = 0; i < n; ++i) {
        size_t j;
        A[i * n + i] += 1.0f;
        for (j = i + 1; j < n; ++j) A[i * n + j] = A[j * n + i];
    }
    free(G);
    return A;
}

static void bench_potrf(size_t n) {
    float *A = spd(n), *X1 = (float *)xmalloc(n * n * sizeof(float)), *X2 = (float *)xmalloc(n * n * sizeof(float));
    double *t1 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t2 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    void *work = xmalloc(acem_gemm_work_bytes(n, n, n));
    char shape[64];
    size_t failed = 0;
    int r;
    for (r = 0; r < reps; ++r) {
        double t0;
        memcpy(X1, A, n * n * sizeof(float));
        memcpy(X2, A, n * n * sizeof(float));
        t0 = now();
        if (acem_potrf(n, X1, n, &failed, work) != ACEM_OK) fprintf(stderr, "acem_potrf failed at %zu\n", failed);
        t1[r] = now() - t0;
        t0 = now();
        if (LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)n, X2, (lapack_int)n) != 0)
            fprintf(stderr, "spotrf failed\n");
        t2[r] = now() - t0;
    }
    snprintf(shape, sizeof shape, "n=%zu", n);
    print_row("potrf", shape, (double)n * (double)n * (double)n / 3.0, median(t1, reps), median(t2, reps),
              reldiff(X1, X2, n, n, n, 1));
    free(A); free(X1); free(X2); free(t1); free(t2); free(work);
}

/* X L^T = B (trans=1) or X L = B (trans=0); B m x n, L n x n lower (a Cholesky factor) */
static void bench_trsm(int trans, size_t m, size_t n) {
    float *L = spd(n), *B = frandom(m * n);
    float *X1 = (float *)xmalloc(m * n * sizeof(float)), *X2 = (float *)xmalloc(m * n * sizeof(float));
    double *t1 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t2 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    void *work = xmalloc(acem_gemm_work_bytes(m, n, n));
    char shape[64];
    size_t i, j;
    int r;
    LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, L, (lapack_int)n);
    for (i = 0; i < n; ++i)
        for (j = i + 1; j < n; ++j) L[i * n + j] = 0.0f;
    for (r = 0; r < reps; ++r) {
        double t0;
        memcpy(X1, B, m * n * sizeof(float));
        memcpy(X2, B, m * n * sizeof(float));
        t0 = now();
        acem_trsm_rl(trans, m, n, L, n, X1, n, work);
        t1[r] = now() - t0;
        t0 = now();
        cblas_strsm(CblasRowMajor, CblasRight, CblasLower, trans ? CblasTrans : CblasNoTrans, CblasNonUnit,
                    (int)m, (int)n, 1.0f, L, (int)n, X2, (int)n);
        t2[r] = now() - t0;
    }
    snprintf(shape, sizeof shape, "%s, m=n=%zu", trans ? "X L^T = B" : "X L = B", n);
    print_row(trans ? "trsm_rl T" : "trsm_rl N", shape, (double)m * (double)n * (double)n, median(t1, reps),
              median(t2, reps), reldiff(X1, X2, m, n, n, 0));
    free(L); free(B); free(X1); free(X2); free(t1); free(t2); free(work);
}

/* D (rows x n) += a rank-8 component 30/(p+1) u_p v_p^T (u, v uniform in
   [-1, 1)): what a fine-tuning delta looks like (low rank plus noise), and
   what makes the Gram matrix's spectrum spiked: a few eigenvalues 1e3-1e5
   times the bulk, whose eigenvalues are then within 1e-3 of the largest of
   each other (one cluster for inverse iteration) */
static void add_spikes(float *D, size_t rows, size_t n) {
    float *u = frandom(rows * 8), *v = frandom(n * 8);
    size_t i, j, p;
    for (i = 0; i < rows; ++i)
        for (j = 0; j < n; ++j) {
            float s = 0;
            for (p = 0; p < 8; ++p) s += u[i * 8 + p] * v[j * 8 + p] * (float)(30.0 / (double)(p + 1));
            D[i * n + j] += s;
        }
    free(u); free(v);
}
/* the Gram matrix D^T D / rows (n x n, full) of a random D (rows x n), with
   spikes: plus add_spikes */
static float *gram_matrix(size_t rows, size_t n, int spikes) {
    float *D = frandom(rows * n), *G = (float *)xmalloc(n * n * sizeof(float));
    size_t i, j;
    if (spikes) add_spikes(D, rows, n);
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, (int)n, (int)rows, 1.0f / (float)rows, D, (int)n, 0.0f,
                G, (int)n);
    for (i = 0; i < n; ++i)
        for (j = i + 1; j < n; ++j) G[i * n + j] = G[j * n + i];
    free(D);
    return G;
}
/* relative difference of x against y (k doubles each) */
static double rel_dd(const double *x, const double *y, size_t k) {
    double num = 0, den = 0;
    size_t i;
    for (i = 0; i < k; ++i) {
        num += (x[i] - y[i]) * (x[i] - y[i]);
        den += y[i] * y[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}
/* relative difference of the first k of x (any order given by sx/sy steps) */
static double rel_vals(const double *x, long sx, const float *y, long sy, size_t k) {
    double num = 0, den = 0;
    size_t i;
    for (i = 0; i < k; ++i) {
        double a = x[(long)i * sx], b = (double)y[(long)i * sy];
        num += (a - b) * (a - b);
        den += a * a;
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* the largest eigen-residual of k pairs relative to their own eigenvalue,
   max ||G v - lambda v|| / |lambda| in f64 on the f32 G (n x n): vector c
   is V[c cs + i is], its eigenvalue w[c ws] (strides may be negative) */
static double eig_resid(size_t n, const float *G, size_t k, const void *V, int f32, long cs, long is,
                        const void *w, int wf32, long ws) {
    double worst = 0, *v = (double *)xmalloc(n * sizeof(double));
    size_t c, i, j;
    for (c = 0; c < k; ++c) {
        double lam = wf32 ? (double)((const float *)w)[(long)c * ws] : ((const double *)w)[(long)c * ws], num = 0;
        for (i = 0; i < n; ++i) {
            long o = (long)c * cs + (long)i * is;
            v[i] = f32 ? (double)((const float *)V)[o] : ((const double *)V)[o];
        }
        for (i = 0; i < n; ++i) {
            double t = -lam * v[i];
            for (j = 0; j < n; ++j) t += (double)G[i * n + j] * v[j];
            num += t * t;
        }
        if (lam != 0 && sqrt(num) / fabs(lam) > worst) worst = sqrt(num) / fabs(lam);
    }
    free(v);
    return worst;
}
static void print_resid_row(const char *shape, double ra, double rr) {
    char a[32], r[32], sec[96];
    snprintf(a, sizeof a, "%.1e", ra);
    snprintf(r, sizeof r, "%.1e", rr);
    printf("| %-7s | %-14s | %-22s | %12s | %12s | %5.0e | %d | %7s |\n", build_name(), "syev top-k resid", shape, a, r,
           rr / ra, 1, "-");
    fflush(stdout);
    kernel_section(sec, sizeof sec);
    bench_row(sec, "syev top-k resid", shape, a, r, rr / ra, 1, 0,
              "max ||G v - l v|| / |l| over the top k");
}

/* all eigenpairs of a Gram matrix: acem_syev (f64) against LAPACKE_ssyevd
   (f32) on the same matrix; error column: relative difference of the
   eigenvalues */
static void bench_syev(size_t rows, size_t n, int spikes) {
    float *G = gram_matrix(rows, n, spikes);
    float *W2 = (float *)xmalloc(n * n * sizeof(float)), *w2 = (float *)xmalloc(n * sizeof(float));
    double *W1 = (double *)xmalloc(n * n * sizeof(double)), *w1 = (double *)xmalloc(n * sizeof(double));
    void *work = xmalloc(acem_syev_work_bytes(n));
    double *W3 = (double *)xmalloc(n * n * sizeof(double)), *w3 = (double *)xmalloc(n * sizeof(double));
    double *t1 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t2 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    double *t3 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    char shape[64];
    size_t i;
    int r;
    for (r = 0; r < reps; ++r) {
        double t0;
        for (i = 0; i < n * n; ++i) W1[i] = W3[i] = G[i];
        memcpy(W2, G, n * n * sizeof(float));
        t0 = now();
        if (acem_syev(n, W1, n, w1, work) != ACEM_OK) fprintf(stderr, "acem_syev failed\n");
        t1[r] = now() - t0;
        t0 = now();
        if (LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)n, W2, (lapack_int)n, w2) != 0)
            fprintf(stderr, "ssyevd failed\n");
        t2[r] = now() - t0;
        t0 = now();
        if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)n, W3, (lapack_int)n, w3) != 0)
            fprintf(stderr, "dsyevd failed\n");
        t3[r] = now() - t0;
    }
    snprintf(shape, sizeof shape, "all, n=%zu%s vs ssyevd", n, spikes ? " spiked" : "");
    print_row("syev all", shape, 0, median(t1, reps), median(t2, reps), rel_vals(w1, 1, w2, 1, n));
    /* the same precision as acem_syev: LAPACK's own cost of working in f64 */
    snprintf(shape, sizeof shape, "all, n=%zu%s vs dsyevd", n, spikes ? " spiked" : "");
    print_row("syev all", shape, 0, median(t1, reps), median(t3, reps), rel_dd(w1, w3, n));
    free(G); free(W2); free(w2); free(W1); free(w1); free(W3); free(w3); free(work); free(t1); free(t2); free(t3);
}

/* What the refinement runs: the top k eigenpairs of the same Gram matrix
   (acem_syev_top, f64: all eigenvalues, k vectors) against LAPACKE_ssyevd
   (all pairs) and LAPACKE_ssyevr (range 'I': the top k pairs only) */
static void bench_syev_top(size_t rows, size_t n, size_t k, int spikes) {
    float *G = gram_matrix(rows, n, spikes);
    float *W2 = (float *)xmalloc(n * n * sizeof(float)), *w2 = (float *)xmalloc(n * sizeof(float));
    float *w3 = (float *)xmalloc(n * sizeof(float)), *Z3 = (float *)xmalloc(n * k * sizeof(float));
    lapack_int *isup = (lapack_int *)xmalloc(2 * n * sizeof(lapack_int)), m3 = 0;
    double *A = (double *)xmalloc(n * n * sizeof(double)), *w1 = (double *)xmalloc(n * sizeof(double));
    double *Vec = (double *)xmalloc(n * k * sizeof(double));
    void *ew = xmalloc(acem_syev_top_work_bytes(n));
    double *t1 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t2 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    double *t3 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t4 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    double *W4 = (double *)xmalloc(n * n * sizeof(double)), *w4 = (double *)xmalloc(n * sizeof(double));
    char shape[64];
    size_t i;
    int r;
    for (r = 0; r < reps; ++r) {
        double t0;
        for (i = 0; i < n * n; ++i) A[i] = W4[i] = G[i];
        t0 = now();
        if (acem_syev_top(n, A, n, k, w1, Vec, k, ew) != ACEM_OK) fprintf(stderr, "acem_syev_top failed\n");
        t1[r] = now() - t0;
        t0 = now();
        if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)n, W4, (lapack_int)n, w4) != 0)
            fprintf(stderr, "dsyevd failed\n");
        t4[r] = now() - t0;
        memcpy(W2, G, n * n * sizeof(float));
        t0 = now();
        if (LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)n, W2, (lapack_int)n, w2) != 0)
            fprintf(stderr, "ssyevd failed\n");
        t2[r] = now() - t0;
        memcpy(W2, G, n * n * sizeof(float));
        t0 = now();
        if (LAPACKE_ssyevr(LAPACK_COL_MAJOR, 'V', 'I', 'U', (lapack_int)n, W2, (lapack_int)n, 0.0f, 0.0f,
                           (lapack_int)(n - k + 1), (lapack_int)n, 0.0f, &m3, w3, Z3, (lapack_int)n, isup) != 0)
            fprintf(stderr, "ssyevr failed\n");
        t3[r] = now() - t0;
    }
    snprintf(shape, sizeof shape, "top %zu, n=%zu%s vs ssyevd", k, n, spikes ? " spiked" : "");
    print_row("syev top-k", shape, 0, median(t1, reps), median(t2, reps), rel_vals(w1 + n - 1, -1, w2 + n - 1, -1, k));
    snprintf(shape, sizeof shape, "top %zu, n=%zu%s vs ssyevr", k, n, spikes ? " spiked" : "");
    print_row("syev top-k", shape, 0, median(t1, reps), median(t3, reps), rel_vals(w1 + n - 1, -1, w3 + k - 1, -1, k));
    /* LAPACK in acem's precision (all pairs: dsyevd has no top-k form) */
    snprintf(shape, sizeof shape, "top %zu, n=%zu%s vs dsyevd", k, n, spikes ? " spiked" : "");
    print_row("syev top-k", shape, 0, median(t1, reps), median(t4, reps), rel_dd(w1 + n - k, w4 + n - k, k));
    /* what each gives for the time: the top k pairs' residuals (acem: Vec n x
       k row-major, descending; ssyevd: W2 column-major, ascending) */
    memcpy(W2, G, n * n * sizeof(float));
    if (LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)n, W2, (lapack_int)n, w2) != 0)
        fprintf(stderr, "ssyevd failed\n");
    snprintf(shape, sizeof shape, "top %zu, n=%zu%s vs ssyevd", k, n, spikes ? " spiked" : "");
    print_resid_row(shape, eig_resid(n, G, k, Vec, 0, 1, (long)k, w1 + n - 1, 0, -1),
                    eig_resid(n, G, k, W2 + (n - 1) * n, 1, -(long)n, 1, w2 + n - 1, 1, -1));
    free(G); free(W2); free(w2); free(w3); free(Z3); free(isup); free(A); free(w1); free(Vec); free(ew);
    free(t1); free(t2); free(t3); free(t4); free(W4); free(w4);
}

/* The refinement's whole top-k SVD of F (R x C): f64 Gram of the smaller
   side, top-k eigenpairs, singular vectors U (R x k) and V (C x k) in f32
   (acem_svd_top), against LAPACKE_sgesdd (all
   min(R,C) triplets, jobz 'S') on F; error: the top k singular values */
static void bench_svd_top(size_t R, size_t C, size_t k, int spikes) {
    size_t n = R < C ? R : C, i;
    float *F = frandom(R * C), *F2 = (float *)xmalloc(R * C * sizeof(float));
    float *U = (float *)xmalloc(R * k * sizeof(float)), *V = (float *)xmalloc(C * k * sizeof(float));
    float *s2 = (float *)xmalloc(n * sizeof(float)), *U2 = (float *)xmalloc(R * n * sizeof(float));
    float *V2 = (float *)xmalloc(n * C * sizeof(float));
    double *ew = (double *)xmalloc(n * sizeof(double));
    void *work = xmalloc(acem_svd_top_work_bytes(R, C));
    double *t1 = (double *)xmalloc(sizeof(double) * (size_t)reps), *t2 = (double *)xmalloc(sizeof(double) * (size_t)reps);
    char shape[64];
    int r;
    if (spikes) add_spikes(F, R, C);
    for (i = 0; i < R * C; ++i) F[i] *= 1e-2f;
    for (r = 0; r < reps; ++r) {
        double t0 = now();
        if (acem_svd_top(R, C, F, C, k, ew, U, k, V, k, NULL, work) != ACEM_OK) fprintf(stderr, "acem_svd_top failed\n");
        t1[r] = now() - t0;
        memcpy(F2, F, R * C * sizeof(float));
        t0 = now(); /* row-major F is column-major F^T: same singular values */
        if (LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)C, (lapack_int)R, F2, (lapack_int)C, s2, V2,
                           (lapack_int)C, U2, (lapack_int)n) != 0)
            fprintf(stderr, "sgesdd failed\n");
        t2[r] = now() - t0;
    }
    snprintf(shape, sizeof shape, "top %zu, F %zux%zu%s vs sgesdd", k, R, C, spikes ? " spiked" : "");
    print_row("syev svd top-k", shape, 0, median(t1, reps), median(t2, reps), rel_vals(ew, 1, s2, 1, k));
    free(F); free(F2); free(U); free(V); free(s2); free(U2); free(V2); free(ew); free(work);
    free(t1); free(t2);
}

int main(int argc, char **argv) {
    char cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (argc > 1) reps = atoi(argv[1]) > 0 ? atoi(argv[1]) : 5;
    if (argc > 2) filter = argv[2];
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    size_t l;
                    snprintf(cpu, sizeof cpu, "%s", c + 2);
                    l = strlen(cpu);
                    if (l && cpu[l - 1] == '\n') cpu[l - 1] = 0;
                }
                break;
            }
        fclose(f);
    }
    printf("machine: %s; acem build %s; OpenBLAS core %s, %d thread(s); median of %d runs, alternating\n", cpu,
           build_name(), openblas_get_corename(), openblas_get_num_threads(), reps);
    printf("| build   | operation      | shape                  |         acem |    reference | ratio | threads | rel.diff |\n");
    printf("|---------|----------------|------------------------|--------------|--------------|-------|---|---------|\n");
    if (want("gemm")) {
        bench_gemm("gemm", 1, 3072, 3072, 768);
        bench_gemm("gemm", 1, 768, 768, 3072);
        bench_gemm("gemm", 1, 768, 768, 50257);
        bench_gemm("gemm", 0, 768, 3072, 3072);
        bench_gemm("gemm", 0, 3072, 768, 768);
    }
    if (want("syrk")) {
        bench_syrk("syrk", 1, 0, 768, 3072);
        bench_syrk("syrk", 1, 0, 3072, 768);
        bench_syrk("syrk", 1, 0, 50257, 768);
        bench_syrk("syrk", 0, 0, 768, 3072);
        bench_syrk("syrk, full C", 1, 1, 768, 3072);
    }
    if (want("potrf")) {
        bench_potrf(768);
        bench_potrf(2304);
        bench_potrf(3072);
    }
    if (want("trsm")) {
        size_t ns[3] = {768, 2304, 3072};
        int i;
        for (i = 0; i < 3; ++i) bench_trsm(1, ns[i], ns[i]);
        for (i = 0; i < 3; ++i) bench_trsm(0, ns[i], ns[i]);
    }
    if (want("syev")) { /* k = floor(0.3 n), the refinement's rank */
        int spikes;
        for (spikes = 0; spikes < 2; ++spikes) { /* a random Gram matrix, then one like a delta's */
            bench_syev_top(3072, 768, 230, spikes);
            bench_svd_top(768, 3072, 230, spikes);
            bench_svd_top(3072, 768, 230, spikes);
            bench_syev(3072, 768, spikes);
        }
    }
    return 0;
}
