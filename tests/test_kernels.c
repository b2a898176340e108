/* tests/test_kernels.c - the numeric kernels of acem.h against naive double
   precision references written here:
     acem_gemm, acem_syrk       all transpose cases, awkward sizes, padded leading
                                dimensions (NaN sentinels), alpha/beta pairs, the
                                beta = 0 convention, with and without workspace
     acem_potrf                 L L^T = A, untouched upper part, failures and the
                                failing column (negative pivot, zero leading minor,
                                NaN / Inf)
     acem_trsm_rl, acem_chol_solve_right   multiplied back, and forward error
     acem_syev                  residual, orthogonality, order, known spectra
     acem__gram_f64, acem__syev_top   the refinement's f64 Gram and top-k
                                eigenpairs (internals): naive Gram, known spectra
                                across the panel width, clusters, rank-deficient
                                Grams, the QL fallback, repeatability
     acem_syev_top, acem_svd_top      the public forms: the internal results,
                                a Jacobi SVD in f64, residuals, orthonormality,
                                rank tolerance, padding, exact workspace, errors
     f16 / bf16 conversions     exhaustive over 16-bit patterns, every halfway
                                point, random f32, NaN payloads, array forms
   Run with any argument for a per-section summary. */
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "testing.h"
#include "ref.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int verbose = 0;

/* ---- helpers ----------------------------------------------------------------- */
static uint64_t rng_s = 0x243F6A8885A308D3ull;
static uint64_t rnd_u64(void) {
    uint64_t x = rng_s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
static uint32_t rnd_u32(void) { return (uint32_t)(rnd_u64() >> 32); }
/* [0,1) with 53 bits */
static double rnd_unit(void) {
    return (double)(rnd_u64() >> 11) * (1.0 / 9007199254740992.0);
}
/* [-1,1), exactly representable as float */
static float rnd_sym(void) {
    return (float)((double)(rnd_u64() >> 40) * (2.0 / 16777216.0) - 1.0);
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static double bitsd(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}
static int f32_isnan(float f) { return (fbits(f) & 0x7FFFFFFFu) > 0x7F800000u; }

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_kernels: out of memory (%lu bytes)\n", (unsigned long)bytes);
        exit(2);
    }
    return p;
}

/* zero-filled doubles */
static double *dalloc(size_t n) {
    double *p = (double *)xmalloc((n ? n : 1) * sizeof(double));
    memset(p, 0, (n ? n : 1) * sizeof(double));
    return p;
}

/* padding sentinel (a quiet NaN with a recognisable payload) */
#define SENT_BITS 0x7FC0DEADu
#define SENT_BITS_D 0x7FF8DEADBEEF0000ull

/* row-major matrices allocated to the minimum BLAS extent (rows-1)*ld + cols,
   so that a read past the last row's end is out of bounds under ASan */
static size_t mat_elems(size_t rows, size_t cols, size_t ld) {
    return rows ? (rows - 1) * ld + cols : 0;
}
static float *mat_new(size_t rows, size_t cols, size_t ld) {
    size_t n = mat_elems(rows, cols, ld), i;
    float *p = (float *)xmalloc((n ? n : 1) * sizeof(float));
    if (n == 0) p[0] = bitsf(SENT_BITS);
    for (i = 0; i < n; ++i) p[i] = bitsf(SENT_BITS);
    return p;
}
static void mat_fill_rand(float *p, size_t rows, size_t cols, size_t ld) {
    size_t r, c;
    for (r = 0; r < rows; ++r)
        for (c = 0; c < cols; ++c) p[r * ld + c] = rnd_sym();
}
/* padding elements (between rows) whose bits changed; for an empty matrix the
   single guard element */
static size_t pad_changed(const float *p, size_t rows, size_t cols, size_t ld) {
    size_t r, c, bad = 0;
    if (rows == 0 || cols == 0) {
        size_t n = mat_elems(rows, cols, ld), i;
        if (n == 0) return fbits(p[0]) != SENT_BITS;
        for (i = 0; i < n; ++i) bad += fbits(p[i]) != SENT_BITS;
        return bad;
    }
    for (r = 0; r + 1 < rows; ++r)
        for (c = cols; c < ld; ++c) bad += fbits(p[r * ld + c]) != SENT_BITS;
    return bad;
}
static size_t ld_of(size_t cols, size_t pad) { return (cols ? cols : 1) + pad; }

static const size_t SIZES[] = {1, 2, 7, 33, 255, 257};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
static const size_t PADS[] = {0, 3, 16, 1, 5};
#define NPADS (sizeof PADS / sizeof PADS[0])

typedef struct ab_pair {
    float alpha, beta;
} ab_pair;
/* the first three are the required pairs; alpha = 0 is an extra on small sizes */
static const ab_pair AB[] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.0f, 0.25f}, {0.0f, 0.5f}};
#define NAB_REQ 3

/* ---- GEMM -------------------------------------------------------------------- */
static int n_gemm_calls = 0;

/* the f64 reference of C = alpha op(A) op(B) + beta C0 (m x n, ld n) and the
   bound sum |terms| its error is measured against (C0 not read when beta = 0) */
static void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, const float *C0, size_t ldc, double *ref, double *bnd) {
    size_t i, j, p;
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) {
            double s = 0, sa = 0;
            for (p = 0; p < k; ++p) {
                double a = ta ? A[p * lda + i] : A[i * lda + p];
                double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                s += a * b;
                sa += fabs(a * b);
            }
            ref[i * n + j] = (double)alpha * s;
            bnd[i * n + j] = fabs((double)alpha) * sa;
            if (beta != 0.0f) {
                double c = C0[i * ldc + j];
                ref[i * n + j] += (double)beta * c;
                bnd[i * n + j] += fabs((double)beta * c);
            }
        }
}

static void gemm_case(int ta, int tb, size_t m, size_t n, size_t k, float alpha, float beta,
                      size_t pa, size_t pb, size_t pc, int determinism) {
    size_t ar = ta ? k : m, ac = ta ? m : k;
    size_t br = tb ? n : k, bc = tb ? k : n;
    size_t lda = ld_of(ac, pa), ldb = ld_of(bc, pb), ldc = ld_of(n, pc);
    size_t nc = mat_elems(m, n, ldc), i, j;
    float *A = mat_new(ar, ac, lda), *B = mat_new(br, bc, ldb);
    float *C0 = mat_new(m, n, ldc), *C = mat_new(m, n, ldc), *C2 = mat_new(m, n, ldc);
    double *ref = dalloc(m * n), *bnd = dalloc(m * n);
    size_t wbytes = acem_gemm_work_bytes(m, n, k);
    int w;

    mat_fill_rand(A, ar, ac, lda);
    mat_fill_rand(B, br, bc, ldb);
    if (beta == 0.0f) { /* BLAS: C is not read when beta == 0 */
        for (i = 0; i < m; ++i)
            for (j = 0; j < n; ++j) C0[i * ldc + j] = bitsf(((i + j) & 1) ? 0xFFC00001u : 0x7FC00000u);
    } else {
        mat_fill_rand(C0, m, n, ldc);
    }
    ref_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C0, ldc, ref, bnd);

    for (w = 0; w < 2; ++w) {
        void *work = w ? xmalloc(wbytes) : NULL;
        size_t bad = 0, bi = 0, bj = 0, padbad;
        double worst = 0;
        if (work) memset(work, 0xFF, wbytes); /* dirty workspace: NaN floats */
        if (nc) memcpy(C, C0, nc * sizeof(float));
        acem_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, work);
        ++n_gemm_calls;
        for (i = 0; i < m; ++i)
            for (j = 0; j < n; ++j) {
                double got = C[i * ldc + j], err = fabs(got - ref[i * n + j]);
                double tol = 1e-5 * bnd[i * n + j];
                if (!(err <= tol)) {
                    if (!bad) bi = i, bj = j;
                    ++bad;
                }
                if (tol > 0 && err / tol > worst) worst = err / tol;
            }
        CHECK(bad == 0,
              "gemm ta=%d tb=%d m=%zu n=%zu k=%zu alpha=%g beta=%g lda=%zu ldb=%zu ldc=%zu "
              "work=%s: %zu bad entries; first C[%zu][%zu] = %.9g, expected %.9g (tol %.3g)",
              ta, tb, m, n, k, alpha, beta, lda, ldb, ldc, w ? "yes" : "NULL", bad, bi, bj,
              bad ? (double)C[bi * ldc + bj] : 0.0, bad ? ref[bi * n + bj] : 0.0,
              bad ? 1e-5 * bnd[bi * n + bj] : 0.0);
        padbad = pad_changed(C, m, n, ldc);
        CHECK(padbad == 0,
              "gemm ta=%d tb=%d m=%zu n=%zu k=%zu ldc=%zu work=%s: %zu padding elements of C "
              "overwritten",
              ta, tb, m, n, k, ldc, w ? "yes" : "NULL", padbad);
        if (w && determinism) {
            if (nc) memcpy(C2, C0, nc * sizeof(float));
            if (work) memset(work, 0xFF, wbytes);
            acem_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C2, ldc, work);
            ++n_gemm_calls;
            CHECK(nc == 0 || memcmp(C, C2, nc * sizeof(float)) == 0,
                  "gemm ta=%d tb=%d m=%zu n=%zu k=%zu: two identical calls differ bitwise", ta, tb,
                  m, n, k);
        }
        free(work);
    }
    free(A);
    free(B);
    free(C0);
    free(C);
    free(C2);
    free(ref);
    free(bnd);
}

static void test_gemm(void) {
    static const size_t extra[][3] = {
        {1, 257, 33}, {300, 5, 2},  {5, 300, 2},  {2, 5, 300},   {1, 1, 1000},
        {64, 64, 64}, {65, 63, 129}, {513, 3, 129}, {3, 513, 260}, {17, 19, 1023},
        {128, 1, 128}, {1, 128, 128}, {31, 33, 511}};
    static const size_t degenerate[][3] = {{0, 4, 3}, {3, 0, 4}, {3, 4, 0}, {0, 0, 0}, {0, 5, 0}};
    size_t counter = 0, e, q;
    int ta, tb, a;
    size_t im, in, ik;
    for (ta = 0; ta < 2; ++ta)
        for (tb = 0; tb < 2; ++tb) {
            for (im = 0; im < NSIZES; ++im)
                for (in = 0; in < NSIZES; ++in)
                    for (ik = 0; ik < NSIZES; ++ik) {
                        size_t m = SIZES[im], n = SIZES[in], k = SIZES[ik];
                        size_t big = (m > 200) + (n > 200) + (k > 200);
                        if (big == 3 && !(m == 257 && n == 255 && k == 257)) continue;
                        if (big >= 2) { /* expensive: one alpha/beta pair, rotating */
                            const ab_pair *ab = &AB[counter % NAB_REQ];
                            gemm_case(ta, tb, m, n, k, ab->alpha, ab->beta, PADS[counter % NPADS],
                                      PADS[(counter + 1) % NPADS], PADS[(counter + 2) % NPADS], 0);
                            ++counter;
                            continue;
                        }
                        for (a = 0; a < (big ? NAB_REQ : 4); ++a) {
                            gemm_case(ta, tb, m, n, k, AB[a].alpha, AB[a].beta,
                                      PADS[counter % NPADS], PADS[(counter + 1) % NPADS],
                                      PADS[(counter + 2) % NPADS], m * n * k < 100000);
                            ++counter;
                        }
                    }
            for (e = 0; e < sizeof extra / sizeof extra[0]; ++e)
                for (a = 0; a < NAB_REQ; ++a) {
                    gemm_case(ta, tb, extra[e][0], extra[e][1], extra[e][2], AB[a].alpha,
                              AB[a].beta, PADS[counter % NPADS], PADS[(counter + 1) % NPADS],
                              PADS[(counter + 2) % NPADS], 1);
                    ++counter;
                }
            for (q = 0; q < sizeof degenerate / sizeof degenerate[0]; ++q)
                for (a = 0; a < 4; ++a) {
                    gemm_case(ta, tb, degenerate[q][0], degenerate[q][1], degenerate[q][2],
                              AB[a].alpha, AB[a].beta, PADS[counter % NPADS],
                              PADS[(counter + 1) % NPADS], PADS[(counter + 2) % NPADS], 0);
                    ++counter;
                }
        }
    if (verbose) printf("# gemm: %d calls\n", n_gemm_calls);
}

/* ---- SYRK -------------------------------------------------------------------- */
static int n_syrk_calls = 0;

/* lower: ACEM_SYRK_LOWER, the lower triangle only: the strict upper one must
   keep C0's bits (NaN patterns when beta is 0) */
