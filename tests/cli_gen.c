/* tests/cli_gen.c - small checkpoints for tests/test_cli.sh, written with
   acem.h's safetensors writer.

   cli_gen DIR writes into DIR (which must exist):
     base.safetensors e1.safetensors e2.safetensors e3.safetensors   F32 (+ one I32)
     base_f16.safetensors e1_f16 ... e3_f16                          the same values as F16
     base_bf16.safetensors e1_bf16 ... e3_bf16                       ... as BF16
     sharded/base/ sharded/e1/ ... sharded/e3/    the F32 models as 3 shards + index
     single/base/model.safetensors                a directory with one model.safetensors
     e_missing.safetensors    e1 without one tensor
     e_extra.safetensors      e1 with one tensor more
     e_shape.safetensors      e1 with one tensor of another shape
     e_dtype.safetensors      e1 with one tensor stored as F16
     e_nan.safetensors        e1 with a NaN in one matrix
     sharded_bad/             an index that names a tensor no shard holds
     kv.gguf                  GGUF key/value pairs of every kind, no tensors
     base.gguf e1.gguf ... e3.gguf            the F32 models as GGUF (kv.gguf's pairs),
                                              plus "blk.2.ffn.weight" 8 x 64
     base_q8.gguf e1_q8.gguf ... e3_q8.gguf   the same with blk.2.ffn.weight in Q8_0,
                                              a Q4_K vector "blk.2.ffn.q4k" (merged)
                                              and an IQ2_XXS one "blk.2.ffn.iq2"
     lora1.gguf lora2.gguf    GGUF LoRA adapters of base.gguf (llama.cpp's layout:
                              <tensor>.lora_a dims [in, r], .lora_b [r, out]) on
                              layers.0.attn.weight and blk.2.ffn.weight: rank 4,
                              alpha 16, F32; rank 2, alpha 0 (scale 1), F16
     lora1_dense.gguf lora2_dense.gguf   base + scale * B A (in double, then f32)
     lora_bad.gguf            a lora_a without its lora_b
     split.gguf               a part named unlike llama-gguf-split's parts (split.count 3)
     base_split-0000{1,2}-of-00002.gguf, e1_split-..., e2_split-...   base, e1, e2 as GGUF
                              split in 2 parts (llama-gguf-split's names and pairs)
     tiny_base.gguf tiny_e1.gguf tiny_e2.gguf   a tiny model llama.cpp loads: architecture
                              llama, 2 blocks, n_embd 64, n_ff 128, 4 heads, a 32-token
                              SentencePiece vocabulary, F32 (e1, e2: the base plus noise)
     tiny_lora1.gguf tiny_lora2.gguf            GGUF LoRA adapters of it (rank 4 and 2)
   cli_gen --slow DIR writes slow_base, slow_e1 and slow_e2 .safetensors: 24
   F32 matrices of 64 x 3072, each an ACE merge with a 3072 x 3072 Cholesky
   (a few seconds in all), for the tests that interrupt a merge under way.
   cli_gen --big DIR writes big_base, big_e1 and big_e2 .safetensors: F32
   tensors of 2.8 MB and 1.2 MB, read in pieces by two threads (--threads 2).
   The tensors: 2-D matrices of three shapes (rows > cols, rows < cols, square-ish),
   a 1-D bias, a scalar, a 4-D tensor, a "text_projection", an empty tensor, an
   excluded-looking "score.weight" and an I32 tensor. Deterministic (fixed seed). */
#define _POSIX_C_SOURCE 200809L
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "gen_rng.h"
#include "gguf_build.h"

#include <sys/stat.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct spec {
    const char *name;
    acem_dtype dtype; /* F32 or I32 */
    size_t ndim;
    uint64_t shape[4];
} spec;

static const spec k_specs[] = {
    {"layers.0.attn.weight", ACEM_DT_F32, 2, {24, 16, 0, 0}},
    {"layers.0.mlp.weight", ACEM_DT_F32, 2, {32, 24, 0, 0}},
    {"layers.1.mlp.weight", ACEM_DT_F32, 2, {8, 40, 0, 0}},
    {"layers.0.mlp.bias", ACEM_DT_F32, 1, {32, 0, 0, 0}},
    {"layers.0.scale", ACEM_DT_F32, 0, {0, 0, 0, 0}},
    {"layers.0.conv.weight", ACEM_DT_F32, 4, {4, 3, 2, 2}},
    {"text_projection", ACEM_DT_F32, 2, {16, 12, 0, 0}},
    {"empty.weight", ACEM_DT_F32, 2, {0, 8, 0, 0}},
    {"score.weight", ACEM_DT_F32, 2, {5, 16, 0, 0}},
    {"position_ids", ACEM_DT_I32, 1, {10, 0, 0, 0}},
};
#define NS (sizeof k_specs / sizeof k_specs[0])
#define NM 4 /* base + 3 experts */

