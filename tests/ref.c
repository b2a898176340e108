/* tests/ref.c - plain float64 reference of every acem merge rule (see ref.h).
   Written for obviousness, not speed: every step of the spec is a loop over
   full matrices held in memory at once. */
#include "ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REF_G 1e-12                      /* guard constant g of the spec     */
#define REF_FLT_EPS 1.1920928955078125e-07 /* 2^-23 = FLT_EPSILON            */

static double *dalloc(size_t n) { return (double *)calloc(n ? n : 1, sizeof(double)); }

ref_opts ref_defaults(int method) {
    ref_opts o;
    o.method = method;
    o.eps = 1e-2;
    o.tau = 0.3;
    o.k_frac = 0.3;
    o.lambda = (method == REF_TASK_ARITHMETIC || method == REF_DARE_TA) ? 0.3 : 1.0;
    o.density = 0.2;
    o.drop = 0.5;
    o.seed = 0;
    o.flags = 0;
    return o;
}

/* ---- DARE randomness ------------------------------------------------------ */
static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t ref_name_stream(const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    if (!name) return 0;
    while (*name) {
        h ^= (uint64_t)(unsigned char)*name++;
        h *= 0x100000001b3ull;
    }
    return h;
}

double ref_dare_u(uint64_t seed, uint64_t stream, size_t t, size_t idx) {
    uint64_t key = mix(mix(seed ^ stream) + (uint64_t)t);
    return (double)(mix(key + (uint64_t)idx) >> 11) * 0x1.0p-53;
}

