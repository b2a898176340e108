/* tests/test_gguf.c - the GGUF layer of acem: files built byte by byte here
   (independently of acem's writer) are read back through acem_st_open; every
   key/value type and its text; shapes (ggml's dims reversed); the
   dequantization of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 against decoders written
   here from the block layouts; the writer (verbatim copies of the source's
   pairs, overrides, alignment, padding, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1
   quantization against ggml's reference rules); a corpus of malformed files, one per rejection rule; every
   truncation, read failure and single-byte mutation of a small file; the
   arena contract.
   Build: cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Itests -o /tmp/tg \
              tests/test_gguf.c -lm */
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "testing.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memio.h"

#include "gguf_build.h"

static uint16_t f16_bits(float x) { return acem_f32_to_f16(x); }

/* ---- independent decoders of the 32-value blocks ---------------------------------
   Element i of a block: low nibble of qs[i] for i < 16, high nibble of
   qs[i - 16] otherwise; for Q5 the fifth bit is bit i of the 32-bit qh. */
static float ref_block(int type, const unsigned char *b, int i) {
    float d = ref_f16((unsigned)(b[0] | (b[1] << 8))), m;
    const unsigned char *qs;
    int q;
    switch (type) {
    case 8: return (float)(int8_t)b[2 + i] * d;
    case 2: q = i < 16 ? (b[2 + i] & 15) : (b[2 + i - 16] >> 4); return (float)(q - 8) * d;
    case 3:
        m = ref_f16((unsigned)(b[2] | (b[3] << 8)));
        q = i < 16 ? (b[4 + i] & 15) : (b[4 + i - 16] >> 4);
        return (float)q * d + m;
    case 6:
    case 7: {
        uint32_t qh;
        int hi;
        qs = b + (type == 6 ? 6 : 8);
        memcpy(&qh, qs - 4, 4); /* little-endian host (x86, wasm) */
        hi = (int)((qh >> i) & 1u);
        q = (i < 16 ? (qs[i] & 15) : (qs[i - 16] >> 4)) | (hi << 4);
        if (type == 6) return (float)(q - 16) * d;
        m = ref_f16((unsigned)(b[2] | (b[3] << 8)));
        return (float)q * d + m;
    }
    }
    return NAN;
}
static size_t block_bytes(int type) { return type == 2 ? 18 : type == 3 ? 20 : type == 6 ? 22 : type == 7 ? 24 : 34; }
/* random bytes, with finite f16 scales */
static void rnd_block(int type, unsigned char *b) {
    size_t k, n = block_bytes(type);
    for (k = 0; k < n; ++k) b[k] = (unsigned char)rnd_u64();
    {
        uint16_t d = f16_bits((float)((double)(rnd_u64() % 2001) / 1000.0 - 1.0) * 0.05f);
        uint16_t m = f16_bits((float)((double)(rnd_u64() % 2001) / 1000.0 - 1.0) * 0.5f);
        b[0] = (unsigned char)d; b[1] = (unsigned char)(d >> 8);
        if (type == 3 || type == 7) { b[2] = (unsigned char)m; b[3] = (unsigned char)(m >> 8); }
    }
}

/* opens b as a file named "t.gguf"; expects success */
static int open_ok(opened *o, const gb *b, const char *what) {
    acem_error err;
    acem_result r = open_mem(o, b->p, b->n, "t.gguf", &err);
    CHECK(r == ACEM_OK, "%s: open: %s", what, err.message);
    return r == ACEM_OK;
}

