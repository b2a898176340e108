/* tests/fuzz_safetensors.c - libFuzzer target for the safetensors and GGUF
   readers. The input is a whole file: open it (a GGUF file is told apart by
   its magic), check everything an opened file promises,
   read every tensor raw and (where the dtype allows) as f32, write it back out
   with acem's writer and read that again (same tensors, same bytes); the input
   is also given to the sharded-index parser and to the PEFT adapter_config
   parser (then the scale of a few module names), and, cut at its first NUL byte,
   to the regular-expression matcher as a pattern and a text (tensor names and
   the patterns in PEFT configs come from files too). Any crash, sanitizer
   report or abort() here is a library bug.

   Build and run (see `make fuzz`):
     clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -o build/fuzz_safetensors \
           tests/fuzz_safetensors.c
     ./build/fuzz_safetensors -max_total_time=60 CORPUS_DIR SEED_DIR
   Built with -DFUZZ_SEEDS_MAIN (any C compiler, no libFuzzer) it is instead a
   program that writes a seed corpus and a dictionary:
     ./fuzz_seeds SEED_DIR DICT_FILE */
#define ACEM_IMPLEMENTATION
#include "../acem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CAP ((size_t)1 << 26) /* never allocate more than this for one tensor */

static void fz_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_safetensors: invariant violated: %s (%s)\n", what, detail ? detail : "");
    abort();
}
#define FZ_ASSERT(cond, detail)                    \
    do {                                           \
        if (!(cond)) fz_fail(#cond, (detail));     \
    } while (0)

typedef struct fz_src {
    const unsigned char *p;
    size_t n;
} fz_src;
static int fz_read(void *user, uint64_t off, void *dst, size_t n) {
    fz_src *s = (fz_src *)user;
    /* the library must never ask for bytes past io->size */
    if (off > s->n || n > s->n - (size_t)off) fz_fail("read past the end of the file", NULL);
    if (n) memcpy(dst, s->p + off, n);
    return 0;
}

typedef struct fz_out {
    unsigned char *p;
    size_t n, cap;
} fz_out;
static int fz_write(void *user, const void *src, size_t n) {
    fz_out *o = (fz_out *)user;
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        unsigned char *q;
        while (cap < o->n + n) cap *= 2;
        if (cap > FZ_CAP) return 1;
        q = (unsigned char *)realloc(o->p, cap);
        if (!q) return 1;
        o->p = q;
        o->cap = cap;
    }
    if (n) memcpy(o->p + o->n, src, n);
    o->n += n;
    return 0;
}

/* the safetensors dtypes read as f32 are listed here; for GGUF's block types
   the contract is acem_dtype_is_float (tests/ggml_check.c checks the values) */
static int fz_f32_ok(acem_dtype d) {
    return d == ACEM_DT_F32 || d == ACEM_DT_F16 || d == ACEM_DT_BF16 || d == ACEM_DT_F64 || d == ACEM_DT_F8_E4M3 ||
           d == ACEM_DT_F8_E5M2 || (d >= ACEM_DT_GGUF_FIRST && acem_dtype_is_float(d));
}

/* Opens p[0..n); returns the arena (caller frees) or NULL if refused. */
static void *fz_open(const unsigned char *p, size_t n, fz_src *src, acem_st_file *f, acem_result *res) {
    acem_read_io io;
    acem_error err;
    size_t need = 0;
    void *arena;
    src->p = p;
    src->n = n;
    io.user = src;
    io.read = fz_read;
    io.size = n;
    io.path = "fuzz.safetensors";
    *res = acem_st_open_bytes(&io, &need, &err);
    if (*res != ACEM_OK) return NULL;
    FZ_ASSERT(need <= 8 * n + 4096, "open_bytes asks for too much"); /* 0 for a GGUF file without pairs or tensors */
    arena = malloc(need ? need : 1);
    if (!arena) return NULL;
    *res = acem_st_open(f, &io, arena, need, &err);
    if (*res != ACEM_OK) {
        FZ_ASSERT(err.message[0] != 0 && strstr(err.message, "fuzz.safetensors") != NULL, err.message);
        free(arena);
        return NULL;
    }
    return arena;
}

