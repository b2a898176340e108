/* tests/wasm/acem_wasm.c - acem.h built freestanding for WebAssembly.

   No libc: every hook is defined here, memory is one static arena, and the only
   import is env.log (Math.log from JavaScript). Built by the Makefile with

     clang --target=wasm32 -nostdlib -ffreestanding -O2 -Wl,--no-entry
           -Wl,--export-dynamic tests/wasm/acem_wasm.c -o build/acem.wasm

   and driven by tests/wasm/run.mjs, which writes inputs into the exported I/O
   buffer, calls the exported functions and checks the results (the spec's
   reference test vectors, every method, a kernel against a naive product,
   safetensors and GGUF files read from a byte buffer, as a web page would
   read the files a user drops on it). */
#include <stddef.h>

#define ACEM_NO_STDIO
#define ACEM_NO_MALLOC
#define ACEM_ASSERT(x) ((void)0)
#define ACEM_MEMCPY acem_wasm_memcpy
#define ACEM_MEMSET acem_wasm_memset
#define ACEM_SQRT(x) __builtin_sqrt(x)
#define ACEM_LOG(x) acem_js_log(x)

void *acem_wasm_memcpy(void *dst, const void *src, size_t n);
void *acem_wasm_memset(void *dst, int c, size_t n);
__attribute__((import_module("env"), import_name("log"))) double acem_js_log(double x);

#define ACEM_IMPLEMENTATION
#include "acem.h"

#define EXPORT(name) __attribute__((export_name(#name)))

/* ---- libc replacements ---------------------------------------------------------
   clang may emit calls to memcpy / memset / memmove for struct copies and
   zeroing, so they are defined too (with -ffreestanding the loops below are not
   turned back into calls to themselves). */
void *acem_wasm_memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n--) *d++ = *s++;
    return dst;
}
void *acem_wasm_memset(void *dst, int c, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
void *memcpy(void *dst, const void *src, size_t n) { return acem_wasm_memcpy(dst, src, n); }
void *memset(void *dst, int c, size_t n) { return acem_wasm_memset(dst, c, n); }
void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        d += n;
        s += n;
        while (n--) *--d = *--s;
    }
    return dst;
}

/* ---- memory shared with JavaScript ----------------------------------------------- */
#define IO_FLOATS (1 << 16)
#define MAX_T 16
static unsigned char arena[1 << 20] __attribute__((aligned(64)));
static float io[IO_FLOATS] __attribute__((aligned(64)));
static double info_out[16];
static char message[256];

EXPORT(wasm_io) float *wasm_io(void) { return io; }
EXPORT(wasm_io_floats) int wasm_io_floats(void) { return IO_FLOATS; }
EXPORT(wasm_info) double *wasm_info(void) { return info_out; }
EXPORT(wasm_message) const char *wasm_message(void) { return message; }
EXPORT(wasm_arena_bytes) int wasm_arena_bytes(void) { return (int)sizeof arena; }
EXPORT(wasm_method_count) int wasm_method_count(void) { return ACEM_METHOD_COUNT; }
EXPORT(wasm_method_name) const char *wasm_method_name(int m) {
    return acem_method_name((acem_method)m);
}
EXPORT(wasm_result_string) const char *wasm_result_string(int r) {
    return acem_result_string((acem_result)r);
}

static void keep_message(const acem_error *err) {
    size_t i;
    for (i = 0; i + 1 < sizeof message && err->message[i]; ++i) message[i] = err->message[i];
    message[i] = 0;
}

/* Merge one rows x cols tensor of T experts held in io[]:
     base at io[0 .. n), expert t at io[(t+1)n ..), output at io[(T+1)n ..)
   use_base 0: base is NULL and the experts are deltas.
   mode 0: acem_merge; mode 1: acem_layer_init / passes x feed / finish.
   The arena is exactly acem_layer_bytes() + arena_delta bytes.
   info_out: gated, refined, fallback, gamma, sigma_iso, k, directions, rule,
   method, bytes needed, err.bytes_required, passes.
   Returns the acem_result, or -1 if the problem does not fit the buffers. */
