/* tests/ggml_check.c LIBGGML_BASE - acem's GGUF block types against ggml itself.

   LIBGGML_BASE is llama.cpp's libggml-base.so (make test installs the prebuilt
   one of the npm package @node-llama-cpp/linux-x64 into build/npm). Through
   ggml_get_type_traits() it gives ggml's own block sizes, reference
   dequantizers (to_float) and reference quantizers (from_float_ref):
   - every ggml type acem knows has ggml's block size and bytes, and every
     type acem does not know has none (or is retired);
   - for every type acem dequantizes, random blocks (bytes from a PRNG, the f16
     scales kept finite) are read back through a GGUF file and acem_st_read_f32
     and must equal ggml's to_float bit for bit; then the same for blocks that
     ggml's own quantizer made from random floats;
   - acem's writer must give the bytes of ggml's quantize_row_*_ref for Q8_0,
     Q4_0, Q4_1, Q5_0 and Q5_1.
   Prints "ggml_check: N passed, N failed".
   Build: cc -O2 -Itests -o build/ggml_check tests/ggml_check.c -ldl -lm */
#define _POSIX_C_SOURCE 200809L
#define ACEM_IMPLEMENTATION
#include "../acem.h"
#include "testing.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memio.h"
#include "gguf_build.h"

/* ggml.h's struct ggml_type_traits */
typedef void (*to_float_t)(const void *x, float *y, int64_t k);
typedef void (*from_float_t)(const float *x, void *y, int64_t k);
struct ggml_type_traits {
    const char *type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    to_float_t to_float;
    from_float_t from_float_ref;
};
typedef const struct ggml_type_traits *(*get_traits_t)(int type);

/* byte offsets of a block's f16 fields (scales), to keep them finite */
static void finite_scales(int id, unsigned char *b) {
    int offs[2] = {-1, -1}, k;
    switch (id) {
    case 2: case 6: case 8: offs[0] = 0; break;
    case 3: case 7: case 9: offs[0] = 0; offs[1] = 2; break;
    case 10: offs[0] = 80; offs[1] = 82; break;
    case 11: offs[0] = 108; break;
    case 12: case 13: offs[0] = 0; offs[1] = 2; break;
    case 14: offs[0] = 208; break;
    case 15: { float d = (float)((double)(rnd_u64() % 2001) / 1000.0 - 1.0) * 0.01f; memcpy(b, &d, 4); break; }
    case 35: offs[0] = 64; break;
    case 20: case 23: offs[0] = 0; break;
    default: break;
    }
    for (k = 0; k < 2; ++k)
        if (offs[k] >= 0) {
            uint16_t h = acem_f32_to_f16((float)((double)(rnd_u64() % 2001) / 1000.0 - 1.0) * 0.05f);
            b[offs[k]] = (unsigned char)h;
            b[offs[k] + 1] = (unsigned char)(h >> 8);
        }
}

/* nb blocks of type dt through a GGUF file and acem_st_read_f32 */
static int acem_dequant(acem_dtype dt, const unsigned char *blocks, size_t nb, float *y) {
    gb b;
    opened o;
    acem_error err;
    uint64_t blk = 0, bytes = 0, ne[2];
    int ok;
    acem_dtype_bytes(dt, 1u << 20, &bytes, &blk);
    acem_dtype_bytes(dt, blk * nb, &bytes, NULL);
    ne[0] = blk;
    ne[1] = nb;
    memset(&b, 0, sizeof b);
    gb_head(&b, 3, 1, 0);
    gb_info(&b, "x", 2, ne, (uint32_t)acem_gguf_type_id(dt), 0);
    gb_pad(&b, 32);
    gb_put(&b, blocks, (size_t)bytes);
    ok = open_mem(&o, b.p, b.n, "x.gguf", &err) == ACEM_OK;
    if (ok) {
        ok = acem_st_read_f32(&o.f, &o.f.tensors[0], y, &err) == ACEM_OK;
        close_mem(&o);
    }
    if (!ok) printf("acem: %s\n", err.message);
    free(b.p);
    return ok;
}