static void fz_check_gguf(const acem_st_file *f, size_t size) {
    size_t k, d;
    uint64_t prev_end = 0;
    FZ_ASSERT(f->alignment && !(f->alignment & (f->alignment - 1)), "alignment");
    FZ_ASSERT(f->data_start + f->data_len == size && f->data_start <= size, "data layout");
    for (k = 0; k < f->n_kv; ++k) {
        FZ_ASSERT(f->kv[k].key && f->kv[k].value && f->kv[k].type <= 12, "kv");
        FZ_ASSERT(f->kv[k].begin >= 24 && f->kv[k].begin < f->kv[k].end && f->kv[k].end <= size, f->kv[k].key);
        FZ_ASSERT(f->kv[k].begin >= prev_end, f->kv[k].key);
        prev_end = f->kv[k].end;
    }
    FZ_ASSERT(f->n_meta == f->n_kv, "one meta pair per kv pair");
    for (k = 0; k < f->n_meta; ++k) FZ_ASSERT(acem_st_meta(f, f->meta[2 * k]) == f->meta[2 * k + 1], f->meta[2 * k]);
    for (k = 0; k < f->n_tensors; ++k) {
        const acem_st_tensor *t = &f->tensors[k];
        uint64_t numel = 1, bytes, blk;
        FZ_ASSERT(t->name != NULL && strlen(t->name) < 64, "name");
        if (k) FZ_ASSERT(strcmp(f->tensors[k - 1].name, t->name) < 0, t->name);
        FZ_ASSERT(acem_st_find(f, t->name) == t, t->name);
        FZ_ASSERT(acem_gguf_type_id(t->dtype) >= 0 && t->ndim <= 4, t->name);
        for (d = 0; d < t->ndim; ++d) numel *= t->shape[d];
        FZ_ASSERT(numel == t->numel, t->name);
        FZ_ASSERT(acem_dtype_bytes(t->dtype, numel, &bytes, &blk) && t->end - t->begin == bytes, t->name);
        FZ_ASSERT(t->begin % f->alignment == 0 && t->end <= f->data_len, t->name);
        FZ_ASSERT(t->ndim == 0 ? blk == 1 : t->shape[t->ndim - 1] % blk == 0, t->name);
    }
}

static void fz_check_file(const acem_st_file *f, size_t size) {
    size_t k, d;
    uint64_t total = 0;
    if (f->format == ACEM_FORMAT_GGUF) {
        fz_check_gguf(f, size);
        return;
    }
    FZ_ASSERT(f->data_start == 8 + f->header_len && f->data_start + f->data_len == size, "data layout");
    for (k = 0; k < f->n_tensors; ++k) {
        const acem_st_tensor *t = &f->tensors[k];
        uint64_t numel = 1;
        FZ_ASSERT(t->name != NULL, "name");
        if (k) FZ_ASSERT(strcmp(f->tensors[k - 1].name, t->name) < 0, t->name);
        FZ_ASSERT(acem_st_find(f, t->name) == t, t->name);
        FZ_ASSERT(t->dtype > ACEM_DT_UNKNOWN && t->dtype < ACEM_DT_COUNT, t->name);
        FZ_ASSERT(t->ndim <= ACEM_ST_MAX_DIMS, t->name);
        for (d = 0; d < t->ndim; ++d) numel *= t->shape[d];
        FZ_ASSERT(numel == t->numel, t->name);
        FZ_ASSERT(t->begin <= t->end && t->end <= f->data_len, t->name);
        FZ_ASSERT(numel * acem_dtype_bits(t->dtype) == 8 * (t->end - t->begin), t->name);
        total += t->end - t->begin;
    }
    FZ_ASSERT(total == f->data_len, "tensor sizes sum to the data length");
    for (k = 0; k < f->n_meta; ++k) {
        FZ_ASSERT(f->meta[2 * k] && f->meta[2 * k + 1], "meta pair");
        FZ_ASSERT(acem_st_meta(f, f->meta[2 * k]) == f->meta[2 * k + 1], f->meta[2 * k]);
    }
}

