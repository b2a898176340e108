/* tests/test_dctop.c - the ACE refinement with its top-k eigenvectors from divide
   and conquer, against the float64 reference (tests/ref.c).

   The library takes divide and conquer for the refinement's top k only on
   large layers (n >= 1536, with a bulk of singular values in one cluster of
   inverse iteration: ACEM__DC_TOP), too large for the reference's Jacobi
   solvers in a test. This program builds the library with ACEM__DC_TOP(n) = -1,
   so that every refined layer whose arena holds the workspace (its Dc, Q and S,
   free at that point) takes that path, and checks gated, refined merges of
   small wide and tall layers that hold it against ref_merge: the merged matrix to
   1e-4 relative (as tests/test_merge.c), sigma_iso and the number of
   directions. (With ACEM_USE_LAPACK the eigenvectors come from dsyevr; the
   checks hold the same.) */
#define ACEM__DC_TOP(n) (-1.0)
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "testing.h"
#include "ref.h"
#include "gen_rng.h"

#include <stdlib.h>
#include <string.h>

static double urand(void) { return 2.0 * uniform() - 1.0; } /* (-1, 1) */

/* T experts: base + scale_t (rank-2 part + noise), noise large enough that the
   bulk of F's spectrum stays above the rank tolerance */
static void one_case(size_t R, size_t C, size_t T, double noise) {
    size_t n = R * C, t, i, j, bytes = 0;
    float *base = (float *)malloc(n * sizeof(float)), *out = (float *)malloc(n * sizeof(float));
    float **x = (float **)malloc(T * sizeof(float *));
    double **D = (double **)malloc(T * sizeof(double *)), *ref = (double *)malloc(n * sizeof(double)), e;
    acem_options o;
    acem_layer_info li;
    acem_error err;
    acem_result r;
    ref_opts ro;
    ref_info ri;
    void *arena;
    for (i = 0; i < n; ++i) base[i] = (float)(0.05 * urand());
    for (t = 0; t < T; ++t) {
        double sc = t == 0 ? 1e-3 : (t == 1 ? 4e-3 : 2e-2), u[2][64], v[2][64];
        for (i = 0; i < R; ++i) u[0][i % 64] = urand(), u[1][i % 64] = urand();
        for (j = 0; j < C; ++j) v[0][j % 64] = urand(), v[1][j % 64] = urand();
        x[t] = (float *)malloc(n * sizeof(float));
        D[t] = (double *)malloc(n * sizeof(double));
        for (i = 0; i < R; ++i)
            for (j = 0; j < C; ++j) {
                double d = sc * (3.0 * u[0][i % 64] * v[0][j % 64] + u[1][i % 64] * v[1][j % 64] + noise * urand());
                x[t][i * C + j] = (float)((double)base[i * C + j] + d);
                D[t][i * C + j] = (double)x[t][i * C + j] - (double)base[i * C + j]; /* the delta as acem forms it */
            }
    }
    memset(&o, 0, sizeof o);
    o.method = ACEM_ACE;
    o.flags = ACEM_FLAG_ALWAYS_GATE;
    ro = ref_defaults(REF_ACE);
    ro.flags = REF_FLAG_ALWAYS_GATE;
    CHECK(ref_merge(&ro, R, C, T, (const double *const *)D, 0, ref, &ri) == 0, "%zux%zu: reference failed", R, C);
    CHECK(acem_layer_bytes(&o, ACEM_RULE_METHOD, R, C, T, &bytes) == ACEM_OK, "%zux%zu: layer bytes", R, C);
    arena = malloc(bytes);
    memset(&li, 0, sizeof li);
    r = acem_merge(&o, ACEM_RULE_METHOD, "dctop", R, C, T, base, (const float *const *)x, out, arena, bytes, &li, &err);
    CHECK(r == ACEM_OK, "%zux%zu: acem_merge returned %d (%s)", R, C, (int)r, err.message);
    for (i = 0; i < n; ++i) out[i] -= base[i]; /* lambda M, as the reference gives it */
    e = test_rel_err_fd(out, ref, n);
    CHECK(e <= 1e-4, "%zux%zu T=%zu: rel err %.3e against the reference", R, C, T, e);
    CHECK(li.refined == 1 && ri.refined == 1, "%zux%zu: refined lib %d ref %d", R, C, li.refined, ri.refined);
    CHECK(li.directions == ri.directions && li.directions == li.k, "%zux%zu: directions lib %zu ref %zu (k %zu)", R, C,
          li.directions, ri.directions, li.k);
    CHECK(fabs(li.sigma_iso - ri.sigma_iso) <= 1e-4 * fabs(ri.sigma_iso), "%zux%zu: sigma_iso lib %.8e ref %.8e", R, C,
          li.sigma_iso, ri.sigma_iso);
    for (t = 0; t < T; ++t) { free(x[t]); free(D[t]); }
    free(x); free(D); free(ref); free(out); free(base); free(arena);
}

int main(void) {
    /* the workspace is 12 R C bytes against about 24 n^2 + 96 n for these small n
       (the merge blocks are n rows here): max(R, C) >= 2 n + 8 */
    static const size_t shapes[][2] = {{7, 64}, {64, 7}, {12, 40}, {40, 12}, {20, 56}, {56, 20}, {16, 48}};
    size_t s;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
        one_case(shapes[s][0], shapes[s][1], 3, 1.0);
        one_case(shapes[s][0], shapes[s][1], 2, 0.5);
    }
    return TEST_END("test_dctop");
}