int main(int argc, char **argv) {
    void *h;
    get_traits_t traits;
    int id, d;
    g_verbose = getenv("ST_VERBOSE") != NULL;
    if (argc != 2) {
        fprintf(stderr, "usage: ggml_check LIBGGML_BASE.so\n");
        return 2;
    }
    if (!(h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) || !(traits = (get_traits_t)(uintptr_t)dlsym(h, "ggml_get_type_traits"))) {
        CHECK(0, "cannot load ggml's reference: %s (make test installs @node-llama-cpp/linux-x64 with npm)", dlerror());
        return TEST_END("ggml_check");
    }
    /* the type table: ggml ids 0..42 */
    for (id = 0; id <= 42; ++id) {
        const struct ggml_type_traits *t = traits(id);
        acem_dtype dt = ACEM_DT_UNKNOWN;
        uint64_t blk = 0, bytes = 0;
        for (d = 1; d < (int)ACEM_DT_GGUF_END; ++d)
            if ((d < (int)ACEM_DT_COUNT || d >= (int)ACEM_DT_GGUF_FIRST) && acem_gguf_type_id((acem_dtype)d) == id) dt = (acem_dtype)d;
        if (dt == ACEM_DT_UNKNOWN) {
            CHECK(!t->blck_size || !t->type_size, "ggml type %d (%s) has a layout acem does not know", id, t->type_name);
            continue;
        }
        acem_dtype_bytes(dt, 1u << 20, &bytes, &blk);
        acem_dtype_bytes(dt, blk, &bytes, NULL);
        CHECK((int64_t)blk == t->blck_size && bytes == t->type_size, "%s (%d): acem %llu values in %llu bytes, ggml %lld in %zu",
              acem_dtype_name(dt), id, (unsigned long long)blk, (unsigned long long)bytes, (long long)t->blck_size, t->type_size);
        if (t->is_quantized) CHECK(acem_dtype_is_float(dt) == (t->to_float != NULL &&
                                                           (strncmp(t->type_name, "iq", 2) || !strncmp(t->type_name, "iq4", 3)) &&
                                                           strcmp(t->type_name, "tq1_0") && strcmp(t->type_name, "nvfp4") &&
                                                           strcmp(t->type_name, "q1_0") && strcmp(t->type_name, "q2_0")),
                                   "%s: acem dequantizes it: %d", t->type_name, acem_dtype_is_float(dt));
        /* dequantization: random blocks, then ggml's own quantizations of random floats */
        if (t->is_quantized && acem_dtype_is_float(dt) && t->to_float) {
            size_t nb = 12, k, bad = 0, n = (size_t)blk * nb;
            unsigned char *q = (unsigned char *)malloc(nb * t->type_size);
            float *ya = (float *)malloc(n * sizeof(float)), *yg = (float *)malloc(n * sizeof(float));
            float *x = (float *)malloc(n * sizeof(float));
            int round;
            g_rng = 1000u + (uint64_t)id;
            for (round = 0; round < 2; ++round) {
                if (round == 0)
                    for (k = 0; k < nb; ++k) {
                        size_t j;
                        for (j = 0; j < t->type_size; ++j) q[k * t->type_size + j] = (unsigned char)rnd_u64();
                        finite_scales(id, q + k * t->type_size);
                    }
                else if (t->from_float_ref) {
                    for (k = 0; k < n; ++k) x[k] = (float)((double)(rnd_u64() % 200001) / 100000.0 - 1.0) * (k % 7 == 3 ? 3.0f : 0.4f);
                    t->from_float_ref(x, q, (int64_t)n);
                } else
                    continue;
                t->to_float(q, yg, (int64_t)n);
                if (!acem_dequant(dt, q, nb, ya)) { CHECK(0, "%s: acem cannot read it", t->type_name); continue; }
                size_t first = 0;
                for (k = 0, bad = 0; k < n; ++k)
                    if (!same_f(ya[k], yg[k]) && !bad++) first = k;
                if (g_verbose) printf("  %-6s %s blocks: %zu values compared, %zu differ\n", t->type_name,
                                      round ? "ggml-quantized" : "random", n, bad);
                CHECK(bad == 0, "%s (%s blocks): %zu of %zu values differ from ggml's to_float (first at %zu: %g vs %g)",
                      t->type_name, round ? "ggml-quantized" : "random", bad, n,
                      first, (double)ya[first], (double)yg[first]);
            }
            free(q); free(ya); free(yg); free(x);
        }
    }
    /* acem's writer against ggml's quantize_row_*_ref for every block type it writes */
    {
        static const int ids[5] = {8, 2, 3, 6, 7};
        enum { N = 32 * 4096 };
        static float x[N];
        static unsigned char want[N / 32 * 34];
        size_t q;
        for (q = 0; q < 5; ++q) {
            const struct ggml_type_traits *t = traits(ids[q]);
            acem_dtype dt = ACEM_DT_UNKNOWN;
            wbuf w;
            acem_write_io io;
            acem_st_tensor ts;
            acem_error err;
            size_t k, bad = 0, nb = N / 32 * t->type_size;
            for (d = (int)ACEM_DT_GGUF_FIRST; d < (int)ACEM_DT_GGUF_END; ++d)
                if (acem_gguf_type_id((acem_dtype)d) == ids[q]) dt = (acem_dtype)d;
            g_rng = 77 + q;
            /* block scales 1e-6 .. 5e6; blocks 3 and 5 of every 8 of one sign */
            for (k = 0; k < N; ++k) {
                float v = (float)((double)(rnd_u64() % 200001) / 100000.0 - 1.0) * (k % 64 < 32 ? 1e-3f : 5.0f);
                size_t blk = k / 32;
                if (blk % 8 == 3) v = v < 0 ? -v : v;
                if (blk % 8 == 5) v = v > 0 ? -v : v;
                x[k] = v * (float)pow(10.0, (double)(blk % 10) - 6.0) * 1e3f;
            }
            for (k = 0; k < 32; ++k) x[k] = 0;     /* a zero block */
            for (k = 64; k < 96; ++k) x[k] = 2.5f; /* a constant block */
            for (k = 96; k < 128; ++k) x[k] = -0.75f; /* a negative constant block */
            for (k = 128; k < 160; ++k) x[k] = k % 2 ? -0.0f : 0.0f; /* signed zeros */
            x[40] = 63.5f; x[41] = -63.5f;         /* ties of magnitude, both orders */
            x[360] = -63.5f; x[361] = 63.5f;
            x[200] = 1e-30f; x[201] = -3e-39f;     /* tiny and subnormal */
            for (k = 224; k < 288; ++k) x[k] = fabsf(x[k]) * (k < 256 ? 1.0f : -1.0f);
            x[226] = -0.0f; x[230] = 0.0f;         /* zero minimum, -0 first; */
            x[260] = 0.0f; x[261] = -0.0f;         /* zero maximum, +0 first */
            t->from_float_ref(x, want, N);
            memset(&ts, 0, sizeof ts);
            ts.name = "q"; ts.dtype = dt; ts.ndim = 1; ts.shape[0] = N; ts.numel = N; ts.end = nb;
            wbuf_init(&w, &io, "q.gguf");
            CHECK(acem_st_write_f32(&io, &ts, x, &err) == ACEM_OK && w.n == nb, "write %s: %s", t->type_name, err.message);
            for (k = 0; k < N / 32 && w.n == nb; ++k) bad += memcmp(w.p + t->type_size * k, want + t->type_size * k, t->type_size) != 0;
            CHECK(bad == 0, "%s: %zu of %d blocks differ from ggml's quantize_row_%s_ref", t->type_name, bad, N / 32, t->type_name);
            if (g_verbose) printf("  %-6s writer: %d blocks compared, %zu differ\n", t->type_name, N / 32, bad);
            free(w.p);
        }
    }
    return TEST_END("ggml_check");
}