/* ---- linear algebra ------------------------------------------------------- */
int ref_syev(size_t n, double *A, double *w, double *V) {
    size_t i, j, k, p, q, sweep;
    double norm = 0;
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j) {
            V[i * n + j] = (i == j) ? 1.0 : 0.0;
            norm += A[i * n + j] * A[i * n + j];
        }
    norm = sqrt(norm);
    for (sweep = 0; sweep < 100; ++sweep) {
        int rotated = 0;
        for (p = 0; p < n; ++p)
            for (q = p + 1; q < n; ++q) {
                double apq = A[p * n + q], app = A[p * n + p], aqq = A[q * n + q];
                double theta, t, c, s;
                if (fabs(apq) <= 1e-17 * norm || apq == 0.0) continue;
                rotated = 1;
                theta = (aqq - app) / (2.0 * apq);
                t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                c = 1.0 / sqrt(t * t + 1.0);
                s = t * c;
                for (k = 0; k < n; ++k) { /* columns p, q */
                    double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (k = 0; k < n; ++k) { /* rows p, q */
                    double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                A[p * n + q] = A[q * n + p] = 0.0; /* annihilated exactly */
                for (k = 0; k < n; ++k) {
                    double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
        if (!rotated) break;
    }
    if (sweep == 100) return -1;
    for (i = 0; i < n; ++i) w[i] = A[i * n + i];
    /* selection sort, descending, swapping eigenvector columns along */
    for (i = 0; i < n; ++i) {
        size_t best = i;
        for (j = i + 1; j < n; ++j)
            if (w[j] > w[best]) best = j;
        if (best != i) {
            double tmp = w[i];
            w[i] = w[best];
            w[best] = tmp;
            for (k = 0; k < n; ++k) {
                tmp = V[k * n + i];
                V[k * n + i] = V[k * n + best];
                V[k * n + best] = tmp;
            }
        }
    }
    return 0;
}

/* one-sided (Hestenes) Jacobi on a tall m x n matrix (m >= n).
   U m x n, s n, Vt n x n, all row-major. */
static int svd_tall(size_t m, size_t n, const double *A, double *U, double *s, double *Vt) {
    double *W = dalloc(m * n), *V = dalloc(n * n); /* column-major */
    size_t *ord;
    size_t i, j, k, p, q, sweep;
    double anorm = 0;
    if (!W || !V) { free(W); free(V); return -1; }
    ord = (size_t *)calloc(n ? n : 1, sizeof(size_t));
    if (!ord) { free(W); free(V); return -1; }
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) W[j * m + i] = A[i * n + j];
    for (j = 0; j < n; ++j) V[j * n + j] = 1.0;
    for (i = 0; i < m * n; ++i) anorm += W[i] * W[i];
    anorm = sqrt(anorm);
    for (sweep = 0; sweep < 200; ++sweep) {
        int rotated = 0;
        for (p = 0; p < n; ++p)
            for (q = p + 1; q < n; ++q) {
                double alpha = 0, beta = 0, gamma = 0, zeta, t, c, sn;
                double *wp = W + p * m, *wq = W + q * m;
                for (i = 0; i < m; ++i) {
                    alpha += wp[i] * wp[i];
                    beta += wq[i] * wq[i];
                    gamma += wp[i] * wq[i];
                }
                if (gamma == 0.0 || fabs(gamma) <= 1e-15 * sqrt(alpha) * sqrt(beta)) continue;
                /* a column that is rounding noise (relative to the whole matrix)
                   cannot be orthogonalised further: leave it */
                if (sqrt(alpha < beta ? alpha : beta) <= 1e-14 * anorm) continue;
                rotated = 1;
                zeta = (beta - alpha) / (2.0 * gamma);
                t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                c = 1.0 / sqrt(1.0 + t * t);
                sn = c * t;
                for (i = 0; i < m; ++i) {
                    double a = wp[i], b = wq[i];
                    wp[i] = c * a - sn * b;
                    wq[i] = sn * a + c * b;
                }
                for (i = 0; i < n; ++i) {
                    double a = V[p * n + i], b = V[q * n + i];
                    V[p * n + i] = c * a - sn * b;
                    V[q * n + i] = sn * a + c * b;
                }
            }
        if (!rotated) break;
    }
    if (sweep == 200) { free(W); free(V); free(ord); return -1; }
    for (j = 0; j < n; ++j) {
        double nn = 0;
        for (i = 0; i < m; ++i) nn += W[j * m + i] * W[j * m + i];
        s[j] = sqrt(nn);
        ord[j] = j;
    }
    for (i = 0; i < n; ++i) { /* sort indices by s descending */
        size_t best = i, tmp;
        for (j = i + 1; j < n; ++j)
            if (s[ord[j]] > s[ord[best]]) best = j;
        tmp = ord[i];
        ord[i] = ord[best];
        ord[best] = tmp;
    }
    {
        double *ss = dalloc(n);
        if (!ss) { free(W); free(V); free(ord); return -1; }
        for (k = 0; k < n; ++k) {
            size_t jj = ord[k];
            double sv = s[jj];
            ss[k] = sv;
            for (i = 0; i < m; ++i) U[i * n + k] = sv > 0 ? W[jj * m + i] / sv : 0.0;
            for (i = 0; i < n; ++i) Vt[k * n + i] = V[jj * n + i];
        }
        memcpy(s, ss, n * sizeof(double));
        free(ss);
    }
    free(W);
    free(V);
    free(ord);
    return 0;
}

int ref_svd(size_t m, size_t n, const double *A, double *U, double *s, double *Vt) {
    size_t i, j, r = m < n ? m : n;
    int rc;
    if (m >= n) return svd_tall(m, n, A, U, s, Vt);
    {
        /* A^T = U' S V'^T  =>  A = V' S U'^T: U = V' (m x r), Vt = U'^T (r x n) */
        double *At = dalloc(n * m), *U2 = dalloc(n * r), *Vt2 = dalloc(r * m);
        if (!At || !U2 || !Vt2) { free(At); free(U2); free(Vt2); return -1; }
        for (i = 0; i < m; ++i)
            for (j = 0; j < n; ++j) At[j * m + i] = A[i * n + j];
        rc = svd_tall(n, m, At, U2, s, Vt2);
        if (rc == 0) {
            for (i = 0; i < m; ++i)
                for (j = 0; j < r; ++j) U[i * r + j] = Vt2[j * m + i];
            for (j = 0; j < r; ++j)
                for (i = 0; i < n; ++i) Vt[j * n + i] = U2[i * r + j];
        }
        free(At);
        free(U2);
        free(Vt2);
        return rc;
    }
}

int ref_solve_right(size_t m, size_t n, const double *A, const double *B, double *X) {
    /* M = A^T (n x n), Y = B^T (n x m); solve M Y = B^T; X = Y^T */
    double *M = dalloc(n * n), *Y = dalloc(n * m);
    size_t i, j, k, piv;
    if (!M || !Y) { free(M); free(Y); return -1; }
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j) M[i * n + j] = A[j * n + i];
    for (i = 0; i < n; ++i)
        for (j = 0; j < m; ++j) Y[i * m + j] = B[j * n + i];
    for (k = 0; k < n; ++k) {
        double best = fabs(M[k * n + k]);
        piv = k;
        for (i = k + 1; i < n; ++i)
            if (fabs(M[i * n + k]) > best) { best = fabs(M[i * n + k]); piv = i; }
        if (best == 0.0) { free(M); free(Y); return -1; }
        if (piv != k) {
            for (j = 0; j < n; ++j) { double t = M[k * n + j]; M[k * n + j] = M[piv * n + j]; M[piv * n + j] = t; }
            for (j = 0; j < m; ++j) { double t = Y[k * m + j]; Y[k * m + j] = Y[piv * m + j]; Y[piv * m + j] = t; }
        }
        for (i = k + 1; i < n; ++i) {
            double f = M[i * n + k] / M[k * n + k];
            if (f == 0.0) continue;
            for (j = k; j < n; ++j) M[i * n + j] -= f * M[k * n + j];
            for (j = 0; j < m; ++j) Y[i * m + j] -= f * Y[k * m + j];
        }
    }
    for (k = n; k-- > 0;) { /* back substitution */
        for (j = 0; j < m; ++j) {
            double v = Y[k * m + j];
            for (i = k + 1; i < n; ++i) v -= M[k * n + i] * Y[i * m + j];
            Y[k * m + j] = v / M[k * n + k];
        }
    }
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) X[i * n + j] = Y[j * m + i];
    free(M);
    free(Y);
    return 0;
}