static float *g_data[NM][NS + 1]; /* [NS]: the GGUF files' extra tensor */
static const spec k_gguf_extra = {"blk.2.ffn.weight", ACEM_DT_F32, 2, {8, 64, 0, 0}};


static size_t numel(const spec *s) {
    size_t n = 1, d;
    for (d = 0; d < s->ndim; ++d) n *= (size_t)s->shape[d];
    return n;
}

static void make_data(void) {
    size_t k, m, i;
    for (k = 0; k <= NS; ++k) {
        const spec *s = k < NS ? &k_specs[k] : &k_gguf_extra;
        size_t n = numel(s);
        for (m = 0; m < NM; ++m) g_data[m][k] = (float *)calloc(n ? n : 1, sizeof(float));
        if (s->dtype == ACEM_DT_I32) { /* the same integers everywhere */
            int32_t *v;
            for (m = 0; m < NM; ++m) {
                v = (int32_t *)(void *)g_data[m][k];
                for (i = 0; i < n; ++i) v[i] = (int32_t)(i * 7 + 3);
            }
            continue;
        }
        for (i = 0; i < n; ++i) g_data[0][k][i] = (float)(0.5 * gauss());
        for (m = 1; m < NM; ++m) {
            /* delta: a rank-2 part (different per expert) plus small noise, at an
               expert-specific scale */
            double scale = 0.02 * (double)m;
            size_t R = s->ndim == 2 ? (size_t)s->shape[0] : n, C = s->ndim == 2 ? (size_t)s->shape[1] : 1, r, c, q;
            for (q = 0; q < 2; ++q) {
                double *u = (double *)malloc((R ? R : 1) * sizeof(double)), *v = (double *)malloc((C ? C : 1) * sizeof(double));
                for (r = 0; r < R; ++r) u[r] = gauss();
                for (c = 0; c < C; ++c) v[c] = gauss();
                for (r = 0; r < R; ++r)
                    for (c = 0; c < C; ++c) g_data[m][k][r * C + c] += (float)(scale * u[r] * v[c]);
                free(u);
                free(v);
            }
            for (i = 0; i < n; ++i) g_data[m][k][i] += g_data[0][k][i] + (float)(0.1 * scale * gauss());
        }
    }
}

/* writes the tensors sel[0..n) of model m; dt: the float dtype; tweak:
   0 none, 1 drop "layers.0.mlp.bias", 2 add "extra.weight", 3 "layers.0.attn.weight"
   as [16, 24], 4 "layers.1.mlp.weight" as F16, 5 a NaN in "layers.1.mlp.weight" */
