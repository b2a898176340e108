/* tests/test_lora.c - exact low-rank merging: acem_lora_merge against the
   dense path (the same adapters expanded to dense deltas and merged by the
   core) and against the float64 reference; gating, refinement, rank-0
   experts, truncation order, arena exactness. */
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "testing.h"
#include "ref.h"
#include <stdlib.h>
#include <string.h>

static unsigned long long rs = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}
static float nrand(void) { /* approximately normal */
    double s = 0;
    int i;
    for (i = 0; i < 12; ++i) s += urand();
    return (float)(s - 6.0);
}

typedef struct {
    size_t R, C, T, ranks[8];
    float scale[8];
    float *A[8], *B[8];
} lcase;

static void make_case(lcase *c, size_t R, size_t C, size_t T, const size_t *ranks, const double *mag) {
    size_t t, i;
    c->R = R; c->C = C; c->T = T;
    for (t = 0; t < T; ++t) {
        size_t r = ranks[t];
        c->ranks[t] = r;
        c->scale[t] = r ? (float)(16.0 / (double)r) : 1.0f; /* alpha 16 / r */
        c->A[t] = (float *)malloc((r ? r : 1) * C * sizeof(float));
        c->B[t] = (float *)malloc((r ? r : 1) * R * sizeof(float));
        for (i = 0; i < r * C; ++i) c->A[t][i] = nrand() * 0.05f;
        for (i = 0; i < R * r; ++i) c->B[t][i] = nrand() * (float)(0.01 * mag[t]);
    }
}
static void free_case(lcase *c) {
    size_t t;
    for (t = 0; t < c->T; ++t) { free(c->A[t]); free(c->B[t]); }
}
/* dense f32 delta exactly as a user would build it: scale * B A, in double then rounded */
static void dense_delta(const lcase *c, size_t t, float *D, double *Dd) {
    size_t i, j, p, r = c->ranks[t];
    for (i = 0; i < c->R; ++i)
        for (j = 0; j < c->C; ++j) {
            double s = 0;
            for (p = 0; p < r; ++p) s += (double)c->B[t][i * r + p] * c->A[t][p * c->C + j];
            s *= c->scale[t];
            D[i * c->C + j] = (float)s;
            if (Dd) Dd[i * c->C + j] = s; /* exact: what the low-rank path represents */
        }
}

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    size_t i;
    for (i = 0; i < n; ++i) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int n_dense = 0, n_illposed = 0;