static void syrk_case(int trans, int lower, size_t n, size_t k, float alpha, float beta, size_t pa,
                      size_t pc) {
    size_t ar = trans ? k : n, ac = trans ? n : k;
    size_t lda = ld_of(ac, pa), ldc = ld_of(n, pc);
    size_t nc = mat_elems(n, n, ldc), i, j;
    float *A = mat_new(ar, ac, lda), *C0 = mat_new(n, n, ldc), *C = mat_new(n, n, ldc);
    double *ref = dalloc(n * n), *bnd = dalloc(n * n);
    size_t wbytes = acem_gemm_work_bytes(n, n, k);
    int w;

    mat_fill_rand(A, ar, ac, lda);
    if (beta == 0.0f) {
        for (i = 0; i < n; ++i)
            for (j = 0; j < n; ++j) C0[i * ldc + j] = bitsf(((i + j) & 1) ? 0xFFC00001u : 0x7FC00000u);
    } else { /* symmetric start, so that either triangle may be read */
        for (i = 0; i < n; ++i)
            for (j = 0; j <= i; ++j) C0[i * ldc + j] = C0[j * ldc + i] = rnd_sym();
    }
    ref_gemm(trans, !trans, n, n, k, alpha, A, lda, A, lda, beta, C0, ldc, ref, bnd); /* A^T A or A A^T */
    for (w = 0; w < 2; ++w) {
        void *work = w ? xmalloc(wbytes) : NULL;
        size_t bad = 0, bi = 0, bj = 0, padbad, upbad = 0;
        if (work) memset(work, 0xFF, wbytes);
        if (nc) memcpy(C, C0, nc * sizeof(float));
        acem_syrk(trans | (lower ? ACEM_SYRK_LOWER : 0), n, k, alpha, A, lda, beta, C, ldc, work);
        ++n_syrk_calls;
        for (i = 0; i < n; ++i)
            for (j = 0; j < n; ++j) {
                double err;
                if (lower && j > i) {
                    upbad += memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float)) != 0;
                    continue;
                }
                err = fabs((double)C[i * ldc + j] - ref[i * n + j]);
                if (!(err <= 1e-5 * bnd[i * n + j])) {
                    if (!bad) bi = i, bj = j;
                    ++bad;
                }
            }
        CHECK(upbad == 0, "syrk trans=%d lower n=%zu k=%zu beta=%g work=%s: %zu entries of the strict upper "
              "triangle changed", trans, n, k, beta, w ? "yes" : "NULL", upbad);
        CHECK(bad == 0,
              "syrk trans=%d lower=%d n=%zu k=%zu alpha=%g beta=%g lda=%zu ldc=%zu work=%s: %zu bad "
              "entries; first C[%zu][%zu] = %.9g, expected %.9g (tol %.3g)",
              trans, lower, n, k, alpha, beta, lda, ldc, w ? "yes" : "NULL", bad, bi, bj,
              bad ? (double)C[bi * ldc + bj] : 0.0, bad ? ref[bi * n + bj] : 0.0,
              bad ? 1e-5 * bnd[bi * n + bj] : 0.0);
        padbad = pad_changed(C, n, n, ldc);
        CHECK(padbad == 0,
              "syrk trans=%d n=%zu k=%zu ldc=%zu work=%s: %zu padding elements of C overwritten",
              trans, n, k, ldc, w ? "yes" : "NULL", padbad);
        free(work);
    }
    free(A);
    free(C0);
    free(C);
    free(ref);
    free(bnd);
}

static void test_syrk(void) {
    static const size_t extra[][2] = {{300, 5}, {5, 300}, {1, 1000}, {64, 64}, {129, 3}, {3, 129}};
    static const size_t degenerate[][2] = {{0, 3}, {3, 0}, {0, 0}};
    size_t counter = 0, in, ik, e;
    int trans, a;
    for (trans = 0; trans < 2; ++trans) {
        for (in = 0; in < NSIZES; ++in)
            for (ik = 0; ik < NSIZES; ++ik) {
                size_t n = SIZES[in], k = SIZES[ik];
                int nab = n * n * k > 300000 ? 1 : (n * n * k > 20000 ? NAB_REQ : 4);
                for (a = 0; a < nab; ++a) {
                    const ab_pair *ab = nab == 1 ? &AB[counter % NAB_REQ] : &AB[a];
                    syrk_case(trans, (int)((counter >> 1) & 1), n, k, ab->alpha, ab->beta, PADS[counter % NPADS],
                              PADS[(counter + 1) % NPADS]);
                    ++counter;
                }
            }
        for (e = 0; e < sizeof extra / sizeof extra[0]; ++e)
            for (a = 0; a < 2 * NAB_REQ; ++a) {
                syrk_case(trans, a >= NAB_REQ, extra[e][0], extra[e][1], AB[a % NAB_REQ].alpha, AB[a % NAB_REQ].beta,
                          PADS[counter % NPADS], PADS[(counter + 1) % NPADS]);
                ++counter;
            }
        for (e = 0; e < sizeof degenerate / sizeof degenerate[0]; ++e)
            for (a = 0; a < 8; ++a) {
                syrk_case(trans, a >= 4, degenerate[e][0], degenerate[e][1], AB[a % 4].alpha, AB[a % 4].beta,
                          PADS[counter % NPADS], PADS[(counter + 1) % NPADS]);
                ++counter;
            }
    }
    if (verbose) printf("# syrk: %d calls\n", n_syrk_calls);
}

/* ---- POTRF ------------------------------------------------------------------- */
/* random SPD n x n into the full (both triangles) of A: G G^T / n + shift I */
static void make_spd(float *A, size_t n, size_t lda, double shift) {
    double *G = (double *)xmalloc(n * n * sizeof(double));
    size_t i, j, p;
    for (i = 0; i < n * n; ++i) G[i] = rnd_sym();
    for (i = 0; i < n; ++i)
        for (j = 0; j <= i; ++j) {
            double s = 0;
            for (p = 0; p < n; ++p) s += G[i * n + p] * G[j * n + p];
            s = s / (double)n + (i == j ? shift : 0.0);
            A[i * lda + j] = A[j * lda + i] = (float)s;
        }
    free(G);
}

/* checks L L^T against A0 on the lower triangle; returns bad entries */
static size_t chol_residual(const float *L, const float *A0, size_t n, size_t lda, size_t *bi,
                            size_t *bj, double *got, double *want) {
    size_t i, j, p, bad = 0;
    for (i = 0; i < n; ++i)
        for (j = 0; j <= i; ++j) {
            double s = 0, sa = 0, err;
            for (p = 0; p <= j; ++p) {
                double x = (double)L[i * lda + p] * L[j * lda + p];
                s += x;
                sa += fabs(x);
            }
            err = fabs(s - A0[i * lda + j]);
            if (!(err <= 1e-5 * sa) || (i == j && !(L[i * lda + i] > 0))) {
                if (!bad) *bi = i, *bj = j, *got = s, *want = A0[i * lda + j];
                ++bad;
            }
        }
    return bad;
}

static void potrf_ok_case(size_t n, size_t pad, int nan_upper) {
    size_t lda = ld_of(n, pad), na = mat_elems(n, n, lda), i, j, bad, bi = 0, bj = 0;
    size_t upbad = 0, failed = 12345;
    float *A = mat_new(n, n, lda), *A0 = mat_new(n, n, lda);
    double got = 0, want = 0;
    acem_result r;
    make_spd(A, n, lda, 0.1);
    if (nan_upper) /* only the lower triangle is input */
        for (i = 0; i < n; ++i)
            for (j = i + 1; j < n; ++j) A[i * lda + j] = bitsf(0x7FC00BADu);
    memcpy(A0, A, na * sizeof(float));
    { /* with a workspace (packed GEMM blocks) and without (small stack blocks) */
        void *work = nan_upper ? NULL : xmalloc(acem_gemm_work_bytes(n, n, n));
        r = acem_potrf(n, A, lda, &failed, work);
        free(work);
    }
    CHECK(r == ACEM_OK, "potrf n=%zu lda=%zu%s: returned %d (%s), failed column %zu", n, lda,
          nan_upper ? " (NaN upper)" : "", (int)r, acem_result_string(r), failed);
    bad = chol_residual(A, A0, n, lda, &bi, &bj, &got, &want);
    CHECK(bad == 0,
          "potrf n=%zu lda=%zu%s: L L^T != A at %zu entries; first [%zu][%zu] = %.9g, "
          "expected %.9g (L[%zu][%zu] = %.9g)",
          n, lda, nan_upper ? " (NaN upper)" : "", bad, bi, bj, got, want, bi, bj,
          bad ? (double)A[bi * lda + bj] : 0.0);
    for (i = 0; i < n; ++i)
        for (j = i + 1; j < n; ++j) upbad += fbits(A[i * lda + j]) != fbits(A0[i * lda + j]);
    CHECK(upbad == 0, "potrf n=%zu lda=%zu%s: %zu strictly-upper elements changed", n, lda,
          nan_upper ? " (NaN upper)" : "", upbad);
    upbad = pad_changed(A, n, n, lda);
    CHECK(upbad == 0, "potrf n=%zu lda=%zu: %zu padding elements changed", n, lda, upbad);
    free(A);
    free(A0);
}

static void potrf_fail_case(const char *what, const float *A0, size_t n, size_t lda,
                            size_t expect_col) {
    size_t na = mat_elems(n, n, lda), failed = 777777;
    float *A = (float *)xmalloc(na * sizeof(float));
    acem_result r;
    memcpy(A, A0, na * sizeof(float));
    r = acem_potrf(n, A, lda, &failed, NULL);
    CHECK(r == ACEM_ERR_NOT_POSITIVE_DEFINITE && failed == expect_col,
          "potrf %s n=%zu: returned %d (%s) failed column %zu, expected "
          "ACEM_ERR_NOT_POSITIVE_DEFINITE column %zu",
          what, n, (int)r, acem_result_string(r), failed, expect_col);
    free(A);
}

static void test_potrf(void) {
    static const size_t fail_sizes[] = {1, 2, 7, 33, 257};
    size_t s, q, i, j, p;
    int nan_upper;
    for (s = 0; s < NSIZES; ++s)
        for (nan_upper = 0; nan_upper < 2; ++nan_upper)
            potrf_ok_case(SIZES[s], PADS[(s + (size_t)nan_upper) % NPADS], nan_upper);
    potrf_ok_case(64, 0, 0);
    potrf_ok_case(100, 7, 1);
    { /* n = 0 is a no-op */
        float dummy = bitsf(SENT_BITS);
        size_t failed = 0;
        acem_result r = acem_potrf(0, &dummy, 1, &failed, NULL);
        CHECK(r == ACEM_OK && fbits(dummy) == SENT_BITS, "potrf n=0: returned %d", (int)r);
    }

    for (s = 0; s < sizeof fail_sizes / sizeof fail_sizes[0]; ++s) {
        size_t n = fail_sizes[s], lda = ld_of(n, 3), na = mat_elems(n, n, lda);
        size_t cols[3];
        float *spd = mat_new(n, n, lda), *A = mat_new(n, n, lda);
        float *L = (float *)xmalloc(n * n * sizeof(float));
        char what[96];
        make_spd(spd, n, lda, 0.1);
        cols[0] = 0;
        cols[1] = n / 2;
        cols[2] = n - 1;
        for (q = 0; q < 3; ++q) {
            size_t jc = cols[q];
            if (q && jc == cols[q - 1]) continue;
            /* very negative diagonal at jc */
            memcpy(A, spd, na * sizeof(float));
            A[jc * lda + jc] = -100.0f;
            sprintf(what, "negative diagonal at %zu", jc);
            potrf_fail_case(what, A, n, lda, jc);
            /* NaN / +Inf / -Inf on the diagonal at jc */
            A[jc * lda + jc] = bitsf(0x7FC00000u);
            sprintf(what, "NaN diagonal at %zu", jc);
            potrf_fail_case(what, A, n, lda, jc);
            A[jc * lda + jc] = bitsf(0x7F800000u);
            sprintf(what, "+Inf diagonal at %zu", jc);
            potrf_fail_case(what, A, n, lda, jc);
            A[jc * lda + jc] = bitsf(0xFF800000u);
            sprintf(what, "-Inf diagonal at %zu", jc);
            potrf_fail_case(what, A, n, lda, jc);
            /* NaN below the diagonal at (i, jc): the first non-finite pivot is column i */
            if (jc + 1 < n) {
                size_t ii = jc + 1 + (n - jc - 1) / 2;
                memcpy(A, spd, na * sizeof(float));
                A[ii * lda + jc] = bitsf(0x7FC00000u);
                A[jc * lda + ii] = bitsf(0x7FC00000u);
                sprintf(what, "NaN at [%zu][%zu]", ii, jc);
                potrf_fail_case(what, A, n, lda, ii);
            }
            /* exactly zero leading minor of order jc+1: A = L L^T with L unit lower
               triangular, entries in {-1,0,1}, except L[jc][jc] = 0; every step of the
               factorisation is exact in float */
            for (i = 0; i < n; ++i)
                for (j = 0; j < n; ++j)
                    L[i * n + j] = i == j ? (i == jc ? 0.0f : 1.0f)
                                          : (j < i ? (float)((int)(rnd_u32() % 3u) - 1) : 0.0f);
            for (i = 0; i < n; ++i)
                for (j = 0; j <= i; ++j) {
                    float v = 0;
                    for (p = 0; p <= j; ++p) v += L[i * n + p] * L[j * n + p];
                    A[i * lda + j] = A[j * lda + i] = v;
                }
            sprintf(what, "zero leading minor at %zu", jc);
            potrf_fail_case(what, A, n, lda, jc);
        }
        free(spd);
        free(A);
        free(L);
    }
    { /* all-NaN 2x2 and an indefinite 2x2 */
        float M[4];
        M[0] = M[1] = M[2] = M[3] = bitsf(0x7FC00000u);
        potrf_fail_case("all NaN", M, 2, 2, 0);
        M[0] = 1.0f;
        M[1] = M[2] = 2.0f;
        M[3] = 1.0f;
        potrf_fail_case("[[1,2],[2,1]]", M, 2, 2, 1);
        M[0] = 0.0f;
        M[1] = M[2] = 0.0f;
        M[3] = 1.0f;
        potrf_fail_case("[[0,0],[0,1]]", M, 2, 2, 0);
    }
}