static void write_model(const char *path, size_t m, acem_dtype dt, const size_t *sel, size_t n, int tweak) {
    acem_st_tensor t[NS + 1];
    size_t src[NS + 1], order[NS + 1], k, nt = 0;
    float extra[6] = {1, 2, 3, 4, 5, 6};
    const char *meta[2] = {"generator", "tests/cli_gen.c"};
    acem_write_io io;
    acem_error err;
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    acem_stdio_writer(&io, f, path);
    for (k = 0; k < n; ++k) {
        const spec *s = &k_specs[sel[k]];
        if (tweak == 1 && !strcmp(s->name, "layers.0.mlp.bias")) continue;
        memset(&t[nt], 0, sizeof t[nt]);
        t[nt].name = s->name;
        t[nt].dtype = s->dtype == ACEM_DT_F32 ? dt : s->dtype;
        t[nt].ndim = s->ndim;
        memcpy(t[nt].shape, s->shape, sizeof s->shape);
        if (tweak == 3 && !strcmp(s->name, "layers.0.attn.weight")) { t[nt].shape[0] = 16; t[nt].shape[1] = 24; }
        if (tweak == 4 && !strcmp(s->name, "layers.1.mlp.weight")) t[nt].dtype = ACEM_DT_F16;
        src[nt++] = sel[k];
    }
    if (tweak == 2) {
        memset(&t[nt], 0, sizeof t[nt]);
        t[nt].name = "extra.weight";
        t[nt].dtype = dt;
        t[nt].ndim = 2;
        t[nt].shape[0] = 2;
        t[nt].shape[1] = 3;
        src[nt++] = NS; /* marker */
    }
    if (acem_st_write_header(&io, t, nt, meta, 1, order, NULL, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
    for (k = 0; k < nt; ++k) {
        const acem_st_tensor *x = &t[order[k]];
        const float *d = src[order[k]] == NS ? extra : g_data[m][src[order[k]]];
        float nan_copy[1024];
        acem_result r;
        if (tweak == 5 && !strcmp(x->name, "layers.1.mlp.weight")) { /* one NaN */
            memcpy(nan_copy, d, (size_t)x->numel * sizeof(float));
            nan_copy[7] = (float)NAN;
            d = nan_copy;
        }
        r = x->dtype == ACEM_DT_I32 ? acem_st_write_raw(&io, x, d, &err) : acem_st_write_f32(&io, x, d, &err);
        if (r != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
    }
    if (fclose(f)) { perror(path); exit(1); }
}

/* b's bytes as the file path */
static void gb_save(const gb *b, const char *path) {
    FILE *f;
    if (!(f = fopen(path, "wb")) || fwrite(b->p, 1, b->n, f) != b->n || fclose(f)) { perror(path); exit(1); }
}
/* a GGUF file opened for its pairs (the key/value source of acem_gguf_write_header) */
typedef struct ggfile { acem_st_file f; FILE *fp; void *arena; } ggfile;
static void gg_open(ggfile *g, const char *path) {
    acem_read_io rio;
    acem_error err;
    size_t need;
    if (!(g->fp = fopen(path, "rb")) || acem_stdio_reader(&rio, g->fp, path) != ACEM_OK ||
        acem_st_open_bytes(&rio, &need, &err) != ACEM_OK || !(g->arena = malloc(need)) ||
        acem_st_open(&g->f, &rio, g->arena, need, &err) != ACEM_OK) {
        fprintf(stderr, "%s: cannot read it back\n", path);
        exit(1);
    }
}
static void gg_close(ggfile *g) {
    fclose(g->fp);
    free(g->arena);
}
/* pairs written by gb into dir/.NAME.kv and opened; gg_drop removes the file */
static void gg_template(ggfile *g, const char *dir, const char *name, const gb *b, char *path, size_t cap) {
    snprintf(path, cap, "%s/.%s.kv", dir, name);
    gb_save(b, path);
    gg_open(g, path);
}
static void gg_drop(ggfile *g, const char *path) {
    gg_close(g);
    remove(path);
}

/* kv.gguf: pairs of every kind, for the GGUF models to copy */
static void write_kv_template(const char *path) {
    gb b;
    memset(&b, 0, sizeof b);
    gb_head(&b, 3, 0, 6);
    gb_kv_str(&b, "general.architecture", "test");
    gb_kv_str(&b, "general.name", "cli_gen model");
    gb_kv_int(&b, "test.block_count", 4, 3, 4);
    gb_kv_int(&b, "test.rope.freq_base", 6, 0x461c4000u, 4); /* 10000.0f */
    gb_str(&b, "tokenizer.ggml.tokens");
    gb_le(&b, 9, 4); gb_le(&b, 8, 4); gb_le(&b, 3, 8);
    gb_str(&b, "<s>"); gb_str(&b, "hello"); gb_str(&b, "</s>");
    gb_kv_str(&b, "tokenizer.chat_template", "{% for m in messages %}\n{{ m.content }}{% endfor %}");
    gb_save(&b, path);
    free(b.p);
}

/* a model (data: one array per tensor, k_specs then the extra one) as GGUF
   with kv's pairs; q8: the extra tensor in Q8_0, plus a Q4_K vector (its bytes
   differ by model) and an IQ2_XXS vector (the same in every model) */
static void write_gguf_part(const char *path, float *const *data, const acem_st_file *kv, int q8, size_t lo, size_t hi) {
    acem_st_tensor t[NS + 3];
    size_t src[NS + 3], k, nt = 0;
    unsigned char q4k[144], iq2[66];
    const char *meta[2] = {"generator", "tests/cli_gen.c"};
    acem_write_io io;
    acem_error err;
    uint32_t seed;
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    acem_stdio_writer(&io, f, path);
    for (k = lo; k <= NS + (q8 ? 2u : 0u) && k < hi; ++k) {
        const spec *s = k < NS ? &k_specs[k] : &k_gguf_extra;
        memset(&t[nt], 0, sizeof t[nt]);
        t[nt].name = k <= NS ? s->name : k == NS + 1 ? "blk.2.ffn.q4k" : "blk.2.ffn.iq2";
        t[nt].dtype = k < NS ? s->dtype : k == NS ? (q8 ? ACEM_DT_Q8_0 : s->dtype) : k == NS + 1 ? ACEM_DT_Q4_K : ACEM_DT_IQ2_XXS;
        t[nt].ndim = k > NS ? 1 : s->ndim;
        memcpy(t[nt].shape, s->shape, sizeof s->shape);
        if (k > NS) t[nt].shape[0] = 256;
        src[nt++] = k;
    }
    memcpy(&seed, data[NS], 4); /* the model's own Q4_K bytes: scales d, dmin small, the rest any */
    for (k = 0; k < sizeof q4k; ++k) q4k[k] = (unsigned char)((k * 11 + 5) ^ (seed >> (k % 4 * 8)));
    {
        uint16_t d = acem_f32_to_f16(0.01f + (float)(seed % 7) * 0.002f), dm = acem_f32_to_f16(0.005f);
        q4k[0] = (unsigned char)d; q4k[1] = (unsigned char)(d >> 8);
        q4k[2] = (unsigned char)dm; q4k[3] = (unsigned char)(dm >> 8);
    }
    for (k = 0; k < sizeof iq2; ++k) iq2[k] = (unsigned char)(k * 7 + 1);
    if (acem_gguf_write_header(&io, kv, t, nt, meta, 1, 0, NULL, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
    for (k = 0; k < nt; ++k) {
        acem_result r = t[k].dtype == ACEM_DT_Q4_K ? acem_st_write_raw(&io, &t[k], q4k, &err)
                        : t[k].dtype == ACEM_DT_IQ2_XXS ? acem_st_write_raw(&io, &t[k], iq2, &err)
                        : t[k].dtype == ACEM_DT_I32 ? acem_st_write_raw(&io, &t[k], data[src[k]], &err)
                                                    : acem_st_write_f32(&io, &t[k], data[src[k]], &err);
        if (r != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
    }
    if (fclose(f)) { perror(path); exit(1); }
}

static void write_gguf(const char *path, float *const *data, const acem_st_file *kv, int q8) {
    write_gguf_part(path, data, kv, q8, 0, (size_t)-1);
}

/* model m split by llama-gguf-split's rules into 2 parts: the first with the
   model's pairs, both with split.no / split.count / split.tensors.count */
static void write_gguf_split(const char *dir, const char *name, float *const *data) {
    ggfile t;
    char path[1024], tpath[1024];
    int part;
    for (part = 0; part < 2; ++part) {
        gb b;
        memset(&b, 0, sizeof b);
        gb_head(&b, 3, 0, part ? 3 : 5);
        if (!part) {
            gb_kv_str(&b, "general.architecture", "test");
            gb_kv_str(&b, "general.name", "cli_gen model");
        }
        gb_kv_int(&b, "split.no", 2, (uint64_t)part, 2);
        gb_kv_int(&b, "split.count", 2, 2, 2);
        gb_kv_int(&b, "split.tensors.count", 5, NS + 1, 4);
        gg_template(&t, dir, name, &b, tpath, sizeof tpath);
        snprintf(path, sizeof path, "%s/%s-%05d-of-00002.gguf", dir, name, part + 1);
        write_gguf_part(path, data, &t.f, 0, part ? 6 : 0, part ? (size_t)-1 : 6);
        gg_drop(&t, tpath);
        free(b.p);
    }
}

/* a GGUF LoRA adapter of base.gguf and its dense checkpoint */
static void write_gguf_lora(const char *dir, const char *name, unsigned rank, float alpha, acem_dtype dt, int bad,
                            const acem_st_file *model_kv) {
    static const char *const targets[2] = {"layers.0.attn.weight", "blk.2.ffn.weight"};
    static const size_t tidx[2] = {0, NS};
    char path[1024], tpath[1024], an[2][64], bn[2][64];
    float *f[4], *dense[2];
    acem_st_tensor t[4];
    acem_write_io io;
    acem_error err;
    ggfile kv;
    size_t k, i, j, q;
    gb b;
    double scale = alpha != 0 ? alpha / rank : 1.0;
    uint32_t ab;
    /* the pairs, through a template file */
    memcpy(&ab, &alpha, 4);
    memset(&b, 0, sizeof b);
    gb_head(&b, 3, 0, 5);
    gb_kv_str(&b, "general.architecture", "test");
    gb_kv_str(&b, "general.type", "adapter");
    gb_kv_str(&b, "general.name", name);
    gb_kv_str(&b, "adapter.type", "lora");
    gb_kv_int(&b, "adapter.lora.alpha", 6, ab, 4);
    gg_template(&kv, dir, name, &b, tpath, sizeof tpath);
    for (k = 0; k < 2; ++k) {
        const spec *s = tidx[k] < NS ? &k_specs[tidx[k]] : &k_gguf_extra;
        size_t R = (size_t)s->shape[0], C = (size_t)s->shape[1];
        float *A = f[2 * k] = (float *)calloc(rank * C, sizeof(float)), *B = f[2 * k + 1] = (float *)calloc(R * rank, sizeof(float));
        for (i = 0; i < rank * C; ++i) A[i] = (float)(0.3 * gauss());
        for (i = 0; i < R * rank; ++i) B[i] = (float)(0.05 * gauss());
        if (dt == ACEM_DT_F16) { /* the values the file will hold */
            for (i = 0; i < rank * C; ++i) A[i] = acem_f16_to_f32(acem_f32_to_f16(A[i]));
            for (i = 0; i < R * rank; ++i) B[i] = acem_f16_to_f32(acem_f32_to_f16(B[i]));
        }
        dense[k] = (float *)malloc(R * C * sizeof(float));
        for (i = 0; i < R; ++i)
            for (j = 0; j < C; ++j) {
                double d = 0;
                for (q = 0; q < rank; ++q) d += (double)B[i * rank + q] * A[q * C + j];
                dense[k][i * C + j] = (float)((double)g_data[0][tidx[k]][i * C + j] + scale * d);
            }
        snprintf(an[k], sizeof an[k], "%s.lora_a", targets[k]);
        snprintf(bn[k], sizeof bn[k], "%s.lora_b", targets[k]);
        memset(&t[2 * k], 0, 2 * sizeof t[0]);
        t[2 * k].name = an[k]; t[2 * k].dtype = dt; t[2 * k].ndim = 2; t[2 * k].shape[0] = rank; t[2 * k].shape[1] = C;
        t[2 * k + 1].name = bn[k]; t[2 * k + 1].dtype = dt; t[2 * k + 1].ndim = 2; t[2 * k + 1].shape[0] = R; t[2 * k + 1].shape[1] = rank;
    }
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    {
        FILE *o = fopen(path, "wb");
        size_t nt = bad ? 3 : 4;
        if (!o) { perror(path); exit(1); }
        acem_stdio_writer(&io, o, path);
        if (acem_gguf_write_header(&io, &kv.f, t, nt, NULL, 0, 0, NULL, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
        for (k = 0; k < nt; ++k)
            if (acem_st_write_f32(&io, &t[k], f[k], &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
        if (fclose(o)) { perror(path); exit(1); }
    }
    gg_drop(&kv, tpath);
    free(b.p);
    if (!bad) { /* the dense checkpoint: base.gguf's pairs and tensors, the two targets changed */
        float *d[NS + 1];
        for (k = 0; k <= NS; ++k) d[k] = g_data[0][k];
        d[tidx[0]] = dense[0];
        d[tidx[1]] = dense[1];
        snprintf(path, sizeof path, "%s/%s_dense.gguf", dir, name);
        write_gguf(path, d, model_kv, 0);
    }
    for (k = 0; k < 4; ++k) free(f[k]);
    free(dense[0]);
    free(dense[1]);
}

/* the tiny llama: its pairs and tensors (dims in ggml's order), written with gb */
static void write_tiny(const char *dir, const char *name, int m) {
    enum { V = 32, E = 64, F = 128, L = 2, H = 4 };
    static const char *const kinds[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                                         "ffn_down", "ffn_up"};
    char nm[3 + 9 * L][48], path[1024], tok[16];
    uint64_t ne[3 + 9 * L][2], off = 0;
    uint32_t nd[3 + 9 * L], f32;
    size_t nt = 0, k, i;
    float eps = 1e-5f;
    gb b;
    memset(&b, 0, sizeof b);
    gb_head(&b, 3, 3 + 9 * L, 15);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_kv_str(&b, "general.name", name);
    gb_kv_int(&b, "llama.context_length", 4, 128, 4);
    gb_kv_int(&b, "llama.embedding_length", 4, E, 4);
    gb_kv_int(&b, "llama.block_count", 4, L, 4);
    gb_kv_int(&b, "llama.feed_forward_length", 4, F, 4);
    gb_kv_int(&b, "llama.attention.head_count", 4, H, 4);
    gb_kv_int(&b, "llama.attention.head_count_kv", 4, H, 4);
    memcpy(&f32, &eps, 4);
    gb_kv_int(&b, "llama.attention.layer_norm_rms_epsilon", 6, f32, 4);
    gb_kv_int(&b, "llama.rope.dimension_count", 4, E / H, 4);
    gb_kv_str(&b, "tokenizer.ggml.model", "llama");
    gb_str(&b, "tokenizer.ggml.tokens"); gb_le(&b, 9, 4); gb_le(&b, 8, 4); gb_le(&b, V, 8);
    for (k = 0; k < V; ++k) {
        if (k < 3) gb_str(&b, k == 0 ? "<unk>" : k == 1 ? "<s>" : "</s>");
        else { snprintf(tok, sizeof tok, "\xe2\x96\x81t%zu", k); gb_str(&b, tok); }
    }
    gb_str(&b, "tokenizer.ggml.scores"); gb_le(&b, 9, 4); gb_le(&b, 6, 4); gb_le(&b, V, 8);
    for (k = 0; k < V; ++k) gb_le(&b, 0, 4);
    gb_str(&b, "tokenizer.ggml.token_type"); gb_le(&b, 9, 4); gb_le(&b, 5, 4); gb_le(&b, V, 8);
    for (k = 0; k < V; ++k) gb_le(&b, k == 0 ? 2 : k < 3 ? 3 : 1, 4);
    gb_kv_int(&b, "general.file_type", 4, 0, 4);
    snprintf(nm[nt], sizeof nm[nt], "token_embd.weight"); nd[nt] = 2; ne[nt][0] = E; ne[nt][1] = V; ++nt;
    snprintf(nm[nt], sizeof nm[nt], "output_norm.weight"); nd[nt] = 1; ne[nt][0] = E; ne[nt][1] = 1; ++nt;
    snprintf(nm[nt], sizeof nm[nt], "output.weight"); nd[nt] = 2; ne[nt][0] = E; ne[nt][1] = V; ++nt;
    for (i = 0; i < L; ++i)
        for (k = 0; k < 9; ++k) {
            snprintf(nm[nt], sizeof nm[nt], "blk.%zu.%s.weight", i, kinds[k]);
            nd[nt] = k == 0 || k == 5 ? 1 : 2;
            ne[nt][0] = k == 7 ? F : E;
            ne[nt][1] = k == 0 || k == 5 ? 1 : k == 6 || k == 8 ? F : E;
            ++nt;
        }
    for (k = 0; k < nt; ++k) {
        gb_info(&b, nm[k], nd[k], ne[k], 0, off);
        off += (ne[k][0] * ne[k][1] * 4 + 31) / 32 * 32;
    }
    gb_pad(&b, 32);
    g_rng = 0x7153;
    for (k = 0; k < nt; ++k) {
        size_t n = (size_t)(ne[k][0] * ne[k][1]);
        int norm = nd[k] == 1;
        for (i = 0; i < n; ++i) {
            float v = norm ? 1.0f : (float)(0.1 * gauss()), noise = (float)(0.01 * m * gauss());
            v += m ? noise : 0.0f;
            gb_put(&b, &v, 4);
        }
        gb_pad(&b, 32);
    }
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    gb_save(&b, path);
    free(b.p);
}
/* a GGUF LoRA adapter of the tiny llama on blk.0.attn_q and blk.1.ffn_up */
static void write_tiny_lora(const char *dir, const char *name, unsigned r) {
    static const char *const t[2] = {"blk.0.attn_q.weight", "blk.1.ffn_up.weight"};
    static const uint64_t in[2] = {64, 64}, out[2] = {64, 128};
    char nm[48], path[1024];
    uint64_t ne[2], off = 0;
    size_t k, i;
    float alpha = 8.0f;
    uint32_t a32;
    gb b;
    memcpy(&a32, &alpha, 4);
    memset(&b, 0, sizeof b);
    gb_head(&b, 3, 4, 4);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_kv_str(&b, "general.type", "adapter");
    gb_kv_str(&b, "adapter.type", "lora");
    gb_kv_int(&b, "adapter.lora.alpha", 6, a32, 4);
    for (k = 0; k < 2; ++k) {
        snprintf(nm, sizeof nm, "%s.lora_a", t[k]); ne[0] = in[k]; ne[1] = r; gb_info(&b, nm, 2, ne, 0, off);
        off += (in[k] * r * 4 + 31) / 32 * 32;
        snprintf(nm, sizeof nm, "%s.lora_b", t[k]); ne[0] = r; ne[1] = out[k]; gb_info(&b, nm, 2, ne, 0, off);
        off += (out[k] * r * 4 + 31) / 32 * 32;
    }
    gb_pad(&b, 32);
    g_rng = 0x10a + r;
    for (k = 0; k < 2; ++k) {
        size_t n[2] = {(size_t)(in[k] * r), (size_t)(out[k] * r)}, j;
        for (j = 0; j < 2; ++j) {
            for (i = 0; i < n[j]; ++i) {
                float v = (float)((j ? 0.02 : 0.2) * gauss());
                gb_put(&b, &v, 4);
            }
            gb_pad(&b, 32);
        }
    }
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    gb_save(&b, path);
    free(b.p);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) { perror(path); exit(1); }
}

/* the model as 3 shards + index in dir (which must exist) */
static void write_sharded(const char *dir, size_t m, int bad_index) {
    size_t sel[3][NS], ns[3] = {0, 0, 0}, k, s;
    char path[1024], idx[8192];
    size_t o = 0;
    for (k = 0; k < NS; ++k) sel[k % 3][ns[k % 3]++] = k;
    for (s = 0; s < 3; ++s) {
        snprintf(path, sizeof path, "%s/model-%05zu-of-00003.safetensors", dir, s + 1);
        write_model(path, m, ACEM_DT_F32, sel[s], ns[s], 0);
    }
    o += (size_t)snprintf(idx + o, sizeof idx - o, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (k = 0; k < NS; ++k)
        o += (size_t)snprintf(idx + o, sizeof idx - o, "%s\"%s\": \"model-%05zu-of-00003.safetensors\"", k ? ", " : "",
                              k_specs[k].name, k % 3 + 1);
    if (bad_index) o += (size_t)snprintf(idx + o, sizeof idx - o, ", \"ghost.weight\": \"model-00001-of-00003.safetensors\"");
    snprintf(idx + o, sizeof idx - o, "}}\n");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_text(path, idx);
}

/* DIR/PREFIX_base, _e1, _e2 .safetensors with the F32 tensors t[0..nt) (shapes
   set): the base's values uniform in [-0.25, 0.25), the experts' that plus
   noise of 0.01 m; v: room for the largest tensor */
static void write_trio(const char *dir, const char *prefix, acem_st_tensor *t, size_t nt, uint64_t seed, float *v) {
    size_t order[32], k, m, i;
    for (m = 0; m < 3; ++m) {
        char path[1024];
        acem_write_io io;
        acem_error err;
        FILE *f;
        snprintf(path, sizeof path, "%s/%s_%s.safetensors", dir, prefix, m ? (m == 1 ? "e1" : "e2") : "base");
        if (!(f = fopen(path, "wb"))) { perror(path); exit(1); }
        acem_stdio_writer(&io, f, path);
        if (acem_st_write_header(&io, t, nt, NULL, 0, order, NULL, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
        for (k = 0; k < nt; ++k) {
            const acem_st_tensor *tk = &t[order[k]];
            size_t n = (size_t)tk->shape[0] * (tk->ndim > 1 ? (size_t)tk->shape[1] : 1);
            g_rng = seed + order[k]; /* the base's values, then the expert's noise on them */
            for (i = 0; i < n; ++i) v[i] = (float)(0.5 * (uniform() - 0.5));
            if (m)
                for (g_rng += 1000 * m, i = 0; i < n; ++i) v[i] += (float)(0.01 * (double)m * (uniform() - 0.5));
            if (acem_st_write_f32(&io, tk, v, &err) != ACEM_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
        }
        if (fclose(f)) { perror(path); exit(1); }
    }
}
static void f32_tensor(acem_st_tensor *t, const char *name, size_t rows, size_t cols) {
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = ACEM_DT_F32;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
}

/* cli_gen --slow: base + 2 experts of 24 matrices 64 x 3072 (base + noise) */
static void write_slow(const char *dir) {
    enum { NT = 24 };
    static float v[64 * 3072];
    static char names[NT][32];
    acem_st_tensor t[NT];
    size_t k;
    for (k = 0; k < NT; ++k) {
        snprintf(names[k], sizeof names[k], "slow.%zu.weight", k);
        f32_tensor(&t[k], names[k], 64, 3072);
    }
    write_trio(dir, "slow", t, NT, 0x243F6A8885A308D3ull, v);
}
/* cli_gen --big: base + 2 experts whose F32 tensors span several of the CLI's
   1 MiB read pieces, the last one partial: a 700 x 1000 matrix (ACE) and a
   1-D tensor of 300,001 */
static void write_big(const char *dir) {
    static float v[700 * 1000];
    acem_st_tensor t[2];
    f32_tensor(&t[0], "big.0.weight", 700, 1000);
    f32_tensor(&t[1], "big.1.bias", 300001, 0);
    write_trio(dir, "big", t, 2, 0x13198A2E03707344ull, v);
}

int main(int argc, char **argv) {
    char p[1024];
    size_t all[NS], k, m;
    static const char *const mname[NM] = {"base", "e1", "e2", "e3"};
    if (argc == 3 && !strcmp(argv[1], "--slow")) {
        write_slow(argv[2]);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--big")) {
        write_big(argv[2]);
        return 0;
    }
    if (argc != 2) { fprintf(stderr, "usage: cli_gen DIR | cli_gen --slow DIR | cli_gen --big DIR\n"); return 1; }
    for (k = 0; k < NS; ++k) all[k] = k;
    make_data();
    for (m = 0; m < NM; ++m) {
        snprintf(p, sizeof p, "%s/%s.safetensors", argv[1], mname[m]);
        write_model(p, m, ACEM_DT_F32, all, NS, 0);
        snprintf(p, sizeof p, "%s/%s_f16.safetensors", argv[1], mname[m]);
        write_model(p, m, ACEM_DT_F16, all, NS, 0);
        snprintf(p, sizeof p, "%s/%s_bf16.safetensors", argv[1], mname[m]);
        write_model(p, m, ACEM_DT_BF16, all, NS, 0);
        snprintf(p, sizeof p, "%s/sharded", argv[1]);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/sharded/%s", argv[1], mname[m]);
        mkdir(p, 0755);
        write_sharded(p, m, 0);
    }
    snprintf(p, sizeof p, "%s/single", argv[1]);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/single/base", argv[1]);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/single/base/model.safetensors", argv[1]);
    write_model(p, 0, ACEM_DT_F32, all, NS, 0);
    snprintf(p, sizeof p, "%s/sharded_bad", argv[1]);
    mkdir(p, 0755);
    write_sharded(p, 0, 1);
    snprintf(p, sizeof p, "%s/e_missing.safetensors", argv[1]);
    write_model(p, 1, ACEM_DT_F32, all, NS, 1);
    snprintf(p, sizeof p, "%s/e_extra.safetensors", argv[1]);
    write_model(p, 1, ACEM_DT_F32, all, NS, 2);
    snprintf(p, sizeof p, "%s/e_shape.safetensors", argv[1]);
    write_model(p, 1, ACEM_DT_F32, all, NS, 3);
    snprintf(p, sizeof p, "%s/e_dtype.safetensors", argv[1]);
    write_model(p, 1, ACEM_DT_F32, all, NS, 4);
    snprintf(p, sizeof p, "%s/e_nan.safetensors", argv[1]);
    write_model(p, 1, ACEM_DT_F32, all, NS, 5);
    snprintf(p, sizeof p, "%s/kv.gguf", argv[1]);
    write_kv_template(p);
    {
        ggfile kv;
        gg_open(&kv, p);
        for (m = 0; m < NM; ++m) {
            snprintf(p, sizeof p, "%s/%s.gguf", argv[1], mname[m]);
            write_gguf(p, g_data[m], &kv.f, 0);
            snprintf(p, sizeof p, "%s/%s_q8.gguf", argv[1], mname[m]);
            write_gguf(p, g_data[m], &kv.f, 1);
        }
        write_gguf_lora(argv[1], "lora1", 4, 16.0f, ACEM_DT_F32, 0, &kv.f);
        write_gguf_lora(argv[1], "lora2", 2, 0.0f, ACEM_DT_F16, 0, &kv.f);
        write_gguf_lora(argv[1], "lora_bad", 2, 8.0f, ACEM_DT_F32, 1, &kv.f);
        gg_close(&kv);
    }
    write_gguf_split(argv[1], "base_split", g_data[0]);
    write_gguf_split(argv[1], "e1_split", g_data[1]);
    write_gguf_split(argv[1], "e2_split", g_data[2]);
    write_tiny(argv[1], "tiny_base", 0);
    write_tiny(argv[1], "tiny_e1", 1);
    write_tiny(argv[1], "tiny_e2", 2);
    write_tiny_lora(argv[1], "tiny_lora1", 4);
    write_tiny_lora(argv[1], "tiny_lora2", 2);
    { /* llama-gguf-split's pairs on a part without tensors */
        gb b;
        memset(&b, 0, sizeof b);
        gb_head(&b, 3, 0, 4);
        gb_kv_str(&b, "general.architecture", "test");
        gb_kv_int(&b, "split.no", 2, 0, 2);
        gb_kv_int(&b, "split.count", 2, 3, 2);
        gb_kv_int(&b, "split.tensors.count", 5, 11, 4);
        snprintf(p, sizeof p, "%s/split.gguf", argv[1]);
        gb_save(&b, p);
        free(b.p);
    }
    return 0;
}