static void run_case(const char *label, lcase *c, acem_method m, unsigned flags) {
    size_t R = c->R, C = c->C, T = c->T, n = R * C, t, i, j, p, bytes = 0;
    float *D[8], *dense = (float *)malloc(n * 4), *low = (float *)malloc(n * 4);
    double *Dd[8], *ref = (double *)malloc(n * 8);
    acem_lora ad[8];
    acem_lora_out out;
    acem_layer_info li, di;
    acem_options o;
    acem_error err;
    ref_opts ro;
    ref_info ri;
    void *arena;
    acem_result r;
    double e_dense, e_ref;
    memset(&o, 0, sizeof o);
    o.method = m;
    o.flags = flags;
    for (t = 0; t < T; ++t) {
        D[t] = (float *)malloc(n * 4);
        Dd[t] = (double *)malloc(n * 8);
        dense_delta(c, t, D[t], Dd[t]);
        ad[t].rank = c->ranks[t]; ad[t].scale = c->scale[t]; ad[t].A = c->A[t]; ad[t].B = c->B[t];
    }
    r = acem_merge_alloc(&o, ACEM_RULE_METHOD, label, R, C, T, NULL, (const float *const *)D, dense, &di, &err);
    CHECK(r == ACEM_OK, "%s: dense merge failed: %s", label, err.message);
    CHECK(acem_lora_bytes(&o, R, C, T, c->ranks, &bytes) == ACEM_OK, "%s: lora_bytes", label);
    arena = malloc(bytes);
    r = acem_lora_merge(&o, label, R, C, T, ad, arena, bytes, &out, &li, &err);
    CHECK(r == ACEM_OK, "%s: lora merge failed: %s", label, err.message);
    if (r == ACEM_OK) {
        size_t K = 0;
        for (t = 0; t < T; ++t) K += c->ranks[t];
        CHECK(out.rank <= K, "%s: rank %zu > sum of ranks %zu", label, out.rank, K);
        for (i = 0; i < R; ++i) /* expand B A */
            for (j = 0; j < C; ++j) {
                double s = 0;
                for (p = 0; p < out.rank; ++p) s += (double)out.B[i * out.rank + p] * out.A[p * C + j];
                low[i * C + j] = (float)s;
            }
        for (p = 1; p < out.rank; ++p) CHECK(out.sv[p] <= out.sv[p - 1], "%s: singular values not descending", label);
        e_dense = rel(low, dense, n);
        memset(&ro, 0, sizeof ro);
        ro.method = (int)m; ro.eps = 1e-2; ro.tau = 0.3; ro.k_frac = 0.3; ro.density = 0.2; ro.drop = 0.5;
        ro.lambda = (m == ACEM_TASK_ARITHMETIC) ? 0.3 : 1.0; ro.flags = flags;
        ref_merge(&ro, R, C, T, (const double *const *)Dd, 0, ref, &ri);
        e_ref = test_rel_err_fd(low, ref, n);
        CHECK(e_ref <= 1e-6, "%s: low-rank vs f64 reference rel err %.3e", label, e_ref);
        /* The dense path sees f32 deltas and stores f32 accumulators: compare it
           only where that cannot move the exact result by more than 5e-6. */
        {
            double sens = 0, *alt = (double *)malloc(n * 8);
            int f;
            for (f = 0; f < 2; ++f) {
                for (t = 0; t < T; ++t)
                    for (i = 0; i < n; ++i) Dd[t][i] = (double)D[t][i];
                ref_f32_storage = f;
                ref_merge(&ro, R, C, T, (const double *const *)Dd, 0, alt, NULL);
                ref_f32_storage = 0;
                {
                    double num = 0, den = 0;
                    for (i = 0; i < n; ++i) { num += (alt[i] - ref[i]) * (alt[i] - ref[i]); den += ref[i] * ref[i]; }
                    if (den > 0 && sqrt(num / den) > sens) sens = sqrt(num / den);
                }
            }
            free(alt);
            if (sens <= 5e-6) {
                n_dense++;
                CHECK(e_dense <= 1e-4, "%s: low-rank vs dense rel err %.3e", label, e_dense);
            } else {
                n_illposed++;
                printf("note: %s: dense comparison skipped, ill-conditioned in f32 (sensitivity %.2e; low-rank vs f64 %.2e)\n",
                       label, sens, e_ref);
            }
        }
        CHECK(li.gated == di.gated && li.refined == di.refined, "%s: gated/refined low %d/%d dense %d/%d", label,
              li.gated, li.refined, di.gated, di.refined);
        if (li.refined) CHECK(li.directions == ri.directions, "%s: directions %zu ref %zu", label, li.directions, ri.directions);
        { /* the arena is exact */
            acem_lora_out o2;
            CHECK(acem_lora_merge(&o, label, R, C, T, ad, arena, bytes - 1, &o2, NULL, &err) == ACEM_ERR_ARENA_TOO_SMALL &&
                      err.bytes_required == bytes, "%s: one byte less must fail with bytes_required", label);
        }
    }
    free(arena);
    for (t = 0; t < T; ++t) { free(D[t]); free(Dd[t]); }
    free(dense); free(low); free(ref);
}