EXPORT(wasm_merge)
int wasm_merge(int method, unsigned flags, int rows, int cols, int T, int use_base,
               int mode, int arena_delta, double seed) {
    acem_options opt;
    acem_layer_info info;
    acem_error err;
    const float *experts[MAX_T];
    size_t n = (size_t)rows * (size_t)cols, need = 0, bytes;
    const float *base = use_base ? io : NULL;
    float *out;
    acem_result r;
    int t;

    message[0] = 0;
    if (rows <= 0 || cols <= 0 || T <= 0 || T > MAX_T || (size_t)(T + 2) * n > IO_FLOATS)
        return -1;
    for (t = 0; t < T; ++t) experts[t] = io + (size_t)(t + 1) * n;
    out = io + (size_t)(T + 1) * n;
    acem_wasm_memset(&opt, 0, sizeof opt);
    acem_wasm_memset(&info, 0, sizeof info);
    acem_wasm_memset(&err, 0, sizeof err);
    acem_wasm_memset(info_out, 0, sizeof info_out);
    opt.method = (acem_method)method;
    opt.flags = flags;
    opt.seed = (uint64_t)seed;

    r = acem_layer_bytes(&opt, ACEM_RULE_METHOD, (size_t)rows, (size_t)cols, (size_t)T, &need);
    info_out[9] = (double)need;
    if (r != ACEM_OK) return (int)r;
    if ((double)need + arena_delta > (double)sizeof arena) return -1;
    bytes = (size_t)((long long)need + arena_delta);

    if (mode == 0) {
        r = acem_merge(&opt, ACEM_RULE_METHOD, "wasm.w", (size_t)rows, (size_t)cols,
                       (size_t)T, base, experts, out, arena, bytes, &info, &err);
    } else {
        acem_layer L;
        int pass;
        r = acem_layer_init(&L, &opt, ACEM_RULE_METHOD, "wasm.w", (size_t)rows,
                            (size_t)cols, (size_t)T, arena, bytes, &err);
        if (r == ACEM_OK) {
            info_out[11] = acem_layer_passes(&L);
            for (pass = 0; r == ACEM_OK && pass < acem_layer_passes(&L); ++pass)
                for (t = 0; r == ACEM_OK && t < T; ++t)
                    r = acem_layer_feed(&L, experts[t], base, &err);
            if (r == ACEM_OK) r = acem_layer_finish(&L, base, out, &info, &err);
        }
    }
    if (r != ACEM_OK) {
        keep_message(&err);
        info_out[10] = (double)err.bytes_required;
        return (int)r;
    }
    info_out[0] = info.gated;
    info_out[1] = info.refined;
    info_out[2] = info.fallback;
    info_out[3] = info.gamma;
    info_out[4] = info.sigma_iso;
    info_out[5] = (double)info.k;
    info_out[6] = (double)info.directions;
    info_out[7] = (double)info.rule;
    info_out[8] = (double)info.method;
    return 0;
}

/* C = alpha op(A) op(B) + beta C with A at io[0], B at io[IO_FLOATS/4],
   C at io[IO_FLOATS/2]; dense leading dimensions; use_work: workspace from the
   arena (else NULL). Returns 0, or -1 if it does not fit. */
EXPORT(wasm_gemm)
int wasm_gemm(int transa, int transb, int m, int n, int k, float alpha, float beta,
              int use_work) {
    size_t lda = (size_t)(transa ? m : k), ldb = (size_t)(transb ? k : n);
    size_t quarter = IO_FLOATS / 4;
    void *work = 0;
    if ((size_t)m * (size_t)k > quarter || (size_t)k * (size_t)n > quarter ||
        (size_t)m * (size_t)n > quarter)
        return -1;
    if (use_work) {
        if (acem_gemm_work_bytes((size_t)m, (size_t)n, (size_t)k) > sizeof arena) return -1;
        work = arena;
    }
    acem_gemm(transa, transb, (size_t)m, (size_t)n, (size_t)k, alpha, io, lda,
              io + quarter, ldb, beta, io + 2 * quarter, (size_t)n, work);
    return 0;
}