/* reads every tensor; returns the raw data buffer of the whole data section */
static void fz_read_all(const acem_st_file *f, const unsigned char *file) {
    size_t k;
    acem_error err;
    for (k = 0; k < f->n_tensors; ++k) {
        const acem_st_tensor *t = &f->tensors[k];
        size_t nb = (size_t)(t->end - t->begin);
        unsigned char *raw;
        float *fl;
        acem_result r;
        if (nb > FZ_CAP || t->numel > FZ_CAP) continue;
        raw = (unsigned char *)malloc(nb ? nb : 1);
        FZ_ASSERT(acem_st_read_raw(f, t, raw, &err) == ACEM_OK, t->name);
        FZ_ASSERT(nb == 0 || memcmp(raw, file + f->data_start + t->begin, nb) == 0, t->name);
        free(raw);
        fl = (float *)malloc(t->numel ? (size_t)t->numel * sizeof(float) : 1);
        r = acem_st_read_f32(f, t, fl, &err);
        if (fz_f32_ok(t->dtype)) FZ_ASSERT(r == ACEM_OK, t->name);
        else FZ_ASSERT(r == ACEM_ERR_FORMAT, t->name);
        free(fl);
    }
}

/* the rewritten file g (bytes w) holds f's tensors (bytes file) in f's
   order: names, dtypes, shapes and data */
static void fz_same_tensors(const acem_st_file *f, const unsigned char *file, const acem_st_file *g,
                            const unsigned char *w) {
    size_t k, d;
    for (k = 0; k < f->n_tensors; ++k) {
        const acem_st_tensor *a = &f->tensors[k], *b = &g->tensors[k];
        size_t nb = (size_t)(a->end - a->begin);
        FZ_ASSERT(!strcmp(a->name, b->name) && a->dtype == b->dtype && a->ndim == b->ndim && a->numel == b->numel,
                  a->name);
        for (d = 0; d < a->ndim; ++d) FZ_ASSERT(a->shape[d] == b->shape[d], a->name);
        FZ_ASSERT(b->end - b->begin == nb, a->name);
        FZ_ASSERT(nb == 0 || memcmp(file + f->data_start + a->begin, w + g->data_start + b->begin, nb) == 0, a->name);
    }
}
/* GGUF: write it again with acem's writer (its pairs copied, the tensors in
   file order), read it back, compare pairs and bytes */
static int fz_cmp_begin(const void *a, const void *b) {
    uint64_t x = ((const acem_st_tensor *)a)->begin, y = ((const acem_st_tensor *)b)->begin;
    return x < y ? -1 : x > y;
}
static void fz_rewrite_gguf(const acem_st_file *f, const unsigned char *file) {
    size_t n = f->n_tensors, k, j = 0;
    acem_st_tensor *t = (acem_st_tensor *)malloc((n ? n : 1) * sizeof *t);
    fz_out out;
    acem_write_io io;
    acem_error err;
    acem_result r;
    acem_st_file g;
    fz_src src2;
    void *arena;
    if ((uint64_t)f->alignment * (n + 2) > FZ_CAP / 2) { /* the padding alone would pass the writer's cap */
        free(t);
        return;
    }
    memcpy(t, f->tensors, n * sizeof *t);
    qsort(t, n, sizeof *t, fz_cmp_begin);
    memset(&out, 0, sizeof out);
    io.user = &out;
    io.write = fz_write;
    io.path = "fuzz.out";
    r = acem_gguf_write_header(&io, f, t, n, NULL, 0, 0, NULL, &err);
    FZ_ASSERT(r == ACEM_OK, err.message);
    for (k = 0; k < n; ++k) {
        const acem_st_tensor *orig = acem_st_find(f, t[k].name);
        if (r == ACEM_OK) r = acem_st_write_raw(&io, &t[k], file + f->data_start + orig->begin, &err);
    }
    FZ_ASSERT(r == ACEM_OK, err.message);
    arena = fz_open(out.p, out.n, &src2, &g, &r);
    FZ_ASSERT(arena != NULL, "acem cannot read back the GGUF it wrote");
    FZ_ASSERT(g.n_tensors == n && g.alignment == f->alignment && g.gguf_version == 3, "GGUF rewrite");
    for (k = 0; k < f->n_kv; ++k) { /* every pair byte for byte, general.alignment moved to the end */
        const acem_gguf_kv *a = &f->kv[k];
        if (!strcmp(a->key, "general.alignment")) continue;
        FZ_ASSERT(j < g.n_kv && !strcmp(g.kv[j].key, a->key), a->key);
        FZ_ASSERT(g.kv[j].end - g.kv[j].begin == a->end - a->begin &&
                      !memcmp(out.p + g.kv[j].begin, file + a->begin, (size_t)(a->end - a->begin)), a->key);
        ++j;
    }
    FZ_ASSERT(g.n_kv == j + (f->alignment != 32), "GGUF pair count");
    fz_same_tensors(f, file, &g, out.p);
    free(arena);
    free(out.p);
    free(t);
}

