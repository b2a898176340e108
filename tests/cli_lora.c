/* tests/cli_lora.c - inputs and checks for tests/test_lora_cli.sh (LoRA adapters
   as experts of `acem merge`), built on acem.h's safetensors reader and writer.

   cli_lora gen DIR
       Writes into DIR (which must exist) a small base model (base.safetensors:
       LLaMA-like layers, a GPT-2-like Conv1D block stored (in, out) under names
       without the "transformer." prefix, an embedding, a classification head and
       an I32 tensor) and PEFT adapters a1 .. a6 (directories) with different
       ranks, module sets and alphas: a2 rsLoRA, a7 and a8 on a2's modules, a3 rank_pattern/alpha_pattern,
       a4 and a6 fan_in_fan_out without r / lora_alpha, a5 embedding LoRA +
       modules_to_save. For each adapter also the dense checkpoint
       d_aN.safetensors = base + scale * B A (transposed where PEFT transposes;
       modules_to_save weights as saved), computed exactly as acem's dense path
       computes it (acem_gemm into a copy of the base). Malformed adapters:
       bad_missing_b bad_shape bad_json bad_r bad_dora bad_dora_key bad_module.
   cli_lora close A B TOL
       Same tensor names, shapes; every float tensor within TOL relative
       (Frobenius) of B; others bitwise.
   cli_lora apply ADAPTER BASE MODEL TOL [REGEX]
       MODEL == BASE + the adapter's deltas (computed in double from its
       factors and config; full weights replace), every tensor (or those
       whose name matches REGEX) within TOL.
   cli_lora actmat64 OUT BASE TOL DENSE...
       OUT == the ACTMat merge of the dense checkpoints computed in float64
       (the f32 dense path is ill-conditioned when the deltas' scales differ).
   cli_lora trunc EXACT TRUNC K
       TRUNC's factors are the first min(K, q) directions of EXACT's (bitwise),
       EXACT is in SVD form (orthogonal directions, descending); prints
       "energy min X mean Y max Z" of the truncation.
   Exits 0 when everything holds, 1 otherwise (messages on stdout). */
#define _POSIX_C_SOURCE 200809L
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "gen_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_fail;
#define FAIL(...) do { printf("FAIL: " __VA_ARGS__); printf("\n"); g_fail = 1; } while (0)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* ---- reading ---------------------------------------------------------------- */
typedef struct stf { FILE *fp; acem_st_file st; } stf;
static int st_load(stf *f, const char *path) {
    acem_read_io io;
    acem_error err;
    size_t need = 0;
    void *arena;
    if (!(f->fp = fopen(path, "rb"))) { FAIL("%s: cannot open", path); return 0; }
    acem_stdio_reader(&io, f->fp, strcpy((char *)xmalloc(strlen(path) + 1), path));
    if (acem_st_open_bytes(&io, &need, &err) != ACEM_OK) { FAIL("%s", err.message); return 0; }
    arena = xmalloc(need);
    if (acem_st_open(&f->st, &io, arena, need, &err) != ACEM_OK) { FAIL("%s", err.message); return 0; }
    return 1;
}
static const acem_st_tensor *st_find(const stf *f, const char *name) {
    size_t i;
    for (i = 0; i < f->st.n_tensors; ++i)
        if (!strcmp(f->st.tensors[i].name, name)) return &f->st.tensors[i];
    return NULL;
}
static float *st_f32(const stf *f, const acem_st_tensor *t) {
    float *d = (float *)xmalloc((size_t)t->numel * sizeof(float));
    acem_error err;
    if (acem_st_read_f32(&f->st, t, d, &err) != ACEM_OK) { FAIL("%s", err.message); memset(d, 0, (size_t)t->numel * 4); }
    return d;
}
static char *read_text(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *b;
    long n;
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    b = (char *)xmalloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, fp) != (size_t)n) { fclose(fp); return NULL; }
    fclose(fp);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}
static int load_cfg(const char *dir, acem_peft_config *cfg) {
    char path[512];
    size_t len = 0;
    char *j;
    acem_error err;
    void *ar;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (!(j = read_text(path, &len))) { FAIL("%s: cannot read", path); return 0; }
    ar = xmalloc(acem_peft_config_bytes(len));
    if (acem_peft_config_parse(j, len, cfg, ar, acem_peft_config_bytes(len), path, &err) != ACEM_OK) {
        FAIL("%s", err.message);
        return 0;
    }
    return 1;
}