/* ---- TRSM / CHOL_SOLVE_RIGHT ------------------------------------------------- */
/* lower triangular, diagonal in [1,2), off-diagonal in [-2/n, 2/n); the strictly
   upper part and the padding hold NaN (must not be read) */
static float *make_lower(size_t n, size_t ldl) {
    float *L = mat_new(n, n, ldl);
    size_t i, j;
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j)
            L[i * ldl + j] = j < i   ? (float)(rnd_sym() * 2.0 / (double)n)
                             : j == i ? (float)(1.0 + rnd_unit())
                                      : bitsf(0x7FC00BADu);
    return L;
}

/* X op(L) with op = L^T (trans=1) or L (trans=0), and the abs bound, in double */
static void mul_right(int trans, size_t m, size_t n, const double *X, const double *Xabs,
                      const float *L, size_t ldl, double *out, double *outabs) {
    size_t i, j, p;
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) {
            double s = 0, sa = 0;
            if (trans) /* (X L^T)_ij = sum_{p<=j} X_ip L_jp */
                for (p = 0; p <= j; ++p) {
                    s += X[i * n + p] * L[j * ldl + p];
                    sa += Xabs[i * n + p] * fabs((double)L[j * ldl + p]);
                }
            else /* (X L)_ij = sum_{p>=j} X_ip L_pj */
                for (p = j; p < n; ++p) {
                    s += X[i * n + p] * L[p * ldl + j];
                    sa += Xabs[i * n + p] * fabs((double)L[p * ldl + j]);
                }
            out[i * n + j] = s;
            outabs[i * n + j] = sa;
        }
}

/* reference solve in double: X op(L) = B, in place on X (m x n, contiguous) */
static void solve_right_ref(int trans, size_t m, size_t n, const float *L, size_t ldl, double *X) {
    size_t i, j, p;
    for (i = 0; i < m; ++i) {
        double *x = X + i * n;
        if (trans) /* x L^T = b: x_j = (b_j - sum_{p<j} x_p L_jp) / L_jj */
            for (j = 0; j < n; ++j) {
                double s = x[j];
                for (p = 0; p < j; ++p) s -= x[p] * L[j * ldl + p];
                x[j] = s / L[j * ldl + j];
            }
        else /* x L = b: x_j = (b_j - sum_{p>j} x_p L_pj) / L_jj */
            for (j = n; j-- > 0;) {
                double s = x[j];
                for (p = j + 1; p < n; ++p) s -= x[p] * L[p * ldl + j];
                x[j] = s / L[j * ldl + j];
            }
    }
}

/* mode 0/1: trsm with trans = mode; mode 2: chol_solve_right */
static void solve_case(int mode, size_t m, size_t n, size_t pl, size_t pb) {
    size_t ldl = ld_of(n, pl), ldb = ld_of(n, pb), nl, nb, i, j, bad = 0, bi = 0, bj = 0;
    float *L = make_lower(n, ldl), *Lc, *B = mat_new(m, n, ldb), *B0;
    double *X = dalloc(m * n);
    double *Xa = dalloc(m * n);
    double *Y = dalloc(m * n);
    double *Ya = dalloc(m * n);
    double *Z = dalloc(m * n);
    double *Za = dalloc(m * n);
    double *Xref = dalloc(m * n);
    float *Xf = (float *)xmalloc(m * n * sizeof(float));
    double tol = mode == 2 ? 2e-5 : 1e-5, fwd;
    size_t padbad, lbad = 0;
    const char *name = mode == 2 ? "chol_solve_right" : (mode ? "trsm_rl trans=1" : "trsm_rl trans=0");

    nl = mat_elems(n, n, ldl);
    nb = mat_elems(m, n, ldb);
    Lc = (float *)xmalloc(nl * sizeof(float));
    B0 = (float *)xmalloc(nb * sizeof(float));
    mat_fill_rand(B, m, n, ldb);
    memcpy(Lc, L, nl * sizeof(float));
    memcpy(B0, B, nb * sizeof(float));
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) Xref[i * n + j] = B[i * ldb + j];
    { /* with a workspace or without, alternating */
        void *work = (m + n) % 2 ? xmalloc(acem_gemm_work_bytes(m, n, n)) : NULL;
        if (mode == 2) {
            solve_right_ref(1, m, n, L, ldl, Xref);
            solve_right_ref(0, m, n, L, ldl, Xref);
            acem_chol_solve_right(m, n, L, ldl, B, ldb, work);
        } else {
            solve_right_ref(mode, m, n, L, ldl, Xref);
            acem_trsm_rl(mode, m, n, L, ldl, B, ldb, work);
        }
        free(work);
    }
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) {
            X[i * n + j] = B[i * ldb + j];
            Xa[i * n + j] = fabs(X[i * n + j]);
            Xf[i * n + j] = B[i * ldb + j];
        }
    /* multiply back */
    if (mode == 2) { /* B0 ?= X L L^T */
        mul_right(0, m, n, X, Xa, L, ldl, Y, Ya);
        mul_right(1, m, n, Y, Ya, L, ldl, Z, Za);
    } else {
        mul_right(mode, m, n, X, Xa, L, ldl, Z, Za);
    }
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) {
            double err = fabs(Z[i * n + j] - B0[i * ldb + j]);
            if (!(err <= tol * Za[i * n + j])) {
                if (!bad) bi = i, bj = j;
                ++bad;
            }
        }
    CHECK(bad == 0,
          "%s m=%zu n=%zu ldl=%zu ldb=%zu: X op(L) != B at %zu entries; first [%zu][%zu] = "
          "%.9g, expected %.9g",
          name, m, n, ldl, ldb, bad, bi, bj, bad ? Z[bi * n + bj] : 0.0,
          bad ? (double)B0[bi * ldb + bj] : 0.0);
    fwd = test_rel_err_fd(Xf, Xref, m * n);
    CHECK(fwd <= 1e-5, "%s m=%zu n=%zu: relative forward error %.3g vs double solve", name, m, n,
          fwd);
    padbad = pad_changed(B, m, n, ldb);
    for (i = 0; i < nl; ++i) lbad += fbits(L[i]) != fbits(Lc[i]);
    CHECK(padbad == 0 && lbad == 0, "%s m=%zu n=%zu: %zu padding elements of B changed, %zu of L",
          name, m, n, padbad, lbad);
    free(L);
    free(Lc);
    free(B);
    free(B0);
    free(X);
    free(Xa);
    free(Y);
    free(Ya);
    free(Z);
    free(Za);
    free(Xref);
    free(Xf);
}

/* potrf then chol_solve_right on the factor (whose upper part still holds A) */
static void chol_pipeline_case(size_t m, size_t n) {
    size_t lda = ld_of(n, 2), ldb = ld_of(n, 1), i, j, p, failed = 0;
    float *A = mat_new(n, n, lda), *A0 = mat_new(n, n, lda), *B = mat_new(m, n, ldb);
    float *B0 = mat_new(m, n, ldb);
    double num = 0, nx = 0, na = 0;
    acem_result r;
    make_spd(A, n, lda, 0.1);
    memcpy(A0, A, mat_elems(n, n, lda) * sizeof(float));
    mat_fill_rand(B, m, n, ldb);
    memcpy(B0, B, mat_elems(m, n, ldb) * sizeof(float));
    {
        void *work = xmalloc(acem_gemm_work_bytes(acem__max(m, n), n, n));
        r = acem_potrf(n, A, lda, &failed, work);
        CHECK(r == ACEM_OK, "pipeline potrf n=%zu: %d", n, (int)r);
        acem_chol_solve_right(m, n, A, lda, B, ldb, work);
        free(work);
    }
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) {
            double s = 0;
            for (p = 0; p < n; ++p) s += (double)B[i * ldb + p] * A0[p * lda + j];
            num += (s - B0[i * ldb + j]) * (s - B0[i * ldb + j]);
            nx += (double)B[i * ldb + j] * B[i * ldb + j];
        }
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j) na += (double)A0[i * lda + j] * A0[i * lda + j];
    CHECK(sqrt(num) <= 1e-5 * sqrt(nx) * sqrt(na),
          "potrf + chol_solve_right m=%zu n=%zu: ||X A - B|| = %.3g, ||X|| ||A|| = %.3g", m, n,
          sqrt(num), sqrt(nx) * sqrt(na));
    free(A);
    free(A0);
    free(B);
    free(B0);
}

static void test_solves(void) {
    size_t im, in, counter = 0;
    int mode;
    for (mode = 0; mode < 3; ++mode)
        for (im = 0; im < NSIZES; ++im)
            for (in = 0; in < NSIZES; ++in) {
                size_t m = SIZES[im], n = SIZES[in];
                if (m > 200 && n > 200 && (m != 257 || n != 255)) continue;
                solve_case(mode, m, n, PADS[counter % NPADS], PADS[(counter + 1) % NPADS]);
                ++counter;
            }
    for (mode = 0; mode < 3; ++mode) {
        solve_case(mode, 300, 5, 1, 2);
        solve_case(mode, 5, 300, 0, 3);
        solve_case(mode, 1, 513, 4, 0);
        solve_case(mode, 64, 64, 0, 0);
    }
    chol_pipeline_case(7, 33);
    chol_pipeline_case(33, 257);
    chol_pipeline_case(1, 1);
    if (verbose) printf("# trsm/chol_solve: %zu cases\n", counter + 12 + 3);
}

/* ---- SYEV (double) ----------------------------------------------------------- */
static int n_syev_cases = 0;

/* random orthogonal n x n (columns), modified Gram-Schmidt applied twice */
static void rand_orth(double *Q, size_t n) {
    size_t i, j, p, pass;
    for (i = 0; i < n * n; ++i) Q[i] = rnd_sym();
    for (j = 0; j < n; ++j) {
        double nrm;
        for (pass = 0; pass < 2; ++pass)
            for (p = 0; p < j; ++p) {
                double d = 0;
                for (i = 0; i < n; ++i) d += Q[i * n + p] * Q[i * n + j];
                for (i = 0; i < n; ++i) Q[i * n + j] -= d * Q[i * n + p];
            }
        nrm = 0;
        for (i = 0; i < n; ++i) nrm += Q[i * n + j] * Q[i * n + j];
        nrm = sqrt(nrm);
        for (i = 0; i < n; ++i) Q[i * n + j] /= nrm;
    }
}

/* A = Q diag(lam) Q^T (Q random orthogonal) or diag(lam) when rotate == 0 */
static void make_spectrum(double *A, const double *lam, size_t n, int rotate) {
    size_t i, j, p;
    if (!rotate) {
        for (i = 0; i < n * n; ++i) A[i] = 0;
        for (i = 0; i < n; ++i) A[i * n + i] = lam[i];
        return;
    }
    {
        double *Q = (double *)xmalloc(n * n * sizeof(double));
        rand_orth(Q, n);
        for (i = 0; i < n; ++i)
            for (j = 0; j <= i; ++j) {
                double s = 0;
                for (p = 0; p < n; ++p) s += Q[i * n + p] * lam[p] * Q[j * n + p];
                A[i * n + j] = A[j * n + i] = s;
            }
        free(Q);
    }
}

/* A = H_1 .. H_4 diag(lam) H_4 .. H_1 with random Householder reflectors H_i:
   dense, with a known spectrum, in O(n^2) */