/* write the opened file with acem's writer, read it back, compare */
static void fz_rewrite(const acem_st_file *f, const unsigned char *file) {
    size_t n = f->n_tensors, k, d, n_meta = 0;
    acem_st_tensor *t;
    size_t *order;
    const char **meta;
    fz_out out;
    acem_write_io io;
    acem_error err;
    acem_result r;
    acem_st_file g;
    fz_src src2;
    void *arena;
    if (f->format == ACEM_FORMAT_GGUF) {
        fz_rewrite_gguf(f, file);
        return;
    }
    for (k = 0; k < n; ++k)
        if (!f->tensors[k].name[0]) return; /* the writer refuses empty names */
    t = (acem_st_tensor *)malloc((n ? n : 1) * sizeof *t);
    order = (size_t *)malloc((n ? n : 1) * sizeof *order);
    meta = (const char **)malloc((2 * f->n_meta + 2) * sizeof *meta);
    for (k = 0; k < n; ++k) {
        memset(&t[k], 0, sizeof t[k]);
        t[k].name = f->tensors[k].name;
        t[k].dtype = f->tensors[k].dtype;
        t[k].ndim = f->tensors[k].ndim;
        for (d = 0; d < t[k].ndim; ++d) t[k].shape[d] = f->tensors[k].shape[d];
    }
    for (k = 0; k < f->n_meta; ++k) {
        if (!strcmp(f->meta[2 * k], "format")) continue;
        meta[2 * n_meta] = f->meta[2 * k];
        meta[2 * n_meta + 1] = f->meta[2 * k + 1];
        n_meta++;
    }
    memset(&out, 0, sizeof out);
    io.user = &out;
    io.write = fz_write;
    io.path = "fuzz.out";
    r = acem_st_write_header(&io, t, n, meta, n_meta, order, NULL, &err);
    FZ_ASSERT(r == ACEM_OK, err.message);
    for (k = 0; k < n; ++k) {
        const acem_st_tensor *x = &t[order[k]];
        const acem_st_tensor *orig = acem_st_find(f, x->name);
        FZ_ASSERT(orig && orig->end - orig->begin == x->end - x->begin, x->name);
        FZ_ASSERT(acem_st_write_raw(&io, x, file + f->data_start + orig->begin, &err) == ACEM_OK, err.message);
    }
    arena = fz_open(out.p, out.n, &src2, &g, &r);
    FZ_ASSERT(arena != NULL, "acem cannot read back what it wrote");
    FZ_ASSERT(g.n_tensors == n, "tensor count after rewrite");
    FZ_ASSERT((g.header_len + 8) % 8 == 0 && out.p[8] == '{', "canonical header");
    fz_same_tensors(f, file, &g, out.p);
    FZ_ASSERT(acem_st_meta(&g, "format") && !strcmp(acem_st_meta(&g, "format"), "pt"), "format pt");
    FZ_ASSERT(g.n_meta == n_meta + 1, "meta count after rewrite");
    for (k = 0; k < n_meta; ++k) {
        const char *v = acem_st_meta(&g, meta[2 * k]);
        FZ_ASSERT(v && !strcmp(v, meta[2 * k + 1]), meta[2 * k]);
    }
    free(arena);
    free(out.p);
    free(t);
    free(order);
    free(meta);
}