/* ---- every key/value type, shapes, dequantization -------------------------------- */
static void test_read(void) {
    gb b;
    opened o;
    static const uint64_t ne_w[2] = {64, 3}, ne_v[1] = {5}, ne_s[1] = {256};
    unsigned char qk[66];
    float w32[5] = {1.5f, -2.25f, 0.0f, 1e-3f, 3e4f};
    int types[5] = {2, 3, 6, 7, 8}, ti;
    char name[16];
    size_t k, j;
    memset(&b, 0, sizeof b);
    gb_head(&b, 3, 7, 16);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_kv_int(&b, "u8", 0, 200, 1);
    gb_kv_int(&b, "i8", 1, (uint8_t)-5, 1);
    gb_kv_int(&b, "u16", 2, 65535, 2);
    gb_kv_int(&b, "i16", 3, (uint16_t)-300, 2);
    gb_kv_int(&b, "u32", 4, 4000000000u, 4);
    gb_kv_int(&b, "i32", 5, (uint32_t)-70000, 4);
    {
        float f = 1.5f;
        uint32_t u;
        memcpy(&u, &f, 4);
        gb_kv_int(&b, "f32", 6, u, 4);
    }
    gb_kv_int(&b, "bool", 7, 1, 1);
    gb_kv_int(&b, "u64", 10, 18446744073709551615ull, 8);
    gb_kv_int(&b, "i64", 11, (uint64_t)-9000000000ll, 8);
    {
        double x = -0.125;
        uint64_t u;
        memcpy(&u, &x, 8);
        gb_kv_int(&b, "f64", 12, u, 8);
    }
    gb_str(&b, "tokens"); gb_le(&b, 9, 4); gb_le(&b, 8, 4); gb_le(&b, 3, 8);
    gb_str(&b, "a"); gb_str(&b, ""); gb_str(&b, "ccc");
    gb_str(&b, "ints"); gb_le(&b, 9, 4); gb_le(&b, 5, 4); gb_le(&b, 2, 8); gb_le(&b, 7, 4); gb_le(&b, 8, 4);
    gb_str(&b, "empty"); gb_le(&b, 9, 4); gb_le(&b, 12, 4); gb_le(&b, 0, 8);
    gb_kv_int(&b, "general.alignment", 4, 64, 4);
    /* tensors: a 3 x 64 matrix of each block type (2 blocks a row), an IQ2_XXS vector */
    {
        uint64_t off = 0;
        gb_info(&b, "v.f32", 1, ne_v, 0, off); off += 64; /* 20 bytes, padded to 64 */
        for (ti = 0; ti < 5; ++ti) {
            snprintf(name, sizeof name, "w.%d", types[ti]);
            gb_info(&b, name, 2, ne_w, (uint32_t)types[ti], off);
            off += (6 * block_bytes(types[ti]) + 63) / 64 * 64;
        }
        gb_info(&b, "k.iq2", 1, ne_s, 16, off);
    }
    gb_pad(&b, 64);
    gb_put(&b, w32, 20);
    gb_pad(&b, 64);
    g_rng = 7;
    for (ti = 0; ti < 5; ++ti) {
        unsigned char blk[36];
        for (k = 0; k < 6; ++k) {
            rnd_block(types[ti], blk);
            gb_put(&b, blk, block_bytes(types[ti]));
        }
        gb_pad(&b, 64);
    }
    for (k = 0; k < sizeof qk; ++k) qk[k] = (unsigned char)(k * 7);
    gb_put(&b, qk, sizeof qk);
    if (!open_ok(&o, &b, "all types")) { free(b.p); return; }
    {
        const acem_st_file *f = &o.f;
        static const char *const want[][2] = {
            {"general.architecture", "llama"}, {"u8", "200"}, {"i8", "-5"}, {"u16", "65535"}, {"i16", "-300"},
            {"u32", "4000000000"}, {"i32", "-70000"}, {"f32", "1.5"}, {"bool", "true"}, {"u64", "18446744073709551615"},
            {"i64", "-9000000000"}, {"f64", "-0.125"}, {"tokens", "[3 x STRING]"}, {"ints", "[2 x INT32]"},
            {"empty", "[0 x FLOAT64]"}, {"general.alignment", "64"}};
        CHECK(f->format == ACEM_FORMAT_GGUF && f->gguf_version == 3 && f->alignment == 64, "format %d version %u align %u",
              (int)f->format, f->gguf_version, f->alignment);
        CHECK(f->n_kv == 16 && f->n_meta == 16 && f->n_tensors == 7, "counts %zu %zu %zu", f->n_kv, f->n_meta, f->n_tensors);
        for (k = 0; k < 16 && k < f->n_kv; ++k) {
            const char *v = acem_st_meta(f, want[k][0]);
            CHECK(!strcmp(f->kv[k].key, want[k][0]), "kv %zu in file order: %s", k, f->kv[k].key);
            CHECK(v && !strcmp(v, want[k][1]), "value of %s: %s (want %s)", want[k][0], v ? v : "(none)", want[k][1]);
        }
        CHECK(f->kv[12].type == 9 && f->kv[0].type == 8, "kv types %u %u", f->kv[12].type, f->kv[0].type);
        /* a pair's span: key length at begin, the next pair right after end */
        CHECK(get_u64(b.p + f->kv[0].begin) == strlen("general.architecture") && f->kv[1].begin == f->kv[0].end,
              "kv spans %llu..%llu", (unsigned long long)f->kv[0].begin, (unsigned long long)f->kv[0].end);
        CHECK(f->data_start % 64 == 0 && f->data_start == f->header_len, "data start %llu", (unsigned long long)f->data_start);
        /* sorted by name; shapes reversed */
        for (k = 1; k < f->n_tensors; ++k)
            CHECK(strcmp(f->tensors[k - 1].name, f->tensors[k].name) < 0, "sorted at %zu", k);
        {
            const acem_st_tensor *v = acem_st_find(f, "v.f32"), *w = acem_st_find(f, "w.8"), *kq = acem_st_find(f, "k.iq2");
            float out[256];
            acem_error err;
            CHECK(v && v->dtype == ACEM_DT_F32 && v->ndim == 1 && v->shape[0] == 5 && v->begin == 0 && v->end == 20, "v.f32");
            CHECK(w && w->dtype == ACEM_DT_Q8_0 && w->ndim == 2 && w->shape[0] == 3 && w->shape[1] == 64 && w->numel == 192 &&
                      w->end - w->begin == 6 * 34, "w.8 shape and size");
            CHECK(kq && kq->dtype == ACEM_DT_IQ2_XXS && kq->end - kq->begin == 66, "k.iq2");
            if (v && acem_st_read_f32(f, v, out, &err) == ACEM_OK) CHECK(!memcmp(out, w32, 20), "f32 values");
            else CHECK(0, "read v.f32: %s", err.message);
            if (kq) {
                unsigned char raw[66];
                CHECK(acem_st_read_raw(f, kq, raw, &err) == ACEM_OK && !memcmp(raw, qk, 66), "raw IQ2_XXS");
                CHECK(acem_st_read_f32(f, kq, out, &err) == ACEM_ERR_FORMAT && strstr(err.message, "k.iq2") &&
                          strstr(err.message, "IQ2_XXS") && strstr(err.message, "t.gguf"),
                      "IQ2_XXS as f32 refused: %s", err.message);
            }
            /* every block type against the decoder above */
            for (ti = 0; ti < 5; ++ti) {
                const acem_st_tensor *t;
                float *y = (float *)calloc(192, sizeof(float));
                snprintf(name, sizeof name, "w.%d", types[ti]);
                t = acem_st_find(f, name);
                CHECK(t && acem_st_read_f32(f, t, y, &err) == ACEM_OK, "read %s", name);
                if (t) {
                    size_t bad = 0;
                    unsigned char *raw = (unsigned char *)malloc((size_t)(t->end - t->begin));
                    acem_st_read_raw(f, t, raw, &err);
                    for (k = 0; k < 6; ++k)
                        for (j = 0; j < 32; ++j)
                            bad += !same_f(y[32 * k + j], ref_block(types[ti], raw + k * block_bytes(types[ti]), (int)j));
                    CHECK(bad == 0, "%s (%s): %zu of 192 values differ from the block decoder", name,
                          acem_dtype_name(t->dtype), bad);
                    free(raw);
                }
                free(y);
            }
        }
    }
    close_mem(&o);
    free(b.p);
}