static void make_spectrum_fast(double *A, const double *lam, size_t n) {
    double *u = (double *)xmalloc(n * sizeof(double)), *y = (double *)xmalloc(n * sizeof(double));
    size_t i, j, r;
    for (i = 0; i < n * n; ++i) A[i] = 0;
    for (i = 0; i < n; ++i) A[i * n + i] = lam[i];
    for (r = 0; r < 4 && n > 1; ++r) {
        double nu = 0, c;
        for (i = 0; i < n; ++i) { u[i] = rnd_sym(); nu += u[i] * u[i]; }
        nu = sqrt(nu);
        for (i = 0; i < n; ++i) u[i] /= nu;
        /* A <- H A H, H = I - 2 u u^T: y = A u, c = u.y; A -= 2 u y^T + 2 y u^T - 4 c u u^T */
        c = 0;
        for (i = 0; i < n; ++i) {
            double s = 0;
            for (j = 0; j < n; ++j) s += A[i * n + j] * u[j];
            y[i] = s;
            c += u[i] * s;
        }
        for (i = 0; i < n; ++i)
            for (j = 0; j < n; ++j) A[i * n + j] += -2 * u[i] * y[j] - 2 * y[i] * u[j] + 4 * c * u[i] * u[j];
        for (i = 0; i < n; ++i) /* exactly symmetric */
            for (j = 0; j < i; ++j) A[j * n + i] = A[i * n + j];
    }
    free(u);
    free(y);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A0: n x n contiguous symmetric; expect: the eigenvalues (any order) or NULL */
static void syev_case(const char *label, size_t n, const double *A0, size_t pad,
                      const double *expect) {
    size_t lda = n + pad, na = n ? (n - 1) * lda + n : 0, i, j, p;
    double *A = (double *)xmalloc((na ? na : 1) * sizeof(double));
    double *w = (double *)xmalloc((n ? n : 1) * sizeof(double));
    double *ex = NULL;
    size_t wbytes = acem_syev_work_bytes(n), padbad = 0;
    void *work = xmalloc(wbytes);
    double normA = 0, res = 0, orth = 0, eps = DBL_EPSILON, maxdev = 0;
    double rtol, otol;
    int ascending = 1, finite = 1;
    acem_result r;
    ++n_syev_cases;
    for (i = 0; i < na; ++i) A[i] = bitsd(SENT_BITS_D);
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j) {
            A[i * lda + j] = A0[i * n + j];
            normA += A0[i * n + j] * A0[i * n + j];
        }
    normA = sqrt(normA);
    memset(work, 0xFF, wbytes);
    r = acem_syev(n, A, lda, w, work);
    CHECK(r == ACEM_OK, "syev %s n=%zu: returned %d (%s)", label, n, (int)r, acem_result_string(r));
    for (i = 0; i < n; ++i) {
        if (!(w[i] == w[i]) || fabs(w[i]) > DBL_MAX) finite = 0;
        if (i + 1 < n && !(w[i] <= w[i + 1])) ascending = 0;
    }
    CHECK(finite && ascending, "syev %s n=%zu: eigenvalues %s", label, n,
          finite ? "not in ascending order" : "not finite");
    /* || A0 V - V diag(w) ||_F and || V^T V - I ||_F */
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j) {
            double s = 0, d = 0;
            for (p = 0; p < n; ++p) {
                s += A0[i * n + p] * A[p * lda + j];
                d += A[p * lda + i] * A[p * lda + j];
            }
            s -= A[i * lda + j] * w[j];
            d -= i == j ? 1.0 : 0.0;
            res += s * s;
            orth += d * d;
        }
    res = sqrt(res);
    orth = sqrt(orth);
    rtol = 256.0 * (double)n * eps * normA;
    otol = 256.0 * (double)n * eps;
    CHECK(res <= rtol, "syev %s n=%zu: ||A V - V diag(w)|| = %.3g > %.3g (||A|| = %.3g)", label,
          n, res, rtol, normA);
    CHECK(orth <= otol, "syev %s n=%zu: ||V^T V - I|| = %.3g > %.3g", label, n, orth, otol);
    if (expect) {
        ex = (double *)xmalloc(n * sizeof(double));
        memcpy(ex, expect, n * sizeof(double));
        qsort(ex, n, sizeof(double), cmp_double);
        for (i = 0; i < n; ++i) {
            double d = fabs(w[i] - ex[i]);
            if (!(d <= maxdev)) maxdev = d == d ? d : HUGE_VAL;
        }
        CHECK(maxdev <= 100.0 * (double)n * eps * normA,
              "syev %s n=%zu: eigenvalues off by %.3g (tol %.3g)", label, n, maxdev,
              100.0 * (double)n * eps * normA);
        free(ex);
    }
    for (i = 0; i + 1 < n; ++i)
        for (j = n; j < lda; ++j) padbad += dbits(A[i * lda + j]) != SENT_BITS_D;
    CHECK(padbad == 0, "syev %s n=%zu lda=%zu: %zu padding elements changed", label, n, lda,
          padbad);
    free(A);
    free(w);
    free(work);
}

static void test_syev(void) {
    static const size_t sizes[] = {1, 2, 7, 33, 100, 300};
    size_t s, i, j;
    size_t nmax = 300;
    double *A = (double *)xmalloc(nmax * nmax * sizeof(double));
    double *lam = (double *)xmalloc(nmax * sizeof(double));
    char label[64];

    for (s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s];
        /* random symmetric, entries in [-1,1) */
        for (i = 0; i < n; ++i)
            for (j = 0; j <= i; ++j) A[i * n + j] = A[j * n + i] = rnd_sym();
        syev_case("random", n, A, s % 2 ? 3 : 0, NULL);
        /* known random spectrum */
        for (i = 0; i < n; ++i) lam[i] = 4.0 * rnd_unit() - 2.0;
        make_spectrum(A, lam, n, 1);
        syev_case("known spectrum", n, A, s % 2 ? 0 : 5, lam);
        /* identity */
        for (i = 0; i < n; ++i) lam[i] = 1.0;
        make_spectrum(A, lam, n, 0);
        syev_case("identity", n, A, 0, lam);
        /* zero */
        for (i = 0; i < n; ++i) lam[i] = 0.0;
        make_spectrum(A, lam, n, 0);
        syev_case("zero", n, A, 1, lam);
        /* rank one: v v^T, eigenvalues |v|^2 and n-1 zeros */
        {
            double v[300], nv = 0;
            for (i = 0; i < n; ++i) v[i] = rnd_sym(), nv += v[i] * v[i];
            for (i = 0; i < n; ++i)
                for (j = 0; j < n; ++j) A[i * n + j] = v[i] * v[j];
            for (i = 0; i < n; ++i) lam[i] = i ? 0.0 : nv;
            syev_case("rank one", n, A, 0, lam);
        }
        /* eigenvalues spread over 1e-8 .. 1e8, rotated and diagonal */
        for (i = 0; i < n; ++i)
            lam[i] = n == 1 ? 1e8 : pow(10.0, -8.0 + 16.0 * (double)i / (double)(n - 1));
        make_spectrum(A, lam, n, 1);
        syev_case("spread 1e-8..1e8", n, A, 2, lam);
        for (i = 0; i < n; ++i) lam[i] = lam[i] * ((i % 3) == 1 ? -1.0 : 1.0);
        make_spectrum(A, lam, n, 0);
        syev_case("diagonal +-1e-8..1e8", n, A, 0, lam);
        /* clusters: repeated eigenvalues, rotated */
        for (i = 0; i < n; ++i) lam[i] = (double)(i % 3) - 1.0;
        make_spectrum(A, lam, n, 1);
        syev_case("three clusters", n, A, 0, lam);
        /* a spiked spectrum (a Gram matrix of low rank plus noise): the bulk,
           1e-4 of the largest apart, is one cluster for inverse iteration */
        for (i = 0; i < n; ++i) lam[i] = i % 61 == 5 ? pow(10.0, 4.0 + (double)(i % 5)) : 1.0 + rnd_unit();
        make_spectrum(A, lam, n, 1);
        syev_case("spiked bulk", n, A, s % 2 ? 2 : 0, lam);
    }
    /* diag(1,1,2,2), plain and rotated */
    lam[0] = 1;
    lam[1] = 1;
    lam[2] = 2;
    lam[3] = 2;
    make_spectrum(A, lam, 4, 0);
    syev_case("diag(1,1,2,2)", 4, A, 0, lam);
    make_spectrum(A, lam, 4, 1);
    syev_case("rotated diag(1,1,2,2)", 4, A, 3, lam);
    /* 2x2 [[2,1],[1,2]] -> 1, 3 and 1x1 */
    A[0] = 2;
    A[1] = 1;
    A[2] = 1;
    A[3] = 2;
    lam[0] = 1;
    lam[1] = 3;
    syev_case("[[2,1],[1,2]]", 2, A, 0, lam);
    A[0] = -3.5;
    lam[0] = -3.5;
    syev_case("[-3.5]", 1, A, 0, lam);
    /* Wilkinson W21+: pairs of eigenvalues agreeing to ~1e-14 */
    {
        size_t n = 21;
        for (i = 0; i < n * n; ++i) A[i] = 0;
        for (i = 0; i < n; ++i) {
            A[i * n + i] = fabs(10.0 - (double)i);
            if (i + 1 < n) A[i * n + i + 1] = A[(i + 1) * n + i] = 1.0;
        }
        syev_case("Wilkinson W21+", n, A, 0, NULL);
    }
    /* 33 x 33: one eigenvalue 5 of multiplicity 30 and three others */
    for (i = 0; i < 33; ++i) lam[i] = i < 30 ? 5.0 : (double)i - 40.0;
    make_spectrum(A, lam, 33, 1);
    syev_case("multiplicity 30", 33, A, 0, lam);
    /* scaled random symmetric matrices */
    for (s = 0; s < 2; ++s) {
        double sc = s ? 1e100 : 1e-100;
        size_t n = 7;
        for (i = 0; i < n; ++i) lam[i] = sc * (double)((int)i - 3);
        make_spectrum(A, lam, n, 1);
        sprintf(label, "spectrum scaled by %g", sc);
        syev_case(label, n, A, 0, lam);
    }
    { /* across the panel width (32) and its multiples: random and clustered spectra */
        static const size_t big[] = {31, 32, 33, 64, 65, 255, 257};
        double *B = (double *)xmalloc(257 * 257 * sizeof(double)), *lb = (double *)xmalloc(257 * sizeof(double));
        for (s = 0; s < sizeof big / sizeof big[0]; ++s) {
            size_t n = big[s];
            for (i = 0; i < n; ++i) lb[i] = 4.0 * rnd_unit() - 2.0;
            make_spectrum_fast(B, lb, n);
            syev_case("random spectrum", n, B, s % 2 ? 3 : 0, lb);
            for (i = 0; i < n; ++i) lb[i] = (double)(i % 4) + 1e-12 * (double)(i % 3);
            make_spectrum_fast(B, lb, n);
            syev_case("four tight clusters", n, B, 0, lb);
        }
        for (i = 0; i < 64; ++i) lb[i] = 4.0 * rnd_unit() - 2.0;
        make_spectrum_fast(B, lb, 64);
        { /* the fallback (QL with rotations) */
            double *Aw = (double *)xmalloc(64 * 64 * sizeof(double)), *ww = (double *)xmalloc(64 * sizeof(double));
            void *wk = xmalloc(acem_syev_work_bytes(64));
            double res = 0, nrm = 0;
            size_t p;
            memcpy(Aw, B, 64 * 64 * sizeof(double));
            CHECK(acem__syev_its(64, Aw, 64, ww, wk, 0) == ACEM_OK, "syev fallback: failed");
            for (i = 0; i < 64; ++i)
                for (j = 0; j < 64; ++j) {
                    double v = -Aw[i * 64 + j] * ww[j];
                    for (p = 0; p < 64; ++p) v += B[i * 64 + p] * Aw[p * 64 + j];
                    res += v * v;
                    nrm += B[i * 64 + j] * B[i * 64 + j];
                }
            CHECK(sqrt(res) <= 256.0 * 64 * DBL_EPSILON * sqrt(nrm), "syev fallback: residual %.3g", sqrt(res));
            free(Aw); free(ww); free(wk);
        }
        free(B);
        free(lb);
    }
    { /* n = 0 */
        double dummy = 1.0, wd = 2.0;
        void *work = xmalloc(acem_syev_work_bytes(0));
        acem_result r = acem_syev(0, &dummy, 1, &wd, work);
        CHECK(r == ACEM_OK && dummy == 1.0 && wd == 2.0, "syev n=0: returned %d", (int)r);
        free(work);
    }
    free(A);
    free(lam);
    if (verbose) printf("# syev: %d cases\n", n_syev_cases);
}


/* ---- the refinement's eigensolver internals (f64) -------------------------------
   acem__gram_f64 against a naive f64 Gram; acem__syev_top (top q eigenpairs:
   blocked tridiagonalisation, QL, inverse iteration, WY back-transformation)
   and acem_syev on sizes across the panel width (1, 2, 7, 33, 255, 257, 768)
   with known spectra: random, clustered / repeated, rank-deficient Grams;
   eigenvalues against the known ones, residual ||A v - lambda v|| and
   orthonormality of the vectors, zero vectors under the rank tolerance, the
   QL fallback (inverse iteration limit 0) and bitwise repeatability. */
static int n_top_cases = 0;

/* a parallel_for that runs the parts in reverse order on the calling thread:
   the second run of each case goes through the parallel paths (inverse
   iteration by clusters, the tridiagonalisation's trailing updates) */
static void pfor_reverse(void *user, void (*fn)(void *, size_t), void *ctx, size_t count) {
    (void)user;
    while (count--) fn(ctx, count);
}

/* top-q eigenpairs of the n x n symmetric A0 (expect: all eigenvalues, any
   order, or NULL); tolf as acem__syev_top's; maxits 0 forces the fallback;
   dc: all vectors (q = n) by divide and conquer */