/* PEFT adapter_config.json: parsing, patterns, rsLoRA, DoRA flag, errors */
static void peft_tests(void) {
    static const char good[] =
        "{\"peft_type\": \"LORA\", \"r\": 16, \"lora_alpha\": 32.0, \"use_rslora\": false,"
        " \"fan_in_fan_out\": true, \"target_modules\": [\"c_attn\", \"c_proj\"],"
        " \"rank_pattern\": {\"h.0.attn.c_attn\": 8, \"mlp\\\\.c_fc\": 4}, \"alpha_pattern\": {\"c_proj\": 64},"
        " \"modules_to_save\": [\"score\"], \"lora_dropout\": 0.05, \"task_type\": null,"
        " \"init_lora_weights\": true, \"layers_pattern\": null, \"use_dora\": false}";
    char buf[1024], arena[4096];
    acem_peft_config c;
    acem_error err;
    double r;
    size_t n = strlen(good);
    memcpy(buf, good, n + 1);
    CHECK(acem_peft_config_bytes(n) <= sizeof arena, "peft arena bound");
    CHECK(acem_peft_config_parse(buf, n, &c, arena, sizeof arena, "cfg.json", &err) == ACEM_OK, "peft parse: %s", err.message);
    CHECK(c.r == 16 && c.lora_alpha == 32 && c.fan_in_fan_out && !c.use_rslora && !c.use_dora, "peft fields");
    CHECK(c.peft_type && strcmp(c.peft_type, "LORA") == 0, "peft_type");
    CHECK(c.n_target_modules == 2 && strcmp(c.target_modules[1], "c_proj") == 0, "target_modules");
    CHECK(c.n_modules_to_save == 1 && strcmp(c.modules_to_save[0], "score") == 0, "modules_to_save");
    CHECK(c.n_rank_pattern == 2 && c.n_alpha_pattern == 1, "patterns");
    CHECK(fabs(acem_peft_scaling(&c, "h.1.attn.c_attn", 16, &r) - 2.0) < 1e-12 && r == 16, "default scaling alpha/r");
    CHECK(fabs(acem_peft_scaling(&c, "h.0.attn.c_attn", 8, &r) - 4.0) < 1e-12 && r == 8, "rank_pattern exact module");
    CHECK(fabs(acem_peft_scaling(&c, "transformer.h.0.attn.c_attn", 8, &r) - 4.0) < 1e-12, "rank_pattern dotted suffix");
    CHECK(fabs(acem_peft_scaling(&c, "h.3.mlp.c_fc", 4, &r) - 8.0) < 1e-12 && r == 4, "rank_pattern regex key");
    CHECK(fabs(acem_peft_scaling(&c, "h.3.mlp.c_proj", 16, &r) - 4.0) < 1e-12, "alpha_pattern");
    CHECK(fabs(acem_peft_scaling(&c, "h.3.xc_proj", 16, &r) - 2.0) < 1e-12, "pattern must match a whole dotted name");
    {
        static const char rs[] = "{\"r\": 16, \"lora_alpha\": 16, \"use_rslora\": true}";
        n = strlen(rs);
        memcpy(buf, rs, n + 1);
        CHECK(acem_peft_config_parse(buf, n, &c, arena, sizeof arena, "cfg.json", &err) == ACEM_OK, "rslora parse");
        CHECK(fabs(acem_peft_scaling(&c, "q_proj", 16, &r) - 4.0) < 1e-12, "rslora alpha/sqrt(r)");
    }
    {
        static const char miss[] = "{\"peft_type\": \"LORA\"}";
        n = strlen(miss);
        memcpy(buf, miss, n + 1);
        CHECK(acem_peft_config_parse(buf, n, &c, arena, sizeof arena, "cfg.json", &err) == ACEM_OK, "minimal parse");
        CHECK(fabs(acem_peft_scaling(&c, "q_proj", 4, &r) - 2.0) < 1e-12 && r == 4, "missing r inferred, alpha 8");
    }
    {
        static const char dora[] = "{\"r\": 8, \"use_dora\": true}";
        n = strlen(dora);
        memcpy(buf, dora, n + 1);
        CHECK(acem_peft_config_parse(buf, n, &c, arena, sizeof arena, "cfg.json", &err) == ACEM_OK && c.use_dora, "use_dora flag read");
    }
    {
        static const char *bad[] = {"{\"r\": -1}", "{\"r\": \"x\"}", "[1]", "{\"r\": 8,}", "{\"use_rslora\": 1}",
                                    "{\"rank_pattern\": {\"a\": \"b\"}}", "{\"rank_pattern\": {\"(a\": 2}}",
                                    "{\"target_modules\": [1]}", "{\"r\": 8} x"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
            n = strlen(bad[i]);
            memcpy(buf, bad[i], n + 1);
            CHECK(acem_peft_config_parse(buf, n, &c, arena, sizeof arena, "dir/adapter_config.json", &err) != ACEM_OK &&
                      strstr(err.message, "dir/adapter_config.json") != NULL,
                  "bad config %zu accepted or message lacks the path: %s", i, err.message);
        }
    }
}