/* random blocks of every dequantized type, many tensors, against the decoder */
static void test_dequant_random(void) {
    int types[5] = {2, 3, 6, 7, 8}, ti, rep;
    g_rng = 99;
    for (ti = 0; ti < 5; ++ti)
        for (rep = 0; rep < 20; ++rep) {
            gb b;
            opened o;
            size_t nb = 1 + rnd_u64() % 40, k, j, bad = 0, bs = block_bytes(types[ti]);
            uint64_t ne[2];
            unsigned char *blocks = (unsigned char *)malloc(nb * bs);
            float *y = (float *)malloc(nb * 32 * sizeof(float));
            acem_error err;
            ne[0] = 32; ne[1] = nb;
            memset(&b, 0, sizeof b);
            gb_head(&b, rep % 2 ? 2 : 3, 1, 0);
            gb_info(&b, "x", 2, ne, (uint32_t)types[ti], 0);
            gb_pad(&b, 32);
            for (k = 0; k < nb; ++k) {
                rnd_block(types[ti], blocks + k * bs);
                if (rep == 0 && k == 0) memset(blocks + 2, 0xff, bs - 2); /* extreme quants */
            }
            gb_put(&b, blocks, nb * bs);
            if (open_ok(&o, &b, "random blocks")) {
                CHECK(o.f.gguf_version == (rep % 2 ? 2u : 3u), "version");
                if (acem_st_read_f32(&o.f, &o.f.tensors[0], y, &err) == ACEM_OK) {
                    for (k = 0; k < nb; ++k)
                        for (j = 0; j < 32; ++j) bad += !same_f(y[32 * k + j], ref_block(types[ti], blocks + k * bs, (int)j));
                    CHECK(bad == 0, "type %d, %zu blocks: %zu values differ", types[ti], nb, bad);
                } else
                    CHECK(0, "read: %s", err.message);
                close_mem(&o);
            }
            free(blocks);
            free(y);
            free(b.p);
        }
}