static void top_case_run(const char *label, size_t n, const double *A0, size_t q, double tolf,
                         const double *expect, int maxits, int dc) {
    double *A = (double *)xmalloc(n * n * sizeof(double)), *A2 = (double *)xmalloc(n * n * sizeof(double));
    double *w = (double *)xmalloc(n * sizeof(double)), *w2 = (double *)xmalloc(n * sizeof(double));
    double *V = (double *)xmalloc(n * n * sizeof(double)), *V2 = (double *)xmalloc(n * n * sizeof(double));
    double *work = (double *)xmalloc(ACEM__TOP_WORK(n) * sizeof(double));
    double *gw = (double *)xmalloc(acem__dgemm_work(n, n, n) * sizeof(double));
    double *dcw = dc ? (double *)xmalloc(ACEM__DC_WORK(n) * sizeof(double)) : NULL;
    double normA = 0, eps = DBL_EPSILON, res = 0, orth = 0, maxdev = 0, vmin;
    size_t i, j, p, c, zerobad = 0, same = 1;
    int ascending = 1;
    acem_result r, r2;
    acem__exec E;
    const char *how = dc ? " (divide and conquer)" : "";
    ++n_top_cases;
    for (i = 0; i < n * n; ++i) normA += A0[i] * A0[i];
    normA = sqrt(normA);
    memcpy(A, A0, n * n * sizeof(double));
    E.pfor = pfor_reverse;
    E.user = NULL;
    E.work_bytes = acem__lane_bytes(n, n);
    E.work = (unsigned char *)xmalloc(3 * E.work_bytes);
    r = acem__syev_top_its(n, A, n, q, tolf, w, V, q ? q : 1, work, gw, maxits, NULL, dcw, 0.0);
    /* 2 and 3 lanes: the inverse iteration's parts (4 per lane) begin at other vectors */
    for (E.lanes = 2; E.lanes <= 3; ++E.lanes) {
        memcpy(A2, A0, n * n * sizeof(double));
        r2 = acem__syev_top_its(n, A2, n, q, tolf, w2, V2, q ? q : 1, work, gw, maxits, &E, dcw, 0.0);
        for (i = 0; i < n; ++i) same &= dbits(w[i]) == dbits(w2[i]);
        for (i = 0; i < n * q; ++i) same &= dbits(V[i]) == dbits(V2[i]);
        same &= r2 == r;
    }
    free(E.work);
    CHECK(r == ACEM_OK, "syev_top %s%s n=%zu q=%zu: returned %d", label, how, n, q, (int)r);
    for (i = 0; i + 1 < n; ++i)
        if (!(w[i] <= w[i + 1])) ascending = 0;
    CHECK(ascending, "syev_top %s%s n=%zu: eigenvalues not ascending", label, how, n);
    CHECK(same, "syev_top %s%s n=%zu: a run on 2 or 3 lanes differs from the serial one", label, how, n);
    if (expect) {
        double *ex = (double *)xmalloc(n * sizeof(double));
        memcpy(ex, expect, n * sizeof(double));
        qsort(ex, n, sizeof(double), cmp_double);
        for (i = 0; i < n; ++i) {
            double d = fabs(w[i] - ex[i]);
            if (!(d <= maxdev)) maxdev = d == d ? d : HUGE_VAL;
        }
        CHECK(maxdev <= 100.0 * (double)n * eps * normA, "syev_top %s%s n=%zu: eigenvalues off by %.3g (tol %.3g)", label,
              how, n, maxdev, 100.0 * (double)n * eps * normA);
        free(ex);
    }
    vmin = tolf > 0 ? tolf * tolf * w[n - 1] : -HUGE_VAL;
    for (c = 0; c < q; ++c) { /* residual of each pair; zero vectors under the tolerance */
        double lam = w[n - 1 - c], s2 = 0, nv = 0;
        for (i = 0; i < n; ++i) nv += V[i * q + c] * V[i * q + c];
        if (!(lam > vmin)) { zerobad += nv != 0; continue; }
        for (i = 0; i < n; ++i) {
            double s = 0;
            for (p = 0; p < n; ++p) s += A0[i * n + p] * V[p * q + c];
            s -= lam * V[i * q + c];
            s2 += s * s;
        }
        res += s2;
        for (j = 0; j <= c; ++j) {
            double d = 0;
            if (!(w[n - 1 - j] > vmin)) continue;
            for (i = 0; i < n; ++i) d += V[i * q + c] * V[i * q + j];
            d -= j == c ? 1.0 : 0.0;
            orth += (j == c ? 1 : 2) * d * d;
        }
    }
    res = sqrt(res);
    orth = sqrt(orth);
    CHECK(res <= 256.0 * (double)n * eps * normA, "syev_top %s%s n=%zu q=%zu: ||A V - V diag(w)|| = %.3g > %.3g", label, how, n,
          q, res, 256.0 * (double)n * eps * normA);
    CHECK(orth <= 256.0 * (double)n * eps, "syev_top %s%s n=%zu q=%zu: ||V^T V - I|| = %.3g", label, how, n, q, orth);
    CHECK(zerobad == 0, "syev_top %s%s n=%zu: %zu vectors under the tolerance not zero", label, how, n, zerobad);
    free(A); free(A2); free(w); free(w2); free(V); free(V2); free(work); free(gw); free(dcw);
}

/* every case by inverse iteration, and (maxits > 0) again by divide and conquer, forced for any q */
static void top_case(const char *label, size_t n, const double *A0, size_t q, double tolf, const double *expect,
                     int maxits) {
    top_case_run(label, n, A0, q, tolf, expect, maxits, 0);
    if (maxits > 0) top_case_run(label, n, A0, q, tolf, expect, maxits, 1); /* dclim 0: D&C for any q */
}

static void test_gram(void) {
    static const size_t ns[] = {1, 2, 7, 33, 100};
    static const size_t ks[] = {0, 1, 5, 64, 300};
    size_t a, b, t, i, j, p;
    for (a = 0; a < sizeof ns / sizeof ns[0]; ++a)
        for (b = 0; b < sizeof ks / sizeof ks[0]; ++b)
            for (t = 0; t < 2; ++t) {
                size_t n = ns[a], k = ks[b], ldf = (t ? n : k) + 3, rowsF = t ? k : n;
                float *F = (float *)xmalloc((rowsF ? rowsF : 1) * ldf * sizeof(float));
                double *G = (double *)xmalloc(n * (n + 2) * sizeof(double));
                double *gw = (double *)xmalloc(acem__dgemm_work(n, n, k) * sizeof(double));
                double num = 0, den = 0;
                size_t asym = 0;
                for (i = 0; i < rowsF * ldf; ++i) F[i] = rnd_sym() * (float)(1 + (i % 7));
                for (i = 0; i < n * (n + 2); ++i) G[i] = bitsd(SENT_BITS_D);
                acem__gram_f64((int)t, n, k, F, ldf, G, n + 2, gw);
                for (i = 0; i < n; ++i)
                    for (j = 0; j < n; ++j) {
                        double s = 0, d;
                        for (p = 0; p < k; ++p)
                            s += t ? (double)F[p * ldf + i] * F[p * ldf + j] : (double)F[i * ldf + p] * F[j * ldf + p];
                        d = G[i * (n + 2) + j] - s;
                        num += d * d;
                        den += s * s;
                        asym += dbits(G[i * (n + 2) + j]) != dbits(G[j * (n + 2) + i]);
                    }
                CHECK(num <= 1e-28 * den || (den == 0 && num == 0), "gram_f64 trans=%zu n=%zu k=%zu: rel err %.3g", t, n,
                      k, sqrt(num / (den > 0 ? den : 1)));
                CHECK(asym == 0, "gram_f64 trans=%zu n=%zu k=%zu: not symmetric", t, n, k);
                for (i = 0; i < n; ++i)
                    for (j = n; j < n + 2; ++j) asym += dbits(G[i * (n + 2) + j]) != SENT_BITS_D;
                CHECK(asym == 0, "gram_f64 trans=%zu n=%zu k=%zu: padding written", t, n, k);
                free(F); free(G); free(gw);
            }
}

/* F (rows x cols, ld ldf) = scale B C with random B (rows x rank) and C
   (rank x cols), drawn in that order; rank at most rank before the rounding to float */
static void make_lowrank(float *F, size_t rows, size_t cols, size_t ldf, size_t rank, double scale) {
    double *B = dalloc(rows * rank), *Cm = dalloc(rank * cols);
    size_t i, j, p;
    for (i = 0; i < rows * rank; ++i) B[i] = rnd_sym();
    for (i = 0; i < rank * cols; ++i) Cm[i] = rnd_sym();
    for (i = 0; i < rows; ++i)
        for (j = 0; j < cols; ++j) {
            double v = 0;
            for (p = 0; p < rank; ++p) v += B[i * rank + p] * Cm[p * cols + j];
            F[i * ldf + j] = (float)(scale * v);
        }
    free(B); free(Cm);
}

static void test_syev_top(void) {
    static const size_t sizes[] = {1, 2, 7, 33, 255, 257, 768};
    size_t s, i;
    double *A = (double *)xmalloc(768 * 768 * sizeof(double)), *lam = (double *)xmalloc(768 * sizeof(double));
    char label[80];
    test_gram();
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s], q = (size_t)(0.3 * (double)n) + 1;
        for (i = 0; i < n; ++i) lam[i] = 4.0 * rnd_unit() - 2.0;
        make_spectrum_fast(A, lam, n);
        top_case("random spectrum", n, A, q, 0.0, lam, 5);
        if (n <= 257) top_case("random spectrum, all", n, A, n, 0.0, lam, 5);
        if (n == 33 || n == 257) { /* far from 1, inside the range the solver leaves unscaled: the
                                      QL's and the inverse iteration's intermediates stay in range */
            static const double far[] = {1e-150, 1e150};
            size_t f;
            for (f = 0; f < 2; ++f) {
                for (i = 0; i < n; ++i) lam[i] = far[f] * (4.0 * rnd_unit() - 2.0);
                make_spectrum_fast(A, lam, n);
                top_case("random spectrum, scaled far from 1", n, A, q, 0.0, lam, 5);
            }
        }
        for (i = 0; i < n; ++i) lam[i] = (double)(i % 3) - 1.0 + 1e-13 * (double)(i % 5); /* 3 clusters */
        make_spectrum_fast(A, lam, n);
        top_case("three tight clusters", n, A, q, 0.0, lam, 5);
        /* a few spikes over a bulk of distinct eigenvalues within 1e-7 of the
           largest: one cluster, made in groups (block re-orthogonalisation) */
        for (i = 0; i < n; ++i) lam[i] = i < 4 ? 1e3 * (double)(i + 1) : 1.0 + 1e-4 * (double)i / (double)n;
        make_spectrum_fast(A, lam, n);
        top_case("spikes over one cluster", n, A, q, 0.0, lam, 5);
        for (i = 0; i < n; ++i) lam[i] = i < n / 2 ? 5.0 : (double)i / (double)n; /* a repeated top */
        make_spectrum_fast(A, lam, n);
        top_case("repeated top eigenvalue", n, A, q, 0.0, lam, 5);
        if (n >= 7) { /* rank-deficient Gram F^T F, F = B C (n x r, r x n): eigenvalues ~0 get zero vectors */
            size_t r = n / 4 + 1;
            float *F = (float *)xmalloc(n * n * sizeof(float));
            double *gw = (double *)xmalloc(acem__dgemm_work(n, n, n) * sizeof(double));
            make_lowrank(F, n, n, n, r, 1.0);
            acem__gram_f64(1, n, n, F, n, A, n, gw);
            sprintf(label, "rank-%zu Gram", r);
            top_case(label, n, A, q < r + 5 ? r + 5 < n ? r + 5 : n : q, (double)n * ACEM__FLT_EPS, NULL, 5);
            if (n <= 257) top_case(label, n, A, n, (double)n * ACEM__FLT_EPS, NULL, 5); /* all: zero vectors too */
            free(F); free(gw);
        }
        if (n <= 257) { /* the QL fallback */
            for (i = 0; i < n; ++i) lam[i] = 4.0 * rnd_unit() - 2.0;
            make_spectrum_fast(A, lam, n);
            top_case("fallback (rotations)", n, A, q, 0.0, lam, 0);
        }
    }
    { /* zero matrix: all eigenvalues 0; with a rank tolerance every vector is zero */
        for (i = 0; i < 33 * 33; ++i) A[i] = 0;
        for (i = 0; i < 33; ++i) lam[i] = 0;
        top_case("zero", 33, A, 10, 0.0, lam, 5);
        top_case("zero, rank tolerance", 33, A, 10, 1e-3, lam, 5);
    }
    free(A);
    free(lam);
    if (verbose) printf("# syev_top: %d cases\n", n_top_cases);
}

/* ---- the public top-k forms -------------------------------------------------------
   acem_syev_top must give exactly the internal solver's pairs (it only carves
   the workspace and copies V out); acem_svd_top is checked against a Jacobi
   SVD in f64 (tests/ref.c): singular values, ||F v - s u||, ||F^T u - s v||,
   orthonormal U and V, zero columns under the rank tolerance, *kept; both
   with padded leading dimensions (NaN sentinels must survive), a workspace of
   exactly the size asked for (8 bytes off alignment, guard bytes after it),
   and the argument / non-finite errors. */
#define TOP_GUARD 64
static unsigned char *top_at(unsigned char *raw) { return raw + ((64u - ((size_t)raw & 63u)) & 63u) + 8; }
static unsigned char *top_work(size_t bytes) {
    unsigned char *raw = (unsigned char *)xmalloc(bytes + 72 + TOP_GUARD);
    memset(top_at(raw) + bytes, 0xA5, TOP_GUARD);
    return raw;
}
static int top_guard_ok(unsigned char *raw, size_t bytes) {
    size_t i;
    for (i = 0; i < TOP_GUARD; ++i)
        if (top_at(raw)[bytes + i] != 0xA5) return 0;
    return 1;
}