/* ---- files: a safetensors or GGUF file of size bytes in wasm_file() ------------------ */
static unsigned char file_buf[1 << 16];
static unsigned char file_arena[1 << 16] __attribute__((aligned(64)));
static acem_st_file file_st;
static size_t file_size;
EXPORT(wasm_file) unsigned char *wasm_file(void) { return file_buf; }
EXPORT(wasm_file_bytes) int wasm_file_bytes(void) { return (int)sizeof file_buf; }
static int file_read(void *user, uint64_t off, void *dst, size_t n) {
    (void)user;
    if (off > file_size || n > file_size - (size_t)off) return 1;
    acem_wasm_memcpy(dst, file_buf + off, n);
    return 0;
}
/* Opens the file (headers only, into a static arena). info_out: format,
   tensors, pairs (GGUF) or metadata entries, arena bytes, alignment. Returns
   the acem_result (message: the error), or -1 if it does not fit. */
EXPORT(wasm_open)
int wasm_open(int size) {
    acem_read_io rio;
    acem_error err;
    size_t need = 0;
    acem_result r;
    message[0] = 0;
    acem_wasm_memset(info_out, 0, sizeof info_out);
    if (size < 0 || (size_t)size > sizeof file_buf) return -1;
    file_size = (size_t)size;
    rio.user = 0;
    rio.read = file_read;
    rio.size = file_size;
    rio.path = "dropped.file";
    r = acem_st_open_bytes(&rio, &need, &err);
    if (r == ACEM_OK && need > sizeof file_arena) return -1;
    if (r == ACEM_OK) r = acem_st_open(&file_st, &rio, file_arena, sizeof file_arena, &err);
    if (r != ACEM_OK) {
        keep_message(&err);
        return (int)r;
    }
    info_out[0] = file_st.format;
    info_out[1] = (double)file_st.n_tensors;
    info_out[2] = (double)(file_st.format == ACEM_FORMAT_GGUF ? file_st.n_kv : file_st.n_meta);
    info_out[3] = (double)need;
    info_out[4] = file_st.alignment;
    return 0;
}
/* tensor i of the open file (in name order): its name in message; info_out:
   dtype, ndim, shape[0..3], numel, bytes; with read, its values as f32 in io.
   Returns the acem_result, or -1 if i or the tensor is out of range. */
EXPORT(wasm_tensor)
int wasm_tensor(int i, int read) {
    const acem_st_tensor *t;
    acem_error err;
    size_t k;
    if (i < 0 || (size_t)i >= file_st.n_tensors) return -1;
    t = &file_st.tensors[i];
    for (k = 0; k + 1 < sizeof message && t->name[k]; ++k) message[k] = t->name[k];
    message[k] = 0;
    acem_wasm_memset(info_out, 0, sizeof info_out);
    info_out[0] = t->dtype;
    info_out[1] = (double)t->ndim;
    for (k = 0; k < t->ndim && k < 4; ++k) info_out[2 + k] = (double)t->shape[k];
    info_out[6] = (double)t->numel;
    info_out[7] = (double)(t->end - t->begin);
    if (!read) return 0;
    if (t->numel > IO_FLOATS) return -1;
    if (acem_st_read_f32(&file_st, t, io, &err) != ACEM_OK) {
        keep_message(&err);
        return (int)err.code;
    }
    return 0;
}
/* the value of a metadata / GGUF key written into message by the caller; NULL if absent */
EXPORT(wasm_meta) const char *wasm_meta(void) { return acem_st_meta(&file_st, message); }
EXPORT(wasm_message_bytes) int wasm_message_bytes(void) { return (int)sizeof message; }