/* ---- the writer ------------------------------------------------------------------- */
/* ggml's quantize_row_q8_0_ref, with libm's roundf */
static void ref_q8_0(const float *x, unsigned char *b) {
    float amax = 0, d, id;
    int j;
    uint16_t h;
    for (j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
    d = amax / 127.0f;
    id = d ? 1.0f / d : 0.0f;
    h = f16_bits(d);
    b[0] = (unsigned char)h; b[1] = (unsigned char)(h >> 8);
    for (j = 0; j < 32; ++j) b[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
}

/* ggml's quantize_row_{q4_0,q4_1,q5_0,q5_1}_ref (type ids 2, 3, 6, 7) */
static void ref_q45(int type, const float *x, unsigned char *b) {
    int five = type == 6 || type == 7, minf = type == 3 || type == 7, j;
    float amax = 0, max = 0, min = 3.4e38f, hi = -3.4e38f, d, id;
    uint32_t qh = 0;
    unsigned char *qs = b + (minf ? 4 : 2) + (five ? 4 : 0);
    uint16_t h;
    for (j = 0; j < 32; ++j) {
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        if (x[j] < min) min = x[j];
        if (x[j] > hi) hi = x[j];
    }
    d = minf ? (hi - min) / (five ? 31.0f : 15.0f) : max / (five ? -16.0f : -8.0f);
    id = d ? 1.0f / d : 0.0f;
    h = f16_bits(d);
    b[0] = (unsigned char)h; b[1] = (unsigned char)(h >> 8);
    if (minf) { h = f16_bits(min); b[2] = (unsigned char)h; b[3] = (unsigned char)(h >> 8); }
    for (j = 0; j < 16; ++j) {
        float x0 = minf ? (x[j] - min) * id : x[j] * id, x1 = minf ? (x[16 + j] - min) * id : x[16 + j] * id;
        int q0, q1;
        if (type == 7) {
            q0 = (uint8_t)(x0 + 0.5f);
            q1 = (uint8_t)(x1 + 0.5f);
        } else {
            float off = minf ? 0.5f : five ? 16.5f : 8.5f;
            int top = five ? 31 : 15;
            q0 = (int8_t)(x0 + off);
            q1 = (int8_t)(x1 + off);
            q0 = q0 < top ? q0 : top;
            q1 = q1 < top ? q1 : top;
        }
        qs[j] = (unsigned char)((q0 & 15) | ((q1 & 15) << 4));
        qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
        qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + 16);
    }
    if (five)
        for (j = 0; j < 4; ++j) b[(minf ? 4 : 2) + j] = (unsigned char)(qh >> (8 * j));
}

/* the writer's Q4_0, Q4_1, Q5_0 and Q5_1 blocks against ggml's rules, over
   block scales 1e-6 .. 1e6, one-signed blocks, constant and zero blocks, ties
   of magnitude in both orders, zero minima and maxima of both signs in both
   orders, and subnormals (the vector quantizers of SIMD
   builds and the scalar one must both give these bytes) */
static void test_quant_ref(void) {
    static const int ids[4] = {2, 3, 6, 7};
    static const acem_dtype dts[4] = {ACEM_DT_Q4_0, ACEM_DT_Q4_1, ACEM_DT_Q5_0, ACEM_DT_Q5_1};
    enum { N = 32 * 2048 };
    static float x[N];
    static unsigned char want[N / 32 * 24];
    size_t q, k;
    for (q = 0; q < 4; ++q) {
        uint64_t bs = 0, bpb = 0;
        size_t bad = 0;
        wbuf w;
        acem_write_io io;
        acem_st_tensor ts;
        acem_error err;
        acem_dtype_bytes(dts[q], 32, &bs, &bpb);
        g_rng = 91 + q;
        for (k = 0; k < N; ++k) {
            size_t blk = k / 32;
            float v = (float)((double)(rnd_u64() % 200001) / 100000.0 - 1.0);
            if (blk % 8 == 3) v = fabsf(v);
            if (blk % 8 == 5) v = -fabsf(v);
            x[k] = v * (float)pow(10.0, (double)(blk % 13) - 6.0);
        }
        for (k = 0; k < 32; ++k) x[k] = 0;
        for (k = 64; k < 96; ++k) x[k] = 2.5f;
        for (k = 96; k < 128; ++k) x[k] = -0.75f;
        for (k = 128; k < 160; ++k) x[k] = k % 2 ? -0.0f : 0.0f;
        x[40] = 1.5e-4f; x[41] = -1.5e-4f; /* ties of magnitude (block 1: scale 1e-5) */
        x[420] = -7e-6f; x[421] = 7e-6f;   /* block 13: scale 1e-6 */
        x[200] = -3e-39f;
        for (k = 160; k < 192; ++k) x[k] = fabsf(x[k]); /* a minimum of zeros, -0 first */
        x[165] = -0.0f; x[170] = 0.0f;
        for (k = 192; k < 224; ++k) x[k] = fabsf(x[k]); /* +0 first */
        x[195] = 0.0f; x[199] = -0.0f;
        for (k = 224; k < 256; ++k) x[k] = -fabsf(x[k]); /* a maximum of zeros, -0 first */
        x[226] = -0.0f; x[230] = 0.0f;
        for (k = 256; k < 288; ++k) x[k] = -fabsf(x[k]); /* +0 first */
        x[260] = 0.0f; x[261] = -0.0f;
        for (k = 0; k < N / 32; ++k) ref_q45(ids[q], x + 32 * k, want + bs * k);
        memset(&ts, 0, sizeof ts);
        ts.name = "q"; ts.dtype = dts[q]; ts.ndim = 1; ts.shape[0] = N; ts.numel = N; ts.end = N / 32 * bs;
        wbuf_init(&w, &io, "q.gguf");
        CHECK(acem_st_write_f32(&io, &ts, x, &err) == ACEM_OK && w.n == N / 32 * bs, "write %s: %s",
              acem_dtype_name(dts[q]), err.message);
        for (k = 0; k < N / 32 && w.n == N / 32 * bs; ++k) bad += memcmp(w.p + bs * k, want + bs * k, bs) != 0;
        CHECK(bad == 0, "%s: %zu of %d blocks differ from ggml's rule", acem_dtype_name(dts[q]), bad, N / 32);
        free(w.p);
    }
}

static void test_writer(void) {
    gb src;
    opened s, o;
    wbuf w;
    acem_write_io io;
    acem_st_tensor t[5];
    acem_error err;
    const char *meta[] = {"acem.method", "ace", "acem.version", ACEM_VERSION_STRING};
    float x[4 * 64], *back;
    size_t k, j;
    uint64_t hb = 0;
    static const uint64_t ne1[1] = {4};
    int align;
    g_rng = 5;
    for (k = 0; k < 4 * 64; ++k) x[k] = (float)((double)(rnd_u64() % 20001) / 10000.0 - 1.0) * (k % 64 == 5 ? 40.0f : 1.0f);
    x[64] = 0; /* a row of zeros: Q8_0's d = 0 */
    for (k = 64; k < 128; ++k) x[k] = 0;
    x[130] = 63.5f; /* ties: x * (127 / 63.5) */
    x[131] = -63.5f;
    /* the source: pairs to copy, one to override, its own alignment */
    memset(&src, 0, sizeof src);
    gb_head(&src, 3, 1, 5);
    gb_kv_str(&src, "general.architecture", "gpt2");
    gb_kv_str(&src, "acem.method", "old");
    gb_str(&src, "tok"); gb_le(&src, 9, 4); gb_le(&src, 8, 4); gb_le(&src, 2, 8); gb_str(&src, "x"); gb_str(&src, "yy");
    gb_kv_int(&src, "general.alignment", 4, 16, 4);
    gb_kv_int(&src, "n", 4, 12, 4);
    gb_info(&src, "b", 1, ne1, 0, 0);
    gb_pad(&src, 16);
    gb_put(&src, x, 16);
    if (!open_ok(&s, &src, "writer source")) { free(src.p); return; }
    for (align = 0; align <= 64; align += 64) { /* 0: the source's (16); then 64 */
        uint32_t A = align ? 64u : 16u;
        memset(t, 0, sizeof t);
        t[0].name = "w.f16"; t[0].dtype = ACEM_DT_F16; t[0].ndim = 2; t[0].shape[0] = 4; t[0].shape[1] = 64;
        t[1].name = "w.q8"; t[1].dtype = ACEM_DT_Q8_0; t[1].ndim = 2; t[1].shape[0] = 4; t[1].shape[1] = 64;
        t[2].name = "b"; t[2].dtype = ACEM_DT_F32; t[2].ndim = 1; t[2].shape[0] = 3;
        t[3].name = "w.bf16"; t[3].dtype = ACEM_DT_BF16; t[3].ndim = 2; t[3].shape[0] = 4; t[3].shape[1] = 64;
        t[4].name = "s"; t[4].dtype = ACEM_DT_F32; t[4].ndim = 0;
        wbuf_init(&w, &io, "out.gguf");
        if (acem_gguf_write_header(&io, &s.f, t, 5, meta, 2, (uint32_t)align, &hb, &err) != ACEM_OK) {
            CHECK(0, "write header: %s", err.message);
            break;
        }
        CHECK(hb == w.n && hb % A == 0, "header bytes %llu, written %zu, align %u", (unsigned long long)hb, w.n, A);
        for (k = 0; k < 5; ++k) {
            CHECK(t[k].begin % A == 0 && (t[k].end + t[k].pad) % A == 0 && t[k].pad < A, "layout of %s", t[k].name);
            CHECK(acem_st_write_f32(&io, &t[k], x, &err) == ACEM_OK, "write %s: %s", t[k].name, err.message);
        }
        CHECK(w.n == hb + t[4].end + t[4].pad, "file size %zu", w.n);
        if (!open_ok(&o, (const gb *)&w, "written")) { free(w.p); continue; }
        {
            const acem_st_file *f = &o.f;
            const char *v;
            CHECK(f->alignment == A && f->gguf_version == 3 && f->n_tensors == 5, "reopened: align %u", f->alignment);
            /* copied verbatim, in order, without the overridden and the alignment pair */
            CHECK(f->n_kv == 3 + 2 + (A != 32), "kv count %zu", f->n_kv);
            if (f->n_kv >= 3) {
                CHECK(!strcmp(f->kv[0].key, "general.architecture") && !strcmp(f->kv[1].key, "tok") && !strcmp(f->kv[2].key, "n"),
                      "copied order %s %s %s", f->kv[0].key, f->kv[1].key, f->kv[2].key);
                CHECK(f->kv[1].end - f->kv[1].begin == s.f.kv[2].end - s.f.kv[2].begin &&
                          !memcmp(w.p + f->kv[1].begin, src.p + s.f.kv[2].begin, (size_t)(s.f.kv[2].end - s.f.kv[2].begin)),
                      "array pair copied byte for byte");
            }
            v = acem_st_meta(f, "acem.method");
            CHECK(v && !strcmp(v, "ace"), "override: %s", v ? v : "(none)");
            v = acem_st_meta(f, "tok");
            CHECK(v && !strcmp(v, "[2 x STRING]"), "tok: %s", v ? v : "(none)");
            /* the tensors in the given order, values as written */
            for (k = 1; k < 5; ++k) CHECK(t[k].begin > t[k - 1].begin, "order kept at %zu", k);
            back = (float *)malloc(sizeof x);
            for (k = 0; k < 5; ++k) {
                const acem_st_tensor *r = acem_st_find(f, t[k].name);
                CHECK(r && r->begin == t[k].begin && r->end == t[k].end && r->dtype == t[k].dtype && r->ndim == t[k].ndim,
                      "descriptor of %s", t[k].name);
                if (!r) continue;
                if (r->dtype == ACEM_DT_Q8_0) {
                    unsigned char raw[8 * 34], want[34];
                    size_t bad = 0;
                    acem_st_read_raw(f, r, raw, &err);
                    for (j = 0; j < 8; ++j) {
                        ref_q8_0(x + 32 * j, want);
                        bad += memcmp(raw + 34 * j, want, 34) != 0;
                    }
                    CHECK(bad == 0, "Q8_0: %zu of 8 blocks differ from ggml's reference rule", bad);
                    CHECK(raw[34 * 4 + 2 + 2] == 127 && raw[34 * 4 + 2 + 3] == 129, "ties away from zero: %d %d",
                          (int8_t)raw[34 * 4 + 4], (int8_t)raw[34 * 4 + 5]);
                    acem_st_read_f32(f, r, back, &err);
                    for (j = 0; j < 256; ++j) {
                        float amax = 0;
                        size_t i0 = j / 32 * 32, i;
                        for (i = i0; i < i0 + 32; ++i) amax = fmaxf(amax, fabsf(x[i]));
                        if (fabsf(back[j] - x[j]) > amax / 254.0f * 1.01f + amax * 1e-3f) ++bad;
                    }
                    CHECK(bad == 0, "Q8_0 round trip within half a step: %zu off", bad);
                } else {
                    size_t bad = 0;
                    acem_st_read_f32(f, r, back, &err);
                    for (j = 0; j < r->numel; ++j) {
                        float want = r->dtype == ACEM_DT_F16 ? acem_f16_to_f32(acem_f32_to_f16(x[j]))
                                   : r->dtype == ACEM_DT_BF16 ? acem_bf16_to_f32(acem_f32_to_bf16(x[j])) : x[j];
                        bad += !same_f(back[j], want);
                    }
                    CHECK(bad == 0, "%s: %zu values differ", r->name, bad);
                }
            }
            free(back);
            close_mem(&o);
        }
        free(w.p);
    }
    /* a pair with a NULL value drops that key of the source's */
    {
        const char *drop[4] = {"n", NULL, "tok", NULL};
        memset(t, 0, sizeof t);
        t[0].name = "a"; t[0].dtype = ACEM_DT_F32; t[0].ndim = 1; t[0].shape[0] = 3;
        wbuf_init(&w, &io, "drop.gguf");
        CHECK(acem_gguf_write_header(&io, &s.f, t, 1, drop, 2, 0, NULL, &err) == ACEM_OK, "drop: %s", err.message);
        acem_st_write_f32(&io, &t[0], x, &err);
        if (open_ok(&o, (const gb *)&w, "dropped keys")) {
            CHECK(o.f.n_kv == 2 + (s.f.alignment != 32) && !acem_st_meta(&o.f, "n") && !acem_st_meta(&o.f, "tok") &&
                      acem_st_meta(&o.f, "general.architecture") && acem_st_meta(&o.f, "acem.method"),
                  "NULL values drop keys: %zu pairs left", o.f.n_kv);
            close_mem(&o);
        }
        free(w.p);
    }
    /* without a source: no pairs but meta; default alignment 32 */
    memset(t, 0, sizeof t);
    t[0].name = "a"; t[0].dtype = ACEM_DT_F32; t[0].ndim = 1; t[0].shape[0] = 3;
    wbuf_init(&w, &io, "plain.gguf");
    CHECK(acem_gguf_write_header(&io, NULL, t, 1, meta, 2, 0, &hb, &err) == ACEM_OK, "no source: %s", err.message);
    acem_st_write_f32(&io, &t[0], x, &err);
    if (open_ok(&o, (const gb *)&w, "no source")) {
        CHECK(o.f.n_kv == 2 && o.f.alignment == 32 && t[0].pad == 20, "no source: %zu pairs, pad %llu", o.f.n_kv,
              (unsigned long long)t[0].pad);
        close_mem(&o);
    }
    free(w.p);
    /* an empty tensor whose other dims overflow if multiplied first: the reader
       takes it (ggml's order: innermost, 0, first), so must the writer */
    {
        gb e;
        static const uint64_t ne[3] = {0, 1ull << 40, 1ull << 40};
        memset(&e, 0, sizeof e);
        gb_head(&e, 3, 1, 0);
        gb_info(&e, "z", 3, ne, 0, 0);
        gb_pad(&e, 32);
        if (open_ok(&o, &e, "empty tensor with huge dims")) {
            acem_st_tensor z = o.f.tensors[0];
            CHECK(z.numel == 0 && z.ndim == 3 && z.shape[2] == 0, "empty tensor: numel %llu", (unsigned long long)z.numel);
            wbuf_init(&w, &io, "z.gguf");
            CHECK(acem_gguf_write_header(&io, NULL, &z, 1, NULL, 0, 0, NULL, &err) == ACEM_OK, "write it back: %s", err.message);
            free(w.p);
            close_mem(&o);
        }
        free(e.p);
    }
    /* the rules */
    {
        struct { const char *name; acem_dtype dt; size_t nd; uint64_t s0, s1; uint32_t align; const char *m0; const char *want; } bad[] = {
            {"0123456789012345678901234567890123456789012345678901234567890123", ACEM_DT_F32, 1, 4, 0, 0, NULL, "63 bytes"},
            {"f8", ACEM_DT_F8_E4M3, 1, 4, 0, 0, NULL, "cannot hold dtype F8_E4M3"},
            {"q", ACEM_DT_Q8_0, 2, 2, 16, 0, NULL, "whole number of Q8_0 blocks"},
            {"q", ACEM_DT_Q4_0, 0, 0, 0, 0, NULL, "whole number of Q4_0 blocks"},
            {"a", ACEM_DT_F32, 1, 4, 0, 48, NULL, "not a power of two"},
            {"a", ACEM_DT_F32, 1, 4, 0, 0, "general.alignment", "set by the alignment argument"},
            {"dup", ACEM_DT_F32, 1, 4, 0, 0, NULL, "duplicate tensor 'dup'"},
        };
        for (k = 0; k < sizeof bad / sizeof bad[0]; ++k) {
            const char *m[2];
            size_t nt = 1;
            memset(t, 0, sizeof t);
            t[0].name = bad[k].name; t[0].dtype = bad[k].dt; t[0].ndim = bad[k].nd;
            t[0].shape[0] = bad[k].s0; t[0].shape[1] = bad[k].s1;
            if (!strcmp(bad[k].name, "dup")) { t[1] = t[0]; nt = 2; }
            m[0] = bad[k].m0; m[1] = "x";
            wbuf_init(&w, &io, "bad.gguf");
            memset(&err, 0, sizeof err);
            CHECK(acem_gguf_write_header(&io, NULL, t, nt, m, bad[k].m0 ? 1 : 0, bad[k].align, NULL, &err) ==
                          ACEM_ERR_INVALID_ARGUMENT && strstr(err.message, bad[k].want) && strstr(err.message, "bad.gguf"),
                  "writer rule %zu: %s", k, err.message);
            free(w.p);
        }
        /* a non-GGUF source; a non-finite value for Q8_0 */
        {
            const char *js = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
            unsigned char st[8 + 64];
            opened so;
            size_t jl = strlen(js);
            float inf[32];
            put_u64(st, jl);
            memcpy(st + 8, js, jl);
            memset(st + 8 + jl, 0, 4);
            if (open_mem(&so, st, 8 + jl + 4, "st.safetensors", &err) == ACEM_OK) {
                wbuf_init(&w, &io, "bad.gguf");
                CHECK(acem_gguf_write_header(&io, &so.f, t, 0, NULL, 0, 0, NULL, &err) == ACEM_ERR_INVALID_ARGUMENT &&
                          strstr(err.message, "st.safetensors is not a GGUF file"), "safetensors source: %s", err.message);
                free(w.p);
                close_mem(&so);
            } else
                CHECK(0, "safetensors source open: %s", err.message);
            for (k = 0; k < 32; ++k) inf[k] = (float)k;
            inf[9] = INFINITY;
            memset(t, 0, sizeof t);
            t[0].name = "q"; t[0].dtype = ACEM_DT_Q8_0; t[0].ndim = 1; t[0].shape[0] = 32;
            wbuf_init(&w, &io, "inf.gguf");
            acem_gguf_write_header(&io, NULL, t, 1, NULL, 0, 0, NULL, &err);
            CHECK(acem_st_write_f32(&io, &t[0], inf, &err) == ACEM_ERR_NONFINITE && strstr(err.message, "'q'"),
                  "Inf into Q8_0: %s", err.message);
            free(w.p);
        }
    }
    close_mem(&s);
    free(src.p);
}

/* ---- malformed files -------------------------------------------------------------- */
/* a valid file: two pairs, two tensors (F32 [4], Q8_0 [32 x 2]); parts can be
   changed by the corpus below */
typedef struct small_opts {
    uint32_t version, t0_type, t1_nd, kv_type, align_type;
    uint64_t n_t, n_kv, t0_ne0, t1_off, align, t1_ne1;
    const char *t0_name, *t1_name, *key1;
    int nested, bad_array_type, big_endian, trunc_data;
} small_opts;
static void small_defaults(small_opts *s) {
    memset(s, 0, sizeof *s);
    s->version = 3; s->t0_type = 0; s->t1_nd = 2; s->kv_type = 4; s->align_type = 4;
    s->n_t = 2; s->n_kv = 3; s->t0_ne0 = 4; s->t1_off = 32; s->align = 32; s->t1_ne1 = 2;
    s->t0_name = "bias"; s->t1_name = "weight"; s->key1 = "n";
}
static void small_build(gb *b, const small_opts *s) {
    uint64_t ne1[5] = {0, 0, 1, 1, 1};
    unsigned char data[32 + 68];
    size_t k;
    memset(b, 0, sizeof *b);
    gb_put(b, "GGUF", 4);
    if (s->big_endian) { unsigned char v[4] = {0, 0, 0, 3}; gb_put(b, v, 4); }
    else gb_le(b, s->version, 4);
    gb_le(b, s->n_t, 8);
    gb_le(b, s->n_kv, 8);
    gb_kv_str(b, "general.name", "small");
    if (s->nested || s->bad_array_type) {
        gb_str(b, s->key1); gb_le(b, 9, 4); gb_le(b, s->nested ? 9 : 13, 4); gb_le(b, 0, 8);
    } else
        gb_kv_int(b, s->key1, s->kv_type, 7, s->kv_type <= 12 ? 4 : 0);
    gb_str(b, "general.alignment"); gb_le(b, s->align_type, 4); gb_le(b, s->align, s->align_type == 10 ? 8 : 4);
    ne1[0] = 32; ne1[1] = s->t1_ne1;
    {
        uint64_t ne0 = s->t0_ne0;
        gb_info(b, s->t0_name, 1, &ne0, s->t0_type, 0);
    }
    gb_info(b, s->t1_name, s->t1_nd, ne1, 8, s->t1_off);
    gb_pad(b, 32);
    for (k = 0; k < sizeof data; ++k) data[k] = (unsigned char)(k * 13 + 1);
    for (k = 0; k < 2; ++k) { data[32 + 34 * k] = 0x00; data[33 + 34 * k] = 0x3c; } /* d = 1 */
    gb_put(b, data, s->trunc_data ? sizeof data - 1 : sizeof data);
}

typedef struct { const char *label; void (*mod)(small_opts *); const char *want; } bad_case;
#define MOD(nm, body) static void nm(small_opts *s) { body; }
MOD(m_v1, s->version = 1)
MOD(m_v4, s->version = 4)
MOD(m_be, s->big_endian = 1)
MOD(m_nkv, s->n_kv = 1ull << 40)
MOD(m_nt, s->n_t = 1ull << 40)
MOD(m_ntshort, s->n_t = 3)
MOD(m_vtype, s->kv_type = 13)
MOD(m_nested, s->nested = 1)
MOD(m_atype, s->bad_array_type = 1)
MOD(m_align_t, s->align_type = 10)
MOD(m_align0, s->align = 0)
MOD(m_align48, s->align = 48)
MOD(m_dupkey, s->key1 = "general.name")
MOD(m_longname, s->t1_name = "0123456789012345678901234567890123456789012345678901234567890123")
MOD(m_dims, s->t1_nd = 5)
MOD(m_neg, s->t1_ne1 = 0x8000000000000000ull)
MOD(m_ovf, s->t1_ne1 = 0x4000000000000000ull)
MOD(m_retired, s->t0_type = 4)
MOD(m_unknown, s->t0_type = 99)
MOD(m_minus1, s->t0_type = 0xffffffffu)
MOD(m_block, s->t0_type = 8)
MOD(m_off, s->t1_off = 16)
MOD(m_off2, s->t1_off = 64)
MOD(m_dupt, s->t1_name = "bias")
MOD(m_trunc, s->trunc_data = 1)
#undef MOD
static void test_corpus(void) {
    static const bad_case cases[] = {
        {"version 1", m_v1, "GGUF version 1 is not supported"},
        {"version 4", m_v4, "GGUF version 4 is not supported"},
        {"big-endian", m_be, "big-endian"},
        {"key/value count", m_nkv, "key/value pairs, more than"},
        {"tensor count", m_nt, "tensors, more than"},
        {"tensor count past the infos", m_ntshort, "tensor '': data offset 0, expected 128"},
        {"value type", m_vtype, "key 'n': unknown value type 13"},
        {"nested array", m_nested, "key 'n': nested arrays"},
        {"array type", m_atype, "key 'n': array of unknown type 13"},
        {"alignment type", m_align_t, "general.alignment is a UINT64"},
        {"alignment 0", m_align0, "general.alignment is 0"},
        {"alignment 48", m_align48, "general.alignment is 48"},
        {"duplicate key", m_dupkey, "duplicate key 'general.name'"},
        {"name length", m_longname, "name is 64 bytes"},
        {"dimensions", m_dims, "tensor 'weight': 5 dimensions"},
        {"negative dimension", m_neg, "tensor 'weight': negative dimension"},
        {"shape overflow", m_ovf, "tensor 'weight': shape overflows"},
        {"retired type", m_retired, "tensor 'bias': unknown or retired ggml type 4"},
        {"unknown type", m_unknown, "tensor 'bias': unknown or retired ggml type 99"},
        {"type -1", m_minus1, "tensor 'bias': unknown or retired ggml type 4294967295"},
        {"partial block", m_block, "tensor 'bias': first dimension 4 is not a whole number of Q8_0 blocks"},
        {"offset inside padding", m_off, "tensor 'weight': data offset 16, expected 32"},
        {"offset with a hole", m_off2, "tensor 'weight': data offset 64, expected 32"},
        {"duplicate tensor", m_dupt, "duplicate tensor 'bias'"},
        {"truncated data", m_trunc, "tensor 'weight': its data runs past the end"},
    };
    size_t k;
    {
        small_opts s;
        gb b;
        opened o;
        small_defaults(&s);
        small_build(&b, &s);
        if (open_ok(&o, &b, "the small file")) {
            const acem_st_tensor *w = acem_st_find(&o.f, "weight");
            float y[64];
            acem_error err;
            size_t j, off = 0;
            CHECK(w && w->shape[0] == 2 && w->shape[1] == 32 && acem_st_read_f32(&o.f, w, y, &err) == ACEM_OK,
                  "small file reads");
            for (j = 0; j < 64; ++j) /* d = 1: the values are the int8 quants */
                off += y[j] != (float)(int8_t)(unsigned char)((32 + 34 * (j / 32) + 2 + j % 32) * 13 + 1);
            CHECK(off == 0, "small file: %zu Q8_0 values differ", off);
            close_mem(&o);
        }
        free(b.p);
    }
    for (k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        small_opts s;
        gb b;
        opened o;
        acem_error err;
        acem_result r;
        small_defaults(&s);
        cases[k].mod(&s);
        small_build(&b, &s);
        r = open_mem(&o, b.p, b.n, "bad.gguf", &err);
        CHECK(r == ACEM_ERR_FORMAT && strstr(err.message, cases[k].want) && !strncmp(err.message, "bad.gguf: ", 10),
              "%s: r=%d '%s' (want '%s')", cases[k].label, (int)r, err.message, cases[k].want);
        if (g_verbose) printf("  %-28s %s\n", cases[k].label, err.message);
        if (r == ACEM_OK) close_mem(&o);
        free(b.p);
    }
    /* a GGUF-only dtype name is not a safetensors dtype */
    {
        const char *js = "{\"a\":{\"dtype\":\"Q8_0\",\"shape\":[32],\"data_offsets\":[0,34]}}";
        unsigned char st[8 + 128];
        opened o;
        acem_error err;
        size_t jl = strlen(js);
        put_u64(st, jl);
        memcpy(st + 8, js, jl);
        memset(st + 8 + jl, 0, 34);
        CHECK(open_mem(&o, st, 8 + jl + 34, "q.safetensors", &err) == ACEM_ERR_FORMAT && strstr(err.message, "unknown dtype 'Q8_0'"),
              "Q8_0 in safetensors: %s", err.message);
    }
}

/* every truncation fails cleanly; every read failure is reported; single-byte
   mutations never crash and what opens is consistent */
static void test_truncation_and_mutation(void) {
    small_opts s;
    gb b;
    size_t cut, k, bad = 0, accepted = 0, io_bad = 0;
    small_defaults(&s);
    small_build(&b, &s);
    for (cut = 0; cut < b.n; ++cut) {
        opened o;
        acem_error err;
        acem_result r = open_mem(&o, b.p, cut, "cut.gguf", &err);
        if (r == ACEM_OK) { ++bad; close_mem(&o); }
        else if (!strstr(err.message, "cut.gguf")) ++bad;
    }
    CHECK(bad == 0, "%zu of %zu truncations opened or gave no file name", bad, b.n);
    for (cut = 0; cut < b.n; ++cut) { /* a read failure at every offset: never OK, never out of bounds */
        opened o;
        acem_error err;
        acem_result r;
        memset(&o, 0, sizeof o);
        o.src.p = b.p; o.src.n = b.n; o.src.fail_at = cut;
        o.io.user = &o.src; o.io.read = mem_read; o.io.size = b.n; o.io.path = "io.gguf";
        r = acem_st_open_bytes(&o.io, &o.need, &err);
        if (r == ACEM_OK) {
            o.arena = malloc(o.need ? o.need : 1);
            r = acem_st_open(&o.f, &o.io, o.arena, o.need, &err);
            free(o.arena);
        }
        if (o.src.oob || (r == ACEM_OK && cut < b.n - 68)) ++io_bad;
    }
    CHECK(io_bad == 0, "%zu read-failure offsets misbehaved", io_bad);
    g_rng = 3;
    for (k = 0; k < 3000; ++k) {
        unsigned char *m = (unsigned char *)malloc(b.n);
        opened o;
        acem_error err;
        memcpy(m, b.p, b.n);
        m[rnd_u64() % b.n] ^= (unsigned char)(1u << (rnd_u64() % 8));
        if (open_mem(&o, m, b.n, "mut.gguf", &err) == ACEM_OK) {
            size_t t;
            ++accepted;
            for (t = 0; t < o.f.n_tensors; ++t) {
                const acem_st_tensor *x = &o.f.tensors[t];
                uint64_t bytes;
                if (!acem_dtype_bytes(x->dtype, x->numel, &bytes, NULL) || x->end - x->begin != bytes ||
                    o.f.data_start + x->end > b.n)
                    ++bad;
            }
            close_mem(&o);
        } else if (!strstr(err.message, "mut.gguf"))
            ++bad;
        free(m);
    }
    CHECK(bad == 0, "mutations: %zu inconsistent (%zu accepted of 3000)", bad, accepted);
    free(b.p);
}

/* the arena: exactly need bytes work, need - 1 fail; need from the header only */
static void test_arena(void) {
    small_opts s;
    gb b;
    opened o;
    acem_error err;
    unsigned char *a;
    small_defaults(&s);
    small_build(&b, &s);
    if (open_mem(&o, b.p, b.n, "a.gguf", &err) != ACEM_OK) { CHECK(0, "open: %s", err.message); free(b.p); return; }
    close_mem(&o);
    a = (unsigned char *)malloc(o.need + 8);
    CHECK(acem_st_open(&o.f, &o.io, a, o.need, &err) == ACEM_OK, "exact arena: %s", err.message);
    CHECK(acem_st_open(&o.f, &o.io, a, o.need - 1, &err) == ACEM_ERR_ARENA_TOO_SMALL && err.bytes_required == o.need,
          "arena - 1: %s", err.message);
    free(a);
    free(b.p);
}

int main(void) {
    g_verbose = getenv("ST_VERBOSE") != NULL;
    test_read();
    test_dequant_random();
    test_writer();
    test_quant_ref();
    test_corpus();
    test_truncation_and_mutation();
    test_arena();
    return TEST_END("test_gguf");
}