int main(void) {
    static const acem_method methods[] = {ACEM_ACE, ACEM_AVERAGE, ACEM_TASK_ARITHMETIC, ACEM_ACTMAT};
    static const size_t shapes[][2] = {{64, 96}, {96, 64}, {128, 128}, {40, 200}};
    size_t si, mi, v;
    char label[128];
    for (si = 0; si < 4; ++si)
        for (v = 0; v < 4; ++v) {
            lcase c;
            size_t ranks[4] = {4, 8, 2, 6};
            double mag[4] = {1, 1, 1, 1};
            size_t T = 2 + v % 3;
            if (v == 1) { mag[0] = 10; mag[1] = 1; mag[2] = 0.1; } /* norms differ: gate opens */
            if (v == 2) ranks[1] = 0;                              /* one adapter misses the module */
            if (v == 3) { ranks[0] = 16; ranks[1] = 16; mag[1] = 30; }
            make_case(&c, shapes[si][0], shapes[si][1], T, ranks, mag);
            for (mi = 0; mi < 4; ++mi) {
                sprintf(label, "%s %zux%zu T=%zu v%zu", acem_method_name(methods[mi]), c.R, c.C, T, v);
                run_case(label, &c, methods[mi], 0);
            }
            sprintf(label, "ace always-gate %zux%zu T=%zu v%zu", c.R, c.C, T, v);
            run_case(label, &c, ACEM_ACE, ACEM_FLAG_ALWAYS_GATE);
            free_case(&c);
        }
    { /* unsupported methods are refused clearly */
        acem_options o;
        size_t rk = 2, bytes;
        acem_lora ad;
        acem_lora_out out;
        acem_error err;
        float A[2 * 3] = {1, 2, 3, 4, 5, 6}, B[4 * 2] = {1, 0, 0, 1, 1, 1, 0, 0};
        memset(&o, 0, sizeof o);
        o.method = ACEM_TIES;
        CHECK(!acem_lora_supported(ACEM_TIES) && acem_lora_supported(ACEM_ACE), "acem_lora_supported");
        CHECK(acem_lora_bytes(&o, 4, 3, 1, &rk, &bytes) == ACEM_ERR_INVALID_ARGUMENT, "lora_bytes accepts TIES");
        ad.rank = 2; ad.scale = 1; ad.A = A; ad.B = B;
        CHECK(acem_lora_merge(&o, "x", 4, 3, 1, &ad, A, sizeof A, &out, NULL, &err) == ACEM_ERR_INVALID_ARGUMENT &&
                  strstr(err.message, "'x'") != NULL, "lora_merge accepts TIES or message lacks the name: %s", err.message);
    }
    peft_tests();
    printf("test_lora: dense comparisons %d, skipped as ill-conditioned in f32 %d\n", n_dense, n_illposed);
    CHECK(n_illposed * 5 <= n_dense + n_illposed, "too many dense comparisons skipped: %d", n_illposed);
    return TEST_END("test_lora");
}