/* ---- writing ---------------------------------------------------------------- */
typedef struct wt { char name[160]; acem_dtype dtype; size_t ndim; uint64_t shape[2]; float *f; int32_t *i; } wt;
static void st_write(const char *path, wt *t, size_t n) {
    acem_st_tensor *d = (acem_st_tensor *)calloc(n ? n : 1, sizeof *d);
    size_t *order = (size_t *)calloc(n ? n : 1, sizeof(size_t)), k;
    const char *meta[2] = {"generator", "cli_lora"};
    acem_write_io io;
    acem_error err;
    FILE *fp = fopen(path, "wb");
    if (!fp) { fprintf(stderr, "%s: cannot create\n", path); exit(2); }
    for (k = 0; k < n; ++k) {
        d[k].name = t[k].name; d[k].dtype = t[k].dtype; d[k].ndim = t[k].ndim;
        d[k].shape[0] = t[k].shape[0]; d[k].shape[1] = t[k].shape[1];
    }
    acem_stdio_writer(&io, fp, path);
    if (acem_st_write_header(&io, d, n, meta, 1, order, NULL, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(2); }
    for (k = 0; k < n; ++k) {
        const acem_st_tensor *x = &d[order[k]];
        const wt *y = &t[order[k]];
        acem_result r = y->i ? acem_st_write_raw(&io, x, y->i, &err) : acem_st_write_f32(&io, x, y->f, &err);
        if (r != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(2); }
    }
    fclose(fp);
    free(d);
    free(order);
}
static void write_text(const char *path, const char *s) {
    FILE *fp = fopen(path, "wb");
    if (!fp || fputs(s, fp) < 0) { fprintf(stderr, "%s: cannot write\n", path); exit(2); }
    fclose(fp);
}

static float *randv(size_t n, double sd) {
    float *v = (float *)xmalloc(n * sizeof(float));
    size_t i;
    for (i = 0; i < n; ++i) v[i] = (float)(gauss() * sd);
    return v;
}

/* ---- the model ---------------------------------------------------------------- */
typedef struct bspec { const char *name; size_t ndim, r, c; } bspec;
static const bspec k_base[] = {
    {"model.embed_tokens.weight", 2, 48, 16},
    {"model.layers.0.self_attn.q_proj.weight", 2, 16, 16}, {"model.layers.0.self_attn.k_proj.weight", 2, 8, 16},
    {"model.layers.0.self_attn.v_proj.weight", 2, 8, 16}, {"model.layers.0.self_attn.o_proj.weight", 2, 16, 16},
    {"model.layers.0.mlp.up_proj.weight", 2, 24, 16}, {"model.layers.0.mlp.down_proj.weight", 2, 16, 24},
    {"model.layers.0.input_layernorm.weight", 1, 16, 1},
    {"model.layers.1.self_attn.q_proj.weight", 2, 16, 16}, {"model.layers.1.self_attn.k_proj.weight", 2, 8, 16},
    {"model.layers.1.self_attn.v_proj.weight", 2, 8, 16}, {"model.layers.1.self_attn.o_proj.weight", 2, 16, 16},
    {"model.layers.1.mlp.up_proj.weight", 2, 24, 16}, {"model.layers.1.mlp.down_proj.weight", 2, 16, 24},
    {"model.layers.1.input_layernorm.weight", 1, 16, 1},
    {"model.norm.weight", 1, 16, 1}, {"lm_head.weight", 2, 48, 16},
    {"score.weight", 2, 3, 16}, {"score.bias", 1, 3, 1},
    /* GPT-2 Conv1D: (in, out); adapters call them transformer.h.0... */
    {"h.0.attn.c_attn.weight", 2, 16, 48}, {"h.0.attn.c_proj.weight", 2, 16, 16}, {"h.0.mlp.c_fc.weight", 2, 16, 24},
};
#define NB (sizeof k_base / sizeof k_base[0])
static float *g_base[NB];

typedef struct mspec { const char *module; size_t r; int emb; } mspec; /* module path, rank */
typedef struct aspec {
    const char *dir, *config;
    double mag;
    mspec mods[10];
    const char *full[3]; /* modules_to_save keys (after base_model.model.) */
} aspec;

static const aspec k_ads[] = {
    {"a1", "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\", \"v_proj\"], \"task_type\": \"CAUSAL_LM\"}",
     1.0,
     {{"model.layers.0.self_attn.q_proj", 4, 0}, {"model.layers.0.self_attn.v_proj", 4, 0},
      {"model.layers.1.self_attn.q_proj", 4, 0}, {"model.layers.1.self_attn.v_proj", 4, 0}}, {NULL}},
    {"a2", "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"use_rslora\": true,\n"
           " \"target_modules\": [\"q_proj\", \"k_proj\", \"o_proj\", \"up_proj\"], \"lora_dropout\": 0.05}",
     3.0,
     {{"model.layers.0.self_attn.q_proj", 8, 0}, {"model.layers.0.self_attn.k_proj", 8, 0},
      {"model.layers.0.self_attn.o_proj", 8, 0}, {"model.layers.0.mlp.up_proj", 8, 0},
      {"model.layers.1.self_attn.q_proj", 8, 0}, {"model.layers.1.self_attn.k_proj", 8, 0},
      {"model.layers.1.self_attn.o_proj", 8, 0}, {"model.layers.1.mlp.up_proj", 8, 0}}, {NULL}},
    {"a3", "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4,\n"
           " \"rank_pattern\": {\"q_proj\": 6, \"model.layers.1.mlp.down_proj\": 3}, \"alpha_pattern\": {\"down_proj\": 12},\n"
           " \"target_modules\": [\"q_proj\", \"down_proj\", \"v_proj\"]}",
     0.3,
     {{"model.layers.0.self_attn.q_proj", 6, 0}, {"model.layers.1.self_attn.q_proj", 6, 0},
      {"model.layers.0.mlp.down_proj", 2, 0}, {"model.layers.1.mlp.down_proj", 3, 0},
      {"model.layers.0.self_attn.v_proj", 2, 0}}, {NULL}},
    {"a4", "{\"peft_type\": \"LORA\", \"fan_in_fan_out\": true, \"target_modules\": [\"c_attn\", \"c_proj\", \"c_fc\"]}",
     1.0,
     {{"transformer.h.0.attn.c_attn", 4, 0}, {"transformer.h.0.attn.c_proj", 3, 0}, {"transformer.h.0.mlp.c_fc", 2, 0}}, {NULL}},
    {"a5", "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"rank_pattern\": {\"q_proj\": 2},\n"
           " \"target_modules\": [\"embed_tokens\", \"lm_head\", \"q_proj\"], \"modules_to_save\": [\"score\"]}",
     1.5,
     {{"model.embed_tokens", 4, 1}, {"lm_head", 4, 0}, {"model.layers.0.self_attn.q_proj", 2, 0}},
     {"score.weight", "score.modules_to_save.default.bias", NULL}},
    {"a6", "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"fan_in_fan_out\": true, \"target_modules\": [\"c_attn\", \"c_proj\"]}",
     0.7,
     {{"transformer.h.0.attn.c_attn", 2, 0}, {"transformer.h.0.attn.c_proj", 2, 0}}, {NULL}},
    /* a7, a8: a2's module set (ACE against the dense path needs every adapter on every module it merges) */
    {"a7", "{\"peft_type\": \"LORA\", \"r\": 3, \"lora_alpha\": 6}",
     0.5,
     {{"model.layers.0.self_attn.q_proj", 3, 0}, {"model.layers.0.self_attn.k_proj", 3, 0},
      {"model.layers.0.self_attn.o_proj", 3, 0}, {"model.layers.0.mlp.up_proj", 3, 0},
      {"model.layers.1.self_attn.q_proj", 3, 0}, {"model.layers.1.self_attn.k_proj", 3, 0},
      {"model.layers.1.self_attn.o_proj", 3, 0}, {"model.layers.1.mlp.up_proj", 3, 0}}, {NULL}},
    {"a8", "{\"peft_type\": \"LORA\", \"r\": 5, \"lora_alpha\": 5, \"rank_pattern\": {\"up_proj\": 2}}",
     2.0,
     {{"model.layers.0.self_attn.q_proj", 5, 0}, {"model.layers.0.self_attn.k_proj", 5, 0},
      {"model.layers.0.self_attn.o_proj", 5, 0}, {"model.layers.0.mlp.up_proj", 2, 0},
      {"model.layers.1.self_attn.q_proj", 5, 0}, {"model.layers.1.self_attn.k_proj", 5, 0},
      {"model.layers.1.self_attn.o_proj", 5, 0}, {"model.layers.1.mlp.up_proj", 2, 0}}, {NULL}},
};
#define NA (sizeof k_ads / sizeof k_ads[0])

static size_t base_index(const char *name) { /* adapter module/param name -> base tensor */
    size_t k;
    const char *n2 = !strncmp(name, "transformer.", 12) ? name + 12 : name;
    for (k = 0; k < NB; ++k)
        if (!strcmp(k_base[k].name, n2)) return k;
    fprintf(stderr, "no base tensor %s\n", name);
    exit(2);
}

static void gen_adapter(const char *dir, const aspec *a, int variant) {
    /* variant: 0 normal, 1 missing B, 2 wrong shape, 3 DoRA key, 4 absent module */
    wt t[40];
    size_t n = 0, m, k, T;
    float *dense[NB];
    acem_peft_config cfg;
    char path[512], js[2048];
    memset(t, 0, sizeof t);
    for (k = 0; k < NB; ++k) {
        size_t N = k_base[k].r * k_base[k].c;
        dense[k] = (float *)xmalloc(N * sizeof(float));
        memcpy(dense[k], g_base[k], N * sizeof(float));
    }
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    write_text(path, a->config);
    if (!load_cfg(dir, &cfg)) exit(2);
    for (m = 0; m < 10 && a->mods[m].module; ++m) {
        const mspec *ms = &a->mods[m];
        char bn[200];
        size_t bi, R, C, r = ms->r, in, out, i, j;
        int trans = ms->emb || cfg.fan_in_fan_out;
        float *A, *B, *Bp, *Ap, scale;
        double ru;
        snprintf(bn, sizeof bn, "%s.weight", ms->module);
        bi = base_index(bn);
        R = k_base[bi].r; C = k_base[bi].c;
        in = trans ? R : C; out = trans ? C : R;
        A = randv(r * in, 0.3);
        B = randv(out * r, 0.05 * a->mag);
        snprintf(t[n].name, sizeof t[n].name, "base_model.model.%s.%s", ms->module, ms->emb ? "lora_embedding_A" : "lora_A.weight");
        t[n].dtype = ACEM_DT_F32; t[n].ndim = 2; t[n].shape[0] = r; t[n].shape[1] = in; t[n].f = A; ++n;
        if (!(variant == 1 && m == 1)) {
            snprintf(t[n].name, sizeof t[n].name, "base_model.model.%s.%s", ms->module, ms->emb ? "lora_embedding_B" : "lora_B.weight");
            t[n].dtype = ACEM_DT_F32; t[n].ndim = 2; t[n].shape[0] = out + (variant == 2 && m == 0); t[n].shape[1] = r;
            t[n].f = variant == 2 && m == 0 ? randv((out + 1) * r, 0.05) : B;
            ++n;
        }
        /* the dense checkpoint: base + scale * Bp Ap, as acem's dense path */
        scale = (float)acem_peft_scaling(&cfg, ms->module, r, &ru);
        Bp = (float *)xmalloc(R * r * sizeof(float));
        Ap = (float *)xmalloc(r * C * sizeof(float));
        if (!trans) { memcpy(Bp, B, R * r * 4); memcpy(Ap, A, r * C * 4); }
        else {
            for (i = 0; i < r; ++i)
                for (j = 0; j < R; ++j) Bp[j * r + i] = A[i * R + j];
            for (i = 0; i < C; ++i)
                for (j = 0; j < r; ++j) Ap[j * C + i] = B[i * r + j];
        }
        {
            void *w = xmalloc(acem_gemm_work_bytes(R, C, r));
            acem_gemm(0, 0, R, C, r, scale, Bp, r, Ap, C, 1.0f, dense[bi], C, w);
            free(w);
        }
    }
    for (m = 0; m < 3 && a->full[m]; ++m) {
        char bn[200], *mts;
        size_t bi, N;
        snprintf(bn, sizeof bn, "%s", a->full[m]);
        if ((mts = strstr(bn, ".modules_to_save.default"))) memmove(mts, mts + 24, strlen(mts + 24) + 1);
        bi = base_index(bn);
        N = k_base[bi].r * k_base[bi].c;
        snprintf(t[n].name, sizeof t[n].name, "base_model.model.%s", a->full[m]);
        t[n].dtype = ACEM_DT_F32; t[n].ndim = k_base[bi].ndim; t[n].shape[0] = k_base[bi].r; t[n].shape[1] = k_base[bi].c;
        t[n].f = (float *)xmalloc(N * sizeof(float));
        for (k = 0; k < N; ++k) t[n].f[k] = g_base[bi][k] + (float)(gauss() * 0.1 * a->mag);
        memcpy(dense[bi], t[n].f, N * sizeof(float));
        ++n;
    }
    if (variant == 3) {
        snprintf(t[n].name, sizeof t[n].name, "base_model.model.%s.lora_magnitude_vector", a->mods[0].module);
        t[n].dtype = ACEM_DT_F32; t[n].ndim = 1; t[n].shape[0] = 16; t[n].f = randv(16, 1); ++n;
    }
    if (variant == 4) {
        snprintf(t[n].name, sizeof t[n].name, "base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight");
        t[n].dtype = ACEM_DT_F32; t[n].ndim = 2; t[n].shape[0] = 4; t[n].shape[1] = 16; t[n].f = randv(64, 1); ++n;
        snprintf(t[n].name, sizeof t[n].name, "base_model.model.model.layers.9.self_attn.q_proj.lora_B.weight");
        t[n].dtype = ACEM_DT_F32; t[n].ndim = 2; t[n].shape[0] = 16; t[n].shape[1] = 4; t[n].f = randv(64, 1); ++n;
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    st_write(path, t, n);
    if (variant == 0) { /* the dense checkpoint d_<dir>.safetensors */
        wt d[NB + 1];
        static int32_t pos[10];
        memset(d, 0, sizeof d);
        for (k = 0; k < NB; ++k) {
            snprintf(d[k].name, sizeof d[k].name, "%s", k_base[k].name);
            d[k].dtype = ACEM_DT_F32; d[k].ndim = k_base[k].ndim; d[k].shape[0] = k_base[k].r; d[k].shape[1] = k_base[k].c;
            d[k].f = dense[k];
        }
        for (k = 0; k < 10; ++k) pos[k] = (int32_t)k;
        snprintf(d[NB].name, sizeof d[NB].name, "position_ids");
        d[NB].dtype = ACEM_DT_I32; d[NB].ndim = 1; d[NB].shape[0] = 10; d[NB].i = pos;
        snprintf(js, sizeof js, "d_%s.safetensors", dir);
        st_write(js, d, NB + 1);
    }
    T = 0;
    (void)T;
}

static int cmd_gen(const char *dir) {
    size_t k;
    wt d[NB + 1];
    static int32_t pos[10];
    char cfg[4096];
    if (chdir(dir) != 0) { fprintf(stderr, "%s: cannot enter\n", dir); return 2; }
    memset(d, 0, sizeof d);
    for (k = 0; k < NB; ++k) {
        g_base[k] = randv(k_base[k].r * k_base[k].c, 0.5);
        snprintf(d[k].name, sizeof d[k].name, "%s", k_base[k].name);
        d[k].dtype = ACEM_DT_F32; d[k].ndim = k_base[k].ndim; d[k].shape[0] = k_base[k].r; d[k].shape[1] = k_base[k].c;
        d[k].f = g_base[k];
    }
    for (k = 0; k < 10; ++k) pos[k] = (int32_t)k;
    snprintf(d[NB].name, sizeof d[NB].name, "position_ids");
    d[NB].dtype = ACEM_DT_I32; d[NB].ndim = 1; d[NB].shape[0] = 10; d[NB].i = pos;
    st_write("base.safetensors", d, NB + 1);
    for (k = 0; k < NA; ++k) gen_adapter(k_ads[k].dir, &k_ads[k], 0);
    gen_adapter("bad_missing_b", &k_ads[0], 1);
    gen_adapter("bad_shape", &k_ads[0], 2);
    gen_adapter("bad_dora_key", &k_ads[0], 3);
    gen_adapter("bad_module", &k_ads[0], 4);
    gen_adapter("bad_json", &k_ads[0], 0);
    write_text("bad_json/adapter_config.json", "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8,");
    gen_adapter("bad_r", &k_ads[0], 0);
    write_text("bad_r/adapter_config.json", "{\"peft_type\": \"LORA\", \"r\": 5, \"lora_alpha\": 8}");
    gen_adapter("bad_dora", &k_ads[0], 0);
    snprintf(cfg, sizeof cfg, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_dora\": true}");
    write_text("bad_dora/adapter_config.json", cfg);
    return 0;
}

/* ---- checks ---------------------------------------------------------------------- */
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    size_t i;
    for (i = 0; i < n; ++i) { double d = (double)a[i] - b[i]; num += d * d; den += b[i] * b[i]; }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int cmd_close(const char *pa, const char *pb, double tol) {
    stf a, b;
    size_t i, n = 0;
    double worst = 0;
    if (!st_load(&a, pa) || !st_load(&b, pb)) return 1;
    if (a.st.n_tensors != b.st.n_tensors) FAIL("%s has %zu tensors, %s %zu", pa, a.st.n_tensors, pb, b.st.n_tensors);
    for (i = 0; i < a.st.n_tensors; ++i) {
        const acem_st_tensor *x = &a.st.tensors[i], *y = st_find(&b, x->name);
        if (!y) { FAIL("%s: not in %s", x->name, pb); continue; }
        if (x->numel != y->numel || x->ndim != y->ndim) { FAIL("%s: shapes differ", x->name); continue; }
        if (acem_dtype_is_float(x->dtype)) {
            float *u = st_f32(&a, x), *v = st_f32(&b, y);
            double *vd = (double *)xmalloc((size_t)x->numel * sizeof(double)), e;
            size_t k;
            for (k = 0; k < x->numel; ++k) vd[k] = v[k];
            e = rel_err(u, vd, (size_t)x->numel);
            if (e > worst) worst = e;
            if (!(e <= tol)) FAIL("%s: relative error %.3e > %.1e", x->name, e, tol);
            free(u); free(v); free(vd);
        }
        ++n;
    }
    printf("cli_lora close: %zu tensors, worst relative error %.3e (tolerance %.1e): %s\n", n, worst, tol, g_fail ? "FAILED" : "ok");
    return g_fail;
}

static int cmd_apply(const char *adir, const char *pbase, const char *pmodel, double tol, const char *only) {
    stf ad, base, m;
    acem_peft_config cfg;
    char path[512];
    size_t i, k;
    double worst = 0;
    double **acc;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", adir);
    if (!load_cfg(adir, &cfg) || !st_load(&ad, path) || !st_load(&base, pbase) || !st_load(&m, pmodel)) return 1;
    acc = (double **)calloc(base.st.n_tensors, sizeof(double *));
    for (i = 0; i < base.st.n_tensors; ++i) {
        const acem_st_tensor *t = &base.st.tensors[i];
        if (acem_dtype_is_float(t->dtype)) {
            float *f = st_f32(&base, t);
            acc[i] = (double *)xmalloc((size_t)t->numel * sizeof(double));
            for (k = 0; k < t->numel; ++k) acc[i][k] = f[k];
            free(f);
        }
    }
    for (i = 0; i < ad.st.n_tensors; ++i) {
        const acem_st_tensor *t = &ad.st.tensors[i];
        const char *rest = t->name + 17;
        char mod[300], bn[320], key[400];
        const acem_st_tensor *bt, *bb;
        int emb = strstr(t->name, ".lora_embedding_A") != NULL, trans;
        size_t bi, r, in, out, R, C, x, y, p;
        float *A, *B;
        double sc, ru;
        if (strncmp(t->name, "base_model.model.", 17)) { FAIL("%s: not a PEFT key", t->name); continue; }
        if (!strstr(t->name, ".lora_")) { /* full weight */
            char nm[400], *mts;
            snprintf(nm, sizeof nm, "%s", rest);
            if ((mts = strstr(nm, ".modules_to_save.default"))) memmove(mts, mts + 24, strlen(mts + 24) + 1);
            rest = nm;
            for (bi = 0; bi < base.st.n_tensors && strcmp(base.st.tensors[bi].name, rest) &&
                 !(strncmp(rest, "transformer.", 12) == 0 && !strcmp(base.st.tensors[bi].name, rest + 12)); ++bi) {}
            if (bi == base.st.n_tensors) { FAIL("%s: no base tensor", t->name); continue; }
            A = st_f32(&ad, t);
            for (k = 0; k < t->numel; ++k) acc[bi][k] = A[k];
            free(A);
            continue;
        }
        if (!strstr(t->name, ".lora_A.weight") && !emb) continue;
        snprintf(mod, sizeof mod, "%.*s", (int)(strstr(rest, emb ? ".lora_embedding_A" : ".lora_A.weight") - rest), rest);
        snprintf(bn, sizeof bn, "%s.weight", !strncmp(mod, "transformer.", 12) ? mod + 12 : mod);
        snprintf(key, sizeof key, "base_model.model.%s.%s", mod, emb ? "lora_embedding_B" : "lora_B.weight");
        if (!(bb = st_find(&ad, key))) { FAIL("%s: no partner", t->name); continue; }
        for (bi = 0; bi < base.st.n_tensors && strcmp(base.st.tensors[bi].name, bn); ++bi) {}
        if (bi == base.st.n_tensors) { FAIL("%s: no base tensor %s", t->name, bn); continue; }
        bt = &base.st.tensors[bi];
        trans = emb || cfg.fan_in_fan_out;
        r = (size_t)t->shape[0]; in = (size_t)t->shape[1]; out = (size_t)bb->shape[0];
        R = (size_t)bt->shape[0]; C = (size_t)bt->shape[1];
        if ((trans ? in != R || out != C : in != C || out != R) || bb->shape[1] != r) { FAIL("%s: shapes", t->name); continue; }
        sc = acem_peft_scaling(&cfg, mod, r, &ru);
        if (ru != (double)r) FAIL("%s: config rank %g, tensors %zu", mod, ru, r);
        if (acem_st_meta(&ad.st, "acem.version") && fabs(sc - 1.0) > 1e-12) FAIL("%s: scale %g, acem writes scale 1", mod, sc);
        A = st_f32(&ad, t);
        B = st_f32(&ad, bb);
        for (x = 0; x < out; ++x)
            for (y = 0; y < in; ++y) {
                double s = 0;
                for (p = 0; p < r; ++p) s += (double)B[x * r + p] * A[p * in + y];
                if (trans) acc[bi][y * C + x] += sc * s;
                else acc[bi][x * C + y] += sc * s;
            }
        free(A); free(B);
    }
    for (i = 0; i < base.st.n_tensors; ++i) {
        const acem_st_tensor *t = &base.st.tensors[i], *mt = st_find(&m, t->name);
        float *f;
        double e;
        if (!mt) { FAIL("%s: not in %s", t->name, pmodel); continue; }
        if (!acc[i] || (only && !acem_regex_search(only, t->name))) continue;
        f = st_f32(&m, mt);
        e = rel_err(f, acc[i], (size_t)t->numel);
        if (e > worst) worst = e;
        if (!(e <= tol)) FAIL("%s: base + adapter vs %s: relative error %.3e > %.1e", t->name, pmodel, e, tol);
        free(f);
    }
    printf("cli_lora apply: %s on %s vs %s: worst relative error %.3e (tolerance %.1e): %s\n", adir, pbase, pmodel, worst, tol,
           g_fail ? "FAILED" : "ok");
    return g_fail;
}

static int cmd_trunc(const char *pe, const char *pt, size_t K) {
    stf e, t;
    char path[512];
    size_t i, n = 0;
    double emin = 2, emax = -1, esum = 0;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", pe);
    if (!st_load(&e, path)) return 1;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", pt);
    if (!st_load(&t, path)) return 1;
    for (i = 0; i < e.st.n_tensors; ++i) {
        const acem_st_tensor *ea = &e.st.tensors[i], *eb, *ta, *tb;
        char key[400];
        const char *s = strstr(ea->name, ".lora_A.weight");
        int emb = 0;
        size_t q, qt, in, out, x, y, j;
        float *A, *B, *At, *Bt;
        double tot = 0, kept = 0, *sv;
        if (!s && (s = strstr(ea->name, ".lora_embedding_A"))) emb = 1;
        if (!s) continue;
        snprintf(key, sizeof key, "%.*s%s", (int)(s - ea->name), ea->name, emb ? ".lora_embedding_B" : ".lora_B.weight");
        eb = st_find(&e, key);
        ta = st_find(&t, ea->name);
        tb = st_find(&t, key);
        if (!eb || !ta || !tb) { FAIL("%s: missing in one of the adapters", ea->name); continue; }
        q = (size_t)ea->shape[0]; in = (size_t)ea->shape[1]; out = (size_t)eb->shape[0];
        qt = (size_t)ta->shape[0];
        if (qt != (q < K ? q : K)) { FAIL("%s: truncated rank %zu, expected min(%zu, %zu)", ea->name, qt, K, q); continue; }
        A = st_f32(&e, ea); B = st_f32(&e, eb); At = st_f32(&t, ta); Bt = st_f32(&t, tb);
        if (memcmp(A, At, qt * in * sizeof(float))) FAIL("%s: not the first %zu rows of the exact adapter's", ea->name, qt);
        for (x = 0; x < out; ++x)
            for (j = 0; j < qt; ++j)
                if (memcmp(&B[x * q + j], &Bt[x * qt + j], sizeof(float))) { FAIL("%s: not a prefix", key); x = out; break; }
        /* SVD form: rows of A and columns of B orthogonal, sv_j = |A_j| |B_j| descending */
        sv = (double *)xmalloc(q * sizeof(double));
        for (j = 0; j < q; ++j) {
            double na = 0, nb = 0;
            size_t l;
            for (y = 0; y < in; ++y) na += (double)A[j * in + y] * A[j * in + y];
            for (x = 0; x < out; ++x) nb += (double)B[x * q + j] * B[x * q + j];
            sv[j] = sqrt(na * nb);
            if (getenv("CLI_LORA_SV")) printf("%s sv[%zu] = %.9g\n", ea->name, j, sv[j]);
            /* (directions below 1e-6 of the largest carry < 1e-12 of the energy:
               acem_lora_merge's Gram-based small SVD does not resolve them) */
            for (l = 0; l < j && sv[j] > 1e-6 * sv[0]; ++l) {
                double da = 0, db = 0, nl = 0, ml = 0;
                for (y = 0; y < in; ++y) { da += (double)A[j * in + y] * A[l * in + y]; nl += (double)A[l * in + y] * A[l * in + y]; }
                for (x = 0; x < out; ++x) { db += (double)B[x * q + j] * B[x * q + l]; ml += (double)B[x * q + l] * B[x * q + l]; }
                if (fabs(da) > 1e-4 * sqrt(na * nl) || fabs(db) > 1e-4 * sqrt(nb * ml)) {
                    FAIL("%s: directions %zu and %zu are not orthogonal", ea->name, l, j);
                    l = j;
                }
            }
            if (j && sv[j] > 1e-6 * sv[0] && sv[j] > sv[j - 1] * (1 + 1e-5)) FAIL("%s: singular values not descending at %zu", ea->name, j);
            tot += sv[j] * sv[j];
            if (j < qt) kept += sv[j] * sv[j];
        }
        {
            double en = tot > 0 ? kept / tot : 1.0;
            if (en < emin) emin = en;
            if (en > emax) emax = en;
            esum += en;
            ++n;
        }
        free(A); free(B); free(At); free(Bt); free(sv);
    }
    printf("energy min %.6f mean %.6f max %.6f\n", emin, n ? esum / (double)n : 0.0, emax);
    printf("cli_lora trunc: %zu modules: %s\n", n, g_fail ? "FAILED" : "ok");
    return g_fail || !n;
}

/* ACTMat in float64 from dense checkpoints: M = N G^+ with G = sum D^T D,
   N = sum D (D^T D), eigenvalues below C * FLT_EPS * max dropped (as acem);
   not 2-D: base + mean of the deltas. OUT within TOL of base + M. */
static int cmd_actmat64(const char *pout, const char *pbase, char **pd, size_t T, double tol) {
    stf o, b, *d = (stf *)calloc(T, sizeof(stf));
    size_t i, t, x, y, z;
    double worst = 0;
    if (!st_load(&o, pout) || !st_load(&b, pbase)) return 1;
    for (t = 0; t < T; ++t) if (!st_load(&d[t], pd[t])) return 1;
    for (i = 0; i < b.st.n_tensors; ++i) {
        const acem_st_tensor *bt = &b.st.tensors[i];
        size_t R, C, n = (size_t)bt->numel;
        float *bf, *of;
        double *ref, e;
        if (!acem_dtype_is_float(bt->dtype)) continue;
        bf = st_f32(&b, bt);
        of = st_f32(&o, st_find(&o, bt->name));
        ref = (double *)calloc(n ? n : 1, sizeof(double));
        R = bt->ndim == 2 ? (size_t)bt->shape[0] : n;
        C = bt->ndim == 2 ? (size_t)bt->shape[1] : 1;
        if (bt->ndim != 2) {
            for (t = 0; t < T; ++t) {
                float *f = st_f32(&d[t], st_find(&d[t], bt->name));
                for (x = 0; x < n; ++x) ref[x] += ((double)f[x] - bf[x]) / (double)T;
                free(f);
            }
        } else {
            double *G = (double *)calloc(C * C, sizeof(double)), *N = (double *)calloc(R * C, sizeof(double));
            double *D = (double *)malloc(R * C * sizeof(double)), *Ct = (double *)malloc(C * C * sizeof(double));
            double *w = (double *)malloc(C * sizeof(double)), lmax, tl;
            void *wk = malloc(acem_syev_work_bytes(C));
            for (t = 0; t < T; ++t) {
                float *f = st_f32(&d[t], st_find(&d[t], bt->name));
                for (x = 0; x < n; ++x) D[x] = (double)f[x] - bf[x];
                free(f);
                for (x = 0; x < C; ++x)
                    for (y = 0; y < C; ++y) {
                        double s = 0;
                        for (z = 0; z < R; ++z) s += D[z * C + x] * D[z * C + y];
                        Ct[x * C + y] = s;
                        G[x * C + y] += s;
                    }
                for (x = 0; x < R; ++x)
                    for (y = 0; y < C; ++y) {
                        double s = 0;
                        for (z = 0; z < C; ++z) s += D[x * C + z] * Ct[z * C + y];
                        N[x * C + y] += s;
                    }
            }
            if (acem_syev(C, G, C, w, wk) != ACEM_OK) FAIL("%s: syev", bt->name);
            lmax = w[C - 1];
            tl = (double)C * 1.1920928955078125e-07 * lmax;
            for (z = 0; z < C; ++z) {
                if (!(w[z] > tl)) continue;
                for (x = 0; x < R; ++x) {
                    double s = 0;
                    for (y = 0; y < C; ++y) s += N[x * C + y] * G[y * C + z];
                    s /= w[z];
                    for (y = 0; y < C; ++y) ref[x * C + y] += s * G[y * C + z];
                }
            }
            free(G); free(N); free(D); free(Ct); free(w); free(wk);
        }
        for (x = 0; x < n; ++x) ref[x] += bf[x];
        e = rel_err(of, ref, n);
        if (e > worst) worst = e;
        if (!(e <= tol)) FAIL("%s: actmat vs float64 reference: relative error %.3e > %.1e", bt->name, e, tol);
        free(bf); free(of); free(ref);
    }
    printf("cli_lora actmat64: %s vs the float64 ACTMat of %zu dense checkpoints: worst relative error %.3e (tolerance %.1e): %s\n",
           pout, T, worst, tol, g_fail ? "FAILED" : "ok");
    return g_fail;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "gen")) return cmd_gen(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "close")) return cmd_close(argv[2], argv[3], atof(argv[4]));
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "apply")) return cmd_apply(argv[2], argv[3], argv[4], atof(argv[5]), argc == 7 ? argv[6] : NULL);
    if (argc >= 6 && !strcmp(argv[1], "actmat64")) return cmd_actmat64(argv[2], argv[3], argv + 5, (size_t)argc - 5, atof(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "trunc")) return cmd_trunc(argv[2], argv[3], (size_t)atol(argv[4]));
    fprintf(stderr, "usage: cli_lora gen DIR | close A B TOL | apply ADAPTER BASE MODEL TOL | trunc EXACT TRUNC K\n");
    return 2;
}