static void fz_index(const unsigned char *data, size_t size) {
    char *buf = (char *)malloc(size + 1);
    const char *names[16], *files[16];
    size_t n = 0, k;
    uint64_t total;
    acem_error err;
    memcpy(buf, data, size);
    if (acem_st_index_parse(buf, size, names, files, 16, &n, &total, &err) == ACEM_OK) {
        FZ_ASSERT(n <= 16, "index count");
        for (k = 0; k < n; ++k) FZ_ASSERT(names[k] >= buf && names[k] <= buf + size && files[k] >= buf &&
                                              files[k] <= buf + size && strlen(names[k]) <= size,
                                          "index strings inside the buffer");
    } else
        FZ_ASSERT(err.message[0] != 0, "index error message");
    free(buf);
}

/* adapter_config.json: parsed in a buffer and an arena of the sizes the
   library asks for; the scales it then gives must be numbers */
static void fz_peft(const unsigned char *data, size_t size) {
    static const char *const mods[] = {"model.layers.0.self_attn.q_proj", "h.11.mlp.c_fc", "", "q_proj"};
    char *buf = (char *)malloc(size + 1);
    size_t bytes = acem_peft_config_bytes(size), k;
    void *arena = malloc(bytes ? bytes : 1);
    acem_peft_config cfg;
    acem_error err;
    memcpy(buf, data, size);
    buf[size] = 0;
    if (acem_peft_config_parse(buf, size, &cfg, arena, bytes, "adapter_config.json", &err) == ACEM_OK) {
        for (k = 0; k < sizeof mods / sizeof mods[0]; ++k) {
            double r = -1, sc = acem_peft_scaling(&cfg, mods[k], 8, &r);
            FZ_ASSERT(sc == sc && r == r, mods[k]);
        }
    } else
        FZ_ASSERT(err.message[0] != 0, "peft error message");
    free(arena);
    free(buf);
}

/* pattern NUL text: a pattern that checks out searches without failing
   (the matcher is linear: libFuzzer's timeout catches a slow one); an
   invalid one never matches */
static void fz_regex(const unsigned char *data, size_t size) {
    char *buf = (char *)malloc(size + 2);
    const char *text;
    size_t k;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = 0;
    for (k = 0; k < size && buf[k]; ++k) {}
    text = buf + k + 1;
    if (acem_regex_check(buf) != ACEM_OK) FZ_ASSERT(acem_regex_search(buf, text) == 0, buf);
    else (void)acem_regex_search(buf, text);
    free(buf);
}

#ifdef __cplusplus
extern "C" {
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#ifdef __cplusplus
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    acem_st_file f;
    fz_src src;
    acem_result r;
    void *arena;
    /* a private copy, so that a read of the input past `size` is caught by ASan */
    unsigned char *file = (unsigned char *)malloc(size ? size : 1);
    if (size) memcpy(file, data, size);
    arena = fz_open(file, size, &src, &f, &r);
    if (arena) {
        fz_check_file(&f, size);
        fz_read_all(&f, file);
        fz_rewrite(&f, file);
        free(arena);
    }
    fz_index(file, size);
    fz_peft(file, size);
    fz_regex(file, size);
    free(file);
    return 0;
}