static void public_syev_top_case(size_t n, size_t k) {
    size_t ldv = k + 3, i, c, bytes = acem_syev_top_work_bytes(n), diff = 0, pad = 0;
    double *lam = dalloc(n), *A = dalloc(n * n), *A2 = dalloc(n * n);
    double *w = dalloc(n), *w2 = dalloc(n), *V = dalloc(n * ldv), *V2 = dalloc(n * n);
    double *ew = dalloc(ACEM__TOP_WORK(n)), *gw = dalloc(acem__dgemm_work(n, n, n));
    unsigned char *raw = top_work(bytes);
    acem_result r, r2;
    for (i = 0; i < n; ++i) lam[i] = 4.0 * rnd_unit() - 2.0;
    make_spectrum_fast(A, lam, n);
    memcpy(A2, A, n * n * sizeof(double));
    for (i = 0; i < n * ldv; ++i) V[i] = bitsd(SENT_BITS_D);
    r = acem_syev_top(n, A, n, k, w, V, ldv, top_at(raw));
    r2 = acem__syev_top(n, A2, n, k, 0.0, w2, V2, k ? k : 1, ew, gw, NULL, NULL);
    CHECK(r == ACEM_OK && r2 == ACEM_OK, "acem_syev_top n=%zu k=%zu: returned %d (internal %d)", n, k, (int)r, (int)r2);
    for (i = 0; i < n; ++i) {
#ifdef ACEM_USE_LAPACK
        /* an external LAPACK may round differently for another alignment of
           its workspace (OpenBLAS 0.3.21's generic kernels, which it falls
           back to on CPUs newer than it knows, do: Intel family 6 model 207):
           the same to 1e-12 (eigenvalues in [-2, 2], gaps ~4/n, unit vectors) */
        diff += !(fabs(w[i] - w2[i]) <= 1e-12);
        for (c = 0; c < k; ++c) diff += !(fabs(V[i * ldv + c] - V2[i * k + c]) <= 1e-12);
#else
        diff += dbits(w[i]) != dbits(w2[i]);
        for (c = 0; c < k; ++c) diff += dbits(V[i * ldv + c]) != dbits(V2[i * k + c]);
#endif
        for (c = k; c < ldv; ++c) pad += dbits(V[i * ldv + c]) != SENT_BITS_D;
    }
    CHECK(diff == 0, "acem_syev_top n=%zu k=%zu: %zu values differ from the internal solver's", n, k, diff);
    CHECK(pad == 0, "acem_syev_top n=%zu k=%zu: %zu padding values written", n, k, pad);
    CHECK(top_guard_ok(raw, bytes), "acem_syev_top n=%zu k=%zu: wrote past acem_syev_top_work_bytes", n, k);
    free(lam); free(A); free(A2); free(w); free(w2); free(V); free(V2); free(ew); free(gw); free(raw);
}

/* F: rows x cols, rank r (0: full), scaled by 10^scale */
static void public_svd_top_case(size_t rows, size_t cols, size_t rank, size_t k, int scale) {
    size_t n = rows < cols ? rows : cols, mx = rows < cols ? cols : rows, ldf = cols + 2, ldu = k + 1, ldv = k + 2;
    size_t bytes = acem_svd_top_work_bytes(rows, cols), i, j, p, c, kept = 12345, want_kept = 0, pad = 0, zerobad = 0;
    float *F = (float *)xmalloc(rows * ldf * sizeof(float)), *U = (float *)xmalloc(rows * ldu * sizeof(float));
    float *V = (float *)xmalloc(cols * ldv * sizeof(float));
    double *Fd = dalloc(rows * cols), *Ur = dalloc(rows * n), *sr = dalloc(n), *Vt = dalloc(n * cols), *s = dalloc(n);
    double f = pow(10.0, scale), sdev = 0, res = 0, orth = 0, tol;
    unsigned char *raw = top_work(bytes);
    acem_result r;
    for (i = 0; i < rows * ldf; ++i) F[i] = bitsf(SENT_BITS);
    if (rank) {
        make_lowrank(F, rows, cols, ldf, rank, f);
    } else {
        for (i = 0; i < rows; ++i)
            for (j = 0; j < cols; ++j) F[i * ldf + j] = (float)(f * rnd_sym() * (1.0 + (double)(j % 5)));
    }
    for (i = 0; i < rows; ++i)
        for (j = 0; j < cols; ++j) Fd[i * cols + j] = F[i * ldf + j];
    for (i = 0; i < rows * ldu; ++i) U[i] = bitsf(SENT_BITS);
    for (i = 0; i < cols * ldv; ++i) V[i] = bitsf(SENT_BITS);
    r = acem_svd_top(rows, cols, F, ldf, k, s, U, ldu, V, ldv, &kept, top_at(raw));
    CHECK(r == ACEM_OK, "acem_svd_top %zux%zu k=%zu: returned %d", rows, cols, k, (int)r);
    CHECK(ref_svd(rows, cols, Fd, Ur, sr, Vt) == 0, "ref_svd %zux%zu failed", rows, cols);
    tol = (double)mx * FLT_EPSILON * sr[0];
    for (i = 0; i < n; ++i) { /* f64 Gram: absolute error about eps64 s_1^2 / s_i, so 1e-6 s_1 is loose */
        double d = fabs(s[i] - sr[i]);
#ifdef ACEM_USE_LAPACK /* dsyevr computes the top max(k, 1) only, the rest are 0 */
        if (i >= (k ? k : 1)) d = fabs(s[i]);
#endif
        if (!(d <= sdev)) sdev = d == d ? d : HUGE_VAL;
        if (i + 1 < n) CHECK(s[i] >= s[i + 1], "acem_svd_top %zux%zu: s not descending at %zu", rows, cols, i);
    }
    CHECK(sdev <= 1e-6 * sr[0], "acem_svd_top %zux%zu: singular values off by %.3g (s_1 %.3g)", rows, cols, sdev, sr[0]);
    for (c = 0; c < k; ++c) {
        double nu = 0, nv = 0;
        for (i = 0; i < rows; ++i) nu += (double)U[i * ldu + c] * U[i * ldu + c];
        for (j = 0; j < cols; ++j) nv += (double)V[j * ldv + c] * V[j * ldv + c];
        if (!(sr[c] > 1e3 * tol) && !(sr[c] < 1e-3 * tol)) continue; /* too close to the tolerance to judge */
        if (sr[c] < 1e-3 * tol) { zerobad += nu != 0 || nv != 0; continue; }
        ++want_kept;
        for (i = 0; i < rows; ++i) { /* F v_c - s_c u_c */
            double t = 0;
            for (j = 0; j < cols; ++j) t += Fd[i * cols + j] * V[j * ldv + c];
            t -= s[c] * U[i * ldu + c];
            res += t * t;
        }
        for (j = 0; j < cols; ++j) { /* F^T u_c - s_c v_c */
            double t = 0;
            for (i = 0; i < rows; ++i) t += Fd[i * cols + j] * U[i * ldu + c];
            t -= s[c] * V[j * ldv + c];
            res += t * t;
        }
        for (p = 0; p <= c; ++p) {
            double du = 0, dv = 0;
            if (!(sr[p] > 1e3 * tol)) continue;
            for (i = 0; i < rows; ++i) du += (double)U[i * ldu + c] * U[i * ldu + p];
            for (j = 0; j < cols; ++j) dv += (double)V[j * ldv + c] * V[j * ldv + p];
            du -= p == c; dv -= p == c;
            orth += du * du + dv * dv;
        }
    }
    CHECK(sqrt(res) <= 1e-4 * sr[0], "acem_svd_top %zux%zu k=%zu: residual %.3g (s_1 %.3g)", rows, cols, k, sqrt(res),
          sr[0]);
    CHECK(sqrt(orth) <= 1e-4, "acem_svd_top %zux%zu k=%zu: ||U^T U - I|| + ||V^T V - I|| = %.3g", rows, cols, k,
          sqrt(orth));
    CHECK(zerobad == 0, "acem_svd_top %zux%zu k=%zu: %zu pairs under the rank tolerance not zero", rows, cols, k, zerobad);
    CHECK(kept == want_kept, "acem_svd_top %zux%zu rank %zu k=%zu: kept %zu, expected %zu", rows, cols, rank, k, kept,
          want_kept);
    for (i = 0; i < rows; ++i)
        for (c = k; c < ldu; ++c) pad += fbits(U[i * ldu + c]) != SENT_BITS;
    for (j = 0; j < cols; ++j)
        for (c = k; c < ldv; ++c) pad += fbits(V[j * ldv + c]) != SENT_BITS;
    CHECK(pad == 0, "acem_svd_top %zux%zu k=%zu: %zu padding values written", rows, cols, k, pad);
    CHECK(top_guard_ok(raw, bytes), "acem_svd_top %zux%zu: wrote past acem_svd_top_work_bytes", rows, cols);
    free(F); free(U); free(V); free(Fd); free(Ur); free(sr); free(Vt); free(s); free(raw);
}

static void test_top_public(void) {
    static const size_t shapes[][3] = {{1, 1, 0}, {7, 3, 0}, {3, 7, 0}, {40, 33, 0}, {33, 40, 0}, {120, 20, 0},
                                       {20, 120, 0}, {60, 45, 6}, {45, 60, 6}, {50, 50, 1}};
    size_t a, i;
    public_syev_top_case(1, 1);
    public_syev_top_case(7, 0);
    public_syev_top_case(7, 7);
    public_syev_top_case(33, 10);
    public_syev_top_case(257, 77);
    for (a = 0; a < sizeof shapes / sizeof shapes[0]; ++a) {
        size_t n = shapes[a][0] < shapes[a][1] ? shapes[a][0] : shapes[a][1];
        public_svd_top_case(shapes[a][0], shapes[a][1], shapes[a][2], n, 0);
        public_svd_top_case(shapes[a][0], shapes[a][1], shapes[a][2], (size_t)(0.3 * (double)n), a % 2 ? 30 : -30);
    }
    { /* errors: k > n; a NaN in F; an Inf in A */
        float F[12], U[12], V[12];
        double s[4], A[9], w[3], Vd[9];
        size_t kept = 99;
        unsigned char *raw = top_work(acem_svd_top_work_bytes(3, 4) + acem_syev_top_work_bytes(3));
        for (i = 0; i < 12; ++i) F[i] = (float)i - 5.0f;
        CHECK(acem_svd_top(3, 4, F, 4, 4, s, U, 4, V, 4, &kept, top_at(raw)) == ACEM_ERR_INVALID_ARGUMENT && kept == 0,
              "acem_svd_top: k > min(rows, cols) not refused (kept %zu)", kept);
        F[5] = NAN;
        CHECK(acem_svd_top(3, 4, F, 4, 2, s, U, 2, V, 2, NULL, top_at(raw)) == ACEM_ERR_NONFINITE,
              "acem_svd_top: NaN input not reported");
        for (i = 0; i < 9; ++i) A[i] = 1.0;
        CHECK(acem_syev_top(3, A, 3, 4, w, Vd, 3, top_at(raw)) == ACEM_ERR_INVALID_ARGUMENT,
              "acem_syev_top: k > n not refused");
        A[4] = HUGE_VAL;
        CHECK(acem_syev_top(3, A, 3, 2, w, Vd, 3, top_at(raw)) == ACEM_ERR_NONFINITE,
              "acem_syev_top: Inf input not reported");
        CHECK(acem_svd_top(0, 4, F, 4, 0, s, U, 1, V, 1, &kept, top_at(raw)) == ACEM_OK && kept == 0,
              "acem_svd_top: empty F");
        free(raw);
    }
}

/* ---- half precision ---------------------------------------------------------- */
/* reference decoders (ldexp-based, independent of bit tricks) */
static double ref_f16_value(uint16_t h) { /* finite |value| of a non-negative pattern */
    unsigned e = (h >> 10) & 31u, m = h & 1023u;
    return e ? ldexp((double)(1024u + m), (int)e - 25) : ldexp((double)m, -24);
}
static double ref_bf16_value(uint16_t h) {
    unsigned e = (h >> 7) & 255u, m = h & 127u;
    return e ? ldexp((double)(128u + m), (int)e - 134) : ldexp((double)m, -133);
}
static int f16_isnan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu); }
static int bf16_isnan(uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x007Fu); }

/* tables of the non-negative finite values in increasing order, with one more
   entry at the end: the value the next pattern (+Inf) would have if the exponent
   were unbounded (65536 for f16, 2^128 for bf16) - round to nearest even then
   gives IEEE overflow to Inf */
static double f16_tab[0x7C01];
static double bf16_tab[0x7F81];

static uint16_t ref_round(const double *tab, unsigned top, uint16_t inf_bits, uint16_t nan_bits,
                          float f) {
    uint32_t u = fbits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    double a;
    unsigned lo, hi, mid;
    if (f32_isnan(f)) return nan_bits;
    a = fabs((double)f);
    if (a >= tab[top]) return (uint16_t)(sign | inf_bits);
    /* largest lo with tab[lo] <= a */
    lo = 0;
    hi = top;
    while (hi - lo > 1) {
        mid = (lo + hi) / 2;
        if (tab[mid] <= a) lo = mid;
        else hi = mid;
    }
    if (tab[lo] == a) return (uint16_t)(sign | lo);
    {
        double dlo = a - tab[lo], dhi = tab[lo + 1] - a;
        unsigned r = dlo < dhi ? lo : dhi < dlo ? lo + 1 : ((lo & 1u) ? lo + 1 : lo);
        return (uint16_t)(sign | r);
    }
}
static uint16_t ref_f32_to_f16(float f) { return ref_round(f16_tab, 0x7C00u, 0x7C00u, 0x7E00u, f); }
static uint16_t ref_f32_to_bf16(float f) { return ref_round(bf16_tab, 0x7F80u, 0x7F80u, 0x7FC0u, f); }