/* ---- element-wise rules --------------------------------------------------- */
void ref_mean_rule(size_t n, size_t T, const double *const *D, double lambda, double *out) {
    size_t i, t;
    for (i = 0; i < n; ++i) {
        double s = 0;
        for (t = 0; t < T; ++t) s += D[t][i];
        out[i] = lambda * (s / (double)T);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* TIES-merging reference code on one flattened tensor of d entries */
static int ties_merge(size_t d, size_t T, const double *const *D, double density, double *M) {
    double *trim = dalloc(T * d), *absx = dalloc(d), *sgn = dalloc(d);
    size_t i, t;
    double maj = 0;
    if (!trim || !absx || !sgn) { free(trim); free(absx); free(sgn); return -1; }
    for (t = 0; t < T; ++t) {
        size_t cut = (size_t)((double)d * density); /* python int(d * K) */
        size_t k = d - cut;                           /* 1-based k-th smallest */
        double kth;
        for (i = 0; i < d; ++i) absx[i] = fabs(D[t][i]);
        if (k == 0) {
            for (i = 0; i < d; ++i) trim[t * d + i] = D[t][i];
            continue;
        }
        qsort(absx, d, sizeof(double), cmp_double);
        kth = absx[k - 1];
        for (i = 0; i < d; ++i) trim[t * d + i] = (fabs(D[t][i]) >= kth) ? D[t][i] : 0.0;
    }
    for (i = 0; i < d; ++i) {
        double s = 0;
        for (t = 0; t < T; ++t) s += trim[t * d + i];
        sgn[i] = (s > 0) ? 1.0 : (s < 0) ? -1.0 : 0.0;
        maj += sgn[i];
    }
    maj = (maj > 0) ? 1.0 : (maj < 0) ? -1.0 : 0.0;
    for (i = 0; i < d; ++i) {
        double s = sgn[i] == 0.0 ? maj : sgn[i], sum = 0;
        size_t cnt = 0;
        for (t = 0; t < T; ++t) {
            double x = trim[t * d + i];
            int keep = (s > 0) ? (x > 0) : (x < 0);
            if (keep) { sum += x; cnt++; }
        }
        M[i] = sum / (double)(cnt ? cnt : 1);
    }
    free(trim);
    free(absx);
    free(sgn);
    return 0;
}

/* ---- ACE ------------------------------------------------------------------ */
/* ---- f32 storage simulation ---------------------------------------------- */
/* When set, the quantities any f32 implementation must store (ACE: A0 and B;
   ACTMat: the summed Gram and N) are rounded to float before they are used.
   The differential test uses it to tell inputs on which the algorithm itself
   is ill-conditioned in f32 from library errors. */
int ref_f32_storage = 0;
static void round_f32(double *x, size_t n) {
    size_t i;
    if (!ref_f32_storage) return;
    for (i = 0; i < n; ++i) x[i] = (double)(float)x[i];
}

static int ace_merge(const ref_opts *o, size_t R, size_t C, size_t T, const double *const *D,
                     double *M, ref_info *info) {
    const double g = REF_G;
    double *nrm = dalloc(T), *Sig = dalloc(T * C * C), *ereg = dalloc(T), *Dc = dalloc(T * R * C);
    double *A0 = dalloc(C * C), *A = dalloc(C * C), *B = dalloc(R * C), *m = dalloc(C);
    double *W = dalloc(R * C), *SS = dalloc(C * C);
    double lmean = 0, lvar = 0, gamma = 0, nbar = 0;
    int gated, rc = -1;
    size_t i, j, l, t;
    if (!nrm || !Sig || !ereg || !Dc || !A0 || !A || !B || !m || !W || !SS) goto done;

    /* 1. gate */
    for (t = 0; t < T; ++t) {
        double s = 0;
        for (i = 0; i < R * C; ++i) s += D[t][i] * D[t][i];
        nrm[t] = s;
        nbar += s;
        lmean += log(s + g);
    }
    nbar /= (double)T;
    lmean /= (double)T;
    if (T > 1) {
        for (t = 0; t < T; ++t) {
            double d = log(nrm[t] + g) - lmean;
            lvar += d * d;
        }
        lvar /= (double)(T - 1);
        gamma = lvar / (lmean * lmean + g);
    }
    gated = gamma > o->tau;
    if (o->flags & REF_FLAG_NO_GATE) gated = 0;
    if (o->flags & REF_FLAG_ALWAYS_GATE) gated = 1;
    info->gamma = gamma;
    info->gated = gated;

    /* 2. covariance proxies */
    for (t = 0; t < T; ++t) {
        double *dc = Dc + t * R * C, *S = Sig + t * C * C, tr = 0;
        for (j = 0; j < C; ++j) {
            double mu = 0;
            for (i = 0; i < R; ++i) mu += D[t][i * C + j];
            mu /= (double)R;
            for (i = 0; i < R; ++i) dc[i * C + j] = D[t][i * C + j] - mu;
        }
        for (i = 0; i < C; ++i)
            for (j = 0; j < C; ++j) {
                double s = 0;
                for (l = 0; l < R; ++l) s += dc[l * C + i] * dc[l * C + j];
                S[i * C + j] = s;
            }
        for (i = 0; i < C; ++i) tr += S[i * C + i];
        tr += g;
        if (gated) {
            for (i = 0; i < C * C; ++i) S[i] /= tr;
            ereg[t] = o->eps / tr;
        } else {
            ereg[t] = o->eps;
        }
    }

    /* 3. accumulate A0, B, m */
    for (t = 0; t < T; ++t) {
        const double *S = Sig + t * C * C, *dc = Dc + t * R * C;
        for (i = 0; i < C; ++i)
            for (j = 0; j < C; ++j) {
                double sreg = S[i * C + j] + (i == j ? ereg[t] : 0.0);
                A0[i * C + j] += sreg;
                SS[i * C + j] += S[i * C + j];
            }
        for (i = 0; i < R; ++i)
            for (j = 0; j < C; ++j) {
                double s = 0;
                for (l = 0; l < C; ++l) s += dc[i * C + l] * (S[l * C + j] + (l == j ? ereg[t] : 0.0));
                B[i * C + j] += s;
            }
    }
    for (j = 0; j < C; ++j) {
        double s = 0;
        for (i = 0; i < C; ++i) s += SS[i * C + j];
        m[j] = s / (double)C;
        if (gated) m[j] /= (nbar + g);
    }

    round_f32(A0, C * C);
    round_f32(B, R * C);
    /* 4. A = A0 + 1 m^T, W_pre = B A^-1 */
    for (i = 0; i < C; ++i)
        for (j = 0; j < C; ++j) A[i * C + j] = A0[i * C + j] + m[j];
    if (ref_solve_right(R, C, A, B, W) != 0) goto done;
    memcpy(M, W, R * C * sizeof(double));

    /* 5. spectral refinement */
    {
        size_t r = R < C ? R : C;
        size_t k = (size_t)floor((double)r * o->k_frac);
        if (k > r) k = r;
        if (gated && !(o->flags & REF_FLAG_NO_REFINE) && k > 0) {
            info->k = k;
            double *F = dalloc(R * C), *U = dalloc(R * r), *s = dalloc(r), *Vt = dalloc(r * C);
            double siso = 0, tol;
            size_t q;
            if (!F || !U || !s || !Vt) { free(F); free(U); free(s); free(Vt); goto done; }
            for (t = 0; t < T; ++t) {
                const double *S = Sig + t * C * C;
                for (i = 0; i < R; ++i)
                    for (j = 0; j < C; ++j) {
                        double v = 0;
                        for (l = 0; l < C; ++l)
                            v += D[t][i * C + l] * (S[l * C + j] - A0[l * C + j] / (double)T);
                        F[i * C + j] += v;
                    }
            }
            for (i = 0; i < R * C; ++i) F[i] += W[i];
            if (ref_svd(R, C, F, U, s, Vt) != 0) { free(F); free(U); free(s); free(Vt); goto done; }
            for (q = 0; q < k; ++q) siso += s[q];
            siso /= (double)k;
            tol = (double)(R > C ? R : C) * REF_FLT_EPS * s[0];
            for (q = 0; q < k; ++q) {
                if (!(s[q] > tol)) continue;
                info->directions++;
                for (i = 0; i < R; ++i)
                    for (j = 0; j < C; ++j) M[i * C + j] += siso * U[i * r + q] * Vt[q * C + j];
            }
            info->sigma_iso = siso;
            info->refined = 1;
            free(F); free(U); free(s); free(Vt);
        }
    }
    rc = 0;
done:
    free(nrm); free(Sig); free(ereg); free(Dc); free(A0); free(A); free(B); free(m);
    free(W); free(SS);
    return rc;
}

/* ---- ACTMat --------------------------------------------------------------- */
static int actmat_merge(size_t R, size_t C, size_t T, const double *const *D, double *M) {
    double *Cs = dalloc(C * C), *N = dalloc(R * C), *Ct = dalloc(C * C), *w = dalloc(C);
    double *V = dalloc(C * C), *P = dalloc(C * C);
    size_t i, j, l, t;
    int rc = -1;
    if (!Cs || !N || !Ct || !w || !V || !P) goto done;
    for (t = 0; t < T; ++t) {
        for (i = 0; i < C; ++i)
            for (j = 0; j < C; ++j) {
                double s = 0;
                for (l = 0; l < R; ++l) s += D[t][l * C + i] * D[t][l * C + j];
                Ct[i * C + j] = s;
                Cs[i * C + j] += s;
            }
        for (i = 0; i < R; ++i)
            for (j = 0; j < C; ++j) {
                double s = 0;
                for (l = 0; l < C; ++l) s += D[t][i * C + l] * Ct[l * C + j];
                N[i * C + j] += s;
            }
    }
    round_f32(Cs, C * C);
    round_f32(N, R * C);
    if (ref_syev(C, Cs, w, V) != 0) goto done;
    memset(M, 0, R * C * sizeof(double));
    if (C > 0 && w[0] > 0) {
        double tol = (double)C * REF_FLT_EPS * w[0];
        size_t q;
        for (q = 0; q < C; ++q) {
            if (!(w[q] > tol)) continue;
            for (i = 0; i < C; ++i)
                for (j = 0; j < C; ++j) P[i * C + j] += V[i * C + q] * V[j * C + q] / w[q];
        }
        for (i = 0; i < R; ++i)
            for (j = 0; j < C; ++j) {
                double s = 0;
                for (l = 0; l < C; ++l) s += N[i * C + l] * P[l * C + j];
                M[i * C + j] = s;
            }
    }
    rc = 0;
done:
    free(Cs); free(N); free(Ct); free(w); free(V); free(P);
    return rc;
}

/* ---- Iso-C ---------------------------------------------------------------- */
static int isoc_merge(size_t R, size_t C, size_t T, const double *const *D, double *M,
                      ref_info *info) {
    size_t r = R < C ? R : C, i, j, q, t;
    double *F = dalloc(R * C), *U = dalloc(R * r), *s = dalloc(r), *Vt = dalloc(r * C);
    double sig = 0, tol;
    int rc = -1;
    if (!F || !U || !s || !Vt) goto done;
    for (t = 0; t < T; ++t)
        for (i = 0; i < R * C; ++i) F[i] += D[t][i];
    if (ref_svd(R, C, F, U, s, Vt) != 0) goto done;
    for (q = 0; q < r; ++q) sig += s[q];
    sig /= (double)r;
    tol = (double)(R > C ? R : C) * REF_FLT_EPS * s[0];
    memset(M, 0, R * C * sizeof(double));
    for (q = 0; q < r; ++q) {
        if (!(s[q] > tol)) continue;
        info->directions++;
        for (i = 0; i < R; ++i)
            for (j = 0; j < C; ++j) M[i * C + j] += sig * U[i * r + q] * Vt[q * C + j];
    }
    info->sigma_iso = sig;
    info->k = r;
    rc = 0;
done:
    free(F); free(U); free(s); free(Vt);
    return rc;
}

/* ---- TSV-M ---------------------------------------------------------------- */
/* polar factor of X (m x n, m >= n) on its numerical range: P = Σ_{σ_i > tol} x_i y_i^T */
static int polar(size_t m, size_t n, const double *X, double *P) {
    double *U = dalloc(m * n), *s = dalloc(n), *Vt = dalloc(n * n), tol;
    size_t i, j, q;
    int rc = -1;
    if (!U || !s || !Vt) goto done;
    if (ref_svd(m, n, X, U, s, Vt) != 0) goto done;
    memset(P, 0, m * n * sizeof(double));
    tol = (double)(m > n ? m : n) * REF_FLT_EPS * s[0];
    for (q = 0; q < n; ++q) {
        if (!(s[q] > tol)) continue;
        for (i = 0; i < m; ++i)
            for (j = 0; j < n; ++j) P[i * n + j] += U[i * n + q] * Vt[q * n + j];
    }
    rc = 0;
done:
    free(U); free(s); free(Vt);
    return rc;
}

static int tsvm_merge(size_t R, size_t C, size_t T, const double *const *D, double *M,
                      ref_info *info) {
    size_t r = R < C ? R : C, kt = r / T, K = T * kt, i, j, q, t;
    double *Ua = NULL, *Va = NULL, *sa = NULL, *U = NULL, *s = NULL, *Vt = NULL, *PU = NULL,
           *PV = NULL;
    int rc = -1;
    info->k = kt;
    memset(M, 0, R * C * sizeof(double));
    if (kt == 0) return 0;
    Ua = dalloc(R * K); Va = dalloc(C * K); sa = dalloc(K);
    U = dalloc(R * r); s = dalloc(r); Vt = dalloc(r * C);
    PU = dalloc(R * K); PV = dalloc(C * K);
    if (!Ua || !Va || !sa || !U || !s || !Vt || !PU || !PV) goto done;
    for (t = 0; t < T; ++t) {
        double tol;
        if (ref_svd(R, C, D[t], U, s, Vt) != 0) goto done;
        tol = (double)(R > C ? R : C) * REF_FLT_EPS * s[0];
        for (q = 0; q < kt; ++q) {
            size_t col = t * kt + q;
            if (!(s[q] > tol)) continue; /* zero column, zero s */
            sa[col] = s[q];
            for (i = 0; i < R; ++i) Ua[i * K + col] = U[i * r + q];
            for (j = 0; j < C; ++j) Va[j * K + col] = Vt[q * C + j];
        }
    }
    if (polar(R, K, Ua, PU) != 0 || polar(C, K, Va, PV) != 0) goto done;
    for (i = 0; i < R; ++i)
        for (j = 0; j < C; ++j) {
            double v = 0;
            for (q = 0; q < K; ++q) v += PU[i * K + q] * sa[q] * PV[j * K + q];
            M[i * C + j] = v;
        }
    rc = 0;
done:
    free(Ua); free(Va); free(sa); free(U); free(s); free(Vt); free(PU); free(PV);
    return rc;
}

/* ---- dispatcher ----------------------------------------------------------- */
int ref_merge(const ref_opts *o, size_t R, size_t C, size_t T, const double *const *D,
              uint64_t stream, double *out, ref_info *info) {
    ref_info dummy;
    size_t n = R * C, i, t;
    int rc = 0;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    if (!o || !D || !out || T == 0 || R == 0 || C == 0) return -1;
    switch (o->method) {
    case REF_ACE:
        if (T == 1) {
            for (i = 0; i < n; ++i) out[i] = D[0][i];
        } else {
            rc = ace_merge(o, R, C, T, D, out, info);
        }
        break;
    case REF_AVERAGE:
        ref_mean_rule(n, T, D, 1.0, out);
        break;
    case REF_TASK_ARITHMETIC:
        for (i = 0; i < n; ++i) {
            double s = 0;
            for (t = 0; t < T; ++t) s += D[t][i];
            out[i] = s;
        }
        break;
    case REF_TIES:
        rc = ties_merge(n, T, D, o->density, out);
        break;
    case REF_DARE_TA:
    case REF_DARE_TIES: {
        double *dd = dalloc(T * n);
        const double **P = (const double **)calloc(T, sizeof(double *));
        if (!dd || !P) { free(dd); free(P); return -1; }
        for (t = 0; t < T; ++t) {
            for (i = 0; i < n; ++i) {
                double u = ref_dare_u(o->seed, stream, t, i);
                dd[t * n + i] = (u < o->drop) ? 0.0 : D[t][i] / (1.0 - o->drop);
            }
            P[t] = dd + t * n;
        }
        if (o->method == REF_DARE_TA) {
            for (i = 0; i < n; ++i) {
                double s = 0;
                for (t = 0; t < T; ++t) s += P[t][i];
                out[i] = s;
            }
        } else {
            rc = ties_merge(n, T, (const double *const *)P, o->density, out);
        }
        free(dd);
        free((void *)P);
        break;
    }
    case REF_ACTMAT:
        rc = actmat_merge(R, C, T, D, out);
        break;
    case REF_ISO_C:
        rc = isoc_merge(R, C, T, D, out, info);
        break;
    case REF_TSV_M:
        rc = tsvm_merge(R, C, T, D, out, info);
        break;
    default:
        return -1;
    }
    if (rc != 0) return rc;
    for (i = 0; i < n; ++i) out[i] *= o->lambda;
    return 0;
}