/* ---- seed corpus and dictionary ------------------------------------------------ */
#ifdef FUZZ_SEEDS_MAIN
#include "gguf_build.h"
static void seed_write(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    FILE *fp;
    sprintf(path, "%.900s/%s", dir, name);
    fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(1); }
    if (n) fwrite(p, 1, n, fp);
    fclose(fp);
}
static void seed_raw(const char *dir, const char *name, const char *json, size_t dlen) {
    size_t jl = strlen(json), k;
    unsigned char *b = (unsigned char *)malloc(8 + jl + dlen);
    for (k = 0; k < 8; ++k) b[k] = (unsigned char)((uint64_t)jl >> (8 * k));
    memcpy(b + 8, json, jl);
    for (k = 0; k < dlen; ++k) b[8 + jl + k] = (unsigned char)(k * 37 + 1);
    seed_write(dir, name, b, 8 + jl + dlen);
    free(b);
}
static void seed_written(const char *dir, const char *name, acem_st_tensor *t, size_t n, const char *const *meta,
                         size_t n_meta) {
    fz_out out;
    acem_write_io io;
    acem_error err;
    size_t order[64], k, i;
    unsigned char data[512];
    for (i = 0; i < sizeof data; ++i) data[i] = (unsigned char)(i * 29 + 7);
    memset(&out, 0, sizeof out);
    io.user = &out;
    io.write = fz_write;
    io.path = name;
    if (acem_st_write_header(&io, t, n, meta, n_meta, order, NULL, &err) != ACEM_OK) {
        fprintf(stderr, "%s: %s\n", name, err.message);
        exit(1);
    }
    for (k = 0; k < n; ++k) acem_st_write_raw(&io, &t[order[k]], data, &err);
    seed_write(dir, name, out.p, out.n);
    free(out.p);
}
int main(int argc, char **argv) {
    static const char *const dict[] = {
        "\"__metadata__\"", "\"format\"", "\"pt\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F32\"",
        "\"F16\"", "\"BF16\"", "\"F64\"", "\"F8_E4M3\"", "\"F8_E5M2\"", "\"F4\"", "\"F6_E2M3\"", "\"U8\"", "\"I64\"",
        "\"BOOL\"", "\"C64\"", "null", "true", "false", "\\u0000", "\\ud83d\\ude00", "\\\"", "18446744073709551615",
        "4294967296", "100000000", "[0,0]", "[]", "{}", "\"weight_map\"", "\"metadata\"", "\"total_size\"",
        "\xc3\xa9", "\xf0\x9f\x98\x80", "1e2", "-1", "1.5", "(a|aa)*", "GGUF", "general.alignment", "\"rank_pattern\"", "\"alpha_pattern\"", "\"target_modules\"", "\"lora_alpha\"", "[^a-z]", "\\d+", "$", "^", ")?", "|"};
    const char *meta[] = {"k", "v", "note", "\xc3\xa9t\xc3\xa9 \"q\" \\"};
    acem_st_tensor t[24];
    size_t k, d, n;
    FILE *fp;
    if (argc != 3) {
        fprintf(stderr, "usage: %s SEED_DIR DICT_FILE\n", argv[0]);
        return 2;
    }
    /* three tensors and metadata */
    memset(t, 0, sizeof t);
    t[0].name = "w"; t[0].dtype = ACEM_DT_F32; t[0].ndim = 2; t[0].shape[0] = 2; t[0].shape[1] = 3;
    t[1].name = "b"; t[1].dtype = ACEM_DT_F16; t[1].ndim = 1; t[1].shape[0] = 4;
    t[2].name = "s"; t[2].dtype = ACEM_DT_BF16; t[2].ndim = 0;
    seed_written(argv[1], "small.safetensors", t, 3, meta, 2);
    /* every dtype, with varied shapes */
    memset(t, 0, sizeof t);
    for (n = 0, d = 1; d < (size_t)ACEM_DT_COUNT; ++d, ++n) {
        t[n].name = acem_dtype_name((acem_dtype)d);
        t[n].dtype = (acem_dtype)d;
        t[n].ndim = d % 4;
        for (k = 0; k < t[n].ndim; ++k) t[n].shape[k] = (d + k) % 3 == 0 ? 0 : 2 + (d + k) % 3;
        if (acem_dtype_bits((acem_dtype)d) % 8) { t[n].ndim = 1; t[n].shape[0] = 4; }
    }
    seed_written(argv[1], "dtypes.safetensors", t, n, NULL, 0);
    seed_written(argv[1], "empty.safetensors", t, 0, NULL, 0);
    /* hand-written headers: whitespace, unknown keys, escapes, null metadata */
    seed_raw(argv[1], "raw1.safetensors",
             " {\"__metadata__\":null, \"a\\u00e9\\n\":{\"dtype\":\"F32\",\"x\":[1,{\"y\":null}],\"shape\":[2],"
             "\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[8,8]}} ",
             8);
    seed_raw(argv[1], "raw2.safetensors",
             "{\"b\":{\"data_offsets\":[0,2],\"shape\":[],\"dtype\":\"BF16\"},\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":"
             "[1,1,1,1,1,1,1,3],\"data_offsets\":[2,5]}}",
             5);
    seed_raw(argv[1], "bad1.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0);
    {
        static const char idx[] = "{\"metadata\":{\"total_size\":1234},\"weight_map\":{\"a\":\"model-00001-of-00002."
                                  "safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}";
        seed_write(argv[1], "index.json", idx, sizeof idx - 1);
    }
    { /* a PEFT adapter config with patterns */
        static const char cfg[] = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"use_rslora\":false,"
                                  "\"target_modules\":[\"q_proj\",\"v_proj\"],\"rank_pattern\":{\"^h\\\\.1[0-9]\":4},"
                                  "\"alpha_pattern\":{\"c_fc\":32},\"fan_in_fan_out\":true,\"modules_to_save\":null}";
        seed_write(argv[1], "adapter_config.json", cfg, sizeof cfg - 1);
    }
    { /* pattern NUL text, for the regular-expression matcher */
        static const char re[] = "^(q|k|v)_proj$|h\\.[0-9]+\\.(attn|mlp)*[^.]\0h.11.mlp.c_fc";
        seed_write(argv[1], "regex.txt", re, sizeof re - 1);
    }
    { /* GGUF: pairs of every kind, a custom alignment, plain and block tensors */
        gb b;
        static const uint64_t ne2[2] = {32, 2}, ne1[1] = {3};
        unsigned char data[256];
        memset(&b, 0, sizeof b);
        gb_head(&b, 3, 4, 5);
        gb_kv_str(&b, "general.architecture", "llama");
        gb_kv_int(&b, "general.alignment", 4, 64, 4);
        gb_kv_int(&b, "n", 11, (uint64_t)-3, 8);
        gb_str(&b, "toks"); gb_le(&b, 9, 4); gb_le(&b, 8, 4); gb_le(&b, 2, 8); gb_str(&b, "a"); gb_str(&b, "bc");
        gb_str(&b, "f"); gb_le(&b, 9, 4); gb_le(&b, 6, 4); gb_le(&b, 1, 8); gb_le(&b, 0x3f800000u, 4);
        gb_info(&b, "q8", 2, ne2, 8, 0);
        gb_info(&b, "q4", 2, ne2, 2, 128);
        gb_info(&b, "b", 1, ne1, 0, 192);
        gb_info(&b, "q5", 2, ne2, 7, 256);
        gb_pad(&b, 64);
        for (k = 0; k < sizeof data; ++k) data[k] = (unsigned char)(k * 29 + 7);
        gb_put(&b, data, 68); gb_pad(&b, 64);
        gb_put(&b, data, 36); gb_pad(&b, 64);
        gb_put(&b, data, 12); gb_pad(&b, 64);
        gb_put(&b, data, 48);
        seed_write(argv[1], "small.gguf", b.p, b.n);
        free(b.p);
    }
    fp = fopen(argv[2], "w");
    if (!fp) { perror(argv[2]); return 1; }
    for (k = 0; k < sizeof dict / sizeof dict[0]; ++k) {
        const char *s = dict[k];
        fputc('"', fp);
        for (; *s; ++s) {
            unsigned char c = (unsigned char)*s;
            if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
            else if (c < 0x20 || c >= 0x7f) fprintf(fp, "\\x%02x", c);
            else fputc(c, fp);
        }
        fputs("\"\n", fp);
    }
    fclose(fp);
    return 0;
}
#endif
