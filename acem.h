/* acem.h - v0.1.0 - ACE-Merging and data-free model merging in one header.
   No warranty. Licence (MIT-0 / public domain): see the end of this file.

   Do this:
      #define ACEM_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.

   // Merge one R x C tensor of T experts with ACE, from a caller-owned arena.
   acem_options opt = acem_options_default();           // all zero = defaults (ACE)
   size_t need;  acem_layer L;  acem_layer_info info;  acem_error err;
   acem_layer_bytes(&opt, ACEM_RULE_METHOD, R, C, T, &need);
   void *arena = my_arena_of(need);                     // acem never calls malloc
   acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "blk.0.w", R, C, T, arena, need, &err);
   for (int pass = 0; pass < acem_layer_passes(&L); ++pass)
       for (size_t t = 0; t < T; ++t) acem_layer_feed(&L, expert[t], base, &err);
   acem_layer_finish(&L, base, merged, &info, &err);   // merged = base + lambda*M

   OPTIONS (macros)
   ----------------
   Define in the file with ACEM_IMPLEMENTATION unless marked "everywhere".
     ACEM_STATIC            everywhere: all functions are static (private to one TU).
     ACEM_NO_STDIO          everywhere: nothing that touches FILE* is declared or
                            compiled (<stdio.h> is not included).
     ACEM_NO_MALLOC         no convenience function that allocates (acem_*_alloc).
     ACEM_MALLOC(sz,ctx) / ACEM_FREE(p,ctx)   allocation hooks for the convenience
                            functions; define both or neither (ctx is NULL: the
                            only allocating function, acem_merge_alloc, has no
                            user pointer).
     ACEM_NO_SIMD           portable scalar kernels only (no AVX2 / AVX-512 code).
     ACEM_USE_CBLAS         GEMM, SYRK and the triangular solves go to a CBLAS
                            (OpenBLAS, BLIS, ...; link it, e.g. -lopenblas); the
                            Cholesky factorisation is then built on them, and the
                            rest (eigensolver, merge rules) stays here. Parallel
                            work is then cut into fixed chunks (a backend may
                            round an element differently by the block it is in).
                            The fixed-arena guarantee does not cover the backend's
                            own buffers, and determinism across worker counts
                            holds only if the backend itself is deterministic
                            (e.g. OPENBLAS_NUM_THREADS=1 with parallel_for).
     ACEM_USE_LAPACK        the Cholesky factorisation and the symmetric eigen
                            problems go to LAPACK through LAPACKE (spotrf,
                            dsyevr; include <lapacke.h>, link e.g. -llapacke
                            -lopenblas). Their workspaces stay in the arena
                            (acem_syev_work_bytes and acem_layer_bytes grow to
                            hold dsyevr's), but LAPACK may allocate internally:
                            the no-malloc guarantee does not cover it. Under it
                            the eigenvalues below the q wanted ones are not
                            computed (internal; every caller uses the top q).
     ACEM_ASSERT(x)         default: assert() from <assert.h> (internal invariants
                            only; data never triggers an assertion).
     ACEM_MEMCPY, ACEM_MEMSET     default: memcpy / memset from <string.h>.
     ACEM_SQRT(x), ACEM_LOG(x)    double -> double; default: sqrt / log from <math.h>.
                            Define all four of ACEM_MEMCPY, ACEM_MEMSET, ACEM_SQRT and
                            ACEM_LOG (with ACEM_NO_STDIO, ACEM_NO_MALLOC and ACEM_ASSERT)
                            and acem.h includes no libc header at all: freestanding
                            builds (WebAssembly, firmware) need nothing else.

   API (stop here if you only need the API)
   ---------------------------------------
   Results. Every fallible function returns acem_result; ACEM_OK is 0.
   acem_result_string(r) gives a static message. Functions that take an
   acem_error* (may be NULL) fill it on failure with the code, a message naming
   the tensor and the problem, the bytes required (ACEM_ERR_ARENA_TOO_SMALL) and
   the failing column (ACEM_ERR_NOT_POSITIVE_DEFINITE).

   Options. acem_options zeroed (acem_options_default(), or memset; in C also
   = {0}) means: method ACE, eps 1e-2, tau 0.3, k_frac 0.3,
   lambda = the method's default, TIES density 0.2, DARE drop 0.5, seed 0, no
   exclusions. acem_options_resolve() returns the effective values. Zero always
   means "default", so a literal zero is expressed otherwise: tau 0 by
   ACEM_FLAG_ALWAYS_GATE (gamma >= 0), drop 0 is plain TA / TIES (use those
   methods), lambda 0 would return the base.

   Rules per tensor. acem_tensor_rule(opt, name, ndim) says what happens to a
   tensor: ACEM_RULE_KEEP (name matches one of opt->exclude, regular expressions
   with search semantics: the merged tensor is the base), ACEM_RULE_MEAN (matrix
   methods only: tensor not 2-D or name contains "text_projection": mean of the
   deltas) or ACEM_RULE_METHOD (the method itself). Element-wise methods (average,
   task arithmetic, TIES, DARE) apply to tensors of any rank, as R x C = n x 1.

   Streaming one tensor (a "layer"):
     acem_layer_bytes()   exact arena bytes for (options, rule, R, C, T); depends
                          on the shapes, the method, n_workers and this build's
                          kernel blocking (SIMD width): query it on the target.
                          Never depends on the data, never grows with T.
     acem_layer_init()    carves the arena (8-byte aligned; 64-byte aligned is
                          fastest; it must stay alive until finish). The name is
                          kept for messages and the DARE stream: it must stay
                          valid until finish too.
                          Too small: ACEM_ERR_ARENA_TOO_SMALL with bytes_required.
     acem_layer_passes()  how many times the experts must be fed (1 or 2).
     acem_layer_feed()    one expert: feed(expert, base) uses expert - base as the
                          delta; base NULL means expert already is the delta.
                          Experts in the same order in every pass.
     acem_layer_finish()  writes out[i] = base[i] + lambda * M[i] (base NULL: the
                          scaled delta lambda*M alone). out may equal base.
                          acem_layer_info reports gating, refinement, fallbacks.
   Nothing is allocated; acem_layer holds only pointers into the arena, so it can
   be abandoned at any point without cleanup.

   acem_merge() does init + all passes + finish for in-memory tensors. For the
   element-wise rules (average, task arithmetic, TIES, DARE, the mean rule) it
   reads every input in one pass instead (TIES: one more pass, over base and
   four experts at a time, for their thresholds), with the very same float
   operations per element as the streaming path, so the results are bitwise
   identical. Unlike the streaming
   path it may have written part of out when it reports a non-finite input
   (also when out == base); the error names the same expert and position.

   Kernels (row-major, sizes in elements, leading dimensions >= row length):
     acem_gemm  C = alpha op(A) op(B) + beta C            (any transpose case)
     acem_syrk  C = alpha A^T A + beta C (trans=1, A k x n) or alpha A A^T + beta C
                (trans=0, A n x k); the full symmetric C is written, or with
                trans | ACEM_SYRK_LOWER only its lower triangle (the strict
                upper one is neither read nor written, as BLAS ssyrk with
                uplo L): half the stores, and no transposing pass over C.
     acem_potrf lower Cholesky in place; on failure the column is reported.
     acem_trsm_rl  B := B L^-T (trans=1) or B L^-1 (trans=0), L lower, on the right.
     acem_chol_solve_right   B := B A^-1 with A = L L^T.
     acem_syev  f64 symmetric eigen-decomposition: ascending eigenvalues,
                orthonormal eigenvectors in the columns of A (row-major). Its
                workspace is acem_syev_work_bytes(n) bytes (about 12 n^2 + 3500 n
                bytes and up to 1 MB of packing space: it keeps the Householder
                vectors while the eigenvectors are built in A, by divide and
                conquer, whose merges need an n x n matrix).
     acem_syev_top  the same for the k largest eigenpairs only (what the ACE
                refinement runs): the eigenvectors of the k largest as the
                columns of V (n x k, column 0 for the largest); w (n doubles)
                ascending, the k largest in w[n-k..n) (the built-in solver
                fills in all n; with ACEM_USE_LAPACK the others are 0). A is
                destroyed. Workspace: acem_syev_top_work_bytes(n) bytes.
     acem_svd_top  truncated SVD of a float matrix F (rows x cols) through the
                f64 Gram matrix of its smaller side: singular values descending
                into s (min(rows, cols) doubles: all of them from the built-in
                solver, the first max(k, 1) with ACEM_USE_LAPACK, then 0s), the
                first k singular vectors into U (rows x k) and V (cols x k) as
                floats, F ~ U diag(s) V^T. Pairs at or below the numerical-rank
                tolerance max(rows, cols) * FLT_EPSILON * s[0] get zero
                columns; *kept (may be NULL) counts the others. Workspace:
                acem_svd_top_work_bytes(rows, cols) bytes.
     Both run on the calling thread, return ACEM_ERR_INVALID_ARGUMENT when
     k > n (or k > min(rows, cols)) and ACEM_ERR_NONFINITE on Inf or NaN input.
     The GEMM-family kernels (gemm, syrk, potrf, trsm_rl, chol_solve_right)
     take a workspace of acem_gemm_work_bytes(m,n,k) bytes (potrf: (n,n,n);
     the solves: (m,n,n)); NULL: they run slower, on small blocks packed on
     the stack.
   Half precision: acem_f16_to_f32 / acem_f32_to_f16 / acem_bf16_to_f32 /
   acem_f32_to_bf16 (round to nearest even; NaN stays NaN, Inf stays Inf), and
   array forms.

   Determinism: for a given build, the same inputs and options give bitwise
   identical outputs, run after run, for any n_workers and any scheduling of
   parallel_for. Different builds (SIMD width, compiler, FMA contraction) may
   differ in the last bits.

   Precision: compute is f32 (the reference implementation's precision); the
   small eigen problems are f64. Where the ACE system is ill-conditioned in f32
   (tiny ridge next to large covariance, e.g. large low-rank deltas), results
   carry f32 conditioning error; the LoRA path computes in f64 coordinates.
*/
#ifndef ACEM_H_INCLUDED
#define ACEM_H_INCLUDED

#define ACEM_VERSION_MAJOR 0
#define ACEM_VERSION_MINOR 1
#define ACEM_VERSION_PATCH 0
#define ACEM_VERSION_STRING "0.1.0"

#include <stddef.h>
#include <stdint.h>
#ifndef ACEM_NO_STDIO
#include <stdio.h>
#endif

#ifdef ACEM_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define ACEMDEF static __attribute__((unused)) /* a TU may use only part of the API */
#else
#define ACEMDEF static
#endif
#else
#ifdef __cplusplus
#define ACEMDEF extern "C"
#else
#define ACEMDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- results -------------------------------------------------------------- */
#define ACEM_RESULT_LIST(X)                                                        \
    X(ACEM_OK, "ok")                                                               \
    X(ACEM_ERR_INVALID_ARGUMENT, "invalid argument")                              \
    X(ACEM_ERR_ARENA_TOO_SMALL, "arena too small")                                \
    X(ACEM_ERR_OUT_OF_MEMORY, "out of memory")                                    \
    X(ACEM_ERR_SIZE_OVERFLOW, "size overflow")                                    \
    X(ACEM_ERR_SEQUENCE, "call out of sequence")                                  \
    X(ACEM_ERR_NOT_POSITIVE_DEFINITE, "matrix is not positive definite")          \
    X(ACEM_ERR_SINGULAR, "matrix is singular")                                    \
    X(ACEM_ERR_NO_CONVERGENCE, "eigensolver did not converge")                    \
    X(ACEM_ERR_NONFINITE, "non-finite value")                                     \
    X(ACEM_ERR_BAD_PATTERN, "bad regular expression")                             \
    X(ACEM_ERR_IO, "input/output error")                                          \
    X(ACEM_ERR_FORMAT, "malformed file")                                          \
    X(ACEM_ERR_MISMATCH, "inputs do not match")

typedef enum acem_result {
#define ACEM__ENUM(code, msg) code,
    ACEM_RESULT_LIST(ACEM__ENUM)
#undef ACEM__ENUM
    ACEM_RESULT_COUNT
} acem_result;

typedef struct acem_error {
    acem_result code;
    size_t bytes_required;   /* ACEM_ERR_ARENA_TOO_SMALL: the bytes needed      */
    long long column;        /* ACEM_ERR_NOT_POSITIVE_DEFINITE: failing column;
                                otherwise -1                                     */
    char message[256];       /* names the tensor and the problem                */
} acem_error;

ACEMDEF const char *acem_result_string(acem_result r);

/* ---- methods and options -------------------------------------------------- */
#define ACEM_METHOD_LIST(X)                                                        \
    X(ACEM_ACE, "ace")                                                             \
    X(ACEM_AVERAGE, "average")                                                     \
    X(ACEM_TASK_ARITHMETIC, "task-arithmetic")                                     \
    X(ACEM_TIES, "ties")                                                           \
    X(ACEM_DARE_TA, "dare-ta")                                                     \
    X(ACEM_DARE_TIES, "dare-ties")                                                 \
    X(ACEM_ACTMAT, "actmat")                                                       \
    X(ACEM_ISO_C, "iso-c")                                                         \
    X(ACEM_TSV_M, "tsv-m")

typedef enum acem_method {
#define ACEM__ENUM(code, name) code,
    ACEM_METHOD_LIST(ACEM__ENUM)
#undef ACEM__ENUM
    ACEM_METHOD_COUNT
} acem_method;

/* flags */
#define ACEM_FLAG_NO_GATE     1u  /* ACE: never gate (as if gamma <= tau)          */
#define ACEM_FLAG_ALWAYS_GATE 2u  /* ACE: always gate (as if gamma > tau)          */
#define ACEM_FLAG_NO_REFINE   4u  /* ACE: gate, but skip the spectral refinement   */

typedef struct acem_options {
    acem_method method;        /* 0 = ACEM_ACE                                    */
    double eps;                /* ACE ridge epsilon; 0 = 1e-2                      */
    double tau;                /* ACE gate threshold; 0 = 0.3                      */
    double k_frac;             /* ACE spectral fraction; 0 = 0.3                   */
    double lambda;             /* merged = base + lambda*M; 0 = method default:
                                  task arithmetic and DARE-TA 0.3, otherwise 1     */
    double density;            /* TIES / DARE-TIES: fraction kept; 0 = 0.2         */
    double drop;               /* DARE drop probability in [0,1); 0 = 0.5          */
    uint64_t seed;             /* DARE seed (any value, 0 included)                */
    unsigned flags;            /* ACEM_FLAG_*                                      */
    const char *const *exclude;/* regular expressions: matching tensors keep base  */
    size_t n_exclude;
    /* Caller-driven parallelism (NULL: everything on the calling thread).
       parallel_for must call fn(ctx, i) once for every i in [0, count), on any
       threads and in any order, and return when all calls have returned.
       n_workers: how many calls may run at once (0 = 1); the arena holds
       per-worker scratch, so acem_layer_bytes grows with it (never with T).
       Output is bitwise identical for every n_workers and any scheduling. */
    void (*parallel_for)(void *user, void (*fn)(void *ctx, size_t i), void *ctx, size_t count);
    void *parallel_user;
    size_t n_workers;
} acem_options;

/* all fields zero: every default */
ACEMDEF acem_options acem_options_default(void);
ACEMDEF const char *acem_method_name(acem_method m);
/* parses "ace", "ties", "task-arithmetic" (also "task_arithmetic"), ...;
   returns ACEM_METHOD_COUNT when unknown. */
ACEMDEF acem_method acem_method_from_name(const char *name);
/* fills *out with every default made explicit; checks ranges. */
ACEMDEF acem_result acem_options_resolve(const acem_options *opt, acem_options *out,
                                         acem_error *err);

typedef enum acem_rule {
    ACEM_RULE_METHOD = 0,      /* the chosen method                               */
    ACEM_RULE_MEAN,            /* mean of the deltas (non-2-D, text_projection)   */
    ACEM_RULE_KEEP             /* excluded: merged tensor = base                  */
} acem_rule;

ACEMDEF const char *acem_rule_name(acem_rule r);
/* Which rule applies to a tensor. Invalid patterns count as no match; check
   them first with acem_regex_check(). */
ACEMDEF acem_rule acem_tensor_rule(const acem_options *opt, const char *name, size_t ndim);

/* Small regular expressions (search semantics, like Python's re.search):
   literals, ., [...] and [^...] with ranges, \d \w \s \D \W \S and escaped
   metacharacters, * + ?, | and ( ), ^ and $. Matching takes time linear in
   the text for any pattern and about 24 KB of stack, no heap; patterns of
   more than 128 atoms or 512 compiled instructions are rejected. */
ACEMDEF acem_result acem_regex_check(const char *pattern);
ACEMDEF int acem_regex_search(const char *pattern, const char *text);

/* ---- one tensor, streamed ------------------------------------------------- */
typedef struct acem_layer_info {
    acem_rule rule;
    acem_method method;
    int gated;                 /* ACE: heterogeneity gate open                    */
    int refined;               /* ACE: spectral refinement applied                */
    int fallback;              /* 1: Cholesky or Sherman-Morrison fell back to LU */
    double gamma;              /* ACE: heterogeneity statistic                    */
    double sigma_iso;          /* ACE / Iso-C: isotropic singular value           */
    size_t k;                  /* ACE: refinement rank k; Iso-C: r; TSV-M: r/T    */
    size_t directions;         /* singular directions actually added              */
} acem_layer_info;

typedef struct acem_layer {    /* fields are private; put it anywhere            */
    acem_options opt;          /* resolved                                        */
    acem_rule rule;
    const char *name;
    size_t rows, cols, T;
    int pass, npasses;
    size_t fed;                /* experts fed in the current pass                 */
    int state;                 /* 0 none, 1 feeding, 2 finished, 3 failed         */
    unsigned char *arena;
    size_t arena_bytes;
    size_t work_bytes;         /* per-worker kernel scratch                       */
    uint64_t stream;           /* DARE random stream for this tensor              */
    /* streaming statistics */
    double stat[8];
    void *buf[16];             /* named views into the arena, per method          */
} acem_layer;

ACEMDEF acem_result acem_layer_bytes(const acem_options *opt, acem_rule rule,
                                     size_t rows, size_t cols, size_t n_experts,
                                     size_t *bytes);
ACEMDEF acem_result acem_layer_init(acem_layer *L, const acem_options *opt,
                                    acem_rule rule, const char *name,
                                    size_t rows, size_t cols, size_t n_experts,
                                    void *arena, size_t arena_bytes, acem_error *err);
ACEMDEF int acem_layer_passes(const acem_layer *L);
/* the same, before init: how many times a rule reads every expert */
ACEMDEF int acem_rule_passes(const acem_options *opt, acem_rule rule, size_t n_experts);
ACEMDEF acem_result acem_layer_feed(acem_layer *L, const float *expert,
                                    const float *base, acem_error *err);
ACEMDEF acem_result acem_layer_finish(acem_layer *L, const float *base, float *out,
                                      acem_layer_info *info, acem_error *err);

/* In-memory convenience: experts[t] are full tensors (or deltas if base is NULL). */
ACEMDEF acem_result acem_merge(const acem_options *opt, acem_rule rule,
                               const char *name, size_t rows, size_t cols,
                               size_t n_experts, const float *base,
                               const float *const *experts, float *out,
                               void *arena, size_t arena_bytes,
                               acem_layer_info *info, acem_error *err);
#ifndef ACEM_NO_MALLOC
/* Same, allocating exactly acem_layer_bytes() for the call and freeing it. */
ACEMDEF acem_result acem_merge_alloc(const acem_options *opt, acem_rule rule,
                                     const char *name, size_t rows, size_t cols,
                                     size_t n_experts, const float *base,
                                     const float *const *experts, float *out,
                                     acem_layer_info *info, acem_error *err);
#endif

/* ---- kernels -------------------------------------------------------------- */
ACEMDEF size_t acem_gemm_work_bytes(size_t m, size_t n, size_t k);
ACEMDEF void acem_gemm(int transa, int transb, size_t m, size_t n, size_t k,
                       float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float beta, float *C, size_t ldc,
                       void *work);
#define ACEM_SYRK_LOWER 2 /* or-ed into acem_syrk's trans: the lower triangle only */
ACEMDEF void acem_syrk(int trans, size_t n, size_t k, float alpha, const float *A,
                       size_t lda, float beta, float *C, size_t ldc, void *work);
ACEMDEF acem_result acem_potrf(size_t n, float *A, size_t lda, size_t *failed_column, void *work);
ACEMDEF void acem_trsm_rl(int trans, size_t m, size_t n, const float *L, size_t ldl,
                          float *B, size_t ldb, void *work);
ACEMDEF void acem_chol_solve_right(size_t m, size_t n, const float *L, size_t ldl,
                                   float *B, size_t ldb, void *work);
ACEMDEF size_t acem_syev_work_bytes(size_t n);
ACEMDEF acem_result acem_syev(size_t n, double *A, size_t lda, double *w, void *work);
ACEMDEF size_t acem_syev_top_work_bytes(size_t n);
ACEMDEF acem_result acem_syev_top(size_t n, double *A, size_t lda, size_t k, double *w,
                                  double *V, size_t ldv, void *work);
ACEMDEF size_t acem_svd_top_work_bytes(size_t rows, size_t cols);
ACEMDEF acem_result acem_svd_top(size_t rows, size_t cols, const float *F, size_t ldf, size_t k,
                                 double *s, float *U, size_t ldu, float *V, size_t ldv,
                                 size_t *kept, void *work);

ACEMDEF float acem_f16_to_f32(uint16_t h);
ACEMDEF uint16_t acem_f32_to_f16(float f);
ACEMDEF float acem_bf16_to_f32(uint16_t h);
ACEMDEF uint16_t acem_f32_to_bf16(float f);
ACEMDEF void acem_f16_to_f32_array(const uint16_t *src, float *dst, size_t n);
ACEMDEF void acem_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);
ACEMDEF void acem_bf16_to_f32_array(const uint16_t *src, float *dst, size_t n);
ACEMDEF void acem_f32_to_bf16_array(const float *src, uint16_t *dst, size_t n);


/* ---- LoRA: exact merging in low-rank form ----------------------------------
   Expert t's delta is scale_t * B_t * A_t (B_t: R x r_t, A_t: r_t x C; rank 0
   means the expert does not touch this tensor: a zero delta). For ACE,
   average, task arithmetic and ACTMat the merge is done exactly in the
   coordinates of two orthonormal bases, span(A rows) and span(B columns, 1):
   time O((R + C) K^2 + K^3), memory O((R + C) K) with K = sum r_t, and no
   R x C or C x C matrix is ever formed. The result is the merged delta
   lambda*M = out.B * out.A in SVD order (out.sv descending: truncating to the
   first k rows/columns keeps sum(sv[0..k)^2) / sum(sv^2) of its energy).
   Other methods have no exact low-rank form: build dense deltas and use the
   layer API (acem_lora_supported() says which). */
typedef struct acem_lora {
    size_t rank;               /* r_t                                             */
    float scale;               /* s_t (alpha / r, or alpha / sqrt(r) for rsLoRA)  */
    const float *A;            /* r_t x C, row-major                              */
    const float *B;            /* R x r_t, row-major                              */
} acem_lora;

typedef struct acem_lora_out {
    size_t rank;               /* q <= sum r_t                                    */
    float *B;                  /* R x q (row-major, leading dimension q), = U*S   */
    float *A;                  /* q x C (row-major)                               */
    double *sv;                /* q singular values of the merged delta, descending */
} acem_lora_out;

ACEMDEF int acem_lora_supported(acem_method m);
ACEMDEF acem_result acem_lora_bytes(const acem_options *opt, size_t rows, size_t cols, size_t n_experts,
                                    const size_t *ranks, size_t *bytes);
/* out's arrays point into the arena. info reports gating and refinement as
   for the dense path. */
ACEMDEF acem_result acem_lora_merge(const acem_options *opt, const char *name, size_t rows, size_t cols,
                                    size_t n_experts, const acem_lora *experts, void *arena,
                                    size_t arena_bytes, acem_lora_out *out, acem_layer_info *info,
                                    acem_error *err);

/* ---- PEFT adapter_config.json --------------------------------------------
   acem_peft_config_parse() decodes the JSON in place (buf holds len + 1 bytes)
   and keeps pointers into it; pattern and module lists are carved from the
   arena (acem_peft_config_bytes(len) bytes). Absent values: r 0 (infer from
   the tensor shapes), lora_alpha 8. acem_peft_scaling() applies rank_pattern /
   alpha_pattern (keys match a module name exactly or as a dotted suffix, as
   regular expressions, like PEFT's "(.*\.)?key$") and use_rslora. */
typedef struct acem_peft_pattern {
    const char *key;
    double value;
} acem_peft_pattern;

typedef struct acem_peft_config {
    const char *peft_type;     /* "LORA" expected; NULL if absent                */
    double r;                  /* 0: absent                                       */
    double lora_alpha;         /* 8 when absent                                   */
    int use_rslora, fan_in_fan_out, use_dora;
    acem_peft_pattern *rank_pattern, *alpha_pattern;
    size_t n_rank_pattern, n_alpha_pattern;
    const char **target_modules;   /* list form; target_modules_regex: string form */
    size_t n_target_modules;
    const char *target_modules_regex;
    const char **modules_to_save;
    size_t n_modules_to_save;
} acem_peft_config;

ACEMDEF size_t acem_peft_config_bytes(size_t len);
ACEMDEF acem_result acem_peft_config_parse(char *buf, size_t len, acem_peft_config *cfg, void *arena,
                                           size_t arena_bytes, const char *path, acem_error *err);
/* r_shape: the rank found in the tensors (used when r is absent). Returns the
   scale and, in *r_used, the rank the config asks for (0 on a bad pattern). */
ACEMDEF double acem_peft_scaling(const acem_peft_config *cfg, const char *module, size_t r_shape, double *r_used);

/* ---- safetensors ------------------------------------------------------------
   I/O goes through callbacks so firmware and the browser can use it; the stdio
   helpers below them are compiled out by ACEM_NO_STDIO.

   Reading: acem_st_open_bytes() reads the 8-byte header length and gives the
   arena bytes acem_st_open() needs (an upper bound from the header length: the
   header text plus its tables). acem_st_open() reads the header only and
   validates what the reference reader validates: header size limit, a JSON
   object, known dtypes, byte size = product(shape) x dtype size (overflow
   checked), offsets contiguous from 0 without overlap or hole, no trailing
   bytes, no duplicate keys, string-only metadata. Tensor data is read one
   tensor at a time with acem_st_read_f32() (F32, F16, BF16, F64 -> f32) or
   acem_st_read_raw(). Names point into the arena.

   Writing: acem_st_write_header() lays the tensors out canonically (sorted by
   dtype alignment, descending, then name; header starts with '{', padded with
   spaces to a multiple of 8, "__metadata__" with "format": "pt" plus your
   pairs), fills begin/end of each descriptor and the order in which the data
   must follow; then acem_st_write_f32() / acem_st_write_raw() once per tensor
   in that order. */
#define ACEM_DTYPE_LIST(X)                                                         \
    X(ACEM_DT_BOOL, "BOOL", 8) X(ACEM_DT_F4, "F4", 4) X(ACEM_DT_F6_E2M3, "F6_E2M3", 6) \
    X(ACEM_DT_F6_E3M2, "F6_E3M2", 6) X(ACEM_DT_U8, "U8", 8) X(ACEM_DT_I8, "I8", 8)  \
    X(ACEM_DT_F8_E5M2, "F8_E5M2", 8) X(ACEM_DT_F8_E4M3, "F8_E4M3", 8)               \
    X(ACEM_DT_F8_E8M0, "F8_E8M0", 8) X(ACEM_DT_F8_E4M3FNUZ, "F8_E4M3FNUZ", 8)       \
    X(ACEM_DT_F8_E5M2FNUZ, "F8_E5M2FNUZ", 8) X(ACEM_DT_I16, "I16", 16)              \
    X(ACEM_DT_U16, "U16", 16) X(ACEM_DT_F16, "F16", 16) X(ACEM_DT_BF16, "BF16", 16)   \
    X(ACEM_DT_I32, "I32", 32) X(ACEM_DT_U32, "U32", 32) X(ACEM_DT_F32, "F32", 32)    \
    X(ACEM_DT_C64, "C64", 64) X(ACEM_DT_F64, "F64", 64) X(ACEM_DT_I64, "I64", 64)    \
    X(ACEM_DT_U64, "U64", 64)

/* GGUF's block-quantized types (ggml type id, elements per block, bytes per
   block); they occur only in GGUF files. The other ggml types are the plain
   ones above (F32, F16, BF16, F64, I8, I16, I32, I64). */
#define ACEM_GGUF_BLOCK_LIST(X)                                                    \
    X(ACEM_DT_Q4_0, "Q4_0", 2, 32, 18) X(ACEM_DT_Q4_1, "Q4_1", 3, 32, 20)             \
    X(ACEM_DT_Q5_0, "Q5_0", 6, 32, 22) X(ACEM_DT_Q5_1, "Q5_1", 7, 32, 24)             \
    X(ACEM_DT_Q8_0, "Q8_0", 8, 32, 34) X(ACEM_DT_Q8_1, "Q8_1", 9, 32, 36)             \
    X(ACEM_DT_Q2_K, "Q2_K", 10, 256, 84) X(ACEM_DT_Q3_K, "Q3_K", 11, 256, 110)        \
    X(ACEM_DT_Q4_K, "Q4_K", 12, 256, 144) X(ACEM_DT_Q5_K, "Q5_K", 13, 256, 176)       \
    X(ACEM_DT_Q6_K, "Q6_K", 14, 256, 210) X(ACEM_DT_Q8_K, "Q8_K", 15, 256, 292)       \
    X(ACEM_DT_IQ2_XXS, "IQ2_XXS", 16, 256, 66) X(ACEM_DT_IQ2_XS, "IQ2_XS", 17, 256, 74) \
    X(ACEM_DT_IQ3_XXS, "IQ3_XXS", 18, 256, 98) X(ACEM_DT_IQ1_S, "IQ1_S", 19, 256, 50)   \
    X(ACEM_DT_IQ4_NL, "IQ4_NL", 20, 32, 18) X(ACEM_DT_IQ3_S, "IQ3_S", 21, 256, 110)     \
    X(ACEM_DT_IQ2_S, "IQ2_S", 22, 256, 82) X(ACEM_DT_IQ4_XS, "IQ4_XS", 23, 256, 136)    \
    X(ACEM_DT_IQ1_M, "IQ1_M", 29, 256, 56) X(ACEM_DT_TQ1_0, "TQ1_0", 34, 256, 54)       \
    X(ACEM_DT_TQ2_0, "TQ2_0", 35, 256, 66) X(ACEM_DT_MXFP4, "MXFP4", 39, 32, 17)       \
    X(ACEM_DT_NVFP4, "NVFP4", 40, 64, 36) X(ACEM_DT_Q1_0, "Q1_0", 41, 128, 18)          \
    X(ACEM_DT_Q2_0, "Q2_0", 42, 64, 18)

typedef enum acem_dtype {
    ACEM_DT_UNKNOWN = 0,
#define ACEM__ENUM(code, name, bits) code,
    ACEM_DTYPE_LIST(ACEM__ENUM)
#undef ACEM__ENUM
    ACEM_DT_COUNT,             /* the safetensors dtypes are 1 .. COUNT-1        */
    ACEM_DT__GGUF_BEFORE = 63, /* GGUF block types: GGUF_FIRST .. GGUF_END-1      */
#define ACEM__ENUM(code, name, id, blk, size) code,
    ACEM_GGUF_BLOCK_LIST(ACEM__ENUM)
#undef ACEM__ENUM
    ACEM_DT_GGUF_END
} acem_dtype;
#define ACEM_DT_GGUF_FIRST ACEM_DT_Q4_0

ACEMDEF const char *acem_dtype_name(acem_dtype d);
ACEMDEF acem_dtype acem_dtype_from_name(const char *name); /* ACEM_DT_UNKNOWN if none */
ACEMDEF unsigned acem_dtype_bits(acem_dtype d);
/* 1 for the dtypes acem reads as f32 (F32, F16, BF16, F64, F8_E4M3, F8_E5M2,
   and the GGUF blocks Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K,
   Q6_K, IQ4_NL, IQ4_XS, TQ2_0, MXFP4: ggml's reference dequantizers, bit for
   bit).
   Names cannot hold NUL: a \u0000 escape in a header is rejected. */
ACEMDEF int acem_dtype_is_float(acem_dtype d);
/* Storage bytes of numel elements of d into *bytes. 0 (and *bytes = 0) when
   d is unknown, numel is not a whole number of d's blocks (or bytes), or the
   size overflows. Block types: elements per block in *block (may be NULL). */
ACEMDEF int acem_dtype_bytes(acem_dtype d, uint64_t numel, uint64_t *bytes, uint64_t *block);

#define ACEM_ST_MAX_DIMS 8
#define ACEM_ST_MAX_HEADER 100000000u

typedef struct acem_st_tensor {
    const char *name;
    acem_dtype dtype;
    size_t ndim;
    uint64_t shape[ACEM_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;       /* byte range relative to the data buffer       */
    uint64_t pad;              /* writing: zero bytes that follow the data
                                  (GGUF alignment; set by the header writers)  */
} acem_st_tensor;

typedef struct acem_read_io {
    void *user;
    /* read exactly n bytes at absolute offset off into dst; 0 on success */
    int (*read)(void *user, uint64_t off, void *dst, size_t n);
    uint64_t size;             /* file size in bytes                           */
    const char *path;          /* for messages (may be NULL)                    */
} acem_read_io;

typedef struct acem_write_io {
    void *user;
    int (*write)(void *user, const void *src, size_t n); /* 0 on success */
    const char *path;          /* for messages (may be NULL)                    */
} acem_write_io;

typedef enum acem_format { ACEM_FORMAT_SAFETENSORS = 0, ACEM_FORMAT_GGUF = 1 } acem_format;

/* one GGUF key/value pair: the value rendered as text (numbers in decimal,
   bool as true/false, a string as itself, an array as "[N x TYPE]"), and the
   pair's bytes in the file (key through value) for copying it verbatim */
typedef struct acem_gguf_kv {
    const char *key, *value;
    uint32_t type;             /* GGUF value type (8 string, 9 array, ...)       */
    uint64_t begin, end;       /* absolute file offsets                          */
} acem_gguf_kv;

typedef struct acem_st_file {
    acem_read_io io;
    uint64_t header_len, data_start, data_len; /* GGUF: header_len is the header
                                  padded to the alignment; data_start the same,
                                  unless the file ends before (no tensor data) */
    acem_st_tensor *tensors;   /* sorted by name                                 */
    size_t n_tensors;
    const char **meta;         /* n_meta pairs: meta[2i] key, meta[2i+1] value,
                                  sorted by key (GGUF: the kv pairs' text)      */
    size_t n_meta;
    acem_format format;        /* detected from the first bytes                 */
    uint32_t gguf_version, alignment; /* GGUF only                               */
    acem_gguf_kv *kv;          /* GGUF only: n_kv pairs in file order           */
    size_t n_kv;
} acem_st_file;

/* Both open a safetensors file or a GGUF file (version 2 or 3, little-endian;
   told apart by the magic "GGUF"). GGUF tensors get shape = ggml's dims
   reversed (row-major, as PyTorch: a weight stored with dims [in, out] is
   out x in) and begin/end relative to the data section. */
ACEMDEF acem_result acem_st_open_bytes(const acem_read_io *io, size_t *bytes, acem_error *err);
ACEMDEF acem_result acem_st_open(acem_st_file *f, const acem_read_io *io, void *arena, size_t arena_bytes,
                                 acem_error *err);
/* binary search by name; NULL if absent */
ACEMDEF const acem_st_tensor *acem_st_find(const acem_st_file *f, const char *name);
ACEMDEF const char *acem_st_meta(const acem_st_file *f, const char *key);
ACEMDEF acem_result acem_st_read_raw(const acem_st_file *f, const acem_st_tensor *t, void *dst, acem_error *err);
/* dst holds numel floats; the raw bytes are read into it and widened in place */
ACEMDEF acem_result acem_st_read_f32(const acem_st_file *f, const acem_st_tensor *t, float *dst, acem_error *err);

/* meta: n_meta key/value pairs (keys must not be "format"; it is written
   first as "pt"). order: n size_t, receives the write order. Tensors' begin,
   end and numel are filled in. *header_bytes (may be NULL): 8 + header. */
ACEMDEF acem_result acem_st_write_header(const acem_write_io *io, acem_st_tensor *tensors, size_t n,
                                         const char *const *meta, size_t n_meta, size_t *order,
                                         uint64_t *header_bytes, acem_error *err);
ACEMDEF acem_result acem_st_write_f32(const acem_write_io *io, const acem_st_tensor *t, const float *src,
                                      acem_error *err);
ACEMDEF acem_result acem_st_write_raw(const acem_write_io *io, const acem_st_tensor *t, const void *src,
                                      acem_error *err);

/* ---- GGUF -------------------------------------------------------------------
   Reading is acem_st_open() above; it validates what ggml's gguf reader
   validates: magic and version (2, 3), value types, no nested arrays, no
   duplicate keys or tensor names, general.alignment a UINT32 power of two,
   names under 64 bytes, at most 4 dims, sizes without overflow, the first
   dim a whole number of blocks, offsets sequential from 0 and padded to the
   alignment, and every tensor's data inside the file. acem_st_read_f32()
   dequantizes the block types acem_dtype_is_float() names (Q4_0 .. Q8_0, the
   K-quants Q2_K .. Q6_K, IQ4_NL, IQ4_XS, TQ2_0, MXFP4); the others (the
   codebook i-quants) can be copied with acem_st_read_raw() only.

   Writing: acem_gguf_write_header() writes version 3 with src's key/value pairs
   copied verbatim in their order (src may be NULL), except general.alignment
   and any key also in meta; then meta as STRING pairs (a pair whose value is
   NULL only drops that key of src's); general.alignment when
   alignment is not 32 (0: src's alignment, or 32). The tensors are laid out in
   the order given, each padded to the alignment: begin, end, pad and numel of
   every descriptor are filled in. Then acem_st_write_f32() or
   acem_st_write_raw() once per tensor in that order (they write the padding);
   acem_st_write_f32() can produce F32, F16, BF16 and, by ggml's reference
   quantizers, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1. */
ACEMDEF acem_result acem_gguf_write_header(const acem_write_io *io, const acem_st_file *src, acem_st_tensor *tensors,
                                           size_t n, const char *const *meta, size_t n_meta, uint32_t alignment,
                                           uint64_t *header_bytes, acem_error *err);
/* ggml's type id of d, or -1 if GGUF cannot hold d */
ACEMDEF int acem_gguf_type_id(acem_dtype d);

/* Sharded checkpoints: parse model.safetensors.index.json in place (strings are
   decoded into the buffer, which must hold len + 1 bytes). names[i] and
   files[i] receive up to max entries; *n the count. total_size may be NULL. */
ACEMDEF acem_result acem_st_index_parse(char *json, size_t len, const char **names, const char **files,
                                        size_t max, size_t *n, uint64_t *total_size, acem_error *err);

#ifndef ACEM_NO_STDIO
/* Callbacks over an open FILE* (binary mode). The reader also sets io->size. */
ACEMDEF acem_result acem_stdio_reader(acem_read_io *io, FILE *f, const char *path);
ACEMDEF void acem_stdio_writer(acem_write_io *io, FILE *f, const char *path);
#endif
#ifdef __cplusplus
}
#endif
#endif /* ACEM_H_INCLUDED */

/* =========================================================================== */
/*                             IMPLEMENTATION                                  */
/* =========================================================================== */
#ifdef ACEM_IMPLEMENTATION
#ifndef ACEM__IMPLEMENTED
#define ACEM__IMPLEMENTED

/* ---- configuration -------------------------------------------------------- */
#if defined(ACEM_MALLOC) != defined(ACEM_FREE)
#error "acem.h: define both ACEM_MALLOC and ACEM_FREE, or neither"
#endif
#if !defined(ACEM_MEMCPY) || !defined(ACEM_MEMSET)
#include <string.h>
#endif
#ifndef ACEM_MEMCPY
#define ACEM_MEMCPY(d, s, n) memcpy((d), (s), (n))
#endif
#ifndef ACEM_MEMSET
#define ACEM_MEMSET(d, v, n) memset((d), (v), (n))
#endif
#if !defined(ACEM_SQRT) || !defined(ACEM_LOG)
#include <math.h>
#endif
#ifndef ACEM_SQRT
#define ACEM_SQRT(x) sqrt(x)
#endif
#ifndef ACEM_LOG
#define ACEM_LOG(x) log(x)
#endif
#ifndef ACEM_ASSERT
#include <assert.h>
#define ACEM_ASSERT(x) assert(x)
#endif
#if !defined(ACEM_NO_MALLOC) && !defined(ACEM_MALLOC)
#include <stdlib.h>
#define ACEM_MALLOC(sz, ctx) ((void)(ctx), malloc(sz))
#define ACEM_FREE(p, ctx) ((void)(ctx), free(p))
#endif
#include <stdarg.h>
#ifdef ACEM_USE_CBLAS
#include <cblas.h>
#endif
#ifdef ACEM_USE_LAPACK
#include <lapacke.h>
#endif

#if !defined(ACEM_NO_SIMD) && defined(__AVX512F__)
#define ACEM__AVX512 1
#include <immintrin.h>
#elif !defined(ACEM_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#define ACEM__AVX2 1
#include <immintrin.h>
#endif
/* An empty asm that "modifies" two vectors loaded once and used by several
   FMAs: GCC otherwise folds the load into every one of them (more loads than
   the load ports take, in the AVX2 GEMM kernel and the f64 symv). */
#if (defined(ACEM__AVX2) || defined(ACEM__AVX512)) && (defined(__GNUC__) || defined(__clang__))
#define ACEM__PIN2(x, y) __asm__("" : "+x"(x), "+x"(y))
#else
#define ACEM__PIN2(x, y) ((void)0)
#endif

/* no aliasing between a block's bytes and its floats: lets the compiler
   vectorise the dequantisation loops without run-time overlap checks */
#if defined(__cplusplus) && (defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER))
#define ACEM__RESTRICT __restrict
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define ACEM__RESTRICT restrict
#else
#define ACEM__RESTRICT
#endif

#ifdef __cplusplus
#define ACEM__CAST(T, x) static_cast<T>(x)
#else
#define ACEM__CAST(T, x) ((T)(x))
#endif

#define ACEM__GUARD 1e-12
#define ACEM__FLT_EPS 1.1920928955078125e-07 /* 2^-23 */

/* =========================================================================== */
/* utilities: results, messages, small math                                     */
/* =========================================================================== */
ACEMDEF const char *acem_result_string(acem_result r) {
    static const char *const msgs[] = {
#define ACEM__MSG(code, msg) msg,
        ACEM_RESULT_LIST(ACEM__MSG)
#undef ACEM__MSG
    };
    if ((int)r < 0 || (int)r >= (int)ACEM_RESULT_COUNT) return "unknown result";
    return msgs[r];
}

static size_t acem__strlen(const char *s) {
    size_t n = 0;
    while (s[n]) ++n;
    return n;
}

/* A tiny formatter (no libc): %s %d %u (unsigned) %zu %lld %g (6 digits). */
typedef struct { char *p; size_t n, cap; } acem__sbuf;
static void acem__putc(acem__sbuf *b, char c) {
    if (b->cap && b->n < b->cap - 1) b->p[b->n] = c;
    b->n++;
}
static void acem__puts(acem__sbuf *b, const char *s) {
    if (!s) s = "(null)";
    while (*s) acem__putc(b, *s++);
}
static void acem__putu(acem__sbuf *b, unsigned long long v) {
    char tmp[24];
    int i = 0;
    do { tmp[i++] = (char)('0' + (int)(v % 10)); v /= 10; } while (v);
    while (i) acem__putc(b, tmp[--i]);
}
/* %g-like: 6 significant digits, trailing zeros dropped, exponent form
   outside [1e-4, 1e6) */
static void acem__putg(acem__sbuf *b, double v) {
    int e = 0, i, nd;
    unsigned long long m;
    char d[7];
    if (v != v) { acem__puts(b, "nan"); return; }
    if (v < 0) { acem__putc(b, '-'); v = -v; }
    if (v > 1.7e308) { acem__puts(b, "inf"); return; }
    if (v == 0) { acem__puts(b, "0"); return; }
    while (v >= 10) { v /= 10; ++e; }
    while (v < 1) { v *= 10; --e; }
    m = (unsigned long long)(v * 100000.0 + 0.5);
    if (m >= 1000000ull) { m /= 10; ++e; }
    for (i = 5; i >= 0; --i) { d[i] = (char)('0' + (int)(m % 10)); m /= 10; }
    for (nd = 6; nd > 1 && d[nd - 1] == '0'; --nd) {}
    if (e >= -4 && e < 6) { /* fixed notation */
        if (e < 0) {
            acem__puts(b, "0.");
            for (i = -1; i > e; --i) acem__putc(b, '0');
            for (i = 0; i < nd; ++i) acem__putc(b, d[i]);
        } else {
            for (i = 0; i <= e; ++i) acem__putc(b, i < nd ? d[i] : '0');
            if (nd > e + 1) {
                acem__putc(b, '.');
                for (i = e + 1; i < nd; ++i) acem__putc(b, d[i]);
            }
        }
        return;
    }
    acem__putc(b, d[0]);
    if (nd > 1) {
        acem__putc(b, '.');
        for (i = 1; i < nd; ++i) acem__putc(b, d[i]);
    }
    acem__putc(b, 'e');
    if (e < 0) { acem__putc(b, '-'); e = -e; } else acem__putc(b, '+');
    if (e < 10) acem__putc(b, '0');
    acem__putu(b, (unsigned long long)e);
}
static void acem__vfmt(char *out, size_t cap, const char *fmt, va_list ap) {
    acem__sbuf b;
    b.p = out; b.n = 0; b.cap = cap;
    while (*fmt) {
        if (*fmt != '%') { acem__putc(&b, *fmt++); continue; }
        ++fmt;
        if (*fmt == 's') { acem__puts(&b, va_arg(ap, const char *)); ++fmt; }
        else if (*fmt == 'd') {
            int v = va_arg(ap, int);
            if (v < 0) { acem__putc(&b, '-'); acem__putu(&b, (unsigned long long)(-(long long)v)); }
            else acem__putu(&b, (unsigned long long)v);
            ++fmt;
        } else if (*fmt == 'u') { acem__putu(&b, va_arg(ap, unsigned)); ++fmt; }
        else if (fmt[0] == 'z' && fmt[1] == 'u') { acem__putu(&b, va_arg(ap, size_t)); fmt += 2; }
        else if (fmt[0] == 'l' && fmt[1] == 'l' && fmt[2] == 'd') {
            long long v = va_arg(ap, long long);
            if (v < 0) { acem__putc(&b, '-'); acem__putu(&b, (unsigned long long)(-(v + 1)) + 1); }
            else acem__putu(&b, (unsigned long long)v);
            fmt += 3;
        } else if (*fmt == 'g') { acem__putg(&b, va_arg(ap, double)); ++fmt; }
        else if (*fmt == '%') { acem__putc(&b, '%'); ++fmt; }
        else acem__putc(&b, '?');
    }
    if (cap) out[b.n < cap ? b.n : cap - 1] = 0;
}
/* Sets err (if any) and returns code. */
static acem_result acem__fail(acem_error *err, acem_result code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        err->code = code;
        err->bytes_required = 0;
        err->column = -1;
        va_start(ap, fmt);
        acem__vfmt(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}
static const char *acem__nm(const char *name) { return name ? name : "(unnamed)"; }

/* Every entry point that carves a caller's arena checks it here: enough bytes
   (else ACEM_ERR_ARENA_TOO_SMALL with bytes_required) and 8-byte alignment.
   who: what the arena is for ("tensor 'x'", a file path). */
static acem_result acem__check_arena(acem_error *err, const char *who, const void *arena, size_t bytes, size_t need) {
    if (need && (!arena || bytes < need)) {
        acem__fail(err, ACEM_ERR_ARENA_TOO_SMALL, "%s: arena too small: %zu bytes needed, %zu given", who, need,
                   arena ? bytes : (size_t)0);
        if (err) err->bytes_required = need;
        return ACEM_ERR_ARENA_TOO_SMALL;
    }
    if (((size_t)(const unsigned char *)arena & 7u) != 0)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: arena must be 8-byte aligned", who);
    return ACEM_OK;
}
/* "tensor 'name'" for messages */
static const char *acem__tensor_who(char *buf, size_t cap, const char *name) {
    acem__sbuf b;
    b.p = buf; b.n = 0; b.cap = cap;
    acem__puts(&b, "tensor '");
    acem__puts(&b, acem__nm(name));
    acem__putc(&b, '\'');
    buf[b.n < cap ? b.n : cap - 1] = 0;
    return buf;
}

static int acem__mul_ovf(size_t a, size_t b, size_t *out) {
    if (a && b > (size_t)-1 / a) return 1;
    *out = a * b;
    return 0;
}
static size_t acem__min(size_t a, size_t b) { return a < b ? a : b; }
static size_t acem__max(size_t a, size_t b) { return a > b ? a : b; }
static double acem__fabs(double x) { return x < 0 ? -x : x; }
static double acem__fmax(double a, double b) { return a > b ? a : b; }
static int acem__finite(float x) { return (x - x) == (x - x) && x == x; }

/* =========================================================================== */
/* arena: offsets computed by one layout function, for sizing and for carving  */
/* =========================================================================== */
typedef struct acem__arena {
    unsigned char *base; /* NULL when only counting */
    size_t off;
    int overflow;
} acem__arena;

static void *acem__take(acem__arena *a, size_t count, size_t elsize) {
    size_t bytes, off = (a->off + 63u) & ~(size_t)63u;
    if (off < a->off || acem__mul_ovf(count, elsize, &bytes) || off + bytes < off) {
        a->overflow = 1;
        return NULL;
    }
    a->off = off + bytes;
    return a->base ? a->base + off : NULL;
}

/* =========================================================================== */
/* dtypes: f16 / bf16 <-> f32, round to nearest even, NaN and Inf preserved    */
/* =========================================================================== */
static uint32_t acem__f2u(float f) { uint32_t u; ACEM_MEMCPY(&u, &f, 4); return u; }
static float acem__u2f(uint32_t u) { float f; ACEM_MEMCPY(&f, &u, 4); return f; }

ACEMDEF float acem_f16_to_f32(uint16_t h) {
#if (defined(ACEM__AVX2) || defined(ACEM__AVX512)) && defined(__F16C__)
    return _cvtsh_ss(h); /* the same bits (NaNs quieted, payloads kept); every GGUF block scale comes here */
#else
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return acem__u2f(sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0));
    if (exp == 0) {
        if (!man) return acem__u2f(sign);
        exp = 113; /* normalise the subnormal */
        while (!(man & 0x400u)) { man <<= 1; --exp; }
        man &= 0x3ffu;
        return acem__u2f(sign | (exp << 23) | (man << 13));
    }
    return acem__u2f(sign | ((exp + 112) << 23) | (man << 13));
#endif
}

ACEMDEF uint16_t acem_f32_to_f16(float f) {
    uint32_t u = acem__f2u(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* Inf or NaN (keep a quiet NaN) */
        return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: Inf */
    if (a < 0x38800000u) { /* result subnormal or zero */
        uint32_t shift, man, r, half, rest;
        if (a < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
        shift = 126 - (a >> 23);          /* 14..24 */
        man = (a & 0x7fffffu) | 0x800000u;
        r = man >> (shift);
        rest = man & ((1u << shift) - 1u);
        half = 1u << (shift - 1);
        if (rest > half || (rest == half && (r & 1u))) ++r;
        return (uint16_t)(sign | r);
    }
    {
        uint32_t r = a - 0x38000000u; /* rebias 127 -> 15 */
        uint32_t rest = r & 0x1fffu;
        r >>= 13;
        if (rest > 0x1000u || (rest == 0x1000u && (r & 1u))) ++r;
        return (uint16_t)(sign | r);
    }
}

ACEMDEF float acem_bf16_to_f32(uint16_t h) { return acem__u2f((uint32_t)h << 16); }

ACEMDEF uint16_t acem_f32_to_bf16(float f) {
    uint32_t u = acem__f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
/* The array forms, one loop each way. Widening runs from the last element to
   the first, 8 at a time (vcvtph2ps with F16C, a shift for bf16), so that d
   may start where s starts: acem_st_read_f32 widens in place (block i reads
   bytes [2i, 2i + 16) before anything at or above byte 4i + 32 >= 2i + 16 has
   been written). The vector forms give the scalar forms' bits (NaNs quieted,
   payloads kept); 3.9 -> about 0.3 ns per f16 value here, whose inputs are
   mostly f16 or bf16 checkpoints. */
static void acem__widen16(const uint16_t *s, float *d, size_t n, int bf) {
    size_t i = n, v = 0; /* [v, n) one at a time, then [0, v) 8 at a time where the build has vectors */
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
#if defined(__F16C__)
    v = n - n % 8;
#else
    if (bf) v = n - n % 8;
#endif
#endif
    for (; i > v; --i) d[i - 1] = bf ? acem_bf16_to_f32(s[i - 1]) : acem_f16_to_f32(s[i - 1]);
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    for (; i; i -= 8) {
        __m128i h = _mm_loadu_si128(ACEM__CAST(const __m128i *, (const void *)(s + i - 8)));
#if defined(__F16C__)
        if (!bf) {
            _mm256_storeu_ps(d + i - 8, _mm256_cvtph_ps(h));
            continue;
        }
#endif
        _mm256_storeu_si256(ACEM__CAST(__m256i *, (void *)(d + i - 8)), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
#endif
}
static void acem__narrow16(const float *s, uint16_t *d, size_t n, int bf) {
    size_t i = 0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
#if defined(__F16C__)
    if (!bf)
        for (; n - i >= 8; i += 8)
            _mm_storeu_si128(ACEM__CAST(__m128i *, (void *)(d + i)),
                             _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    if (bf) { /* u + 0x7fff + (bit 16 of u), high half; a NaN keeps its high half, quieted */
        const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
        const __m256i absm = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000), q = _mm256_set1_epi32(0x40);
        for (; n - i >= 8; i += 8) {
            __m256i u = _mm256_loadu_si256(ACEM__CAST(const __m256i *, (const void *)(s + i)));
            __m256i hi = _mm256_srli_epi32(u, 16);
            __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(hi, one)), 16);
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
            r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, q), nan);
            r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08); /* lanes 0 and 2: the eight results */
            _mm_storeu_si128(ACEM__CAST(__m128i *, (void *)(d + i)), _mm256_castsi256_si128(r));
        }
    }
#endif
    for (s += i, d += i, n -= i; n; --n) *d++ = bf ? acem_f32_to_bf16(*s++) : acem_f32_to_f16(*s++);
}
ACEMDEF void acem_f16_to_f32_array(const uint16_t *s, float *d, size_t n) { acem__widen16(s, d, n, 0); }
ACEMDEF void acem_f32_to_f16_array(const float *s, uint16_t *d, size_t n) { acem__narrow16(s, d, n, 0); }
ACEMDEF void acem_bf16_to_f32_array(const uint16_t *s, float *d, size_t n) { acem__widen16(s, d, n, 1); }
ACEMDEF void acem_f32_to_bf16_array(const float *s, uint16_t *d, size_t n) { acem__narrow16(s, d, n, 1); }

/* =========================================================================== */
/* kernels: packed, blocked GEMM; SYRK; Cholesky; triangular solves; LU;       */
/* symmetric eigensolver (f64)                                                 */
/* =========================================================================== */
/* Micro-tile MR x NR of C accumulates packed A (MR-row strips) times packed B
   (NR-column strips); packing handles every transpose case so one micro-kernel
   serves all. Blocking: KC (depth), MC (rows of A kept in L2), NC (cols of B). */
#if defined(ACEM__AVX512)
#define ACEM__MR 12
#define ACEM__NR 32
#elif defined(ACEM__AVX2)
#define ACEM__MR 6
#define ACEM__NR 16
#else
#define ACEM__MR 4
#define ACEM__NR 16
#endif
/* Loop nest (C is m x n, row-major; the tile is MR rows by NR columns, the NR
   side being the vector direction):
     rows in blocks of M3 (op(A) packed, M3 x KC)
       depth in blocks of KC
         columns in blocks of N2 (op(B) packed, KC x N2: stays in L2)
           MR-row strips of packed A (KC x MR: stays in L1)
             NR-column strips of packed B (streamed from L2) -> micro-kernel
   alpha is folded into the packing of A, beta into the first depth block. */
#if defined(ACEM__AVX2) /* Zen 3: 32 KiB L1d, 512 KiB L2 (measured best of KC 192..384, N2 256..512) */
#ifndef ACEM__KC
#define ACEM__KC 256
#endif
#ifndef ACEM__N2
#define ACEM__N2 384
#endif
#endif
#ifndef ACEM__KC
#define ACEM__KC 384
#endif
#ifndef ACEM__N2
#define ACEM__N2 512
#endif
#ifndef ACEM__M3
#define ACEM__M3 1536
#endif

/* blocking when no workspace is given (SIMD builds): buffers on the stack,
   ACEM__SKC * (ACEM__SM3 + ACEM__SN2) floats (56 KiB) */
#ifndef ACEM__SKC
#define ACEM__SKC 128
#endif
#ifndef ACEM__SM3
#define ACEM__SM3 48
#endif
#ifndef ACEM__SN2
#define ACEM__SN2 64
#endif

static size_t acem__roundup(size_t x, size_t m) { return (x + m - 1) / m * m; }
/* p rounded up to a multiple of 64 bytes (workspaces carry 64 bytes of slack) */
static unsigned char *acem__align64(void *p) {
    unsigned char *w = ACEM__CAST(unsigned char *, p);
    return w + ((64u - ((size_t)w & 63u)) & 63u);
}

ACEMDEF size_t acem_gemm_work_bytes(size_t m, size_t n, size_t k) {
    size_t kc = acem__min(ACEM__KC, k ? k : 1);
    size_t mb = acem__roundup(acem__min(ACEM__M3, m ? m : 1), ACEM__MR);
    size_t nb = acem__roundup(acem__min(ACEM__N2, n ? n : 1), ACEM__NR);
    return (mb * kc + kc * nb) * sizeof(float) + 64;
}

/* op(A)[i][p], with A stored row-major: trans ? A[p][i] : A[i][p] */
#define ACEM__AT(A, lda, trans, i, p) ((trans) ? (A)[(size_t)(p) * (lda) + (i)] : (A)[(size_t)(i) * (lda) + (p)])

#if defined(ACEM__AVX512)
/* d[j][i] = alpha s[i][j] for a 16 x 16 block: rows i >= nrows of s read as
   zero, only the lanes in mask of each row of d written */
#define ACEM__TRL(r, i) __m512 r = (i) < nrows ? _mm512_loadu_ps(s + (i) * lds) : _mm512_setzero_ps()
#define ACEM__TRS(r, i) _mm512_mask_storeu_ps(d + (i) * ldd, mask, _mm512_mul_ps(al, r))
static void acem__tr16(const float *s, size_t lds, size_t nrows, float *d, size_t ldd, __mmask16 mask,
                       float alpha) {
    __m512 al = _mm512_set1_ps(alpha);
    ACEM__TRL(r0, 0); ACEM__TRL(r1, 1); ACEM__TRL(r2, 2); ACEM__TRL(r3, 3);
    ACEM__TRL(r4, 4); ACEM__TRL(r5, 5); ACEM__TRL(r6, 6); ACEM__TRL(r7, 7);
    ACEM__TRL(r8, 8); ACEM__TRL(r9, 9); ACEM__TRL(ra, 10); ACEM__TRL(rb, 11);
    ACEM__TRL(rc, 12); ACEM__TRL(rd, 13); ACEM__TRL(re, 14); ACEM__TRL(rf, 15);
    __m512 t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, ta, tb, tc, td, te, tf;
    t0 = _mm512_maskz_unpacklo_ps(0xffff, r0, r1); t1 = _mm512_maskz_unpackhi_ps(0xffff, r0, r1);
    t2 = _mm512_maskz_unpacklo_ps(0xffff, r2, r3); t3 = _mm512_maskz_unpackhi_ps(0xffff, r2, r3);
    t4 = _mm512_maskz_unpacklo_ps(0xffff, r4, r5); t5 = _mm512_maskz_unpackhi_ps(0xffff, r4, r5);
    t6 = _mm512_maskz_unpacklo_ps(0xffff, r6, r7); t7 = _mm512_maskz_unpackhi_ps(0xffff, r6, r7);
    t8 = _mm512_maskz_unpacklo_ps(0xffff, r8, r9); t9 = _mm512_maskz_unpackhi_ps(0xffff, r8, r9);
    ta = _mm512_maskz_unpacklo_ps(0xffff, ra, rb); tb = _mm512_maskz_unpackhi_ps(0xffff, ra, rb);
    tc = _mm512_maskz_unpacklo_ps(0xffff, rc, rd); td = _mm512_maskz_unpackhi_ps(0xffff, rc, rd);
    te = _mm512_maskz_unpacklo_ps(0xffff, re, rf); tf = _mm512_maskz_unpackhi_ps(0xffff, re, rf);
    r0 = _mm512_maskz_shuffle_ps(0xffff, t0, t2, 0x44); r1 = _mm512_maskz_shuffle_ps(0xffff, t0, t2, 0xEE);
    r2 = _mm512_maskz_shuffle_ps(0xffff, t1, t3, 0x44); r3 = _mm512_maskz_shuffle_ps(0xffff, t1, t3, 0xEE);
    r4 = _mm512_maskz_shuffle_ps(0xffff, t4, t6, 0x44); r5 = _mm512_maskz_shuffle_ps(0xffff, t4, t6, 0xEE);
    r6 = _mm512_maskz_shuffle_ps(0xffff, t5, t7, 0x44); r7 = _mm512_maskz_shuffle_ps(0xffff, t5, t7, 0xEE);
    r8 = _mm512_maskz_shuffle_ps(0xffff, t8, ta, 0x44); r9 = _mm512_maskz_shuffle_ps(0xffff, t8, ta, 0xEE);
    ra = _mm512_maskz_shuffle_ps(0xffff, t9, tb, 0x44); rb = _mm512_maskz_shuffle_ps(0xffff, t9, tb, 0xEE);
    rc = _mm512_maskz_shuffle_ps(0xffff, tc, te, 0x44); rd = _mm512_maskz_shuffle_ps(0xffff, tc, te, 0xEE);
    re = _mm512_maskz_shuffle_ps(0xffff, td, tf, 0x44); rf = _mm512_maskz_shuffle_ps(0xffff, td, tf, 0xEE);
    t0 = _mm512_maskz_shuffle_f32x4(0xffff, r0, r4, 0x88); t1 = _mm512_maskz_shuffle_f32x4(0xffff, r1, r5, 0x88);
    t2 = _mm512_maskz_shuffle_f32x4(0xffff, r2, r6, 0x88); t3 = _mm512_maskz_shuffle_f32x4(0xffff, r3, r7, 0x88);
    t4 = _mm512_maskz_shuffle_f32x4(0xffff, r0, r4, 0xDD); t5 = _mm512_maskz_shuffle_f32x4(0xffff, r1, r5, 0xDD);
    t6 = _mm512_maskz_shuffle_f32x4(0xffff, r2, r6, 0xDD); t7 = _mm512_maskz_shuffle_f32x4(0xffff, r3, r7, 0xDD);
    t8 = _mm512_maskz_shuffle_f32x4(0xffff, r8, rc, 0x88); t9 = _mm512_maskz_shuffle_f32x4(0xffff, r9, rd, 0x88);
    ta = _mm512_maskz_shuffle_f32x4(0xffff, ra, re, 0x88); tb = _mm512_maskz_shuffle_f32x4(0xffff, rb, rf, 0x88);
    tc = _mm512_maskz_shuffle_f32x4(0xffff, r8, rc, 0xDD); td = _mm512_maskz_shuffle_f32x4(0xffff, r9, rd, 0xDD);
    te = _mm512_maskz_shuffle_f32x4(0xffff, ra, re, 0xDD); tf = _mm512_maskz_shuffle_f32x4(0xffff, rb, rf, 0xDD);
    r0 = _mm512_maskz_shuffle_f32x4(0xffff, t0, t8, 0x88); r1 = _mm512_maskz_shuffle_f32x4(0xffff, t1, t9, 0x88);
    r2 = _mm512_maskz_shuffle_f32x4(0xffff, t2, ta, 0x88); r3 = _mm512_maskz_shuffle_f32x4(0xffff, t3, tb, 0x88);
    r4 = _mm512_maskz_shuffle_f32x4(0xffff, t4, tc, 0x88); r5 = _mm512_maskz_shuffle_f32x4(0xffff, t5, td, 0x88);
    r6 = _mm512_maskz_shuffle_f32x4(0xffff, t6, te, 0x88); r7 = _mm512_maskz_shuffle_f32x4(0xffff, t7, tf, 0x88);
    r8 = _mm512_maskz_shuffle_f32x4(0xffff, t0, t8, 0xDD); r9 = _mm512_maskz_shuffle_f32x4(0xffff, t1, t9, 0xDD);
    ra = _mm512_maskz_shuffle_f32x4(0xffff, t2, ta, 0xDD); rb = _mm512_maskz_shuffle_f32x4(0xffff, t3, tb, 0xDD);
    rc = _mm512_maskz_shuffle_f32x4(0xffff, t4, tc, 0xDD); rd = _mm512_maskz_shuffle_f32x4(0xffff, t5, td, 0xDD);
    re = _mm512_maskz_shuffle_f32x4(0xffff, t6, te, 0xDD); rf = _mm512_maskz_shuffle_f32x4(0xffff, t7, tf, 0xDD);
    ACEM__TRS(r0, 0); ACEM__TRS(r1, 1); ACEM__TRS(r2, 2); ACEM__TRS(r3, 3);
    ACEM__TRS(r4, 4); ACEM__TRS(r5, 5); ACEM__TRS(r6, 6); ACEM__TRS(r7, 7);
    ACEM__TRS(r8, 8); ACEM__TRS(r9, 9); ACEM__TRS(ra, 10); ACEM__TRS(rb, 11);
    ACEM__TRS(rc, 12); ACEM__TRS(rd, 13); ACEM__TRS(re, 14); ACEM__TRS(rf, 15);
}
#endif

#if defined(ACEM__AVX2)
/* the first 6 lanes of x to d (masked stores are slow on AMD: Zen 3 takes
   about 12 cycles for a vmaskmovps store) */
static void acem__store6(float *d, __m256 x) {
    _mm_storeu_ps(d, _mm256_castps256_ps128(x));
    _mm_storel_pi(ACEM__CAST(__m64 *, (void *)(d + 4)), _mm256_extractf128_ps(x, 1));
}
/* d[j][i] = alpha s[i][j] for an 8 x 8 block: rows i >= nrows of s read as
   zero, the first nl lanes of each row of d written: 8, or 6 into a packed
   A strip (ldd = MR = 6). Named
   registers, no arrays: GCC spills arrays of __m256 to the stack. */
#define ACEM__TR8L(r, i) __m256 r = (i) < nrows ? _mm256_loadu_ps(s + (i) * lds) : _mm256_setzero_ps()
static void acem__tr8(const float *s, size_t lds, size_t nrows, float *d, size_t ldd, size_t nl, float alpha) {
    __m256 al = _mm256_set1_ps(alpha), t0, t1, t2, t3, t4, t5, t6, t7;
    ACEM__TR8L(r0, 0); ACEM__TR8L(r1, 1); ACEM__TR8L(r2, 2); ACEM__TR8L(r3, 3);
    ACEM__TR8L(r4, 4); ACEM__TR8L(r5, 5); ACEM__TR8L(r6, 6); ACEM__TR8L(r7, 7);
    t0 = _mm256_unpacklo_ps(r0, r1); t1 = _mm256_unpackhi_ps(r0, r1);
    t2 = _mm256_unpacklo_ps(r2, r3); t3 = _mm256_unpackhi_ps(r2, r3);
    t4 = _mm256_unpacklo_ps(r4, r5); t5 = _mm256_unpackhi_ps(r4, r5);
    t6 = _mm256_unpacklo_ps(r6, r7); t7 = _mm256_unpackhi_ps(r6, r7);
    r0 = _mm256_shuffle_ps(t0, t2, 0x44); r1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    r2 = _mm256_shuffle_ps(t1, t3, 0x44); r3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    r4 = _mm256_shuffle_ps(t4, t6, 0x44); r5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    r6 = _mm256_shuffle_ps(t5, t7, 0x44); r7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    t0 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r0, r4, 0x20));
    t1 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r1, r5, 0x20));
    t2 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r2, r6, 0x20));
    t3 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r3, r7, 0x20));
    t4 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r0, r4, 0x31));
    t5 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r1, r5, 0x31));
    t6 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r2, r6, 0x31));
    t7 = _mm256_mul_ps(al, _mm256_permute2f128_ps(r3, r7, 0x31));
    if (nl == 8) {
        _mm256_storeu_ps(d, t0); _mm256_storeu_ps(d + ldd, t1);
        _mm256_storeu_ps(d + 2 * ldd, t2); _mm256_storeu_ps(d + 3 * ldd, t3);
        _mm256_storeu_ps(d + 4 * ldd, t4); _mm256_storeu_ps(d + 5 * ldd, t5);
        _mm256_storeu_ps(d + 6 * ldd, t6); _mm256_storeu_ps(d + 7 * ldd, t7);
    } else { /* nl 6: a packed A strip, rows contiguous (ldd 6): the last two
                lanes of each full store are overwritten by the next */
        ACEM_ASSERT(ldd == 6);
        _mm256_storeu_ps(d, t0); _mm256_storeu_ps(d + 6, t1); _mm256_storeu_ps(d + 12, t2);
        _mm256_storeu_ps(d + 18, t3); _mm256_storeu_ps(d + 24, t4); _mm256_storeu_ps(d + 30, t5);
        _mm256_storeu_ps(d + 36, t6); acem__store6(d + 42, t7);
    }
}
#endif

/* pack rows [i0,i0+mc) x depth [p0,p0+kc) of op(A), times alpha, into MR-row
   strips (each kc x MR, element (r,p) at p*MR + r); short strips zero-padded */
static void acem__pack_a(int trans, const float *A, size_t lda, size_t i0, size_t mc,
                         size_t p0, size_t kc, float alpha, float *dst) {
    size_t ir, p, r;
    if (trans) { /* row p of A feeds every strip: read it once, sequentially */
        for (p = 0; p < kc; ++p) {
            const float *src = A + (p0 + p) * lda + i0;
            float *d = dst + p * ACEM__MR;
            for (ir = 0; ir + ACEM__MR <= mc; ir += ACEM__MR, d += kc * ACEM__MR) {
#if defined(ACEM__AVX512)
                _mm512_mask_storeu_ps(d, 0x0fff, _mm512_mul_ps(_mm512_set1_ps(alpha),
                                                              _mm512_maskz_loadu_ps(0x0fff, src + ir)));
#elif defined(ACEM__AVX2)
                __m128 al4 = _mm_set1_ps(alpha);
                _mm_storeu_ps(d, _mm_mul_ps(al4, _mm_loadu_ps(src + ir)));
                d[4] = alpha * src[ir + 4];
                d[5] = alpha * src[ir + 5];
#else
                for (r = 0; r < ACEM__MR; ++r) d[r] = alpha * src[ir + r];
#endif
            }
            if (ir < mc) {
                for (r = 0; r < mc - ir; ++r) d[r] = alpha * src[ir + r];
                for (; r < ACEM__MR; ++r) d[r] = 0.0f;
            }
        }
        return;
    }
    for (ir = 0; ir < mc; ir += ACEM__MR, dst += kc * ACEM__MR) { /* MR rows, read in parallel */
        size_t mr = acem__min(ACEM__MR, mc - ir);
        const float *s0 = A + (i0 + ir) * lda + p0;
        if (mr == ACEM__MR) {
            p = 0;
#if defined(ACEM__AVX512) /* 16 x 16 transposes: 12 rows in, 12 lanes out */
            for (; p + 16 <= kc; p += 16)
                acem__tr16(s0 + p, lda, ACEM__MR, dst + p * ACEM__MR, ACEM__MR, 0x0fff, alpha);
#elif defined(ACEM__AVX2) /* 8 x 8 transposes: 6 rows in, 6 lanes out */
            for (; p + 8 <= kc; p += 8)
                acem__tr8(s0 + p, lda, ACEM__MR, dst + p * ACEM__MR, ACEM__MR, 6, alpha);
#endif
            for (; p < kc; ++p)
                for (r = 0; r < ACEM__MR; ++r) dst[p * ACEM__MR + r] = alpha * s0[r * lda + p];
        } else {
            for (p = 0; p < kc; ++p) {
                for (r = 0; r < mr; ++r) dst[p * ACEM__MR + r] = alpha * s0[r * lda + p];
                for (; r < ACEM__MR; ++r) dst[p * ACEM__MR + r] = 0.0f;
            }
        }
    }
}

/* pack depth [p0,p0+kc) x cols [j0,j0+nc) of op(B) into NR-column strips
   (each kc x NR, element (p,c) at p*NR + c); short strips zero-padded */
static void acem__pack_b(int trans, const float *B, size_t ldb, size_t p0, size_t kc,
                         size_t j0, size_t nc, float *dst) {
    size_t jr, p, c;
    if (!trans) { /* row p of B feeds every strip: read it once, sequentially */
        for (p = 0; p < kc; ++p) {
            const float *src = B + (p0 + p) * ldb + j0;
            float *d = dst + p * ACEM__NR;
            for (jr = 0; jr + ACEM__NR <= nc; jr += ACEM__NR, d += kc * ACEM__NR) {
#if defined(ACEM__AVX512)
                _mm512_storeu_ps(d, _mm512_loadu_ps(src + jr));
                _mm512_storeu_ps(d + 16, _mm512_loadu_ps(src + jr + 16));
#elif defined(ACEM__AVX2)
                _mm256_storeu_ps(d, _mm256_loadu_ps(src + jr));
                _mm256_storeu_ps(d + 8, _mm256_loadu_ps(src + jr + 8));
#else
                for (c = 0; c < ACEM__NR; ++c) d[c] = src[jr + c];
#endif
            }
            if (jr < nc) {
                for (c = 0; c < nc - jr; ++c) d[c] = src[jr + c];
                for (; c < ACEM__NR; ++c) d[c] = 0.0f;
            }
        }
        return;
    }
    for (jr = 0; jr < nc; jr += ACEM__NR, dst += kc * ACEM__NR) { /* NR rows of B, in parallel */
        size_t nr = acem__min(ACEM__NR, nc - jr);
        const float *s0 = B + (j0 + jr) * ldb + p0;
        if (nr == ACEM__NR) {
            p = 0;
#if defined(ACEM__AVX512) /* two 16 x 16 transposes per 16 steps of depth */
            for (; p + 16 <= kc; p += 16) {
                acem__tr16(s0 + p, ldb, 16, dst + p * ACEM__NR, ACEM__NR, 0xffff, 1.0f);
                acem__tr16(s0 + 16 * ldb + p, ldb, 16, dst + p * ACEM__NR + 16, ACEM__NR, 0xffff, 1.0f);
            }
#elif defined(ACEM__AVX2) /* two 8 x 8 transposes per 8 steps of depth */
            for (; p + 8 <= kc; p += 8) {
                acem__tr8(s0 + p, ldb, 8, dst + p * ACEM__NR, ACEM__NR, 8, 1.0f);
                acem__tr8(s0 + 8 * ldb + p, ldb, 8, dst + p * ACEM__NR + 8, ACEM__NR, 8, 1.0f);
            }
#endif
            for (; p < kc; ++p)
                for (c = 0; c < ACEM__NR; ++c) dst[p * ACEM__NR + c] = s0[c * ldb + p];
        } else {
            for (p = 0; p < kc; ++p) {
                for (c = 0; c < nr; ++c) dst[p * ACEM__NR + c] = s0[c * ldb + p];
                for (; c < ACEM__NR; ++c) dst[p * ACEM__NR + c] = 0.0f;
            }
        }
    }
}

/* Micro-kernel: the full MR x NR tile C = Ap Bp + beta C over depth kc
   (beta 0: C is not read). Accumulators are named variables so that they
   live in registers. One body (ACEM__KERN_BODY(AR, AS): element (r, p) of A
   at Ap[p AS + r AR]), two forms: acem__kern reads a packed strip (AR 1, AS
   MR), acem__kern_rows MR rows of a row-major matrix in place (AR lda, AS 1:
   the triangular solve's leaves, whose rows would otherwise be transposed
   into a strip for every block). */
#if defined(ACEM__AVX512)
static void acem__zstore(float *c, __m512 x0, __m512 x1, float beta) {
    if (beta == 0.0f) {
        _mm512_storeu_ps(c, x0);
        _mm512_storeu_ps(c + 16, x1);
    } else if (beta == 1.0f) {
        _mm512_storeu_ps(c, _mm512_add_ps(_mm512_loadu_ps(c), x0));
        _mm512_storeu_ps(c + 16, _mm512_add_ps(_mm512_loadu_ps(c + 16), x1));
    } else {
        __m512 b = _mm512_set1_ps(beta);
        _mm512_storeu_ps(c, _mm512_fmadd_ps(b, _mm512_loadu_ps(c), x0));
        _mm512_storeu_ps(c + 16, _mm512_fmadd_ps(b, _mm512_loadu_ps(c + 16), x1));
    }
}
#define ACEM__ZD(r) __m512 c##r##a = _mm512_setzero_ps(), c##r##b = _mm512_setzero_ps()
#define ACEM__ZF(r, o, AR, AS)                                                                \
    do {                                                                                      \
        __m512 a_ = _mm512_set1_ps(Ap[(o) * (AS) + (r) * (AR)]);                              \
        c##r##a = _mm512_fmadd_ps(a_, b0, c##r##a);                                           \
        c##r##b = _mm512_fmadd_ps(a_, b1, c##r##b);                                           \
    } while (0)
#define ACEM__ZSTEP(o, AR, AS)                                                                \
    do {                                                                                      \
        __m512 b0 = _mm512_loadu_ps(Bp + (o) * ACEM__NR), b1 = _mm512_loadu_ps(Bp + (o) * ACEM__NR + 16); \
        ACEM__ZF(0, o, AR, AS); ACEM__ZF(1, o, AR, AS); ACEM__ZF(2, o, AR, AS);               \
        ACEM__ZF(3, o, AR, AS); ACEM__ZF(4, o, AR, AS); ACEM__ZF(5, o, AR, AS);               \
        ACEM__ZF(6, o, AR, AS); ACEM__ZF(7, o, AR, AS); ACEM__ZF(8, o, AR, AS);               \
        ACEM__ZF(9, o, AR, AS); ACEM__ZF(10, o, AR, AS); ACEM__ZF(11, o, AR, AS);             \
    } while (0)
#define ACEM__KSTEP ACEM__ZSTEP
#define ACEM__KDECL                                                                           \
    ACEM__ZD(0); ACEM__ZD(1); ACEM__ZD(2); ACEM__ZD(3); ACEM__ZD(4); ACEM__ZD(5);             \
    ACEM__ZD(6); ACEM__ZD(7); ACEM__ZD(8); ACEM__ZD(9); ACEM__ZD(10); ACEM__ZD(11)
#define ACEM__KSTORE                                                                          \
    acem__zstore(C, c0a, c0b, beta); acem__zstore(C + ldc, c1a, c1b, beta);                   \
    acem__zstore(C + 2 * ldc, c2a, c2b, beta); acem__zstore(C + 3 * ldc, c3a, c3b, beta);     \
    acem__zstore(C + 4 * ldc, c4a, c4b, beta); acem__zstore(C + 5 * ldc, c5a, c5b, beta);     \
    acem__zstore(C + 6 * ldc, c6a, c6b, beta); acem__zstore(C + 7 * ldc, c7a, c7b, beta);     \
    acem__zstore(C + 8 * ldc, c8a, c8b, beta); acem__zstore(C + 9 * ldc, c9a, c9b, beta);     \
    acem__zstore(C + 10 * ldc, c10a, c10b, beta); acem__zstore(C + 11 * ldc, c11a, c11b, beta)
#elif defined(ACEM__AVX2)
static void acem__ystore(float *c, __m256 x0, __m256 x1, float beta) {
    if (beta == 0.0f) {
        _mm256_storeu_ps(c, x0);
        _mm256_storeu_ps(c + 8, x1);
    } else if (beta == 1.0f) {
        _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), x0));
        _mm256_storeu_ps(c + 8, _mm256_add_ps(_mm256_loadu_ps(c + 8), x1));
    } else {
        __m256 b = _mm256_set1_ps(beta);
        _mm256_storeu_ps(c, _mm256_fmadd_ps(b, _mm256_loadu_ps(c), x0));
        _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(b, _mm256_loadu_ps(c + 8), x1));
    }
}
/* With 12 accumulators, two B vectors and a broadcast the tile uses 15 of the
   16 ymm registers; GCC then folds the B loads into the FMAs (one load per
   FMA: 3 loads a cycle at 2 FMAs a cycle, beyond what the load ports take:
   66 instead of 99 GFLOP/s on Zen 3). ACEM__PIN2 keeps them in registers. */
#define ACEM__YD(r) __m256 c##r##a = _mm256_setzero_ps(), c##r##b = _mm256_setzero_ps()
#define ACEM__YF(r, o, AR, AS)                                                                \
    do {                                                                                      \
        __m256 a_ = _mm256_broadcast_ss(Ap + (o) * (AS) + (r) * (AR));                        \
        c##r##a = _mm256_fmadd_ps(a_, b0, c##r##a);                                           \
        c##r##b = _mm256_fmadd_ps(a_, b1, c##r##b);                                           \
    } while (0)
#define ACEM__YSTEP(o, AR, AS)                                                                \
    do {                                                                                      \
        __m256 b0 = _mm256_loadu_ps(Bp + (o) * ACEM__NR), b1 = _mm256_loadu_ps(Bp + (o) * ACEM__NR + 8); \
        ACEM__PIN2(b0, b1);                                                                   \
        ACEM__YF(0, o, AR, AS); ACEM__YF(1, o, AR, AS); ACEM__YF(2, o, AR, AS);               \
        ACEM__YF(3, o, AR, AS); ACEM__YF(4, o, AR, AS); ACEM__YF(5, o, AR, AS);               \
    } while (0)
#define ACEM__KSTEP ACEM__YSTEP
#define ACEM__KDECL ACEM__YD(0); ACEM__YD(1); ACEM__YD(2); ACEM__YD(3); ACEM__YD(4); ACEM__YD(5)
#define ACEM__KSTORE                                                                          \
    acem__ystore(C, c0a, c0b, beta); acem__ystore(C + ldc, c1a, c1b, beta);                   \
    acem__ystore(C + 2 * ldc, c2a, c2b, beta); acem__ystore(C + 3 * ldc, c3a, c3b, beta);     \
    acem__ystore(C + 4 * ldc, c4a, c4b, beta); acem__ystore(C + 5 * ldc, c5a, c5b, beta)
#endif
#if defined(ACEM__AVX512) || defined(ACEM__AVX2) /* the tier's accumulators, step and stores */
#define ACEM__KERN_BODY(AR, AS)                                                               \
    size_t p;                                                                                 \
    ACEM__KDECL;                                                                              \
    for (p = 0; p < ACEM__MR; ++p) { /* the tile of C is needed at the end */                 \
        _mm_prefetch(ACEM__CAST(const char *, (const void *)(C + p * ldc)), _MM_HINT_T0);     \
        _mm_prefetch(ACEM__CAST(const char *, (const void *)(C + p * ldc + ACEM__NR - 1)), _MM_HINT_T0); \
    }                                                                                         \
    for (p = 0; p + 2 <= kc; p += 2) {                                                        \
        ACEM__KSTEP(0, AR, AS);                                                               \
        ACEM__KSTEP(1, AR, AS);                                                               \
        Ap += 2 * (AS);                                                                       \
        Bp += 2 * ACEM__NR;                                                                   \
    }                                                                                         \
    if (p < kc) ACEM__KSTEP(0, AR, AS);                                                       \
    ACEM__KSTORE
#else
#define ACEM__KERN_BODY(AR, AS)                                                               \
    float acc[ACEM__MR][ACEM__NR];                                                            \
    size_t p, r, c;                                                                           \
    for (r = 0; r < ACEM__MR; ++r)                                                            \
        for (c = 0; c < ACEM__NR; ++c) acc[r][c] = 0.0f;                                      \
    for (p = 0; p < kc; ++p) {                                                                \
        for (r = 0; r < ACEM__MR; ++r) {                                                      \
            float a = Ap[r * (AR)];                                                           \
            for (c = 0; c < ACEM__NR; ++c) acc[r][c] += a * Bp[c];                            \
        }                                                                                     \
        Ap += (AS);                                                                           \
        Bp += ACEM__NR;                                                                       \
    }                                                                                         \
    for (r = 0; r < ACEM__MR; ++r) {                                                          \
        float *cr = C + r * ldc;                                                              \
        if (beta == 0.0f)                                                                     \
            for (c = 0; c < ACEM__NR; ++c) cr[c] = acc[r][c];                                 \
        else if (beta == 1.0f)                                                                \
            for (c = 0; c < ACEM__NR; ++c) cr[c] += acc[r][c];                                \
        else                                                                                  \
            for (c = 0; c < ACEM__NR; ++c) cr[c] = beta * cr[c] + acc[r][c];                  \
    }
#endif
static void acem__kern(size_t kc, const float *Ap, const float *Bp, float *C, size_t ldc, float beta) {
    ACEM__KERN_BODY(1, ACEM__MR);
}
static void acem__kern_rows(size_t kc, const float *Ap, size_t lda, const float *Bp, float *C, size_t ldc,
                            float beta) {
    ACEM__KERN_BODY(lda, 1);
}

/* C[r][c] (r < mr, c < nr; when tri, only c <= r + off) = T[r][c] + beta C */
static void acem__tile_put(const float *T, float *C, size_t ldc, size_t mr, size_t nr, float beta,
                           int tri, ptrdiff_t off) {
    size_t r, c;
    for (r = 0; r < mr; ++r) {
        size_t ce = nr;
        float *cr = C + r * ldc;
        const float *t = T + r * ACEM__NR;
        if (tri) {
            ptrdiff_t lim = (ptrdiff_t)r + off + 1;
            if (lim <= 0) continue;
            if ((size_t)lim < ce) ce = (size_t)lim;
        }
        if (beta == 0.0f)
            for (c = 0; c < ce; ++c) cr[c] = t[c];
        else if (beta == 1.0f)
            for (c = 0; c < ce; ++c) cr[c] += t[c];
        else
            for (c = 0; c < ce; ++c) cr[c] = beta * cr[c] + t[c];
    }
}

/* C (or, when tri, its lower triangle c <= r) scaled by beta */
static void acem__scale_c(size_t m, size_t n, float beta, float *C, size_t ldc, int tri) {
    size_t i, j;
    if (beta == 1.0f) return;
    for (i = 0; i < m; ++i) {
        float *c = C + i * ldc;
        size_t ne = tri ? acem__min(n, i + 1) : n;
        if (beta == 0.0f)
            for (j = 0; j < ne; ++j) c[j] = 0.0f;
        else
            for (j = 0; j < ne; ++j) c[j] *= beta;
    }
}

/* The blocked driver. tri: write only the lower triangle (C[i][j], j <= i) of
   the square result; the strict upper triangle is not touched. Ap/Bp: packing
   buffers of m3 x kcb and kcb x n2 floats (m3 a multiple of MR, n2 of NR). */
static void acem__gemm_blk(int ta, int tb, int tri, size_t m, size_t n, size_t k, float alpha,
                           const float *A, size_t lda, const float *B, size_t ldb, float beta,
                           float *C, size_t ldc, float *Ap, float *Bp, size_t kcb, size_t m3,
                           size_t n2) {
    size_t i3, pc, j2, i1, j1;
    float tile[ACEM__MR * ACEM__NR];
    for (i3 = 0; i3 < m; i3 += m3) {
        size_t mb = acem__min(m3, m - i3);
        size_t jend = tri ? acem__min(n, i3 + mb) : n;
        for (pc = 0; pc < k; pc += kcb) {
            size_t kc = acem__min(kcb, k - pc);
            float bt = pc ? 1.0f : beta;
            acem__pack_a(ta, A, lda, i3, mb, pc, kc, alpha, Ap);
            for (j2 = 0; j2 < jend; j2 += n2) {
                size_t nb = acem__min(n2, jend - j2);
                acem__pack_b(tb, B, ldb, pc, kc, j2, nb, Bp);
                for (i1 = 0; i1 < mb; i1 += ACEM__MR) {
                    size_t mr = acem__min(ACEM__MR, mb - i1), gi = i3 + i1, jl = nb;
                    const float *ap = Ap + i1 * kc;
                    if (tri) { /* columns j2 + j1 <= gi + mr - 1 */
                        if (gi + mr <= j2) continue;
                        jl = acem__min(nb, gi + mr - j2);
                    }
                    for (j1 = 0; j1 < jl; j1 += ACEM__NR) {
                        size_t nr = acem__min(ACEM__NR, nb - j1), gj = j2 + j1;
                        float *c = C + gi * ldc + gj;
                        if (mr == ACEM__MR && nr == ACEM__NR && (!tri || gj + ACEM__NR <= gi + 1)) {
                            acem__kern(kc, ap, Bp + j1 * kc, c, ldc, bt);
                        } else {
                            acem__kern(kc, ap, Bp + j1 * kc, tile, ACEM__NR, 0.0f);
                            acem__tile_put(tile, c, ldc, mr, nr, bt, tri,
                                           (ptrdiff_t)gi - (ptrdiff_t)gj);
                        }
                    }
                }
            }
        }
    }
}

/* C = alpha op(A) op(B) + beta C (tri: lower triangle only), with the
   workspace of acem_gemm_work_bytes(m, n, k) bytes, or NULL: then small blocks
   packed on the stack (SIMD builds) or plain loops (portable build). */
static void acem__gemm_tri(int ta, int tb, int tri, size_t m, size_t n, size_t k, float alpha,
                           const float *A, size_t lda, const float *B, size_t ldb, float beta,
                           float *C, size_t ldc, void *work) {
    if (!m || !n) return;
    if (!k || alpha == 0.0f) {
        acem__scale_c(m, n, beta, C, ldc, tri);
        return;
    }
    if (!work) {
#if defined(ACEM__AVX512) || defined(ACEM__AVX2)
        /* no workspace: the same driver on small blocks packed on the stack */
        float sw[ACEM__SKC * (ACEM__SM3 + ACEM__SN2) + 16];
        float *Ap = ACEM__CAST(float *, (void *)acem__align64(sw));
        size_t kcb = acem__min(ACEM__SKC, k);
        size_t m3 = acem__roundup(acem__min(ACEM__SM3, m), ACEM__MR);
        size_t n2 = acem__roundup(acem__min(ACEM__SN2, n), ACEM__NR);
        acem__gemm_blk(ta, tb, tri, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, Ap, Ap + m3 * kcb,
                       kcb, m3, n2);
#else /* straightforward loops, row by row */
        size_t i, j, p;
        acem__scale_c(m, n, beta, C, ldc, tri);
        for (i = 0; i < m; ++i) {
            float *c = C + i * ldc;
            size_t ne = tri ? acem__min(n, i + 1) : n;
            for (p = 0; p < k; ++p) {
                float a = alpha * ACEM__AT(A, lda, ta, i, p);
                if (!tb) {
                    const float *b = B + p * ldb;
                    for (j = 0; j < ne; ++j) c[j] += a * b[j];
                } else {
                    for (j = 0; j < ne; ++j) c[j] += a * B[j * ldb + p];
                }
            }
        }
#endif
        return;
    }
    {
        unsigned char *w = acem__align64(work);
        size_t kcb = acem__min(ACEM__KC, k);
        size_t m3 = acem__roundup(acem__min(ACEM__M3, m), ACEM__MR);
        /* column blocks of equal width (768: 384 + 384, not 512 + 256: a
           narrow last block streams its A strips for half the work) */
        size_t nblk = (n + ACEM__N2 - 1) / ACEM__N2;
        size_t n2 = acem__roundup((n + nblk - 1) / nblk, ACEM__NR);
        float *Ap, *Bp;
        Ap = ACEM__CAST(float *, (void *)w);
        Bp = Ap + m3 * kcb;
        acem__gemm_blk(ta, tb, tri, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, Ap, Bp, kcb,
                       m3, n2);
    }
}

/* C = alpha op(A) op(B) + beta C. work: acem_gemm_work_bytes(m,n,k) bytes or NULL. */
#ifdef ACEM_USE_CBLAS
/* the backend takes int sizes: larger problems stay on the built-in kernels */
#define ACEM__BLAS_OK(a, b, c, d, e) ((a) <= 0x7fffffffu && (b) <= 0x7fffffffu && (c) <= 0x7fffffffu && \
                                      (d) <= 0x7fffffffu && (e) <= 0x7fffffffu)
#endif
static void acem__gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float beta,
                       float *C, size_t ldc, void *work) {
#ifdef ACEM_USE_CBLAS
    if (m && n && k && alpha != 0.0f && ACEM__BLAS_OK(m, n, k, acem__max(lda, ldb), ldc)) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                    (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
        return;
    }
#endif
    acem__gemm_tri(ta, tb, 0, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, work);
}

ACEMDEF void acem_gemm(int transa, int transb, size_t m, size_t n, size_t k, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float beta,
                       float *C, size_t ldc, void *work) {
    acem__gemm(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, work);
}

/* SYRK: the lower triangle through the GEMM driver (tiles above the diagonal
   skipped), then optionally mirrored. trans=1: C = alpha A^T A + beta C, A is
   k x n; trans=0: C = alpha A A^T + beta C, A is n x k. mirror=0 leaves the
   strict upper triangle untouched. */
#if defined(ACEM__AVX512)
#define ACEM__TB 16
#else
#define ACEM__TB 8
#endif
/* The upper triangle from the lower one for the rows [r0, r1): C[j][i] =
   C[i][j] for j < i, in TB x TB blocks (vector transposes where full). */
static void acem__mirror_rows(float *C, size_t ldc, size_t r0, size_t r1) {
    size_t i0, j0, i, j;
    for (i0 = r0; i0 < r1; i0 += ACEM__TB) {
        size_t ie = acem__min(r1, i0 + ACEM__TB);
        for (j0 = 0; j0 < ie; j0 += ACEM__TB) {
            size_t je = acem__min(ie, j0 + ACEM__TB);
#if defined(ACEM__AVX512)
            if (je <= i0 && je == j0 + 16 && ie == i0 + 16) {
                acem__tr16(C + i0 * ldc + j0, ldc, 16, C + j0 * ldc + i0, ldc, 0xffff, 1.0f);
                continue;
            }
#elif defined(ACEM__AVX2)
            if (je <= i0 && je == j0 + 8 && ie == i0 + 8) {
                acem__tr8(C + i0 * ldc + j0, ldc, 8, C + j0 * ldc + i0, ldc, 8, 1.0f);
                continue;
            }
#endif
            for (i = i0; i < ie; ++i)
                for (j = j0; j < je && j < i; ++j) C[j * ldc + i] = C[i * ldc + j];
        }
    }
}
static void acem__syrk(int trans, int mirror, size_t n, size_t k, float alpha, const float *A,
                       size_t lda, float beta, float *C, size_t ldc, void *work) {
#ifdef ACEM_USE_CBLAS
    if (n && k && alpha != 0.0f && ACEM__BLAS_OK(n, k, lda, ldc, 0))
        cblas_ssyrk(CblasRowMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, (int)n, (int)k, alpha, A, (int)lda,
                    beta, C, (int)ldc);
    else
#endif
    acem__gemm_tri(trans, !trans, 1, n, n, k, alpha, A, lda, A, lda, beta, C, ldc, work);
    if (mirror) acem__mirror_rows(C, ldc, 0, n);
}

ACEMDEF void acem_syrk(int trans, size_t n, size_t k, float alpha, const float *A, size_t lda,
                       float beta, float *C, size_t ldc, void *work) {
    acem__syrk(trans & 1, !(trans & ACEM_SYRK_LOWER), n, k, alpha, A, lda, beta, C, ldc, work);
}

/* ---- caller-driven parallelism ----------------------------------------------
   acem never starts a thread: an operation is cut into parts handed to the
   caller's parallel_for (acem_options), one index per lane, each lane with
   its own kernel scratch and taking the parts round robin (parts that need
   no scratch: one index per part, acem__run_items). Three kinds of
   cuts keep the outputs bitwise identical for every number of workers and
   any scheduling:
   - independent items (the inverse iteration's eigenvalue clusters, the
     eigen back-transformation's column chunks): each computed whole, in a
     fixed order, by whichever lane takes it;
   - output splits (GEMM, SYRK, the triangular solves and the Cholesky
     updates, the tridiagonalisation's trailing updates, element-wise
     loops): every output element is computed by the
     same arithmetic whichever part it falls in (the kernels' summation order
     depends only on the depth blocking), so the cuts follow the number of
     workers and balance the work; they fall on multiples of ACEM__SPLIT (a
     multiple of every micro-tile side), triangle cuts on multiples of
     ACEM__TRI_SPLIT (of every MR: finer, for equal areas; counted from the
     end for the tridiagonalisation's upper triangle), so that a cut adds
     few edge tiles;
   - reductions: ACEM__SLOTS fixed slots of rows whose boundaries depend on
     the shapes only, each summed in order by one lane; the partial results
     are combined in slot order. */
#define ACEM__SPLIT 48
/* triangle cuts (equal areas) on multiples of every build's MR instead: at
   48 the 2-lane cut of a 768-row triangle fell at 528 (part 1: 11% more
   area), at 12 it falls at 540 (2%); GPT-2 bench, time in the SYRK parts
   summed over the merge, part 1 vs part 0: +4% -> +2% */
#define ACEM__TRI_SPLIT 12
#define ACEM__CHUNK 256
#define ACEM__SLOTS 16
static size_t acem__nslots(size_t R) { return acem__max(1, acem__min(ACEM__SLOTS, R)); }
typedef struct acem__exec {
    void (*pfor)(void *user, void (*fn)(void *ctx, size_t i), void *ctx, size_t count);
    void *user;
    size_t lanes;        /* parts that may run at once (1: the calling thread)  */
    unsigned char *work; /* lanes x work_bytes of kernel scratch, or NULL        */
    size_t work_bytes;
} acem__exec;
/* everything on the calling thread, with the kernel scratch work (or NULL) */
static acem__exec acem__exec_serial(void *work) {
    acem__exec X;
    X.pfor = NULL; X.user = NULL; X.lanes = 1;
    X.work = ACEM__CAST(unsigned char *, work);
    X.work_bytes = 0;
    return X;
}
typedef void (*acem__part_fn)(void *ctx, size_t part, size_t nparts, void *work);
typedef struct acem__par {
    const acem__exec *X;
    size_t nparts, lanes;
    acem__part_fn fn;
    void *ctx;
} acem__par;
static void acem__lane(void *p, size_t lane) {
    const acem__par *P = ACEM__CAST(const acem__par *, p);
    void *work = P->X->work ? P->X->work + lane * P->X->work_bytes : NULL;
    size_t c;
    for (c = lane; c < P->nparts; c += P->lanes) P->fn(P->ctx, c, P->nparts, work);
}
static void acem__run(const acem__exec *X, size_t nparts, acem__part_fn fn, void *ctx) {
    acem__par P;
    if (!nparts) return;
    P.X = X; P.nparts = nparts; P.fn = fn; P.ctx = ctx;
    P.lanes = acem__min(X->pfor ? X->lanes : 1, nparts);
    if (P.lanes <= 1) {
        P.lanes = 1;
        acem__lane(&P, 0);
        return;
    }
    X->pfor(X->user, acem__lane, &P, P.lanes);
}
/* parts that use no lane scratch (fn gets work NULL): one parallel_for index
   each, so that a pool handing out indices as its lanes free up balances
   them (a lane slowed by another thread of the caller's, by a slower core,
   takes fewer), where acem__run's round robin fixes each lane's share */
static void acem__item(void *p, size_t i) {
    const acem__par *P = ACEM__CAST(const acem__par *, p);
    P->fn(P->ctx, i, P->nparts, NULL);
}
static void acem__run_items(const acem__exec *X, size_t nparts, acem__part_fn fn, void *ctx) {
    acem__par P;
    size_t c;
    P.X = X; P.nparts = nparts; P.fn = fn; P.ctx = ctx; P.lanes = nparts;
    if (X->pfor && X->lanes > 1 && nparts > 1) X->pfor(X->user, acem__item, &P, nparts);
    else for (c = 0; c < nparts; ++c) fn(ctx, c, nparts, NULL);
}
/* parts for an output split of len: one per lane, at most one per ACEM__SPLIT.
   With ACEM_USE_CBLAS, whose kernels may round an element differently
   depending on the block it falls in, fixed parts of ACEM__CHUNK instead
   (their boundaries follow the shapes only). */
static size_t acem__nparts(const acem__exec *X, size_t len) {
#ifdef ACEM_USE_CBLAS
    (void)X;
    return acem__max(1, (len + ACEM__CHUNK - 1) / ACEM__CHUNK);
#else
    size_t lanes = X->pfor ? X->lanes : 1, nb = (len + ACEM__SPLIT - 1) / ACEM__SPLIT;
    return acem__max(1, acem__min(lanes, nb));
#endif
}
/* parts for an output split of len when the work touches only `elems`
   elements in all: below ACEM__PAR_MIN a parallel call costs more than it
   saves, so one part */
#define ACEM__PAR_MIN 65536
static size_t acem__nparts_min(const acem__exec *X, size_t len, size_t elems) {
    return elems < ACEM__PAR_MIN ? 1 : acem__nparts(X, len);
}
/* start of part p of [0, len) cut into np: equal lengths (tri 0) or equal
   areas of a lower triangle (tri 1: rows [0, b) hold b^2 / 2), on a multiple
   of ACEM__SPLIT (tri: ACEM__TRI_SPLIT); part np starts at len */
static size_t acem__bound(size_t len, size_t p, size_t np, int tri) {
    double f;
    size_t b;
    if (p == 0) return 0;
    if (p >= np) return len;
#ifdef ACEM_USE_CBLAS
    (void)f; (void)tri;
    b = p * ACEM__CHUNK;
#else
    f = (double)p / (double)np;
    if (tri) f = ACEM_SQRT(f);
    {
        size_t u = tri ? ACEM__TRI_SPLIT : ACEM__SPLIT;
        b = (size_t)(f * (double)len / (double)u + 0.5) * u;
    }
#endif
    return b < len ? b : len;
}

typedef struct acem__gemm_job {
    int ta, tb, bycols;
    size_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} acem__gemm_job;
static void acem__gemm_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__gemm_job *J = ACEM__CAST(const acem__gemm_job *, ctx);
    size_t len = J->bycols ? J->n : J->m, s = acem__bound(len, c, np, 0), e = acem__bound(len, c + 1, np, 0);
    if (s >= e) return;
    if (J->bycols)
        acem__gemm(J->ta, J->tb, J->m, e - s, J->k, J->alpha, J->A, J->lda, J->tb ? J->B + s * J->ldb : J->B + s,
                   J->ldb, J->beta, J->C + s, J->ldc, work);
    else
        acem__gemm(J->ta, J->tb, e - s, J->n, J->k, J->alpha, J->ta ? J->A + s : J->A + s * J->lda, J->lda, J->B,
                   J->ldb, J->beta, J->C + s * J->ldc, J->ldc, work);
}
/* acem__gemm split along the larger output dimension */
static void acem__pgemm(const acem__exec *X, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                        const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    acem__gemm_job J;
    if (!m || !n) return;
    J.ta = ta; J.tb = tb; J.m = m; J.n = n; J.k = k; J.alpha = alpha; J.A = A; J.lda = lda;
    J.B = B; J.ldb = ldb; J.beta = beta; J.C = C; J.ldc = ldc;
    J.bycols = n >= m;
    acem__run(X, acem__nparts(X, J.bycols ? n : m), acem__gemm_part, &J);
}
typedef struct acem__syrk_job {
    int trans, mirror;
    size_t n, k, lda, ldc;
    float alpha, beta;
    const float *A;
    float *C;
} acem__syrk_job;
/* rows [i0, i1) of the lower triangle (cut into equal areas): a GEMM left of
   the diagonal block, a SYRK on it; then, if asked, their mirror images (the
   upper elements C[j][i], j < i, belong to no other part) */
static void acem__syrk_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__syrk_job *J = ACEM__CAST(const acem__syrk_job *, ctx);
    size_t i0 = acem__bound(J->n, c, np, 1), i1 = acem__bound(J->n, c + 1, np, 1), h = i1 - i0;
    const float *Ai = J->trans ? J->A + i0 : J->A + i0 * J->lda;
    if (i0 >= i1) return;
    if (i0)
        acem__gemm(J->trans, !J->trans, h, i0, J->k, J->alpha, Ai, J->lda, J->A, J->lda, J->beta, J->C + i0 * J->ldc,
                   J->ldc, work);
    acem__syrk(J->trans, 0, h, J->k, J->alpha, Ai, J->lda, J->beta, J->C + i0 * J->ldc + i0, J->ldc, work);
    if (J->mirror) acem__mirror_rows(J->C, J->ldc, i0, i1);
}
/* C = alpha op(A)^T op(A) + beta C: the lower triangle, and with mirror the
   full symmetric matrix (mirror 0 leaves the strict upper part untouched) */
static void acem__psyrk(const acem__exec *X, int trans, int mirror, size_t n, size_t k, float alpha, const float *A,
                        size_t lda, float beta, float *C, size_t ldc) {
    acem__syrk_job J;
    J.trans = trans; J.mirror = mirror; J.n = n; J.k = k; J.alpha = alpha; J.A = A; J.lda = lda; J.beta = beta;
    J.C = C; J.ldc = ldc;
    acem__run(X, acem__nparts(X, n), acem__syrk_part, &J);
}

/* the strict upper triangle of the n x n C from its lower one, split over
   the workers (equal areas: rows [i0, i1) write columns [i0, i1) above the
   diagonal, which no other part touches) */
typedef struct acem__mirror_job {
    size_t n, ldc;
    float *C;
} acem__mirror_job;
static void acem__mirror_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__mirror_job *J = ACEM__CAST(const acem__mirror_job *, ctx);
    (void)work;
    acem__mirror_rows(J->C, J->ldc, acem__bound(J->n, c, np, 1), acem__bound(J->n, c + 1, np, 1));
}
static void acem__pmirror(const acem__exec *X, size_t n, float *C, size_t ldc) {
    acem__mirror_job J;
    J.n = n; J.ldc = ldc; J.C = C;
    acem__run(X, acem__nparts(X, n), acem__mirror_part, &J);
}

/* y += a x over n floats, split over the workers */
typedef struct acem__axpy_job {
    size_t n;
    float a;
    const float *x;
    float *y;
} acem__axpy_job;
static void acem__axpy_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__axpy_job *J = ACEM__CAST(const acem__axpy_job *, ctx);
    size_t s = acem__bound(J->n, c, np, 0), e = acem__bound(J->n, c + 1, np, 0), i;
    float a = J->a, *y = J->y;
    const float *x = J->x;
    (void)work;
    for (i = s; i < e; ++i) y[i] += a * x[i];
}
/* bytes [0, n) of p set to zero, split over the workers */
typedef struct acem__zero_job {
    unsigned char *p;
    size_t n;
} acem__zero_job;
static void acem__zero_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__zero_job *J = ACEM__CAST(const acem__zero_job *, ctx);
    size_t s = acem__bound(J->n, c, np, 0), e = acem__bound(J->n, c + 1, np, 0);
    (void)work;
    if (s < e) ACEM_MEMSET(J->p + s, 0, e - s);
}
static void acem__pzero(const acem__exec *X, void *p, size_t n) {
    acem__zero_job J;
    J.p = ACEM__CAST(unsigned char *, p);
    J.n = n;
    acem__run(X, acem__nparts_min(X, n, n / sizeof(float)), acem__zero_part, &J);
}
static void acem__paxpy(const acem__exec *X, size_t n, float a, const float *x, float *y) {
    acem__axpy_job J;
    J.n = n; J.a = a; J.x = x; J.y = y;
    acem__run(X, acem__nparts_min(X, n, n), acem__axpy_part, &J);
}

/* ---- triangular solves and Cholesky -----------------------------------------
   Both recurse on halves, so that nearly all their flops are large GEMM/SYRK
   calls; the leaves are blocks of ACEM__TRSM_NB columns. A diagonal block of
   the triangular solve is applied as a product with its inverse (computed in
   f64, written as packed strips) through the GEMM micro-kernel; the leaves of
   the Cholesky factorisation are factored with f64 dot products. */
#define ACEM__TRSM_NB 64

/* f64 dot product of two float vectors (fixed summation order) */
static double acem__dot_f64(const float *a, const float *b, size_t n) {
    size_t p = 0;
    double s = 0.0;
#if defined(ACEM__AVX512)
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (; p + 16 <= n; p += 16) {
        s0 = _mm512_fmadd_pd(_mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(a + p)), _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(b + p)), s0);
        s1 = _mm512_fmadd_pd(_mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(a + p + 8)),
                             _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(b + p + 8)), s1);
    }
    {
        double t[8];
        _mm512_storeu_pd(t, _mm512_add_pd(s0, s1));
        s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    }
#elif defined(ACEM__AVX2)
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (; p + 8 <= n; p += 8) {
        s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + p)), _mm256_cvtps_pd(_mm_loadu_ps(b + p)), s0);
        s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + p + 4)), _mm256_cvtps_pd(_mm_loadu_ps(b + p + 4)), s1);
    }
    {
        double t[4];
        _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
        s = (t[0] + t[1]) + (t[2] + t[3]);
    }
#endif
    for (; p < n; ++p) s += (double)a[p] * b[p];
    return s;
}


/* f64 dot product of a float and a double vector (fixed summation order; a
   plain loop is one FMA latency per element) */
static double acem__dot_fd(const float *a, const double *b, size_t n) {
    size_t p = 0;
    double s = 0.0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (; p + 8 <= n; p += 8) {
        s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + p)), _mm256_loadu_pd(b + p), s0);
        s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + p + 4)), _mm256_loadu_pd(b + p + 4), s1);
    }
    {
        double t[4];
        _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
        s = (t[0] + t[1]) + (t[2] + t[3]);
    }
#endif
    for (; p < n; ++p) s += (double)a[p] * b[p];
    return s;
}

/* W = L^-T (trans=1) or L^-1 (trans=0) of the nb x nb lower block L, computed
   in f64 by rows, 16 columns at a time, and stored as the B operand of the
   micro-kernel:
   NR-column strips of ACEM__TRSM_NB rows (element (p, c) at
   (c / NR) * NB * NR + p * NR + c % NR), zero outside nb x nb */
#define ACEM__WP(W, p, c) (W)[((c) / ACEM__NR) * (ACEM__TRSM_NB * ACEM__NR) + (p) * ACEM__NR + (c) % ACEM__NR]
static void acem__trinv(int trans, size_t nb, const float *L, size_t ldl, float *W) {
    double Y[ACEM__TRSM_NB * 16]; /* rows c0.. of L^-1, columns [c0, c0 + 16) */
    size_t c0, c, i, l, j;
    for (i = 0; i < ACEM__TRSM_NB * ACEM__TRSM_NB; ++i) W[i] = 0.0f;
    for (c0 = 0; c0 < nb; c0 += 16) { /* row i of L^-1 = (e_i - sum_l<i L[i][l] row l) / L[i][i] */
        size_t cw = acem__min(16, nb - c0);
        for (i = c0; i < nb; ++i) {
            double *yi = Y + (i - c0) * 16, d = L[i * ldl + i];
            const float *li = L + i * ldl;
            for (j = 0; j < 16; ++j) yi[j] = c0 + j == i ? 1.0 : 0.0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512) /* the row in four registers */
            {
                __m256d y0 = _mm256_loadu_pd(yi), y1 = _mm256_loadu_pd(yi + 4), y2 = _mm256_loadu_pd(yi + 8),
                        y3 = _mm256_loadu_pd(yi + 12), rd = _mm256_set1_pd(1.0 / d);
                for (l = c0; l < i; ++l) {
                    __m256d a = _mm256_set1_pd((double)li[l]);
                    const double *yl = Y + (l - c0) * 16;
                    y0 = _mm256_fnmadd_pd(a, _mm256_loadu_pd(yl), y0);
                    y1 = _mm256_fnmadd_pd(a, _mm256_loadu_pd(yl + 4), y1);
                    y2 = _mm256_fnmadd_pd(a, _mm256_loadu_pd(yl + 8), y2);
                    y3 = _mm256_fnmadd_pd(a, _mm256_loadu_pd(yl + 12), y3);
                }
                _mm256_storeu_pd(yi, _mm256_mul_pd(y0, rd));
                _mm256_storeu_pd(yi + 4, _mm256_mul_pd(y1, rd));
                _mm256_storeu_pd(yi + 8, _mm256_mul_pd(y2, rd));
                _mm256_storeu_pd(yi + 12, _mm256_mul_pd(y3, rd));
            }
#else
            for (l = c0; l < i; ++l) {
                double a = li[l];
                const double *yl = Y + (l - c0) * 16;
                for (j = 0; j < 16; ++j) yi[j] -= a * yl[j];
            }
            for (j = 0; j < 16; ++j) yi[j] /= d;
#endif
        }
        for (c = c0; c < c0 + cw; ++c)
            for (i = c; i < nb; ++i) {
                float v = (float)Y[(i - c0) * 16 + (c - c0)];
                if (trans) ACEM__WP(W, c, i) = v; /* (L^-1)^T [c][i] */
                else ACEM__WP(W, i, c) = v;
            }
    }
}

/* B (m x nb) := B op(L)^-1 for one diagonal block: MR rows of B at a time
   multiplied by W, each NR-column strip over the depth where W is not zero
   (half the products of a square W). The kernel reads the rows in place
   (acem__kern_rows) and overwrites them: the strips go in the order in which
   none reads a column an earlier one wrote (a column c of L^-T needs rows p
   <= c: from the last strip down; of L^-1 rows p >= c: from the first up).
   A last, short group of rows is packed (zero rows below it). */
static void acem__trsm_leaf(int trans, size_t m, size_t nb, const float *L, size_t ldl, float *B, size_t ldb) {
    float W[ACEM__TRSM_NB * ACEM__TRSM_NB], Ap[ACEM__TRSM_NB * ACEM__MR], tile[ACEM__MR * ACEM__NR];
    size_t r, s, ns = (nb + ACEM__NR - 1) / ACEM__NR;
    acem__trinv(trans, nb, L, ldl, W);
    for (r = 0; r < m; r += ACEM__MR) {
        size_t mr = acem__min(ACEM__MR, m - r), k;
        if (mr < ACEM__MR) acem__pack_a(0, B, ldb, r, mr, 0, nb, 1.0f, Ap);
        for (k = 0; k < ns; ++k) {
            size_t nr;
            s = trans ? ns - 1 - k : k;
            nr = acem__min(ACEM__NR, nb - s * ACEM__NR);
            float *c = B + r * ldb + s * ACEM__NR;
            /* W is triangular: the strip's column c of L^-T is zero in rows
               p > c, of L^-1 in rows p < c */
            size_t p0 = trans ? 0 : s * ACEM__NR, pe = trans ? acem__min(nb, (s + 1) * ACEM__NR) : nb;
            const float *w = W + s * (ACEM__TRSM_NB * ACEM__NR) + p0 * ACEM__NR, *br = B + r * ldb + p0;
            if (mr == ACEM__MR && nr == ACEM__NR) {
                acem__kern_rows(pe - p0, br, ldb, w, c, ldb, 0.0f);
            } else {
                if (mr == ACEM__MR) acem__kern_rows(pe - p0, br, ldb, w, tile, ACEM__NR, 0.0f);
                else acem__kern(pe - p0, Ap + p0 * ACEM__MR, w, tile, ACEM__NR, 0.0f);
                acem__tile_put(tile, c, ldb, mr, nr, 0.0f, 0, 0);
            }
        }
    }
}

/* B (m x n) := B L^-T (trans=1) or B L^-1 (trans=0); L n x n lower. Recursive
   halves: X L^T = B is X1 = B1 L11^-T, X2 = (B2 - X1 L21^T) L22^-T; X L = B
   is X2 = B2 L22^-1, X1 = (B1 - X2 L21) L11^-1. work: acem_gemm_work_bytes
   (m, n, n) bytes or NULL. */
static void acem__trsm_rec(int trans, size_t m, size_t n, const float *L, size_t ldl, float *B, size_t ldb,
                           void *work) {
    size_t n1;
    if (n <= ACEM__TRSM_NB) {
        acem__trsm_leaf(trans, m, n, L, ldl, B, ldb);
        return;
    }
    n1 = (n / 2 + ACEM__TRSM_NB - 1) / ACEM__TRSM_NB * ACEM__TRSM_NB;
    if (trans) {
        acem__trsm_rec(1, m, n1, L, ldl, B, ldb, work);
        acem__gemm(0, 1, m, n - n1, n1, -1.0f, B, ldb, L + n1 * ldl, ldl, 1.0f, B + n1, ldb, work);
        acem__trsm_rec(1, m, n - n1, L + n1 * ldl + n1, ldl, B + n1, ldb, work);
    } else {
        acem__trsm_rec(0, m, n - n1, L + n1 * ldl + n1, ldl, B + n1, ldb, work);
        acem__gemm(0, 0, m, n1, n - n1, -1.0f, B + n1, ldb, L + n1 * ldl, ldl, 1.0f, B, ldb, work);
        acem__trsm_rec(0, m, n1, L, ldl, B, ldb, work);
    }
}
static void acem__trsm_rl(int trans, size_t m, size_t n, const float *L, size_t ldl, float *B,
                          size_t ldb, void *work) {
    if (!m || !n) return;
#ifdef ACEM_USE_CBLAS
    if (ACEM__BLAS_OK(m, n, ldl, ldb, 0)) {
        cblas_strsm(CblasRowMajor, CblasRight, CblasLower, trans ? CblasTrans : CblasNoTrans, CblasNonUnit, (int)m,
                    (int)n, 1.0f, L, (int)ldl, B, (int)ldb);
        return;
    }
#endif
    acem__trsm_rec(trans, m, n, L, ldl, B, ldb, work);
}
ACEMDEF void acem_trsm_rl(int trans, size_t m, size_t n, const float *L, size_t ldl, float *B,
                          size_t ldb, void *work) {
    acem__trsm_rl(trans, m, n, L, ldl, B, ldb, work);
}
ACEMDEF void acem_chol_solve_right(size_t m, size_t n, const float *L, size_t ldl, float *B,
                                   size_t ldb, void *work) {
    acem__trsm_rl(1, m, n, L, ldl, B, ldb, work);
    acem__trsm_rl(0, m, n, L, ldl, B, ldb, work);
}

typedef struct acem__trsm_job {
    int trans;
    size_t m, n, ldl, ldb;
    const float *Lm;
    float *B;
} acem__trsm_job;
static void acem__trsm_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__trsm_job *J = ACEM__CAST(const acem__trsm_job *, ctx);
    size_t s = acem__bound(J->m, c, np, 0), e = acem__bound(J->m, c + 1, np, 0);
    if (s < e) acem__trsm_rl(J->trans, e - s, J->n, J->Lm, J->ldl, J->B + s * J->ldb, J->ldb, work);
}
/* the rows of B are independent right-hand sides */
static void acem__ptrsm(const acem__exec *X, int trans, size_t m, size_t n, const float *Lm, size_t ldl, float *B,
                        size_t ldb) {
    acem__trsm_job J;
    J.trans = trans; J.m = m; J.n = n; J.Lm = Lm; J.ldl = ldl; J.B = B; J.ldb = ldb;
    acem__run(X, acem__nparts(X, m), acem__trsm_part, &J);
}

/* Lower Cholesky in place, recursive: A11 = L11 L11^T, L21 = A21 L11^-T,
   A22 -= L21 L21^T, then A22; leaves of ACEM__CHOL_NB columns factored
   left-looking with f64 dot products. The strict upper part is not touched.
   Failure: the first column whose pivot is not positive and finite (off: the
   column of A[0][0] in the whole matrix). */
#ifndef ACEM__CHOL_NB
#define ACEM__CHOL_NB 64
#endif
static acem_result acem__potrf_rec(const acem__exec *X, size_t n, float *A, size_t lda, size_t off, size_t *failed) {
    size_t n1, i, j;
    acem_result r;
    if (n <= ACEM__CHOL_NB) {
        for (j = 0; j < n; ++j) {
            float *rj = A + j * lda;
            double d = (double)rj[j] - acem__dot_f64(rj, rj, j);
            if (!(d > 0.0) || d != d || d > 1e300) {
                if (failed) *failed = off + j;
                return ACEM_ERR_NOT_POSITIVE_DEFINITE;
            }
            d = ACEM_SQRT(d);
            rj[j] = (float)d;
            for (i = j + 1; i < n; ++i) {
                float *ri = A + i * lda;
                ri[j] = (float)(((double)ri[j] - acem__dot_f64(ri, rj, j)) / d);
            }
        }
        return ACEM_OK;
    }
    n1 = (n / 2 + ACEM__CHOL_NB - 1) / ACEM__CHOL_NB * ACEM__CHOL_NB;
    if ((r = acem__potrf_rec(X, n1, A, lda, off, failed)) != ACEM_OK) return r;
    acem__ptrsm(X, 1, n - n1, n1, A, lda, A + n1 * lda, lda);
    acem__psyrk(X, 0, 0, n - n1, n1, -1.0f, A + n1 * lda, lda, 1.0f, A + n1 * lda + n1, lda);
    return acem__potrf_rec(X, n - n1, A + n1 * lda + n1, lda, off + n1, failed);
}
/* X: where the updates run (and their scratch: acem_gemm_work_bytes(n, n, n) per lane) */
static acem_result acem__potrf(const acem__exec *X, size_t n, float *A, size_t lda, size_t *failed) {
#ifdef ACEM_USE_LAPACK /* row-major lower = column-major upper: LAPACKE copies nothing */
    if (n && n <= 0x7fffffffu && lda <= 0x7fffffffu) {
        lapack_int info = LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)n, A, (lapack_int)lda);
        size_t j;
        if (info == 0) /* an optimised LAPACK may let NaN through: the first non-finite pivot */
            for (j = 0; j < n; ++j)
                if (!acem__finite(A[j * lda + j])) { info = (lapack_int)j + 1; break; }
        if (info > 0) {
            if (failed) *failed = (size_t)info - 1;
            return ACEM_ERR_NOT_POSITIVE_DEFINITE;
        }
        return info == 0 ? ACEM_OK : ACEM_ERR_INVALID_ARGUMENT;
    }
#endif
    return acem__potrf_rec(X, n, A, lda, 0, failed);
}
ACEMDEF acem_result acem_potrf(size_t n, float *A, size_t lda, size_t *failed_column, void *work) {
    acem__exec X = acem__exec_serial(work);
    return acem__potrf(&X, n, A, lda, failed_column);
}

/* LU with partial pivoting of the n x n matrix A (in place), solving X A = B
   for the m rows of B: fallback path for the ACE solve. piv: n size_t. */
static acem_result acem__lu_solve_right(size_t m, size_t n, float *A, size_t lda, float *B,
                                        size_t ldb, size_t *piv, double *col) {
    size_t i, j, k, r;
    double amax = 0;
    /* X A = B  <=>  A^T X^T = B^T: factor At = A^T in place (transpose first) */
    for (i = 0; i < n; ++i)
        for (j = i + 1; j < n; ++j) {
            float t = A[i * lda + j];
            A[i * lda + j] = A[j * lda + i];
            A[j * lda + i] = t;
        }
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j) amax = acem__fabs(A[i * lda + j]) > amax ? acem__fabs(A[i * lda + j]) : amax;
    for (k = 0; k < n; ++k) {
        size_t p = k;
        double best = acem__fabs(A[k * lda + k]);
        for (i = k + 1; i < n; ++i)
            if (acem__fabs(A[i * lda + k]) > best) { best = acem__fabs(A[i * lda + k]); p = i; }
        piv[k] = p;
        if (!(best > amax * 1e-30) || best != best) return ACEM_ERR_SINGULAR;
        if (p != k)
            for (j = 0; j < n; ++j) {
                float t = A[k * lda + j];
                A[k * lda + j] = A[p * lda + j];
                A[p * lda + j] = t;
            }
        for (i = k + 1; i < n; ++i) {
            float f = A[i * lda + k] / A[k * lda + k];
            A[i * lda + k] = f;
            if (f != 0.0f)
                for (j = k + 1; j < n; ++j) A[i * lda + j] -= f * A[k * lda + j];
        }
    }
    for (r = 0; r < m; ++r) { /* solve At x = b for each row b of B */
        float *b = B + r * ldb;
        for (i = 0; i < n; ++i) col[i] = b[i];
        for (k = 0; k < n; ++k)
            if (piv[k] != k) { double t = col[k]; col[k] = col[piv[k]]; col[piv[k]] = t; }
        for (i = 0; i < n; ++i) {
            double s = col[i];
            for (j = 0; j < i; ++j) s -= (double)A[i * lda + j] * col[j];
            col[i] = s;
        }
        for (i = n; i-- > 0;) {
            double s = col[i];
            for (j = i + 1; j < n; ++j) s -= (double)A[i * lda + j] * col[j];
            col[i] = s / A[i * lda + i];
        }
        for (i = 0; i < n; ++i) b[i] = (float)col[i];
    }
    return ACEM_OK;
}

/* ---- f64 GEMM: the level-3 kernel of the eigensolver and the Gram matrices --
   The same loop nest as the f32 driver (packed op(A) strips of DMR rows,
   packed op(B) strips of DNR columns, DKC-deep blocks), in f64; either operand
   may be read from f32 (widened while packing: the Gram of an f32 matrix
   accumulated in f64). tri = 1 (2) computes only the tiles that touch the
   lower (upper) triangle j <= i (j >= i) of C; tiles across the diagonal are
   computed whole. Every element of C is the same FMA chain over k wherever
   its tile falls, so results do not depend on how a caller splits C. */
#if defined(ACEM__AVX512)
#define ACEM__DMR 8
#define ACEM__DNR 16
#elif defined(ACEM__AVX2)
#define ACEM__DMR 6
#define ACEM__DNR 8
#else
#define ACEM__DMR 4
#define ACEM__DNR 4
#endif
#ifndef ACEM__DKC
#define ACEM__DKC 256
#endif
#ifndef ACEM__DMC
#define ACEM__DMC 96
#endif
#ifndef ACEM__DNC
#define ACEM__DNC 384
#endif

/* doubles of packing scratch acem__dgemm needs for an m x n x k product */
static size_t acem__dgemm_work(size_t m, size_t n, size_t k) {
    size_t kc = acem__min(ACEM__DKC, k ? k : 1);
    return kc * (acem__roundup(acem__min(ACEM__DMC, m ? m : 1), ACEM__DMR) +
                 acem__roundup(acem__min(ACEM__DNC, n ? n : 1), ACEM__DNR));
}

/* op(A) rows [i0, i0+mc), depth [p0, p0+kc) -> strips of DMR rows, p-major,
   scaled by alpha, zero-padded; A (f64) or Af (f32) */
static void acem__dpack_a(int ta, const double *A, const float *Af, size_t lda, size_t i0, size_t mc, size_t p0,
                          size_t kc, double alpha, double *dst) {
    size_t s, p, r;
    for (s = 0; s < mc; s += ACEM__DMR) {
        size_t h = acem__min(ACEM__DMR, mc - s);
        double *d = dst + s * kc;
        if (h < ACEM__DMR)
            for (p = 0; p < kc; ++p)
                for (r = h; r < ACEM__DMR; ++r) d[p * ACEM__DMR + r] = 0.0;
        /* depth outermost: the strip is written in order (a full strip's
           row of DMR values has a fixed count, so that it vectorises) */
        if (ta) {
            for (p = 0; p < kc; ++p) {
                size_t o = (p0 + p) * lda + i0 + s;
                double *dp = d + p * ACEM__DMR;
                if (A && h == ACEM__DMR && alpha == 1.0) ACEM_MEMCPY(dp, A + o, ACEM__DMR * sizeof(double));
                else if (A) for (r = 0; r < h; ++r) dp[r] = alpha * A[o + r];
                else for (r = 0; r < h; ++r) dp[r] = alpha * (double)Af[o + r];
            }
        } else {
            size_t o = (i0 + s) * lda + p0;
            for (p = 0; p < kc; ++p) {
                double *dp = d + p * ACEM__DMR;
                if (A && h == ACEM__DMR) for (r = 0; r < ACEM__DMR; ++r) dp[r] = alpha * A[o + r * lda + p];
                else if (A) for (r = 0; r < h; ++r) dp[r] = alpha * A[o + r * lda + p];
                else for (r = 0; r < h; ++r) dp[r] = alpha * (double)Af[o + r * lda + p];
            }
        }
    }
}
/* op(B) depth [p0, p0+kc), columns [j0, j0+nc) -> strips of DNR columns */
static void acem__dpack_b(int tb, const double *B, const float *Bf, size_t ldb, size_t p0, size_t kc, size_t j0,
                          size_t nc, double *dst) {
    size_t s, p, c;
    for (s = 0; s < nc; s += ACEM__DNR) {
        size_t w = acem__min(ACEM__DNR, nc - s);
        double *d = dst + s * kc;
        if (w < ACEM__DNR)
            for (p = 0; p < kc; ++p)
                for (c = w; c < ACEM__DNR; ++c) d[p * ACEM__DNR + c] = 0.0;
        if (!tb) { /* (as acem__dpack_a: in order, full strips with a fixed count) */
            for (p = 0; p < kc; ++p) {
                size_t o = (p0 + p) * ldb + j0 + s;
                double *dp = d + p * ACEM__DNR;
                if (B && w == ACEM__DNR) ACEM_MEMCPY(dp, B + o, ACEM__DNR * sizeof(double)); /* vector moves */
                else if (B) for (c = 0; c < w; ++c) dp[c] = B[o + c];
                else for (c = 0; c < w; ++c) dp[c] = (double)Bf[o + c];
            }
        } else {
            size_t o = (j0 + s) * ldb + p0;
            for (p = 0; p < kc; ++p) {
                double *dp = d + p * ACEM__DNR;
                if (B && w == ACEM__DNR) for (c = 0; c < ACEM__DNR; ++c) dp[c] = B[o + c * ldb + p];
                else if (B) for (c = 0; c < w; ++c) dp[c] = B[o + c * ldb + p];
                else for (c = 0; c < w; ++c) dp[c] = (double)Bf[o + c * ldb + p];
            }
        }
    }
}

/* C (DMR x DNR tile, ldc) += Ap^T Bp over kc steps (Bp's rows ldb apart) */
#if defined(ACEM__AVX512)
static void acem__dkern(size_t kc, const double *Ap, const double *Bp, size_t ldb, double *C, size_t ldc) {
    __m512d c0a = _mm512_setzero_pd(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
    __m512d c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
    size_t p;
    for (p = 0; p < kc; ++p, Ap += 8, Bp += ldb) {
        __m512d b0 = _mm512_loadu_pd(Bp), b1 = _mm512_loadu_pd(Bp + 8), a;
        a = _mm512_set1_pd(Ap[0]); c0a = _mm512_fmadd_pd(a, b0, c0a); c0b = _mm512_fmadd_pd(a, b1, c0b);
        a = _mm512_set1_pd(Ap[1]); c1a = _mm512_fmadd_pd(a, b0, c1a); c1b = _mm512_fmadd_pd(a, b1, c1b);
        a = _mm512_set1_pd(Ap[2]); c2a = _mm512_fmadd_pd(a, b0, c2a); c2b = _mm512_fmadd_pd(a, b1, c2b);
        a = _mm512_set1_pd(Ap[3]); c3a = _mm512_fmadd_pd(a, b0, c3a); c3b = _mm512_fmadd_pd(a, b1, c3b);
        a = _mm512_set1_pd(Ap[4]); c4a = _mm512_fmadd_pd(a, b0, c4a); c4b = _mm512_fmadd_pd(a, b1, c4b);
        a = _mm512_set1_pd(Ap[5]); c5a = _mm512_fmadd_pd(a, b0, c5a); c5b = _mm512_fmadd_pd(a, b1, c5b);
        a = _mm512_set1_pd(Ap[6]); c6a = _mm512_fmadd_pd(a, b0, c6a); c6b = _mm512_fmadd_pd(a, b1, c6b);
        a = _mm512_set1_pd(Ap[7]); c7a = _mm512_fmadd_pd(a, b0, c7a); c7b = _mm512_fmadd_pd(a, b1, c7b);
    }
#define ACEM__DST(r)                                                                      \
    _mm512_storeu_pd(C + (r) * ldc, _mm512_add_pd(_mm512_loadu_pd(C + (r) * ldc), c##r##a)); \
    _mm512_storeu_pd(C + (r) * ldc + 8, _mm512_add_pd(_mm512_loadu_pd(C + (r) * ldc + 8), c##r##b))
    ACEM__DST(0); ACEM__DST(1); ACEM__DST(2); ACEM__DST(3);
    ACEM__DST(4); ACEM__DST(5); ACEM__DST(6); ACEM__DST(7);
#undef ACEM__DST
}
#elif defined(ACEM__AVX2)
static void acem__dkern(size_t kc, const double *Ap, const double *Bp, size_t ldb, double *C, size_t ldc) {
    __m256d c0a = _mm256_setzero_pd(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
    __m256d c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a;
    size_t p;
    for (p = 0; p < kc; ++p, Ap += 6, Bp += ldb) {
        __m256d b0 = _mm256_loadu_pd(Bp), b1 = _mm256_loadu_pd(Bp + 4), a;
        a = _mm256_broadcast_sd(Ap + 0); c0a = _mm256_fmadd_pd(a, b0, c0a); c0b = _mm256_fmadd_pd(a, b1, c0b);
        a = _mm256_broadcast_sd(Ap + 1); c1a = _mm256_fmadd_pd(a, b0, c1a); c1b = _mm256_fmadd_pd(a, b1, c1b);
        a = _mm256_broadcast_sd(Ap + 2); c2a = _mm256_fmadd_pd(a, b0, c2a); c2b = _mm256_fmadd_pd(a, b1, c2b);
        a = _mm256_broadcast_sd(Ap + 3); c3a = _mm256_fmadd_pd(a, b0, c3a); c3b = _mm256_fmadd_pd(a, b1, c3b);
        a = _mm256_broadcast_sd(Ap + 4); c4a = _mm256_fmadd_pd(a, b0, c4a); c4b = _mm256_fmadd_pd(a, b1, c4b);
        a = _mm256_broadcast_sd(Ap + 5); c5a = _mm256_fmadd_pd(a, b0, c5a); c5b = _mm256_fmadd_pd(a, b1, c5b);
    }
#define ACEM__DST(r)                                                                      \
    _mm256_storeu_pd(C + (r) * ldc, _mm256_add_pd(_mm256_loadu_pd(C + (r) * ldc), c##r##a)); \
    _mm256_storeu_pd(C + (r) * ldc + 4, _mm256_add_pd(_mm256_loadu_pd(C + (r) * ldc + 4), c##r##b))
    ACEM__DST(0); ACEM__DST(1); ACEM__DST(2); ACEM__DST(3); ACEM__DST(4); ACEM__DST(5);
#undef ACEM__DST
}
#else
static void acem__dkern(size_t kc, const double *Ap, const double *Bp, size_t ldb, double *C, size_t ldc) {
    double c[ACEM__DMR][ACEM__DNR];
    size_t p, i, j;
    for (i = 0; i < ACEM__DMR; ++i)
        for (j = 0; j < ACEM__DNR; ++j) c[i][j] = 0.0;
    for (p = 0; p < kc; ++p, Ap += ACEM__DMR, Bp += ldb)
        for (i = 0; i < ACEM__DMR; ++i)
            for (j = 0; j < ACEM__DNR; ++j) c[i][j] += Ap[i] * Bp[j];
    for (i = 0; i < ACEM__DMR; ++i)
        for (j = 0; j < ACEM__DNR; ++j) C[i * ldc + j] += c[i][j];
}
#endif

/* C (m x n, row-major) = alpha op(A) op(B) + beta C in f64; A or B NULL: read
   Af / Bf (f32) instead. work: acem__dgemm_work(m, n, k) doubles. */
static void acem__dgemm(int ta, int tb, int tri, size_t m, size_t n, size_t k, double alpha, const double *A,
                        const float *Af, size_t lda, const double *B, const float *Bf, size_t ldb, double beta,
                        double *C, size_t ldc, double *work) {
    size_t kcmax = acem__min(ACEM__DKC, k ? k : 1);
    double *Ap = work, *Bp = work + kcmax * acem__roundup(acem__min(ACEM__DMC, m ? m : 1), ACEM__DMR);
    size_t jc, pc, ic, jr, ir, i, j;
    if (!m || !n) return;
    for (jc = 0; jc < n; jc += ACEM__DNC) {
        size_t nc = acem__min(ACEM__DNC, n - jc);
        for (pc = 0; pc < k || pc == 0; pc += ACEM__DKC) {
            size_t kc = k ? acem__min(ACEM__DKC, k - pc) : 0;
            if (kc) acem__dpack_b(tb, B, Bf, ldb, pc, kc, jc, nc, Bp); /* (read in place, ldb apart, it measured
                                                                          slower: a TLB miss per row) */
            for (ic = 0; ic < m; ic += ACEM__DMC) {
                size_t mc = acem__min(ACEM__DMC, m - ic);
                if ((tri == 1 && jc > ic + mc - 1) || (tri == 2 && jc + nc - 1 < ic)) continue;
                if (kc) acem__dpack_a(ta, A, Af, lda, ic, mc, pc, kc, alpha, Ap);
                for (jr = 0; jr < nc; jr += ACEM__DNR) {
                    size_t nr = acem__min(ACEM__DNR, nc - jr), j0 = jc + jr;
                    const double *bs = Bp + jr * kc;
                    for (ir = 0; ir < mc; ir += ACEM__DMR) {
                        size_t mr = acem__min(ACEM__DMR, mc - ir), i0 = ic + ir;
                        double *c = C + i0 * ldc + j0;
                        if ((tri == 1 && j0 > i0 + mr - 1) || (tri == 2 && j0 + nr - 1 < i0)) continue;
                        if (pc == 0 && beta != 1.0)
                            for (i = 0; i < mr; ++i)
                                for (j = 0; j < nr; ++j) c[i * ldc + j] = beta == 0.0 ? 0.0 : beta * c[i * ldc + j];
                        if (!kc) continue;
                        if (mr == ACEM__DMR && nr == ACEM__DNR)
                            acem__dkern(kc, Ap + ir * kc, bs, ACEM__DNR, c, ldc);
                        else {
                            double t[ACEM__DMR * ACEM__DNR];
                            for (i = 0; i < ACEM__DMR * ACEM__DNR; ++i) t[i] = 0.0;
                            acem__dkern(kc, Ap + ir * kc, bs, ACEM__DNR, t, ACEM__DNR);
                            for (i = 0; i < mr; ++i)
                                for (j = 0; j < nr; ++j) c[i * ldc + j] += t[i * ACEM__DNR + j];
                        }
                    }
                }
            }
            if (!k) break;
        }
    }
}

/* ---- small f64 vector helpers (fixed summation order) ------------------------ */
/* y += a x (f64) */
static void acem__daxpy(size_t n, double a, const double *x, double *y) {
    size_t j = 0;
#if defined(ACEM__AVX512)
    __m512d va = _mm512_set1_pd(a);
    for (; j + 8 <= n; j += 8)
        _mm512_storeu_pd(y + j, _mm512_fmadd_pd(va, _mm512_loadu_pd(x + j), _mm512_loadu_pd(y + j)));
#elif defined(ACEM__AVX2)
    __m256d va = _mm256_set1_pd(a);
    for (; j + 4 <= n; j += 4)
        _mm256_storeu_pd(y + j, _mm256_fmadd_pd(va, _mm256_loadu_pd(x + j), _mm256_loadu_pd(y + j)));
#endif
    for (; j < n; ++j) y[j] += a * x[j];
}
/* y += a x + b z */
static void acem__daxpy2(size_t n, double a, const double *x, double b, const double *z, double *y) {
    size_t j = 0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    __m256d va = _mm256_set1_pd(a), vb = _mm256_set1_pd(b);
    for (; j + 4 <= n; j += 4)
        _mm256_storeu_pd(y + j, _mm256_fmadd_pd(vb, _mm256_loadu_pd(z + j),
                                                _mm256_fmadd_pd(va, _mm256_loadu_pd(x + j), _mm256_loadu_pd(y + j))));
#endif
    for (; j < n; ++j) y[j] += a * x[j] + b * z[j];
}
static double acem__ddot(size_t n, const double *x, const double *y) {
    size_t j = 0;
    double s = 0.0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    double t[4];
    for (; j + 8 <= n; j += 8) {
        s0 = _mm256_fmadd_pd(_mm256_loadu_pd(x + j), _mm256_loadu_pd(y + j), s0);
        s1 = _mm256_fmadd_pd(_mm256_loadu_pd(x + j + 4), _mm256_loadu_pd(y + j + 4), s1);
    }
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    s = (t[0] + t[1]) + (t[2] + t[3]);
#endif
    for (; j < n; ++j) s += x[j] * y[j];
    return s;
}
static void acem__dscal(size_t n, double a, double *x) {
    size_t j;
    for (j = 0; j < n; ++j) x[j] *= a;
}
/* sum |x_i| (amax 0) or max |x_i| (amax 1) */
static double acem__dabs_red(size_t n, const double *x, int amax) {
    size_t j = 0;
    double s = 0.0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    __m256d m = _mm256_set1_pd(-0.0), s0 = _mm256_setzero_pd(), s1 = s0;
    double t[4];
    for (; j + 8 <= n; j += 8) {
        __m256d a = _mm256_andnot_pd(m, _mm256_loadu_pd(x + j)), b = _mm256_andnot_pd(m, _mm256_loadu_pd(x + j + 4));
        if (amax) { s0 = _mm256_max_pd(s0, a); s1 = _mm256_max_pd(s1, b); }
        else { s0 = _mm256_add_pd(s0, a); s1 = _mm256_add_pd(s1, b); }
    }
    _mm256_storeu_pd(t, amax ? _mm256_max_pd(s0, s1) : _mm256_add_pd(s0, s1));
    s = amax ? acem__fmax(acem__fmax(t[0], t[1]), acem__fmax(t[2], t[3])) : (t[0] + t[1]) + (t[2] + t[3]);
#endif
    for (; j < n; ++j) s = amax ? acem__fmax(s, acem__fabs(x[j])) : s + acem__fabs(x[j]);
    return s;
}

/* y = S x for the m x m symmetric S of which S(r, c), r >= c, is stored at
   S[c * lds + r] (row c of the memory from its diagonal on: the eigensolver's
   column-major lower triangle). Each stored element is read once and used
   twice; four rows at a time (eight with AVX-512) share the loads of x and
   y. Bound by the bytes of the triangle: the eight streams keep more of them
   in flight when it is larger than L2 (the first panels of an n = 768
   tridiagonalisation; the AVX-512 path cut acem_syev_top there by ~4%, none
   without its 64-byte aligned loads). o: S's offset in doubles from the start
   of its buffer, taken as 64-byte aligned, which places the vector loop's
   start: an index, not the address, so that the sums do not depend on where
   the buffer lies. */
static void acem__dsymv(size_t m, const double *S, size_t lds, size_t o, const double *x, double *y) {
    size_t c = 0, r, a, b;
    (void)o;
    for (r = 0; r < m; ++r) y[r] = 0.0;
#if defined(ACEM__AVX512)
    for (; c + 8 <= m; c += 8) { /* eight rows at a time, 8 lanes */
        const double *sr[8];
        double acc[8];
        size_t rs = c + 8, re;
        __m512d xc[8], dv[8];
        for (a = 0; a < 8; ++a) {
            sr[a] = S + (c + a) * lds;
            acc[a] = sr[a][c + a] * x[c + a];
            xc[a] = _mm512_set1_pd(x[c + a]);
            dv[a] = _mm512_setzero_pd();
        }
        for (a = 0; a < 8; ++a)
            for (b = a + 1; b < 8; ++b) {
                acc[a] += sr[a][c + b] * x[c + b];
                y[c + b] += sr[a][c + b] * x[c + a];
            }
        while (rs < m && (o + c * lds + rs) % 8) ++rs; /* vectors over [rs, re) */
        re = rs + (m - rs) / 8 * 8;
        for (r = rs; r < re; r += 8) {
            __m512d xv = _mm512_loadu_pd(x + r), yv = _mm512_loadu_pd(y + r), yb;
            __m512d v0 = _mm512_loadu_pd(sr[0] + r), v1 = _mm512_loadu_pd(sr[1] + r);
            __m512d v2 = _mm512_loadu_pd(sr[2] + r), v3 = _mm512_loadu_pd(sr[3] + r);
            __m512d v4 = _mm512_loadu_pd(sr[4] + r), v5 = _mm512_loadu_pd(sr[5] + r);
            __m512d v6 = _mm512_loadu_pd(sr[6] + r), v7 = _mm512_loadu_pd(sr[7] + r);
            ACEM__PIN2(v0, v1);
            ACEM__PIN2(v2, v3);
            ACEM__PIN2(v4, v5);
            ACEM__PIN2(v6, v7);
            yv = _mm512_fmadd_pd(v0, xc[0], yv);
            yb = _mm512_mul_pd(v4, xc[4]);
            yv = _mm512_fmadd_pd(v1, xc[1], yv);
            yb = _mm512_fmadd_pd(v5, xc[5], yb);
            yv = _mm512_fmadd_pd(v2, xc[2], yv);
            yb = _mm512_fmadd_pd(v6, xc[6], yb);
            yv = _mm512_fmadd_pd(v3, xc[3], yv);
            yb = _mm512_fmadd_pd(v7, xc[7], yb);
            dv[0] = _mm512_fmadd_pd(v0, xv, dv[0]);
            dv[1] = _mm512_fmadd_pd(v1, xv, dv[1]);
            dv[2] = _mm512_fmadd_pd(v2, xv, dv[2]);
            dv[3] = _mm512_fmadd_pd(v3, xv, dv[3]);
            dv[4] = _mm512_fmadd_pd(v4, xv, dv[4]);
            dv[5] = _mm512_fmadd_pd(v5, xv, dv[5]);
            dv[6] = _mm512_fmadd_pd(v6, xv, dv[6]);
            dv[7] = _mm512_fmadd_pd(v7, xv, dv[7]);
            _mm512_storeu_pd(y + r, _mm512_add_pd(yv, yb));
        }
        for (a = 0; a < 8; ++a) { /* (not _mm512_reduce_add_pd: g++ 12 -Werror warns inside it) */
            double t[8];
            _mm512_storeu_pd(t, dv[a]);
            acc[a] += ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        }
        for (r = c + 8; r < m; ++r) { /* the rows before rs and from re on */
            if (r == rs && (r = re) == m) break;
            y[r] += ((sr[0][r] * x[c] + sr[1][r] * x[c + 1]) + (sr[2][r] * x[c + 2] + sr[3][r] * x[c + 3])) +
                    ((sr[4][r] * x[c + 4] + sr[5][r] * x[c + 5]) + (sr[6][r] * x[c + 6] + sr[7][r] * x[c + 7]));
            for (a = 0; a < 8; ++a) acc[a] += sr[a][r] * x[r];
        }
        for (a = 0; a < 8; ++a) y[c + a] += acc[a];
    }
#endif
    for (; c + 4 <= m; c += 4) {
        const double *s0 = S + c * lds, *s1 = s0 + lds, *s2 = s1 + lds, *s3 = s2 + lds;
        double acc[4];
        for (a = 0; a < 4; ++a) { /* the 4 x 4 diagonal block */
            const double *sa = S + (c + a) * lds;
            acc[a] = sa[c + a] * x[c + a];
            for (b = a + 1; b < 4; ++b) {
                acc[a] += sa[c + b] * x[c + b];
                y[c + b] += sa[c + b] * x[c + a];
            }
        }
        r = c + 4;
        {
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
            __m256d x0 = _mm256_set1_pd(x[c]), x1 = _mm256_set1_pd(x[c + 1]), x2 = _mm256_set1_pd(x[c + 2]);
            __m256d x3 = _mm256_set1_pd(x[c + 3]), d0 = _mm256_setzero_pd(), d1 = d0, d2 = d0, d3 = d0;
            double t[4];
            for (; r + 4 <= m; r += 4) {
                __m256d v0 = _mm256_loadu_pd(s0 + r), v1 = _mm256_loadu_pd(s1 + r);
                __m256d v2 = _mm256_loadu_pd(s2 + r), v3 = _mm256_loadu_pd(s3 + r);
                __m256d xv = _mm256_loadu_pd(x + r), yv = _mm256_loadu_pd(y + r);
                ACEM__PIN2(v0, v1); /* else GCC loads each of them twice, into both FMAs */
                ACEM__PIN2(v2, v3);
                yv = _mm256_fmadd_pd(v0, x0, yv);
                yv = _mm256_fmadd_pd(v1, x1, yv);
                yv = _mm256_fmadd_pd(v2, x2, yv);
                yv = _mm256_fmadd_pd(v3, x3, yv);
                d0 = _mm256_fmadd_pd(v0, xv, d0);
                d1 = _mm256_fmadd_pd(v1, xv, d1);
                d2 = _mm256_fmadd_pd(v2, xv, d2);
                d3 = _mm256_fmadd_pd(v3, xv, d3);
                _mm256_storeu_pd(y + r, yv);
            }
            _mm256_storeu_pd(t, d0); acc[0] += (t[0] + t[1]) + (t[2] + t[3]);
            _mm256_storeu_pd(t, d1); acc[1] += (t[0] + t[1]) + (t[2] + t[3]);
            _mm256_storeu_pd(t, d2); acc[2] += (t[0] + t[1]) + (t[2] + t[3]);
            _mm256_storeu_pd(t, d3); acc[3] += (t[0] + t[1]) + (t[2] + t[3]);
#endif
            for (; r < m; ++r) {
                y[r] += s0[r] * x[c] + s1[r] * x[c + 1] + s2[r] * x[c + 2] + s3[r] * x[c + 3];
                acc[0] += s0[r] * x[r];
                acc[1] += s1[r] * x[r];
                acc[2] += s2[r] * x[r];
                acc[3] += s3[r] * x[r];
            }
        }
        for (a = 0; a < 4; ++a) y[c + a] += acc[a];
    }
    for (; c < m; ++c) {
        const double *sc = S + c * lds;
        double acc = sc[c] * x[c];
        for (r = c + 1; r < m; ++r) {
            acc += sc[r] * x[r];
            y[r] += sc[r] * x[c];
        }
        y[c] += acc;
    }
}


/* ---- symmetric eigensolver (f64) ---------------------------------------------
   1. Blocked Householder tridiagonalisation (LAPACK dsytrd / dlatrd, lower,
      on the column-major view of the row-major storage: "column" j is memory
      row j, so every vector operation is contiguous): panels of ACEM__TRD_NB
      columns reduced with the symmetric matrix-vector product, the trailing
      matrix updated by one rank-2nb product through acem__dgemm. The
      Householder vectors stay in the matrix (row j holds v_j), each panel's
      compact-WY factor T (H_j ... H_j+nb-1 = I - V T V^T) is kept.
   2. Eigenvalues of the tridiagonal by implicit QL per unreduced block
      (O(n^2)), sorted.
   3. Eigenvectors of the tridiagonal, only those wanted, by inverse iteration
      (LAPACK dstein: growth test, re-orthogonalisation within clusters); all
      of them (acem_syev, and the SVDs that want every pair) by divide and
      conquer (acem__dc, LAPACK dstedc), whose cost does not depend on how
      the eigenvalues cluster.
   4. Back-transformation v = Q z by panels in reverse, two GEMMs each
      (2 n^2 q flops for q vectors).
   Should inverse iteration (or a QL leaf of divide and conquer) not converge
   (it has not been seen to), the eigenvectors come from QL with rotations
   instead (acem__tql2t). */
#ifndef ACEM__TRD_NB
#define ACEM__TRD_NB 32
#endif
/* the back-transformation applies the reflectors of two panels at a time */
#define ACEM__BT_NB (2 * ACEM__TRD_NB)
#define ACEM__NPANEL(n) (((n) + ACEM__TRD_NB - 1) / ACEM__TRD_NB)
#define ACEM__NBT(n) (((n) + ACEM__BT_NB - 1) / ACEM__BT_NB)
#define ACEM__TLD(n) ((n) < ACEM__BT_NB ? (n) : ACEM__BT_NB) /* side of each T (small n: n) */
/* doubles of scratch for acem__trd + acem__steig + acem__backtr with q <= n
   vectors: d e tau, acem__steig's ACEM__STEIN_WORK(n), the panel buffer
   (3 min(NB, n) n: V, W, V; later 2 TLD q for the back-transformation), the
   T factors (TLD^2 per pair of panels) */
#define ACEM__XWORK(n) ((n) * acem__max(((n) > ACEM__TRD_NB ? 3 : 2) * acem__min(ACEM__TRD_NB, n), 2 * ACEM__TLD(n)))
#ifdef ACEM_USE_LAPACK /* the same space holds dsyevr's workspace */
#define ACEM__TOP_WORK(n) (34 * (n) + 2 + ACEM__STEIN_WORK(n) + ACEM__XWORK(n) + ACEM__NBT(n) * ACEM__TLD(n) * ACEM__TLD(n))
#else
#define ACEM__TOP_WORK(n) (3 * (n) + ACEM__STEIN_WORK(n) + ACEM__XWORK(n) + ACEM__NBT(n) * ACEM__TLD(n) * ACEM__TLD(n) + 1)
#endif

static double acem__hypot(double a, double b) {
    double x = acem__fabs(a), y = acem__fabs(b), t;
    if (x < y) { t = x; x = y; y = t; }
    if (x == 0) return 0;
    t = y / x;
    return x * ACEM_SQRT(1.0 + t * t);
}

/* Implicit QL (EISPACK tql2) on the tridiagonal d, e (e[i] couples i-1 and i,
   e[0] unused); with V the rotations are applied to its rows (eigenvectors as
   rows), V NULL computes eigenvalues only (O(n^2)). Ascending on return. */
static acem_result acem__tql2t(size_t n, double *d, double *e, double *V, size_t ldv) {
    size_t i, j, k, l;
    for (i = 1; i < n; ++i) e[i - 1] = e[i];
    e[n - 1] = 0.0;
    {
        double f = 0.0, tst1 = 0.0, eps = 2.220446049250313e-16;
        for (l = 0; l < n; ++l) {
            size_t m = l;
            int iter = 0;
            double t = acem__fabs(d[l]) + acem__fabs(e[l]);
            if (t > tst1) tst1 = t;
            while (m < n) {
                if (acem__fabs(e[m]) <= eps * tst1) break;
                ++m;
            }
            if (m == n) m = n - 1;
            if (m > l) {
                do {
                    double g, p, r, dl1, h, c, c2, c3, el1, s, s2;
                    if (++iter > 60) return ACEM_ERR_NO_CONVERGENCE;
                    g = d[l];
                    p = (d[l + 1] - g) / (2.0 * e[l]);
                    r = acem__hypot(p, 1.0);
                    if (p < 0) r = -r;
                    d[l] = e[l] / (p + r);
                    d[l + 1] = e[l] * (p + r);
                    dl1 = d[l + 1];
                    h = g - d[l];
                    for (i = l + 2; i < n; ++i) d[i] -= h;
                    f += h;
                    p = d[m];
                    c = 1.0; c2 = c; c3 = c;
                    el1 = e[l + 1];
                    s = 0.0; s2 = 0.0;
                    for (i = m; i-- > l;) {
                        c3 = c2;
                        c2 = c;
                        s2 = s;
                        g = c * e[i];
                        h = c * p;
                        r = acem__hypot(p, e[i]);
                        e[i + 1] = s * r;
                        s = e[i] / r;
                        c = p / r;
                        p = c * d[i] - s * g;
                        d[i + 1] = h + s * (c * g + s * d[i]);
                        if (V) {
                            double *vi = V + i * ldv, *vi1 = V + (i + 1) * ldv; /* contiguous */
                            for (k = 0; k < n; ++k) {
                                h = vi1[k];
                                vi1[k] = s * vi[k] + c * h;
                                vi[k] = c * vi[k] - s * h;
                            }
                        }
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1;
                    e[l] = s * p;
                    d[l] = c * p;
                } while (acem__fabs(e[l]) > eps * tst1);
            }
            d[l] = d[l] + f;
            e[l] = 0.0;
        }
    }
    /* sort ascending (selection sort keeps it deterministic and simple) */
    for (i = 0; i + 1 < n; ++i) {
        size_t kmin = i;
        double p = d[i];
        for (j = i + 1; j < n; ++j)
            if (d[j] < p) { kmin = j; p = d[j]; }
        if (kmin != i) {
            d[kmin] = d[i];
            d[i] = p;
            for (j = 0; V && j < n; ++j) {
                double t = V[(i) * ldv + (j)];
                V[(i) * ldv + (j)] = V[(kmin) * ldv + (j)];
                V[(kmin) * ldv + (j)] = t;
            }
        }
    }
    return ACEM_OK;
}


/* Eigenvalues of the symmetric tridiagonal d (n), e (n-1, e[i] couples i and
   i+1), ascending into d, by the root-free QL/QR of Pal, Walker and Kahan
   (LAPACK dsterf: no square root in the inner loop). e is destroyed. */
static void acem__lae2(double a, double b, double c, double *rt1, double *rt2) {
    double sm = a + c, adf = acem__fabs(a - c), ab = acem__fabs(b + b), acmx, acmn, rt;
    if (acem__fabs(a) > acem__fabs(c)) { acmx = a; acmn = c; } else { acmx = c; acmn = a; }
    if (adf > ab) rt = adf * ACEM_SQRT(1.0 + (ab / adf) * (ab / adf));
    else if (adf < ab) rt = ab * ACEM_SQRT(1.0 + (adf / ab) * (adf / ab));
    else rt = ab * 1.4142135623730951;
    if (sm < 0) { *rt1 = 0.5 * (sm - rt); *rt2 = (acmx / *rt1) * acmn - (b / *rt1) * b; }
    else if (sm > 0) { *rt1 = 0.5 * (sm + rt); *rt2 = (acmx / *rt1) * acmn - (b / *rt1) * b; }
    else { *rt1 = 0.5 * rt; *rt2 = -0.5 * rt; }
}
static void acem__dsort(double *d, size_t n) { /* heap sort, ascending */
    size_t i, r, c;
    double t;
    if (n < 2) return;
    for (i = n / 2; i-- > 0;)
        for (r = i; (c = 2 * r + 1) < n; r = c) {
            if (c + 1 < n && d[c] < d[c + 1]) ++c;
            if (!(d[r] < d[c])) break;
            t = d[r]; d[r] = d[c]; d[c] = t;
        }
    for (i = n; i-- > 1;) {
        t = d[0]; d[0] = d[i]; d[i] = t;
        for (r = 0; (c = 2 * r + 1) < i; r = c) {
            if (c + 1 < i && d[c] < d[c + 1]) ++c;
            if (!(d[r] < d[c])) break;
            t = d[r]; d[r] = d[c]; d[c] = t;
        }
    }
}
/* one step of the root-free QL / QR sweep (dsterf's c = p / r, s = bb / r,
   gamma = c (alpha - sigma) - s oldgam, p = gamma^2 / c) with one division
   on the step-to-step chain instead of two: c and s from 1 / r, and the next
   p = gamma^2 (r / p) with 1 / p computed while r is (the sweep is
   latency-bound: n = 768, 8.1 -> 6.5-6.9 ms in alternating runs). Where c < 1e-100 or p < 1e-290
   (r / p or 1 / p could overflow) the step divides by c as dsterf does; the
   intermediates stay in dsterf's ranges, so its scaling of the matrix
   covers them (an earlier form that took gamma from p (alpha - sigma) - bb
   oldgam, a cube of the matrix's scale, lost every digit for a tridiagonal
   of norm 1e-150 or 1e150). */
#define ACEM__PWK_STEP(wr, ew)                                                                    \
    do {                                                                                          \
        double ip = 1.0 / (p != 0.0 ? p : 1.0), ri;                                               \
        r = p + bb;                                                                               \
        if (wr) ew = s * r;                                                                       \
        ri = 1.0 / r;                                                                             \
        c = p * ri;                                                                               \
        s = bb * ri;                                                                              \
        gamma = c * (alpha - sigma) - s * oldgam;                                                 \
        if (c >= 1e-100 && p >= 1e-290) p = gamma * (gamma * (r * ip));                           \
        else p = c != 0.0 ? (gamma * gamma) / c : oldc * bb;                                      \
    } while (0)
static acem_result acem__sterf(size_t n, double *d, double *e) {
    const double eps = 1.1102230246251565e-16, eps2 = eps * eps;
    const double ssfmax = 4.4942328371557893e+153, ssfmin = 1.2208769579624263e-122; /* sqrt(safmax)/3, sqrt(safmin)/eps2 */
    size_t nmaxit = 30 * n, jtot = 0, l1 = 0, i, m, l, lend, lsv, lendsv;
    if (n < 2) return ACEM_OK;
    while (l1 < n) {
        double anorm = 0.0, sc = 1.0;
        if (l1 > 0) e[l1 - 1] = 0.0;
        for (m = l1; m + 1 < n; ++m)
            if (acem__fabs(e[m]) <= ACEM_SQRT(acem__fabs(d[m])) * ACEM_SQRT(acem__fabs(d[m + 1])) * eps) {
                e[m] = 0.0;
                break;
            }
        if (m + 1 >= n) m = n - 1;
        l = lsv = l1;
        lend = lendsv = m;
        l1 = m + 1;
        if (lend == l) continue;
        for (i = l; i <= lend; ++i) {
            if (acem__fabs(d[i]) > anorm) anorm = acem__fabs(d[i]);
            if (i < lend && acem__fabs(e[i]) > anorm) anorm = acem__fabs(e[i]);
        }
        if (anorm == 0.0) continue;
        if (anorm > ssfmax) sc = ssfmax / anorm;
        else if (anorm < ssfmin) sc = ssfmin / anorm;
        for (i = l; i <= lend; ++i) {
            d[i] *= sc;
            if (i < lend) { e[i] *= sc; e[i] = e[i] * e[i]; }
        }
        if (acem__fabs(d[lend]) < acem__fabs(d[l])) { lend = lsv; l = lendsv; }
        if (lend >= l) { /* QL */
            for (;;) {
                double p, rte, sigma, r, c, s, gamma;
                for (m = l; m < lend; ++m)
                    if (acem__fabs(e[m]) <= eps2 * acem__fabs(d[m] * d[m + 1])) break;
                if (m < lend) e[m] = 0.0;
                p = d[l];
                if (m == l) { d[l] = p; if (++l <= lend) continue; break; }
                if (m == l + 1) {
                    acem__lae2(d[l], ACEM_SQRT(e[l]), d[l + 1], &d[l], &d[l + 1]);
                    e[l] = 0.0;
                    l += 2;
                    if (l <= lend) continue;
                    break;
                }
                if (jtot == nmaxit) break;
                ++jtot;
                rte = ACEM_SQRT(e[l]);
                sigma = (d[l + 1] - p) / (2.0 * rte);
                r = acem__hypot(sigma, 1.0);
                sigma = p - rte / (sigma + (sigma >= 0 ? r : -r));
                c = 1.0; s = 0.0;
                gamma = d[m] - sigma;
                p = gamma * gamma;
                for (i = m; i-- > l;) {
                    double bb = e[i], oldc = c, oldgam = gamma, alpha = d[i];
                    ACEM__PWK_STEP(i != m - 1, e[i + 1]);
                    d[i + 1] = oldgam + (alpha - gamma);
                }
                e[l] = s * p;
                d[l] = sigma + gamma;
            }
        } else { /* QR */
            for (;;) {
                double p, rte, sigma, r, c, s, gamma;
                for (m = l; m > lend; --m)
                    if (acem__fabs(e[m - 1]) <= eps2 * acem__fabs(d[m] * d[m - 1])) break;
                if (m > lend) e[m - 1] = 0.0;
                p = d[l];
                if (m == l) { d[l] = p; if (l > lend) { --l; continue; } break; }
                if (m + 1 == l) {
                    acem__lae2(d[l], ACEM_SQRT(e[l - 1]), d[l - 1], &d[l], &d[l - 1]);
                    e[l - 1] = 0.0;
                    if (l >= lend + 2) { l -= 2; continue; }
                    break;
                }
                if (jtot == nmaxit) break;
                ++jtot;
                rte = ACEM_SQRT(e[l - 1]);
                sigma = (d[l - 1] - p) / (2.0 * rte);
                r = acem__hypot(sigma, 1.0);
                sigma = p - rte / (sigma + (sigma >= 0 ? r : -r));
                c = 1.0; s = 0.0;
                gamma = d[m] - sigma;
                p = gamma * gamma;
                for (i = m; i < l; ++i) {
                    double bb = e[i], oldc = c, oldgam = gamma, alpha = d[i + 1];
                    ACEM__PWK_STEP(i != m, e[i - 1]);
                    d[i] = oldgam + (alpha - gamma);
                }
                e[l - 1] = s * p;
                d[l] = sigma + gamma;
            }
        }
        if (sc != 1.0)
            for (i = lsv < lendsv ? lsv : lendsv; i <= (lsv < lendsv ? lendsv : lsv); ++i) d[i] /= sc;
        if (jtot >= nmaxit) {
            for (i = 0; i + 1 < n; ++i)
                if (e[i] != 0.0) return ACEM_ERR_NO_CONVERGENCE;
            break;
        }
    }
    acem__dsort(d, n);
    return ACEM_OK;
}

/* the trailing update A22 -= V W^T + W V^T of acem__trd (the upper triangle
   in memory), rows cut into parts of equal area: an element's sum does not
   depend on the cut (the depth loop is the same for every row); tiles across
   the diagonal also write entries below it, which nothing reads */
typedef struct acem__trdu_job {
    size_t mt, k, ldx, lda;
    const double *Xv, *Wv;
    double *A;
} acem__trdu_job;
static void acem__trdu_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__trdu_job *J = ACEM__CAST(const acem__trdu_job *, ctx);
    size_t r0 = J->mt - acem__bound(J->mt, np - c, np, 1), r1 = J->mt - acem__bound(J->mt, np - c - 1, np, 1);
    if (r0 < r1)
        acem__dgemm(1, 0, 2, r1 - r0, J->mt - r0, J->k, -1.0, J->Xv + r0, NULL, J->ldx, J->Wv + r0, NULL, J->ldx, 1.0,
                    J->A + r0 * J->lda + r0, J->lda, ACEM__CAST(double *, work));
}
#define ACEM__TRDU_PAR 256 /* smaller updates run on the calling thread */

/* Tridiagonalise the symmetric n x n A (only A(r, c), r >= c, at A[c*lda + r]
   is read): d (diagonal), e (e[j] couples j and j+1), tau. On return memory
   row j holds v_j at positions i0+1 .. n-1 of its panel [i0, i0+NB), with
   explicit zeros before its unit entry at j+1, so that a panel's V is the
   dense row-major block A[i0*lda + i0+1] (rows i0.., ld lda); Tf gets each
   panel's upper triangular T (NB x NB). X: 3 NB n doubles; gw: dgemm scratch.
   E (may be NULL): the larger trailing updates run on its workers (lane
   scratch: the dgemm's, which ACEM__LANE_F64 bounds). */
static void acem__trd(size_t n, double *A, size_t lda, double *d, double *e, double *tau, double *X, double *Tf,
                      double *gw, const acem__exec *E) {
    const size_t nb = ACEM__TRD_NB, nbx = acem__min(nb, n), tl = ACEM__TLD(n);
    double *W = X + nbx * n; /* rows: V copies [0, nb), W [nb, 2nb), V copies [2nb, 3nb) */
    size_t i0;
    for (i0 = 0; i0 < n; i0 += nb) {
        size_t bs = acem__min(nb, n - i0), p, q, j;
        for (p = 0; p < bs; ++p) {
            double *aj, *v, *wp, alpha, xn, beta, tj;
            size_t m;
            j = i0 + p;
            aj = A + j * lda;
            m = n - j - 1;
            for (q = 0; q < p; ++q) /* column j -= V W(j,:)^T + W V(j,:)^T */
                acem__daxpy2(n - j, -W[q * n + j], A + (i0 + q) * lda + j, -A[(i0 + q) * lda + j], W + q * n + j,
                             aj + j);
            if (m == 0) { tau[j] = 0.0; e[j] = 0.0; break; }
            /* Householder vector: (I - tau v v^T) aj[j+1..] = beta e_1, v_0 = 1 */
            alpha = aj[j + 1];
            xn = m > 1 ? acem__ddot(m - 1, aj + j + 2, aj + j + 2) : 0.0;
            if (xn == 0.0) {
                tj = 0.0;
                beta = alpha;
            } else {
                beta = ACEM_SQRT(alpha * alpha + xn);
                if (alpha > 0) beta = -beta;
                tj = (beta - alpha) / beta;
                acem__dscal(m - 1, 1.0 / (alpha - beta), aj + j + 2);
            }
            tau[j] = tj;
            e[j] = beta;
            aj[j + 1] = 1.0;
            v = aj + j + 1;
            /* w = tau (A22 v - V (W^T v) - W (V^T v)); w -= (tau/2)(w.v) v */
            wp = W + p * n + j + 1;
            acem__dsymv(m, A + (j + 1) * lda + j + 1, lda, (j + 1) * lda + j + 1, v, wp);
            for (q = 0; q < p; ++q) {
                const double *vq = A + (i0 + q) * lda + j + 1, *wq = W + q * n + j + 1;
                acem__daxpy2(m, -acem__ddot(m, wq, v), vq, -acem__ddot(m, vq, v), wq, wp);
            }
            acem__dscal(m, tj, wp);
            acem__daxpy(m, -0.5 * tj * acem__ddot(m, wp, v), v, wp);
        }
        if (i0 + bs < n) { /* A22 -= V W^T + W V^T: one product of depth 2 nb (bs == nb here) */
            size_t s = i0 + bs, mt = n - s;
            for (q = 0; q < bs; ++q) {
                ACEM_MEMCPY(X + q * n + s, A + (i0 + q) * lda + s, mt * sizeof(double));
                ACEM_MEMCPY(X + (2 * nbx + q) * n + s, A + (i0 + q) * lda + s, mt * sizeof(double));
            }
            if (E && mt >= ACEM__TRDU_PAR) {
                acem__trdu_job J;
                J.mt = mt; J.k = 2 * nb; J.ldx = n; J.lda = lda; J.Xv = X + s; J.Wv = W + s; J.A = A + s * lda + s;
                acem__run(E, acem__nparts(E, mt), acem__trdu_part, &J);
            } else
                acem__dgemm(1, 0, 2, mt, mt, 2 * nb, -1.0, X + s, NULL, n, W + s, NULL, n, 1.0, A + s * lda + s, lda, gw);
        }
        /* the panel's diagonal, then V as a dense block for its pair of panels
           (zeros from the pair's start on), then the pair's T once both are done */
        {
            size_t P = i0 / ACEM__BT_NB * ACEM__BT_NB, bb = tl, b2;
            double *T = Tf + (i0 / ACEM__BT_NB) * bb * bb;
            for (p = 0; p < bs; ++p) {
                j = i0 + p;
                d[j] = A[j * lda + j];
                for (q = P + 1; q <= j && q < n; ++q) A[j * lda + q] = 0.0;
            }
            if ((i0 + bs) % ACEM__BT_NB != 0 && i0 + bs < n) continue;
            b2 = i0 + bs - P;
            for (p = 0; p < bb * bb; ++p) T[p] = 0.0;
            for (p = 0; p < b2; ++p) {
                size_t o = P + p + 1; /* v_p starts (with its unit) at o */
                double *t = X; /* scratch column */
                T[p * bb + p] = tau[P + p];
                if (o >= n) continue;
                for (q = 0; q < p; ++q) t[q] = -tau[P + p] * acem__ddot(n - o, A + (P + q) * lda + o, A + (P + p) * lda + o);
                for (q = 0; q < p; ++q) { /* T[0:p, p] = T[0:p, 0:p] t */
                    double s2 = 0.0;
                    size_t r;
                    for (r = q; r < p; ++r) s2 += T[q * bb + r] * t[r];
                    T[q * bb + p] = s2;
                }
            }
        }
    }
}

/* Q z for the columns of Z (n x q, ldz), Q = H_0 ... H_{n-2} from acem__trd,
   by pairs of panels (BT_NB reflectors) from the last: Z[i0+1..] -= V^T (T (V
   Z[i0+1..])). V of block b is at Vs + i0 ldv + i0+1 with leading dimension
   ldv, or (ldv 0: the packed copy of acem_syev) the b-th of the blocks of
   BT_NB rows of n-1-i0 stored one after another. X: 2 TLD(n) q. */
static void acem__backtr(size_t n, const double *Vs, size_t ldv, const double *Tf, double *Z, size_t ldz, size_t q,
                         double *X, double *gw) {
    const size_t nb = ACEM__BT_NB, tl = ACEM__TLD(n);
    size_t b = ACEM__NBT(n);
    if (!q) return;
    while (b-- > 0) {
        size_t i0 = b * nb, bs = acem__min(nb, n - i0), m0 = n - 1 - i0, ld = ldv ? ldv : m0;
        const double *V;
        double *Zs = Z + (i0 + 1) * ldz, *W1 = X, *W2 = X + tl * q;
        if (!m0) continue;
        if (ldv) V = Vs + i0 * ldv + i0 + 1;
        else { /* packed: blocks one after another, each min(nb, n-i0) x m0 */
            size_t c, off = 0;
            for (c = 0; c < b; ++c) off += acem__min(nb, n - c * nb) * (n - 1 - c * nb);
            V = Vs + off;
        }
        acem__dgemm(0, 0, 0, bs, q, m0, 1.0, V, NULL, ld, Zs, NULL, ldz, 0.0, W1, q, gw);
        acem__dgemm(0, 0, 0, bs, q, bs, 1.0, Tf + b * tl * tl, NULL, tl, W1, NULL, q, 0.0, W2, q, gw);
        acem__dgemm(1, 0, 0, m0, q, bs, -1.0, V, NULL, ld, W2, NULL, q, 1.0, Zs, ldz, gw);
    }
}

/* acem__backtr on the layer's workers: Z's columns in chunks of ACEM__BTCH,
   each taking every reflector block (a column's arithmetic does not depend
   on the chunking). Lane scratch: X (2 TLD(n) min(BTCH, q)), then the
   dgemm's (ACEM__LANE_F64 bounds both). L NULL:
   serially with X and gw. */
#define ACEM__BTCH 64
#define ACEM__LANE_F64(mx, n) (acem__dgemm_work(mx, mx, mx) + 2 * ACEM__TLD(n) * acem__min(ACEM__BTCH, n))
typedef struct acem__bt_job {
    size_t n, ldv, ldz, q;
    const double *Vs, *Tf;
    double *Z;
} acem__bt_job;
static void acem__bt_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__bt_job *J = ACEM__CAST(const acem__bt_job *, ctx);
    size_t j0 = c * ACEM__BTCH;
    double *X = ACEM__CAST(double *, work);
    (void)nc;
    acem__backtr(J->n, J->Vs, J->ldv, J->Tf, J->Z + j0, J->ldz, acem__min(ACEM__BTCH, J->q - j0), X,
                 X + 2 * ACEM__TLD(J->n) * acem__min(ACEM__BTCH, J->q));
}
static void acem__pbacktr(const acem__exec *E, size_t n, const double *Vs, size_t ldv, const double *Tf, double *Z,
                          size_t ldz, size_t q, double *X, double *gw) {
    acem__bt_job J;
    if (!E) { acem__backtr(n, Vs, ldv, Tf, Z, ldz, q, X, gw); return; }
    J.n = n; J.ldv = ldv; J.ldz = ldz; J.q = q; J.Vs = Vs; J.Tf = Tf; J.Z = Z;
    acem__run(E, (q + ACEM__BTCH - 1) / ACEM__BTCH, acem__bt_chunk, &J);
}

/* heap sort of the indices idx[0..n) by key (a[i], b[i]) ascending */
static int acem__lt2(const double *a, const double *b, size_t i, size_t j) {
    return a[i] < a[j] || (a[i] == a[j] && b[i] < b[j]);
}
static void acem__sift2(size_t *idx, size_t r, size_t n, const double *a, const double *b) {
    for (;;) {
        size_t c = 2 * r + 1, t;
        if (c >= n) return;
        if (c + 1 < n && acem__lt2(a, b, idx[c], idx[c + 1])) ++c;
        if (!acem__lt2(a, b, idx[r], idx[c])) return;
        t = idx[r]; idx[r] = idx[c]; idx[c] = t;
        r = c;
    }
}
static void acem__sort2(size_t *idx, size_t n, const double *a, const double *b) {
    size_t i, t;
    if (n < 2) return;
    for (i = n / 2; i-- > 0;) acem__sift2(idx, i, n, a, b);
    for (i = n; i-- > 1;) {
        t = idx[0]; idx[0] = idx[i]; idx[i] = t;
        acem__sift2(idx, 0, i, a, b);
    }
}

/* Eigenvalues of the tridiagonal (d, e from acem__trd) ascending into w, and
   the eigenvectors of the q largest as the columns of Z (n x q, ldz; column c
   for w[n-1-c]) by inverse iteration; with tolf > 0, eigenvalues at or below
   tolf^2 w[n-1] get zero vectors. Returns ACEM_ERR_NO_CONVERGENCE if an inverse iteration did not
   converge (the caller then rotates instead). work: ACEM__STEIN_WORK(n) doubles;
   gw: acem__dgemm_work(n, n, n) (a serial run's products). Vectors of one
   cluster (eigenvalues within 1e-3 ||T|| of each other) are computed in
   adjacent columns and made orthogonal to the earlier ones (see
   acem__stein_part). todc (may be NULL): when that work, 2 n (t - g) summed
   over the vectors t above the tolerance (g: the first of t's cluster; about
   n c^2 for a cluster of c; weighted by how it will likely run, see below),
   exceeds dclim, *todc = 1 and no vector is computed (w holds the
   eigenvalues; the caller takes divide and conquer). */
/* x -= V (V^T x) over nv rows of V (length bl, ldv apart) and ns columns of Zs
   (bl rows, ldz apart): classical Gram-Schmidt, one pass. dots: nv + ns. */
static void acem__reorth(size_t bl, size_t nv, const double *V, size_t ldv, size_t ns, const double *Zs, size_t ldz,
                         double *x, double *dots) {
    size_t i, j;
    for (j = 0; j < nv; ++j) dots[j] = acem__ddot(bl, V + j * ldv, x);
    if (ns) {
        for (j = 0; j < ns; ++j) dots[nv + j] = 0.0;
        for (i = 0; i < bl; ++i) acem__daxpy(ns, x[i], Zs + i * ldz, dots + nv);
        for (i = 0; i < bl; ++i) x[i] -= acem__ddot(ns, Zs + i * ldz, dots + nv);
    }
    for (j = 0; j < nv; ++j) acem__daxpy(bl, -dots[j], V + j * ldv, x);
}
/* iterations after the growth test first passes (dstein: 2) */
#ifndef ACEM__STEIN_EXTRA
#define ACEM__STEIN_EXTRA 1
#endif
#ifndef ACEM__STEIN_MAXITS
#define ACEM__STEIN_MAXITS 5
#endif
/* the end of the unreduced block of the tridiagonal that starts at bb: the
   first e[i] negligible next to its diagonal neighbours */
static size_t acem__stein_end(size_t n, const double *d, const double *e, size_t bb) {
    const double eps = 2.220446049250313e-16;
    size_t be = bb + 1;
    while (be < n && acem__fabs(e[be - 1]) > eps * (acem__fabs(d[be - 1]) + acem__fabs(d[be]))) ++be;
    return be;
}
/* that block's end and its 1-norm */
static size_t acem__stein_block(size_t n, const double *d, const double *e, size_t bb, double *onenrm) {
    size_t be = acem__stein_end(n, d, e, bb), i;
    double m = 0.0;
    for (i = bb; i < be; ++i) {
        double s = acem__fabs(d[i]) + (i > bb ? acem__fabs(e[i - 1]) : 0.0) + (i + 1 < be ? acem__fabs(e[i]) : 0.0);
        if (s > m) m = s;
    }
    *onenrm = m;
    return be;
}
/* Inverse iteration (dstein's) for ACEM__STEIN_W vectors at once, as lanes
   of one interleaved factorisation and solve (X[i W + l]): their chains of
   dependent divisions and products overlap, where one vector at a time
   waited on each (n = 768: ~17 us a vector). The unreduced block of T at d,
   e (bl > 1 rows, 1-norm onenrm) less lam[l] I is factorised (P L U), then
   from a start vector fixed by u0 + l, x <- (T - lam I)^-1 x, made
   orthogonal at every step to G's rows [0, g + l) (ldg apart: the group's
   earlier vectors, this chunk's at their current step; single: to none,
   each lane its own cluster) and to ns columns of Zs (ldz apart), until
   every lane that is on has passed the growth test ACEM__STEIN_EXTRA + 1
   times; 0 if that takes more than maxits. Row g + l of G gets lane l's
   normalised iterate (the rows of lanes that are off are not written).
   X: W bl, F: 5 W bl doubles; dots: g + W + ns. */
#define ACEM__STEIN_W 4
static int acem__stein_lanes(size_t bl, const double *d, const double *e, double onenrm, const double *lam,
                             const int *on, size_t u0, int maxits, double *X, double *F, double *G, size_t ldg,
                             size_t g, int single, size_t ns, const double *Zs, size_t ldz, double *dots) {
    enum { W = ACEM__STEIN_W };
    const double eps = 2.220446049250313e-16, dtpcrt = ACEM_SQRT(0.1 / (double)bl);
    double *pu0 = F, *pu1 = pu0 + W * bl, *pu2 = pu1 + W * bl, *ml = pu2 + W * bl, *pv = ml + W * bl, tiny;
    double cd[W], sc[W];
    size_t i, l, k, it, chk[W];
    for (l = 0; l < W; ++l) {
        cd[l] = d[0] - lam[l];
        chk[l] = 0;
    }
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    { /* T - lam I = P L U for every lane, partial pivoting (U: diagonal u0, two
         superdiagonals), branch-free (then U's rows are scaled by 1/u0, tiny
         pivots replaced as dlagts does); one lane a double of a vector */
        const __m256d sg = _mm256_set1_pd(-0.0), zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
        __m256d vl = _mm256_loadu_pd(lam), vcd = _mm256_sub_pd(_mm256_set1_pd(d[0]), vl), vcu = _mm256_set1_pd(e[0]);
        for (i = 0; i + 1 < bl; ++i) {
            __m256d sub = _mm256_set1_pd(e[i]), nu = _mm256_set1_pd(i + 2 < bl ? e[i + 1] : 0.0);
            __m256d nd = _mm256_sub_pd(_mm256_set1_pd(d[i + 1]), vl);
            __m256d p = _mm256_cmp_pd(_mm256_andnot_pd(sg, vcd), _mm256_andnot_pd(sg, sub), _CMP_LT_OQ);
            __m256d piv = _mm256_blendv_pd(vcd, sub, p), num = _mm256_blendv_pd(sub, vcd, p);
            __m256d mm = _mm256_and_pd(_mm256_div_pd(num, piv), _mm256_cmp_pd(piv, zero, _CMP_NEQ_UQ));
            __m256d a1 = _mm256_blendv_pd(vcu, nd, p);
            k = i * W;
            _mm256_storeu_pd(pv + k, _mm256_blendv_pd(one, _mm256_xor_pd(one, sg), p));
            _mm256_storeu_pd(pu0 + k, piv);
            _mm256_storeu_pd(pu1 + k, a1);
            _mm256_storeu_pd(pu2 + k, _mm256_and_pd(nu, p));
            _mm256_storeu_pd(ml + k, mm);
            vcd = _mm256_sub_pd(_mm256_blendv_pd(nd, vcu, p), _mm256_mul_pd(mm, a1));
            vcu = _mm256_blendv_pd(nu, _mm256_xor_pd(_mm256_mul_pd(mm, nu), sg), p);
        }
        _mm256_storeu_pd(cd, vcd);
    }
#else
    { /* T - lam I = P L U for every lane (as above) */
        double cu[W];
        for (l = 0; l < W; ++l) cu[l] = e[0];
        for (i = 0; i + 1 < bl; ++i) {
            double sub = e[i], nu = i + 2 < bl ? e[i + 1] : 0.0;
            for (l = 0; l < W; ++l) {
                double nd = d[i + 1] - lam[l];
                int p = acem__fabs(cd[l]) < acem__fabs(sub);
                double piv = p ? sub : cd[l], num = p ? cd[l] : sub, mm = piv != 0 ? num / piv : 0.0, a1 = p ? nd : cu[l];
                k = i * W + l;
                pv[k] = p ? -1.0 : 1.0;
                pu0[k] = piv; pu1[k] = a1; pu2[k] = p ? nu : 0.0; ml[k] = mm;
                cd[l] = (p ? cu[l] : nd) - mm * a1;
                cu[l] = p ? -mm * nu : nu;
            }
        }
    }
#endif
    for (l = 0; l < W; ++l) {
        k = (bl - 1) * W + l;
        pu0[k] = cd[l]; pu1[k] = pu2[k] = 0.0;
    }
    tiny = eps * (onenrm > 0 ? onenrm : 1.0);
    for (k = 0; k < W * bl; ++k) {
        double p = acem__fabs(pu0[k]) < tiny ? (pu0[k] < 0 ? -tiny : tiny) : pu0[k];
        pu0[k] = 1.0 / p;
        pu1[k] *= pu0[k];
        pu2[k] *= pu0[k];
    }
    for (i = 0; i < bl; ++i)
        for (l = 0; l < W; ++l) X[i * W + l] = 1.0 + (double)((i * 7919u + (u0 + l) * 104729u) % 1009u) / 1009.0;
    for (it = 0; it < (size_t)maxits; ++it) {
        int all = 1;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
        {
            const __m256d sg = _mm256_set1_pd(-0.0);
            __m256d a = _mm256_setzero_pd(), vs, vx, v1, v2;
            for (i = 0; i < bl; ++i) a = _mm256_add_pd(a, _mm256_andnot_pd(sg, _mm256_loadu_pd(X + i * W)));
            _mm256_storeu_pd(sc, a);
            for (l = 0; l < W; ++l)
                sc[l] = (double)bl * onenrm * acem__fmax(acem__fabs(1.0 / pu0[(bl - 1) * W + l]), eps) / sc[l];
            vs = _mm256_loadu_pd(sc);
            vx = _mm256_mul_pd(_mm256_loadu_pd(X), vs);
            for (i = 0; i + 1 < bl; ++i) { /* forward: the row operations (the scaling on the way) */
                __m256d nx = _mm256_mul_pd(_mm256_loadu_pd(X + (i + 1) * W), vs), mk = _mm256_loadu_pd(pv + i * W);
                __m256d va = _mm256_blendv_pd(vx, nx, mk), vb = _mm256_blendv_pd(nx, vx, mk);
                _mm256_storeu_pd(X + i * W, va);
                vx = _mm256_sub_pd(vb, _mm256_mul_pd(_mm256_loadu_pd(ml + i * W), va));
            }
            _mm256_storeu_pd(X + (bl - 1) * W, vx);
            v1 = v2 = _mm256_setzero_pd();
            for (i = bl; i-- > 0;) { /* back: U x = y */
                __m256d v = _mm256_sub_pd(_mm256_sub_pd(_mm256_mul_pd(_mm256_loadu_pd(X + i * W), _mm256_loadu_pd(pu0 + i * W)),
                                                        _mm256_mul_pd(_mm256_loadu_pd(pu2 + i * W), v2)),
                                          _mm256_mul_pd(_mm256_loadu_pd(pu1 + i * W), v1));
                _mm256_storeu_pd(X + i * W, v);
                v2 = v1;
                v1 = v;
            }
        }
#else
        {
            double xi[W], x1[W], x2[W];
            for (l = 0; l < W; ++l) sc[l] = 0.0;
            for (i = 0; i < bl; ++i)
                for (l = 0; l < W; ++l) sc[l] += acem__fabs(X[i * W + l]);
            for (l = 0; l < W; ++l) {
                sc[l] = (double)bl * onenrm * acem__fmax(acem__fabs(1.0 / pu0[(bl - 1) * W + l]), eps) / sc[l];
                xi[l] = X[l] * sc[l];
                x1[l] = x2[l] = 0.0;
            }
            for (i = 0; i + 1 < bl; ++i) /* forward: the row operations (the scaling on the way) */
                for (l = 0; l < W; ++l) {
                    double nx = X[(i + 1) * W + l] * sc[l], a = pv[i * W + l] < 0 ? nx : xi[l];
                    double b = pv[i * W + l] < 0 ? xi[l] : nx;
                    X[i * W + l] = a;
                    xi[l] = b - ml[i * W + l] * a;
                }
            for (l = 0; l < W; ++l) X[(bl - 1) * W + l] = xi[l];
            for (i = bl; i-- > 0;) /* back: U x = y */
                for (l = 0; l < W; ++l) {
                    double v = (X[i * W + l] * pu0[i * W + l] - pu2[i * W + l] * x2[l]) - pu1[i * W + l] * x1[l];
                    X[i * W + l] = v;
                    x2[l] = x1[l];
                    x1[l] = v;
                }
        }
#endif
        for (l = 0; l < W; ++l) { /* in order: each against the earlier rows, then normalised for the later */
            double *gl = G + (g + l) * ldg, s;
            /* a lane that has converged keeps its row: it takes the steps it
               would alone, whatever its neighbours (which depend, for clusters
               of one vector, on where the lanes' parts begin) */
            if (!on[l] || chk[l] >= ACEM__STEIN_EXTRA + 1) continue;
            for (i = 0; i < bl; ++i) gl[i] = X[i * W + l];
            if (!single && g + l + ns) acem__reorth(bl, g + l, G, ldg, ns, Zs, ldz, gl, dots);
            s = acem__dabs_red(bl, gl, 1);
            if (s >= dtpcrt) ++chk[l];
            all &= chk[l] >= ACEM__STEIN_EXTRA + 1;
            /* unit length through the largest entry first: an iterate of a matrix
               of norm 1e140 squares to more than DBL_MAX */
            if (s > 0) acem__dscal(bl, 1.0 / s, gl);
            s = 1.0 / ACEM_SQRT(acem__ddot(bl, gl, gl));
            for (i = 0; i < bl; ++i) X[i * W + l] = gl[i] *= s;
        }
        if (all) return 1;
    }
    return 0;
}
/* The inverse iteration of the vectors t in [t0, t1) of the grouped order
   (t0 a cluster's start, t1 the next one's or q): each vector depends only
   on its shift, its block and the earlier vectors of its cluster, so the
   clusters may run on any lanes in any order with the same result.
   A cluster's vectors are made in groups of up to ACEM__CLV (rows of G;
   clusters of one vector: up to ACEM__STEIN_W of them):
   1. each iterated with re-orthogonalisation against the group's earlier
      ones only (the neighbours that a shift may not tell apart),
      ACEM__STEIN_W at a time (acem__stein_lanes);
   2. the group made orthogonal to the cluster's earlier groups by two block
      passes of classical Gram-Schmidt (four GEMMs, instead of re-reading
      those columns at every step of every vector: for the bulk of a spiked
      Gram matrix, one cluster of ~0.3 n, that was most of the solver's time);
   3. in order, each made orthogonal to the group's earlier final vectors
      (twice). A vector left with under half its norm was mostly made of
      earlier vectors (coincident or nearly coincident eigenvalues): it is
      made again as dstein does, re-orthogonalised against every earlier
      vector of its cluster at every step (acem__stein_lanes, one lane on). */
#define ACEM__CLV 16 /* (a multiple of ACEM__STEIN_W) */
/* how much faster that work runs as step 2's GEMMs than as step 3's fallback
   (measured on a spiked Gram, n = 768: 14.5 ms as the fallback, 2.2 ms) */
#define ACEM__REORTH_GEMM 6.0
#define ACEM__STEIN_LANE0(n) ((6 * ACEM__STEIN_W + 1 + 2 * ACEM__CLV) * (n)) /* X, 5 factors, dots, G, G's dots */
#define ACEM__STEIN_LANE(n) (ACEM__STEIN_LANE0(n) + acem__dgemm_work(acem__min(ACEM__CLV, n), n, n))
#define ACEM__STEIN_WORK(n) (4 * (n) + ACEM__STEIN_LANE0(n)) /* 4 n, then a serial run's lane (its products: gw) */
#define ACEM__STEIN_PARTS 64
typedef struct acem__stein_job {
    size_t n, q, ldz, np;
    const double *d, *e, *w, *tag, *lam; /* lam: each vector's shift (perturbed) */
    const size_t *idx, *gp;              /* t -> eigenvalue; t -> its cluster's first t */
    double vmin;
    double *Z, *scratch, *gw;            /* a serial run's ACEM__STEIN_LANE0(n) and products' scratch */
    int maxits;
    int fail[ACEM__STEIN_PARTS];
} acem__stein_job;
/* part c of np: from the first cluster start at or after c q / np */
static size_t acem__stein_start(const acem__stein_job *J, size_t c) {
    size_t t = c * J->q / J->np;
    if (c >= J->np) return J->q;
    while (t < J->q && J->gp[t] != t) ++t;
    return t;
}
static void acem__stein_part(void *ctx, size_t c, size_t np, void *work) {
    acem__stein_job *J = ACEM__CAST(acem__stein_job *, ctx);
    const double *d = J->d, *e = J->e;
    size_t n = J->n, ldz = J->ldz, t0 = acem__stein_start(J, c), t1 = acem__stein_start(J, c + 1), t, tg, u, i;
    double *x = work ? ACEM__CAST(double *, work) : J->scratch, *f = x + ACEM__STEIN_W * n;
    double *key = f + 5 * ACEM__STEIN_W * n, *G = key + n, *Gd = G + ACEM__CLV * n;
    double *gw = work ? x + ACEM__STEIN_LANE0(n) : J->gw, *Z = J->Z;
    size_t prevb = (size_t)-1, bl = 0;
    double onenrm = 0.0;
    (void)np;
    for (t = t0; t < t1; t = tg) {
        size_t gp = J->gp[t], bb = (size_t)J->tag[J->idx[t]], ng, no = t - gp;
        const double *Zo = Z + bb * ldz + gp; /* the cluster's earlier groups: no columns */
        int single;
        for (tg = t + 1; tg < t1 && J->gp[tg] == gp && tg - t < ACEM__CLV; ++tg) {}
        if ((single = tg == t + 1 && gp == t) != 0) /* clusters of one vector: up to W of them (one block) at once */
            while (tg < t1 && tg - t < ACEM__STEIN_W && J->gp[tg] == tg && (tg + 1 == t1 || J->gp[tg + 1] != tg) &&
                   (size_t)J->tag[J->idx[tg]] == bb)
                ++tg;
        ng = tg - t;
        if (bb != prevb) {
            bl = acem__stein_block(n, d, e, bb, &onenrm) - bb;
            prevb = bb;
        }
        for (u = t; u < tg; u += ACEM__STEIN_W) { /* 1. */
            double lam[ACEM__STEIN_W];
            int on[ACEM__STEIN_W], any = 0;
            size_t l;
            for (l = 0; l < ACEM__STEIN_W; ++l) {
                size_t v = u + l < tg ? u + l : tg - 1;
                lam[l] = J->lam[v];
                on[l] = u + l < tg && bl > 1 && J->w[J->idx[v]] > J->vmin;
                any |= on[l];
            }
            for (l = 0; l < ACEM__STEIN_W; ++l)
                if (!on[l]) ACEM_MEMSET(G + (u - t + l) * n, 0, bl * sizeof(double));
            if (any && !acem__stein_lanes(bl, d + bb, e + bb, onenrm, lam, on, u, J->maxits, x, f, G, n, u - t, single,
                                          0, NULL, 0, key)) {
                J->fail[c] = 1;
                return;
            }
        }
        if (no && bl > 1) { /* 2. (a second pass only if a row lost over 1 - 1/2 of its squared norm) */
            int pass, again = 1;
            for (pass = 0; pass < 2 && again; ++pass) {
                acem__dgemm(0, 0, 0, ng, no, bl, 1.0, G, NULL, n, Zo, NULL, ldz, 0.0, Gd, no, gw);
                acem__dgemm(0, 1, 0, ng, bl, no, -1.0, Gd, NULL, no, Zo, NULL, ldz, 1.0, G, n, gw);
                for (again = 0, u = 0; u < ng; ++u)
                    again |= J->w[J->idx[t + u]] > J->vmin && acem__ddot(bl, G + u * n, G + u * n) < 0.5;
            }
        }
        for (u = t; u < tg; ++u) { /* 3. */
            double *g = G + (u - t) * n, nrm;
            if (!(J->w[J->idx[u]] > J->vmin)) continue;
            if (bl == 1) {
                Z[bb * ldz + u] = 1.0;
                continue;
            }
            if (u > t && !single) { /* (again as in 2.) */
                double nb = acem__ddot(bl, g, g);
                acem__reorth(bl, u - t, G, n, 0, NULL, 0, g, key);
                if (acem__ddot(bl, g, g) < 0.5 * nb) acem__reorth(bl, u - t, G, n, 0, NULL, 0, g, key);
            }
            if (acem__ddot(bl, g, g) < 0.25) { /* dstein's way (lane 0 only) */
                double lam[ACEM__STEIN_W];
                int on[ACEM__STEIN_W];
                size_t l;
                for (l = 0; l < ACEM__STEIN_W; ++l) { lam[l] = J->lam[u]; on[l] = l == 0; }
                if (!acem__stein_lanes(bl, d + bb, e + bb, onenrm, lam, on, u, J->maxits, x, f, G, n, u - t, 0, no, Zo,
                                       ldz, key)) {
                    J->fail[c] = 1;
                    return;
                }
                acem__reorth(bl, u - t, G, n, no, Zo, ldz, g, key); /* twice is enough */
            }
            nrm = acem__dabs_red(bl, g, 1); /* the sign: largest component positive */
            for (i = 0; i < bl && acem__fabs(g[i]) != nrm; ++i) {}
            nrm = (g[i] < 0 ? -1.0 : 1.0) / ACEM_SQRT(acem__ddot(bl, g, g));
            acem__dscal(bl, nrm, g);
            for (i = 0; i < bl; ++i) Z[(bb + i) * ldz + u] = g[i];
        }
    }
}
/* E (may be NULL): the clusters run on its workers (lane scratch at least
   ACEM__STEIN_LANE(n) doubles; acem__lane_bytes sees to it) */
static acem_result acem__steig(size_t n, const double *d, const double *e, size_t q, double tolf, double *w,
                               double *Z, size_t ldz, double *work, double *gw, int maxits, const acem__exec *E,
                               double dclim, int *todc) {
    double *tag = work, *qd = tag + n, *qe = qd + n, *srt = qe + n, *key = srt + n;
    double *scratch = key; /* a serial run's vector scratch: key is not needed while vectors are made */
    size_t *idx = ACEM__CAST(size_t *, (void *)srt); /* n indices in n doubles' space */
    size_t *gpv = ACEM__CAST(size_t *, (void *)qe);  /* after the eigenvalues: t -> its cluster's start */
    double *lamv = qd;                              /* and t -> its shift */
    const double eps = 2.220446049250313e-16;
    size_t i, j, b0, t, ncl = 0, lanes = E && E->pfor ? E->lanes : 1;
    acem__stein_job J;
    acem_result r;
    /* the eigenvalues of each unreduced block */
    for (b0 = 0; b0 < n;) {
        size_t b1 = acem__stein_end(n, d, e, b0);
        for (i = b0; i < b1; ++i) {
            qd[i] = d[i];
            qe[i] = e[i];
            tag[i] = (double)b0;
        }
        if ((r = acem__sterf(b1 - b0, qd + b0, qe + b0)) != ACEM_OK) return r;
        b0 = b1;
    }
    /* all eigenvalues ascending (ties by block: deterministic) */
    for (i = 0; i < n; ++i) idx[i] = i;
    acem__sort2(idx, n, qd, tag);
    for (i = 0; i < n; ++i) { w[i] = qd[idx[i]]; key[i] = tag[idx[i]]; }
    for (i = 0; i < n; ++i) tag[i] = key[i];
    J.vmin = tolf > 0 ? tolf * tolf * w[n - 1] : -1e308;
    if (q > n) q = n;
    if (!q) return ACEM_OK;
    /* the q largest, grouped by block, descending within a block: order by
       (block, n-1-i) ascending; column c of Z is the c-th of that order */
    for (t = 0; t < q; ++t) { idx[t] = n - 1 - t; key[n - 1 - t] = (double)t; }
    acem__sort2(idx, q, tag, key);
    { /* each vector's shift (coincident eigenvalues separated) and cluster; the
         re-orthogonalisation's work: a vector above vmin is made orthogonal to
         the earlier ones of its cluster, 2 n (t - gp), by GEMMs (counted at
         1 / ACEM__REORTH_GEMM) unless its eigenvalue is within 1e3 eps ||T||
         of the previous one (then likely at every step: see acem__stein_part) */
        size_t gp = 0, prevb = (size_t)-1;
        double xjm = 0.0, ortol = 0.0, tight = 0.0, onenrm, work2 = 0.0;
        for (t = 0; t < q; ++t) {
            size_t ev = idx[t], bb = (size_t)tag[ev];
            double lam = w[ev];
            if (bb != prevb) { /* a new block */
                (void)acem__stein_block(n, d, e, bb, &onenrm);
                ortol = 1e-3 * onenrm;
                tight = 1e3 * eps * onenrm;
                gp = t;
                prevb = bb;
            } else {
                double pertol = 10.0 * acem__fabs(eps * lam);
                if (xjm - lam < pertol) lam = xjm - pertol; /* separate coincident eigenvalues */
                if (acem__fabs(xjm - lam) > ortol) gp = t;  /* a new cluster */
            }
            if (w[ev] > J.vmin && t > gp)
                work2 += 2.0 * (double)n * (double)(t - gp) / (xjm - lam <= tight ? 1.0 : ACEM__REORTH_GEMM);
            xjm = lam;
            lamv[t] = lam;
            gpv[t] = gp;
            ncl += gp == t;
        }
        if (todc && (*todc = work2 > dclim) != 0) return ACEM_OK;
    }
    for (i = 0; i < n; ++i) /* (after that test: divide and conquer writes every column itself) */
        for (j = 0; j < q; ++j) Z[i * ldz + j] = 0.0;
    J.n = n; J.q = q; J.ldz = ldz; J.d = d; J.e = e; J.w = w; J.tag = tag; J.lam = lamv; J.idx = idx; J.gp = gpv;
    J.Z = Z; J.scratch = scratch; J.gw = gw; J.maxits = maxits;
    J.np = lanes > 1 ? acem__min(acem__min(4 * lanes, ncl), ACEM__STEIN_PARTS) : 1;
    for (i = 0; i < J.np; ++i) J.fail[i] = 0;
    if (J.np > 1) acem__run(E, J.np, acem__stein_part, &J);
    else acem__stein_part(&J, 0, 1, NULL);
    for (i = 0; i < J.np; ++i)
        if (J.fail[i]) return ACEM_ERR_NO_CONVERGENCE;
    /* columns from the grouped order to descending eigenvalue order */
    for (i = 0; i < n; ++i) {
        double *zi = Z + i * ldz;
        for (t = 0; t < q; ++t) key[n - 1 - idx[t]] = zi[t];
        for (t = 0; t < q; ++t) zi[t] = key[t];
    }
    return ACEM_OK;
}

/* Checks that the n x n A is finite and returns the factor (1 or a power of
   two) that brings max |a_ij| into [2^-485, 2^485] (LAPACK dsyev's rmin /
   rmax: no sum of squares can then overflow or underflow); 0 if not finite. */
static double acem__eig_scale(size_t n, const double *A, size_t lda) {
    double amax = 0.0, s = 1.0;
    size_t i, j;
    for (i = 0; i < n; ++i)
        for (j = 0; j < n; ++j) {
            double v = A[i * lda + j];
            if (v - v != 0) return 0.0;
            if (acem__fabs(v) > amax) amax = acem__fabs(v);
        }
    if (amax == 0.0) return 1.0;
    while (amax * s > 9.98012604599318e+145) s *= 0.5; /* 2^485 */
    while (amax * s < 1.0019968104301e-146) s *= 2.0;  /* 2^-485 */
    return s;
}
static void acem__scale_sq(size_t n, double *A, size_t lda, double s) {
    size_t i, j;
    if (s != 1.0)
        for (i = 0; i < n; ++i)
            for (j = 0; j < n; ++j) A[i * lda + j] *= s;
}

/* The fallback: all eigenvectors of the tridiagonal by QL with rotations into
   Z (n x n, ldz, rows = eigenvectors, ascending), then transposed: column c
   for w[c] (w may be d: in place). work: 2 n doubles. */
static acem_result acem__tri_ql(size_t n, const double *d, const double *e, double *w, double *Z, size_t ldz,
                                double *work) {
    double *qe = work;
    size_t i, j;
    acem_result r;
    for (i = 0; i < n; ++i) {
        w[i] = d[i];
        qe[i] = i ? e[i - 1] : 0.0;
        for (j = 0; j < n; ++j) Z[i * ldz + j] = i == j ? 1.0 : 0.0;
    }
    if ((r = acem__tql2t(n, w, qe, Z, ldz)) != ACEM_OK) return r;
    for (i = 0; i < n; ++i)
        for (j = i + 1; j < n; ++j) {
            double t = Z[i * ldz + j];
            Z[i * ldz + j] = Z[j * ldz + i];
            Z[j * ldz + i] = t;
        }
    return ACEM_OK;
}

/* ---- all eigenpairs of the tridiagonal by divide and conquer (LAPACK
   dstedc: Cuppen's splitting, dlaed2's deflation, the secular equation as
   dlaed4 solves it, Gu and Eisenstat's eigenvectors): the vectors come from
   products with each merge's small eigenvector matrix (acem__dgemm), never
   from re-orthogonalisation, so a spectrum of close eigenvalues costs no
   more than any other (inverse iteration re-orthogonalises each cluster
   vector against the cluster: O(n c^2) for a cluster of c, all of the bulk
   of a spiked Gram matrix). */
#ifndef ACEM__DC_LEAF
#define ACEM__DC_LEAF 32 /* blocks this small: QL with rotations */
#endif
#define ACEM__DC_RB 128 /* rows of Q per product with a merge's eigenvectors */
/* doubles: the merge's K x K eigenvectors, two row blocks (the gathered
   columns, the product), 12 arrays of n (one the old row) */
#define ACEM__DC_WORK(n) ((n) * (n) + 2 * acem__min(ACEM__DC_RB, n) * (n) + 12 * (n) + 1)
/* The top q vectors come from divide and conquer too (when the caller has its
   workspace) once inverse iteration's re-orthogonalisation (acem__steig: about
   n sum c^2 over its clusters of c vectors, the part done by GEMMs counted at
   1 / ACEM__REORTH_GEMM) passes 0.03 n^3. Measured (q = 0.3 n, one thread,
   inverse iteration / divide and conquer, whole acem__syev_top_its, the
   Gram of a random 4n x n matrix): random, n =
   2048: 0.53 / 0.70 s, 3072: 2.14 / 2.58 s, 4096: 5.87 / 6.71 s; spiked (plus
   a rank-8 component: one cluster of ~0.3 n): 0.58 / 0.74, 2.32 / 2.62, 5.54 /
   6.55 s; n / 2 repeated eigenvalues (every vector re-orthogonalised at every
   step): 0.77 / 0.53, 3.89 / 2.10 s: the rule takes the faster in each. Below
   n = 1536 inverse iteration runs its clusters on the workers (divide and
   conquer's merges are serial), and at n = 768 it is faster on one thread but
   for the repeated case (0.042 / 0.036 s). */
#ifndef ACEM__DC_TOP /* (tests/test_dctop.c sets it to -1: always) */
#define ACEM__DC_TOP(n) ((n) < 1536 ? 1e300 : 0.03 * (double)(n) * (double)(n) * (double)(n))
#endif

/* The root in (dl_j, dl_j+1) (the last one: (dl_K-1, dl_K-1 + rho |z|^2))
   of 1 + rho sum_i z2_i / (dl_i - x) = 0, as x = dl_o + tau with o the nearer
   pole, so that tau and del[i] = (dl_i - dl_o) - tau keep their relative
   accuracy (Gu and Eisenstat's vectors need that). Each step fits
   p + q / (A - x) to the poles up to j and r + t / (B - x) to the rest
   (values and slopes at tau) and takes the fit's root (dlaed4's "middle way"),
   inside a bracket that bisection keeps when the fit leaves it. */
/* x_i *= r_i / (a_i - s) and y_i = x_i / y_i over n (element-wise: a vector's
   lanes round as the scalar loop does) */
static void acem__dmuldiv(size_t n, double *x, const double *r, const double *a, double s) {
    size_t i = 0;
#if defined(ACEM__AVX512)
    __m512d vs = _mm512_set1_pd(s);
    for (; i + 8 <= n; i += 8)
        _mm512_storeu_pd(x + i, _mm512_mul_pd(_mm512_loadu_pd(x + i), _mm512_div_pd(_mm512_loadu_pd(r + i),
                                                                                  _mm512_sub_pd(_mm512_loadu_pd(a + i), vs))));
#elif defined(ACEM__AVX2)
    __m256d vs = _mm256_set1_pd(s);
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(x + i, _mm256_mul_pd(_mm256_loadu_pd(x + i), _mm256_div_pd(_mm256_loadu_pd(r + i),
                                                                                  _mm256_sub_pd(_mm256_loadu_pd(a + i), vs))));
#endif
    for (; i < n; ++i) x[i] *= r[i] / (a[i] - s);
}
static void acem__ddiv(size_t n, const double *x, double *y) {
    size_t i = 0;
#if defined(ACEM__AVX512)
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(y + i, _mm512_div_pd(_mm512_loadu_pd(x + i), _mm512_loadu_pd(y + i)));
#elif defined(ACEM__AVX2)
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, _mm256_div_pd(_mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i)));
#endif
    for (; i < n; ++i) y[i] = x[i] / y[i];
}
/* the secular equation's sums over i in [i0, i1): *s = sum z2_i / (del_i - tau),
   *ds = sum z2_i / (del_i - tau)^2 (one division a term, a vector of them at
   a time: the root finder's cost) */
static void acem__secular(size_t i0, size_t i1, const double *del, const double *z2, double tau, double *s,
                          double *ds) {
    size_t i = i0;
    double a = 0.0, b = 0.0;
#if defined(ACEM__AVX512)
    if (i1 - i0 >= 8) {
        __m512d vt = _mm512_set1_pd(tau), one = _mm512_set1_pd(1.0), va = _mm512_setzero_pd(), vb = va;
        double ta[8], tb[8];
        int l;
        for (; i + 8 <= i1; i += 8) {
            __m512d inv = _mm512_div_pd(one, _mm512_sub_pd(_mm512_loadu_pd(del + i), vt));
            __m512d w = _mm512_mul_pd(_mm512_loadu_pd(z2 + i), inv);
            va = _mm512_add_pd(va, w);
            vb = _mm512_fmadd_pd(w, inv, vb);
        }
        _mm512_storeu_pd(ta, va);
        _mm512_storeu_pd(tb, vb);
        for (l = 0; l < 8; ++l) { a += ta[l]; b += tb[l]; }
    }
#elif defined(ACEM__AVX2)
    if (i1 - i0 >= 4) {
        __m256d vt = _mm256_set1_pd(tau), one = _mm256_set1_pd(1.0), va = _mm256_setzero_pd(), vb = va;
        double ta[4], tb[4];
        for (; i + 4 <= i1; i += 4) {
            __m256d inv = _mm256_div_pd(one, _mm256_sub_pd(_mm256_loadu_pd(del + i), vt));
            __m256d w = _mm256_mul_pd(_mm256_loadu_pd(z2 + i), inv);
            va = _mm256_add_pd(va, w);
            vb = _mm256_fmadd_pd(w, inv, vb);
        }
        _mm256_storeu_pd(ta, va);
        _mm256_storeu_pd(tb, vb);
        a = (ta[0] + ta[1]) + (ta[2] + ta[3]);
        b = (tb[0] + tb[1]) + (tb[2] + tb[3]);
    }
#endif
    for (; i < i1; ++i) {
        double inv = 1.0 / (del[i] - tau), w = z2[i] * inv;
        a += w;
        b += w * inv;
    }
    *s = a;
    *ds = b;
}
static double acem__dc_root(size_t K, const double *dl, const double *z2, double rho, size_t j, double *del,
                            size_t *og) {
    const double eps = 2.220446049250313e-16;
    size_t o, i, it;
    double lo, hi, tau, A, B;
    int last = j + 1 == K;
    for (i = 0; i < K; ++i) del[i] = dl[i] - dl[j];
    if (!last) {
        double gap = dl[j + 1] - dl[j], mid = 0.5 * gap, f, df;
        acem__secular(0, K, del, z2, mid, &f, &df);
        if (1.0 + rho * f >= 0) { o = j; lo = 0; hi = mid; tau = mid; } /* f increases: the root is at or left of mid */
        else {
            o = j + 1; lo = mid - gap; hi = 0; tau = lo;
            for (i = 0; i < K; ++i) del[i] = dl[i] - dl[o];
        }
    } else {
        double s = 0;
        for (i = 0; i < K; ++i) s += z2[i];
        o = j; lo = 0; hi = rho * s; tau = hi; /* f(hi) >= 0 */
    }
    A = del[j];
    B = last ? 0.0 : del[j + 1];
    for (it = 0; it < 400; ++it) {
        double psi, dpsi, phi, dphi, f, q, p, t, r, a, x = 0;
        acem__secular(0, j + 1, del, z2, tau, &psi, &dpsi);
        acem__secular(j + 1, K, del, z2, tau, &phi, &dphi);
        psi *= rho; dpsi *= rho; phi *= rho; dphi *= rho;
        f = 1.0 + psi + phi;
        if (acem__fabs(f) <= 8.0 * eps * (1.0 + phi - psi)) break;
        if (f < 0) lo = tau; else hi = tau;
        q = dpsi * (A - tau) * (A - tau);
        p = psi - q / (A - tau);
        if (!last) {
            t = dphi * (B - tau) * (B - tau);
            r = phi - t / (B - tau);
        } else {
            t = 0.0;
            r = phi;
        }
        a = 1.0 + p + r;
        if (last) {
            x = a > 0 ? A + q / a : 0.5 * (lo + hi);
        } else { /* a (A - x)(B - x) + q (B - x) + t (A - x) = 0: one root in (A, B) */
            double be = -(a * (A + B) + q + t), ga = a * A * B + q * B + t * A, dsc = be * be - 4.0 * a * ga, sq, den;
            if (dsc < 0) dsc = 0;
            sq = ACEM_SQRT(dsc);
            den = be >= 0 ? -be - sq : -be + sq; /* no cancellation */
            if (den != 0) {
                double x1 = a != 0 ? den / (2.0 * a) : A, x2 = 2.0 * ga / den;
                x = (x1 > A && x1 < B) ? x1 : x2;
            }
        }
        if (!(x > lo && x < hi)) x = 0.5 * (lo + hi);
        if (acem__fabs(x - tau) <= 2.0 * eps * acem__fabs(x) || !(hi - lo > 2.0 * eps * acem__fmax(acem__fabs(lo), acem__fabs(hi)))) {
            tau = x;
            break;
        }
        tau = x;
    }
    for (i = 0; i < K; ++i) del[i] -= tau;
    *og = o;
    return tau;
}

/* Merges the solved halves [s, s+m) and [s+m, s+len) of the block at Q + s
   ldq + s (eigenvectors as columns; d ascending per half) coupled by beta:
   T = diag(T1, T2) + rho v v^T; afterwards d[s..s+len) ascending and Q's
   block the eigenvectors. w: ACEM__DC_WORK(len) doubles; gw:
   acem__dgemm_work(RB, len, len). */
static void acem__dc_merge(size_t len, size_t m, double beta, double *d, double *Q, size_t ldq, double *w, double *gw) {
    const double eps = 2.220446049250313e-16;
    const size_t rbm = acem__min(ACEM__DC_RB, len);
    double *U = w, *Ag = U + len * len, *Out = Ag + rbm * len, *Old = Out + rbm * len;
    double *z = Old + len, *dv = z + len, *dl = dv + len, *z2 = dl + len, *lam = z2 + len, *key = lam + len;
    size_t *perm = ACEM__CAST(size_t *, (void *)(key + len)), *nd = perm + len, *src = nd + len, *ty = src + len;
    size_t *rp = ty + len; /* 5 arrays in 5 n doubles */
    double rho = 2.0 * acem__fabs(beta), dmax = 0, zmax = 0, tol, r2 = 0.7071067811865476;
    size_t i, j, K = 0, nf = 0, k = (size_t)-1, a = 0, b = m, r0, nt[4] = {0, 0, 0, 0}, at[4];
    /* z = Qb^T v / |v| (|v|^2 = 2): the last row of the upper half, the first of the lower */
    for (i = 0; i < m; ++i) z[i] = Q[(m - 1) * ldq + i] * r2;
    for (i = m; i < len; ++i) z[i] = (beta < 0 ? -r2 : r2) * Q[m * ldq + i];
    for (i = 0; i < len; ++i) {
        dv[i] = d[i];
        ty[i] = i < m ? 1 : 2; /* the rows a column may be non-zero in: 1 upper, 2 lower, 3 all */
        if (acem__fabs(d[i]) > dmax) dmax = acem__fabs(d[i]);
        if (acem__fabs(z[i]) > zmax) zmax = acem__fabs(z[i]);
    }
    for (i = 0; i < len; ++i) /* the two ascending halves merged (ties: the upper first) */
        perm[i] = (b >= len || (a < m && dv[a] <= dv[b])) ? a++ : b++;
    tol = 8.0 * eps * acem__fmax(dmax, rho * zmax);
    /* deflation in ascending order: a negligible z_j, or two close d's rotated
       so that one z vanishes; nd: the columns kept for the secular equation,
       key/src: the deflated ones (eigenvalue, column) */
    for (i = 0; i < len; ++i) {
        size_t c = perm[i];
        if (rho * acem__fabs(z[c]) <= tol) {
            lam[nf] = dv[c]; src[nf++] = c;
            continue;
        }
        if (k != (size_t)-1) {
            double s = z[k], cc = z[c], tau = acem__hypot(cc, s), t = dv[c] - dv[k];
            cc /= tau;
            s = -s / tau;
            if (acem__fabs(t * cc * s) <= tol) { /* rotate columns k and c; k deflates */
                double dk = dv[k] * cc * cc + dv[c] * s * s;
                for (j = 0; j < len; ++j) {
                    double x = Q[j * ldq + k], y = Q[j * ldq + c];
                    Q[j * ldq + k] = cc * x + s * y;
                    Q[j * ldq + c] = cc * y - s * x;
                }
                dv[c] = dv[k] * s * s + dv[c] * cc * cc;
                dv[k] = dk;
                z[c] = tau;
                z[k] = 0.0;
                if (ty[k] != ty[c]) ty[c] = 3;
                lam[nf] = dv[k]; src[nf++] = k;
                k = c;
                continue;
            }
            nd[K++] = k;
        }
        k = c;
    }
    if (k != (size_t)-1) nd[K++] = k;
    for (i = 0; i < K; ++i) {
        dl[i] = dv[nd[i]];
        z2[i] = z[nd[i]] * z[nd[i]];
        ++nt[ty[nd[i]]];
    }
    /* the merge's eigenvectors are U's rows (U: their transpose, so that every
       loop below runs along memory), their components (U's columns, and the
       gathered columns of Q) by type: upper, all, lower, so that the upper
       rows of Q multiply columns [0, n1 + n3) of U, the lower rows columns
       [n1, K) (dlaed3's use of the zero blocks: half the products) */
    at[1] = 0; at[3] = nt[1]; at[2] = nt[1] + nt[3];
    for (i = 0; i < K; ++i) rp[i] = at[ty[nd[i]]]++;
    /* the roots: U[j][rp_i] = dl_i - lambda_j; then Gu and Eisenstat's z and
       the vectors */
    for (j = 0; j < K; ++j) {
        size_t o;
        double tau = acem__dc_root(K, dl, z2, rho, j, key, &o), *uj = U + j * K;
        lam[nf + j] = dl[o] + tau;
        for (i = 0; i < K; ++i) uj[rp[i]] = key[i];
    }
    /* Gu and Eisenstat: z_i^2 = -prod_j (dl_i - lambda_j) / prod_{j != i} (dl_i - dl_j),
       a row of U at a time, in U's column order (z2: the products, key: dl) */
    for (i = 0; i < K; ++i) {
        key[rp[i]] = dl[i];
        z2[rp[i]] = U[i * K + rp[i]];
    }
    for (j = 0; j < K; ++j) {
        const double *uj = U + j * K;
        acem__dmuldiv(rp[j], z2, uj, key, dl[j]);
        acem__dmuldiv(K - rp[j] - 1, z2 + rp[j] + 1, uj + rp[j] + 1, key + rp[j] + 1, dl[j]);
    }
    for (i = 0; i < K; ++i) {
        double p = z2[rp[i]];
        z2[rp[i]] = z[nd[i]] < 0 ? -ACEM_SQRT(acem__fmax(-p, 0.0)) : ACEM_SQRT(acem__fmax(-p, 0.0));
    }
    for (j = 0; j < K; ++j) { /* vector j: z_i / (dl_i - lambda_j), normalised */
        double *uj = U + j * K;
        acem__ddiv(K, z2, uj);
        acem__dscal(K, 1.0 / ACEM_SQRT(acem__ddot(K, uj, uj)), uj);
    }
    /* the final order: all len eigenvalues ascending (ties: deflated first, by position) */
    for (i = 0; i < len; ++i) { perm[i] = i; key[i] = (double)i; }
    acem__sort2(perm, len, lam, key);
    for (i = 0; i < len; ++i) d[i] = lam[perm[i]];
    for (i = 0; i < K; ++i) ty[rp[i]] = nd[i]; /* ty: the kept columns in U's row order */
    /* rows of Q in blocks (upper and lower apart): the old row's kept columns
       times U, the deflated columns copied */
    for (r0 = 0; r0 < len;) {
        size_t rb = acem__min(ACEM__DC_RB, (r0 < m ? m : len) - r0), rr, c0 = r0 < m ? 0 : nt[1];
        size_t kc = r0 < m ? nt[1] + nt[3] : K - nt[1];
        for (rr = 0; rr < rb; ++rr) {
            const double *qr = Q + (r0 + rr) * ldq;
            for (i = 0; i < kc; ++i) Ag[rr * kc + i] = qr[ty[c0 + i]];
        }
        if (K) acem__dgemm(0, 1, 0, rb, K, kc, 1.0, Ag, NULL, kc, U + c0, NULL, K, 0.0, Out, K, gw);
        for (rr = 0; rr < rb; ++rr) {
            double *qr = Q + (r0 + rr) * ldq;
            ACEM_MEMCPY(Old, qr, len * sizeof(double)); /* the deflated columns, before the row is rewritten */
            for (i = 0; i < len; ++i) {
                size_t p = perm[i];
                qr[i] = p < nf ? Old[src[p]] : Out[rr * K + (p - nf)];
            }
        }
        r0 += rb;
    }
}

/* the block [0, len) of the tridiagonal d, e (e[i] couples i and i+1) into
   Q's block (zero on entry outside the diagonal blocks already solved) */
static acem_result acem__dc_rec(size_t len, double *d, const double *e, double *Q, size_t ldq, double *w, double *gw) {
    size_t m;
    double beta;
    acem_result r;
    if (len <= ACEM__DC_LEAF) return acem__tri_ql(len, d, e, d, Q, ldq, w); /* QL with rotations, in place */
    m = len / 2;
    beta = e[m - 1];
    d[m - 1] -= acem__fabs(beta);
    d[m] -= acem__fabs(beta);
    if ((r = acem__dc_rec(m, d, e, Q, ldq, w, gw)) != ACEM_OK ||
        (r = acem__dc_rec(len - m, d + m, e + m, Q + m * ldq + m, ldq, w, gw)) != ACEM_OK)
        return r;
    acem__dc_merge(len, m, beta, d, Q, ldq, w, gw);
    return ACEM_OK;
}
/* All eigenpairs of the tridiagonal (d, e from acem__trd): eigenvalues
   ascending into d, eigenvectors as the columns of Q (n x n, ldq). The
   tridiagonal is scaled by a power of two to max norm in [0.5, 2) first (the
   deflation tolerances assume norm 1, as in dstedc). e is not changed. w:
   ACEM__DC_WORK(n) doubles; gw: acem__dgemm_work(ACEM__DC_RB, n, n). */
static acem_result acem__dc(size_t n, double *d, double *e, double *Q, size_t ldq, double *w, double *gw) {
    double mx = 0, sc = 1.0;
    size_t i, j;
    acem_result r;
    for (i = 0; i < n; ++i) {
        if (acem__fabs(d[i]) > mx) mx = acem__fabs(d[i]);
        if (i + 1 < n && acem__fabs(e[i]) > mx) mx = acem__fabs(e[i]);
        for (j = 0; j < n; ++j) Q[i * ldq + j] = i == j ? 1.0 : 0.0;
    }
    if (mx == 0.0) return ACEM_OK;
    while (mx * sc >= 2.0) sc *= 0.5;
    while (mx * sc < 0.5) sc *= 2.0;
    for (i = 0; i < n; ++i) {
        d[i] *= sc;
        if (i + 1 < n) e[i] *= sc;
    }
    r = acem__dc_rec(n, d, e, Q, ldq, w, gw);
    for (i = 0; i < n; ++i) {
        d[i] /= sc;
        if (i + 1 < n) e[i] /= sc;
    }
    return r;
}

/* All eigenvalues of the symmetric A (ascending, into w) and the eigenvectors
   of the q largest as columns of Vec (column i for w[n-1-i], ld ldvec <= n):
   tridiagonalisation, QL without vectors, inverse iteration, back-
   transformation: about (4/3) n^3 + 2 n^2 q flops, nearly all in acem__dgemm
   and acem__dsymv. With tolf > 0, eigenvalues at or below tolf^2 * lambda_max
   get zero vectors (for a Gram matrix: singular values at or below the rank
   tolerance tolf * s_1). A is destroyed; Vec must have room for n * n doubles
   (the fallback). work: ACEM__TOP_WORK(n) doubles; gw: acem__dgemm_work(n, n,
   n) doubles. E (may be NULL): the back-transformation runs on its workers.
   dcw (may be NULL): ACEM__DC_WORK(n) doubles, with which all n vectors (q =
   n) come from divide and conquer instead (no cluster costs more than
   another: see acem__dc), and so do the top q < n when the re-
   orthogonalisation's work (see acem__steig) passes dclim (ACEM__DC_TOP(n);
   the tests pass 0 to force it). (The _its forms take the inverse
   iteration's limit: 0 forces the fallback, for the tests.) */
static acem_result acem__syev_top_its(size_t n, double *A, size_t lda, size_t q, double tolf, double *w,
                                      double *Vec, size_t ldvec, double *work, double *gw, int maxits,
                                      const acem__exec *E, double *dcw, double dclim) {
    double *d = work, *e = d + n, *tau = e + n, *sw = tau + n, *X = sw + ACEM__STEIN_WORK(n), *Tf = X + ACEM__XWORK(n);
    double sc, vmin;
    size_t i, c;
    int all = 0;
    acem_result r;
    if (!n) return ACEM_OK;
    if ((sc = acem__eig_scale(n, A, lda)) == 0.0) return ACEM_ERR_NONFINITE;
    acem__scale_sq(n, A, lda, sc);
    if (q > n) q = n;
    acem__trd(n, A, lda, d, e, tau, X, Tf, gw, E);
    if (dcw && q == n && maxits > 0) {
        all = 1;
    } else {
        r = acem__steig(n, d, e, q, tolf, w, Vec, ldvec, sw, gw, maxits, E, dclim, dcw && maxits > 0 ? &all : NULL);
    }
    if (all) { /* every vector by divide and conquer (then the top q are kept) */
        for (i = 0; i < n; ++i) w[i] = d[i];
        r = acem__dc(n, w, e, Vec, n, dcw, gw);
    }
    if (r == ACEM_ERR_NO_CONVERGENCE) { /* rotate instead (Vec as n x n) */
        r = acem__tri_ql(n, d, e, w, Vec, n, sw);
        all = 1;
    }
    if (r != ACEM_OK) return r;
    if (all) { /* Vec holds every vector ascending (ld n): keep the top q, descending */
        vmin = tolf > 0 ? tolf * tolf * w[n - 1] : -1e308;
        for (i = 0; i < n; ++i) {
            for (c = 0; c < q; ++c) sw[c] = w[n - 1 - c] > vmin ? Vec[i * n + n - 1 - c] : 0.0;
            for (c = 0; c < q; ++c) Vec[i * ldvec + c] = sw[c];
        }
    }
    acem__pbacktr(E, n, A, lda, Tf, Vec, ldvec, q, X, gw);
    for (i = 0; i < n; ++i) w[i] /= sc;
    return ACEM_OK;
}

#ifdef ACEM_USE_LAPACK
/* LAPACK's MRRR (dsyevr) for the top q pairs (all when q = n) of the scaled A:
   eigenvalues ascending into w[n-q..n) (0 below), Z (n x q, column-major)
   into Zc, then A is free and serves for the transposition into Vec. work:
   ACEM__LAPACK_WORK(n) doubles. */
#define ACEM__LAPACK_WORK(n) (26 * (n) + 6 * (n) + 2)
static acem_result acem__dsyevr(size_t n, double *A, size_t lda, size_t q, double *w, double *Zc, double *work) {
    lapack_int m = 0, info, *iw = ACEM__CAST(lapack_int *, (void *)(work + 26 * n));
    size_t i;
    if (n > 0x7fffffffu || lda > 0x7fffffffu) return ACEM_ERR_INVALID_ARGUMENT;
    /* abstol = 2 x the safe minimum: eigenvalues to high relative accuracy (with
       the default, LoRA tests with a zero delta in a gated layer, where the
       Gram spans 1e17, got eigenvectors too rough for the rank tolerance) */
    info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'V', q == n ? 'A' : 'I', 'U', (lapack_int)n, A, (lapack_int)lda, 0.0,
                               0.0, (lapack_int)(n - q + 1), (lapack_int)n, 4.450147717014403e-308, &m, w + (n - q), Zc,
                               (lapack_int)n, iw + 10 * n, work, (lapack_int)(26 * n), iw, (lapack_int)(10 * n));
    if (info != 0 || (size_t)m != q) return info < 0 ? ACEM_ERR_INVALID_ARGUMENT : ACEM_ERR_NO_CONVERGENCE;
    for (i = 0; i + q < n; ++i) w[i] = 0.0;
    return ACEM_OK;
}
#endif
static acem_result acem__syev_top(size_t n, double *A, size_t lda, size_t q, double tolf, double *w, double *Vec,
                                  size_t ldvec, double *work, double *gw, const acem__exec *E, double *dcw) {
#ifdef ACEM_USE_LAPACK
    double sc, vmin;
    size_t i, c;
    acem_result r;
    (void)gw; (void)E; (void)dcw;
    (void)acem__syev_top_its; /* the own solver stays for the tests */
    if (!n) return ACEM_OK;
    if ((sc = acem__eig_scale(n, A, lda)) == 0.0) return ACEM_ERR_NONFINITE;
    acem__scale_sq(n, A, lda, sc);
    if (q > n) q = n;
    if (!q) q = 1;
    if ((r = acem__dsyevr(n, A, lda, q, w, Vec, work)) != ACEM_OK) return r;
    vmin = tolf > 0 ? tolf * tolf * w[n - 1] : -1e308;
    for (i = 0; i < n; ++i) /* Vec column c is Z's column q-1-c (descending), through A */
        for (c = 0; c < q; ++c) A[i * lda + c] = w[n - 1 - c] > vmin ? Vec[(q - 1 - c) * n + i] : 0.0;
    for (i = 0; i < n; ++i)
        for (c = 0; c < q; ++c) Vec[i * ldvec + c] = A[i * lda + c];
    for (i = 0; i < n; ++i) w[i] /= sc;
    return ACEM_OK;
#else
    return acem__syev_top_its(n, A, lda, q, tolf, w, Vec, ldvec, work, gw, ACEM__STEIN_MAXITS, E, dcw, ACEM__DC_TOP(n));
#endif
}

/* packed copy of the panels' V (acem_syev): NB rows of n-1-i0 per panel */
static size_t acem__vpack(size_t n) {
    size_t b, s = 0;
    for (b = 0; b < ACEM__NBT(n); ++b) s += acem__min(ACEM__BT_NB, n - b * ACEM__BT_NB) * (n - 1 - b * ACEM__BT_NB);
    return s;
}
ACEMDEF size_t acem_syev_work_bytes(size_t n) {
    size_t own = ACEM__TOP_WORK(n) + acem__vpack(n) + acem__dgemm_work(n, n, n) + ACEM__DC_WORK(n);
#ifdef ACEM_USE_LAPACK /* or dsyevr's eigenvectors (n x n) and its workspace */
    own = acem__max(own, n * n + ACEM__LAPACK_WORK(n) + 1);
#endif
    return own * sizeof(double);
}

/* Every eigenpair: tridiagonalisation, the Householder vectors moved to the
   workspace (about n^2/2 doubles) so that the eigenvectors of the
   tridiagonal can be built in A by divide and conquer (acem__dc) and
   transformed there (2 n^3 flops of GEMM). maxits 0 (the tests): QL with
   rotations instead of divide and conquer, the fallback should a QL leaf of
   it not converge. */
static acem_result acem__syev_its(size_t n, double *A, size_t lda, double *w, void *work, int maxits) {
    double *d = ACEM__CAST(double *, work), *e = d + n, *tau = e + n, *sw = tau + n, *X = sw + ACEM__STEIN_WORK(n);
    double *Tf = X + ACEM__XWORK(n), *Vp = Tf + ACEM__NBT(n) * ACEM__TLD(n) * ACEM__TLD(n) + 1;
    double *gw = Vp + acem__vpack(n), *dcw = gw + acem__dgemm_work(n, n, n), sc;
    size_t i, b, off = 0;
    acem_result r = ACEM_ERR_NO_CONVERGENCE;
    if (!n) return ACEM_OK;
    if ((sc = acem__eig_scale(n, A, lda)) == 0.0) return ACEM_ERR_NONFINITE;
    acem__scale_sq(n, A, lda, sc);
    acem__trd(n, A, lda, d, e, tau, X, Tf, gw, NULL);
    for (b = 0; b < ACEM__NBT(n); ++b) {
        size_t i0 = b * ACEM__BT_NB, bs = acem__min(ACEM__BT_NB, n - i0), m0 = n - 1 - i0;
        for (i = 0; i < bs && m0; ++i) ACEM_MEMCPY(Vp + off + i * m0, A + (i0 + i) * lda + i0 + 1, m0 * sizeof(double));
        off += bs * m0;
    }
    if (maxits > 0) {
        for (i = 0; i < n; ++i) w[i] = d[i];
        r = acem__dc(n, w, e, A, lda, dcw, gw);
    }
    if (r == ACEM_ERR_NO_CONVERGENCE) r = acem__tri_ql(n, d, e, w, A, lda, sw);
    if (r != ACEM_OK) return r;
    acem__backtr(n, Vp, 0, Tf, A, lda, n, X, gw);
    for (i = 0; i < n; ++i) w[i] /= sc;
    return ACEM_OK;
}

ACEMDEF acem_result acem_syev(size_t n, double *A, size_t lda, double *w, void *work) {
#ifdef ACEM_USE_LAPACK
    double *Z = ACEM__CAST(double *, work), sc;
    size_t i, j;
    acem_result r;
    if (!n) return ACEM_OK;
    if ((sc = acem__eig_scale(n, A, lda)) == 0.0) return ACEM_ERR_NONFINITE;
    acem__scale_sq(n, A, lda, sc);
    if ((r = acem__dsyevr(n, A, lda, n, w, Z, Z + n * n)) != ACEM_OK) return r;
    for (i = 0; i < n; ++i) { /* eigenvector j is Z's column j, A's column j */
        for (j = 0; j < n; ++j) A[i * lda + j] = Z[j * n + i];
        w[i] /= sc;
    }
    (void)acem__syev_its; /* the own pipeline stays for the tests */
    return ACEM_OK;
#else
    return acem__syev_its(n, A, lda, w, work, ACEM__STEIN_MAXITS);
#endif
}

/* G (n x n, f64, full) = F^T F (trans=1, F is k x n) or F F^T (trans=0, F is
   n x k), accumulated in f64 from f32 input (an f32 Gram would bury the small
   singular values under noise of order sqrt(eps) s_1): the lower triangle by
   acem__dgemm, which widens F while packing, then mirrored.
   gw: acem__dgemm_work(n, n, k) doubles. */
static void acem__gram_f64(int trans, size_t n, size_t k, const float *F, size_t ldf, double *G, size_t ldg,
                           double *gw) {
    size_t i, j;
    acem__dgemm(trans, !trans, 1, n, n, k, 1.0, NULL, F, ldf, NULL, F, ldf, 0.0, G, ldg, gw);
    for (i = 0; i < n; ++i)
        for (j = i + 1; j < n; ++j) G[i * ldg + j] = G[j * ldg + i];
}

/* =========================================================================== */
/* regular expressions for exclusion patterns (NFA simulation, no allocation)  */
/* =========================================================================== */
/* Parsed into a small node array on the stack: each node is an atom with a
   repetition range; GROUP nodes hold alternatives (branch heads), each branch a
   chain through `next`. The nodes are then compiled into a Thompson NFA
   program (consume a byte, split, jump, assert ^ or $, match) that is run on
   all its states at once, one text byte at a time (Pike's method): time
   linear in the text, for any pattern, and a fixed stack (names and patterns
   may come from untrusted files; a backtracking matcher is exponential on
   patterns like (a|aa)*c and recurses once per repetition). */
#define ACEM__RE_MAXN 128
#define ACEM__RE_MAXI 512 /* program instructions; longer programs are rejected */
enum { ACEM__RE_CHAR, ACEM__RE_ANY, ACEM__RE_CLASS, ACEM__RE_BOL, ACEM__RE_EOL, ACEM__RE_GROUP, ACEM__RE_SPLIT,
       ACEM__RE_JMP, ACEM__RE_MATCH };
typedef struct acem__re_node {
    int kind, next, min, max; /* max -1: unbounded */
    int c;                    /* CHAR: the byte; CLASS: offset of '[' in pattern */
    int nbr, br[16];          /* GROUP: branch heads (-1 for an empty branch) */
} acem__re_node;
typedef struct acem__re_ins {
    int op, x, y;             /* CHAR: x the byte; CLASS: x as acem__re_node.c; SPLIT: x, y; JMP: x */
} acem__re_ins;
typedef struct acem__re {
    const char *pat;
    acem__re_node n[ACEM__RE_MAXN];
    int count, err;
    acem__re_ins prog[ACEM__RE_MAXI];
    int np;
} acem__re;

static int acem__re_new(acem__re *re, int kind) {
    acem__re_node *nd;
    if (re->count >= ACEM__RE_MAXN) { re->err = 1; return -1; }
    nd = &re->n[re->count];
    nd->kind = kind; nd->next = -1; nd->min = 1; nd->max = 1; nd->c = 0; nd->nbr = 0;
    return re->count++;
}
static int acem__re_class_end(const char *p, int i) { /* i at '[': index of closing ']' or -1 */
    ++i;
    if (p[i] == '^') ++i;
    if (p[i] == ']') ++i;
    while (p[i] && p[i] != ']') {
        if (p[i] == '\\' && p[i + 1]) ++i;
        ++i;
    }
    return p[i] == ']' ? i : -1;
}
static int acem__re_alt(acem__re *re, int *pos);
static int acem__re_seq(acem__re *re, int *pos) { /* returns head of chain or -1 */
    const char *p = re->pat;
    int head = -1, tail = -1;
    while (p[*pos] && p[*pos] != '|' && p[*pos] != ')' && !re->err) {
        int i = *pos, nd;
        char ch = p[i];
        if (ch == '(') {
            int g = acem__re_new(re, ACEM__RE_GROUP), sub;
            *pos = i + 1;
            if (g < 0) return -1;
            sub = acem__re_alt(re, pos);
            if (re->err || p[*pos] != ')') { re->err = 1; return -1; }
            ++*pos;
            (void)sub;
            nd = g;
        } else if (ch == '[') {
            int e = acem__re_class_end(p, i);
            if (e < 0) { re->err = 1; return -1; }
            nd = acem__re_new(re, ACEM__RE_CLASS);
            if (nd < 0) return -1;
            re->n[nd].c = i;
            *pos = e + 1;
        } else if (ch == '.') { nd = acem__re_new(re, ACEM__RE_ANY); *pos = i + 1; }
        else if (ch == '^') { nd = acem__re_new(re, ACEM__RE_BOL); *pos = i + 1; }
        else if (ch == '$') { nd = acem__re_new(re, ACEM__RE_EOL); *pos = i + 1; }
        else if (ch == '*' || ch == '+' || ch == '?' || ch == '{') { re->err = 1; return -1; }
        else if (ch == '\\') {
            char e = p[i + 1];
            if (!e) { re->err = 1; return -1; }
            if (e == 'd' || e == 'w' || e == 's' || e == 'D' || e == 'W' || e == 'S') {
                nd = acem__re_new(re, ACEM__RE_CLASS);
                if (nd < 0) return -1;
                re->n[nd].c = -(int)(unsigned char)e; /* shorthand class */
            } else {
                nd = acem__re_new(re, ACEM__RE_CHAR);
                if (nd < 0) return -1;
                re->n[nd].c = (unsigned char)(e == 'n' ? '\n' : e == 't' ? '\t' : e);
            }
            *pos = i + 2;
        } else {
            nd = acem__re_new(re, ACEM__RE_CHAR);
            if (nd < 0) return -1;
            re->n[nd].c = (unsigned char)ch;
            *pos = i + 1;
        }
        if (nd < 0) return -1;
        /* quantifiers */
        while (p[*pos] == '*' || p[*pos] == '+' || p[*pos] == '?') {
            acem__re_node *q = &re->n[nd];
            char c = p[*pos];
            if (q->kind == ACEM__RE_BOL || q->kind == ACEM__RE_EOL) { re->err = 1; return -1; }
            if (!(q->min == 1 && q->max == 1)) { re->err = 1; return -1; } /* a** etc. */
            if (c == '*') { q->min = 0; q->max = -1; }
            else if (c == '+') { q->min = 1; q->max = -1; }
            else { q->min = 0; q->max = 1; }
            ++*pos;
        }
        if (tail >= 0) re->n[tail].next = nd; else head = nd;
        tail = nd;
    }
    return head;
}
/* parses alternatives into the GROUP node created just before (re->count-1
   at entry for groups) or a top-level group */
static int acem__re_alt(acem__re *re, int *pos) {
    int g = re->count - 1;
    for (;;) {
        int h = acem__re_seq(re, pos);
        if (re->err) return -1;
        if (re->n[g].nbr >= 16) { re->err = 1; return -1; }
        re->n[g].br[re->n[g].nbr++] = h;
        if (re->pat[*pos] != '|') break;
        ++*pos;
    }
    return g;
}
/* the program: an instruction appended (its index), or -1 when full */
static int acem__re_emit(acem__re *re, int op, int x, int y) {
    if (re->np >= ACEM__RE_MAXI) { re->err = 1; return -1; }
    re->prog[re->np].op = op; re->prog[re->np].x = x; re->prog[re->np].y = y;
    return re->np++;
}
static void acem__re_emit_chain(acem__re *re, int h);
static void acem__re_emit_atom(acem__re *re, const acem__re_node *nd) {
    int b, s, jmp[16];
    if (nd->kind != ACEM__RE_GROUP) {
        acem__re_emit(re, nd->kind, nd->c, 0);
        return;
    }
    for (b = 0; b < nd->nbr && !re->err; ++b) { /* b1 | b2 | ...: split to each, jump past the rest */
        s = b + 1 < nd->nbr ? acem__re_emit(re, ACEM__RE_SPLIT, re->np + 1, 0) : -1;
        acem__re_emit_chain(re, nd->br[b]);
        if (s < 0 || re->err) break;
        jmp[b] = acem__re_emit(re, ACEM__RE_JMP, 0, 0);
        if (re->err) return;
        re->prog[s].y = re->np;
    }
    if (!re->err)
        for (b = 0; b + 1 < nd->nbr; ++b) re->prog[jmp[b]].x = re->np;
}
static void acem__re_emit_chain(acem__re *re, int h) {
    for (; h >= 0 && !re->err; h = re->n[h].next) {
        const acem__re_node *nd = &re->n[h];
        int s, l = re->np;
        if (nd->min == 1 && nd->max == 1) {
            acem__re_emit_atom(re, nd);
        } else if (nd->min == 1) { /* e+: e, then split back or on */
            acem__re_emit_atom(re, nd);
            acem__re_emit(re, ACEM__RE_SPLIT, l, re->np + 1);
        } else if ((s = acem__re_emit(re, ACEM__RE_SPLIT, re->np + 1, 0)) >= 0) { /* e? and e* */
            acem__re_emit_atom(re, nd);
            if (nd->max < 0) acem__re_emit(re, ACEM__RE_JMP, s, 0);
            if (!re->err) re->prog[s].y = re->np;
        }
    }
}
static int acem__re_compile(acem__re *re, const char *pat) {
    int pos = 0;
    re->pat = pat; re->count = 0; re->err = 0; re->np = 0;
    if (acem__re_new(re, ACEM__RE_GROUP) < 0) return -1;
    acem__re_alt(re, &pos);
    if (re->err || pat[pos] != 0) return -1;
    acem__re_emit_chain(re, 0);
    acem__re_emit(re, ACEM__RE_MATCH, 0, 0);
    return re->err ? -1 : 0;
}
static int acem__re_in_class(const acem__re *re, int c, unsigned char ch) {
    const char *p;
    int i, neg = 0, hit = 0;
    if (c < 0) {
        int k = -c, lower = k | 32, r;
        if (lower == 'd') r = ch >= '0' && ch <= '9';
        else if (lower == 'w') r = (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z') || ch == '_';
        else r = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
        return (k >= 'a') ? r : !r;
    }
    p = re->pat;
    i = c + 1;
    if (p[i] == '^') { neg = 1; ++i; }
    do {
        unsigned char lo = (unsigned char)p[i], hi;
        if (lo == '\\') lo = (unsigned char)p[++i];
        hi = lo;
        if (p[i + 1] == '-' && p[i + 2] && p[i + 2] != ']') {
            i += 2;
            hi = (unsigned char)p[i];
            if (hi == '\\') hi = (unsigned char)p[++i];
        }
        if (ch >= lo && ch <= hi) hit = 1;
        ++i;
    } while (p[i] != ']');
    return hit != neg;
}
/* adds pc and what it reaches without consuming (at text position s) to the
   state list l (n states, each once: mark[pc] == gen); 1 if MATCH is reached.
   stk: room for 2 ACEM__RE_MAXI entries (each instruction pushes at most 2 and
   is expanded once) */
static int acem__re_add(const acem__re *re, short *l, int *n, int pc, const char *s, const char *text, int *mark,
                        int gen, short *stk) {
    int sp = 0;
    stk[sp++] = (short)pc;
    while (sp > 0) {
        const acem__re_ins *in;
        pc = stk[--sp];
        if (mark[pc] == gen) continue;
        mark[pc] = gen;
        in = &re->prog[pc];
        switch (in->op) {
        case ACEM__RE_MATCH: return 1;
        case ACEM__RE_JMP: stk[sp++] = (short)in->x; break;
        case ACEM__RE_SPLIT: stk[sp++] = (short)in->y; stk[sp++] = (short)in->x; break;
        case ACEM__RE_BOL: if (s == text) stk[sp++] = (short)(pc + 1); break;
        case ACEM__RE_EOL: if (!*s) stk[sp++] = (short)(pc + 1); break;
        default: l[(*n)++] = (short)pc; break; /* consumes a byte */
        }
    }
    return 0;
}
ACEMDEF acem_result acem_regex_check(const char *pattern) {
    acem__re re;
    if (!pattern) return ACEM_ERR_BAD_PATTERN;
    return acem__re_compile(&re, pattern) ? ACEM_ERR_BAD_PATTERN : ACEM_OK;
}
ACEMDEF int acem_regex_search(const char *pattern, const char *text) {
    acem__re re;
    short la[ACEM__RE_MAXI], lb[ACEM__RE_MAXI], stk[2 * ACEM__RE_MAXI], *cl = la, *nl = lb, *t;
    int mark[ACEM__RE_MAXI], nc = 0, nn, i, gen = 1;
    const char *s = text;
    if (!pattern || !text || acem__re_compile(&re, pattern)) return 0;
    for (i = 0; i < re.np; ++i) mark[i] = 0;
    /* search: a thread starts at every position, the first with the list */
    if (acem__re_add(&re, cl, &nc, 0, s, text, mark, gen, stk)) return 1;
    for (; *s; ++s) {
        unsigned char ch = (unsigned char)*s;
        ++gen;
        nn = 0;
        for (i = 0; i < nc; ++i) {
            const acem__re_ins *in = &re.prog[cl[i]];
            int ok = in->op == ACEM__RE_CHAR ? ch == (unsigned char)in->x
                     : in->op == ACEM__RE_ANY ? ch != '\n'
                     : acem__re_in_class(&re, in->x, ch);
            if (ok && acem__re_add(&re, nl, &nn, cl[i] + 1, s + 1, text, mark, gen, stk)) return 1;
        }
        if (acem__re_add(&re, nl, &nn, 0, s + 1, text, mark, gen, stk)) return 1;
        t = cl; cl = nl; nl = t;
        nc = nn;
    }
    return 0;
}

/* =========================================================================== */
/* options and rules                                                           */
/* =========================================================================== */
ACEMDEF acem_options acem_options_default(void) {
    acem_options o;
    ACEM_MEMSET(&o, 0, sizeof o);
    return o;
}
ACEMDEF const char *acem_method_name(acem_method m) {
    static const char *const names[] = {
#define ACEM__NAME(code, name) name,
        ACEM_METHOD_LIST(ACEM__NAME)
#undef ACEM__NAME
    };
    if ((int)m < 0 || (int)m >= (int)ACEM_METHOD_COUNT) return "unknown";
    return names[m];
}
ACEMDEF acem_method acem_method_from_name(const char *name) {
    int m;
    if (!name) return ACEM_METHOD_COUNT;
    for (m = 0; m < (int)ACEM_METHOD_COUNT; ++m) {
        const char *a = acem_method_name((acem_method)m), *b = name;
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) { ++a; ++b; }
        if (!*a && !*b) return (acem_method)m;
    }
    return ACEM_METHOD_COUNT;
}
ACEMDEF const char *acem_rule_name(acem_rule r) {
    return r == ACEM_RULE_METHOD ? "method" : r == ACEM_RULE_MEAN ? "mean" : r == ACEM_RULE_KEEP ? "keep" : "unknown";
}
static int acem__elementwise(acem_method m) {
    return m == ACEM_AVERAGE || m == ACEM_TASK_ARITHMETIC || m == ACEM_TIES || m == ACEM_DARE_TA ||
           m == ACEM_DARE_TIES;
}
ACEMDEF acem_result acem_options_resolve(const acem_options *in, acem_options *o, acem_error *err) {
    size_t i;
    acem_options z;
    ACEM_MEMSET(&z, 0, sizeof z);
    *o = in ? *in : z;
    if ((int)o->method < 0 || (int)o->method >= (int)ACEM_METHOD_COUNT)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "unknown method %d", (int)o->method);
    if (o->eps == 0) o->eps = 1e-2;
    if (o->tau == 0) o->tau = 0.3;
    if (o->k_frac == 0) o->k_frac = 0.3;
    if (o->lambda == 0) o->lambda = (o->method == ACEM_TASK_ARITHMETIC || o->method == ACEM_DARE_TA) ? 0.3 : 1.0;
    if (o->density == 0) o->density = 0.2;
    if (o->drop == 0) o->drop = 0.5;
    if (!(o->eps > 0) || o->eps != o->eps || o->eps > 1e30)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "eps must be a positive number (got %g)", o->eps);
    if (!(o->tau > -1e300 && o->tau < 1e300))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tau must be finite (got %g)", o->tau);
    if (!(o->k_frac > 0 && o->k_frac <= 1))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "k_frac must be in (0, 1] (got %g)", o->k_frac);
    if (!(o->lambda > -1e30 && o->lambda < 1e30))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "lambda must be finite (got %g)", o->lambda);
    if (!(o->density > 0 && o->density <= 1))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "density must be in (0, 1] (got %g)", o->density);
    if (!(o->drop > 0 && o->drop < 1))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "drop must be in (0, 1) (got %g)", o->drop);
    if ((o->flags & ACEM_FLAG_NO_GATE) && (o->flags & ACEM_FLAG_ALWAYS_GATE))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "flags NO_GATE and ALWAYS_GATE exclude each other");
    if (o->n_exclude && !o->exclude)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "n_exclude is %zu but exclude is NULL", o->n_exclude);
    for (i = 0; i < o->n_exclude; ++i)
        if (acem_regex_check(o->exclude[i]) != ACEM_OK)
            return acem__fail(err, ACEM_ERR_BAD_PATTERN, "bad exclusion pattern '%s'", o->exclude[i] ? o->exclude[i] : "(null)");
    return ACEM_OK;
}

static int acem__contains(const char *s, const char *sub) {
    size_t n = acem__strlen(sub), i;
    for (; *s; ++s) {
        for (i = 0; i < n && s[i] == sub[i]; ++i) {}
        if (i == n) return 1;
    }
    return 0;
}
ACEMDEF acem_rule acem_tensor_rule(const acem_options *opt, const char *name, size_t ndim) {
    size_t i;
    acem_method m = opt ? opt->method : ACEM_ACE;
    if (opt && name)
        for (i = 0; i < opt->n_exclude; ++i)
            if (opt->exclude && acem_regex_search(opt->exclude[i], name)) return ACEM_RULE_KEEP;
    if (acem__elementwise(m)) return ACEM_RULE_METHOD;
    if (ndim != 2 || (name && acem__contains(name, "text_projection"))) return ACEM_RULE_MEAN;
    return ACEM_RULE_METHOD;
}

/* =========================================================================== */
/* merge rules: one tensor streamed expert by expert through a fixed arena     */
/* =========================================================================== */
/* Buffer slots in acem_layer.buf, per method (see acem__layout):
     ACE     0 Dc (RxC)  1 Q=sum Dc_t Sigma_t  2 E=sum e_t Dc_t, later B, W_pre
             3 S=sum Dc_t (T=1: the delta)  4 square region (Sacc C x C f32 + tmp,
             later the f64 Gram of F)  5 f64 vectors  6 saved diagonal  7 eigen
             values + ACEM__TOP_WORK  8 pivots  9 gemm workspace (f32 and f64
             kernels)  11 eigenvectors (n x n f64)
     ACTMAT  0 D  1 N=sum D_t C_t  4 square (G f32 + tmp, later f64)  5 V32 (C x C),
             first the eigensolver's workspace  7 eigenvalues  9 gemm
     ISO_C   0 acc  1 V (C x n)  2 U (R x n)  4 square (f64 n x n)  7 eigen  9 gemm
             11 eigenvectors
     TSV_M   0 D  1 U_all (R x n)  2 V_all (C x n)  3 s_all  4 three squares
             (Gu, Gv, P, f64, acem__tsvm_sq each)  7 eigen  9 gemm  11 eigenvectors
     TIES    0 sum / agreeing sum (fused: outputs kept aside)  1 elected sign (int8;
             fused: marks)  2 counts (uint16; before: selection candidates, fused:
             chunk marks)  3 histogram  4 thresholds of the first
             acem__ties_thc() experts  9 per-worker scratch
     others  0 acc  9 per-worker scratch (also the mean rule)                         */
enum { ACEM__ST_MEAN_L, ACEM__ST_M2_L, ACEM__ST_SUM_N, ACEM__ST_ESUM, ACEM__ST_GATED, ACEM__ST_GAMMA };
#define ACEM__HIST_BINS 4096
/* element-wise rules (see "element-wise rules: the loops" below): chunk and
   sub-block sizes in elements, per-worker scratch bytes, TIES thresholds kept
   between the passes (experts beyond: recomputed), and the tensor size from
   which TIES selects its threshold from a sample */
#if !defined(ACEM_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#define ACEM__EW_AVX2 1
#endif
#define ACEM__EW_CHUNK 16384
#define ACEM__EW_SUB 256                          /* at most; min(this, n rounded up to 8) */
#define ACEM__EW_HDR 320                          /* lane header (>= sizeof(acem__ew_lane)) */
#define ACEM__TIES_G 4                            /* TIES thresholds selected together */
#define ACEM__TIES_THC 1024                       /* at most; min(this, n) */
#define ACEM__TIES_SAMPLED 32768                  /* from this size on, select by sampling */
#define ACEM__EW_PF 512                           /* software prefetch distance (elements) */
#define ACEM__GATHER_PF 32                        /* the same for the TIES sample (values) */

/* TIES thresholds kept between the passes: up to ACEM__TIES_THC, and no more
   than the tensor has elements (a small tensor recomputes them cheaply) */
static size_t acem__ties_thc(const acem_layer *L) { return acem__min(ACEM__TIES_THC, L->rows * L->cols); }
static uint64_t acem__mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t acem__fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    if (!s) return 0;
    while (*s) { h ^= (unsigned char)*s++; h *= 0x100000001b3ull; }
    return h;
}

static size_t acem__workers(const acem_options *o) {
    return o->parallel_for ? (o->n_workers ? o->n_workers : 1) : 1;
}
/* TSV-M's squares Gu, Gv, P (f64): each also serves as an eigensolver workspace */
static size_t acem__tsvm_sq(size_t n) {
    return acem__max(n * n, (acem_syev_work_bytes(n) + sizeof(double) - 1) / sizeof(double));
}
/* element-wise sub-block length (a multiple of 8) and per-worker scratch: a
   header, and where sub-blocks are used (DARE; everything in plain C builds)
   2 arrays of a sub-block (TIES: 8) */
static size_t acem__ew_sub(size_t n) { return acem__min(ACEM__EW_SUB, (n + 7u) & ~(size_t)7u); }
static size_t acem__ew_work_bytes(const acem_layer *L, size_t n) {
    int ties = L->rule == ACEM_RULE_METHOD && (L->opt.method == ACEM_TIES || L->opt.method == ACEM_DARE_TIES);
    int dare = L->rule == ACEM_RULE_METHOD && (L->opt.method == ACEM_DARE_TA || L->opt.method == ACEM_DARE_TIES);
    size_t arrays = ties ? 8u : 2u, b;
#if defined(ACEM__EW_AVX2)
    if (!dare) arrays = 0;
#else
    (void)dare;
#endif
    b = ACEM__EW_HDR + arrays * acem__ew_sub(n) * 4u;
    return (b + 63u) & ~(size_t)63u;
}
/* the layer's executor: the caller's parallel_for, one kernel scratch per worker (buf[9]) */
static acem__exec acem__lexec(const acem_layer *L) {
    acem__exec X;
    X.pfor = L->opt.parallel_for;
    X.user = L->opt.parallel_user;
    X.lanes = acem__workers(&L->opt);
    X.work = ACEM__CAST(unsigned char *, L->buf[9]);
    X.work_bytes = L->work_bytes;
    return X;
}
/* fixed chunks c = 0 .. nchunks-1 on the layer's workers (chunk c on lane c mod lanes) */
static void acem__lrun(const acem_layer *L, size_t nchunks, acem__part_fn fn, void *ctx) {
    acem__exec X = acem__lexec(L);
    acem__run(&X, nchunks, fn, ctx);
}

/* the kernel scratch of one lane for an R x C layer: the f32 GEMMs' packing, or
   the f64 Gram / eigen back-transformation's, whichever is larger */
static size_t acem__lane_bytes(size_t R, size_t C) {
    size_t n = acem__min(R, C), mx = acem__max(R, C);
    size_t f64 = acem__max(ACEM__LANE_F64(mx, n), ACEM__STEIN_LANE(n)); /* the inverse iteration's too */
    return (acem__max(acem_gemm_work_bytes(mx, mx, mx), f64 * sizeof(double)) + 63u) & ~(size_t)63u;
}
static void acem__layout(acem_layer *L, acem__arena *a) {
    size_t R = L->rows, C = L->cols, n = acem__min(R, C), RC = 0;
    void **b = L->buf;
    int i;
    for (i = 0; i < 16; ++i) b[i] = NULL;
    L->work_bytes = acem__lane_bytes(R, C);
    if (acem__mul_ovf(R, C, &RC)) { a->overflow = 1; return; }
    if (L->rule == ACEM_RULE_KEEP || RC == 0) return;
    if (L->rule == ACEM_RULE_MEAN) {
        b[0] = acem__take(a, RC, sizeof(float));
        L->work_bytes = acem__ew_work_bytes(L, RC);
        b[9] = acem__take(a, acem__workers(&L->opt) * L->work_bytes, 1);
        return;
    }
    switch (L->opt.method) {
    case ACEM_ACE: /* Dc, Q and S adjacent: free while the refinement's eigensolver runs (its divide and conquer) */
        b[0] = acem__take(a, RC, sizeof(float));
        b[1] = acem__take(a, RC, sizeof(float));
        b[3] = acem__take(a, RC, sizeof(float));
        b[2] = acem__take(a, RC, sizeof(float));
        b[4] = acem__take(a, C * C, sizeof(double));
        b[5] = acem__take(a, 5 * C + (2 * C + 1) * acem__nslots(R), sizeof(double));
        b[6] = acem__take(a, C, sizeof(float));
        b[7] = acem__take(a, n + ACEM__TOP_WORK(n), sizeof(double));
        b[8] = acem__take(a, C, sizeof(size_t));
        b[9] = acem__take(a, acem__workers(&L->opt) * L->work_bytes, 1);
        b[11] = acem__take(a, n * n, sizeof(double));
        break;
    case ACEM_ACTMAT:
        b[0] = acem__take(a, RC, sizeof(float));
        b[1] = acem__take(a, RC, sizeof(float));
        b[4] = acem__take(a, C * C, sizeof(double));
        b[5] = acem__take(a, acem__max(C * C * sizeof(float), acem_syev_work_bytes(C)), 1);
        b[7] = acem__take(a, C, sizeof(double));
        b[9] = acem__take(a, acem__workers(&L->opt) * L->work_bytes, 1);
        break;
    case ACEM_ISO_C:
        b[0] = acem__take(a, RC, sizeof(float));
        b[1] = acem__take(a, C * n, sizeof(float));
        b[2] = acem__take(a, R * n, sizeof(float));
        b[4] = acem__take(a, n * n, sizeof(double));
        b[7] = acem__take(a, n + ACEM__TOP_WORK(n), sizeof(double));
        b[9] = acem__take(a, acem__workers(&L->opt) * L->work_bytes, 1);
        b[11] = acem__take(a, n * n, sizeof(double));
        b[12] = acem__take(a, ACEM__DC_WORK(n), sizeof(double)); /* every singular pair: divide and conquer */
        break;
    case ACEM_TSV_M:
        b[0] = acem__take(a, RC, sizeof(float));
        b[1] = acem__take(a, R * n, sizeof(float));
        b[2] = acem__take(a, C * n, sizeof(float));
        b[3] = acem__take(a, n, sizeof(double));
        b[4] = acem__take(a, 3 * acem__tsvm_sq(n), sizeof(double));
        b[7] = acem__take(a, n + ACEM__TOP_WORK(n), sizeof(double));
        b[9] = acem__take(a, acem__workers(&L->opt) * L->work_bytes, 1);
        b[11] = acem__take(a, acem__max(n * n, acem__dgemm_work(n, n, n)), sizeof(double)); /* finish: gw */
        break;
    case ACEM_TIES:
    case ACEM_DARE_TIES:
        b[0] = acem__take(a, RC, sizeof(float));
        b[1] = acem__take(a, RC, sizeof(signed char));
        b[2] = acem__take(a, RC, sizeof(uint16_t));
        b[3] = acem__take(a, ACEM__HIST_BINS, sizeof(size_t));
        b[4] = acem__take(a, acem__min(ACEM__TIES_THC, RC), sizeof(uint32_t));
        L->work_bytes = acem__ew_work_bytes(L, RC);
        b[9] = acem__take(a, acem__workers(&L->opt) * L->work_bytes, 1);
        break;
    default: /* average, task arithmetic, DARE-TA */
        b[0] = acem__take(a, RC, sizeof(float));
        L->work_bytes = acem__ew_work_bytes(L, RC);
        b[9] = acem__take(a, acem__workers(&L->opt) * L->work_bytes, 1);
        break;
    }
}

ACEMDEF acem_result acem_layer_bytes(const acem_options *opt, acem_rule rule, size_t rows,
                                     size_t cols, size_t n_experts, size_t *bytes) {
    acem_layer L;
    acem__arena a;
    acem_result r;
    ACEM_MEMSET(&L, 0, sizeof L);
    if (!bytes) return ACEM_ERR_INVALID_ARGUMENT;
    *bytes = 0;
    if ((r = acem_options_resolve(opt, &L.opt, NULL)) != ACEM_OK) return r;
    if (!n_experts || (int)rule < 0 || (int)rule > (int)ACEM_RULE_KEEP) return ACEM_ERR_INVALID_ARGUMENT;
    L.rule = rule; L.rows = rows; L.cols = cols; L.T = n_experts;
    a.base = NULL; a.off = 0; a.overflow = 0;
    acem__layout(&L, &a);
    if (a.overflow) return ACEM_ERR_SIZE_OVERFLOW;
    *bytes = a.off;
    return ACEM_OK;
}

static int acem__npasses(const acem_layer *L) {
    if (L->rule == ACEM_RULE_KEEP) return 0;
    if (L->rule == ACEM_RULE_MEAN) return 1;
    if (L->opt.method == ACEM_ACE) return L->T > 1 ? 2 : 1;
    if (L->opt.method == ACEM_TIES || L->opt.method == ACEM_DARE_TIES) return 2;
    return 1;
}

ACEMDEF acem_result acem_layer_init(acem_layer *L, const acem_options *opt, acem_rule rule,
                                    const char *name, size_t rows, size_t cols,
                                    size_t n_experts, void *arena, size_t arena_bytes,
                                    acem_error *err) {
    acem__arena a;
    acem_result r;
    const char *nm = acem__nm(name);
    if (!L) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': layer is NULL", nm);
    ACEM_MEMSET(L, 0, sizeof *L);
    L->state = 3;
    if ((r = acem_options_resolve(opt, &L->opt, err)) != ACEM_OK) {
        if (err) { /* prefix the tensor name */
            char tmp[sizeof err->message];
            ACEM_MEMCPY(tmp, err->message, sizeof tmp);
            acem__fail(err, r, "tensor '%s': %s", nm, tmp);
        }
        return r;
    }
    if ((int)rule < 0 || (int)rule > (int)ACEM_RULE_KEEP)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': unknown rule %d", nm, (int)rule);
    if (!n_experts)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': no experts", nm);
    if ((L->opt.method == ACEM_TIES || L->opt.method == ACEM_DARE_TIES) && rule == ACEM_RULE_METHOD &&
        n_experts > 65535)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': TIES supports at most 65535 experts", nm);
    L->rule = rule; L->name = name; L->rows = rows; L->cols = cols; L->T = n_experts;
    a.base = NULL; a.off = 0; a.overflow = 0;
    acem__layout(L, &a);
    if (a.overflow)
        return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "tensor '%s': %zu x %zu is too large", nm, rows, cols);
    {
        char who[200];
        if ((r = acem__check_arena(err, acem__tensor_who(who, sizeof who, name), arena, arena_bytes, a.off)) != ACEM_OK)
            return r;
    }
    L->arena = ACEM__CAST(unsigned char *, arena);
    L->arena_bytes = arena_bytes;
    a.base = L->arena; a.off = 0;
    acem__layout(L, &a);
    L->npasses = acem__npasses(L);
    L->stream = acem__fnv1a(name);
    { /* zero the accumulators */
        size_t RC = rows * cols, C = cols;
        void **b = L->buf;
        if (RC && rule != ACEM_RULE_KEEP) {
            if (rule == ACEM_RULE_MEAN) { /* the first expert writes the sum */
            } else switch (L->opt.method) {
            case ACEM_ACE: /* the R x C accumulators are zeroed when pass 1 starts */
                ACEM_MEMSET(b[4], 0, C * C * sizeof(float));
                ACEM_MEMSET(b[5], 0, 5 * C * sizeof(double));
                break;
            case ACEM_ACTMAT:
                ACEM_MEMSET(b[1], 0, RC * sizeof(float));
                ACEM_MEMSET(b[4], 0, C * C * sizeof(float));
                break;
            case ACEM_ISO_C: break; /* the first expert writes the sum */
            case ACEM_TSV_M:
                ACEM_MEMSET(b[1], 0, rows * acem__min(rows, C) * sizeof(float));
                ACEM_MEMSET(b[2], 0, C * acem__min(rows, C) * sizeof(float));
                ACEM_MEMSET(b[3], 0, acem__min(rows, C) * sizeof(double));
                break;
            default: break; /* average, TA, DARE-TA, TIES: the first expert writes */
            }
        }
    }
    L->state = 1;
    return ACEM_OK;
}

ACEMDEF int acem_layer_passes(const acem_layer *L) { return L ? L->npasses : 0; }
ACEMDEF int acem_rule_passes(const acem_options *opt, acem_rule rule, size_t n_experts) {
    acem_layer L;
    ACEM_MEMSET(&L, 0, sizeof L);
    if (acem_options_resolve(opt, &L.opt, NULL) != ACEM_OK) return 0;
    L.rule = rule;
    L.T = n_experts;
    return acem__npasses(&L);
}


/* the f64 Gram (acem__gram_f64) on the workers: part c is rows [i0, i1) of
   the lower triangle (cut into equal areas; an element's arithmetic depends
   only on the depth blocking), columns [0, i0) by acem__dgemm and the
   diagonal block by acem__gram_f64, then its mirror images above the
   diagonal (elements no other part writes) */
typedef struct acem__gram_job {
    int trans;
    size_t n, k, ldf, ldg;
    const float *F;
    double *G;
} acem__gram_job;
static void acem__gram_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__gram_job *J = ACEM__CAST(const acem__gram_job *, ctx);
    size_t i0 = acem__bound(J->n, c, np, 1), i1 = acem__bound(J->n, c + 1, np, 1), h = i1 - i0, i, j;
    const float *Fi = J->trans ? J->F + i0 : J->F + i0 * J->ldf;
    double *gw = ACEM__CAST(double *, work), *G = J->G;
    if (i0 >= i1) return;
    if (i0)
        acem__dgemm(J->trans, !J->trans, 0, h, i0, J->k, 1.0, NULL, Fi, J->ldf, NULL, J->F, J->ldf, 0.0,
                    G + i0 * J->ldg, J->ldg, gw);
    acem__gram_f64(J->trans, h, J->k, Fi, J->ldf, G + i0 * J->ldg + i0, J->ldg, gw);
    for (j = 0; j < i0; ++j) /* G[j][i] = G[i][j] for i in [i0, i1): row j is contiguous */
        for (i = i0; i < i1; ++i) G[j * J->ldg + i] = G[i * J->ldg + j];
}
static void acem__pgram(const acem__exec *E, int trans, size_t n, size_t k, const float *F, size_t ldf, double *G,
                        size_t ldg) {
    acem__gram_job J;
    J.trans = trans; J.n = n; J.k = k; J.ldf = ldf; J.ldg = ldg; J.F = F; J.G = G;
    acem__run(E, acem__nparts(E, n), acem__gram_part, &J);
}

/* ---- shared pieces -------------------------------------------------------- */
/* The one place that names a non-finite delta: the loops elsewhere fold a
   flag (no early exit, so they vectorise) and call this only on failure. */
static acem_result acem__check_finite(acem_layer *L, const float *x, const float *base, acem_error *err) {
    size_t n = L->rows * L->cols, i;
    for (i = 0; i < n; ++i) {
        float d = base ? x[i] - base[i] : x[i];
        if (!acem__finite(d))
            return acem__fail(err, ACEM_ERR_NONFINITE, "tensor '%s': expert %zu: non-finite delta at [%zu, %zu]",
                              acem__nm(L->name), L->fed, i / L->cols, i % L->cols);
    }
    return ACEM_OK;
}

/* Materialise the delta into D, checking every value is finite. */
static acem_result acem__load_delta(acem_layer *L, const float *x, const float *base, float *D,
                                    acem_error *err) {
    size_t n = L->rows * L->cols, i;
    int bad = 0;
    for (i = 0; i < n; ++i) {
        float d = base ? x[i] - base[i] : x[i];
        bad |= !((d - d) == 0.0f);
        D[i] = d;
    }
    return bad ? acem__check_finite(L, x, base, err) : ACEM_OK;
}

/* The heterogeneity gate (ACE step 1), shared by the dense and low-rank paths:
   a Welford update of mean and M2 of l_t = ln(n_t + g) per expert, then
   gamma = var_unbiased(l) / (mean(l)^2 + g) and gated = gamma > tau, which the
   flags may override; T = 1 never gates. */
static void acem__gate_add(double *mean_l, double *m2_l, size_t t, double n) {
    double l = ACEM_LOG(n + ACEM__GUARD), dl = l - *mean_l;
    *mean_l += dl / (double)(t + 1);
    *m2_l += dl * (l - *mean_l);
}
static int acem__gate_decide(const acem_options *o, size_t T, double mean_l, double m2_l, double *gamma) {
    int gated;
    *gamma = T > 1 ? m2_l / ((double)T - 1.0) / (mean_l * mean_l + ACEM__GUARD) : 0.0;
    gated = T > 1 && *gamma > o->tau;
    if (o->flags & ACEM_FLAG_NO_GATE) gated = 0;
    if (o->flags & ACEM_FLAG_ALWAYS_GATE && T > 1) gated = 1;
    return gated;
}

/* Sacc += alpha D^T D ; Q += alpha D (D^T D + ridge I), choosing the cheaper
   association: R >= C: Tmp = D^T D (C x C) ; R < C: Tmp = D D^T (R x R),
   Q += alpha (Tmp + ridge I) D. The ridge rides on Tmp's diagonal, so the
   regularised product costs no pass of its own over the R x C matrices.
   Only Sacc's lower triangle counts (for R < C only that half is summed:
   mirroring the C x C matrix for every expert cost more than the SYRK's
   packing); the finishes (ACE, ActMat) mirror it once. */
static void acem__gram_accum(const acem_layer *L, size_t R, size_t C, const float *D, float alpha, float ridge,
                             float *Sacc, float *Tmp, float *Q) {
    acem__exec X = acem__lexec(L);
    size_t n = acem__min(R, C), j;
    if (R >= C) {
        acem__psyrk(&X, 1, 1, C, R, 1.0f, D, C, 0.0f, Tmp, C);
        acem__paxpy(&X, C * C, alpha, Tmp, Sacc);
    } else {
        acem__psyrk(&X, 0, 1, R, C, 1.0f, D, C, 0.0f, Tmp, R);
        acem__psyrk(&X, 1, 0, C, R, alpha, D, C, 1.0f, Sacc, C);
    }
    if (ridge != 0.0f)
        for (j = 0; j < n; ++j) Tmp[j * n + j] += ridge;
    if (R >= C) acem__pgemm(&X, 0, 0, R, C, C, alpha, D, C, Tmp, C, 1.0f, Q, C);
    else acem__pgemm(&X, 0, 0, R, C, R, alpha, Tmp, R, D, C, 1.0f, Q, C);
}

/* Widen n f32 values at p to f64 in place (backwards, so nothing is
   overwritten before it is read). */
static void acem__widen_inplace(void *p, size_t n) {
    float *f = ACEM__CAST(float *, p);
    double *d = ACEM__CAST(double *, p);
    size_t i;
    for (i = n; i-- > 0;) d[i] = (double)f[i];
}

/* Singular values of F (all n = min(R,C), descending, into s) and the
   singular vectors of the smaller side for the q largest, above the rank
   tolerance max(R,C) eps_f32 s_1, as the columns of Vec (n x q; room for
   n x n). G: n x n doubles; ework: ACEM__TOP_WORK(n) doubles; the Gram and
   the back-transformation run on X's workers (lane scratch: ACEM__LANE_F64
   (max(R,C), n) doubles), the rest with gw (acem__dgemm_work(n, n, n)
   doubles; it may be lane 0's scratch). dcw (may be NULL): divide and
   conquer's workspace, ACEM__DC_WORK(n) doubles (see acem__syev_top_its). */
static acem_result acem__svd_small(size_t R, size_t C, const float *F, size_t ldf, double *G, double *s,
                                   double *ework, size_t q, double *Vec, const acem__exec *X, double *gw, double *dcw) {
    size_t n = acem__min(R, C), i;
    acem_result r;
    acem__pgram(X, C <= R, n, C <= R ? R : C, F, ldf, G, n);
    if ((r = acem__syev_top(n, G, n, q, (double)acem__max(R, C) * ACEM__FLT_EPS, s, Vec, q ? q : 1, ework, gw, X,
                            dcw)) != ACEM_OK)
        return r;
    for (i = 0; i < n / 2; ++i) { double t = s[i]; s[i] = s[n - 1 - i]; s[n - 1 - i] = t; }
    for (i = 0; i < n; ++i) s[i] = s[i] > 0 ? ACEM_SQRT(s[i]) : 0.0;
    return ACEM_OK;
}
/* The first k singular pairs of F from acem__svd_small's output: U (R x k, ldu)
   and V (C x k, ldv). Pairs at or below the numerical-rank tolerance
   max(R,C) * eps_f32 * s_1 are written as zero columns. Returns how many are
   kept. The product with F runs on X's workers (lane scratch:
   acem_gemm_work_bytes(max(R,C), k, max(R,C)) bytes). */
static size_t acem__svd_vectors(size_t R, size_t C, const float *F, size_t ldf, const double *Vec,
                                size_t ldvec, const double *s, size_t k, float *U, size_t ldu, float *V, size_t ldv,
                                const acem__exec *X) {
    size_t n = acem__min(R, C), i, j, kept = 0;
    double tol = (double)acem__max(R, C) * ACEM__FLT_EPS * s[0];
    int small_is_cols = C <= R;
    float *Xs = small_is_cols ? V : U; /* the side taken from the eigenvectors */
    float *Xo = small_is_cols ? U : V;
    size_t lds = small_is_cols ? ldv : ldu, ldo = small_is_cols ? ldu : ldv;
    size_t no = small_is_cols ? R : C;
    if (!k) return 0;
    for (i = 0; i < k; ++i) {
        int keep = s[0] > 0 && s[i] > tol;
        kept += (size_t)keep;
        for (j = 0; j < n; ++j) Xs[j * lds + i] = keep ? (float)Vec[j * ldvec + i] : 0.0f;
    }
    if (small_is_cols) /* U = F V */
        acem__pgemm(X, 0, 0, R, k, C, 1.0f, F, ldf, V, ldv, 0.0f, U, ldu);
    else /* V = F^T U */
        acem__pgemm(X, 1, 0, C, k, R, 1.0f, F, ldf, U, ldu, 0.0f, V, ldv);
    for (i = 0; i < k; i += 256) { /* the columns scaled by 1/s in chunks, each row's run contiguous */
        float inv[256];
        size_t c, nc = acem__min(256, k - i);
        for (c = 0; c < nc; ++c) inv[c] = (s[0] > 0 && s[i + c] > tol) ? (float)(1.0 / s[i + c]) : 0.0f;
        for (j = 0; j < no; ++j) {
            float *x = Xo + j * ldo + i;
            for (c = 0; c < nc; ++c) x[c] *= inv[c];
        }
    }
    return kept;
}

/* the public top-k forms: the caller's workspace, 64-byte aligned, carved
   into the same buffers a layer gives these steps */
ACEMDEF size_t acem_syev_top_work_bytes(size_t n) {
    return (n * n + ACEM__TOP_WORK(n) + acem__dgemm_work(n, n, n)) * sizeof(double) + 64;
}
ACEMDEF acem_result acem_syev_top(size_t n, double *A, size_t lda, size_t k, double *w, double *V, size_t ldv,
                                  void *work) {
    double *Vec = ACEM__CAST(double *, (void *)acem__align64(work)), *ework = Vec + n * n, *gw = ework + ACEM__TOP_WORK(n);
    size_t i, c;
    acem_result r;
    if (k > n) return ACEM_ERR_INVALID_ARGUMENT;
    if (!n) return ACEM_OK;
    /* Vec: room for the n x n fallback, then copied out (V may be n x k) */
    if ((r = acem__syev_top(n, A, lda, k, 0.0, w, Vec, k ? k : 1, ework, gw, NULL, NULL)) != ACEM_OK) return r;
    for (i = 0; i < n; ++i)
        for (c = 0; c < k; ++c) V[i * ldv + c] = Vec[i * k + c];
    return ACEM_OK;
}
/* a layer's lane scratch (f32 GEMM and f64 Gram / back-transformation), then
   G, the eigenvectors (room for n x n) and the eigensolver's workspace */
ACEMDEF size_t acem_svd_top_work_bytes(size_t rows, size_t cols) {
    size_t n = acem__min(rows, cols);
    return acem__lane_bytes(rows, cols) + (2 * n * n + ACEM__TOP_WORK(n)) * sizeof(double) + 64;
}
ACEMDEF acem_result acem_svd_top(size_t rows, size_t cols, const float *F, size_t ldf, size_t k, double *s,
                                 float *U, size_t ldu, float *V, size_t ldv, size_t *kept, void *work) {
    size_t n = acem__min(rows, cols), lane = acem__lane_bytes(rows, cols), got = 0;
    double *lw = ACEM__CAST(double *, (void *)acem__align64(work)), *G = lw + lane / sizeof(double), *Vec = G + n * n, *ework = Vec + n * n;
    acem__exec X = acem__exec_serial(lw);
    acem_result r = ACEM_OK;
    if (k > n) r = ACEM_ERR_INVALID_ARGUMENT;
    else if (n && (r = acem__svd_small(rows, cols, F, ldf, G, s, ework, k, Vec, &X, lw, NULL)) == ACEM_OK)
        got = acem__svd_vectors(rows, cols, F, ldf, Vec, k ? k : 1, s, k, U, ldu, V, ldv, &X);
    if (kept) *kept = got;
    return r;
}

static void acem__write_base(float *out, const float *base, size_t n) {
    size_t i;
    if (base) {
        if (out != base)
            for (i = 0; i < n; ++i) out[i] = base[i];
    } else
        for (i = 0; i < n; ++i) out[i] = 0.0f;
}

/* ---- DARE and TIES -------------------------------------------------------- */
/* The t-th expert's delta value at idx after DARE (drop with probability p,
   rescale by 1/(1-p)); plain delta for TIES. */
static float acem__ew_value(const acem_layer *L, uint64_t key, const float *x, const float *base, size_t idx) {
    float d = base ? x[idx] - base[idx] : x[idx];
    if (L->opt.method == ACEM_DARE_TA || L->opt.method == ACEM_DARE_TIES) {
        double u = (double)(acem__mix(key + (uint64_t)idx) >> 11) * (1.0 / 9007199254740992.0);
        if (u < L->opt.drop) return 0.0f;
        return (float)((double)d / (1.0 - L->opt.drop));
    }
    return d;
}
static uint64_t acem__dare_key(const acem_layer *L, size_t t) {
    return acem__mix(acem__mix(L->opt.seed ^ L->stream) + (uint64_t)t);
}
/* TIES threshold: the k-th smallest |value| (k = d - floor(d * density),
   1-based), found by radix selection on the float bit patterns; 0 keeps all. */
static float acem__ties_threshold(acem_layer *L, uint64_t key, const float *x, const float *base) {
    size_t d = L->rows * L->cols, kdrop = (size_t)((double)d * L->opt.density), k = d - kdrop, i;
    size_t *hist = ACEM__CAST(size_t *, L->buf[3]);
    uint32_t prefix = 0, mask = 0;
    static const int shifts[3] = {20, 8, 0}, widths[3] = {12, 12, 8};
    int pass;
    if (kdrop >= d || k == 0) return 0.0f;
    for (pass = 0; pass < 3; ++pass) {
        uint32_t nb = 1u << widths[pass], sh = (uint32_t)shifts[pass], b;
        size_t cum = 0;
        for (b = 0; b < nb; ++b) hist[b] = 0;
        for (i = 0; i < d; ++i) {
            uint32_t u = acem__f2u(acem__ew_value(L, key, x, base, i)) & 0x7fffffffu;
            if ((u & mask) == prefix) hist[(u >> sh) & (nb - 1)]++;
        }
        for (b = 0; b < nb; ++b) {
            if (cum + hist[b] >= k) break;
            cum += hist[b];
        }
        prefix |= b << sh;
        k -= cum;
        mask |= (nb - 1) << sh;
    }
    return acem__u2f(prefix);
}

/* ---- element-wise rules: the loops -------------------------------------------
   Average, task arithmetic, DARE, TIES and the "mean" rule treat every element
   on its own. Their loops live here, once, and serve both the streaming path
   (acem_layer_feed / finish) and the fused in-memory path of acem_merge, so
   that both apply the same float operations to every element, in the same
   order, and give bitwise identical results. They are memory-bound: AVX2 and
   AVX-512 builds run them with 256-bit AVX2 + FMA (wider vectors move no more
   bytes), other builds in plain C. Every kernel handles the vector part first
   and the rest one element at a time; the chunks and sub-blocks below are
   multiples of the vector width, so only the tensor's last elements take the
   scalar route, on either path.
   Both paths split each pass over parallel_for in chunks of ACEM__EW_CHUNK
   elements. The fused path reads the T experts side by side, the running sums
   in registers, so that base, the experts and out are each touched once; DARE
   (whose values are made a sub-block at a time) and plain C builds (see
   acem__ew_fused_chunk) go through sub-blocks of acem__ew_sub elements in the
   worker's scratch instead. */
enum { ACEM__ST_MAJ = 0 };                        /* TIES: the majority sign, after pass 0 */

/* per-worker state, at the start of the worker's scratch (acem__ew_work_bytes;
   the rest: arrays of a sub-block's floats / ints) */
typedef struct acem__cap {      /* TIES capture of one expert by one worker          */
    size_t lt, le_lo, le_hi;    /* counts below lo, <= lo, <= hi                      */
    size_t stored, cap;         /* candidates stored, room                            */
    uint32_t *cand;             /* the candidate region                               */
    int overflow;               /* candidates did not fit                             */
} acem__cap;
typedef struct acem__ew_lane {
    int bad;                    /* a non-finite delta was seen                        */
    long long tot;              /* TIES election: #positive - #negative sums          */
    acem__cap cap[ACEM__TIES_G];/* TIES capture, one per expert of the group          */
} acem__ew_lane;

static acem__ew_lane *acem__ew_lane_of(const acem_layer *L, size_t w) {
    return ACEM__CAST(acem__ew_lane *, (void *)(ACEM__CAST(unsigned char *, L->buf[9]) + w * L->work_bytes));
}
static float *acem__ew_arr(void *work, size_t sub, int k) {
    return ACEM__CAST(float *, (void *)(ACEM__CAST(unsigned char *, work) + ACEM__EW_HDR)) + (size_t)k * sub;
}
static void acem__ew_lanes_init(const acem_layer *L) {
    size_t w, W = acem__workers(&L->opt);
    ACEM_ASSERT(sizeof(acem__ew_lane) <= ACEM__EW_HDR);
    for (w = 0; w < W; ++w) ACEM_MEMSET(acem__ew_lane_of(L, w), 0, sizeof(acem__ew_lane));
}
static int acem__ew_lanes_bad(const acem_layer *L) {
    size_t w, W = acem__workers(&L->opt);
    int bad = 0;
    for (w = 0; w < W; ++w) bad |= acem__ew_lane_of(L, w)->bad;
    return bad;
}
static size_t acem__ew_nchunks(size_t n) { return (n + ACEM__EW_CHUNK - 1) / ACEM__EW_CHUNK; }
#if defined(ACEM__EW_AVX2)
static int acem__pop8(unsigned m) {
    m = m - ((m >> 1) & 0x55u);
    m = (m & 0x33u) + ((m >> 2) & 0x33u);
    return (int)((m + (m >> 4)) & 0x0fu);
}
#if defined(ACEM__AVX512)
static int acem__pop16(unsigned m) { return acem__pop8(m & 0xffu) + acem__pop8(m >> 8); }
#endif
#endif
/* b + s * a for one element, as the vector loops compute it (one FMA there) */
static float acem__ew_fin1(float b, float s, float a) {
#if defined(ACEM__EW_AVX2)
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(s), _mm_set_ss(a), _mm_set_ss(b)));
#else
    return b + s * a;
#endif
}

/* acc = x - b (first) or acc += x - b (b NULL: x itself); returns 1 if any
   x - b is not finite. */
static int acem__ew_acc(float *acc, const float *x, const float *b, size_t n, int first) {
    size_t i = 0;
    int bad = 0;
#if defined(ACEM__EW_AVX2)
    __m256 z = _mm256_setzero_ps();
#define ACEM__ACC_LOOP(LOADD, STORE)                                      \
    for (; i + 8 <= n; i += 8) {                                          \
        __m256 d = LOADD;                                                 \
        z = _mm256_add_ps(z, _mm256_sub_ps(d, d));                        \
        _mm256_storeu_ps(acc + i, STORE);                                 \
    }
    if (b && first) ACEM__ACC_LOOP(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(b + i)), d)
    else if (b) ACEM__ACC_LOOP(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(b + i)),
                               _mm256_add_ps(_mm256_loadu_ps(acc + i), d))
    else if (first) ACEM__ACC_LOOP(_mm256_loadu_ps(x + i), d)
    else ACEM__ACC_LOOP(_mm256_loadu_ps(x + i), _mm256_add_ps(_mm256_loadu_ps(acc + i), d))
#undef ACEM__ACC_LOOP
    bad = _mm256_movemask_ps(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_NEQ_UQ)) != 0;
#endif
    for (; i < n; ++i) {
        float d = b ? x[i] - b[i] : x[i];
        bad |= !((d - d) == 0.0f);
        acc[i] = first ? d : acc[i] + d;
    }
    return bad;
}

/* out = b + scale * acc (b NULL: scale * acc) */
static void acem__ew_out(float *out, const float *b, const float *acc, size_t n, float scale) {
    size_t i = 0;
#if defined(ACEM__EW_AVX2)
    const __m256 s = _mm256_set1_ps(scale);
    if (b)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(s, _mm256_loadu_ps(acc + i), _mm256_loadu_ps(b + i)));
    else
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(acc + i)));
#endif
    if (b)
        for (; i < n; ++i) out[i] = acem__ew_fin1(b[i], scale, acc[i]);
    else
        for (; i < n; ++i) out[i] = scale * acc[i];
}

#if defined(ACEM__EW_AVX2)
/* out = b + scale * sum_t (x_t - b) for elements [i0, i0 + n): the result of
   acem__ew_acc over t = 0..T-1 and then acem__ew_out, with the running sum in
   registers (the experts are read side by side); returns 1 if any delta is not
   finite. */
static int acem__ew_sum_out(float *out, const float *const *xs, size_t T, const float *b, size_t i0, size_t n,
                            float scale) {
    size_t i = 0, t;
    int bad = 0;
    const __m256 s = _mm256_set1_ps(scale);
    __m256 z = _mm256_setzero_ps();
#if defined(ACEM__AVX512)
    if (b) {
        const __m512 s16 = _mm512_set1_ps(scale);
        __m512 z16 = _mm512_setzero_ps();
        for (; i + 16 <= n; i += 16) {
            size_t k = i0 + i;
            __m512 bv = _mm512_loadu_ps(b + k), acc = _mm512_sub_ps(_mm512_loadu_ps(xs[0] + k), bv), d;
            z16 = _mm512_add_ps(z16, _mm512_sub_ps(acc, acc));
            for (t = 1; t < T; ++t) {
                d = _mm512_sub_ps(_mm512_loadu_ps(xs[t] + k), bv);
                z16 = _mm512_add_ps(z16, _mm512_sub_ps(d, d));
                acc = _mm512_add_ps(acc, d);
            }
            _mm512_storeu_ps(out + k, _mm512_fmadd_ps(s16, acc, bv));
        }
        bad = _mm512_cmp_ps_mask(z16, _mm512_setzero_ps(), _CMP_NEQ_UQ) != 0;
    }
#endif
    for (; i + 8 <= n; i += 8) {
        size_t k = i0 + i;
        __m256 bv = b ? _mm256_loadu_ps(b + k) : _mm256_setzero_ps(), acc, d;
        acc = b ? _mm256_sub_ps(_mm256_loadu_ps(xs[0] + k), bv) : _mm256_loadu_ps(xs[0] + k);
        z = _mm256_add_ps(z, _mm256_sub_ps(acc, acc));
        for (t = 1; t < T; ++t) {
            d = b ? _mm256_sub_ps(_mm256_loadu_ps(xs[t] + k), bv) : _mm256_loadu_ps(xs[t] + k);
            z = _mm256_add_ps(z, _mm256_sub_ps(d, d));
            acc = _mm256_add_ps(acc, d);
        }
        _mm256_storeu_ps(out + k, b ? _mm256_fmadd_ps(s, acc, bv) : _mm256_mul_ps(s, acc));
    }
    bad |= _mm256_movemask_ps(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_NEQ_UQ)) != 0;
    for (; i < n; ++i) {
        size_t k = i0 + i;
        float acc = 0.0f;
        for (t = 0; t < T; ++t) {
            float d = b ? xs[t][k] - b[k] : xs[t][k];
            bad |= !((d - d) == 0.0f);
            acc = t ? acc + d : d;
        }
        out[k] = b ? acem__ew_fin1(b[k], scale, acc) : scale * acc;
    }
    return bad;
}
#endif

/* ---- DARE ------------------------------------------------------------------ */
/* acem__ew_value's DARE branch for a run of elements: u < drop is decided on
   the integer m = mix >> 11 (u = m 2^-53 exactly, so u < drop iff m < mthr =
   ceil(drop 2^53)), and the rescale is the same double division. */
typedef struct acem__dare {
    int on;
    uint64_t mthr;
    double q;                   /* 1 - drop */
} acem__dare;
static acem__dare acem__dare_prep(const acem_layer *L) {
    acem__dare D;
    double xm = L->opt.drop * 9007199254740992.0;
    D.on = L->opt.method == ACEM_DARE_TA || L->opt.method == ACEM_DARE_TIES;
    D.mthr = (uint64_t)xm;
    if ((double)D.mthr < xm) D.mthr++;
    D.q = 1.0 - L->opt.drop;
    return D;
}
#if defined(ACEM__EW_AVX2)
static __m256i acem__mul64c(__m256i a, uint64_t c) { /* a * c mod 2^64, lane-wise */
    const __m256i cl = _mm256_set1_epi64x((long long)(c & 0xffffffffu)), ch = _mm256_set1_epi64x((long long)(c >> 32));
    __m256i ll = _mm256_mul_epu32(a, cl);
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), cl), _mm256_mul_epu32(a, ch));
    return _mm256_add_epi64(ll, _mm256_slli_epi64(cross, 32));
}
#endif
/* v[j] = the DARE value of element i0 + j (x, b indexed from 0); returns 1 if
   any delta is not finite (checked on the delta, before the drop). */
static int acem__dare_values(const acem__dare *D, uint64_t key, const float *x, const float *b, size_t i0,
                             size_t len, float *v) {
    size_t j = 0;
    int bad = 0;
#if defined(ACEM__EW_AVX2)
    {
        const __m256i lanes = _mm256_set_epi64x(3, 2, 1, 0), mthr = _mm256_set1_epi64x((long long)D->mthr);
        const __m256d q = _mm256_set1_pd(D->q);
        __m128 z = _mm_setzero_ps();
        for (; j + 4 <= len; j += 4) {
            size_t i = i0 + j;
            __m128 d = _mm_loadu_ps(x + i);
            __m256i h = _mm256_add_epi64(_mm256_set1_epi64x((long long)(key + (uint64_t)i + 0x9E3779B97F4A7C15ull)), lanes);
            __m256i drop;
            __m128 val;
            if (b) d = _mm_sub_ps(d, _mm_loadu_ps(b + i));
            z = _mm_add_ps(z, _mm_sub_ps(d, d));
            h = acem__mul64c(_mm256_xor_si256(h, _mm256_srli_epi64(h, 30)), 0xBF58476D1CE4E5B9ull);
            h = acem__mul64c(_mm256_xor_si256(h, _mm256_srli_epi64(h, 27)), 0x94D049BB133111EBull);
            h = _mm256_srli_epi64(_mm256_xor_si256(h, _mm256_srli_epi64(h, 31)), 11);
            drop = _mm256_cmpgt_epi64(mthr, h); /* m < mthr (both below 2^63) */
            val = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(d), q));
            /* the 64-bit lane masks, narrowed to 32 bits: take the low halves */
            drop = _mm256_permutevar8x32_epi32(drop, _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0));
            val = _mm_andnot_ps(_mm_castsi128_ps(_mm256_castsi256_si128(drop)), val);
            _mm_storeu_ps(v + j, val);
        }
        bad = _mm_movemask_ps(_mm_cmpneq_ps(z, _mm_setzero_ps())) != 0;
    }
#endif
    for (; j < len; ++j) {
        size_t i = i0 + j;
        float d = b ? x[i] - b[i] : x[i];
        bad |= !((d - d) == 0.0f);
        v[j] = (acem__mix(key + (uint64_t)i) >> 11) < D->mthr ? 0.0f : (float)((double)d / D->q);
    }
    return bad;
}

/* ---- plain sums: average, task arithmetic, DARE-TA, the mean rule ---------- */
typedef struct acem__ew_job {
    const acem_layer *L;
    const float *x;              /* streaming: this expert                        */
    const float *const *xs;      /* fused: all experts (TIES capture: the group)  */
    const float *base;
    float *acc, *out;
    size_t n, t;                 /* t: the expert's index (capture: the group's first) */
    float scale;
    int first;                   /* streaming: the first expert writes acc        */
    acem__dare D;
    uint32_t thu;                /* TIES: threshold bits                          */
    uint32_t los[ACEM__TIES_G], his[ACEM__TIES_G]; /* TIES capture brackets         */
    size_t ng;                   /* TIES capture: experts in the group            */
    int ends[ACEM__TIES_G];      /* TIES capture: candidates include lo and hi    */
    const uint32_t *thus;        /* TIES fused: every expert's threshold bits     */
    int majpos;                  /* TIES pass 1: zero sums take the positive side */
    signed char *sg;
    uint16_t *cnt;
    unsigned char *cflag;        /* TIES fused: chunks holding corrections        */
    size_t sub;                  /* sub-block length (acem__ew_sub)               */
} acem__ew_job;

static void acem__ew_range(const acem__ew_job *J, size_t c, size_t *c0, size_t *c1) {
    *c0 = c * ACEM__EW_CHUNK;
    *c1 = acem__min(*c0 + ACEM__EW_CHUNK, J->n);
}
/* streaming feed: acc (+)= delta of one expert */
static void acem__ew_feed_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    acem__ew_lane *h = ACEM__CAST(acem__ew_lane *, work);
    size_t c0, c1, i0;
    (void)nc;
    acem__ew_range(J, c, &c0, &c1);
    if (!J->D.on) {
        h->bad |= acem__ew_acc(J->acc + c0, J->x + c0, J->base ? J->base + c0 : NULL, c1 - c0, J->first);
        return;
    }
    for (i0 = c0; i0 < c1; i0 += J->sub) {
        size_t len = acem__min(J->sub, c1 - i0);
        float *v = acem__ew_arr(work, J->sub, 0);
        h->bad |= acem__dare_values(&J->D, acem__dare_key(J->L, J->t), J->x, J->base, i0, len, v);
        acem__ew_acc(J->acc + i0, v, NULL, len, J->first);
    }
}
/* streaming finish: out = base + scale * acc */
static void acem__ew_out_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    size_t c0, c1;
    (void)nc;
    (void)work;
    acem__ew_range(J, c, &c0, &c1);
    acem__ew_out(J->out + c0, J->base ? J->base + c0 : NULL, J->acc + c0, c1 - c0, J->scale);
}
/* fused: out = base + scale * sum_t delta_t, one sub-block at a time */
static void acem__ew_fused_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    acem__ew_lane *h = ACEM__CAST(acem__ew_lane *, work);
    float *acc, *v;
    size_t c0, c1, i0, t;
    (void)nc;
    acem__ew_range(J, c, &c0, &c1);
#if defined(ACEM__EW_AVX2)
    if (!J->D.on) {
        h->bad |= acem__ew_sum_out(J->out, J->xs, J->L->T, J->base, c0, c1 - c0, J->scale);
        return;
    }
#endif
    /* (plain C builds: always here, so that out = base + scale * acc is the
       very code of the streaming finish, acem__ew_out, whatever the compiler
       contracts into FMAs) */
    acc = acem__ew_arr(work, J->sub, 0);
    v = acem__ew_arr(work, J->sub, 1);
    for (i0 = c0; i0 < c1; i0 += J->sub) {
        size_t len = acem__min(J->sub, c1 - i0);
        for (t = 0; t < J->L->T; ++t) {
            if (J->D.on) {
                h->bad |= acem__dare_values(&J->D, acem__dare_key(J->L, t), J->xs[t], J->base, i0, len, v);
                acem__ew_acc(acc, v, NULL, len, t == 0);
            } else
                h->bad |= acem__ew_acc(acc, J->xs[t] + i0, J->base ? J->base + i0 : NULL, len, t == 0);
        }
        acem__ew_out(J->out + i0, J->base ? J->base + i0 : NULL, acc, len, J->scale);
    }
}
static void acem__ew_job_init(acem__ew_job *J, const acem_layer *L, const float *base) {
    ACEM_MEMSET(J, 0, sizeof *J);
    J->L = L;
    J->n = L->rows * L->cols;
    J->sub = acem__ew_sub(J->n);
    J->base = base;
    J->D = acem__dare_prep(L);
    if (L->rule == ACEM_RULE_MEAN) J->D.on = 0;
}
/* the scale of a plain sum: lambda / T for average and the mean rule */
static float acem__ew_scale(const acem_layer *L) {
    if (L->rule == ACEM_RULE_MEAN || L->opt.method == ACEM_AVERAGE) return (float)(L->opt.lambda / (double)L->T);
    return (float)L->opt.lambda;
}

/* ---- TIES: the trim threshold ------------------------------------------------
   acem__ties_threshold's value (the k-th smallest |value|, exactly), from one
   pass over the expert instead of three: a strided sample of the magnitudes
   brackets the k-th smallest by [lo, hi] (its rank +- 4 standard deviations);
   one pass counts the values below lo, at most lo and at most hi, and keeps the
   ones strictly between (a few percent) as candidates; a radix selection among
   those gives the exact value. If the bracket misses or the candidates do not
   fit, the three-pass selection runs instead: the same value, more slowly. */
#define ACEM__TIES_NO_HI 0x7f800001u /* above +inf: "no upper bound" */

#if defined(ACEM__EW_AVX2)
/* Compaction of 8 lanes by a movemask m: byte j of entry m is the index of m's
   j-th set bit (vpermd reads only the low 3 bits), and the high nibble of
   byte 0 the number of set bits. Generated (Python) by
     for m in range(256):
         idx = [q for q in range(8) if m >> q & 1]; c = len(idx); idx += [0] * (8 - c)
         idx[0] |= c << 4; print(hex(sum(v << 8 * j for j, v in enumerate(idx)))) */
static const uint64_t acem__compact8[256] = {
    0x0u, 0x10u, 0x11u, 0x120u, 0x12u, 0x220u,
    0x221u, 0x20130u, 0x13u, 0x320u, 0x321u, 0x30130u,
    0x322u, 0x30230u, 0x30231u, 0x3020140u, 0x14u, 0x420u,
    0x421u, 0x40130u, 0x422u, 0x40230u, 0x40231u, 0x4020140u,
    0x423u, 0x40330u, 0x40331u, 0x4030140u, 0x40332u, 0x4030240u,
    0x4030241u, 0x403020150ull, 0x15u, 0x520u, 0x521u, 0x50130u,
    0x522u, 0x50230u, 0x50231u, 0x5020140u, 0x523u, 0x50330u,
    0x50331u, 0x5030140u, 0x50332u, 0x5030240u, 0x5030241u, 0x503020150ull,
    0x524u, 0x50430u, 0x50431u, 0x5040140u, 0x50432u, 0x5040240u,
    0x5040241u, 0x504020150ull, 0x50433u, 0x5040340u, 0x5040341u, 0x504030150ull,
    0x5040342u, 0x504030250ull, 0x504030251ull, 0x50403020160ull, 0x16u, 0x620u,
    0x621u, 0x60130u, 0x622u, 0x60230u, 0x60231u, 0x6020140u,
    0x623u, 0x60330u, 0x60331u, 0x6030140u, 0x60332u, 0x6030240u,
    0x6030241u, 0x603020150ull, 0x624u, 0x60430u, 0x60431u, 0x6040140u,
    0x60432u, 0x6040240u, 0x6040241u, 0x604020150ull, 0x60433u, 0x6040340u,
    0x6040341u, 0x604030150ull, 0x6040342u, 0x604030250ull, 0x604030251ull, 0x60403020160ull,
    0x625u, 0x60530u, 0x60531u, 0x6050140u, 0x60532u, 0x6050240u,
    0x6050241u, 0x605020150ull, 0x60533u, 0x6050340u, 0x6050341u, 0x605030150ull,
    0x6050342u, 0x605030250ull, 0x605030251ull, 0x60503020160ull, 0x60534u, 0x6050440u,
    0x6050441u, 0x605040150ull, 0x6050442u, 0x605040250ull, 0x605040251ull, 0x60504020160ull,
    0x6050443u, 0x605040350ull, 0x605040351ull, 0x60504030160ull, 0x605040352ull, 0x60504030260ull,
    0x60504030261ull, 0x6050403020170ull, 0x17u, 0x720u, 0x721u, 0x70130u,
    0x722u, 0x70230u, 0x70231u, 0x7020140u, 0x723u, 0x70330u,
    0x70331u, 0x7030140u, 0x70332u, 0x7030240u, 0x7030241u, 0x703020150ull,
    0x724u, 0x70430u, 0x70431u, 0x7040140u, 0x70432u, 0x7040240u,
    0x7040241u, 0x704020150ull, 0x70433u, 0x7040340u, 0x7040341u, 0x704030150ull,
    0x7040342u, 0x704030250ull, 0x704030251ull, 0x70403020160ull, 0x725u, 0x70530u,
    0x70531u, 0x7050140u, 0x70532u, 0x7050240u, 0x7050241u, 0x705020150ull,
    0x70533u, 0x7050340u, 0x7050341u, 0x705030150ull, 0x7050342u, 0x705030250ull,
    0x705030251ull, 0x70503020160ull, 0x70534u, 0x7050440u, 0x7050441u, 0x705040150ull,
    0x7050442u, 0x705040250ull, 0x705040251ull, 0x70504020160ull, 0x7050443u, 0x705040350ull,
    0x705040351ull, 0x70504030160ull, 0x705040352ull, 0x70504030260ull, 0x70504030261ull, 0x7050403020170ull,
    0x726u, 0x70630u, 0x70631u, 0x7060140u, 0x70632u, 0x7060240u,
    0x7060241u, 0x706020150ull, 0x70633u, 0x7060340u, 0x7060341u, 0x706030150ull,
    0x7060342u, 0x706030250ull, 0x706030251ull, 0x70603020160ull, 0x70634u, 0x7060440u,
    0x7060441u, 0x706040150ull, 0x7060442u, 0x706040250ull, 0x706040251ull, 0x70604020160ull,
    0x7060443u, 0x706040350ull, 0x706040351ull, 0x70604030160ull, 0x706040352ull, 0x70604030260ull,
    0x70604030261ull, 0x7060403020170ull, 0x70635u, 0x7060540u, 0x7060541u, 0x706050150ull,
    0x7060542u, 0x706050250ull, 0x706050251ull, 0x70605020160ull, 0x7060543u, 0x706050350ull,
    0x706050351ull, 0x70605030160ull, 0x706050352ull, 0x70605030260ull, 0x70605030261ull, 0x7060503020170ull,
    0x7060544u, 0x706050450ull, 0x706050451ull, 0x70605040160ull, 0x706050452ull, 0x70605040260ull,
    0x70605040261ull, 0x7060504020170ull, 0x706050453ull, 0x70605040360ull, 0x70605040361ull, 0x7060504030170ull,
    0x70605040362ull, 0x7060504030270ull, 0x7060504030271ull, 0x706050403020180ull
};
#endif
/* counts and candidates of one run of values (b NULL: x are the values).
   The candidates are stored only while they fit (h->overflow says they did
   not). No finiteness check: the pass that follows checks every value, and a
   NaN (bits above +inf, so above hi) is never a candidate. */
static void acem__ties_capture(acem__cap *h, const float *x, const float *b, size_t n, uint32_t lo, uint32_t hi) {
    size_t i = 0, lt = 0, gtlo = 0, gthi = 0, ns = h->stored, cap = h->cap;
    uint32_t *cand = h->cand;
#if defined(ACEM__EW_AVX2)
    {
        const __m256i vlo = _mm256_set1_epi32((int)lo), vhi = _mm256_set1_epi32((int)hi);
        const __m256i am = _mm256_set1_epi32(0x7fffffff);
        __m256i clt = _mm256_setzero_si256(), cgl = clt, cgh = clt;
        uint32_t tmp[8];
        int q;
#define ACEM__CAPTURE_STEP(LOADV)                                                                         \
        {                                                                                                 \
            __m256i u = _mm256_and_si256(_mm256_castps_si256(LOADV), am), gl = _mm256_cmpgt_epi32(u, vlo); \
            __m256i in = _mm256_and_si256(gl, _mm256_cmpgt_epi32(vhi, u));                              \
            const uint64_t *e = acem__compact8 + _mm256_movemask_ps(_mm256_castsi256_ps(in));              \
            __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)e));          \
            clt = _mm256_sub_epi32(clt, _mm256_cmpgt_epi32(vlo, u));                                      \
            cgl = _mm256_sub_epi32(cgl, gl);                                                              \
            cgh = _mm256_sub_epi32(cgh, _mm256_cmpgt_epi32(u, vhi));                                      \
            _mm256_storeu_si256((__m256i *)(void *)(cand + ns), _mm256_permutevar8x32_epi32(u, idx));    \
            ns += (size_t)((*e >> 4) & 15u);                                                              \
        }
        /* two vectors a round, while 16 more candidates fit */
#define ACEM__CAPTURE_LOOP(LOADV)                                                                         \
        for (; i + 16 <= n && ns + 16 <= cap; i += 16) {                                                  \
            _mm_prefetch((const char *)(const void *)(x + i + ACEM__EW_PF), _MM_HINT_T0);                 \
            if (b) _mm_prefetch((const char *)(const void *)(b + i + ACEM__EW_PF), _MM_HINT_T0);          \
            ACEM__CAPTURE_STEP(LOADV)                                                                     \
            i += 8;                                                                                       \
            ACEM__CAPTURE_STEP(LOADV)                                                                     \
            i -= 8;                                                                                       \
        }
        if (b) ACEM__CAPTURE_LOOP(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(b + i)))
        else ACEM__CAPTURE_LOOP(_mm256_loadu_ps(x + i))
#undef ACEM__CAPTURE_LOOP
#undef ACEM__CAPTURE_STEP
        _mm256_storeu_si256((__m256i *)(void *)tmp, _mm256_add_epi32(_mm256_unpacklo_epi32(clt, cgl), _mm256_unpackhi_epi32(clt, cgl)));
        for (q = 0; q < 8; q += 2) { lt += tmp[q]; gtlo += tmp[q + 1]; }
        _mm256_storeu_si256((__m256i *)(void *)tmp, cgh);
        for (q = 0; q < 8; ++q) gthi += tmp[q];
    }
#endif
    for (; i < n; ++i) {
        uint32_t u = acem__f2u(b ? x[i] - b[i] : x[i]) & 0x7fffffffu;
        lt += (size_t)(u < lo);
        gtlo += (size_t)(u > lo);
        gthi += (size_t)(u > hi);
        if (u > lo && u < hi) {
            if (ns < cap) cand[ns++] = u;
            else h->overflow = 1;
        }
    }
    h->lt += lt;
    h->le_lo += n - gtlo;
    h->le_hi += n - gthi;
    h->stored = ns;
}
#if defined(ACEM__EW_AVX2)
/* acem__ties_capture2 for the ng experts of a group at once, over the same
   values [0, n) of each (x[g] and b already offset; b NULL: x are the values):
   the ng + 1 streams are read together, 8 values of each a step, which keeps
   more loads in flight than one stream after another (5 streams: 0.0155 s
   against 0.0195 s for the same bytes read in blocks of 16 KiB). The same
   counts and candidates, in the same order, as ng calls of acem__ties_capture2
   (whose vector part is this, with ng = 1); returns how many values were done
   (the caller finishes the rest with those calls: a candidate region close to
   full, or fewer than 8 values left). */
static size_t acem__ties_capture2_group(acem__cap *h, const float *const *x, size_t ng, const float *b, size_t n,
                                        const uint32_t *lo, const uint32_t *hi) {
    const __m256i am = _mm256_set1_epi32(0x7fffffff);
    size_t i = 0;
    /* one expert's state in named variables (registers), for up to 4 */
#if ACEM__TIES_G != 4
#error "acem__ties_capture2_group spells out ACEM__TIES_G = 4 experts"
#endif
#define ACEM__CG_DECL(G)                                                                       \
    const float *x##G = x[G < ng ? G : 0];                                                     \
    uint32_t *cd##G = h[G < ng ? G : 0].cand;                                                  \
    const __m256i vlo##G = _mm256_set1_epi32((int)lo[G < ng ? G : 0]);                          \
    const __m256i vhi##G = _mm256_set1_epi32((int)hi[G < ng ? G : 0]);                          \
    __m256i clt##G = _mm256_setzero_si256();                                                   \
    size_t ns##G = h[G < ng ? G : 0].stored;
#define ACEM__CG_STEP(G)                                                                       \
    if (G < ng) {                                                                              \
        __m256 v = _mm256_loadu_ps(x##G + i);                                                  \
        __m256i u, l, gt, idx;                                                                 \
        const uint64_t *e;                                                                     \
        if (b) v = _mm256_sub_ps(v, bv);                                                       \
        if (pf) _mm_prefetch((const char *)(const void *)(x##G + i + ACEM__EW_PF), _MM_HINT_T0); \
        u = _mm256_and_si256(_mm256_castps_si256(v), am);                                      \
        l = _mm256_cmpgt_epi32(vlo##G, u);                                                     \
        gt = _mm256_cmpgt_epi32(u, vhi##G);                                                    \
        e = acem__compact8 + (~_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_or_si256(l, gt))) & 0xff); \
        idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)e));          \
        clt##G = _mm256_sub_epi32(clt##G, l);                                                  \
        _mm256_storeu_si256((__m256i *)(void *)(cd##G + ns##G), _mm256_permutevar8x32_epi32(u, idx)); \
        ns##G += (size_t)((*e >> 4) & 15u);                                                    \
    }
#define ACEM__CG_ROOM(G) if (G < ng) room = acem__min(room, h[G].cap - ns##G);
#define ACEM__CG_DONE(G)                                                                       \
    if (G < ng) {                                                                              \
        uint32_t tmp[8];                                                                       \
        size_t lt = 0;                                                                         \
        int q;                                                                                 \
        _mm256_storeu_si256((__m256i *)(void *)tmp, clt##G);                                   \
        for (q = 0; q < 8; ++q) lt += tmp[q];                                                  \
        h[G].lt += lt;                                                                         \
        h[G].le_hi += lt + (ns##G - h[G].stored); /* at most hi: below lo, or stored */        \
        h[G].stored = ns##G;                                                                   \
    }
    ACEM__CG_DECL(0) ACEM__CG_DECL(1) ACEM__CG_DECL(2) ACEM__CG_DECL(3)
    for (;;) {
        size_t room = n - i, steps, s;
        ACEM__CG_ROOM(0) ACEM__CG_ROOM(1) ACEM__CG_ROOM(2) ACEM__CG_ROOM(3)
        steps = room / 8; /* each step stores at most 8 candidates per expert */
        if (!steps) break;
        for (s = 0; s < steps; ++s, i += 8) {
            __m256 bv = b ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps();
            int pf = !(i & 15);
            if (b && pf) _mm_prefetch((const char *)(const void *)(b + i + ACEM__EW_PF), _MM_HINT_T0);
            ACEM__CG_STEP(0) ACEM__CG_STEP(1) ACEM__CG_STEP(2) ACEM__CG_STEP(3)
        }
    }
    ACEM__CG_DONE(0) ACEM__CG_DONE(1) ACEM__CG_DONE(2) ACEM__CG_DONE(3)
#undef ACEM__CG_DECL
#undef ACEM__CG_STEP
#undef ACEM__CG_ROOM
#undef ACEM__CG_DONE
    return i;
}
#endif
/* acem__ties_capture with the bracket's ends included and only two counts:
   values below lo (lt) and at most hi (le_hi); the candidates are lo <= u <= hi. Cheaper;
   used when the sample shows no heavy ties at the ends (which would all have
   to be stored). */
static void acem__ties_capture2(acem__cap *h, const float *x, const float *b, size_t n, uint32_t lo, uint32_t hi) {
    size_t i = 0, i0, lt = 0, gthi = 0, ns, cap = h->cap;
    uint32_t *cand = h->cand;
#if defined(ACEM__EW_AVX2)
    i = acem__ties_capture2_group(h, &x, 1, b, n, &lo, &hi); /* a group of one */
#endif
    i0 = i;
    ns = h->stored;
    for (; i < n; ++i) {
        uint32_t u = acem__f2u(b ? x[i] - b[i] : x[i]) & 0x7fffffffu;
        lt += (size_t)(u < lo);
        gthi += (size_t)(u > hi);
        if (u >= lo && u <= hi) {
            if (ns < cap) cand[ns++] = u;
            else h->overflow = 1;
        }
    }
    h->lt += lt;
    h->le_hi += n - i0 - gthi;
    h->stored = ns;
}
static void acem__ties_capture_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    acem__ew_lane *h = ACEM__CAST(acem__ew_lane *, work);
    size_t c0, c1, i0, g, blk = J->D.on ? J->sub : 4096; /* 4096: base stays in L1 across the group */
    (void)nc;
    acem__ew_range(J, c, &c0, &c1);
#if defined(ACEM__EW_AVX2)
    if (!J->D.on) {
        int all = 1;
        for (g = 0; g < J->ng; ++g) all &= J->ends[g];
        if (all) {
            const float *xg[ACEM__TIES_G];
            for (g = 0; g < J->ng; ++g) xg[g] = J->xs[g] + c0;
            c0 += acem__ties_capture2_group(h->cap, xg, J->ng, J->base ? J->base + c0 : NULL, c1 - c0, J->los, J->his);
        }
    }
#endif
    for (i0 = c0; i0 < c1; i0 += blk) {
        size_t len = acem__min(blk, c1 - i0);
        for (g = 0; g < J->ng; ++g) {
            if (J->D.on) {
                float *v = acem__ew_arr(work, J->sub, 0);
                h->bad |= acem__dare_values(&J->D, acem__dare_key(J->L, J->t + g), J->xs[g], J->base, i0, len, v);
                if (J->ends[g]) acem__ties_capture2(&h->cap[g], v, NULL, len, J->los[g], J->his[g]);
                else acem__ties_capture(&h->cap[g], v, NULL, len, J->los[g], J->his[g]);
            } else if (J->ends[g])
                acem__ties_capture2(&h->cap[g], J->xs[g] + i0, J->base ? J->base + i0 : NULL, len, J->los[g], J->his[g]);
            else
                acem__ties_capture(&h->cap[g], J->xs[g] + i0, J->base ? J->base + i0 : NULL, len, J->los[g], J->his[g]);
        }
    }
}

/* LSD radix sort of n 31-bit keys (11-bit digits); returns the sorted copy
   (a or tmp). hist: 2048 counters. */
static uint32_t *acem__sort_u31(uint32_t *a, uint32_t *tmp, size_t n, size_t *hist) {
    int pass;
    size_t i;
    for (pass = 0; pass < 3; ++pass) {
        uint32_t sh = (uint32_t)(11 * pass), *t;
        size_t sum = 0;
        for (i = 0; i < 2048; ++i) hist[i] = 0;
        for (i = 0; i < n; ++i) hist[(a[i] >> sh) & 2047u]++;
        for (i = 0; i < 2048; ++i) { size_t c = hist[i]; hist[i] = sum; sum += c; }
        for (i = 0; i < n; ++i) tmp[hist[(a[i] >> sh) & 2047u]++] = a[i];
        t = a; a = tmp; tmp = t;
    }
    return a;
}
/* the j-th smallest (1-based) of u[0..m), all of which lie in [lo, hi]: radix
   selection on u - lo, 11 bits a round; u is reordered. hist: 4096 counters. */
static uint32_t acem__radix_select(uint32_t *u, size_t m, size_t j, uint32_t lo, uint32_t hi, size_t *hist) {
    for (;;) {
        uint32_t sh = 0, nb, b, lo2, hi2;
        size_t cum = 0, i, w = 0;
        if (lo == hi) return lo;
        while (((hi - lo) >> sh) >= 2048u) ++sh;
        nb = ((hi - lo) >> sh) + 1;
        for (b = 0; b < nb; ++b) hist[b] = hist[2048 + b] = 0;
        for (i = 0; i + 1 < m; i += 2) { /* two histograms: fewer stalls on repeated bins */
            hist[(u[i] - lo) >> sh]++;
            hist[2048 + ((u[i + 1] - lo) >> sh)]++;
        }
        if (i < m) hist[(u[i] - lo) >> sh]++;
        for (b = 0; b < nb; ++b) hist[b] += hist[2048 + b];
        for (b = 0; b + 1 < nb && cum + hist[b] < j; ++b) cum += hist[b];
        j -= cum;
        lo2 = lo + (b << sh);
        hi2 = lo2 + ((1u << sh) - 1u);
        if (hi2 > hi) hi2 = hi;
        for (i = 0; i < m; ++i) { /* u[i] - lo2 <= hi2 - lo2: in [lo2, hi2] (unsigned) */
            uint32_t ui = u[i];
            u[w] = ui;
            w += (size_t)(ui - lo2 <= hi2 - lo2);
        }
        m = w;
        lo = lo2;
        hi = hi2;
    }
}

/* dst[j] = src[j * stride + stride / 2], j < s: one value per stride (a page
   apart or more for large tensors, each a TLB and cache miss), so the loads
   are prefetched a fixed distance ahead to keep many misses in flight */
static void acem__gather(float *dst, const float *src, size_t s, size_t stride) {
    size_t j;
    src += stride / 2;
#if defined(ACEM__EW_AVX2)
    for (j = 0; j < s && j < ACEM__GATHER_PF; ++j) _mm_prefetch((const char *)(const void *)(src + j * stride), _MM_HINT_T0);
    for (j = 0; j < s; ++j) {
        if (j + ACEM__GATHER_PF < s)
            _mm_prefetch((const char *)(const void *)(src + (j + ACEM__GATHER_PF) * stride), _MM_HINT_T0);
        dst[j] = src[j * stride];
    }
#else
    for (j = 0; j < s; ++j) dst[j] = src[j * stride];
#endif
}
/* Threshold bits of ng <= ACEM__TIES_G experts xs[0..ng) (indices t0..),
   into thu[0..ng), from one pass over base and those experts; *bad set when a
   non-finite delta was seen in a sample (the passes that follow check every
   value). Uses the candidate region (L->buf[2]: n uint16, n/2 uint32; free in
   pass 0 and in the fused path) and the histogram. */
static void acem__ties_select(acem_layer *L, const float *const *xs, const float *base, size_t t0, size_t ng,
                              uint32_t *thu, int *bad) {
    size_t d = L->rows * L->cols, kdrop = (size_t)((double)d * L->opt.density), k = d - kdrop;
    size_t s, stride, j, W = acem__workers(&L->opt), capw, w, g;
    size_t *hist = ACEM__CAST(size_t *, L->buf[3]);
    uint32_t *cand = ACEM__CAST(uint32_t *, L->buf[2]), *smp;
    float *bs, *xv;
    double p = (double)k / (double)d, c, hw;
    acem__ew_job J;
    *bad = 0;
    for (g = 0; g < ng; ++g) thu[g] = 0;
    if (kdrop >= d || k == 0) return;
    if (d < ACEM__TIES_SAMPLED) {
        for (g = 0; g < ng; ++g) thu[g] = acem__f2u(acem__ties_threshold(L, acem__dare_key(L, t0 + g), xs[g], base));
        return;
    }
    acem__ew_job_init(&J, L, base);
    J.xs = xs; J.t = t0; J.ng = ng;
    /* each bracket, from s evenly spaced values */
    s = acem__min(d / 16, 16384);
    stride = d / s;
    c = p * (double)s;
    hw = 4.0 * ACEM_SQRT((double)s * p * (1.0 - p)) + 2.0;
    bs = ACEM__CAST(float *, (void *)(cand + 2 * s)); /* base at the sample points, read once */
    xv = bs + s;                                      /* the expert's */
    if (base) acem__gather(bs, base, s, stride);
    for (g = 0; g < ng; ++g) {
        const float *x = xs[g];
        uint64_t key = acem__dare_key(L, t0 + g);
        acem__gather(xv, x, s, stride);
        for (j = 0; j < s; ++j) { /* acem__ew_value at the sample points */
            size_t i = j * stride + stride / 2;
            float dv = base ? xv[j] - bs[j] : xv[j];
            if (!((dv - dv) == 0.0f)) { *bad = 1; return; }
            if (J.D.on) dv = (acem__mix(key + (uint64_t)i) >> 11) < J.D.mthr ? 0.0f : (float)((double)dv / J.D.q);
            cand[j] = acem__f2u(dv) & 0x7fffffffu;
        }
        smp = acem__sort_u31(cand, cand + s, s, hist);
        J.los[g] = c - hw < 0 ? 0u : smp[(size_t)(c - hw)];
        J.his[g] = c + hw + 1.0 >= (double)s ? ACEM__TIES_NO_HI : smp[(size_t)(c + hw + 1.0)];
        { /* the share of the sample in [lo, hi]: small enough to store them all? */
            size_t a = 0, e = s;
            while (a < s && smp[a] < J.los[g]) ++a;
            while (e > 0 && smp[e - 1] > J.his[g]) --e;
            J.ends[g] = (e - a) * 16 <= s; /* at most 1/16 of the values (room: 1/8) */
        }
    }
    /* one pass: counts, and the candidates strictly inside (lo, hi); expert g's
       regions, one per worker, follow each other */
    capw = (d / 2) / (W * ng);
    for (w = 0; w < W; ++w) {
        acem__ew_lane *h = acem__ew_lane_of(L, w);
        ACEM_MEMSET(h, 0, sizeof *h);
        for (g = 0; g < ng; ++g) {
            h->cap[g].cand = cand + (g * W + w) * capw;
            h->cap[g].cap = capw;
        }
    }
    acem__lrun(L, acem__ew_nchunks(d), acem__ties_capture_chunk, &J);
    for (w = 0; w < W; ++w) *bad |= acem__ew_lane_of(L, w)->bad;
    if (*bad) return;
    for (g = 0; g < ng; ++g) {
        size_t lt = 0, le_lo = 0, le_hi = 0, m = 0;
        uint32_t lo = J.los[g], hi = J.his[g], *cg = cand + g * W * capw;
        int overflow = 0;
        for (w = 0; w < W; ++w) { /* gather the candidates at the front of g's regions */
            const acem__cap *h = &acem__ew_lane_of(L, w)->cap[g];
            overflow |= h->overflow;
            lt += h->lt; le_lo += h->le_lo; le_hi += h->le_hi;
            if (h->cand != cg + m)
                for (j = 0; j < h->stored; ++j) cg[m + j] = h->cand[j];
            m += h->stored;
        }
        thu[g] = 0xffffffffu;
        if (J.ends[g]) { /* candidates: lo <= u <= hi */
            if (k > lt && !overflow && k - lt <= m) thu[g] = acem__radix_select(cg, m, k - lt, lo, hi, hist);
        } else if (k > lt) { /* (m counts every candidate unless they overflowed) */
            if (k <= le_lo) thu[g] = lo;
            else if (!overflow && k - le_lo <= m) thu[g] = acem__radix_select(cg, m, k - le_lo, lo + 1, hi - 1, hist);
            else if (!overflow && k <= le_hi) thu[g] = hi;
        }
        if (thu[g] == 0xffffffffu) /* missed: the three passes */
            thu[g] = acem__f2u(acem__ties_threshold(L, acem__dare_key(L, t0 + g), xs[g], base));
    }
}

/* ---- TIES: the streaming passes ---------------------------------------------- */
/* pass 0: sum (+)= the kept values (|v| >= threshold); returns 1 if any value
   is not finite. (sum starts at +0 and never becomes -0, so adding +0 for a
   dropped value changes nothing.) */
static int acem__ties_acc0(float *sum, const float *x, const float *b, size_t n, uint32_t thu, int first) {
    size_t i = 0;
    int bad = 0;
#if defined(ACEM__EW_AVX2)
    {
        const __m256i th = _mm256_set1_epi32((int)thu), am = _mm256_set1_epi32(0x7fffffff);
        __m256 z = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i), drop;
            if (b) v = _mm256_sub_ps(v, _mm256_loadu_ps(b + i));
            z = _mm256_add_ps(z, _mm256_sub_ps(v, v));
            drop = _mm256_castsi256_ps(_mm256_cmpgt_epi32(th, _mm256_and_si256(_mm256_castps_si256(v), am)));
            v = _mm256_andnot_ps(drop, v);
            _mm256_storeu_ps(sum + i, _mm256_add_ps(first ? _mm256_setzero_ps() : _mm256_loadu_ps(sum + i), v));
        }
        bad = _mm256_movemask_ps(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_NEQ_UQ)) != 0;
    }
#endif
    for (; i < n; ++i) {
        float v = b ? x[i] - b[i] : x[i];
        bad |= !((v - v) == 0.0f);
        if ((acem__f2u(v) & 0x7fffffffu) < thu) v = 0.0f;
        sum[i] = (first ? 0.0f : sum[i]) + v;
    }
    return bad;
}
/* pass 1: sum += v and cnt += 1 where v is kept and has the elected sign
   (sg > 0, or sg == 0 with a positive majority: positive; otherwise negative) */
static void acem__ties_acc1(float *sum, uint16_t *cnt, const signed char *sg, const float *x, const float *b,
                            size_t n, uint32_t thu, int majpos) {
    size_t i = 0;
#if defined(ACEM__EW_AVX2)
    {
        const __m256i th = _mm256_set1_epi32((int)thu), am = _mm256_set1_epi32(0x7fffffff);
        const __m256i zi = _mm256_setzero_si256(), mp = _mm256_set1_epi32(majpos ? -1 : 0);
        const __m256 zero = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i), sel;
            __m256i s8 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(sg + i)));
            __m256i c = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(cnt + i)));
            __m256i ppos = _mm256_or_si256(_mm256_cmpgt_epi32(s8, zi), _mm256_and_si256(_mm256_cmpeq_epi32(s8, zi), mp));
            if (b) v = _mm256_sub_ps(v, _mm256_loadu_ps(b + i));
            sel = _mm256_blendv_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), _mm256_cmp_ps(v, zero, _CMP_GT_OQ),
                                   _mm256_castsi256_ps(ppos));
            sel = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(th, _mm256_and_si256(_mm256_castps_si256(v), am))), sel);
            _mm256_storeu_ps(sum + i, _mm256_add_ps(_mm256_loadu_ps(sum + i), _mm256_and_ps(sel, v)));
            c = _mm256_sub_epi32(c, _mm256_castps_si256(sel));
            _mm_storeu_si128((__m128i *)(void *)(cnt + i),
                             _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1)));
        }
    }
#endif
    for (; i < n; ++i) {
        float v = b ? x[i] - b[i] : x[i];
        int pos = sg[i] > 0 || (sg[i] == 0 && majpos);
        if ((acem__f2u(v) & 0x7fffffffu) >= thu && (pos ? v > 0 : v < 0)) {
            sum[i] += v;
            cnt[i]++;
        }
    }
}
/* out = (base or 0) + lambda * sum / max(cnt, 1) */
static void acem__ties_out(float *out, const float *b, const float *sum, const uint16_t *cnt, size_t n, float lam) {
    size_t i = 0;
#if defined(ACEM__EW_AVX2)
    {
        const __m256 l = _mm256_set1_ps(lam);
        const __m256i one = _mm256_set1_epi32(1);
        for (; i + 8 <= n; i += 8) {
            __m256i c = _mm256_max_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(cnt + i))), one);
            __m256 q = _mm256_div_ps(_mm256_loadu_ps(sum + i), _mm256_cvtepi32_ps(c));
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(l, q, b ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps()));
        }
    }
#endif
    for (; i < n; ++i) out[i] = acem__ew_fin1(b ? b[i] : 0.0f, lam, sum[i] / (float)(cnt[i] ? cnt[i] : 1));
}
static void acem__ties_feed_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    acem__ew_lane *h = ACEM__CAST(acem__ew_lane *, work);
    size_t c0, c1, i0;
    (void)nc;
    acem__ew_range(J, c, &c0, &c1);
    for (i0 = c0; i0 < c1; i0 += J->sub) {
        size_t len = acem__min(J->sub, c1 - i0);
        const float *x = J->x + i0, *b = J->base ? J->base + i0 : NULL;
        if (J->D.on) {
            float *v = acem__ew_arr(work, J->sub, 0);
            h->bad |= acem__dare_values(&J->D, acem__dare_key(J->L, J->t), J->x, J->base, i0, len, v);
            x = v;
            b = NULL;
        }
        if (J->L->pass == 0) {
            int bad = acem__ties_acc0(J->acc + i0, x, b, len, J->thu, J->first);
            if (!J->D.on) h->bad |= bad;
        } else acem__ties_acc1(J->acc + i0, J->cnt + i0, J->sg + i0, x, b, len, J->thu, J->majpos);
    }
}
/* after pass 0: sg = sign(sum), #positive - #negative per worker; sum and cnt
   zeroed for pass 1. (Zero sums keep sg = 0 and take the majority's side in
   pass 1, as if sg had been set to it.) */
static void acem__ties_elect_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    acem__ew_lane *h = ACEM__CAST(acem__ew_lane *, work);
    size_t c0, c1, i;
    long long tot = 0;
    (void)nc;
    acem__ew_range(J, c, &c0, &c1);
    for (i = c0; i < c1; ++i) {
        float s = J->acc[i];
        int g = (s > 0) - (s < 0);
        J->sg[i] = (signed char)g;
        tot += g;
        J->acc[i] = 0.0f;
        J->cnt[i] = 0;
    }
    h->tot += tot;
}
static void acem__ties_out_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    size_t c0, c1;
    (void)nc;
    (void)work;
    acem__ew_range(J, c, &c0, &c1);
    acem__ties_out(J->out + c0, J->base ? J->base + c0 : NULL, J->acc + c0, J->cnt + c0, c1 - c0, J->scale);
}

/* ---- TIES: the fused path (all experts in memory) -----------------------------
   With every threshold known (one selection pass per expert), one pass over
   base and the experts does the rest, a sub-block at a time: per element the
   sum of the kept values (the sign election), and the sums and counts of the
   kept positive and kept negative values, each in expert order exactly as the
   two streaming passes add them. The elected side gives out at once. Where
   the sum is zero (or NaN) the side is the majority sign over the whole
   tensor, known only at the end: out takes the negative side and, when the
   two sides differ, the positive side's output is kept aside (in the sum
   buffer, marked in sg and per chunk); a positive majority then copies those
   in. */
static int acem__ties_blk_acc(const float *x, const float *b, size_t n, uint32_t thu, float *sall, float *pos,
                              float *neg, int32_t *cp, int32_t *cn) {
    size_t i = 0;
    int bad = 0;
#if defined(ACEM__EW_AVX2)
    {
        const __m256i th = _mm256_set1_epi32((int)thu), am = _mm256_set1_epi32(0x7fffffff);
        const __m256 zero = _mm256_setzero_ps();
        __m256 z = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i), pm, nm;
            if (b) v = _mm256_sub_ps(v, _mm256_loadu_ps(b + i));
            z = _mm256_add_ps(z, _mm256_sub_ps(v, v));
            v = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(th, _mm256_and_si256(_mm256_castps_si256(v), am))), v);
            pm = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
            nm = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
            _mm256_storeu_ps(sall + i, _mm256_add_ps(_mm256_loadu_ps(sall + i), v));
            _mm256_storeu_ps(pos + i, _mm256_add_ps(_mm256_loadu_ps(pos + i), _mm256_and_ps(pm, v)));
            _mm256_storeu_ps(neg + i, _mm256_add_ps(_mm256_loadu_ps(neg + i), _mm256_and_ps(nm, v)));
            _mm256_storeu_si256((__m256i *)(void *)(cp + i),
                                _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(cp + i)), _mm256_castps_si256(pm)));
            _mm256_storeu_si256((__m256i *)(void *)(cn + i),
                                _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(cn + i)), _mm256_castps_si256(nm)));
        }
        bad = _mm256_movemask_ps(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_NEQ_UQ)) != 0;
    }
#endif
    for (; i < n; ++i) {
        float v = b ? x[i] - b[i] : x[i];
        bad |= !((v - v) == 0.0f);
        if ((acem__f2u(v) & 0x7fffffffu) < thu) continue;
        sall[i] += v;
        if (v > 0) { pos[i] += v; cp[i]++; }
        if (v < 0) { neg[i] += v; cn[i]++; }
    }
    return bad;
}
/* Marks of the elements that need the positive side: fl (the chunk's part of
   sg, from its first element; element 0 of this call is fl[fi]) is written only
   once a mark appears in the chunk (*dirty), then kept up to date, zeros
   included; the chunk's flag says whether it holds any. */
static void acem__ties_mark(unsigned char *fl, size_t fi, size_t i, unsigned m8, int nbits, int *dirty) {
    int j;
    if (!m8 && !*dirty) return;
    if (!*dirty) { ACEM_MEMSET(fl, 0, fi + i); *dirty = 1; }
    for (j = 0; j < nbits; ++j) fl[fi + i + (size_t)j] = (unsigned char)((m8 >> j) & 1u);
}
/* out from the block's sums; alt and the marks: the positive side where the
   election is undecided and the sides differ. Returns how many such elements. */
static size_t acem__ties_blk_out(float *out, const float *b, size_t n, float lam, const float *sall, const float *pos,
                                 const float *neg, const int32_t *cp, const int32_t *cn, float *alt,
                                 unsigned char *fl, size_t fi, int *dirty, long long *tot, void *work, size_t sub) {
    size_t i = 0, nfix = 0;
    long long tt = 0;
#if defined(ACEM__EW_AVX2)
    {
        const __m256 l = _mm256_set1_ps(lam), zero = _mm256_setzero_ps();
        const __m256i one = _mm256_set1_epi32(1), zi = _mm256_setzero_si256();
        for (; i + 8 <= n; i += 8) {
            __m256 s = _mm256_loadu_ps(sall + i), p = _mm256_loadu_ps(pos + i);
            __m256 gt = _mm256_cmp_ps(s, zero, _CMP_GT_OQ), lt = _mm256_cmp_ps(s, zero, _CMP_LT_OQ);
            __m256i ip = _mm256_loadu_si256((const __m256i *)(const void *)(cp + i));
            __m256i in = _mm256_loadu_si256((const __m256i *)(const void *)(cn + i));
            __m256 bv = b ? _mm256_loadu_ps(b + i) : zero, q, fixm;
            __m256i c = _mm256_max_epi32(_mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(in), _mm256_castsi256_ps(ip), gt)), one);
            unsigned mg = (unsigned)_mm256_movemask_ps(gt), ml = (unsigned)_mm256_movemask_ps(lt), mf;
            q = _mm256_div_ps(_mm256_blendv_ps(_mm256_loadu_ps(neg + i), p, gt), _mm256_cvtepi32_ps(c));
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(l, q, bv));
            tt += acem__pop8(mg) - acem__pop8(ml);
            fixm = _mm256_andnot_ps(_mm256_or_ps(gt, lt), _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_add_epi32(ip, in), zi)));
            mf = (unsigned)_mm256_movemask_ps(fixm);
            if (mf) {
                __m256 qa = _mm256_div_ps(p, _mm256_cvtepi32_ps(_mm256_max_epi32(ip, one)));
                _mm256_maskstore_ps(alt + i, _mm256_castps_si256(fixm), _mm256_fmadd_ps(l, qa, bv));
                nfix += (size_t)acem__pop8(mf);
            }
            acem__ties_mark(fl, fi, i, mf, 8, dirty);
        }
    }
#endif
    if (i < n) { /* the rest (all of it in plain C builds): through acem__ties_out,
                    the streaming finish's own code, whatever the compiler contracts */
        float *ss = acem__ew_arr(work, sub, 0), *ta = acem__ew_arr(work, sub, 7);
        uint16_t *sc = ACEM__CAST(uint16_t *, (void *)acem__ew_arr(work, sub, 6)), *pc = sc + sub;
        size_t j, m = n - i, nf = 0;
        for (j = 0; j < m; ++j) {
            float s = sall[i + j];
            int gt = s > 0, lt = s < 0;
            ss[j] = gt ? pos[i + j] : neg[i + j];
            sc[j] = (uint16_t)(gt ? cp[i + j] : cn[i + j]);
            pc[j] = (uint16_t)cp[i + j];
            tt += gt - lt;
            nf += (size_t)(!gt && !lt && cp[i + j] + cn[i + j] > 0);
        }
        acem__ties_out(out + i, b ? b + i : NULL, ss, sc, m, lam);
        if (nf) acem__ties_out(ta, b ? b + i : NULL, pos + i, pc, m, lam);
        for (j = 0; j < m; ++j) {
            float s = sall[i + j];
            int fix = !(s > 0) && !(s < 0) && cp[i + j] + cn[i + j] > 0;
            if (fix) alt[i + j] = ta[j];
            if (nf || *dirty) acem__ties_mark(fl, fi, i + j, (unsigned)fix, 1, dirty);
        }
        nfix += nf;
    }
    *tot += tt;
    return nfix;
}
#if defined(ACEM__EW_AVX2)
/* The same for elements [i0, i0 + n) straight from the experts (no DARE), the
   sums in registers: what acem__ties_blk_acc over t and then acem__ties_blk_out
   compute, element by element. *bad: a non-finite delta was seen. */
static size_t acem__ties_sum_out(float *out, const float *const *xs, size_t T, const uint32_t *thus, const float *b,
                                 size_t i0, size_t n, float lam, float *alt, unsigned char *fl, long long *tot,
                                 int *bad) {
    size_t i = 0, t, nfix = 0;
    long long tt = 0;
    int dirty = 0;
#if defined(ACEM__EW_AVX2)
    {
        const __m256 l = _mm256_set1_ps(lam), zero = _mm256_setzero_ps();
        const __m256i one = _mm256_set1_epi32(1), zi = _mm256_setzero_si256(), am = _mm256_set1_epi32(0x7fffffff);
        __m256i cgl = zi, umax = zi;
        int32_t tmp[8];
        int j;
        /* per expert: v masked to +0 where dropped, zeros dropped too (adding
           +0 or a kept zero changes no sum: sa, p and ng never are -0); the
           positive side adds max(v, +0) and the negative side min(v, +0),
           which are v or +0 exactly as the masked adds of acem__ties_blk_acc
           (MAXPS / MINPS return the second operand for two zeros); a kept v is
           nonzero, so cn = kept - cp, with kept = T - drops. A non-finite delta
           is always kept, so it shows in sa; so does an overflow of finite
           ones, which the caller then finds to be none and sends to the
           streaming path. */
#define ACEM__TIES_ACC(S, V, DROP)                                                                              \
        V = _mm256_andnot_ps(DROP, V);                                                                          \
        sa##S = _mm256_add_ps(sa##S, V);                                                                        \
        p##S = _mm256_add_ps(p##S, _mm256_max_ps(V, zero));                                                     \
        ng##S = _mm256_add_ps(ng##S, _mm256_min_ps(V, zero));                                                   \
        ip##S = _mm256_sub_epi32(ip##S, _mm256_castps_si256(_mm256_cmp_ps(V, zero, _CMP_GT_OQ)));               \
        in##S = _mm256_add_epi32(in##S, _mm256_castps_si256(DROP));
#define ACEM__TIES_DROP(V, TH) _mm256_castsi256_ps(_mm256_cmpgt_epi32(TH, _mm256_and_si256(_mm256_castps_si256(V), am)))
#define ACEM__TIES_FIN(S, K, I, BV)                                                                             \
        {                                                                                                       \
            __m256 gt, lt, q, fixm;                                                                             \
            __m256i c;                                                                                          \
            unsigned mf;                                                                                        \
            in##S = _mm256_sub_epi32(in##S, ip##S); /* T - drops - positives */                                 \
            umax = _mm256_max_epu32(umax, _mm256_and_si256(_mm256_castps_si256(sa##S), am));                    \
            gt = _mm256_cmp_ps(sa##S, zero, _CMP_GT_OQ);                                                        \
            lt = _mm256_cmp_ps(sa##S, zero, _CMP_LT_OQ);                                                        \
            c = _mm256_max_epi32(_mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(in##S), _mm256_castsi256_ps(ip##S), gt)), one); \
            q = _mm256_div_ps(_mm256_blendv_ps(ng##S, p##S, gt), _mm256_cvtepi32_ps(c));                       \
            _mm256_storeu_ps(out + (K), _mm256_fmadd_ps(l, q, BV));                                             \
            cgl = _mm256_add_epi32(_mm256_sub_epi32(cgl, _mm256_castps_si256(gt)), _mm256_castps_si256(lt));    \
            fixm = _mm256_andnot_ps(_mm256_or_ps(gt, lt), _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_add_epi32(ip##S, in##S), zi))); \
            mf = (unsigned)_mm256_movemask_ps(fixm);                                                            \
            if (mf) {                                                                                           \
                __m256 qa = _mm256_div_ps(p##S, _mm256_cvtepi32_ps(_mm256_max_epi32(ip##S, one)));              \
                _mm256_maskstore_ps(alt + (K), _mm256_castps_si256(fixm), _mm256_fmadd_ps(l, qa, BV));          \
                nfix += (size_t)acem__pop8(mf);                                                                 \
            }                                                                                                   \
            acem__ties_mark(fl, 0, I, mf, 8, &dirty);                                                           \
        }
#define ACEM__TIES_VLOOP(BA, LOADA, PFB)                                                                        \
        for (; i + 8 <= n; i += 8) {                                                                            \
            size_t k = i0 + i;                                                                                  \
            __m256 bva = BA, saa = zero, pa = zero, nga = zero;                                                 \
            __m256i ipa = zi, ina = _mm256_set1_epi32((int)T);                                                  \
            PFB;                                                                                                \
            for (t = 0; t < T; ++t) {                                                                           \
                __m256 va = LOADA, da = ACEM__TIES_DROP(va, _mm256_set1_epi32((int)thus[t]));                   \
                _mm_prefetch((const char *)(const void *)(xs[t] + k + ACEM__EW_PF), _MM_HINT_T0);              \
                ACEM__TIES_ACC(a, va, da)                                                                       \
            }                                                                                                   \
            ACEM__TIES_FIN(a, k, i, bva)                                                                        \
        }
#if defined(ACEM__AVX512)
        { /* 16 lanes at a time, the same operations per element (the lane
             masks in mask registers): what the loop below does, at half the
             instructions; it finishes the last 8. (maskz forms with a full
             mask: GCC 12's plain ones start from _mm512_undefined_*, which
             -Wmaybe-uninitialized flags in C++.) */
            const __m512 l16 = _mm512_set1_ps(lam), z16 = _mm512_setzero_ps();
            const __m512i one16 = _mm512_set1_epi32(1), am16 = _mm512_set1_epi32(0x7fffffff);
            __m512i umax16 = _mm512_setzero_si512();
            long long t16 = 0;
            for (; i + 16 <= n; i += 16) {
                size_t k = i0 + i;
                __m512 bv = b ? _mm512_loadu_ps(b + k) : z16, sa = z16, p = z16, ng = z16, q;
                __m512i ip = _mm512_setzero_si512(), in = _mm512_set1_epi32((int)T), c;
                __mmask16 gt, lt, mf;
                if (b) _mm_prefetch((const char *)(const void *)(b + k + ACEM__EW_PF), _MM_HINT_T0);
                for (t = 0; t < T; ++t) {
                    __m512 v = _mm512_loadu_ps(xs[t] + k);
                    __mmask16 keep;
                    _mm_prefetch((const char *)(const void *)(xs[t] + k + ACEM__EW_PF), _MM_HINT_T0);
                    if (b) v = _mm512_sub_ps(v, bv);
                    keep = _mm512_cmpge_epu32_mask(_mm512_and_si512(_mm512_castps_si512(v), am16),
                                                   _mm512_set1_epi32((int)thus[t]));
                    v = _mm512_maskz_mov_ps(keep, v);
                    sa = _mm512_add_ps(sa, v);
                    p = _mm512_add_ps(p, _mm512_maskz_max_ps(0xffff, v, z16));
                    ng = _mm512_add_ps(ng, _mm512_maskz_min_ps(0xffff, v, z16));
                    ip = _mm512_mask_add_epi32(ip, _mm512_cmp_ps_mask(v, z16, _CMP_GT_OQ), ip, one16);
                    in = _mm512_mask_sub_epi32(in, (__mmask16)~keep, in, one16);
                }
                in = _mm512_sub_epi32(in, ip);
                umax16 = _mm512_maskz_max_epu32(0xffff, umax16, _mm512_and_si512(_mm512_castps_si512(sa), am16));
                gt = _mm512_cmp_ps_mask(sa, z16, _CMP_GT_OQ);
                lt = _mm512_cmp_ps_mask(sa, z16, _CMP_LT_OQ);
                c = _mm512_maskz_max_epi32(0xffff, _mm512_mask_blend_epi32(gt, in, ip), one16);
                q = _mm512_div_ps(_mm512_mask_blend_ps(gt, ng, p), _mm512_maskz_cvtepi32_ps(0xffff, c));
                _mm512_storeu_ps(out + k, _mm512_fmadd_ps(l16, q, bv));
                t16 += acem__pop16(gt) - acem__pop16(lt);
                mf = (__mmask16)(~(gt | lt) & _mm512_cmpgt_epi32_mask(_mm512_add_epi32(ip, in), _mm512_setzero_si512()));
                if (mf) {
                    __m512 qa = _mm512_div_ps(p, _mm512_maskz_cvtepi32_ps(0xffff, _mm512_maskz_max_epi32(0xffff, ip, one16)));
                    _mm512_mask_storeu_ps(alt + k, mf, _mm512_fmadd_ps(l16, qa, bv));
                    nfix += (size_t)acem__pop16(mf);
                }
                acem__ties_mark(fl, 0, i, mf, 16, &dirty);
            }
            *bad |= _mm512_cmpgt_epu32_mask(umax16, _mm512_set1_epi32(0x7f7fffff)) != 0;
            tt += t16;
        }
#endif
        if (b)
            ACEM__TIES_VLOOP(_mm256_loadu_ps(b + k), _mm256_sub_ps(_mm256_loadu_ps(xs[t] + k), bva),
                             _mm_prefetch((const char *)(const void *)(b + k + ACEM__EW_PF), _MM_HINT_T0))
        else
            ACEM__TIES_VLOOP(zero, _mm256_loadu_ps(xs[t] + k), (void)0)
#undef ACEM__TIES_VLOOP
#undef ACEM__TIES_FIN
#undef ACEM__TIES_DROP
#undef ACEM__TIES_ACC
        /* a non-finite sum: bits above the largest finite float's */
        *bad |= _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(umax, _mm256_set1_epi32(0x7f7fffff)))) != 0;
        _mm256_storeu_si256((__m256i *)(void *)tmp, cgl);
        for (j = 0; j < 8; ++j) tt += tmp[j];
    }
#endif
    for (; i < n; ++i) {
        size_t k = i0 + i;
        float sa = 0.0f, p = 0.0f, ng = 0.0f, bi = b ? b[k] : 0.0f;
        int32_t cp = 0, cn = 0, c;
        int gt, lt;
        for (t = 0; t < T; ++t) {
            float v = b ? xs[t][k] - b[k] : xs[t][k];
            *bad |= !((v - v) == 0.0f);
            if ((acem__f2u(v) & 0x7fffffffu) < thus[t]) continue;
            sa += v;
            if (v > 0) { p += v; cp++; }
            if (v < 0) { ng += v; cn++; }
        }
        gt = sa > 0;
        lt = sa < 0;
        c = gt ? cp : cn;
        out[k] = acem__ew_fin1(bi, lam, (gt ? p : ng) / (float)(c ? c : 1));
        tt += gt - lt;
        if (!gt && !lt && cp + cn > 0) {
            alt[k] = acem__ew_fin1(bi, lam, p / (float)(cp ? cp : 1));
            ++nfix;
            acem__ties_mark(fl, 0, i, 1u, 1, &dirty);
        } else
            acem__ties_mark(fl, 0, i, 0u, 1, &dirty);
    }
    *tot += tt;
    return nfix;
}
#endif
static void acem__ties_fused_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    acem__ew_lane *h = ACEM__CAST(acem__ew_lane *, work);
    unsigned char *fl = ACEM__CAST(unsigned char *, (void *)(J->sg + c * ACEM__EW_CHUNK)); /* the chunk's marks */
    size_t c0, c1, i0, t, nfix = 0;
    int dirty = 0;
    (void)nc;
    acem__ew_range(J, c, &c0, &c1);
#if defined(ACEM__EW_AVX2)
    if (!J->D.on)
        nfix = acem__ties_sum_out(J->out, J->xs, J->L->T, J->thus, J->base, c0, c1 - c0, J->scale, J->acc, fl, &h->tot,
                                  &h->bad);
    else
#endif
        for (i0 = c0; i0 < c1; i0 += J->sub) {
            size_t len = acem__min(J->sub, c1 - i0);
            float *v = acem__ew_arr(work, J->sub, 0), *sall = acem__ew_arr(work, J->sub, 1);
            float *pos = acem__ew_arr(work, J->sub, 2), *neg = acem__ew_arr(work, J->sub, 3);
            int32_t *cp = ACEM__CAST(int32_t *, (void *)acem__ew_arr(work, J->sub, 4));
            int32_t *cn = ACEM__CAST(int32_t *, (void *)acem__ew_arr(work, J->sub, 5));
            ACEM_MEMSET(sall, 0, len * sizeof(float));
            ACEM_MEMSET(pos, 0, len * sizeof(float));
            ACEM_MEMSET(neg, 0, len * sizeof(float));
            ACEM_MEMSET(cp, 0, len * sizeof(int32_t));
            ACEM_MEMSET(cn, 0, len * sizeof(int32_t));
            for (t = 0; t < J->L->T; ++t) {
                if (J->D.on) {
                    h->bad |= acem__dare_values(&J->D, acem__dare_key(J->L, t), J->xs[t], J->base, i0, len, v);
                    acem__ties_blk_acc(v, NULL, len, J->thus[t], sall, pos, neg, cp, cn);
                } else
                    h->bad |= acem__ties_blk_acc(J->xs[t] + i0, J->base ? J->base + i0 : NULL, len, J->thus[t], sall,
                                                 pos, neg, cp, cn);
            }
            nfix += acem__ties_blk_out(J->out + i0, J->base ? J->base + i0 : NULL, len, J->scale, sall, pos, neg, cp,
                                       cn, J->acc + i0, fl, i0 - c0, &dirty, &h->tot, work, J->sub);
        }
    J->cflag[c] = (unsigned char)(nfix != 0);
}
static void acem__ties_fix_chunk(void *ctx, size_t c, size_t nc, void *work) {
    const acem__ew_job *J = ACEM__CAST(const acem__ew_job *, ctx);
    size_t c0, c1, i;
    (void)nc;
    (void)work;
    if (!J->cflag[c]) return;
    acem__ew_range(J, c, &c0, &c1);
    for (i = c0; i < c1; ++i)
        if (J->sg[i]) J->out[i] = J->acc[i];
}

/* ---- ACE feed: fused row passes, split over the workers ------------------------
   Reductions go through ACEM__SLOTS fixed slots of rows (boundaries from the
   shapes only), each summed in row order by one lane; the slots' partials are
   combined in slot order, so every sum is the same for any number of workers.
   Row-local work needs no such care. Sums of squares and products are f64
   with one accumulator per SIMD lane, folded in a fixed order. */
static size_t acem__slot_row(size_t R, size_t s, size_t ns) {
    return R / ns * s + R % ns * s / ns;
}

/* sum of (x - base)^2 (f64) over n values; *bad set if any delta is not finite */
static double acem__sumsq_delta(const float *x, const float *b, size_t n, int *bad) {
    size_t i = 0;
    double s = 0;
    int nf = 0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    __m256d a0 = _mm256_setzero_pd(), a1 = a0;
    __m256 fin = _mm256_setzero_ps(); /* d - d: 0 when finite, NaN otherwise */
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_loadu_ps(x + i);
        __m256d lo, hi;
        if (b) d = _mm256_sub_ps(d, _mm256_loadu_ps(b + i));
        fin = _mm256_add_ps(fin, _mm256_sub_ps(d, d));
        lo = _mm256_cvtps_pd(_mm256_castps256_ps128(d));
        hi = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
        a0 = _mm256_fmadd_pd(lo, lo, a0);
        a1 = _mm256_fmadd_pd(hi, hi, a1);
    }
    {
        double t[4];
        float f[8];
        _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
        s = (t[0] + t[1]) + (t[2] + t[3]);
        _mm256_storeu_ps(f, fin);
        for (nf = 0; nf < 8 && f[nf] == 0.0f; ++nf) {}
        nf = nf < 8;
    }
#endif
    for (; i < n; ++i) {
        float d = b ? x[i] - b[i] : x[i];
        nf |= !((d - d) == 0.0f);
        s += (double)d * d;
    }
    *bad |= nf;
    return s;
}

/* One row of the centring: dr = float(d - mu), sr += dr (sr may be NULL), and
   (f64) acc[0] += sum dr^2, acc[1] = sum dr, acc[2] = sum dr mu. */
static void acem__ace_row(const float *xr, const float *br, const double *mu, size_t C, float *dr, float *sr,
                          double *acc) {
    size_t j = 0;
    double q = 0, t1 = 0, t2 = 0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    __m256d vq = _mm256_setzero_pd(), v1 = vq, v2 = vq;
    for (; j + 4 <= C; j += 4) {
        __m128 d = _mm_loadu_ps(xr + j), v;
        __m256d m = _mm256_loadu_pd(mu + j), vd;
        if (br) d = _mm_sub_ps(d, _mm_loadu_ps(br + j));
        v = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_cvtps_pd(d), m));
        _mm_storeu_ps(dr + j, v);
        if (sr) _mm_storeu_ps(sr + j, _mm_add_ps(_mm_loadu_ps(sr + j), v));
        vd = _mm256_cvtps_pd(v);
        vq = _mm256_fmadd_pd(vd, vd, vq);
        v1 = _mm256_add_pd(v1, vd);
        v2 = _mm256_fmadd_pd(vd, m, v2);
    }
    {
        double t[4];
        _mm256_storeu_pd(t, vq); q = (t[0] + t[1]) + (t[2] + t[3]);
        _mm256_storeu_pd(t, v1); t1 = (t[0] + t[1]) + (t[2] + t[3]);
        _mm256_storeu_pd(t, v2); t2 = (t[0] + t[1]) + (t[2] + t[3]);
    }
#endif
    for (; j < C; ++j) {
        float d = br ? xr[j] - br[j] : xr[j];
        float v = (float)((double)d - mu[j]);
        dr[j] = v;
        if (sr) sr[j] += v;
        q += (double)v * v;
        t1 += (double)v;
        t2 += (double)v * mu[j];
    }
    acc[0] += q;
    acc[1] = t1;
    acc[2] = t2;
}

typedef struct acem__ace_job {
    const float *x, *base;
    float *Dc, *S;
    size_t R, C;
    const double *mu;
    double *P, *Ptr; /* slot partials: P 2 x ns x C, Ptr ns */
} acem__ace_job;
/* pass 0, slot s: sum of squares of the delta (the gate norm) */
static void acem__ace_norm_slot(void *ctx, size_t s, size_t ns, void *work) {
    const acem__ace_job *J = ACEM__CAST(const acem__ace_job *, ctx);
    size_t r0 = acem__slot_row(J->R, s, ns), r1 = acem__slot_row(J->R, s + 1, ns), o = r0 * J->C;
    int bad = 0;
    (void)work;
    J->Ptr[s] = acem__sumsq_delta(J->x + o, J->base ? J->base + o : NULL, (r1 - r0) * J->C, &bad);
    J->P[s] = bad; /* flag: the caller names the position */
}
/* slot s: column sums of the delta */
static void acem__ace_colsum_slot(void *ctx, size_t s, size_t ns, void *work) {
    const acem__ace_job *J = ACEM__CAST(const acem__ace_job *, ctx);
    size_t r0 = acem__slot_row(J->R, s, ns), r1 = acem__slot_row(J->R, s + 1, ns), C = J->C, i, j;
    double *p = J->P + s * C;
    (void)work;
    for (j = 0; j < C; ++j) p[j] = 0;
    for (i = r0; i < r1; ++i) {
        const float *xr = J->x + i * C, *br = J->base ? J->base + i * C : NULL;
        j = 0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
        for (; j + 4 <= C; j += 4) {
            __m128 d = _mm_loadu_ps(xr + j);
            if (br) d = _mm_sub_ps(d, _mm_loadu_ps(br + j));
            _mm256_storeu_pd(p + j, _mm256_add_pd(_mm256_loadu_pd(p + j), _mm256_cvtps_pd(d)));
        }
#endif
        for (; j < C; ++j) p[j] += (double)(br ? xr[j] - br[j] : xr[j]);
    }
}
/* slot s: Dc = delta - mu and S += Dc row by row; the trace partial; the
   column sums of Sigma_t 1 and Sigma_t mu (unscaled): Dc^T (Dc 1) and
   Dc^T (Dc mu), each row's Dc 1 and Dc mu being known once it is centred */
static void acem__ace_center_slot(void *ctx, size_t s, size_t ns, void *work) {
    const acem__ace_job *J = ACEM__CAST(const acem__ace_job *, ctx);
    size_t r0 = acem__slot_row(J->R, s, ns), r1 = acem__slot_row(J->R, s + 1, ns), C = J->C, i, j;
    double *y1 = J->P + s * C, *y2 = J->P + (ns + s) * C, acc[3] = {0, 0, 0};
    (void)work;
    for (j = 0; j < C; ++j) y1[j] = y2[j] = 0;
    for (i = r0; i < r1; ++i) {
        float *dr = J->Dc + i * C;
        acem__ace_row(J->x + i * C, J->base ? J->base + i * C : NULL, J->mu, C, dr, J->S ? J->S + i * C : NULL, acc);
        j = 0;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
        { /* a product, then a sum: the same rounding as the scalar tail */
            __m256d a1 = _mm256_set1_pd(acc[1]), a2 = _mm256_set1_pd(acc[2]);
            for (; j + 4 <= C; j += 4) {
                __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(dr + j));
                _mm256_storeu_pd(y1 + j, _mm256_add_pd(_mm256_loadu_pd(y1 + j), _mm256_mul_pd(d, a1)));
                _mm256_storeu_pd(y2 + j, _mm256_add_pd(_mm256_loadu_pd(y2 + j), _mm256_mul_pd(d, a2)));
            }
        }
#endif
        for (; j < C; ++j) {
            y1[j] += (double)dr[j] * acc[1];
            y2[j] += (double)dr[j] * acc[2];
        }
    }
    J->Ptr[s] = acc[0];
}


/* Y[i][j] += (float)v[j] for the rows of Y (R x C), split over the workers */
typedef struct acem__rows_job {
    size_t R, C;
    const double *v;
    float *Y;
    double denom;
} acem__rows_job;
static void acem__rowadd_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__rows_job *J = ACEM__CAST(const acem__rows_job *, ctx);
    size_t s = acem__bound(J->R, c, np, 0), e = acem__bound(J->R, c + 1, np, 0), i, j;
    (void)work;
    for (i = s; i < e; ++i) {
        float *y = J->Y + i * J->C;
        for (j = 0; j < J->C; ++j) y[j] += (float)J->v[j];
    }
}
/* Sherman-Morrison on the rows of Y = B A0^-1: y -= (y 1 / denom) z^T */
static void acem__sm_part(void *ctx, size_t c, size_t np, void *work) {
    const acem__rows_job *J = ACEM__CAST(const acem__rows_job *, ctx);
    size_t s = acem__bound(J->R, c, np, 0), e = acem__bound(J->R, c + 1, np, 0), i, j;
    (void)work;
    for (i = s; i < e; ++i) {
        float *y = J->Y + i * J->C;
        double rs = 0, f;
        for (j = 0; j < J->C; ++j) rs += y[j];
        f = rs / J->denom;
        for (j = 0; j < J->C; ++j) y[j] -= (float)(f * J->v[j]);
    }
}
static void acem__prows(const acem__exec *X, acem__part_fn fn, size_t R, size_t C, const double *v, float *Y,
                        double denom) {
    acem__rows_job J;
    J.R = R; J.C = C; J.v = v; J.Y = Y; J.denom = denom;
    acem__run(X, acem__nparts_min(X, R, R * C), fn, &J);
}

/* out = base + scale M on the layer's workers: the element-wise rules' output
   loop (acem__ew_out), the one place that writes a merged tensor */
static void acem__lwrite_out(const acem_layer *L, float *out, const float *base, float *M, size_t n,
                             float scale) {
    acem__ew_job J;
    acem__ew_job_init(&J, L, base);
    J.n = n;
    J.out = out;
    J.acc = M;
    J.scale = scale;
    acem__lrun(L, acem__ew_nchunks(n), acem__ew_out_chunk, &J);
}

/* ---- feed ------------------------------------------------------------------ */
/* the refinement's k = floor(min(R, C) k_frac), and whether the layer takes
   the refinement (known once pass 0 has set the gate): only then are Res's
   accumulators E and S kept */
static size_t acem__ace_k(const acem_layer *L) {
    return (size_t)((double)acem__min(L->rows, L->cols) * L->opt.k_frac);
}
static int acem__ace_refines(const acem_layer *L) {
    return L->stat[ACEM__ST_GATED] != 0 && !(L->opt.flags & ACEM_FLAG_NO_REFINE) && acem__ace_k(L) > 0;
}
static acem_result acem__feed_ace(acem_layer *L, const float *x, const float *base, acem_error *err) {
    size_t R = L->rows, C = L->cols, t = L->fed, ns = acem__nslots(R), s, j;
    double *st = L->stat, *mu = ACEM__CAST(double *, L->buf[5]), *msum = mu + C, *vsum = msum + C;
    double *musum = vsum + C, *P = mu + 5 * C, *Ptr = P + 2 * ns * C;
    acem__exec X = acem__lexec(L);
    acem__ace_job J;
    J.x = x; J.base = base; J.R = R; J.C = C; J.mu = mu; J.P = P; J.Ptr = Ptr;
    J.Dc = ACEM__CAST(float *, L->buf[0]);
    J.S = ACEM__CAST(float *, L->buf[3]);
    if (L->pass == 0) { /* gate statistics: norms of the uncentred delta (Welford on logs) */
        double nt = 0;
        int bad = 0;
        if (L->T == 1) return acem__load_delta(L, x, base, J.S, err);
        acem__run_items(&X, ns, acem__ace_norm_slot, &J);
        for (s = 0; s < ns; ++s) {
            nt += Ptr[s];
            bad |= P[s] != 0;
        }
        if (bad) return acem__check_finite(L, x, base, err);
        acem__gate_add(&st[ACEM__ST_MEAN_L], &st[ACEM__ST_M2_L], t, nt);
        st[ACEM__ST_SUM_N] += nt;
        return ACEM_OK;
    }
    {
        float *Q = ACEM__CAST(float *, L->buf[1]), *E = ACEM__CAST(float *, L->buf[2]);
        float *Sacc = ACEM__CAST(float *, L->buf[4]), *Tmp = Sacc + C * C;
        double tr = 0, alpha, e;
        int gated = st[ACEM__ST_GATED] != 0, refines = acem__ace_refines(L);
        if (t == 0) { /* on the workers: for a large tensor this is the first touch of the arena */
            acem__pzero(&X, Q, R * C * sizeof(float));
            if (refines) {
                acem__pzero(&X, E, R * C * sizeof(float));
                acem__pzero(&X, J.S, R * C * sizeof(float));
            }
        }
        if (!refines) J.S = NULL;
        acem__run_items(&X, ns, acem__ace_colsum_slot, &J); /* mu: column means of the delta */
        for (j = 0; j < C; ++j) {
            double m = 0;
            for (s = 0; s < ns; ++s) m += P[s * C + j];
            mu[j] = m / (double)R;
        }
        acem__run_items(&X, ns, acem__ace_center_slot, &J); /* Dc, (S,) trace, Sigma_t 1, Sigma_t mu */
        for (s = 0; s < ns; ++s) tr += Ptr[s];
        tr += ACEM__GUARD;
        alpha = gated ? 1.0 / tr : 1.0;
        e = gated ? L->opt.eps / tr : L->opt.eps;
        st[ACEM__ST_ESUM] += e;
        if (refines) acem__paxpy(&X, R * C, (float)-e, J.Dc, E); /* Res takes Q without the ridge terms */
        for (j = 0; j < C; ++j) { /* column sums of Sigma_t and of Sigma_t mu */
            double y1 = 0, y2 = 0;
            for (s = 0; s < ns; ++s) {
                y1 += P[s * C + j];
                y2 += P[(ns + s) * C + j];
            }
            msum[j] += alpha * y1;
            vsum[j] += alpha * y2;
            musum[j] += mu[j];
        }
        /* Q += Dc Sigmareg_t = alpha Dc (S_t + eps I): e / alpha is eps, gated or not */
        acem__gram_accum(L, R, C, J.Dc, (float)alpha, (float)L->opt.eps, Sacc, Tmp, Q);
    }
    return ACEM_OK;
}

static void acem__end_pass(acem_layer *L) {
    double *st = L->stat;
    if (L->rule != ACEM_RULE_METHOD) return;
    if (L->opt.method == ACEM_ACE && L->pass == 0 && L->T > 1)
        st[ACEM__ST_GATED] = acem__gate_decide(&L->opt, L->T, st[ACEM__ST_MEAN_L], st[ACEM__ST_M2_L], &st[ACEM__ST_GAMMA]);
    if ((L->opt.method == ACEM_TIES || L->opt.method == ACEM_DARE_TIES) && L->pass == 0 && L->rows && L->cols) {
        acem__ew_job J; /* the sign election; zero sums take the majority sign in pass 1 */
        size_t w;
        long long tot = 0;
        acem__ew_job_init(&J, L, NULL);
        J.acc = ACEM__CAST(float *, L->buf[0]);
        J.sg = ACEM__CAST(signed char *, L->buf[1]);
        J.cnt = ACEM__CAST(uint16_t *, L->buf[2]);
        acem__ew_lanes_init(L);
        acem__lrun(L, acem__ew_nchunks(J.n), acem__ties_elect_chunk, &J);
        for (w = 0; w < acem__workers(&L->opt); ++w) tot += acem__ew_lane_of(L, w)->tot;
        st[ACEM__ST_MAJ] = (double)((tot > 0) - (tot < 0));
    }
}

static acem_result acem__feed_tsvm(acem_layer *L, const float *x, const float *base, acem_error *err) {
    size_t R = L->rows, C = L->cols, n = acem__min(R, C), kt = n / L->T, t = L->fed, i;
    float *D = ACEM__CAST(float *, L->buf[0]), *U = ACEM__CAST(float *, L->buf[1]);
    float *V = ACEM__CAST(float *, L->buf[2]);
    double *sall = ACEM__CAST(double *, L->buf[3]), *G = ACEM__CAST(double *, L->buf[4]);
    double *w = ACEM__CAST(double *, L->buf[7]);
    acem__exec X = acem__lexec(L);
    acem_result r;
    if ((r = acem__load_delta(L, x, base, D, err)) != ACEM_OK) return r;
    if (!kt) return ACEM_OK;
    if ((r = acem__svd_small(R, C, D, C, G, w, w + n, kt, ACEM__CAST(double *, L->buf[11]), &X,
                             ACEM__CAST(double *, L->buf[9]), NULL)) != ACEM_OK)
        return acem__fail(err, r, "tensor '%s': expert %zu: SVD failed: %s", acem__nm(L->name), t, acem_result_string(r));
    {
        double tol = (double)acem__max(R, C) * ACEM__FLT_EPS * w[0];
        acem__svd_vectors(R, C, D, C, ACEM__CAST(double *, L->buf[11]), kt, w, kt, U + t * kt, n, V + t * kt, n, &X);
        for (i = 0; i < kt; ++i) sall[t * kt + i] = (w[0] > 0 && w[i] > tol) ? w[i] : 0.0;
    }
    return ACEM_OK;
}

/* average, task arithmetic, DARE-TA, the mean rule: acc (+)= the delta */
static acem_result acem__feed_plain(acem_layer *L, const float *x, const float *base, acem_error *err) {
    acem__ew_job J;
    acem__ew_job_init(&J, L, base);
    J.x = x;
    J.t = L->fed;
    J.first = L->fed == 0;
    J.acc = ACEM__CAST(float *, L->buf[0]);
    acem__ew_lanes_init(L);
    acem__lrun(L, acem__ew_nchunks(J.n), acem__ew_feed_chunk, &J);
    return acem__ew_lanes_bad(L) ? acem__check_finite(L, x, base, err) : ACEM_OK;
}
/* TIES / DARE-TIES: pass 0 adds the kept values (for the sign election), pass 1
   the kept values of the elected sign, and counts them. The threshold of each
   of the first acem__ties_thc() experts is selected once, in pass 0. */
static acem_result acem__feed_ties(acem_layer *L, const float *x, const float *base, acem_error *err) {
    acem__ew_job J;
    uint32_t *thc = ACEM__CAST(uint32_t *, L->buf[4]);
    size_t t = L->fed;
    int bad = 0;
    acem_result r;
    acem__ew_job_init(&J, L, base);
    J.x = x;
    J.t = t;
    J.first = t == 0;
    J.acc = ACEM__CAST(float *, L->buf[0]);
    J.sg = ACEM__CAST(signed char *, L->buf[1]);
    J.cnt = ACEM__CAST(uint16_t *, L->buf[2]);
    if (L->pass == 0) {
        acem__ties_select(L, &x, base, t, 1, &J.thu, &bad);
        if (bad && (r = acem__check_finite(L, x, base, err)) != ACEM_OK) return r;
        if (t < acem__ties_thc(L)) thc[t] = J.thu;
    } else {
        J.thu = t < acem__ties_thc(L) ? thc[t] : acem__f2u(acem__ties_threshold(L, acem__dare_key(L, t), x, base));
        J.majpos = L->stat[ACEM__ST_MAJ] > 0;
    }
    acem__ew_lanes_init(L);
    acem__lrun(L, acem__ew_nchunks(J.n), acem__ties_feed_chunk, &J);
    if (L->pass == 0 && acem__ew_lanes_bad(L)) return acem__check_finite(L, x, base, err);
    return ACEM_OK;
}

ACEMDEF acem_result acem_layer_feed(acem_layer *L, const float *x, const float *base, acem_error *err) {
    acem_result r = ACEM_OK;
    size_t n;
    if (!L || L->state != 1)
        return acem__fail(err, ACEM_ERR_SEQUENCE, "tensor '%s': feed on a layer that is not initialised or has failed",
                          L ? acem__nm(L->name) : "(null)");
    if (L->pass >= L->npasses)
        return acem__fail(err, ACEM_ERR_SEQUENCE, "tensor '%s': all %zu experts already fed in all %d passes",
                          acem__nm(L->name), L->T, L->npasses);
    n = L->rows * L->cols;
    if (!x && n)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': expert %zu is NULL", acem__nm(L->name), L->fed);
    if (n) {
        if (L->rule == ACEM_RULE_MEAN) {
            r = acem__feed_plain(L, x, base, err);
        } else switch (L->opt.method) {
        case ACEM_ACE: r = acem__feed_ace(L, x, base, err); break;
        case ACEM_ACTMAT: {
            float *D = ACEM__CAST(float *, L->buf[0]), *N = ACEM__CAST(float *, L->buf[1]);
            float *G = ACEM__CAST(float *, L->buf[4]);
            if ((r = acem__load_delta(L, x, base, D, err)) == ACEM_OK)
                acem__gram_accum(L, L->rows, L->cols, D, 1.0f, 0.0f, G, G + L->cols * L->cols, N);
            break;
        }
        case ACEM_TSV_M: r = acem__feed_tsvm(L, x, base, err); break;
        case ACEM_TIES:
        case ACEM_DARE_TIES: r = acem__feed_ties(L, x, base, err); break;
        case ACEM_ISO_C: /* a plain sum, serial (the workers' scratch holds GEMM panels) */
            if (acem__ew_acc(ACEM__CAST(float *, L->buf[0]), x, base, n, L->fed == 0))
                r = acem__check_finite(L, x, base, err);
            break;
        default: r = acem__feed_plain(L, x, base, err); break; /* average, TA, DARE-TA */
        }
    }
    if (r != ACEM_OK) { L->state = 3; return r; }
    if (++L->fed == L->T) {
        acem__end_pass(L);
        L->fed = 0;
        L->pass++;
    }
    return ACEM_OK;
}

/* ---- finish ---------------------------------------------------------------- */
static acem_result acem__finish_ace(acem_layer *L, const float *base, float *out, acem_layer_info *info,
                                    acem_error *err) {
    acem__exec X = acem__lexec(L);
    size_t R = L->rows, C = L->cols, n = acem__min(R, C), T = L->T, i, j;
    float *Dc = ACEM__CAST(float *, L->buf[0]), *Q = ACEM__CAST(float *, L->buf[1]);
    float *E = ACEM__CAST(float *, L->buf[2]), *S = ACEM__CAST(float *, L->buf[3]);
    float *A0 = ACEM__CAST(float *, L->buf[4]), *diag = ACEM__CAST(float *, L->buf[6]);
    double *mu = ACEM__CAST(double *, L->buf[5]), *m = mu + C, *v = m + C, *musum = v + C, *z = musum + C;
    double *ew = ACEM__CAST(double *, L->buf[7]);
    double *st = L->stat, denom = 0;
    int gated = st[ACEM__ST_GATED] != 0, refine;
    size_t k = acem__ace_k(L), col = 0;
    float lam = (float)L->opt.lambda;
    acem_result r;
    if (T == 1) { /* a single expert: its own delta */
        acem__lwrite_out(L, out, base, S, R * C, lam);
        return ACEM_OK;
    }
    info->gated = gated;
    info->gamma = st[ACEM__ST_GAMMA];
    refine = acem__ace_refines(L);
    info->k = refine ? k : 0;
    /* A0 = sum Sigma_t + (sum e_t) I ; m = column means of sum Sigma_t */
    acem__pmirror(&X, C, A0, C); /* acem__gram_accum: the lower triangle */
    for (j = 0; j < C; ++j) A0[j * C + j] += (float)st[ACEM__ST_ESUM];
    for (j = 0; j < C; ++j) {
        m[j] /= (double)C;
        if (gated) m[j] /= st[ACEM__ST_SUM_N] / (double)T + ACEM__GUARD;
    }
    /* B is Q (the ridge terms are in it); with E = -sum e_t Dc_t,
       Res = (Q + E) + 1 v^T - (1/T) (S + 1 musum^T) A0, into E */
    if (refine) {
        acem__paxpy(&X, R * C, 1.0f, Q, E);
        acem__prows(&X, acem__rowadd_part, R, C, v, E, 0);
        acem__prows(&X, acem__rowadd_part, R, C, musum, S, 0);
        acem__pgemm(&X, 0, 0, R, C, C, -1.0f / (float)T, S, C, A0, C, 1.0f, E, C);
    }
    /* W_pre = B (A0 + 1 m^T)^-1 by Cholesky and Sherman-Morrison */
    for (j = 0; j < C; ++j) diag[j] = A0[j * C + j];
    r = acem__potrf(&X, C, A0, C, &col);
    if (r == ACEM_OK) { /* z = A0^-1 m */
        for (i = 0; i < C; ++i) z[i] = (m[i] - acem__dot_fd(A0 + i * C, z, i)) / A0[i * C + i];
        for (j = C; j-- > 0;) { /* L^T z = w by columns: row j of L is contiguous */
            const float *lj = A0 + j * C;
            double zj = z[j] / lj[j];
            z[j] = zj;
            for (i = 0; i < j; ++i) z[i] -= (double)lj[i] * zj;
        }
        denom = 1.0;
        for (j = 0; j < C; ++j) denom += z[j];
    }
    if (r == ACEM_OK && acem__fabs(denom) > 1e-6) {
        acem__ptrsm(&X, 1, R, C, A0, C, Q, C);
        acem__ptrsm(&X, 0, R, C, A0, C, Q, C);
        acem__prows(&X, acem__sm_part, R, C, z, Q, denom);
    } else { /* fallback: rebuild A = A0 + 1 m^T and solve by pivoted LU */
        info->fallback = 1;
        for (i = 0; i < C; ++i) {
            for (j = 0; j < i; ++j) A0[i * C + j] = A0[j * C + i];
            A0[i * C + i] = diag[i];
        }
        for (i = 0; i < C; ++i)
            for (j = 0; j < C; ++j) A0[i * C + j] += (float)m[j];
        r = acem__lu_solve_right(R, C, A0, C, Q, C, ACEM__CAST(size_t *, L->buf[8]), z);
        if (r != ACEM_OK) {
            acem__fail(err, r, "tensor '%s': the ACE system is singular (Cholesky %s at column %zu)",
                       acem__nm(L->name), col < C ? "failed" : "ok", col);
            if (err) err->column = (long long)col;
            return r;
        }
    }
    acem__lwrite_out(L, out, base, Q, R * C, lam);
    if (refine) { /* spectral refinement from F = Res + W_pre */
        double *G = ACEM__CAST(double *, L->buf[4]), sig = 0, *dcw = NULL;
        size_t kept, fr = 0;
        acem__paxpy(&X, R * C, 1.0f, Q, E);
        /* Dc, Q and S (adjacent: acem__layout) are free until the vectors are
           written: divide and conquer's workspace where they hold it
           (acem__syev_top decides), never with F (E) inside */
        if (Dc < Q && Q < S && (E >= S + R * C || E + R * C <= Dc))
            fr = (size_t)(ACEM__CAST(unsigned char *, (void *)(S + R * C)) - ACEM__CAST(unsigned char *, (void *)Dc));
        if (fr / sizeof(double) >= ACEM__DC_WORK(n)) dcw = ACEM__CAST(double *, (void *)Dc);
        if ((r = acem__svd_small(R, C, E, C, G, ew, ew + n, k, ACEM__CAST(double *, L->buf[11]), &X,
                                 ACEM__CAST(double *, L->buf[9]), dcw)) != ACEM_OK)
            return acem__fail(err, r, "tensor '%s': SVD of the refinement failed: %s", acem__nm(L->name),
                              acem_result_string(r));
        for (i = 0; i < k; ++i) sig += ew[i];
        sig /= (double)k;
        kept = acem__svd_vectors(R, C, E, C, ACEM__CAST(double *, L->buf[11]), k, ew, k, S, k, Dc, k, &X);
        acem__pgemm(&X, 0, 1, R, C, k, (float)(L->opt.lambda * sig), S, k, Dc, k, 1.0f, out, C);
        info->refined = 1;
        info->sigma_iso = sig;
        info->directions = kept;
    }
    return ACEM_OK;
}

static acem_result acem__finish_actmat(acem_layer *L, const float *base, float *out, acem_error *err) {
    acem__exec X = acem__lexec(L);
    size_t R = L->rows, C = L->cols, i, j, kc = 0;
    float *D = ACEM__CAST(float *, L->buf[0]), *N = ACEM__CAST(float *, L->buf[1]);
    float *V32 = ACEM__CAST(float *, L->buf[5]);
    double *G = ACEM__CAST(double *, L->buf[4]), *w = ACEM__CAST(double *, L->buf[7]), lmax, tol;
    acem_result r;
    acem__write_base(out, base, R * C);
    acem__pmirror(&X, C, ACEM__CAST(float *, L->buf[4]), C); /* acem__gram_accum: the lower triangle */
    acem__widen_inplace(G, C * C);
    if ((r = acem_syev(C, G, C, w, V32)) != ACEM_OK) /* V32's space is free until the vectors are kept */
        return acem__fail(err, r, "tensor '%s': eigen-decomposition failed: %s", acem__nm(L->name), acem_result_string(r));
    lmax = w[C - 1];
    if (!(lmax > 0)) return ACEM_OK;
    tol = (double)C * ACEM__FLT_EPS * lmax;
    for (i = C; i-- > 0;) {
        if (!(w[i] > tol)) break;
        for (j = 0; j < C; ++j) V32[j * C + kc] = (float)G[j * C + i];
        ++kc;
    }
    /* Y = N W_k diag(1/lambda) ; out += lambda_opt Y W_k^T */
    acem__pgemm(&X, 0, 0, R, kc, C, 1.0f, N, C, V32, C, 0.0f, D, kc);
    for (i = 0; i < R; ++i)
        for (j = 0; j < kc; ++j) D[i * kc + j] *= (float)(1.0 / w[C - 1 - j]);
    acem__pgemm(&X, 0, 1, R, C, kc, (float)L->opt.lambda, D, kc, V32, C, 1.0f, out, C);
    return ACEM_OK;
}

static acem_result acem__finish_isoc(acem_layer *L, const float *base, float *out, acem_layer_info *info,
                                     acem_error *err) {
    acem__exec X = acem__lexec(L);
    size_t R = L->rows, C = L->cols, n = acem__min(R, C), i;
    float *F = ACEM__CAST(float *, L->buf[0]), *V = ACEM__CAST(float *, L->buf[1]);
    float *U = ACEM__CAST(float *, L->buf[2]);
    double *G = ACEM__CAST(double *, L->buf[4]), *s = ACEM__CAST(double *, L->buf[7]), sig = 0;
    acem_result r;
    acem__write_base(out, base, R * C);
    if ((r = acem__svd_small(R, C, F, C, G, s, s + n, n, ACEM__CAST(double *, L->buf[11]), &X,
                             ACEM__CAST(double *, L->buf[9]), ACEM__CAST(double *, L->buf[12]))) != ACEM_OK)
        return acem__fail(err, r, "tensor '%s': SVD failed: %s", acem__nm(L->name), acem_result_string(r));
    for (i = 0; i < n; ++i) sig += s[i];
    sig /= (double)n;
    info->k = n;
    info->sigma_iso = sig;
    info->directions = acem__svd_vectors(R, C, F, C, ACEM__CAST(double *, L->buf[11]), n, s, n, U, n, V, n, &X);
    acem__pgemm(&X, 0, 1, R, C, n, (float)(L->opt.lambda * sig), U, n, V, n, 1.0f, out, C);
    return ACEM_OK;
}

/* P = W diag(f(w)) W^T with f = 1/sqrt over the kept eigenvalues: the inverse
   square root of a Gram matrix on its numerical range (K x K, f64), as one
   product (W scaled in place by f^(1/2), then P = W W^T). gw:
   acem__dgemm_work(K, K, K) doubles. */
static void acem__inv_sqrt_range(size_t K, double *W, const double *w, size_t maxdim, double *P, double *gw) {
    size_t a, i;
    double smax = w[K - 1] > 0 ? ACEM_SQRT(w[K - 1]) : 0, tol = (double)maxdim * ACEM__FLT_EPS * smax;
    for (i = 0; i < K; ++i) {
        double si = w[i] > 0 ? ACEM_SQRT(w[i]) : 0, f = (smax > 0 && si > tol) ? 1.0 / ACEM_SQRT(si) : 0.0;
        for (a = 0; a < K; ++a) W[a * K + i] *= f;
    }
    acem__dgemm(0, 1, 0, K, K, K, 1.0, W, NULL, K, W, NULL, K, 0.0, P, K, gw);
}

static acem_result acem__finish_tsvm(acem_layer *L, const float *base, float *out, acem_layer_info *info,
                                     acem_error *err) {
    acem__exec X = acem__lexec(L);
    size_t R = L->rows, C = L->cols, n = acem__min(R, C), kt = n / L->T, K = kt * L->T, a, b;
    float *Y = ACEM__CAST(float *, L->buf[0]), *U = ACEM__CAST(float *, L->buf[1]);
    float *V = ACEM__CAST(float *, L->buf[2]);
    double *s = ACEM__CAST(double *, L->buf[3]), *Gu = ACEM__CAST(double *, L->buf[4]);
    double *Gv = Gu + acem__tsvm_sq(n), *P = Gv + acem__tsvm_sq(n), *w = ACEM__CAST(double *, L->buf[7]);
    double *gw = ACEM__CAST(double *, L->buf[11]); /* the experts' SVD scratch, free now */
    float *core;
    acem_result r;
    acem__write_base(out, base, R * C);
    info->k = kt;
    if (!K) return ACEM_OK;
    acem__pgram(&X, 1, K, R, U, n, Gu, K);
    acem__pgram(&X, 1, K, C, V, n, Gv, K);
    /* each eigensolver's workspace is a square not in use at the time: P, then Gu */
    if ((r = acem_syev(K, Gu, K, w, P)) != ACEM_OK ||
        (acem__inv_sqrt_range(K, Gu, w, acem__max(R, K), P, gw), (r = acem_syev(K, Gv, K, w, Gu)) != ACEM_OK))
        return acem__fail(err, r, "tensor '%s': eigen-decomposition failed: %s", acem__nm(L->name), acem_result_string(r));
    /* Gu <- P diag(s) (the U-side factor, scaled), then P <- V-side factor */
    for (a = 0; a < K; ++a)
        for (b = 0; b < K; ++b) Gu[a * K + b] = P[a * K + b] * s[b];
    acem__inv_sqrt_range(K, Gv, w, acem__max(C, K), P, gw);
    /* core = Gu * P (K x K) into Gv's space, then as f32 into Gu's */
    acem__dgemm(0, 0, 0, K, K, K, 1.0, Gu, NULL, K, P, NULL, K, 0.0, Gv, K, gw);
    core = ACEM__CAST(float *, (void *)Gu);
    for (a = 0; a < K * K; ++a) core[a] = (float)Gv[a];
    /* M = U_all core V_all^T */
    acem__pgemm(&X, 0, 0, R, K, K, 1.0f, U, n, core, K, 0.0f, Y, K);
    acem__pgemm(&X, 0, 1, R, C, K, (float)L->opt.lambda, Y, K, V, n, 1.0f, out, C);
    return ACEM_OK;
}

ACEMDEF acem_result acem_layer_finish(acem_layer *L, const float *base, float *out, acem_layer_info *info,
                                      acem_error *err) {
    acem_layer_info dummy;
    acem_result r = ACEM_OK;
    size_t n;
    if (!info) info = &dummy;
    ACEM_MEMSET(info, 0, sizeof *info);
    if (!L || L->state != 1)
        return acem__fail(err, ACEM_ERR_SEQUENCE, "tensor '%s': finish on a layer that is not initialised, finished or failed",
                          L ? acem__nm(L->name) : "(null)");
    if (L->pass < L->npasses)
        return acem__fail(err, ACEM_ERR_SEQUENCE, "tensor '%s': finish before all experts were fed (pass %d of %d, %zu of %zu experts)",
                          acem__nm(L->name), L->pass + 1, L->npasses, L->fed, L->T);
    n = L->rows * L->cols;
    if (n && !out)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': output is NULL", acem__nm(L->name));
    info->rule = L->rule;
    info->method = L->opt.method;
    if (n) {
        float *acc = ACEM__CAST(float *, L->buf[0]);
        if (L->rule == ACEM_RULE_KEEP) acem__write_base(out, base, n);
        else if (L->rule == ACEM_RULE_MEAN) acem__lwrite_out(L, out, base, acc, n, acem__ew_scale(L));
        else switch (L->opt.method) {
        case ACEM_ACE: r = acem__finish_ace(L, base, out, info, err); break;
        case ACEM_ACTMAT: r = acem__finish_actmat(L, base, out, err); break;
        case ACEM_ISO_C: r = acem__finish_isoc(L, base, out, info, err); break;
        case ACEM_TSV_M: r = acem__finish_tsvm(L, base, out, info, err); break;
        case ACEM_TIES:
        case ACEM_DARE_TIES: {
            acem__ew_job J;
            acem__ew_job_init(&J, L, base);
            J.out = out;
            J.acc = acc;
            J.scale = acem__ew_scale(L);
            J.cnt = ACEM__CAST(uint16_t *, L->buf[2]);
            acem__lrun(L, acem__ew_nchunks(n), acem__ties_out_chunk, &J);
            break;
        }
        default: /* average, task arithmetic, DARE-TA */
            acem__lwrite_out(L, out, base, acc, n, acem__ew_scale(L));
            break;
        }
    }
    L->state = r == ACEM_OK ? 2 : 3;
    return r;
}

/* ---- in-memory convenience ------------------------------------------------- */
/* The element-wise rules in one pass over all experts (acem_merge has them all):
   bitwise the streaming result, since both run the same kernels on every
   element (see "element-wise rules: the loops"). Not for TIES beyond
   acem__ties_thc() experts (no room for their thresholds), nor when an input is
   NULL (the streaming path reports those, in its order). */
static int acem__fusable(const acem_layer *L, const float *const *experts, const float *out) {
    size_t t;
    acem_method m = L->opt.method;
    if (!L->rows || !L->cols || !out || L->rule == ACEM_RULE_KEEP) return 0;
    if (L->rule == ACEM_RULE_METHOD && m != ACEM_AVERAGE && m != ACEM_TASK_ARITHMETIC && m != ACEM_DARE_TA &&
        !((m == ACEM_TIES || m == ACEM_DARE_TIES) && L->T <= acem__ties_thc(L)))
        return 0;
    for (t = 0; t < L->T; ++t)
        if (!experts[t]) return 0;
    return 1;
}
/* Returns ACEM_ERR_SEQUENCE (never an error of its own) when the streaming path
   must run instead: a non-finite value was flagged but no check names it. On a
   non-finite input, out may have been written in part (even when out == base);
   the error names the first expert, in order, with a non-finite delta, and its
   first position, as the streaming path does. */
static acem_result acem__merge_fused(acem_layer *L, const float *base, const float *const *xs, float *out,
                                     acem_layer_info *info, acem_error *err) {
    acem__ew_job J;
    size_t t, w, T = L->T, nch;
    int bad = 0;
    acem_result r;
    acem__ew_job_init(&J, L, base);
    J.xs = xs;
    J.out = out;
    nch = acem__ew_nchunks(J.n);
    if (L->rule == ACEM_RULE_METHOD && (L->opt.method == ACEM_TIES || L->opt.method == ACEM_DARE_TIES)) {
        uint32_t *thu = ACEM__CAST(uint32_t *, L->buf[4]);
        /* (a threshold of 0 keeps zeros, which add nothing: 1 drops them, as
           acem__ties_sum_out needs; every kernel gives the same sums either way) */
        for (t = 0; t < T && !bad; t += ACEM__TIES_G)
            acem__ties_select(L, xs + t, base, t, acem__min(ACEM__TIES_G, T - t), thu + t, &bad);
        for (t = 0; t < T; ++t) thu[t] |= (uint32_t)(thu[t] == 0);
        if (!bad) {
            long long tot = 0;
            J.thus = thu;
            J.acc = ACEM__CAST(float *, L->buf[0]);
            J.sg = ACEM__CAST(signed char *, L->buf[1]);
            J.cflag = ACEM__CAST(unsigned char *, L->buf[2]);
            J.scale = (float)L->opt.lambda;
            acem__ew_lanes_init(L);
            acem__lrun(L, nch, acem__ties_fused_chunk, &J);
            bad = acem__ew_lanes_bad(L);
            for (w = 0; w < acem__workers(&L->opt); ++w) tot += acem__ew_lane_of(L, w)->tot;
            if (!bad && tot > 0) acem__lrun(L, nch, acem__ties_fix_chunk, &J);
        }
    } else {
        J.scale = acem__ew_scale(L);
        acem__ew_lanes_init(L);
        acem__lrun(L, nch, acem__ew_fused_chunk, &J);
        bad = acem__ew_lanes_bad(L);
    }
    if (bad) {
        for (t = 0; t < T; ++t) {
            L->fed = t;
            if ((r = acem__check_finite(L, xs[t], base, err)) != ACEM_OK) { L->state = 3; return r; }
        }
        L->fed = 0;
        return ACEM_ERR_SEQUENCE;
    }
    if (info) {
        ACEM_MEMSET(info, 0, sizeof *info);
        info->rule = L->rule;
        info->method = L->opt.method;
    }
    L->pass = L->npasses;
    L->state = 2;
    return ACEM_OK;
}

ACEMDEF acem_result acem_merge(const acem_options *opt, acem_rule rule, const char *name, size_t rows,
                               size_t cols, size_t n_experts, const float *base,
                               const float *const *experts, float *out, void *arena, size_t arena_bytes,
                               acem_layer_info *info, acem_error *err) {
    acem_layer L;
    acem_result r;
    size_t t;
    int p;
    if (!experts && n_experts)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': experts is NULL", acem__nm(name));
    if ((r = acem_layer_init(&L, opt, rule, name, rows, cols, n_experts, arena, arena_bytes, err)) != ACEM_OK)
        return r;
    if (acem__fusable(&L, experts, out) && (r = acem__merge_fused(&L, base, experts, out, info, err)) != ACEM_ERR_SEQUENCE)
        return r;
    for (p = 0; p < acem_layer_passes(&L); ++p)
        for (t = 0; t < n_experts; ++t)
            if ((r = acem_layer_feed(&L, experts[t], base, err)) != ACEM_OK) return r;
    return acem_layer_finish(&L, base, out, info, err);
}

#ifndef ACEM_NO_MALLOC
ACEMDEF acem_result acem_merge_alloc(const acem_options *opt, acem_rule rule, const char *name, size_t rows,
                                     size_t cols, size_t n_experts, const float *base,
                                     const float *const *experts, float *out, acem_layer_info *info,
                                     acem_error *err) {
    size_t bytes = 0;
    void *arena = NULL;
    acem_result r = acem_layer_bytes(opt, rule, rows, cols, n_experts, &bytes);
    if (r != ACEM_OK) /* let init produce the detailed message */
        return acem_merge(opt, rule, name, rows, cols, n_experts, base, experts, out, NULL, 0, info, err);
    if (bytes && !(arena = ACEM_MALLOC(bytes, NULL)))
        return acem__fail(err, ACEM_ERR_OUT_OF_MEMORY, "tensor '%s': cannot allocate %zu bytes", acem__nm(name), bytes);
    r = acem_merge(opt, rule, name, rows, cols, n_experts, base, experts, out, arena, bytes, info, err);
    if (arena) ACEM_FREE(arena, NULL);
    return r;
}
#endif


/* =========================================================================== */
/* LoRA: exact merging in low-rank coordinates                                 */
/* =========================================================================== */
/* With D_t = s_t B_t A_t, let Q_A (a x C, orthonormal rows) span the rows of
   all A_t and Q_B (b x R) span the columns of all B_t together with the
   all-ones vector. Then D_t = Q_B^T U_t Q_A with U_t = s_t (Q_B B_t)(A_t Q_A^T)
   (b x a), the column-centred delta is Q_B^T (J U_t) Q_A with J = I - h h^T/R
   (h = Q_B 1), S_t = Q_A^T (Pc_t^T Pc_t) Q_A, and
     A0      = Q_A^T (Ah + E I) Q_A + E (I - Q_A^T Q_A)       Ah = sum alpha_t S^_t
     B       = Q_B^T [sum Pc_t (alpha_t S^_t + e_t I)] Q_A
     m       = Q_A^T m^,  m^ = Ah q1 / C  (q1 = Q_A 1: the ones vector is not in
               the span, only its projection matters)
     W_pre   = Q_B^T [X^ - (X^ q1) z^T / (1 + z^.q1)] Q_A,  X^ = B^ (Ah + E I)^-1,
               z^ = (Ah + E I)^-1 m^
     Res     = Q_B^T [sum U_t (alpha_t S^_t - (Ah + E I)/T)] Q_A
   so the spectral refinement is the SVD of a b x a matrix. All small algebra in
   f64. */
ACEMDEF int acem_lora_supported(acem_method m) {
    return m == ACEM_ACE || m == ACEM_AVERAGE || m == ACEM_TASK_ARITHMETIC || m == ACEM_ACTMAT;
}

/* C = alpha op(A) op(B) + beta C, small f64 matrices */
static void acem__dmm(int ta, int tb, size_t m, size_t n, size_t k, double alpha, const double *A, size_t lda,
                      const double *B, size_t ldb, double beta, double *C, size_t ldc) {
    size_t i, j, p;
    for (i = 0; i < m; ++i)
        for (j = 0; j < n; ++j) {
            double s = 0;
            for (p = 0; p < k; ++p) s += (ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
            C[i * ldc + j] = (beta == 0 ? 0.0 : beta * C[i * ldc + j]) + alpha * s;
        }
}
/* lower Cholesky of an SPD f64 matrix in place; 0 on success */
static int acem__dpotrf(size_t n, double *A, size_t lda) {
    size_t i, j, p;
    for (j = 0; j < n; ++j) {
        double d = A[j * lda + j];
        for (p = 0; p < j; ++p) d -= A[j * lda + p] * A[j * lda + p];
        if (!(d > 0)) return 1;
        d = ACEM_SQRT(d);
        A[j * lda + j] = d;
        for (i = j + 1; i < n; ++i) {
            double s = A[i * lda + j];
            for (p = 0; p < j; ++p) s -= A[i * lda + p] * A[j * lda + p];
            A[i * lda + j] = s / d;
        }
    }
    return 0;
}
/* x := A^-1 x with A = L L^T */
static void acem__dpotrs(size_t n, const double *L, size_t ldl, double *x) {
    size_t i, p;
    for (i = 0; i < n; ++i) {
        double s = x[i];
        for (p = 0; p < i; ++p) s -= L[i * ldl + p] * x[p];
        x[i] = s / L[i * ldl + i];
    }
    for (i = n; i-- > 0;) {
        double s = x[i];
        for (p = i + 1; p < n; ++p) s -= L[p * ldl + i] * x[p];
        x[i] = s / L[i * ldl + i];
    }
}
/* Thin SVD of a small m x n f64 matrix through the Gram of its smaller side:
   s (min(m,n), descending), U (m x q, ld q) and V (n x q, ld q), q = min(m,n);
   pairs with s_i <= 0 get zero vectors. G: max(m,n)^2 doubles, ew: 2 max(m,n). */
static acem_result acem__dsvd(size_t m, size_t n, const double *A, size_t lda, double *G, double *s, double *U,
                              double *V, double *ew) {
    size_t q = acem__min(m, n), i, j;
    int cols = n <= m; /* eigenvectors give V */
    double *X = cols ? V : U, *Y = cols ? U : V;
    size_t ny = cols ? m : n;
    acem_result r;
    if (!q) return ACEM_OK;
    if (cols) acem__dmm(1, 0, n, n, m, 1.0, A, lda, A, lda, 0.0, G, n);
    else acem__dmm(0, 1, m, m, n, 1.0, A, lda, A, lda, 0.0, G, m);
    if ((r = acem_syev(q, G, q, ew, ew + q)) != ACEM_OK) return r;
    for (i = 0; i < q; ++i) {
        double l = ew[q - 1 - i];
        s[i] = l > 0 ? ACEM_SQRT(l) : 0.0;
        for (j = 0; j < q; ++j) X[j * q + i] = G[j * q + (q - 1 - i)];
    }
    /* Y = A X / s (or A^T X / s) */
    for (i = 0; i < q; ++i) {
        double inv = s[i] > 0 ? 1.0 / s[i] : 0.0;
        for (j = 0; j < ny; ++j) {
            double acc = 0;
            size_t p;
            if (cols) for (p = 0; p < n; ++p) acc += A[j * lda + p] * X[p * q + i];
            else for (p = 0; p < m; ++p) acc += A[p * lda + j] * X[p * q + i];
            Y[j * q + i] = acc * inv;
        }
        if (!(s[i] > 0)) for (j = 0; j < q; ++j) X[j * q + i] = 0.0;
    }
    return ACEM_OK;
}

typedef struct acem__lora_plan {
    size_t K, Kb, R, C;
    double *Qa, *Qb, *X, *Gb, *h, *q1, *U, *Pc, *Sh, *Ah, *Bh, *Rs, *Us, *L, *Mh, *G, *s, *Uo, *Vo, *ew, *vr, *vc;
    float *Bout, *Aout;
} acem__lora_plan;

static void acem__lora_layout(acem__lora_plan *p, acem__arena *a) {
    size_t K = p->K, Kb = p->Kb, R = p->R, C = p->C, S = Kb * Kb, mx = acem__max(Kb, 1);
    p->Qa = ACEM__CAST(double *, acem__take(a, K * C, sizeof(double)));
    p->Qb = ACEM__CAST(double *, acem__take(a, Kb * R, sizeof(double)));
    p->X = ACEM__CAST(double *, acem__take(a, K * K, sizeof(double)));
    p->Gb = ACEM__CAST(double *, acem__take(a, Kb * K, sizeof(double)));
    p->h = ACEM__CAST(double *, acem__take(a, Kb, sizeof(double)));
    p->q1 = ACEM__CAST(double *, acem__take(a, K, sizeof(double)));
    p->U = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Pc = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Sh = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Ah = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Bh = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Rs = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Us = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->L = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Mh = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->G = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->s = ACEM__CAST(double *, acem__take(a, mx, sizeof(double)));
    p->Uo = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->Vo = ACEM__CAST(double *, acem__take(a, S, sizeof(double)));
    p->ew = ACEM__CAST(double *, acem__take(a, mx + (acem_syev_work_bytes(mx) + 7) / 8, sizeof(double)));
    p->vr = ACEM__CAST(double *, acem__take(a, acem__max(R, C), sizeof(double)));
    p->vc = ACEM__CAST(double *, acem__take(a, mx, sizeof(double)));
    p->Bout = ACEM__CAST(float *, acem__take(a, R * K, sizeof(float)));
    p->Aout = ACEM__CAST(float *, acem__take(a, K * C, sizeof(float)));
}

static acem_result acem__lora_sizes(const acem_options *opt, size_t R, size_t C, size_t T, const size_t *ranks,
                                    acem__lora_plan *p, acem_options *ro) {
    size_t t, K = 0;
    acem_result r;
    if ((r = acem_options_resolve(opt, ro, NULL)) != ACEM_OK) return r;
    if (!T || !ranks || !R || !C) return ACEM_ERR_INVALID_ARGUMENT;
    for (t = 0; t < T; ++t) {
        if (K + ranks[t] < K) return ACEM_ERR_SIZE_OVERFLOW;
        K += ranks[t];
    }
    p->K = K; p->Kb = K + 1; p->R = R; p->C = C;
    return ACEM_OK;
}

ACEMDEF acem_result acem_lora_bytes(const acem_options *opt, size_t R, size_t C, size_t T, const size_t *ranks,
                                    size_t *bytes) {
    acem__lora_plan p;
    acem_options ro;
    acem__arena a;
    acem_result r;
    if (!bytes) return ACEM_ERR_INVALID_ARGUMENT;
    *bytes = 0;
    if ((r = acem__lora_sizes(opt, R, C, T, ranks, &p, &ro)) != ACEM_OK) return r;
    if (!acem_lora_supported(ro.method)) return ACEM_ERR_INVALID_ARGUMENT;
    a.base = NULL; a.off = 0; a.overflow = 0;
    acem__lora_layout(&p, &a);
    if (a.overflow) return ACEM_ERR_SIZE_OVERFLOW;
    *bytes = a.off;
    return ACEM_OK;
}

/* Adds v (length n) to the orthonormal rows Q (count *q, ld n) after two
   passes of Gram-Schmidt, if it is independent enough. */
static void acem__gs_add(double *Q, size_t *q, size_t n, double *v) {
    double n0 = acem__ddot(n, v, v), n1;
    size_t i, j, pass;
    if (!(n0 > 0)) return;
    for (pass = 0; pass < 2; ++pass)
        for (j = 0; j < *q; ++j) {
            const double *qj = Q + j * n;
            acem__daxpy(n, -acem__ddot(n, qj, v), qj, v);
        }
    n1 = acem__ddot(n, v, v);
    if (!(n1 > 1e-20 * n0)) return; /* dependent (to f64 round-off) */
    n1 = 1.0 / ACEM_SQRT(n1);
    for (i = 0; i < n; ++i) Q[*q * n + i] = v[i] * n1;
    (*q)++;
}

ACEMDEF acem_result acem_lora_merge(const acem_options *opt, const char *name, size_t R, size_t C, size_t T,
                                    const acem_lora *ex, void *arena, size_t arena_bytes, acem_lora_out *out,
                                    acem_layer_info *info, acem_error *err) {
    acem__lora_plan p;
    acem_options o;
    acem__arena ar;
    acem_layer_info dummy;
    acem_result r;
    size_t t, i, j, a = 0, b = 0, off, K;
    const char *nm = acem__nm(name);
    double E = 0, nbar = 0, mean_l = 0, m2_l = 0, lam;
    int gated = 0;
    if (!info) info = &dummy;
    ACEM_MEMSET(info, 0, sizeof *info);
    if (!out || !ex || !T) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': NULL argument or no experts", nm);
    ACEM_MEMSET(out, 0, sizeof *out);
    if ((r = acem_options_resolve(opt, &o, err)) != ACEM_OK) return r;
    if (!acem_lora_supported(o.method))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': method %s has no exact low-rank form", nm,
                          acem_method_name(o.method));
    if (!R || !C) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': empty shape", nm);
    /* ranks into the plan without allocating: sum directly */
    K = 0;
    for (t = 0; t < T; ++t) {
        if (ex[t].rank && (!ex[t].A || !ex[t].B))
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "tensor '%s': expert %zu has rank %zu but no factors", nm, t, ex[t].rank);
        if (!acem__finite(ex[t].scale))
            return acem__fail(err, ACEM_ERR_NONFINITE, "tensor '%s': expert %zu: non-finite scale", nm, t);
        K += ex[t].rank;
    }
    p.K = K; p.Kb = K + 1; p.R = R; p.C = C;
    ar.base = NULL; ar.off = 0; ar.overflow = 0;
    acem__lora_layout(&p, &ar);
    if (ar.overflow) return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "tensor '%s': too large", nm);
    {
        char who[200];
        if ((r = acem__check_arena(err, acem__tensor_who(who, sizeof who, name), arena, arena_bytes, ar.off)) != ACEM_OK)
            return r;
    }
    ar.base = ACEM__CAST(unsigned char *, arena); ar.off = 0;
    acem__lora_layout(&p, &ar);
    info->rule = ACEM_RULE_METHOD;
    info->method = o.method;
    lam = o.lambda;
    /* 1. bases. Q_A: rows of every A_t; Q_B: 1/sqrt(R), then the columns of every B_t */
    for (t = 0; t < T; ++t)
        for (i = 0; i < ex[t].rank; ++i) {
            for (j = 0; j < C; ++j) {
                p.vr[j] = ex[t].A[i * C + j];
                if (!acem__finite(ex[t].A[i * C + j]))
                    return acem__fail(err, ACEM_ERR_NONFINITE, "tensor '%s': expert %zu: non-finite value in A", nm, t);
            }
            acem__gs_add(p.Qa, &a, C, p.vr);
        }
    for (j = 0; j < R; ++j) p.vr[j] = 1.0;
    acem__gs_add(p.Qb, &b, R, p.vr);
    for (t = 0; t < T; ++t)
        for (i = 0; i < ex[t].rank; ++i) {
            for (j = 0; j < R; ++j) {
                p.vr[j] = ex[t].B[j * ex[t].rank + i];
                if (!acem__finite(ex[t].B[j * ex[t].rank + i]))
                    return acem__fail(err, ACEM_ERR_NONFINITE, "tensor '%s': expert %zu: non-finite value in B", nm, t);
            }
            acem__gs_add(p.Qb, &b, R, p.vr);
        }
    /* coordinates: X (K x a) = A rows . Q_A ; Gb (b x K) = Q_B . B columns ; h = Q_B 1 ; q1 = Q_A 1 */
    for (t = 0, off = 0; t < T; off += ex[t].rank, ++t)
        for (i = 0; i < ex[t].rank; ++i) {
            for (j = 0; j < a; ++j) p.X[(off + i) * K + j] = acem__dot_fd(ex[t].A + i * C, p.Qa + j * C, C);
            for (j = 0; j < R; ++j) p.vr[j] = ex[t].B[j * ex[t].rank + i];
            for (j = 0; j < b; ++j) p.Gb[j * K + off + i] = acem__ddot(R, p.vr, p.Qb + j * R);
        }
    for (j = 0; j < b; ++j) {
        double s = 0;
        for (i = 0; i < R; ++i) s += p.Qb[j * R + i];
        p.h[j] = s;
    }
    for (j = 0; j < a; ++j) {
        double s = 0;
        for (i = 0; i < C; ++i) s += p.Qa[j * C + i];
        p.q1[j] = s;
    }
    /* 2. per expert: U_t (b x a), its norm (gate), centred Pc_t, S^_t */
#define ACEM__LORA_U(t_, off_)                                                                        \
    do {                                                                                              \
        if (ex[t_].rank)                                                                              \
            acem__dmm(0, 0, b, a, ex[t_].rank, (double)ex[t_].scale, p.Gb + (off_), K, p.X + (off_) * K, \
                      K, 0.0, p.U, a);                                                                \
        else                                                                                          \
            for (i = 0; i < b * a; ++i) p.U[i] = 0.0;                                                 \
    } while (0)
    for (t = 0, off = 0; t < T; off += ex[t].rank, ++t) {
        double n = 0;
        ACEM__LORA_U(t, off);
        for (i = 0; i < b * a; ++i) n += p.U[i] * p.U[i];
        acem__gate_add(&mean_l, &m2_l, t, n);
        nbar += n / (double)T;
    }
    if (o.method == ACEM_ACE && T > 1) info->gated = gated = acem__gate_decide(&o, T, mean_l, m2_l, &info->gamma);
    for (i = 0; i < b * a; ++i) { p.Bh[i] = 0; p.Rs[i] = 0; p.Us[i] = 0; }
    for (i = 0; i < a * a; ++i) p.Ah[i] = 0;
    for (t = 0, off = 0; t < T; off += ex[t].rank, ++t) {
        double tr = 0, alpha, e;
        ACEM__LORA_U(t, off);
        for (i = 0; i < b * a; ++i) p.Us[i] += p.U[i];
        if (o.method == ACEM_AVERAGE || o.method == ACEM_TASK_ARITHMETIC) continue;
        if (o.method == ACEM_ACTMAT) { /* Gram sum in Ah, N^ = sum U_t (U_t^T U_t) in Bh */
            acem__dmm(1, 0, a, a, b, 1.0, p.U, a, p.U, a, 0.0, p.Sh, a);
            for (i = 0; i < a * a; ++i) p.Ah[i] += p.Sh[i];
            acem__dmm(0, 0, b, a, a, 1.0, p.U, a, p.Sh, a, 1.0, p.Bh, a);
            continue;
        }
        /* ACE: Pc = (I - h h^T / R) U */
        for (j = 0; j < a; ++j) {
            double s = 0;
            for (i = 0; i < b; ++i) s += p.h[i] * p.U[i * a + j];
            s /= (double)R;
            for (i = 0; i < b; ++i) p.Pc[i * a + j] = p.U[i * a + j] - p.h[i] * s;
        }
        acem__dmm(1, 0, a, a, b, 1.0, p.Pc, a, p.Pc, a, 0.0, p.Sh, a);
        for (i = 0; i < a; ++i) tr += p.Sh[i * a + i];
        tr += ACEM__GUARD;
        alpha = gated ? 1.0 / tr : 1.0;
        e = gated ? o.eps / tr : o.eps;
        E += e;
        for (i = 0; i < a * a; ++i) p.Sh[i] *= alpha;
        for (i = 0; i < a * a; ++i) p.Ah[i] += p.Sh[i];
        acem__dmm(0, 0, b, a, a, 1.0, p.Pc, a, p.Sh, a, 1.0, p.Bh, a);   /* Pc alpha S^ */
        for (i = 0; i < b * a; ++i) p.Bh[i] += e * p.Pc[i];              /* + e Pc      */
        acem__dmm(0, 0, b, a, a, 1.0, p.U, a, p.Sh, a, 1.0, p.Rs, a);    /* U alpha S^  */
    }
#undef ACEM__LORA_U
    /* 3. the merged delta M^ (b x a) */
    if (o.method == ACEM_AVERAGE || o.method == ACEM_TASK_ARITHMETIC || (o.method == ACEM_ACE && T == 1)) {
        double f = o.method == ACEM_AVERAGE ? 1.0 / (double)T : 1.0;
        for (i = 0; i < b * a; ++i) p.Mh[i] = f * p.Us[i];
    } else if (o.method == ACEM_ACTMAT) { /* M^ = N^ G^+ */
        double lmax, tol;
        for (i = 0; i < b * a; ++i) p.Mh[i] = 0;
        if (a) {
            if ((r = acem_syev(a, p.Ah, a, p.ew, p.ew + a)) != ACEM_OK)
                return acem__fail(err, r, "tensor '%s': eigen-decomposition failed", nm);
            lmax = p.ew[a - 1];
            tol = (double)C * ACEM__FLT_EPS * lmax;
            for (j = 0; j < a && lmax > 0; ++j) {
                size_t c;
                if (!(p.ew[j] > tol)) continue;
                for (i = 0; i < b; ++i) { /* (N^ w_j) / lambda_j  w_j^T */
                    double s = 0;
                    for (c = 0; c < a; ++c) s += p.Bh[i * a + c] * p.Ah[c * a + j];
                    s /= p.ew[j];
                    for (c = 0; c < a; ++c) p.Mh[i * a + c] += s * p.Ah[c * a + j];
                }
            }
        }
    } else { /* ACE, T > 1 */
        double den, zq = 0;
        size_t n = acem__min(R, C), k = (size_t)((double)n * o.k_frac);
        for (i = 0; i < a * a; ++i) p.L[i] = p.Ah[i];
        for (i = 0; i < a; ++i) p.L[i * a + i] += E;
        if (acem__dpotrf(a, p.L, a))
            return acem__fail(err, ACEM_ERR_NOT_POSITIVE_DEFINITE, "tensor '%s': the ACE system is not positive definite", nm);
        /* m^ = Ah q1 / C (/ (nbar + g) when gated) ; z^ = (Ah + E I)^-1 m^ */
        for (i = 0; i < a; ++i) {
            double s = 0;
            for (j = 0; j < a; ++j) s += p.Ah[i * a + j] * p.q1[j];
            s /= (double)C;
            if (gated) s /= nbar + ACEM__GUARD;
            p.vc[i] = s;
        }
        acem__dpotrs(a, p.L, a, p.vc);
        for (i = 0; i < a; ++i) zq += p.vc[i] * p.q1[i];
        den = 1.0 + zq;
        if (!(acem__fabs(den) > 1e-12))
            return acem__fail(err, ACEM_ERR_SINGULAR, "tensor '%s': the ACE system is singular", nm);
        /* W^ = X^ - (X^ q1) z^T / den, X^ rows = (Ah + E I)^-1 B^ rows */
        for (i = 0; i < b; ++i) {
            double *w = p.Mh + i * a, xq = 0;
            for (j = 0; j < a; ++j) w[j] = p.Bh[i * a + j];
            acem__dpotrs(a, p.L, a, w);
            for (j = 0; j < a; ++j) xq += w[j] * p.q1[j];
            for (j = 0; j < a; ++j) w[j] -= xq * p.vc[j] / den;
        }
        if (gated && !(o.flags & ACEM_FLAG_NO_REFINE) && k > 0) {
            /* F^ = Rs - Us (Ah + E I) / T + W^, in Rs */
            size_t q = acem__min(a, b), kk = acem__min(k, q), kept = 0;
            double sig = 0, tol;
            for (i = 0; i < a * a; ++i) p.L[i] = p.Ah[i];
            for (i = 0; i < a; ++i) p.L[i * a + i] += E;
            acem__dmm(0, 0, b, a, a, -1.0 / (double)T, p.Us, a, p.L, a, 1.0, p.Rs, a);
            for (i = 0; i < b * a; ++i) p.Rs[i] += p.Mh[i];
            if ((r = acem__dsvd(b, a, p.Rs, a, p.G, p.s, p.Uo, p.Vo, p.ew)) != ACEM_OK)
                return acem__fail(err, r, "tensor '%s': SVD of the refinement failed", nm);
            for (i = 0; i < kk; ++i) sig += p.s[i];
            sig /= (double)k;
            tol = (double)acem__max(R, C) * ACEM__FLT_EPS * p.s[0];
            for (j = 0; j < kk; ++j) {
                size_t c;
                if (!(p.s[0] > 0) || !(p.s[j] > tol)) continue;
                ++kept;
                for (i = 0; i < b; ++i)
                    for (c = 0; c < a; ++c) p.Mh[i * a + c] += sig * p.Uo[i * q + j] * p.Vo[c * q + j];
            }
            info->refined = 1;
            info->k = k;
            info->sigma_iso = sig;
            info->directions = kept;
        }
    }
    /* 4. output in SVD order: lambda M = (Q_B^T U S)(V^T Q_A) */
    {
        size_t q = acem__min(a, b), kept = 0, c, i0;
        double s0, sgn = lam < 0 ? -1.0 : 1.0, al = lam < 0 ? -lam : lam;
        if (q && (r = acem__dsvd(b, a, p.Mh, a, p.G, p.s, p.Uo, p.Vo, p.ew)) != ACEM_OK)
            return acem__fail(err, r, "tensor '%s': SVD of the merged delta failed", nm);
        s0 = q ? p.s[0] : 0;
        for (j = 0; j < q; ++j)
            if (s0 > 0 && p.s[j] > 1e-13 * s0) kept = j + 1;
        /* Bout = Q_B^T (U S) by rows; Aout = V^T Q_A in column blocks that
           stay in cache; both accumulate in f64 over c in order */
        for (i = 0; i < R; ++i) {
            for (j = 0; j < kept; ++j) p.vc[j] = 0.0;
            for (c = 0; c < b; ++c) acem__daxpy(kept, p.Qb[c * R + i], p.Uo + c * q, p.vc);
            for (j = 0; j < kept; ++j) p.Bout[i * kept + j] = (float)(sgn * p.vc[j] * al * p.s[j]);
        }
        for (i0 = 0; i0 < C; i0 += 512) {
            size_t nb = acem__min(512, C - i0);
            for (j = 0; j < kept; ++j) {
                for (i = 0; i < nb; ++i) p.vr[i] = 0.0;
                for (c = 0; c < a; ++c) acem__daxpy(nb, p.Vo[c * q + j], p.Qa + c * C + i0, p.vr);
                for (i = 0; i < nb; ++i) p.Aout[j * C + i0 + i] = (float)p.vr[i];
            }
        }
        for (j = 0; j < kept; ++j) p.s[j] *= al;
        out->rank = kept;
        out->B = p.Bout;
        out->A = p.Aout;
        out->sv = p.s;
    }
    return ACEM_OK;
}

/* =========================================================================== */
/* file formats: safetensors (read, validate, write), sharded index           */
/* =========================================================================== */
ACEMDEF const char *acem_dtype_name(acem_dtype d) {
    static const char *const names[] = {"UNKNOWN",
#define ACEM__NAME(code, name, bits) name,
                                        ACEM_DTYPE_LIST(ACEM__NAME)
#undef ACEM__NAME
    };
    static const char *const gnames[] = {
#define ACEM__NAME(code, name, id, blk, size) name,
        ACEM_GGUF_BLOCK_LIST(ACEM__NAME)
#undef ACEM__NAME
    };
    if ((int)d >= (int)ACEM_DT_GGUF_FIRST && (int)d < (int)ACEM_DT_GGUF_END) return gnames[d - ACEM_DT_GGUF_FIRST];
    if ((int)d < 0 || (int)d >= (int)ACEM_DT_COUNT) return "UNKNOWN";
    return names[d];
}
/* GGUF block types: ggml id, elements and bytes per block (0 for the others) */
static const unsigned short acem__gguf_blk[][3] = {
#define ACEM__BLK(code, name, id, blk, size) {id, blk, size},
    ACEM_GGUF_BLOCK_LIST(ACEM__BLK)
#undef ACEM__BLK
};
static int acem__is_block(acem_dtype d) { return (int)d >= (int)ACEM_DT_GGUF_FIRST && (int)d < (int)ACEM_DT_GGUF_END; }
ACEMDEF int acem_dtype_bytes(acem_dtype d, uint64_t numel, uint64_t *bytes, uint64_t *block) {
    uint64_t blk = 1, size, bits;
    if (bytes) *bytes = 0;
    if (block) *block = 1;
    if (acem__is_block(d)) {
        blk = acem__gguf_blk[d - ACEM_DT_GGUF_FIRST][1];
        size = acem__gguf_blk[d - ACEM_DT_GGUF_FIRST][2];
        if (block) *block = blk;
        if (numel % blk || numel / blk > ~(uint64_t)0 / size) return 0;
        if (bytes) *bytes = numel / blk * size;
        return 1;
    }
    if (!(bits = acem_dtype_bits(d)) || numel > ~(uint64_t)0 / 64u || numel * bits % 8) return 0;
    if (bytes) *bytes = numel * bits / 8;
    return 1;
}
ACEMDEF unsigned acem_dtype_bits(acem_dtype d) {
    static const unsigned char bits[] = {0,
#define ACEM__BITS(code, name, b) b,
                                         ACEM_DTYPE_LIST(ACEM__BITS)
#undef ACEM__BITS
    };
    if ((int)d < 0 || (int)d >= (int)ACEM_DT_COUNT) return 0;
    return bits[d];
}
static int acem__streq(const char *a, const char *b) {
    while (*a && *a == *b) { ++a; ++b; }
    return *a == *b;
}
static int acem__strcmp(const char *a, const char *b) {
    while (*a && *a == *b) { ++a; ++b; }
    return (int)(unsigned char)*a - (int)(unsigned char)*b;
}
ACEMDEF acem_dtype acem_dtype_from_name(const char *name) {
    int d;
    if (!name) return ACEM_DT_UNKNOWN;
    for (d = 1; d < (int)ACEM_DT_COUNT; ++d)
        if (acem__streq(acem_dtype_name((acem_dtype)d), name)) return (acem_dtype)d;
    for (d = (int)ACEM_DT_GGUF_FIRST; d < (int)ACEM_DT_GGUF_END; ++d)
        if (acem__streq(acem_dtype_name((acem_dtype)d), name)) return (acem_dtype)d;
    return ACEM_DT_UNKNOWN;
}
static int acem__dequantizes(acem_dtype d) {
    switch (d) {
    case ACEM_DT_Q4_0: case ACEM_DT_Q4_1: case ACEM_DT_Q5_0: case ACEM_DT_Q5_1: case ACEM_DT_Q8_0:
    case ACEM_DT_Q2_K: case ACEM_DT_Q3_K: case ACEM_DT_Q4_K: case ACEM_DT_Q5_K: case ACEM_DT_Q6_K:
    case ACEM_DT_TQ2_0: case ACEM_DT_MXFP4: case ACEM_DT_IQ4_NL: case ACEM_DT_IQ4_XS: return 1;
    default: return 0;
    }
}
ACEMDEF int acem_dtype_is_float(acem_dtype d) {
    return d == ACEM_DT_F32 || d == ACEM_DT_F16 || d == ACEM_DT_BF16 || d == ACEM_DT_F64 ||
           d == ACEM_DT_F8_E4M3 || d == ACEM_DT_F8_E5M2 || acem__dequantizes(d);
}
ACEMDEF int acem_gguf_type_id(acem_dtype d) {
    switch (d) {
    case ACEM_DT_F32: return 0;
    case ACEM_DT_F16: return 1;
    case ACEM_DT_I8: return 24;
    case ACEM_DT_I16: return 25;
    case ACEM_DT_I32: return 26;
    case ACEM_DT_I64: return 27;
    case ACEM_DT_F64: return 28;
    case ACEM_DT_BF16: return 30;
    default: return acem__is_block(d) ? (int)acem__gguf_blk[d - ACEM_DT_GGUF_FIRST][0] : -1;
    }
}
static acem_dtype acem__gguf_dtype(uint32_t id) {
    int d, g;
    for (d = 1; d < (int)ACEM_DT_GGUF_END; ++d)
        if ((d < (int)ACEM_DT_COUNT || d >= (int)ACEM_DT_GGUF_FIRST) && (g = acem_gguf_type_id((acem_dtype)d)) >= 0 &&
            (uint32_t)g == id)
            return (acem_dtype)d;
    return ACEM_DT_UNKNOWN;
}

/* ---- a strict JSON reader for headers (strings decoded in place) ---------- */
typedef struct acem__json {
    char *p;          /* buffer (NUL at p[n]) */
    size_t i, n;
    const char *what; /* what was being parsed, for messages */
    int depth;
} acem__json;

static void acem__jws(acem__json *j) {
    while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' || j->p[j->i] == '\r'))
        j->i++;
}
static int acem__hex(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}
static int acem__j4hex(acem__json *j, unsigned *v) {
    int k, h;
    *v = 0;
    if (j->i + 4 > j->n) return 0;
    for (k = 0; k < 4; ++k) {
        if ((h = acem__hex((unsigned char)j->p[j->i + (size_t)k])) < 0) return 0;
        *v = *v * 16u + (unsigned)h;
    }
    j->i += 4;
    return 1;
}
/* Parses a string at j->i (which must be '"'); decodes it in place and
   NUL-terminates it; returns its start or NULL. */
static char *acem__jstr(acem__json *j) {
    char *out, *start;
    if (j->i >= j->n || j->p[j->i] != '"') return NULL;
    start = out = j->p + j->i + 1;
    j->i++;
    for (;;) {
        unsigned char c;
        if (j->i >= j->n) return NULL;
        c = (unsigned char)j->p[j->i++];
        if (c == '"') break;
        if (c < 0x20) return NULL;
        if (c != '\\') { *out++ = (char)c; continue; }
        if (j->i >= j->n) return NULL;
        c = (unsigned char)j->p[j->i++];
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '/': *out++ = '/'; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u': {
            unsigned u, lo;
            if (!acem__j4hex(j, &u)) return NULL;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (j->i + 2 > j->n || j->p[j->i] != '\\' || j->p[j->i + 1] != 'u') return NULL;
                j->i += 2;
                if (!acem__j4hex(j, &lo) || lo < 0xDC00 || lo > 0xDFFF) return NULL;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xDC00 && u <= 0xDFFF)
                return NULL;
            if (u == 0) return NULL; /* names with NUL cannot be represented */
            if (u < 0x80) *out++ = (char)u;
            else if (u < 0x800) { *out++ = (char)(0xC0 | (u >> 6)); *out++ = (char)(0x80 | (u & 0x3F)); }
            else if (u < 0x10000) {
                *out++ = (char)(0xE0 | (u >> 12)); *out++ = (char)(0x80 | ((u >> 6) & 0x3F));
                *out++ = (char)(0x80 | (u & 0x3F));
            } else {
                *out++ = (char)(0xF0 | (u >> 18)); *out++ = (char)(0x80 | ((u >> 12) & 0x3F));
                *out++ = (char)(0x80 | ((u >> 6) & 0x3F)); *out++ = (char)(0x80 | (u & 0x3F));
            }
            break;
        }
        default: return NULL;
        }
    }
    *out = 0; /* out <= position of the closing quote */
    return start;
}
/* unsigned integer: digits only, no leading zeros, no fraction/exponent */
static int acem__ju64(acem__json *j, uint64_t *v) {
    size_t s = j->i;
    *v = 0;
    while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') {
        uint64_t d = (uint64_t)(j->p[j->i] - '0');
        if (*v > (~(uint64_t)0 - d) / 10) return 0;
        *v = *v * 10 + d;
        j->i++;
    }
    if (j->i == s || (j->i - s > 1 && j->p[s] == '0')) return 0;
    if (j->i < j->n && (j->p[j->i] == '.' || j->p[j->i] == 'e' || j->p[j->i] == 'E' || j->p[j->i] == '-'))
        return 0;
    return 1;
}
static int acem__jlit(acem__json *j, const char *lit) {
    size_t k = 0;
    while (lit[k]) {
        if (j->i + k >= j->n || j->p[j->i + k] != lit[k]) return 0;
        ++k;
    }
    j->i += k;
    return 1;
}
static int acem__jskip(acem__json *j) { /* any JSON value */
    char c;
    acem__jws(j);
    if (j->i >= j->n) return 0;
    c = j->p[j->i];
    if (c == '"') return acem__jstr(j) != NULL;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (++j->depth > 64) return 0;
        j->i++;
        acem__jws(j);
        if (j->i < j->n && j->p[j->i] == close) { j->i++; j->depth--; return 1; }
        for (;;) {
            acem__jws(j);
            if (c == '{') {
                if (!acem__jstr(j)) return 0;
                acem__jws(j);
                if (j->i >= j->n || j->p[j->i] != ':') return 0;
                j->i++;
            }
            if (!acem__jskip(j)) return 0;
            acem__jws(j);
            if (j->i >= j->n) return 0;
            if (j->p[j->i] == ',') { j->i++; continue; }
            if (j->p[j->i] == close) { j->i++; j->depth--; return 1; }
            return 0;
        }
    }
    if (c == 't') return acem__jlit(j, "true");
    if (c == 'f') return acem__jlit(j, "false");
    if (c == 'n') return acem__jlit(j, "null");
    { /* number */
        size_t s;
        if (j->p[j->i] == '-') j->i++;
        s = j->i;
        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') j->i++;
        if (j->i == s || (j->i - s > 1 && j->p[s] == '0')) return 0;
        if (j->i < j->n && j->p[j->i] == '.') {
            j->i++;
            s = j->i;
            while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') j->i++;
            if (j->i == s) return 0;
        }
        if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
            j->i++;
            if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-')) j->i++;
            s = j->i;
            while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') j->i++;
            if (j->i == s) return 0;
        }
        return 1;
    }
}
static int acem__jexpect(acem__json *j, char c) {
    acem__jws(j);
    if (j->i < j->n && j->p[j->i] == c) { j->i++; return 1; }
    return 0;
}
/* After an element: ',' (returns 1) or the closing char (returns 0); -1 on error. */
static int acem__jnext(acem__json *j, char close) {
    acem__jws(j);
    if (j->i < j->n && j->p[j->i] == ',') { j->i++; return 1; }
    if (j->i < j->n && j->p[j->i] == close) { j->i++; return 0; }
    return -1;
}
static int acem__utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], need, cp, k;
        if (c < 0x80) { ++i; continue; }
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
        else return 0;
        for (k = 1; k <= need; ++k) {
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* ---- reading ---------------------------------------------------------------- */
static const char *acem__path(const char *p) { return p ? p : "(input)"; }

/* n bytes little-endian (both formats store their numbers so) */
static uint64_t acem__le(const unsigned char *b, int n) {
    uint64_t v = 0;
    while (n-- > 0) v = (v << 8) | b[n];
    return v;
}
static acem_result acem__gguf_parse(const acem_read_io *io, acem_st_file *f, unsigned char *arena, size_t *need,
                                    acem_error *err);
static int acem__is_gguf(const unsigned char *m);
ACEMDEF acem_result acem_st_open_bytes(const acem_read_io *io, size_t *bytes, acem_error *err) {
    unsigned char h[8];
    uint64_t n;
    if (!io || !io->read || !bytes) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "acem_st_open_bytes: NULL argument");
    *bytes = 0;
    if (io->size < 8)
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length",
                          acem__path(io->path), (size_t)io->size);
    if (io->read(io->user, 0, h, 8)) return acem__fail(err, ACEM_ERR_IO, "%s: cannot read the header length", acem__path(io->path));
    if (acem__is_gguf(h)) return acem__gguf_parse(io, NULL, NULL, bytes, err);
    n = acem__le(h, 8);
    if (n > ACEM_ST_MAX_HEADER)
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: header length %zu exceeds the limit of 100000000 bytes",
                          acem__path(io->path), (size_t)n);
    if (n > io->size - 8)
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: header length %zu runs past the end of the file (%zu bytes)",
                          acem__path(io->path), (size_t)n, (size_t)io->size);
    *bytes = ((size_t)n + 1 + 7) / 8 * 8 + ((size_t)n / 48 + 1) * sizeof(acem_st_tensor) +
             ((size_t)n / 6 + 1) * 2 * sizeof(char *);
    return ACEM_OK;
}

typedef int (*acem__cmp_fn)(const acem_st_tensor *, const acem_st_tensor *);
static int acem__cmp_begin(const acem_st_tensor *a, const acem_st_tensor *b) {
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}
static int acem__cmp_name(const acem_st_tensor *a, const acem_st_tensor *b) { return acem__strcmp(a->name, b->name); }
static void acem__swap_t(acem_st_tensor *a, acem_st_tensor *b) { acem_st_tensor t = *a; *a = *b; *b = t; }
static void acem__heapsort_t(acem_st_tensor *v, size_t n, acem__cmp_fn cmp) {
    size_t i, end;
    if (n < 2) return;
    for (i = n / 2; i-- > 0;) { /* heapify */
        size_t r = i;
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= n) break;
            if (c + 1 < n && cmp(&v[c], &v[c + 1]) < 0) ++c;
            if (cmp(&v[r], &v[c]) >= 0) break;
            acem__swap_t(&v[r], &v[c]);
            r = c;
        }
    }
    for (end = n - 1; end > 0; --end) {
        size_t r = 0;
        acem__swap_t(&v[0], &v[end]);
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= end) break;
            if (c + 1 < end && cmp(&v[c], &v[c + 1]) < 0) ++c;
            if (cmp(&v[r], &v[c]) >= 0) break;
            acem__swap_t(&v[r], &v[c]);
            r = c;
        }
    }
}

/* heap sort of key/value pointer pairs by key */
static void acem__sift_meta(const char **m, size_t r, size_t n) {
    for (;;) {
        size_t c = 2 * r + 1;
        const char *tk, *tv;
        if (c >= n) return;
        if (c + 1 < n && acem__strcmp(m[2 * c], m[2 * c + 2]) < 0) ++c;
        if (acem__strcmp(m[2 * r], m[2 * c]) >= 0) return;
        tk = m[2 * r]; tv = m[2 * r + 1];
        m[2 * r] = m[2 * c]; m[2 * r + 1] = m[2 * c + 1];
        m[2 * c] = tk; m[2 * c + 1] = tv;
        r = c;
    }
}
static void acem__heapsort_meta(const char **m, size_t n) {
    size_t i;
    for (i = n / 2; i-- > 0;) acem__sift_meta(m, i, n);
    for (i = n; i-- > 1;) {
        const char *tk = m[0], *tv = m[1];
        m[0] = m[2 * i]; m[1] = m[2 * i + 1];
        m[2 * i] = tk; m[2 * i + 1] = tv;
        acem__sift_meta(m, 0, i);
    }
}

static acem_result acem__st_tensor_entry(acem__json *j, acem_st_tensor *t, const char *path, acem_error *err) {
    int have_dt = 0, have_shape = 0, have_off = 0, r;
    if (!acem__jexpect(j, '{'))
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, t->name);
    acem__jws(j);
    if (j->i < j->n && j->p[j->i] == '}') { j->i++; r = 0; }
    else r = 1;
    while (r == 1) {
        char *key;
        acem__jws(j);
        if (!(key = acem__jstr(j)) || !acem__jexpect(j, ':'))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': malformed JSON in its entry", path, t->name);
        acem__jws(j);
        if (acem__streq(key, "dtype")) {
            char *dt;
            if (have_dt++) return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': duplicate key 'dtype'", path, t->name);
            if (!(dt = acem__jstr(j))) return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", path, t->name);
            if ((t->dtype = acem_dtype_from_name(dt)) == ACEM_DT_UNKNOWN || acem__is_block(t->dtype))
                return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, t->name, dt);
        } else if (acem__streq(key, "shape")) {
            int more;
            if (have_shape++) return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': duplicate key 'shape'", path, t->name);
            if (!acem__jexpect(j, '['))
                return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': shape is not an array", path, t->name);
            acem__jws(j);
            t->ndim = 0;
            if (j->i < j->n && j->p[j->i] == ']') { j->i++; more = 0; }
            else more = 1;
            while (more == 1) {
                uint64_t d;
                acem__jws(j);
                if (!acem__ju64(j, &d))
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': shape holds something other than a non-negative integer", path, t->name);
                if (t->ndim >= ACEM_ST_MAX_DIMS)
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': more than %d dimensions", path, t->name, ACEM_ST_MAX_DIMS);
                t->shape[t->ndim++] = d;
                if ((more = acem__jnext(j, ']')) < 0)
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': malformed shape array", path, t->name);
            }
        } else if (acem__streq(key, "data_offsets")) {
            if (have_off++) return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': duplicate key 'data_offsets'", path, t->name);
            if (!acem__jexpect(j, '[') || (acem__jws(j), !acem__ju64(j, &t->begin)) || !acem__jexpect(j, ',') ||
                (acem__jws(j), !acem__ju64(j, &t->end)) || !acem__jexpect(j, ']'))
                return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with non-negative integers", path, t->name);
        } else if (!acem__jskip(j))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': malformed JSON in its entry", path, t->name);
        if ((r = acem__jnext(j, '}')) < 0)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': malformed JSON in its entry", path, t->name);
    }
    if (!have_dt || !have_shape || !have_off)
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': missing '%s'", path, t->name,
                          !have_dt ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return ACEM_OK;
}

/* Both readers end here: metadata sorted by key and tensors by name (for the
   binary searches of acem_st_meta and acem_st_find), neither twice. */
static acem_result acem__st_sort(acem_st_file *f, const char *path, const char *key_what, acem_error *err) {
    size_t k;
    acem__heapsort_meta(f->meta, f->n_meta);
    for (k = 1; k < f->n_meta; ++k)
        if (acem__streq(f->meta[2 * k - 2], f->meta[2 * k]))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: duplicate %s '%s'", path, key_what, f->meta[2 * k]);
    acem__heapsort_t(f->tensors, f->n_tensors, acem__cmp_name);
    for (k = 1; k < f->n_tensors; ++k)
        if (acem__streq(f->tensors[k - 1].name, f->tensors[k].name))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: duplicate tensor '%s'", path, f->tensors[k].name);
    return ACEM_OK;
}

/* ---- GGUF reading -------------------------------------------------------------
   One parser, run twice: acem_st_open_bytes() counts the arena bytes (strings
   skipped, not read), acem_st_open() fills the arena and checks the rest. The
   header is read through a 4 KB buffer; tensor data is never touched. */
#define ACEM__GGUF_MAX_NAME 64 /* ggml's GGML_MAX_NAME, with the NUL */
#define ACEM__GGUF_VTEXT 48    /* room for a non-string value's text */
typedef struct acem__gr {
    const acem_read_io *io;
    const char *path;
    acem_error *err;
    acem_result r;             /* first failure (ACEM_OK while none)          */
    uint64_t pos;              /* absolute offset of the next byte            */
    uint64_t boff;
    size_t blen;
    unsigned char buf[4096];
} acem__gr;
static uint64_t acem__minu64(uint64_t a, uint64_t b) { return a < b ? a : b; }
/* n bytes at pos into dst (dst NULL: skip them); 1 on failure */
static int acem__gr_get(acem__gr *g, void *dst, uint64_t n, const char *what) {
    unsigned char *d = ACEM__CAST(unsigned char *, dst);
    if (g->r != ACEM_OK) return 1;
    if (n > g->io->size || g->pos > g->io->size - n) {
        g->r = acem__fail(g->err, ACEM_ERR_FORMAT, "%s: the file ends inside %s (at byte %zu of %zu)", g->path, what,
                          (size_t)g->pos, (size_t)g->io->size);
        return 1;
    }
    while (n) {
        uint64_t in = g->boff + g->blen;
        if (g->pos >= g->boff && g->pos < in) {
            uint64_t k = acem__minu64(in - g->pos, n);
            if (d) { ACEM_MEMCPY(d, g->buf + (size_t)(g->pos - g->boff), (size_t)k); d += k; }
            g->pos += k;
            n -= k;
        } else if (!d) {
            g->pos += n;
            n = 0;
        } else if (n >= sizeof g->buf) {
            if ((uint64_t)(size_t)n != n || g->io->read(g->io->user, g->pos, d, (size_t)n)) {
                g->r = acem__fail(g->err, ACEM_ERR_IO, "%s: read error at byte %zu", g->path, (size_t)g->pos);
                return 1;
            }
            g->pos += n;
            n = 0;
        } else {
            size_t m = (size_t)acem__minu64(sizeof g->buf, g->io->size - g->pos);
            if (g->io->read(g->io->user, g->pos, g->buf, m)) {
                g->r = acem__fail(g->err, ACEM_ERR_IO, "%s: read error at byte %zu", g->path, (size_t)g->pos);
                return 1;
            }
            g->boff = g->pos;
            g->blen = m;
        }
    }
    return 0;
}
static uint64_t acem__gr_u(acem__gr *g, int n, const char *what) {
    unsigned char b[8];
    if (acem__gr_get(g, b, (uint64_t)n, what)) return 0;
    return acem__le(b, n);
}
/* a GGUF string: its length into *len, then its bytes into dst, NUL-terminated,
   if dst is not NULL and len < cap (else skipped, dst "") */
static int acem__gr_str(acem__gr *g, char *dst, uint64_t cap, uint64_t *len, const char *what) {
    *len = acem__gr_u(g, 8, what);
    if (g->r != ACEM_OK) return 1;
    if (dst && *len < cap) {
        if (acem__gr_get(g, dst, *len, what)) return 1;
        dst[*len] = 0;
        return 0;
    }
    if (dst) dst[0] = 0;
    return acem__gr_get(g, NULL, *len, what);
}
static const unsigned char acem__gguf_vsize[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const acem__gguf_vname[13] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                                   "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64", "FLOAT64"};
/* a scalar value's text */
static void acem__gguf_text(acem__sbuf *b, uint32_t type, uint64_t v) {
    switch (type) {
    case 1: case 3: case 5: case 11: {
        long long x = type == 1 ? (long long)(signed char)(unsigned char)v
                    : type == 3 ? (long long)(int16_t)(uint16_t)v
                    : type == 5 ? (long long)(int32_t)(uint32_t)v : (long long)(int64_t)v;
        if (x < 0) { acem__putc(b, '-'); acem__putu(b, (unsigned long long)(-(x + 1)) + 1); }
        else acem__putu(b, (unsigned long long)x);
        break;
    }
    case 6: acem__putg(b, (double)acem__u2f((uint32_t)v)); break;
    case 12: { double x; ACEM_MEMCPY(&x, &v, 8); acem__putg(b, x); break; }
    case 7: acem__puts(b, v ? "true" : "false"); break;
    default: acem__putu(b, (unsigned long long)v); break;
    }
}

/* Parses the header. f NULL: counts the arena bytes into *need; else fills f
   from arena (need bytes, from a counting run). */
static acem_result acem__gguf_parse(const acem_read_io *io, acem_st_file *f, unsigned char *arena, size_t *need,
                                    acem_error *err) {
    acem__gr *g, gs;
    uint64_t n_t, n_kv, k, strings = 0, expect, align = 32, version;
    size_t sp = 0, nkv = 0;
    char *str = NULL, kbuf[256];
    const char *path = acem__path(io->path);
    unsigned char magic[4];
    g = &gs;
    g->io = io; g->path = path; g->err = err; g->r = ACEM_OK; g->pos = 0; g->boff = 0; g->blen = 0;
    if (acem__gr_get(g, magic, 4, "the magic")) return g->r;
    version = acem__gr_u(g, 4, "the version");
    if (g->r != ACEM_OK) return g->r;
    if (version == 1) return acem__fail(err, ACEM_ERR_FORMAT, "%s: GGUF version 1 is not supported (version 2 and 3 are)", path);
    if (version != 2 && version != 3) {
        if ((version & 0xffffu) == 0 && (version >> 16))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: a big-endian GGUF file; acem reads little-endian GGUF only", path);
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: GGUF version %zu is not supported (version 2 and 3 are)", path,
                          (size_t)version);
    }
    n_t = acem__gr_u(g, 8, "the tensor count");
    n_kv = acem__gr_u(g, 8, "the key/value count");
    if (g->r != ACEM_OK) return g->r;
    /* each pair takes 13 bytes or more, each tensor info 24 or more */
    if (n_kv > io->size / 13)
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: declares %zu key/value pairs, more than its %zu bytes can hold", path,
                          (size_t)acem__min((size_t)-1, n_kv), (size_t)io->size);
    if (n_t > io->size / 24)
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: declares %zu tensors, more than its %zu bytes can hold", path,
                          (size_t)acem__min((size_t)-1, n_t), (size_t)io->size);
    if (f) {
        size_t off = 0;
        f->format = ACEM_FORMAT_GGUF;
        f->gguf_version = (uint32_t)version;
        f->kv = ACEM__CAST(acem_gguf_kv *, (void *)arena);
        off += ((size_t)n_kv * sizeof(acem_gguf_kv) + 7) / 8 * 8;
        f->meta = ACEM__CAST(const char **, (void *)(arena + off));
        off += (size_t)n_kv * 2 * sizeof(char *);
        f->tensors = ACEM__CAST(acem_st_tensor *, (void *)(arena + off));
        off += (size_t)n_t * sizeof(acem_st_tensor);
        str = ACEM__CAST(char *, (void *)(arena + off));
    }
    /* key/value pairs */
    for (k = 0; k < n_kv; ++k) {
        uint64_t klen, v = 0;
        uint32_t type;
        char *key = str ? str + sp : kbuf; /* counting: a key under 256 bytes, for messages */
        acem__sbuf tb;
        char text[ACEM__GGUF_VTEXT];
        uint64_t begin = g->pos;
        if (acem__gr_str(g, key, str ? ~(uint64_t)0 : sizeof kbuf, &klen, "a key")) return g->r;
        if (acem__strlen(key) != klen && (str || klen < sizeof kbuf))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: key %zu holds a NUL byte", path, (size_t)k);
        strings += klen + 1;
        if (str) sp += (size_t)klen + 1;
        type = (uint32_t)acem__gr_u(g, 4, "a value type");
        if (g->r != ACEM_OK) return g->r;
        if (type > 12)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: key '%s': unknown value type %u", path, key, (unsigned)type);
        tb.p = text; tb.n = 0; tb.cap = sizeof text;
        if (type == 8) { /* string: its text is itself */
            uint64_t len;
            char *val = str ? str + sp : NULL;
            if (acem__gr_str(g, val, ~(uint64_t)0, &len, "a string value")) return g->r;
            strings += len + 1;
            if (val) {
                if (f) f->kv[nkv].value = val;
                sp += (size_t)len + 1;
            }
        } else {
            if (type == 9) {
                uint32_t et = (uint32_t)acem__gr_u(g, 4, "an array type");
                uint64_t n = acem__gr_u(g, 8, "an array length"), i;
                if (g->r != ACEM_OK) return g->r;
                if (et > 12) return acem__fail(err, ACEM_ERR_FORMAT, "%s: key '%s': array of unknown type %u", path, key, (unsigned)et);
                if (et == 9) return acem__fail(err, ACEM_ERR_FORMAT, "%s: key '%s': nested arrays are not supported", path, key);
                if (et == 8) {
                    for (i = 0; i < n; ++i) {
                        uint64_t len;
                        if (acem__gr_str(g, NULL, 0, &len, "a string in an array")) return g->r;
                    }
                } else {
                    if (n > io->size / acem__gguf_vsize[et]) n = io->size; /* the get below fails */
                    if (acem__gr_get(g, NULL, n * acem__gguf_vsize[et], "an array")) return g->r;
                }
                acem__putc(&tb, '[');
                acem__putu(&tb, (unsigned long long)n);
                acem__puts(&tb, " x ");
                acem__puts(&tb, acem__gguf_vname[et]);
                acem__putc(&tb, ']');
            } else {
                v = acem__gr_u(g, acem__gguf_vsize[type], "a value");
                if (g->r != ACEM_OK) return g->r;
                acem__gguf_text(&tb, type, v);
            }
            text[tb.n < sizeof text ? tb.n : sizeof text - 1] = 0;
            strings += acem__strlen(text) + 1;
            if (str) {
                ACEM_MEMCPY(str + sp, text, acem__strlen(text) + 1);
                f->kv[nkv].value = str + sp;
                sp += acem__strlen(text) + 1;
            }
        }
        if (f) {
            f->kv[nkv].key = key;
            f->kv[nkv].type = type;
            f->kv[nkv].begin = begin;
            f->kv[nkv].end = g->pos;
            if (acem__streq(key, "general.alignment")) {
                if (type != 4)
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: general.alignment is a %s; it must be a UINT32", path,
                                      acem__gguf_vname[type]);
                if (!v || (v & (v - 1)))
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: general.alignment is %zu; it must be a power of two", path, (size_t)v);
                align = v;
            }
        }
        ++nkv;
    }
    /* tensor infos */
    for (k = 0; k < n_t; ++k) {
        uint64_t nlen, ne[4] = {1, 1, 1, 1}, numel = 1, bytes, blk;
        uint32_t nd, d, id;
        char *name = str ? str + sp : kbuf;
        acem_st_tensor *t = f ? &f->tensors[k] : NULL;
        acem_dtype dt;
        if (acem__gr_str(g, name, ACEM__GGUF_MAX_NAME, &nlen, "a tensor name")) return g->r;
        if (nlen >= ACEM__GGUF_MAX_NAME)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor %zu: name is %zu bytes; GGUF allows 63", path, (size_t)k, (size_t)nlen);
        if (acem__strlen(name) != nlen)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor %zu: name holds a NUL byte", path, (size_t)k);
        strings += nlen + 1;
        if (str) sp += (size_t)nlen + 1;
        nd = (uint32_t)acem__gr_u(g, 4, "a tensor's dimension count");
        if (g->r != ACEM_OK) return g->r;
        if (nd > 4)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': %u dimensions; GGUF allows 4", path, name, (unsigned)nd);
        for (d = 0; d < nd; ++d) {
            ne[d] = acem__gr_u(g, 8, "a tensor's dimensions");
            if (g->r != ACEM_OK) return g->r;
            if (ne[d] > (uint64_t)0x7fffffffffffffffull)
                return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': negative dimension", path, name);
            if (ne[d] && numel > (uint64_t)0x7fffffffffffffffull / ne[d])
                return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
            numel *= ne[d];
        }
        id = (uint32_t)acem__gr_u(g, 4, "a tensor's type");
        if (g->r != ACEM_OK) return g->r;
        if ((dt = acem__gguf_dtype(id)) == ACEM_DT_UNKNOWN)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': unknown or retired ggml type %u", path, name, (unsigned)id);
        if (!acem_dtype_bytes(dt, numel, &bytes, &blk) || ne[0] % blk)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': first dimension %zu is not a whole number of %s blocks (%zu)",
                              path, name, (size_t)ne[0], acem_dtype_name(dt), (size_t)blk);
        expect = acem__gr_u(g, 8, "a tensor's offset");
        if (g->r != ACEM_OK) return g->r;
        if (t) {
            ACEM_MEMSET(t, 0, sizeof *t);
            t->name = name;
            t->dtype = dt;
            t->ndim = nd;
            for (d = 0; d < nd; ++d) t->shape[d] = ne[nd - 1 - d];
            t->numel = numel;
            t->begin = expect;
            t->end = bytes; /* the size, for now */
        }
    }
    if (!f) { /* n_kv and n_t are below size / 13: these products fit */
        uint64_t b = (n_kv * sizeof(acem_gguf_kv) + 7) / 8 * 8 + n_kv * 2 * sizeof(char *) + n_t * sizeof(acem_st_tensor);
        if (strings > (uint64_t)((size_t)-1 / 4) || b > (uint64_t)((size_t)-1 / 4))
            return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "%s: the GGUF header is too large for this build's address space", path);
        *need = (size_t)(b + strings);
        return ACEM_OK;
    }
    f->n_kv = nkv;
    f->alignment = (uint32_t)align;
    /* the data section: after the header, padded to the alignment; offsets
       sequential in info order, each tensor padded */
    f->data_start = (g->pos + align - 1) / align * align;
    f->header_len = f->data_start;
    if (f->data_start > io->size) f->data_start = io->size;
    f->data_len = io->size - f->data_start;
    expect = 0;
    for (k = 0; k < n_t; ++k) {
        acem_st_tensor *t = &f->tensors[k];
        uint64_t bytes = t->end;
        if (t->begin != expect)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': data offset %zu, expected %zu (sequential, padded to %zu)",
                              path, t->name, (size_t)t->begin, (size_t)expect, (size_t)align);
        if (bytes > f->data_len || t->begin > f->data_len - bytes || f->header_len > io->size)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': its data runs past the end of the file (truncated?)", path,
                              t->name);
        t->end = t->begin + bytes;
        expect = t->end + (align - bytes % align) % align;
    }
    f->n_tensors = (size_t)n_t;
    for (k = 0; k < nkv; ++k) {
        f->meta[2 * k] = f->kv[k].key;
        f->meta[2 * k + 1] = f->kv[k].value;
    }
    f->n_meta = nkv;
    return acem__st_sort(f, path, "key", err);
}
static int acem__is_gguf(const unsigned char *m) { return m[0] == 'G' && m[1] == 'G' && m[2] == 'U' && m[3] == 'F'; }

ACEMDEF acem_result acem_st_open(acem_st_file *f, const acem_read_io *io, void *arena, size_t arena_bytes,
                                 acem_error *err) {
    size_t need, nt_max, nm_max, k;
    uint64_t n, data_len, expect;
    acem__json j;
    acem_result r;
    const char *path;
    char *hdr;
    int seen_meta = 0, more;
    if (!f) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "acem_st_open: NULL file");
    ACEM_MEMSET(f, 0, sizeof *f);
    if ((r = acem_st_open_bytes(io, &need, err)) != ACEM_OK) return r;
    path = acem__path(io->path);
    if ((r = acem__check_arena(err, path, arena, arena_bytes, need)) != ACEM_OK) return r;
    f->io = *io;
    {
        unsigned char h[8];
        if (io->read(io->user, 0, h, 8)) return acem__fail(err, ACEM_ERR_IO, "%s: read error", path);
        if (acem__is_gguf(h)) return acem__gguf_parse(io, f, ACEM__CAST(unsigned char *, arena), &need, err);
        n = acem__le(h, 8);
    }
    hdr = ACEM__CAST(char *, arena);
    if (n && io->read(io->user, 8, hdr, (size_t)n)) return acem__fail(err, ACEM_ERR_IO, "%s: cannot read the %zu-byte header", path, (size_t)n);
    hdr[n] = 0;
    f->header_len = n;
    f->data_start = 8 + n;
    f->data_len = data_len = io->size - 8 - n;
    nt_max = (size_t)n / 48 + 1;
    nm_max = (size_t)n / 6 + 1;
    f->tensors = ACEM__CAST(acem_st_tensor *, (void *)(ACEM__CAST(unsigned char *, arena) + ((size_t)n + 1 + 7) / 8 * 8));
    f->meta = ACEM__CAST(const char **, (void *)(f->tensors + nt_max));
    if (!acem__utf8_valid(ACEM__CAST(const unsigned char *, (const void *)hdr), (size_t)n))
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: header is not valid UTF-8", path);
    j.p = hdr; j.i = 0; j.n = (size_t)n; j.depth = 0; j.what = "header";
    if (!acem__jexpect(&j, '{')) return acem__fail(err, ACEM_ERR_FORMAT, "%s: header is not a JSON object", path);
    acem__jws(&j);
    if (j.i < j.n && j.p[j.i] == '}') { j.i++; more = 0; }
    else more = 1;
    while (more == 1) {
        char *key;
        acem__jws(&j);
        if (!(key = acem__jstr(&j)) || !acem__jexpect(&j, ':'))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu)", path, j.i);
        if (acem__streq(key, "__metadata__")) {
            int m;
            if (seen_meta++) return acem__fail(err, ACEM_ERR_FORMAT, "%s: duplicate key '__metadata__'", path);
            acem__jws(&j);
            if (acem__jlit(&j, "null")) m = 0;
            else {
                if (!acem__jexpect(&j, '{')) return acem__fail(err, ACEM_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                acem__jws(&j);
                if (j.i < j.n && j.p[j.i] == '}') { j.i++; m = 0; }
                else m = 1;
            }
            while (m == 1) {
                char *mk, *mv;
                acem__jws(&j);
                if (!(mk = acem__jstr(&j)) || !acem__jexpect(&j, ':'))
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: __metadata__ is not valid JSON", path);
                acem__jws(&j);
                if (!(mv = acem__jstr(&j)))
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", path, mk);
                if (f->n_meta >= nm_max) return acem__fail(err, ACEM_ERR_FORMAT, "%s: too many metadata entries", path);
                f->meta[2 * f->n_meta] = mk;
                f->meta[2 * f->n_meta + 1] = mv;
                f->n_meta++;
                if ((m = acem__jnext(&j, '}')) < 0) return acem__fail(err, ACEM_ERR_FORMAT, "%s: __metadata__ is not valid JSON", path);
            }
        } else {
            acem_st_tensor *t;
            if (f->n_tensors >= nt_max) return acem__fail(err, ACEM_ERR_FORMAT, "%s: too many tensors for the header size", path);
            t = &f->tensors[f->n_tensors++];
            ACEM_MEMSET(t, 0, sizeof *t);
            t->name = key;
            if ((r = acem__st_tensor_entry(&j, t, path, err)) != ACEM_OK) return r;
        }
        if ((more = acem__jnext(&j, '}')) < 0)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu)", path, j.i);
    }
    acem__jws(&j);
    if (j.i != j.n) return acem__fail(err, ACEM_ERR_FORMAT, "%s: unexpected bytes after the header's JSON object", path);
    /* sizes */
    for (k = 0; k < f->n_tensors; ++k) {
        acem_st_tensor *t = &f->tensors[k];
        uint64_t numel = 1, bits;
        size_t d;
        for (d = 0; d < t->ndim; ++d) {
            if (t->shape[d] && numel > ~(uint64_t)0 / t->shape[d])
                return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, t->name);
            numel *= t->shape[d];
        }
        t->numel = numel;
        if (numel > ~(uint64_t)0 / 64u) return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, t->name);
        bits = numel * acem_dtype_bits(t->dtype);
        if (bits % 8) return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': size is not a whole number of bytes", path, t->name);
        if (t->end < t->begin)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': data_offsets end before begin", path, t->name);
        if (t->end - t->begin != bits / 8)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': %zu bytes in data_offsets but shape and dtype %s need %zu",
                              path, t->name, (size_t)(t->end - t->begin), acem_dtype_name(t->dtype), (size_t)(bits / 8));
    }
    /* contiguity: sorted by begin, each begin equals the previous end, first 0 */
    acem__heapsort_t(f->tensors, f->n_tensors, acem__cmp_begin);
    expect = 0;
    for (k = 0; k < f->n_tensors; ++k) {
        const acem_st_tensor *t = &f->tensors[k];
        if (t->begin != expect)
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': data starts at %zu, expected %zu (%s)", path, t->name,
                              (size_t)t->begin, (size_t)expect, t->begin < expect ? "overlap" : "hole");
        expect = t->end;
    }
    if (expect != data_len)
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: the tensors cover %zu data bytes but the file holds %zu (%s)", path,
                          (size_t)expect, (size_t)data_len, expect < data_len ? "trailing bytes" : "truncated");
    return acem__st_sort(f, path, "metadata key", err);
}

ACEMDEF const acem_st_tensor *acem_st_find(const acem_st_file *f, const char *name) {
    size_t lo = 0, hi = f ? f->n_tensors : 0;
    if (!name) return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = acem__strcmp(f->tensors[mid].name, name);
        if (!c) return &f->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}
ACEMDEF const char *acem_st_meta(const acem_st_file *f, const char *key) {
    size_t lo = 0, hi = f ? f->n_meta : 0;
    if (!key) return NULL;
    while (lo < hi) { /* pairs are sorted by key */
        size_t mid = lo + (hi - lo) / 2;
        int c = acem__strcmp(f->meta[2 * mid], key);
        if (!c) return f->meta[2 * mid + 1];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}
ACEMDEF acem_result acem_st_read_raw(const acem_st_file *f, const acem_st_tensor *t, void *dst, acem_error *err) {
    size_t nb = (size_t)(t->end - t->begin);
    if ((uint64_t)nb != t->end - t->begin || (uint64_t)(size_t)t->numel != t->numel || t->numel > (size_t)-1 / 4)
        return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "%s: tensor '%s': too large for this build's address space",
                          acem__path(f->io.path), t->name);
    if (nb && f->io.read(f->io.user, f->data_start + t->begin, dst, nb))
        return acem__fail(err, ACEM_ERR_IO, "%s: tensor '%s': cannot read %zu bytes", acem__path(f->io.path), t->name, nb);
    return ACEM_OK;
}
static float acem__f8e4m3_to_f32(unsigned char b) {
    unsigned s = b >> 7, e = (b >> 3) & 15u, m = b & 7u;
    float v;
    if (e == 15 && m == 7) return acem__u2f(0x7fc00000u | ((uint32_t)s << 31));
    if (e == 0) v = (float)m * (1.0f / 512.0f);
    else {
        v = (1.0f + (float)m / 8.0f);
        if (e >= 7) { unsigned q; for (q = 7; q < e; ++q) v *= 2.0f; }
        else { unsigned q; for (q = e; q < 7; ++q) v *= 0.5f; }
    }
    return s ? -v : v;
}
/* IQ4_NL / IQ4_XS: the 16 levels a 4-bit index selects */
static const signed char acem__iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
/* K-quants: the 6-bit scale and min of sub-block j of Q4_K / Q5_K */
static void acem__scale_min_k4(int j, const unsigned char *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}
static float acem__h(const unsigned char *b) { return acem_f16_to_f32((uint16_t)acem__le(b, 2)); }
/* ggml's reference dequantization of one block (dequantize_row_*): 32, 256
   or 64 values; the layouts are ggml-common.h's block structs */
static void acem__dequant_kblock(acem_dtype dt, const unsigned char *ACEM__RESTRICT b, float *ACEM__RESTRICT y) {
    int j, l, n;
    switch (dt) {
    case ACEM_DT_Q2_K: { /* scales[16] qs[64] d dmin */
        float d = acem__h(b + 80), mn = acem__h(b + 82);
        const unsigned char *q = b + 16;
        int is = 0;
        for (n = 0; n < 256; n += 128, q += 32) {
            int shift = 0;
            for (j = 0; j < 4; ++j, shift += 2) {
                int sc = b[is++];
                float dl = d * (float)(sc & 15), ml = mn * (float)(sc >> 4);
                for (l = 0; l < 16; ++l) *y++ = dl * (float)((q[l] >> shift) & 3) - ml;
                sc = b[is++];
                dl = d * (float)(sc & 15);
                ml = mn * (float)(sc >> 4);
                for (l = 0; l < 16; ++l) *y++ = dl * (float)((q[l + 16] >> shift) & 3) - ml;
            }
        }
        break;
    }
    case ACEM_DT_Q3_K: { /* hmask[32] qs[64] scales[12] d */
        uint32_t aux[4], tmp;
        signed char sc[16];
        const unsigned char *hm = b, *q = b + 32;
        float d = acem__h(b + 108);
        int is = 0;
        unsigned m = 1;
        for (j = 0; j < 3; ++j) aux[j] = (uint32_t)acem__le(b + 96 + 4 * j, 4);
        tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & 0x0f0f0f0fu) | (((tmp >> 4) & 0x03030303u) << 4);
        aux[3] = ((aux[1] >> 4) & 0x0f0f0f0fu) | (((tmp >> 6) & 0x03030303u) << 4);
        aux[0] = (aux[0] & 0x0f0f0f0fu) | (((tmp >> 0) & 0x03030303u) << 4);
        aux[1] = (aux[1] & 0x0f0f0f0fu) | (((tmp >> 2) & 0x03030303u) << 4);
        for (j = 0; j < 16; ++j) sc[j] = (signed char)(unsigned char)(aux[j / 4] >> (8 * (j % 4)));
        for (n = 0; n < 256; n += 128, q += 32) {
            int shift = 0;
            for (j = 0; j < 4; ++j, shift += 2, m <<= 1) {
                float dl = d * (float)(sc[is++] - 32);
                for (l = 0; l < 16; ++l) *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                dl = d * (float)(sc[is++] - 32);
                for (l = 0; l < 16; ++l) *y++ = dl * (float)(((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
            }
        }
        break;
    }
    case ACEM_DT_Q4_K:
    case ACEM_DT_Q5_K: { /* d dmin scales[12] (Q5_K: qh[32]) qs[128] */
        int k5 = dt == ACEM_DT_Q5_K, is = 0, sc, mm;
        float d = acem__h(b), mn = acem__h(b + 2);
        const unsigned char *sc12 = b + 4, *qh = b + 16, *q = b + (k5 ? 48 : 16);
        unsigned u1 = 1, u2 = 2;
        for (j = 0; j < 256; j += 64, q += 32, is += 2, u1 <<= 2, u2 <<= 2) {
            float d1, m1, d2, m2;
            acem__scale_min_k4(is, sc12, &sc, &mm);
            d1 = d * (float)sc; m1 = mn * (float)mm;
            acem__scale_min_k4(is + 1, sc12, &sc, &mm);
            d2 = d * (float)sc; m2 = mn * (float)mm;
            if (k5) { /* the fifth bit from qh; two loops without branches (they vectorise) */
                for (l = 0; l < 32; ++l) y[l] = d1 * (float)((q[l] & 15) + ((qh[l] & u1) ? 16 : 0)) - m1;
                for (l = 0; l < 32; ++l) y[l + 32] = d2 * (float)((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            } else {
                for (l = 0; l < 32; ++l) y[l] = d1 * (float)(q[l] & 15) - m1;
                for (l = 0; l < 32; ++l) y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
            }
            y += 64;
        }
        break;
    }
    case ACEM_DT_Q6_K: { /* ql[128] qh[64] scales[16] d */
        const unsigned char *ql = b, *qh = b + 128;
        const signed char *sc = ACEM__CAST(const signed char *, (const void *)(b + 192));
        float d = acem__h(b + 208);
        for (n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
            for (j = 0; j < 2; ++j) { /* halves of 16 share their scales: (d sc) q as ggml rounds it */
                float s1 = d * (float)sc[j], s2 = d * (float)sc[j + 2], s3 = d * (float)sc[j + 4], s4 = d * (float)sc[j + 6];
                for (l = 16 * j; l < 16 * j + 16; ++l) {
                    int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32, q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32, q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = s1 * (float)q1;
                    y[l + 32] = s2 * (float)q2;
                    y[l + 64] = s3 * (float)q3;
                    y[l + 96] = s4 * (float)q4;
                }
            }
        break;
    }
    case ACEM_DT_IQ4_XS: { /* d, scales_h (u16), scales_l[4], qs[128]: 8 sub-blocks of IQ4_NL levels */
        float d = acem__h(b);
        unsigned sh = (unsigned)acem__le(b + 2, 2);
        const unsigned char *q = b + 8;
        for (j = 0; j < 8; ++j, q += 16, y += 32) {
            int ls = ((b[4 + j / 2] >> (4 * (j % 2))) & 15) | (int)(((sh >> (2 * j)) & 3) << 4);
            float dl = d * (float)(ls - 32);
            for (l = 0; l < 16; ++l) {
                y[l] = dl * (float)acem__iq4nl[q[l] & 15];
                y[l + 16] = dl * (float)acem__iq4nl[q[l] >> 4];
            }
        }
        break;
    }
    case ACEM_DT_TQ2_0: { /* qs[64] d: 2-bit ternary codes q - 1 */
        float d = acem__h(b + 64);
        for (j = 0; j < 64; j += 32)
            for (l = 0; l < 4; ++l)
                for (n = 0; n < 32; ++n) *y++ = (float)(((b[j + n] >> (2 * l)) & 3) - 1) * d;
        break;
    }
    default: break;
    }
}
/* ggml's reference dequantization of one block of 32 (dequantize_row_*) */
static void acem__dequant_block(acem_dtype dt, const unsigned char *ACEM__RESTRICT b, float *ACEM__RESTRICT y) {
    float d = acem__h(b), m = 0;
    int j;
    switch (dt) {
    case ACEM_DT_IQ4_NL: /* d, qs[16]: 4-bit indices into non-linear levels */
        for (j = 0; j < 16; ++j) {
            y[j] = d * (float)acem__iq4nl[b[2 + j] & 15];
            y[j + 16] = d * (float)acem__iq4nl[b[2 + j] >> 4];
        }
        break;
    case ACEM_DT_MXFP4: { /* e (E8M0), qs[16]: FP4 E2M1 values, doubled, times 2^(e - 128) */
        static const signed char kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
        float s = b[0] < 2 ? acem__u2f((uint32_t)0x00200000u << b[0]) : acem__u2f((uint32_t)(b[0] - 1) << 23);
        for (j = 0; j < 16; ++j) {
            y[j] = (float)kv[b[1 + j] & 15] * s;
            y[j + 16] = (float)kv[b[1 + j] >> 4] * s;
        }
        break;
    }
    case ACEM_DT_Q8_0:
        for (j = 0; j < 32; ++j) y[j] = (float)(signed char)b[2 + j] * d;
        break;
    case ACEM_DT_Q4_0:
        for (j = 0; j < 16; ++j) {
            y[j] = (float)((b[2 + j] & 15) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        break;
    case ACEM_DT_Q4_1:
        m = acem__h(b + 2);
        for (j = 0; j < 16; ++j) {
            y[j] = (float)(b[4 + j] & 15) * d + m;
            y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
        }
        break;
    case ACEM_DT_Q5_0:
    case ACEM_DT_Q5_1: {
        int q1 = dt == ACEM_DT_Q5_1, off = q1 ? 8 : 6, sub = q1 ? 0 : 16;
        uint32_t qh = (uint32_t)acem__le(b + off - 4, 4);
        if (q1) m = acem__h(b + 2);
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
        { /* the fifth bits by lane masks, then the same int -> float, product (and sum) per value:
             1.1 -> 0.5 ns a value here */
            const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128), h16 = _mm256_set1_epi32(16);
            const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
            __m128i qs = _mm_loadu_si128(ACEM__CAST(const __m128i *, (const void *)(b + off))), nib[2];
            int k;
            nib[0] = _mm_and_si128(qs, _mm_set1_epi8(15));
            nib[1] = _mm_and_si128(_mm_srli_epi16(qs, 4), _mm_set1_epi8(15));
            for (k = 0; k < 4; ++k) { /* values 8k .. 8k + 7 */
                __m256i q = _mm256_cvtepu8_epi32(k & 1 ? _mm_srli_si128(nib[k >> 1], 8) : nib[k >> 1]);
                __m256i hb = _mm256_and_si256(_mm256_set1_epi32((int)(qh >> (8 * k))), bit);
                __m256 y8;
                q = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi32(hb, bit), h16));
                y8 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(sub))), dv);
                _mm256_storeu_ps(y + 8 * k, q1 ? _mm256_add_ps(y8, mv) : y8);
            }
            break;
        }
#endif
        for (j = 0; j < 16; ++j) {
            int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
            y[j] = (float)(((b[off + j] & 15) | h0) - sub) * d;
            y[j + 16] = (float)(((b[off + j] >> 4) | h1) - sub) * d;
            if (q1) { y[j] += m; y[j + 16] += m; }
        }
        break;
    }
    default: acem__dequant_kblock(dt, b, y); break;
    }
}
ACEMDEF acem_result acem_st_read_f32(const acem_st_file *f, const acem_st_tensor *t, float *dst, acem_error *err) {
    size_t n = (size_t)t->numel, i;
    acem_result r;
    const char *path = acem__path(f->io.path);
    if ((uint64_t)n != t->numel || n > (size_t)-1 / 8)
        return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "%s: tensor '%s': too large for this build's address space", path, t->name);
    switch (t->dtype) {
    case ACEM_DT_F32: return acem_st_read_raw(f, t, dst, err);
    case ACEM_DT_F16:
    case ACEM_DT_BF16: {
        const uint16_t *h = ACEM__CAST(const uint16_t *, (void *)dst);
        if ((r = acem_st_read_raw(f, t, dst, err)) != ACEM_OK) return r;
        acem__widen16(h, dst, n, t->dtype == ACEM_DT_BF16); /* in place, last to first */
        return ACEM_OK;
    }
    case ACEM_DT_F8_E4M3:
    case ACEM_DT_F8_E5M2: {
        const unsigned char *b = ACEM__CAST(const unsigned char *, (void *)dst);
        if ((r = acem_st_read_raw(f, t, dst, err)) != ACEM_OK) return r;
        if (t->dtype == ACEM_DT_F8_E5M2) for (i = n; i-- > 0;) dst[i] = acem_f16_to_f32((uint16_t)(b[i] << 8));
        else for (i = n; i-- > 0;) dst[i] = acem__f8e4m3_to_f32(b[i]);
        return ACEM_OK;
    }
    case ACEM_DT_F64: {
        double chunk[256];
        size_t done = 0;
        while (done < n) {
            size_t m = acem__min(256, n - done);
            if (f->io.read(f->io.user, f->data_start + t->begin + done * 8, chunk, m * 8))
                return acem__fail(err, ACEM_ERR_IO, "%s: tensor '%s': read error", path, t->name);
            for (i = 0; i < m; ++i) dst[done + i] = (float)chunk[i];
            done += m;
        }
        return ACEM_OK;
    }
    default:
        if (acem__dequantizes(t->dtype)) { /* in place, last block first: block i's floats start at or after its bytes */
            size_t blk = acem__gguf_blk[t->dtype - ACEM_DT_GGUF_FIRST][1], size = acem__gguf_blk[t->dtype - ACEM_DT_GGUF_FIRST][2];
            size_t nb = n / blk;
            const unsigned char *raw = ACEM__CAST(const unsigned char *, (void *)dst);
            if ((r = acem_st_read_raw(f, t, dst, err)) != ACEM_OK) return r;
            while (nb-- > 0) {
                unsigned char b[292];
                ACEM_MEMCPY(b, raw + nb * size, size);
                acem__dequant_block(t->dtype, b, dst + nb * blk);
            }
            return ACEM_OK;
        }
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: tensor '%s': dtype %s cannot be read as f32", path, t->name,
                          acem_dtype_name(t->dtype));
    }
}

/* ---- writing ---------------------------------------------------------------- */
typedef struct acem__emit {
    const acem_write_io *io; /* NULL: count only */
    uint64_t count;
    char buf[1024];
    size_t n;
    int failed;
} acem__emit;
static void acem__eflush(acem__emit *e) {
    if (e->io && e->n && !e->failed && e->io->write(e->io->user, e->buf, e->n)) e->failed = 1;
    e->n = 0;
}
static void acem__ec(acem__emit *e, char c) {
    e->count++;
    if (!e->io) return;
    if (e->n == sizeof e->buf) acem__eflush(e);
    e->buf[e->n++] = c;
}
static void acem__es(acem__emit *e, const char *s) { while (*s) acem__ec(e, *s++); }
static void acem__eu64(acem__emit *e, uint64_t v) {
    char t[24];
    int i = 0;
    do { t[i++] = (char)('0' + (int)(v % 10)); v /= 10; } while (v);
    while (i) acem__ec(e, t[--i]);
}
static void acem__ejstr(acem__emit *e, const char *s) {
    static const char hx[] = "0123456789abcdef";
    acem__ec(e, '"');
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { acem__ec(e, '\\'); acem__ec(e, (char)c); }
        else if (c < 0x20) { acem__es(e, "\\u00"); acem__ec(e, hx[c >> 4]); acem__ec(e, hx[c & 15]); }
        else acem__ec(e, (char)c);
    }
    acem__ec(e, '"');
}
static void acem__st_emit_header(acem__emit *e, const acem_st_tensor *t, size_t n, const char *const *meta,
                                 size_t n_meta, const size_t *order) {
    size_t k, d;
    acem__es(e, "{\"__metadata__\":{\"format\":\"pt\"");
    for (k = 0; k < n_meta; ++k) {
        acem__ec(e, ',');
        acem__ejstr(e, meta[2 * k]);
        acem__ec(e, ':');
        acem__ejstr(e, meta[2 * k + 1]);
    }
    acem__ec(e, '}');
    for (k = 0; k < n; ++k) {
        const acem_st_tensor *x = &t[order[k]];
        acem__ec(e, ',');
        acem__ejstr(e, x->name);
        acem__es(e, ":{\"dtype\":\"");
        acem__es(e, acem_dtype_name(x->dtype));
        acem__es(e, "\",\"shape\":[");
        for (d = 0; d < x->ndim; ++d) {
            if (d) acem__ec(e, ',');
            acem__eu64(e, x->shape[d]);
        }
        acem__es(e, "],\"data_offsets\":[");
        acem__eu64(e, x->begin);
        acem__ec(e, ',');
        acem__eu64(e, x->end);
        acem__es(e, "]}");
    }
    acem__ec(e, '}');
}
static unsigned acem__align_of(acem_dtype d) {
    unsigned b = acem_dtype_bits(d) / 8;
    return b ? b : 1;
}
/* by name (by_align 0) or by alignment descending then name (by_align 1) */
static int acem__cmp_idx(const acem_st_tensor *t, size_t x, size_t y, int by_align) {
    if (by_align) {
        unsigned ax = acem__align_of(t[x].dtype), ay = acem__align_of(t[y].dtype);
        if (ax != ay) return ax > ay ? -1 : 1;
    }
    return acem__strcmp(t[x].name, t[y].name);
}
static void acem__sift_idx(size_t *v, size_t r, size_t n, const acem_st_tensor *t, int by_align) {
    for (;;) {
        size_t c = 2 * r + 1, tmp;
        if (c >= n) return;
        if (c + 1 < n && acem__cmp_idx(t, v[c], v[c + 1], by_align) < 0) ++c;
        if (acem__cmp_idx(t, v[r], v[c], by_align) >= 0) return;
        tmp = v[r]; v[r] = v[c]; v[c] = tmp;
        r = c;
    }
}
static void acem__heapsort_idx(size_t *v, size_t n, const acem_st_tensor *t, int by_align) {
    size_t i, tmp;
    for (i = n / 2; i-- > 0;) acem__sift_idx(v, i, n, t, by_align);
    for (i = n; i-- > 1;) {
        tmp = v[0]; v[0] = v[i]; v[i] = tmp;
        acem__sift_idx(v, 0, i, t, by_align);
    }
}
ACEMDEF acem_result acem_st_write_header(const acem_write_io *io, acem_st_tensor *t, size_t n,
                                         const char *const *meta, size_t n_meta, size_t *order,
                                         uint64_t *header_bytes, acem_error *err) {
    size_t k, i, d;
    uint64_t off = 0, hlen, pad;
    acem__emit e;
    unsigned char len8[8];
    const char *path = io ? acem__path(io->path) : "(output)";
    if (!io || !io->write || (n && (!t || !order)) || (n_meta && !meta))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: acem_st_write_header: NULL argument", path);
    for (k = 0; k < n_meta; ++k) {
        if (!meta[2 * k] || !meta[2 * k + 1])
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: metadata pair %zu is NULL", path, k);
        if (acem__streq(meta[2 * k], "format"))
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: metadata key 'format' is reserved", path);
        if (!acem__utf8_valid(ACEM__CAST(const unsigned char *, (const void *)meta[2 * k]), acem__strlen(meta[2 * k])) ||
            !acem__utf8_valid(ACEM__CAST(const unsigned char *, (const void *)meta[2 * k + 1]), acem__strlen(meta[2 * k + 1])))
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: metadata pair %zu is not valid UTF-8", path, k);
        for (i = 0; i < k; ++i) /* writers get few pairs: a plain check */
            if (acem__streq(meta[2 * i], meta[2 * k]))
                return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: duplicate metadata key '%s'", path, meta[2 * k]);
    }
    for (k = 0; k < n; ++k) {
        uint64_t numel = 1, bits;
        if (!t[k].name || !t[k].name[0] || acem__streq(t[k].name, "__metadata__") ||
            !acem__utf8_valid(ACEM__CAST(const unsigned char *, (const void *)t[k].name), acem__strlen(t[k].name)))
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor %zu has no valid name (empty, reserved or not UTF-8)", path, k);
        if (t[k].dtype <= ACEM_DT_UNKNOWN || t[k].dtype >= ACEM_DT_COUNT || t[k].ndim > ACEM_ST_MAX_DIMS)
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor '%s': bad dtype or rank", path, t[k].name);
        for (d = 0; d < t[k].ndim; ++d) {
            if (t[k].shape[d] && numel > ~(uint64_t)0 / t[k].shape[d])
                return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "%s: tensor '%s': shape overflows", path, t[k].name);
            numel *= t[k].shape[d];
        }
        if (numel > ~(uint64_t)0 / 64u) return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "%s: tensor '%s': too large", path, t[k].name);
        bits = numel * acem_dtype_bits(t[k].dtype);
        if (bits % 8) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor '%s': not a whole number of bytes", path, t[k].name);
        t[k].numel = numel;
        t[k].end = bits / 8; /* size for now */
        t[k].pad = 0;
        order[k] = k;
    }
    /* names must be unique: sort the indices by name and compare neighbours;
       then the canonical order: alignment descending, then name */
    acem__heapsort_idx(order, n, t, 0);
    for (k = 1; k < n; ++k)
        if (acem__streq(t[order[k - 1]].name, t[order[k]].name))
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: duplicate tensor '%s'", path, t[order[k]].name);
    acem__heapsort_idx(order, n, t, 1);
    for (k = 0; k < n; ++k) {
        acem_st_tensor *x = &t[order[k]];
        uint64_t sz = x->end;
        x->begin = off;
        x->end = off + sz;
        off += sz;
    }
    ACEM_MEMSET(&e, 0, sizeof e);
    acem__st_emit_header(&e, t, n, meta, n_meta, order);
    hlen = e.count;
    pad = (8 - (8 + hlen) % 8) % 8;
    hlen += pad;
    for (k = 0; k < 8; ++k) len8[k] = (unsigned char)(hlen >> (8 * k));
    if (io->write(io->user, len8, 8)) return acem__fail(err, ACEM_ERR_IO, "%s: write error", path);
    ACEM_MEMSET(&e, 0, sizeof e);
    e.io = io;
    acem__st_emit_header(&e, t, n, meta, n_meta, order);
    for (k = 0; k < pad; ++k) acem__ec(&e, ' ');
    acem__eflush(&e);
    if (e.failed) return acem__fail(err, ACEM_ERR_IO, "%s: write error", path);
    if (header_bytes) *header_bytes = 8 + hlen;
    return ACEM_OK;
}
/* the zero bytes after a tensor (GGUF's alignment) */
static acem_result acem__write_pad(const acem_write_io *io, const acem_st_tensor *t, acem_error *err) {
    static const unsigned char zeros[64] = {0};
    uint64_t left = t->pad;
    while (left) {
        size_t m = (size_t)acem__minu64(left, sizeof zeros);
        if (io->write(io->user, zeros, m))
            return acem__fail(err, ACEM_ERR_IO, "%s: tensor '%s': write error", acem__path(io->path), t->name);
        left -= m;
    }
    return ACEM_OK;
}
ACEMDEF acem_result acem_st_write_raw(const acem_write_io *io, const acem_st_tensor *t, const void *src, acem_error *err) {
    size_t nb = (size_t)(t->end - t->begin);
    if (nb && io->write(io->user, src, nb))
        return acem__fail(err, ACEM_ERR_IO, "%s: tensor '%s': write error", acem__path(io->path), t->name);
    return acem__write_pad(io, t, err);
}
static void acem__put_h(unsigned char *b, float v) {
#if (defined(ACEM__AVX2) || defined(ACEM__AVX512)) && defined(__F16C__)
    /* v finite here: the same bits, rounded to nearest even (not _cvtss_sh: a C99 compound literal in clang's) */
    uint16_t h = (uint16_t)_mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(v), 0));
#else
    uint16_t h = acem_f32_to_f16(v);
#endif
    b[0] = (unsigned char)(h & 255u);
    b[1] = (unsigned char)(h >> 8);
}
/* ggml's reference quantizers (quantize_row_*_ref) of one block of 32: the
   f32 scale d (from the largest magnitude, or max - min) is stored as f16 and
   its f32 reciprocal scales the values. 0 when not all 32 values are finite. */
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
static int acem__finite4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) { /* v - v: 0 unless Inf or NaN */
    __m256 bad = _mm256_or_ps(_mm256_or_ps(_mm256_sub_ps(v0, v0), _mm256_sub_ps(v1, v1)),
                              _mm256_or_ps(_mm256_sub_ps(v2, v2), _mm256_sub_ps(v3, v3)));
    return !_mm256_movemask_ps(_mm256_cmp_ps(bad, _mm256_setzero_ps(), _CMP_NEQ_UQ));
}
static float acem__hmax8(__m256 v) { /* exact in any order */
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}
static float acem__hmin8(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
}
/* trunc(w) + (frac >= 0.5) - (frac <= -0.5) for w = v * id, as int32 */
static __m256i acem__q8_round(__m256 v, __m256 idv) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f), mhalf = _mm256_set1_ps(-0.5f);
    __m256 w = _mm256_mul_ps(v, idv), r = _mm256_round_ps(w, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(w, r);
    r = _mm256_add_ps(r, _mm256_and_ps(_mm256_cmp_ps(f, half, _CMP_GE_OQ), one));
    r = _mm256_sub_ps(r, _mm256_and_ps(_mm256_cmp_ps(f, mhalf, _CMP_LE_OQ), one));
    return _mm256_cvttps_epi32(r);
}
/* Q8_0 in vector form, the scalar case's bits: max |x| (a maximum is exact in
   any order), q = trunc(v) + (frac >= 0.5) - (frac <= -0.5), packed to bytes.
   0: a value is not finite. 6.8 -> 0.7 ns a value here (0.5 with the F16C
   scale store and the shuffle maximum). */
static int acem__quant_q8_0(const float *x, unsigned char *b) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 amax, idv;
    __m256i p;
    float d, id;
    if (!acem__finite4(v0, v1, v2, v3)) return 0;
    amax = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sgn, v0), _mm256_andnot_ps(sgn, v1)),
                         _mm256_max_ps(_mm256_andnot_ps(sgn, v2), _mm256_andnot_ps(sgn, v3)));
    d = acem__hmax8(amax) / 127.0f;
    id = d != 0 ? 1.0f / d : 0.0f;
    acem__put_h(b, d);
    idv = _mm256_set1_ps(id);
    p = _mm256_packs_epi16(_mm256_packs_epi32(acem__q8_round(v0, idv), acem__q8_round(v1, idv)),
                           _mm256_packs_epi32(acem__q8_round(v2, idv), acem__q8_round(v3, idv)));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(ACEM__CAST(__m256i *, (void *)(b + 2)), p);
    return 1;
}
/* the first of the 32 lanes of a0..a3 equal to v (one must be) */
static int acem__first_eq(__m256 a0, __m256 a1, __m256 a2, __m256 a3, float v) {
    __m256 w = _mm256_set1_ps(v);
    uint32_t hit = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a0, w, _CMP_EQ_OQ)) |
                   (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a1, w, _CMP_EQ_OQ)) << 8 |
                   (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a2, w, _CMP_EQ_OQ)) << 16 |
                   (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a3, w, _CMP_EQ_OQ)) << 24;
    int j = 0;
#if defined(__GNUC__) || defined(__clang__)
    j = __builtin_ctz(hit);
#else
    while (!(hit >> j & 1u)) ++j;
#endif
    return j;
}
/* Q4_0, Q5_0 (d = the signed largest / -8, -16; q = trunc(x / d + 8.5, 16.5))
   and Q4_1, Q5_1 (d = (max - min) / 15, 31; q = trunc((x - min) / d + 0.5))
   in vector form, the scalar case's bits: a largest magnitude, minimum or
   maximum is exact in any order, and the scalar scan's pick among equals (the
   first: the signed value of the largest magnitude, the sign of a zero
   extreme) comes from the first matching index; every q is in [0, 32) before
   the clamp (|x| <= |mx|, x >= min), so the scalar's char casts change
   nothing. 0: a value is not finite. 1.4-3.1 -> 0.41-0.46 ns a value here. */
static int acem__quant_q45(acem_dtype dt, const float *x, unsigned char *b) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    int five = dt == ACEM_DT_Q5_0 || dt == ACEM_DT_Q5_1, minf = dt == ACEM_DT_Q4_1 || dt == ACEM_DT_Q5_1;
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 idv, offv, mnv = _mm256_setzero_ps();
    __m256i q0, q1, q2, q3, p, top = _mm256_set1_epi32(five ? 31 : 15);
    __m128i qs;
    float d, id, mn = 0, off;
    unsigned char *qh = b + (minf ? 4 : 2);
    uint32_t hb;
    if (!acem__finite4(v0, v1, v2, v3)) return 0;
    if (minf) {
        float hi = acem__hmax8(_mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3)));
        mn = acem__hmin8(_mm256_min_ps(_mm256_min_ps(v0, v1), _mm256_min_ps(v2, v3)));
        /* a zero extreme: the scalar scan keeps the first zero's sign */
        if (mn == 0.0f) mn = x[acem__first_eq(v0, v1, v2, v3, 0.0f)];
        if (hi == 0.0f) hi = x[acem__first_eq(v0, v1, v2, v3, 0.0f)];
        d = (hi - mn) / (five ? 31.0f : 15.0f);
        mnv = _mm256_set1_ps(mn);
        off = 0.5f;
    } else {
        __m256 a0 = _mm256_andnot_ps(sgn, v0), a1 = _mm256_andnot_ps(sgn, v1), a2 = _mm256_andnot_ps(sgn, v2),
               a3 = _mm256_andnot_ps(sgn, v3);
        float am = acem__hmax8(_mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3))), mx = 0.0f;
        if (am > 0.0f) mx = x[acem__first_eq(a0, a1, a2, a3, am)]; /* the first of the largest magnitude */
        d = mx / (five ? -16.0f : -8.0f);
        off = five ? 16.5f : 8.5f;
    }
    id = d != 0 ? 1.0f / d : 0.0f;
    acem__put_h(b, d);
    if (minf) acem__put_h(b + 2, mn);
    idv = _mm256_set1_ps(id);
    offv = _mm256_set1_ps(off);
    if (minf) {
        v0 = _mm256_sub_ps(v0, mnv); v1 = _mm256_sub_ps(v1, mnv);
        v2 = _mm256_sub_ps(v2, mnv); v3 = _mm256_sub_ps(v3, mnv);
    }
    q0 = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v0, idv), offv));
    q1 = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v1, idv), offv));
    q2 = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v2, idv), offv));
    q3 = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v3, idv), offv));
    if (dt != ACEM_DT_Q5_1) { /* Q5_1 has no clamp */
        q0 = _mm256_min_epi32(q0, top); q1 = _mm256_min_epi32(q1, top);
        q2 = _mm256_min_epi32(q2, top); q3 = _mm256_min_epi32(q3, top);
    }
    p = _mm256_packus_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)); /* bytes q[0..31] */
    hb = (uint32_t)_mm256_movemask_epi8(_mm256_slli_epi16(p, 3)); /* bit 4 of each q */
    p = _mm256_and_si256(p, _mm256_set1_epi8(15));
    qs = _mm_or_si128(_mm256_castsi256_si128(p), _mm_slli_epi16(_mm256_extracti128_si256(p, 1), 4));
    _mm_storeu_si128(ACEM__CAST(__m128i *, (void *)(qh + (five ? 4 : 0))), qs);
    if (five) {
        qh[0] = (unsigned char)hb; qh[1] = (unsigned char)(hb >> 8);
        qh[2] = (unsigned char)(hb >> 16); qh[3] = (unsigned char)(hb >> 24);
    }
    return 1;
}
#endif
static int acem__quant_block(acem_dtype dt, const float *x, unsigned char *b) {
    float amax = 0, mx = 0, mn = x[0], hi = x[0], d, id;
    uint32_t qh = 0;
    int j;
#if defined(ACEM__AVX2) || defined(ACEM__AVX512)
    if (dt == ACEM_DT_Q8_0) return acem__quant_q8_0(x, b);
    if (dt == ACEM_DT_Q4_0 || dt == ACEM_DT_Q4_1 || dt == ACEM_DT_Q5_0 || dt == ACEM_DT_Q5_1) return acem__quant_q45(dt, x, b);
#endif
    for (j = 0; j < 32; ++j) {
        float a = x[j] < 0 ? -x[j] : x[j];
        if (!acem__finite(x[j])) return 0;
        if (amax < a) { amax = a; mx = x[j]; }
        if (x[j] < mn) mn = x[j];
        if (x[j] > hi) hi = x[j];
    }
    switch (dt) {
    case ACEM_DT_Q8_0: /* d = max|x| / 127, q = round(x / d), halves away from zero */
        d = amax / 127.0f;
        id = d != 0 ? 1.0f / d : 0.0f;
        acem__put_h(b, d);
        for (j = 0; j < 32; ++j) {
            float v = x[j] * id, r = (float)(int)v; /* |v| <= 127 (plus rounding) */
            if (v - r >= 0.5f) r += 1.0f;
            else if (r - v >= 0.5f) r -= 1.0f;
            b[2 + j] = (unsigned char)(signed char)(int)r;
        }
        break;
    case ACEM_DT_Q4_0:
    case ACEM_DT_Q5_0: { /* d = the signed largest / -8 (-16), q = x / d + 8 (16), truncated */
        int five = dt == ACEM_DT_Q5_0, top = five ? 31 : 15;
        float off = five ? 16.5f : 8.5f;
        unsigned char *qs = b + (five ? 6 : 2);
        d = mx / (five ? -16.0f : -8.0f);
        id = d != 0 ? 1.0f / d : 0.0f;
        acem__put_h(b, d);
        for (j = 0; j < 16; ++j) {
            int q0 = (int)(signed char)(int)(x[j] * id + off), q1 = (int)(signed char)(int)(x[16 + j] * id + off);
            if (q0 > top) q0 = top;
            if (q1 > top) q1 = top;
            qs[j] = (unsigned char)((q0 & 15) | ((q1 & 15) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        if (five) for (j = 0; j < 4; ++j) b[2 + j] = (unsigned char)(qh >> (8 * j));
        break;
    }
    case ACEM_DT_Q4_1:
    case ACEM_DT_Q5_1: { /* d = (max - min) / 15 (31), m = min, q = (x - min) / d, rounded */
        int five = dt == ACEM_DT_Q5_1;
        unsigned char *qs = b + (five ? 8 : 4);
        d = (hi - mn) / (five ? 31.0f : 15.0f);
        id = d != 0 ? 1.0f / d : 0.0f;
        acem__put_h(b, d);
        acem__put_h(b + 2, mn);
        for (j = 0; j < 16; ++j) {
            int q0, q1;
            if (five) {
                q0 = (int)(unsigned char)(int)((x[j] - mn) * id + 0.5f);
                q1 = (int)(unsigned char)(int)((x[16 + j] - mn) * id + 0.5f);
            } else {
                q0 = (int)(signed char)(int)((x[j] - mn) * id + 0.5f);
                q1 = (int)(signed char)(int)((x[16 + j] - mn) * id + 0.5f);
                if (q0 > 15) q0 = 15;
                if (q1 > 15) q1 = 15;
            }
            qs[j] = (unsigned char)((q0 & 15) | ((q1 & 15) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        if (five) for (j = 0; j < 4; ++j) b[4 + j] = (unsigned char)(qh >> (8 * j));
        break;
    }
    default: return 0;
    }
    return 1;
}
static int acem__quantizes(acem_dtype d) {
    return d == ACEM_DT_Q8_0 || d == ACEM_DT_Q4_0 || d == ACEM_DT_Q4_1 || d == ACEM_DT_Q5_0 || d == ACEM_DT_Q5_1;
}
ACEMDEF acem_result acem_st_write_f32(const acem_write_io *io, const acem_st_tensor *t, const float *src, acem_error *err) {
    size_t n = (size_t)t->numel, done = 0, i;
    const char *path = acem__path(io->path);
    union { uint16_t h[1024]; double d[512]; unsigned char q[32 * 34]; } buf;
    if (t->dtype == ACEM_DT_F32) return acem_st_write_raw(io, t, src, err);
    if (t->dtype != ACEM_DT_F16 && t->dtype != ACEM_DT_BF16 && t->dtype != ACEM_DT_F64 && !acem__quantizes(t->dtype))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor '%s': cannot write f32 data as %s", path, t->name,
                          acem_dtype_name(t->dtype));
    if (acem__quantizes(t->dtype) && n % 32)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor '%s': %zu values are not whole %s blocks of 32", path,
                          t->name, n, acem_dtype_name(t->dtype));
    while (done < n) {
        size_t m = acem__min(t->dtype == ACEM_DT_F64 ? 512 : 1024, n - done), nb;
        if (t->dtype == ACEM_DT_F16) { acem_f32_to_f16_array(src + done, buf.h, m); nb = m * 2; }
        else if (t->dtype == ACEM_DT_BF16) { acem_f32_to_bf16_array(src + done, buf.h, m); nb = m * 2; }
        else if (acem__quantizes(t->dtype)) {
            size_t bs = acem__gguf_blk[t->dtype - ACEM_DT_GGUF_FIRST][2];
            for (i = 0; i < m / 32; ++i)
                if (!acem__quant_block(t->dtype, src + done + 32 * i, buf.q + bs * i))
                    return acem__fail(err, ACEM_ERR_NONFINITE, "%s: tensor '%s': a value near element %zu is not finite; %s "
                                      "cannot hold it", path, t->name, done + 32 * i, acem_dtype_name(t->dtype));
            nb = m / 32 * bs;
        } else { for (i = 0; i < m; ++i) buf.d[i] = src[done + i]; nb = m * 8; }
        if (io->write(io->user, &buf, nb)) return acem__fail(err, ACEM_ERR_IO, "%s: tensor '%s': write error", path, t->name);
        done += m;
    }
    return acem__write_pad(io, t, err);
}

/* ---- GGUF writing --------------------------------------------------------------- */
static void acem__eraw(acem__emit *e, const void *p, size_t n) {
    const char *c = ACEM__CAST(const char *, p);
    while (n--) acem__ec(e, *c++);
}
static void acem__ele(acem__emit *e, uint64_t v, int n) {
    while (n-- > 0) { acem__ec(e, (char)(unsigned char)(v & 255u)); v >>= 8; }
}
static void acem__egstr(acem__emit *e, const char *s) {
    size_t n = acem__strlen(s);
    acem__ele(e, n, 8);
    acem__eraw(e, s, n);
}
/* src's pair kv is copied unless meta gives its key anew (or drops it) or it
   is general.alignment (the writer's own) */
static int acem__kv_copied(const acem_gguf_kv *kv, const char *const *meta, size_t n_meta) {
    size_t k;
    if (acem__streq(kv->key, "general.alignment")) return 0;
    for (k = 0; k < n_meta; ++k)
        if (acem__streq(meta[2 * k], kv->key)) return 0;
    return 1;
}
ACEMDEF acem_result acem_gguf_write_header(const acem_write_io *io, const acem_st_file *src, acem_st_tensor *t, size_t n,
                                           const char *const *meta, size_t n_meta, uint32_t alignment,
                                           uint64_t *header_bytes, acem_error *err) {
    size_t k, i, d, n_kv = 0;
    uint64_t off = 0, align;
    acem__emit e;
    const char *path = io ? acem__path(io->path) : "(output)";
    if (!io || !io->write || (n && !t) || (n_meta && !meta))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: acem_gguf_write_header: NULL argument", path);
    if (src && src->format != ACEM_FORMAT_GGUF)
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: the key/value source %s is not a GGUF file", path,
                          acem__path(src->io.path));
    align = alignment ? alignment : src ? src->alignment : 32;
    if (!align || (align & (align - 1)))
        return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: alignment %zu is not a power of two", path, (size_t)align);
    for (k = 0; k < n_meta; ++k) {
        if (!meta[2 * k])
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: metadata key %zu is NULL", path, k);
        n_kv += meta[2 * k + 1] != NULL;
        if (acem__streq(meta[2 * k], "general.alignment"))
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: general.alignment is set by the alignment argument", path);
        for (i = 0; i < k; ++i)
            if (acem__streq(meta[2 * i], meta[2 * k]))
                return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: duplicate metadata key '%s'", path, meta[2 * k]);
    }
    for (k = 0; k < n; ++k) {
        uint64_t numel = 1, bytes, blk;
        if (!t[k].name || acem__strlen(t[k].name) >= ACEM__GGUF_MAX_NAME)
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor %zu: GGUF names are 1 to 63 bytes: '%s'", path, k,
                              acem__nm(t[k].name));
        if (acem_gguf_type_id(t[k].dtype) < 0 || t[k].ndim > 4)
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor '%s': GGUF cannot hold dtype %s with %zu dimensions",
                              path, t[k].name, acem_dtype_name(t[k].dtype), t[k].ndim);
        for (d = t[k].ndim; d-- > 0;) { /* in ggml's order, as the reader checks it */
            if (t[k].shape[d] && numel > (uint64_t)0x7fffffffffffffffull / t[k].shape[d])
                return acem__fail(err, ACEM_ERR_SIZE_OVERFLOW, "%s: tensor '%s': shape overflows", path, t[k].name);
            numel *= t[k].shape[d];
        }
        if (!acem_dtype_bytes(t[k].dtype, numel, &bytes, &blk) || (t[k].ndim && t[k].shape[t[k].ndim - 1] % blk) ||
            (!t[k].ndim && blk > 1))
            return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: tensor '%s': the last dimension is not a whole number of "
                              "%s blocks", path, t[k].name, acem_dtype_name(t[k].dtype));
        for (i = 0; i < k; ++i)
            if (acem__streq(t[i].name, t[k].name))
                return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: duplicate tensor '%s'", path, t[k].name);
        t[k].numel = numel;
        t[k].begin = off;
        t[k].end = off + bytes;
        t[k].pad = (align - bytes % align) % align;
        off = t[k].end + t[k].pad;
    }
    if (src)
        for (k = 0; k < src->n_kv; ++k)
            n_kv += (size_t)acem__kv_copied(&src->kv[k], meta, n_meta);
    n_kv += align != 32;
    ACEM_MEMSET(&e, 0, sizeof e);
    e.io = io;
    acem__eraw(&e, "GGUF", 4);
    acem__ele(&e, 3, 4);
    acem__ele(&e, n, 8);
    acem__ele(&e, n_kv, 8);
    if (src)
        for (k = 0; k < src->n_kv; ++k) {
            uint64_t at = src->kv[k].begin;
            if (!acem__kv_copied(&src->kv[k], meta, n_meta)) continue;
            while (at < src->kv[k].end) { /* verbatim */
                unsigned char chunk[1024];
                size_t m = (size_t)acem__minu64(sizeof chunk, src->kv[k].end - at);
                if (src->io.read(src->io.user, at, chunk, m))
                    return acem__fail(err, ACEM_ERR_IO, "%s: cannot read key '%s' back", acem__path(src->io.path), src->kv[k].key);
                acem__eraw(&e, chunk, m);
                at += m;
            }
        }
    for (k = 0; k < n_meta; ++k) {
        if (!meta[2 * k + 1]) continue; /* a key dropped from src */
        acem__egstr(&e, meta[2 * k]);
        acem__ele(&e, 8, 4);
        acem__egstr(&e, meta[2 * k + 1]);
    }
    if (align != 32) {
        acem__egstr(&e, "general.alignment");
        acem__ele(&e, 4, 4);
        acem__ele(&e, align, 4);
    }
    for (k = 0; k < n; ++k) {
        acem__egstr(&e, t[k].name);
        acem__ele(&e, t[k].ndim, 4);
        for (d = t[k].ndim; d-- > 0;) acem__ele(&e, t[k].shape[d], 8);
        acem__ele(&e, (uint64_t)acem_gguf_type_id(t[k].dtype), 4);
        acem__ele(&e, t[k].begin, 8);
    }
    while (e.count % align) acem__ec(&e, 0);
    acem__eflush(&e);
    if (e.failed) return acem__fail(err, ACEM_ERR_IO, "%s: write error", path);
    if (header_bytes) *header_bytes = e.count;
    return ACEM_OK;
}

/* ---- sharded index ------------------------------------------------------------ */
ACEMDEF acem_result acem_st_index_parse(char *json, size_t len, const char **names, const char **files, size_t max,
                                        size_t *n, uint64_t *total_size, acem_error *err) {
    acem__json j;
    int more, seen_map = 0;
    if (!json || !n) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "index: NULL argument");
    *n = 0;
    if (total_size) *total_size = 0;
    json[len] = 0;
    if (!acem__utf8_valid(ACEM__CAST(const unsigned char *, (const void *)json), len))
        return acem__fail(err, ACEM_ERR_FORMAT, "index: not valid UTF-8");
    j.p = json; j.i = 0; j.n = len; j.depth = 0; j.what = "index";
    if (!acem__jexpect(&j, '{')) return acem__fail(err, ACEM_ERR_FORMAT, "index: not a JSON object");
    acem__jws(&j);
    if (j.i < j.n && j.p[j.i] == '}') { j.i++; more = 0; } else more = 1;
    while (more == 1) {
        char *key;
        acem__jws(&j);
        if (!(key = acem__jstr(&j)) || !acem__jexpect(&j, ':')) return acem__fail(err, ACEM_ERR_FORMAT, "index: malformed JSON near byte %zu", j.i);
        acem__jws(&j);
        if (acem__streq(key, "weight_map")) {
            int m;
            if (seen_map++) return acem__fail(err, ACEM_ERR_FORMAT, "index: duplicate weight_map");
            if (!acem__jexpect(&j, '{')) return acem__fail(err, ACEM_ERR_FORMAT, "index: weight_map is not an object");
            acem__jws(&j);
            if (j.i < j.n && j.p[j.i] == '}') { j.i++; m = 0; } else m = 1;
            while (m == 1) {
                char *tn, *fn;
                acem__jws(&j);
                if (!(tn = acem__jstr(&j)) || !acem__jexpect(&j, ':') || (acem__jws(&j), !(fn = acem__jstr(&j))))
                    return acem__fail(err, ACEM_ERR_FORMAT, "index: weight_map entries must be \"tensor\": \"file\"");
                if (*n >= max) return acem__fail(err, ACEM_ERR_FORMAT, "index: more than %zu entries", max);
                names[*n] = tn;
                files[*n] = fn;
                (*n)++;
                if ((m = acem__jnext(&j, '}')) < 0) return acem__fail(err, ACEM_ERR_FORMAT, "index: malformed weight_map");
            }
        } else if (acem__streq(key, "metadata")) {
            int m;
            acem__jws(&j);
            if (acem__jlit(&j, "null")) m = 0;
            else {
                if (!acem__jexpect(&j, '{')) return acem__fail(err, ACEM_ERR_FORMAT, "index: metadata is not an object");
                acem__jws(&j);
                if (j.i < j.n && j.p[j.i] == '}') { j.i++; m = 0; } else m = 1;
            }
            while (m == 1) {
                char *mk;
                acem__jws(&j);
                if (!(mk = acem__jstr(&j)) || !acem__jexpect(&j, ':')) return acem__fail(err, ACEM_ERR_FORMAT, "index: malformed metadata");
                acem__jws(&j);
                if (acem__streq(mk, "total_size") && j.i < j.n && j.p[j.i] >= '0' && j.p[j.i] <= '9') {
                    uint64_t v;
                    if (!acem__ju64(&j, &v)) return acem__fail(err, ACEM_ERR_FORMAT, "index: total_size is not an integer");
                    if (total_size) *total_size = v;
                } else if (!acem__jskip(&j))
                    return acem__fail(err, ACEM_ERR_FORMAT, "index: malformed metadata");
                if ((m = acem__jnext(&j, '}')) < 0) return acem__fail(err, ACEM_ERR_FORMAT, "index: malformed metadata");
            }
        } else if (!acem__jskip(&j))
            return acem__fail(err, ACEM_ERR_FORMAT, "index: malformed JSON near byte %zu", j.i);
        if ((more = acem__jnext(&j, '}')) < 0) return acem__fail(err, ACEM_ERR_FORMAT, "index: malformed JSON near byte %zu", j.i);
    }
    acem__jws(&j);
    if (j.i != j.n) return acem__fail(err, ACEM_ERR_FORMAT, "index: unexpected bytes after the JSON object");
    if (!seen_map) return acem__fail(err, ACEM_ERR_FORMAT, "index: no weight_map");
    return ACEM_OK;
}

/* ---- PEFT adapter_config.json ------------------------------------------------ */
static int acem__jnum(acem__json *j, double *v) { /* JSON number -> double */
    size_t s = j->i;
    double x = 0, f = 0.1, sign = 1;
    int e = 0, es = 1;
    if (!acem__jskip(j)) return 0; /* validates the grammar */
    if (j->p[s] == 't' || j->p[s] == 'f' || j->p[s] == 'n' || j->p[s] == '"' || j->p[s] == '[' || j->p[s] == '{') return 0;
    if (j->p[s] == '-') { sign = -1; ++s; }
    while (s < j->i && j->p[s] >= '0' && j->p[s] <= '9') x = x * 10 + (j->p[s++] - '0');
    if (s < j->i && j->p[s] == '.')
        for (++s; s < j->i && j->p[s] >= '0' && j->p[s] <= '9'; ++s, f *= 0.1) x += (j->p[s] - '0') * f;
    if (s < j->i && (j->p[s] == 'e' || j->p[s] == 'E')) {
        ++s;
        if (j->p[s] == '-') { es = -1; ++s; } else if (j->p[s] == '+') ++s;
        while (s < j->i && j->p[s] >= '0' && j->p[s] <= '9' && e < 400) e = e * 10 + (j->p[s++] - '0');
    }
    while (e-- > 0) x = es > 0 ? x * 10 : x / 10;
    *v = sign * x;
    return 1;
}
/* each list entry takes at least 3 bytes of JSON */
ACEMDEF size_t acem_peft_config_bytes(size_t len) { return (len / 3 + 2) * sizeof(acem_peft_pattern); }

static acem_result acem__peft_bool(acem__json *j, int *v, const char *key, const char *path, acem_error *err) {
    acem__jws(j);
    if (acem__jlit(j, "true")) *v = 1;
    else if (acem__jlit(j, "false") || acem__jlit(j, "null")) *v = 0;
    else return acem__fail(err, ACEM_ERR_FORMAT, "%s: '%s' must be true or false", path, key);
    return ACEM_OK;
}
ACEMDEF acem_result acem_peft_config_parse(char *buf, size_t len, acem_peft_config *cfg, void *arena,
                                           size_t arena_bytes, const char *path, acem_error *err) {
    acem__json j;
    int more;
    size_t used = 0; /* bytes of the arena taken by lists */
    unsigned char *ar = ACEM__CAST(unsigned char *, arena);
    path = acem__path(path);
    if (!buf || !cfg) return acem__fail(err, ACEM_ERR_INVALID_ARGUMENT, "%s: NULL argument", path);
    ACEM_MEMSET(cfg, 0, sizeof *cfg);
    cfg->lora_alpha = 8;
    {
        acem_result r = acem__check_arena(err, path, arena, arena_bytes, acem_peft_config_bytes(len));
        if (r != ACEM_OK) return r;
    }
    buf[len] = 0;
    if (!acem__utf8_valid(ACEM__CAST(const unsigned char *, (const void *)buf), len))
        return acem__fail(err, ACEM_ERR_FORMAT, "%s: not valid UTF-8", path);
    j.p = buf; j.i = 0; j.n = len; j.depth = 0; j.what = "config";
    if (!acem__jexpect(&j, '{')) return acem__fail(err, ACEM_ERR_FORMAT, "%s: not a JSON object", path);
    acem__jws(&j);
    if (j.i < j.n && j.p[j.i] == '}') { j.i++; more = 0; } else more = 1;
    while (more == 1) {
        char *key;
        acem_result r = ACEM_OK;
        acem__jws(&j);
        if (!(key = acem__jstr(&j)) || !acem__jexpect(&j, ':'))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: malformed JSON near byte %zu", path, j.i);
        acem__jws(&j);
        if (acem__streq(key, "r") || acem__streq(key, "lora_alpha")) {
            double v;
            if (!acem__jlit(&j, "null")) { /* null: absent */
                if (!acem__jnum(&j, &v) || !(v > 0))
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: '%s' must be a positive number", path, key);
                if (key[0] == 'r') cfg->r = v; else cfg->lora_alpha = v;
            }
        } else if (acem__streq(key, "use_rslora")) r = acem__peft_bool(&j, &cfg->use_rslora, key, path, err);
        else if (acem__streq(key, "fan_in_fan_out")) r = acem__peft_bool(&j, &cfg->fan_in_fan_out, key, path, err);
        else if (acem__streq(key, "use_dora")) r = acem__peft_bool(&j, &cfg->use_dora, key, path, err);
        else if (acem__streq(key, "peft_type")) {
            if (!acem__jlit(&j, "null") && !(cfg->peft_type = acem__jstr(&j)))
                return acem__fail(err, ACEM_ERR_FORMAT, "%s: 'peft_type' must be a string", path);
        } else if (acem__streq(key, "rank_pattern") || acem__streq(key, "alpha_pattern")) {
            int m, isr = key[0] == 'r';
            acem_peft_pattern *list = ACEM__CAST(acem_peft_pattern *, (void *)(ar + used));
            size_t n = 0;
            if (acem__jlit(&j, "null")) m = 0;
            else {
                if (!acem__jexpect(&j, '{')) return acem__fail(err, ACEM_ERR_FORMAT, "%s: '%s' must be an object", path, key);
                acem__jws(&j);
                if (j.i < j.n && j.p[j.i] == '}') { j.i++; m = 0; } else m = 1;
            }
            while (m == 1) {
                char *pk;
                double v;
                acem__jws(&j);
                if (!(pk = acem__jstr(&j)) || !acem__jexpect(&j, ':') || (acem__jws(&j), !acem__jnum(&j, &v)) || !(v > 0))
                    return acem__fail(err, ACEM_ERR_FORMAT, "%s: '%s' entries must be \"module\": positive number", path, key);
                if (acem_regex_check(pk) != ACEM_OK)
                    return acem__fail(err, ACEM_ERR_BAD_PATTERN, "%s: '%s' key '%s' is not a regular expression acem supports", path, key, pk);
                if (used + (n + 1) * sizeof *list > arena_bytes) return acem__fail(err, ACEM_ERR_FORMAT, "%s: too many entries", path);
                list[n].key = pk;
                list[n].value = v;
                n++;
                if ((m = acem__jnext(&j, '}')) < 0) return acem__fail(err, ACEM_ERR_FORMAT, "%s: malformed '%s'", path, key);
            }
            used += n * sizeof *list;
            if (isr) { cfg->rank_pattern = list; cfg->n_rank_pattern = n; }
            else { cfg->alpha_pattern = list; cfg->n_alpha_pattern = n; }
        } else if (acem__streq(key, "target_modules") || acem__streq(key, "modules_to_save")) {
            int m, ist = key[0] == 't';
            const char **list = ACEM__CAST(const char **, (void *)(ar + used));
            size_t n = 0;
            if (acem__jlit(&j, "null")) m = 0;
            else if (j.i < j.n && j.p[j.i] == '"') {
                char *sv = acem__jstr(&j);
                if (!sv || !ist) return acem__fail(err, ACEM_ERR_FORMAT, "%s: '%s' must be a list of strings", path, key);
                cfg->target_modules_regex = sv;
                m = 0;
            } else {
                if (!acem__jexpect(&j, '[')) return acem__fail(err, ACEM_ERR_FORMAT, "%s: '%s' must be a list", path, key);
                acem__jws(&j);
                if (j.i < j.n && j.p[j.i] == ']') { j.i++; m = 0; } else m = 1;
            }
            while (m == 1) {
                char *sv;
                acem__jws(&j);
                if (!(sv = acem__jstr(&j))) return acem__fail(err, ACEM_ERR_FORMAT, "%s: '%s' must hold strings", path, key);
                if (used + (n + 1) * sizeof *list > arena_bytes) return acem__fail(err, ACEM_ERR_FORMAT, "%s: too many entries", path);
                list[n++] = sv;
                if ((m = acem__jnext(&j, ']')) < 0) return acem__fail(err, ACEM_ERR_FORMAT, "%s: malformed '%s'", path, key);
            }
            used += (n * sizeof *list + 7u) & ~(size_t)7u;
            if (ist) { cfg->target_modules = list; cfg->n_target_modules = n; }
            else { cfg->modules_to_save = list; cfg->n_modules_to_save = n; }
        } else if (!acem__jskip(&j))
            return acem__fail(err, ACEM_ERR_FORMAT, "%s: malformed JSON at key '%s'", path, key);
        if (r != ACEM_OK) return r;
        if ((more = acem__jnext(&j, '}')) < 0) return acem__fail(err, ACEM_ERR_FORMAT, "%s: malformed JSON near byte %zu", path, j.i);
    }
    acem__jws(&j);
    if (j.i != j.n) return acem__fail(err, ACEM_ERR_FORMAT, "%s: unexpected bytes after the JSON object", path);
    return ACEM_OK;
}
/* does a PEFT pattern key match the module name as "(.*\.)?key$"? */
static int acem__peft_match(const char *key, const char *module) {
    char pat[600];
    size_t n = acem__strlen(key);
    if (n > sizeof pat - 16) return 0;
    ACEM_MEMCPY(pat, "^(.*\\.)?", 8);
    ACEM_MEMCPY(pat + 8, key, n);
    pat[8 + n] = '$';
    pat[9 + n] = 0;
    return acem_regex_search(pat, module);
}
ACEMDEF double acem_peft_scaling(const acem_peft_config *c, const char *module, size_t r_shape, double *r_used) {
    double r = c->r > 0 ? c->r : (double)r_shape, alpha = c->lora_alpha;
    size_t i;
    for (i = 0; i < c->n_rank_pattern; ++i)
        if (acem__peft_match(c->rank_pattern[i].key, module)) { r = c->rank_pattern[i].value; break; }
    for (i = 0; i < c->n_alpha_pattern; ++i)
        if (acem__peft_match(c->alpha_pattern[i].key, module)) { alpha = c->alpha_pattern[i].value; break; }
    if (r_used) *r_used = r;
    if (!(r > 0)) return 0;
    return alpha / (c->use_rslora ? ACEM_SQRT(r) : r);
}

/* ---- stdio helpers ------------------------------------------------------------- */
#ifndef ACEM_NO_STDIO
/* 64-bit offsets: _fseeki64 on Windows; elsewhere fseek with long, which is
   64-bit on LP64 systems (a 32-bit long reports files past 2 GiB as errors,
   never as wrong data). */
#if defined(_WIN32)
#define ACEM__FSEEK(f, o) _fseeki64((f), (__int64)(o), SEEK_SET)
#define ACEM__FTELL(f) _ftelli64(f)
#define ACEM__OFF_MAX 0x7fffffffffffffffull
#else
#define ACEM__FSEEK(f, o) fseek((f), (long)(o), SEEK_SET)
#define ACEM__FTELL(f) ftell(f)
#define ACEM__OFF_MAX ((uint64_t)(((unsigned long)-1) >> 1))
#endif
static int acem__stdio_read(void *user, uint64_t off, void *dst, size_t n) {
    FILE *f = ACEM__CAST(FILE *, user);
    if (off > ACEM__OFF_MAX || ACEM__FSEEK(f, off)) return 1;
    return fread(dst, 1, n, f) != n;
}
static int acem__stdio_write(void *user, const void *src, size_t n) {
    return fwrite(src, 1, n, ACEM__CAST(FILE *, user)) != n;
}
ACEMDEF acem_result acem_stdio_reader(acem_read_io *io, FILE *f, const char *path) {
    long long sz;
    io->user = f;
    io->read = acem__stdio_read;
    io->path = path;
    io->size = 0;
    if (fseek(f, 0, SEEK_END) || (sz = (long long)ACEM__FTELL(f)) < 0) return ACEM_ERR_IO;
    io->size = (uint64_t)sz;
    return ACEM_OK;
}
ACEMDEF void acem_stdio_writer(acem_write_io *io, FILE *f, const char *path) {
    io->user = f;
    io->write = acem__stdio_write;
    io->path = path;
}
#endif

#endif /* ACEM__IMPLEMENTED */
#endif /* ACEM_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
LICENCE: MIT No Attribution (MIT-0)

Copyright (c) 2026 the acem authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
CHANGELOG
  0.1.0 (2026-11-25)  first release: ACE and eight related rules, fixed arena,
                      blocked kernels, f64 eigensolver, regex exclusions.
------------------------------------------------------------------------------
*/