/* scalar conversion checked against the reference; NaN only needs to stay NaN */
static size_t conv_bad_f16 = 0, conv_bad_bf16 = 0, conv_n = 0;
static void conv_check(float f, const char *why) {
    uint16_t got = acem_f32_to_f16(f), want = ref_f32_to_f16(f);
    uint16_t gotb = acem_f32_to_bf16(f), wantb = ref_f32_to_bf16(f);
    int ok = f32_isnan(f) ? f16_isnan(got) : got == want;
    int okb = f32_isnan(f) ? bf16_isnan(gotb) : gotb == wantb;
    ++conv_n;
    if (!ok) {
        if (conv_bad_f16 < 10)
            printf("  f32_to_f16(%.9g = 0x%08lX) [%s] = 0x%04X, expected 0x%04X\n", (double)f,
                   (unsigned long)fbits(f), why, got, want);
        ++conv_bad_f16;
    }
    if (!okb) {
        if (conv_bad_bf16 < 10)
            printf("  f32_to_bf16(%.9g = 0x%08lX) [%s] = 0x%04X, expected 0x%04X\n", (double)f,
                   (unsigned long)fbits(f), why, gotb, wantb);
        ++conv_bad_bf16;
    }
}

static void test_half(void) {
    uint32_t h;
    unsigned i;
    size_t bad, bad2, bad3, k;
    uint16_t *hs = (uint16_t *)xmalloc(65536 * sizeof(uint16_t));
    uint16_t *hs2 = (uint16_t *)xmalloc(65536 * sizeof(uint16_t));
    float *fs = (float *)xmalloc(65536 * sizeof(float));

    for (i = 0; i < 0x7C00u; ++i) f16_tab[i] = ref_f16_value((uint16_t)i);
    f16_tab[0x7C00] = 65536.0;
    for (i = 0; i < 0x7F80u; ++i) bf16_tab[i] = ref_bf16_value((uint16_t)i);
    bf16_tab[0x7F80] = ldexp(1.0, 128);
    for (i = 1; i <= 0x7C00u; ++i)
        if (!(f16_tab[i] > f16_tab[i - 1])) printf("  internal: f16 table not increasing\n");

    /* ---- f16 -> f32, exhaustive ---- */
    bad = bad2 = bad3 = 0;
    for (h = 0; h < 65536; ++h) {
        uint16_t x = (uint16_t)h;
        float got = acem_f16_to_f32(x);
        int isnan16 = f16_isnan(x);
        int sign = (x & 0x8000u) != 0;
        if (isnan16) {
            if (!f32_isnan(got)) {
                if (!bad) printf("  f16_to_f32(0x%04X) = %.9g, expected NaN\n", x, (double)got);
                ++bad;
            }
            if (!f16_isnan(acem_f32_to_f16(got))) {
                if (!bad3) printf("  f16 NaN 0x%04X does not stay NaN through f32\n", x);
                ++bad3;
            }
            continue;
        }
        {
            double mag = (x & 0x7C00u) == 0x7C00u ? HUGE_VAL : ref_f16_value((uint16_t)(x & 0x7FFFu));
            float want = (float)(sign ? -mag : mag);
            uint16_t back;
            if (fbits(got) != fbits(want)) {
                if (bad < 10)
                    printf("  f16_to_f32(0x%04X) = %.9g (0x%08lX), expected %.9g (0x%08lX)\n", x,
                           (double)got, (unsigned long)fbits(got), (double)want,
                           (unsigned long)fbits(want));
                ++bad;
            }
            back = acem_f32_to_f16(got);
            if (back != x) {
                if (bad2 < 10)
                    printf("  f16 round trip 0x%04X -> %.9g -> 0x%04X\n", x, (double)got, back);
                ++bad2;
            }
        }
    }
    CHECK(bad == 0, "f16_to_f32: %zu of 65536 patterns wrong", bad);
    CHECK(bad2 == 0, "f16 -> f32 -> f16: %zu non-NaN patterns do not round-trip", bad2);
    CHECK(bad3 == 0, "f16 NaN -> f32 -> f16: %zu NaN patterns did not stay NaN", bad3);
    CHECK(fbits(acem_f16_to_f32(0x8000u)) == 0x80000000u && fbits(acem_f16_to_f32(0)) == 0,
          "f16 signed zeros");
    CHECK(acem_f16_to_f32(0x7C00u) == bitsf(0x7F800000u) &&
              acem_f16_to_f32(0xFC00u) == bitsf(0xFF800000u),
          "f16 infinities");
    CHECK(acem_f16_to_f32(0x0001u) == (float)ldexp(1.0, -24) &&
              acem_f16_to_f32(0x03FFu) == (float)ldexp(1023.0, -24) &&
              acem_f16_to_f32(0x7BFFu) == 65504.0f,
          "f16 smallest subnormal / largest subnormal / largest finite");

    /* ---- bf16 -> f32, exhaustive: a shift ---- */
    bad = bad2 = bad3 = 0;
    for (h = 0; h < 65536; ++h) {
        uint16_t x = (uint16_t)h;
        float got = acem_bf16_to_f32(x);
        if (bf16_isnan(x)) {
            if (!f32_isnan(got)) ++bad;
            if (!bf16_isnan(acem_f32_to_bf16(got))) ++bad3;
            continue;
        }
        if (fbits(got) != (h << 16)) {
            if (bad < 10)
                printf("  bf16_to_f32(0x%04X) = 0x%08lX, expected 0x%08lX\n", x,
                       (unsigned long)fbits(got), (unsigned long)(h << 16));
            ++bad;
        }
        {
            uint32_t ex = x & 0x7FFFu;
            double mag = ex == 0x7F80u ? HUGE_VAL : ref_bf16_value((uint16_t)ex);
            if ((double)fabsf(got) != mag) {
                if (bad < 10)
                    printf("  bf16_to_f32(0x%04X) magnitude %.9g, expected %.9g\n", x,
                           (double)fabsf(got), mag);
                ++bad;
            }
        }
        if (acem_f32_to_bf16(got) != x) {
            if (bad2 < 10) printf("  bf16 round trip 0x%04X -> 0x%04X\n", x, acem_f32_to_bf16(got));
            ++bad2;
        }
    }
    CHECK(bad == 0, "bf16_to_f32: %zu of 65536 patterns wrong", bad);
    CHECK(bad2 == 0, "bf16 -> f32 -> bf16: %zu non-NaN patterns do not round-trip", bad2);
    CHECK(bad3 == 0, "bf16 NaN -> f32 -> bf16: %zu NaN patterns did not stay NaN", bad3);

    /* ---- f32 -> f16 / bf16 rounding against the double reference ---- */
    /* every value, every halfway point, and one float ulp either side of both */
    conv_bad_f16 = conv_bad_bf16 = 0;
    for (i = 0; i < 0x7C00u; ++i) {
        float v = (float)f16_tab[i], mid = (float)((f16_tab[i] + f16_tab[i + 1]) * 0.5);
        int sgn;
        for (sgn = 0; sgn < 2; ++sgn) {
            float s = sgn ? -1.0f : 1.0f;
            uint16_t even = (uint16_t)((i & 1u) ? i + 1 : i), sb = (uint16_t)(sgn ? 0x8000u : 0);
            uint16_t below = (uint16_t)(sb | i), above = (uint16_t)(sb | (i + 1));
            uint16_t g1 = acem_f32_to_f16(s * mid);
            uint16_t g2 = acem_f32_to_f16(s * nextafterf(mid, 0.0f));
            uint16_t g3 = acem_f32_to_f16(s * nextafterf(mid, HUGE_VALF));
            if ((double)mid * 2.0 != f16_tab[i] + f16_tab[i + 1])
                printf("  internal: f16 midpoint %u not exact\n", i);
            /* direct expectations, independent of the reference search */
            if (g1 != (uint16_t)(sb | even) || g2 != below || g3 != above) {
                if (conv_bad_f16 < 10)
                    printf("  f32_to_f16 near halfway between 0x%04X and 0x%04X: got 0x%04X "
                           "0x%04X 0x%04X, expected 0x%04X 0x%04X 0x%04X\n",
                           below, above, g2, g1, g3, below, (uint16_t)(sb | even), above);
                ++conv_bad_f16;
            }
            conv_check(s * v, "f16 value");
            conv_check(s * mid, "f16 halfway");
            conv_check(s * nextafterf(mid, 0.0f), "below f16 halfway");
            conv_check(s * nextafterf(mid, HUGE_VALF), "above f16 halfway");
            if (v != 0.0f) conv_check(s * nextafterf(v, 0.0f), "below f16 value");
            conv_check(s * nextafterf(v, HUGE_VALF), "above f16 value");
        }
    }
    for (i = 0; i < 0x7F80u; ++i) {
        float v = (float)bf16_tab[i], mid = (float)((bf16_tab[i] + bf16_tab[i + 1]) * 0.5);
        int sgn;
        for (sgn = 0; sgn < 2; ++sgn) {
            float s = sgn ? -1.0f : 1.0f;
            uint16_t even = (uint16_t)((i & 1u) ? i + 1 : i), sb = (uint16_t)(sgn ? 0x8000u : 0);
            uint16_t below = (uint16_t)(sb | i), above = (uint16_t)(sb | (i + 1));
            uint16_t g1 = acem_f32_to_bf16(s * mid);
            uint16_t g2 = acem_f32_to_bf16(s * nextafterf(mid, 0.0f));
            uint16_t g3 = acem_f32_to_bf16(s * nextafterf(mid, HUGE_VALF));
            if (g1 != (uint16_t)(sb | even) || g2 != below || g3 != above) {
                if (conv_bad_bf16 < 10)
                    printf("  f32_to_bf16 near halfway between 0x%04X and 0x%04X: got 0x%04X "
                           "0x%04X 0x%04X, expected 0x%04X 0x%04X 0x%04X\n",
                           below, above, g2, g1, g3, below, (uint16_t)(sb | even), above);
                ++conv_bad_bf16;
            }
            conv_check(s * v, "bf16 value");
            conv_check(s * mid, "bf16 halfway");
            conv_check(s * nextafterf(mid, 0.0f), "below bf16 halfway");
            conv_check(s * nextafterf(mid, HUGE_VALF), "above bf16 halfway");
            if (v != 0.0f) conv_check(s * nextafterf(v, 0.0f), "below bf16 value");
            conv_check(s * nextafterf(v, HUGE_VALF), "above bf16 value");
        }
    }
    CHECK(conv_bad_f16 == 0, "f32_to_f16 at f16 values and halfway points: %zu wrong",
          conv_bad_f16);
    CHECK(conv_bad_bf16 == 0, "f32_to_bf16 at bf16 values and halfway points: %zu wrong",
          conv_bad_bf16);

    /* random floats: all bit patterns, and exponents around the f16 range */
    conv_bad_f16 = conv_bad_bf16 = 0;
    for (k = 0; k < 400000; ++k) conv_check(bitsf(rnd_u32()), "random bits");
    for (k = 0; k < 400000; ++k) {
        uint32_t u = rnd_u32();
        uint32_t e = 127u - 28u + (uint32_t)(rnd_u32() % 48u); /* 2^-28 .. 2^19 */
        conv_check(bitsf((u & 0x807FFFFFu) | (e << 23)), "random f16 range");
    }
    for (k = 0; k < 200000; ++k) { /* a few float ulps from a random f16 halfway point */
        unsigned hh = rnd_u32() % 0x7C00u;
        float mid = (float)((f16_tab[hh] + f16_tab[hh + 1]) * 0.5);
        uint32_t u = fbits(mid) + (uint32_t)(rnd_u32() % 7u) - 3u;
        conv_check((rnd_u32() & 1u) ? -bitsf(u) : bitsf(u), "near f16 halfway");
    }
    CHECK(conv_bad_f16 == 0, "f32_to_f16 on random floats: %zu wrong", conv_bad_f16);
    CHECK(conv_bad_bf16 == 0, "f32_to_bf16 on random floats: %zu wrong", conv_bad_bf16);

    /* named tricky cases, f16 */
    CHECK(acem_f32_to_f16(65504.0f) == 0x7BFFu, "f32_to_f16(65504) = 0x%04X", acem_f32_to_f16(65504.0f));
    CHECK(acem_f32_to_f16(nextafterf(65520.0f, 0.0f)) == 0x7BFFu,
          "f32_to_f16(65520 - ulp) = 0x%04X", acem_f32_to_f16(nextafterf(65520.0f, 0.0f)));
    CHECK(acem_f32_to_f16(65520.0f) == 0x7C00u && acem_f32_to_f16(-65520.0f) == 0xFC00u,
          "f32_to_f16(+-65520) = 0x%04X 0x%04X, expected +-Inf", acem_f32_to_f16(65520.0f),
          acem_f32_to_f16(-65520.0f));
    CHECK(acem_f32_to_f16(1e10f) == 0x7C00u && acem_f32_to_f16(FLT_MAX) == 0x7C00u &&
              acem_f32_to_f16(-FLT_MAX) == 0xFC00u,
          "f32_to_f16 overflow");
    CHECK(acem_f32_to_f16(bitsf(0x7F800000u)) == 0x7C00u &&
              acem_f32_to_f16(bitsf(0xFF800000u)) == 0xFC00u,
          "f32_to_f16(+-Inf) = 0x%04X 0x%04X", acem_f32_to_f16(bitsf(0x7F800000u)),
          acem_f32_to_f16(bitsf(0xFF800000u)));
    CHECK(acem_f32_to_f16(0.0f) == 0 && acem_f32_to_f16(-0.0f) == 0x8000u, "f32_to_f16(+-0)");
    CHECK(acem_f32_to_f16((float)ldexp(1.0, -24)) == 1u, "f32_to_f16(2^-24) = 0x%04X",
          acem_f32_to_f16((float)ldexp(1.0, -24)));
    CHECK(acem_f32_to_f16((float)ldexp(1.0, -25)) == 0u &&
              acem_f32_to_f16(-(float)ldexp(1.0, -25)) == 0x8000u,
          "f32_to_f16(+-2^-25) (halfway to 0) = 0x%04X 0x%04X, expected +-0",
          acem_f32_to_f16((float)ldexp(1.0, -25)), acem_f32_to_f16(-(float)ldexp(1.0, -25)));
    CHECK(acem_f32_to_f16(nextafterf((float)ldexp(1.0, -25), 1.0f)) == 1u,
          "f32_to_f16(2^-25 + ulp) = 0x%04X, expected 0x0001",
          acem_f32_to_f16(nextafterf((float)ldexp(1.0, -25), 1.0f)));
    CHECK(acem_f32_to_f16((float)ldexp(3.0, -25)) == 2u, "f32_to_f16(3*2^-25) = 0x%04X, expected 0x0002",
          acem_f32_to_f16((float)ldexp(3.0, -25)));
    CHECK(acem_f32_to_f16((float)ldexp(5.0, -25)) == 2u, "f32_to_f16(5*2^-25) = 0x%04X, expected 0x0002",
          acem_f32_to_f16((float)ldexp(5.0, -25)));
    CHECK(acem_f32_to_f16((float)ldexp(2047.0, -25)) == 0x0400u,
          "f32_to_f16(largest subnormal + half ulp) = 0x%04X, expected 0x0400",
          acem_f32_to_f16((float)ldexp(2047.0, -25)));
    CHECK(acem_f32_to_f16((float)ldexp(1.0, -14)) == 0x0400u, "f32_to_f16(2^-14)");
    CHECK(acem_f32_to_f16(1e-40f) == 0 && acem_f32_to_f16(-1e-40f) == 0x8000u &&
              acem_f32_to_f16(bitsf(1u)) == 0,
          "f32_to_f16 of float subnormals");
    CHECK(acem_f32_to_f16(1.0f + (float)ldexp(1.0, -11)) == 0x3C00u &&
              acem_f32_to_f16(1.0f + (float)ldexp(3.0, -11)) == 0x3C02u,
          "f32_to_f16 halfway ties to even near 1: 0x%04X 0x%04X",
          acem_f32_to_f16(1.0f + (float)ldexp(1.0, -11)),
          acem_f32_to_f16(1.0f + (float)ldexp(3.0, -11)));
    CHECK(acem_f32_to_f16(2048.0f + 1.0f) == 0x6800u && acem_f32_to_f16(2048.0f + 3.0f) == 0x6802u,
          "f32_to_f16(2049), (2051)");
    /* named tricky cases, bf16 */
    CHECK(acem_f32_to_bf16(bitsf(0x7F7FFFFFu)) == 0x7F80u &&
              acem_f32_to_bf16(bitsf(0xFF7FFFFFu)) == 0xFF80u,
          "f32_to_bf16(+-FLT_MAX) = 0x%04X 0x%04X, expected +-Inf",
          acem_f32_to_bf16(bitsf(0x7F7FFFFFu)), acem_f32_to_bf16(bitsf(0xFF7FFFFFu)));
    CHECK(acem_f32_to_bf16(bitsf(0x7F7F8000u)) == 0x7F80u &&
              acem_f32_to_bf16(bitsf(0x7F7F7FFFu)) == 0x7F7Fu,
          "f32_to_bf16 at the overflow threshold: 0x%04X 0x%04X",
          acem_f32_to_bf16(bitsf(0x7F7F8000u)), acem_f32_to_bf16(bitsf(0x7F7F7FFFu)));
    CHECK(acem_f32_to_bf16(bitsf(0x3F808000u)) == 0x3F80u &&
              acem_f32_to_bf16(bitsf(0x3F818000u)) == 0x3F82u &&
              acem_f32_to_bf16(bitsf(0x3F808001u)) == 0x3F81u,
          "f32_to_bf16 ties to even");
    CHECK(acem_f32_to_bf16(bitsf(0x00008000u)) == 0 && acem_f32_to_bf16(bitsf(0x00018000u)) == 2u &&
              acem_f32_to_bf16(bitsf(0x80008001u)) == 0x8001u,
          "f32_to_bf16 float subnormals");
    CHECK(acem_f32_to_bf16(0.0f) == 0 && acem_f32_to_bf16(-0.0f) == 0x8000u &&
              acem_f32_to_bf16(bitsf(0x7F800000u)) == 0x7F80u &&
              acem_f32_to_bf16(bitsf(0xFF800000u)) == 0xFF80u,
          "f32_to_bf16 zeros and infinities");

    /* NaN payloads: all must stay NaN (0x7F800001 would round or truncate to Inf) */
    {
        static const uint32_t nans[] = {0x7F800001u, 0x7F801FFFu, 0x7F802000u, 0x7F807FFFu,
                                        0x7F808000u, 0x7F80FFFFu, 0x7FBFFFFFu, 0x7FC00000u,
                                        0x7FFFFFFFu, 0x7FFF8000u, 0xFF800001u, 0xFFC00000u,
                                        0xFFFFFFFFu, 0x7F800100u, 0x7F8000FFu, 0xFF807FFFu};
        size_t bf = 0, bb = 0;
        for (k = 0; k < sizeof nans / sizeof nans[0]; ++k) {
            uint16_t g16 = acem_f32_to_f16(bitsf(nans[k])), gb = acem_f32_to_bf16(bitsf(nans[k]));
            if (!f16_isnan(g16)) {
                printf("  f32_to_f16(NaN 0x%08lX) = 0x%04X, not NaN\n", (unsigned long)nans[k], g16);
                ++bf;
            }
            if (!bf16_isnan(gb)) {
                printf("  f32_to_bf16(NaN 0x%08lX) = 0x%04X, not NaN\n", (unsigned long)nans[k], gb);
                ++bb;
            }
        }
        for (k = 0; k < 100000; ++k) {
            uint32_t u = (rnd_u32() & 0x807FFFFFu) | 0x7F800000u;
            if (!(u & 0x7FFFFFu)) u |= 1u;
            bf += !f16_isnan(acem_f32_to_f16(bitsf(u)));
            bb += !bf16_isnan(acem_f32_to_bf16(bitsf(u)));
        }
        CHECK(bf == 0, "f32_to_f16: %zu NaN inputs did not give NaN", bf);
        CHECK(bb == 0, "f32_to_bf16: %zu NaN inputs did not give NaN", bb);
    }

    /* ---- array forms equal the scalar forms ---- */
    {
        size_t nv = 0, cap = 65536 * 2 + 64;
        float *vals = (float *)xmalloc(cap * sizeof(float));
        float *fout = (float *)xmalloc((65536 + 64) * sizeof(float));
        uint16_t *hout = (uint16_t *)xmalloc((cap + 64) * sizeof(uint16_t));
        size_t off, len;

        for (h = 0; h < 65536; ++h) hs[h] = (uint16_t)h;
        /* f16 -> f32 */
        acem_f16_to_f32_array(hs, fs, 65536);
        bad = 0;
        for (h = 0; h < 65536; ++h) {
            float s = acem_f16_to_f32((uint16_t)h);
            if (f32_isnan(s) ? !f32_isnan(fs[h]) : fbits(s) != fbits(fs[h])) ++bad;
        }
        CHECK(bad == 0, "f16_to_f32_array(all 65536) differs from scalar at %zu", bad);
        /* bf16 -> f32 */
        acem_bf16_to_f32_array(hs, fs, 65536);
        bad = 0;
        for (h = 0; h < 65536; ++h) {
            float s = acem_bf16_to_f32((uint16_t)h);
            if (f32_isnan(s) ? !f32_isnan(fs[h]) : fbits(s) != fbits(fs[h])) ++bad;
        }
        CHECK(bad == 0, "bf16_to_f32_array(all 65536) differs from scalar at %zu", bad);

        /* a value list: every f16 value and halfway point, random floats, specials */
        for (i = 0; i < 0x7C00u && nv + 2 <= cap - 64; ++i) {
            vals[nv++] = (i & 1u) ? -(float)f16_tab[i] : (float)f16_tab[i];
            vals[nv++] = (float)((f16_tab[i] + f16_tab[i + 1]) * 0.5);
        }
        while (nv < cap - 32) vals[nv++] = bitsf(rnd_u32());
        vals[nv++] = bitsf(0x7F800001u);
        vals[nv++] = bitsf(0x7F808000u);
        vals[nv++] = bitsf(0x7F7FFFFFu);
        vals[nv++] = bitsf(0xFF800000u);
        vals[nv++] = 65520.0f;
        vals[nv++] = -0.0f;
        vals[nv++] = 1e-40f;
        bad = bad2 = 0;
        acem_f32_to_f16_array(vals, hout, nv);
        for (k = 0; k < nv; ++k) {
            uint16_t s = acem_f32_to_f16(vals[k]);
            if (f16_isnan(s) ? !f16_isnan(hout[k]) : s != hout[k]) ++bad;
        }
        acem_f32_to_bf16_array(vals, hout, nv);
        for (k = 0; k < nv; ++k) {
            uint16_t s = acem_f32_to_bf16(vals[k]);
            if (bf16_isnan(s) ? !bf16_isnan(hout[k]) : s != hout[k]) ++bad2;
        }
        CHECK(bad == 0, "f32_to_f16_array differs from scalar at %zu of %zu", bad, nv);
        CHECK(bad2 == 0, "f32_to_bf16_array differs from scalar at %zu of %zu", bad2, nv);

        /* short and misaligned arrays: tails, and nothing written past the end */
        bad = 0;
        for (off = 0; off < 4; ++off)
            for (len = 0; len <= 40; ++len) {
                size_t t;
                int which;
                for (which = 0; which < 4; ++which) {
                    for (t = 0; t < len + 8; ++t) fout[t] = bitsf(SENT_BITS), hout[t] = 0xA5A5u;
                    for (t = 0; t < len; ++t) hs2[off + t] = (uint16_t)rnd_u32();
                    if (which == 0) acem_f16_to_f32_array(hs2 + off, fout, len);
                    if (which == 1) acem_bf16_to_f32_array(hs2 + off, fout, len);
                    if (which == 2) acem_f32_to_f16_array(vals + 3 * len + off, hout, len);
                    if (which == 3) acem_f32_to_bf16_array(vals + 5 * len + off, hout, len);
                    for (t = 0; t < len; ++t) {
                        if (which < 2) {
                            float s = which ? acem_bf16_to_f32(hs2[off + t])
                                            : acem_f16_to_f32(hs2[off + t]);
                            if (f32_isnan(s) ? !f32_isnan(fout[t]) : fbits(s) != fbits(fout[t]))
                                ++bad;
                        } else {
                            float v = vals[(which == 2 ? 3 : 5) * len + off + t];
                            uint16_t s = which == 2 ? acem_f32_to_f16(v) : acem_f32_to_bf16(v);
                            int isn = which == 2 ? f16_isnan(s) : bf16_isnan(s);
                            int isn2 = which == 2 ? f16_isnan(hout[t]) : bf16_isnan(hout[t]);
                            if (isn ? !isn2 : s != hout[t]) ++bad;
                        }
                    }
                    for (t = len; t < len + 8; ++t)
                        if (which < 2 ? fbits(fout[t]) != SENT_BITS : hout[t] != 0xA5A5u) {
                            if (bad < 5)
                                printf("  array form %d (len %zu): wrote past the end\n", which, len);
                            ++bad;
                        }
                }
            }
        CHECK(bad == 0, "array forms on short / misaligned arrays: %zu problems", bad);
        free(vals);
        free(fout);
        free(hout);
    }
    free(hs);
    free(hs2);
    free(fs);
    if (verbose) printf("# half: %zu scalar f32 conversions compared with the reference\n", conv_n);
}

static void section(const char *name, void (*fn)(void)) {
    clock_t t0 = clock();
    fn();
    if (verbose) printf("# %s: %.2f s\n", name, (double)(clock() - t0) / CLOCKS_PER_SEC);
}

int main(int argc, char **argv) {
    (void)argv;
    verbose = argc > 1;
    section("half", test_half);
    section("gemm", test_gemm);
    section("syrk", test_syrk);
    section("potrf", test_potrf);
    section("trsm/chol_solve", test_solves);
    section("syev", test_syev);
    section("syev_top/gram", test_syev_top);
    section("syev_top/svd_top public", test_top_public);
    return TEST_END("test_kernels");
}
