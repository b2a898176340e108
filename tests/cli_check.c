/* tests/cli_check.c - checks the files `acem` writes, for tests/test_cli.sh.

   cli_check merge [options] OUT BASE EXPERT...
       Recomputes every tensor in memory with acem_merge (acem_tensor_rule for
       the rule, the tensors as f32 exactly as acem_st_read_f32 gives them),
       converts the result to the output tensor's dtype with acem's converters
       and requires OUT's bytes to be identical (bitwise). Non-float tensors
       must be the base's bytes. OUT, BASE and EXPERT are .safetensors files,
       directories (every *.safetensors in it; an index, if present, must agree)
       or GGUF files. A GGUF OUT must also hold the base's key/value pairs
       byte for byte, in order, and its tensors in the base's order; its dtypes
       follow the GGUF rule (--out-dtype for 2+ dims, q8_0 where the last dim is
       whole blocks; merged block-quantized tensors as F16).
       options: --method M --eps E --tau T --k-frac K --lambda L --density D
                --drop P --seed S --exclude REGEX (repeatable)
                --out-dtype f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1
                --partial (OUT may hold a subset of the tensors: a --shard output)
   cli_check same A B
       A and B hold the same tensors (names, dtypes, shapes, bytes).
   cli_check gguf-view FILE
       acem's reading of a GGUF file as JSON (for tests/gguf_check.mjs, which
       compares it with another GGUF reader's): version, data offset, the
       pairs in order (key, type, text), the tensors in file order (name, dims
       in ggml's order, type id, offset).
   Prints what it found; exits 0 when everything matches, 1 otherwise. */
#define _POSIX_C_SOURCE 200809L
#define ACEM_IMPLEMENTATION
#include "../acem.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct tref {
    const acem_st_tensor *t;
    acem_st_file *f;
    const char *file;
} tref;

typedef struct model {
    size_t nf, n;
    acem_st_file *f;
    char **paths;
    tref *t;
} model;

static int g_fail;
#define FAIL(...) do { printf("FAIL: " __VA_ARGS__); printf("\n"); g_fail = 1; } while (0)

static void open_file(acem_st_file *st, const char *path) {
    FILE *fp = fopen(path, "rb");
    acem_read_io io;
    acem_error err;
    size_t need;
    void *arena;
    if (!fp) { printf("FAIL: cannot open %s\n", path); exit(1); }
    acem_stdio_reader(&io, fp, strcpy((char *)malloc(strlen(path) + 1), path));
    if (acem_st_open_bytes(&io, &need, &err) != ACEM_OK || !(arena = malloc(need)) ||
        acem_st_open(st, &io, arena, need, &err) != ACEM_OK) {
        printf("FAIL: %s\n", err.message);
        exit(1);
    }
}

static int cmp_tref(const void *a, const void *b) { return strcmp(((const tref *)a)->t->name, ((const tref *)b)->t->name); }
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void check_index(const model *m, const char *dir);

static void model_open(model *m, const char *path) {
    struct stat s;
    size_t k, j;
    memset(m, 0, sizeof *m);
    if (stat(path, &s) != 0) { printf("FAIL: %s does not exist\n", path); exit(1); }
    m->paths = (char **)calloc(4096, sizeof(char *));
    if (S_ISDIR(s.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t l = strlen(e->d_name);
            if (l > 12 && !strcmp(e->d_name + l - 12, ".safetensors") && e->d_name[0] != '.') {
                m->paths[m->nf] = (char *)malloc(strlen(path) + l + 2);
                sprintf(m->paths[m->nf++], "%s/%s", path, e->d_name);
            }
        }
        closedir(d);
        qsort(m->paths, m->nf, sizeof(char *), cmp_str);
    } else {
        m->paths[m->nf++] = (char *)path;
    }
    m->f = (acem_st_file *)calloc(m->nf ? m->nf : 1, sizeof(acem_st_file));
    for (k = 0; k < m->nf; ++k) {
        open_file(&m->f[k], m->paths[k]);
        m->n += m->f[k].n_tensors;
    }
    m->t = (tref *)calloc(m->n ? m->n : 1, sizeof(tref));
    m->n = 0;
    for (k = 0; k < m->nf; ++k)
        for (j = 0; j < m->f[k].n_tensors; ++j) {
            m->t[m->n].t = &m->f[k].tensors[j];
            m->t[m->n].f = &m->f[k];
            m->t[m->n].file = m->paths[k];
            m->n++;
        }
    qsort(m->t, m->n, sizeof(tref), cmp_tref);
    for (k = 1; k < m->n; ++k)
        if (!strcmp(m->t[k - 1].t->name, m->t[k].t->name)) FAIL("%s: tensor %s twice", path, m->t[k].t->name);
    if (S_ISDIR(s.st_mode)) check_index(m, path);
}

static const tref *find(const model *m, const char *name) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->t[mid].t->name, name);
        if (!c) return &m->t[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static void check_index(const model *m, const char *dir) {
    char path[4096];
    FILE *fp;
    long len;
    char *json;
    const char **names, **files;
    size_t n = 0, k;
    uint64_t total = 0, sum = 0;
    acem_error err;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!(fp = fopen(path, "rb"))) return;
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    json = (char *)malloc((size_t)len + 1);
    if (fread(json, 1, (size_t)len, fp) != (size_t)len) { FAIL("%s: read error", path); fclose(fp); return; }
    fclose(fp);
    names = (const char **)calloc((size_t)len, sizeof(char *));
    files = (const char **)calloc((size_t)len, sizeof(char *));
    if (acem_st_index_parse(json, (size_t)len, names, files, (size_t)len, &n, &total, &err) != ACEM_OK) {
        FAIL("%s: %s", path, err.message);
        return;
    }
    if (n != m->n) FAIL("%s: %zu entries for %zu tensors", path, n, m->n);
    for (k = 0; k < n; ++k) {
        const tref *t = find(m, names[k]);
        const char *b;
        if (!t) { FAIL("%s: %s is in no shard", path, names[k]); continue; }
        b = strrchr(t->file, '/');
        b = b ? b + 1 : t->file;
        if (strcmp(b, files[k])) FAIL("%s: %s is in %s, not %s", path, names[k], b, files[k]);
    }
    for (k = 0; k < m->n; ++k) sum += m->t[k].t->end - m->t[k].t->begin;
    if (sum != total) FAIL("%s: total_size %llu but the tensors hold %llu bytes", path, (unsigned long long)total, (unsigned long long)sum);
    for (k = 0; k < m->nf; ++k) {
        char want[64];
        const char *b = strrchr(m->paths[k], '/');
        b = b ? b + 1 : m->paths[k];
        snprintf(want, sizeof want, "model-%05zu-of-%05zu.safetensors", k + 1, m->nf);
        if (strcmp(b, want)) FAIL("%s: shard file name %s, expected %s", dir, b, want);
    }
}

static void *read_raw(const tref *t) {
    size_t nb = (size_t)(t->t->end - t->t->begin);
    void *p = malloc(nb ? nb : 1);
    acem_error err;
    if (acem_st_read_raw(t->f, t->t, p, &err) != ACEM_OK) { FAIL("%s", err.message); exit(1); }
    return p;
}
static float *read_f32(const tref *t) {
    float *p = (float *)malloc(t->t->numel ? (size_t)t->t->numel * sizeof(float) : 4);
    acem_error err;
    if (acem_st_read_f32(t->f, t->t, p, &err) != ACEM_OK) { FAIL("%s", err.message); exit(1); }
    return p;
}

/* a tensor's bytes as acem_st_write_f32 encodes res (acem's converters and quantizers) */
typedef struct mbuf { unsigned char *p; size_t n; } mbuf;
static int mbuf_write(void *user, const void *src, size_t n) {
    mbuf *b = (mbuf *)user;
    memcpy(b->p + b->n, src, n);
    b->n += n;
    return 0;
}
static void encode(const acem_st_tensor *like, acem_dtype dt, const float *res, unsigned char *dst, size_t nb) {
    acem_st_tensor t = *like;
    acem_write_io io;
    acem_error err;
    mbuf b;
    b.p = dst;
    b.n = 0;
    io.user = &b;
    io.write = mbuf_write;
    io.path = "(memory)";
    t.dtype = dt;
    t.begin = 0;
    t.end = nb;
    t.pad = 0;
    if (acem_st_write_f32(&io, &t, res, &err) != ACEM_OK || b.n != nb) FAIL("%s: cannot encode as %s", t.name, acem_dtype_name(dt));
}
/* GGUF: the base's pairs (all but general.alignment) byte for byte and in
   order, and the tensors in the base's order */
static int cmp_begin(const void *a, const void *b) {
    uint64_t x = (*(const acem_st_tensor *const *)a)->begin, y = (*(const acem_st_tensor *const *)b)->begin;
    return x < y ? -1 : x > y;
}
static void check_gguf_layout(const acem_st_file *out, const acem_st_file *base, int partial) {
    size_t k, j = 0, nb = 0, no = 0;
    const acem_st_tensor **bo = (const acem_st_tensor **)calloc(base->n_tensors + 1, sizeof(void *));
    const acem_st_tensor **oo = (const acem_st_tensor **)calloc(out->n_tensors + 1, sizeof(void *));
    for (k = 0; k < base->n_kv; ++k) {
        const acem_gguf_kv *b = &base->kv[k];
        size_t len = (size_t)(b->end - b->begin);
        unsigned char *x, *y;
        if (!strcmp(b->key, "general.alignment")) continue;
        while (j < out->n_kv && strcmp(out->kv[j].key, b->key)) ++j;
        if (j == out->n_kv) { FAIL("GGUF pair %s of the base is missing or out of order", b->key); return; }
        x = (unsigned char *)malloc(len + 1);
        y = (unsigned char *)malloc(len + 1);
        if (out->kv[j].end - out->kv[j].begin != len || base->io.read(base->io.user, b->begin, x, len) ||
            out->io.read(out->io.user, out->kv[j].begin, y, len) || memcmp(x, y, len))
            FAIL("GGUF pair %s is not the base's bytes", b->key);
        free(x);
        free(y);
    }
    for (k = 0; k < base->n_tensors; ++k) bo[nb++] = &base->tensors[k];
    for (k = 0; k < out->n_tensors; ++k) oo[no++] = &out->tensors[k];
    qsort(bo, nb, sizeof(void *), cmp_begin);
    qsort(oo, no, sizeof(void *), cmp_begin);
    for (k = 0, j = 0; k < nb && !partial; ++k)
        if (j >= no || strcmp(bo[k]->name, oo[j++]->name)) { FAIL("GGUF tensor order differs at %s", bo[k]->name); break; }
    free(bo);
    free(oo);
}

static int same_shape(const acem_st_tensor *a, const acem_st_tensor *b) {
    size_t d;
    if (a->ndim != b->ndim) return 0;
    for (d = 0; d < a->ndim; ++d)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

static int cmd_same(const char *pa, const char *pb) {
    model a, b;
    size_t k;
    model_open(&a, pa);
    model_open(&b, pb);
    if (a.n != b.n) FAIL("%s has %zu tensors, %s has %zu", pa, a.n, pb, b.n);
    for (k = 0; k < a.n; ++k) {
        const tref *x = &a.t[k], *y = find(&b, x->t->name);
        void *p, *q;
        if (!y) { FAIL("%s not in %s", x->t->name, pb); continue; }
        if (x->t->dtype != y->t->dtype || !same_shape(x->t, y->t)) { FAIL("%s: dtype or shape differ", x->t->name); continue; }
        p = read_raw(x);
        q = read_raw(y);
        if (memcmp(p, q, (size_t)(x->t->end - x->t->begin))) FAIL("%s: bytes differ between %s and %s", x->t->name, pa, pb);
        free(p);
        free(q);
    }
    printf("cli_check same: %zu tensors compared: %s\n", a.n, g_fail ? "DIFFERENT" : "identical");
    return g_fail;
}

static int cmd_merge(int argc, char **argv) {
    acem_options opt;
    const char *excl[16];
    acem_dtype out_dt = ACEM_DT_UNKNOWN;
    int partial = 0, i;
    const char *pos[64];
    int npos = 0;
    model out, base, ex[32];
    size_t T, k, e, checked = 0;
    int gguf;
    memset(&opt, 0, sizeof opt);
    opt.exclude = excl;
    for (i = 0; i < argc; ++i) {
        const char *s = argv[i];
        if (!strcmp(s, "--method")) opt.method = acem_method_from_name(argv[++i]);
        else if (!strcmp(s, "--eps")) opt.eps = atof(argv[++i]);
        else if (!strcmp(s, "--tau")) opt.tau = atof(argv[++i]);
        else if (!strcmp(s, "--k-frac")) opt.k_frac = atof(argv[++i]);
        else if (!strcmp(s, "--lambda")) opt.lambda = atof(argv[++i]);
        else if (!strcmp(s, "--density")) opt.density = atof(argv[++i]);
        else if (!strcmp(s, "--drop")) opt.drop = atof(argv[++i]);
        else if (!strcmp(s, "--seed")) opt.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(s, "--exclude")) excl[opt.n_exclude++] = argv[++i];
        else if (!strcmp(s, "--partial")) partial = 1;
        else if (!strcmp(s, "--out-dtype")) {
            const char *v = argv[++i];
            char up[16];
            size_t c;
            for (c = 0; c + 1 < sizeof up && v[c]; ++c) up[c] = (char)(v[c] >= 'a' && v[c] <= 'z' ? v[c] - 32 : v[c]);
            up[c] = 0;
            out_dt = acem_dtype_from_name(up);
        } else pos[npos++] = s;
    }
    if (npos < 3 || opt.method == ACEM_METHOD_COUNT) { fprintf(stderr, "usage: cli_check merge [options] OUT BASE EXPERT...\n"); return 2; }
    model_open(&out, pos[0]);
    model_open(&base, pos[1]);
    T = (size_t)npos - 2;
    for (e = 0; e < T; ++e) model_open(&ex[e], pos[2 + e]);
    gguf = out.nf == 1 && out.f[0].format == ACEM_FORMAT_GGUF;
    if (gguf) check_gguf_layout(&out.f[0], &base.f[0], partial);
    {
        const char *m = out.nf ? acem_st_meta(&out.f[0], "acem.method") : NULL;
        if (!m || strcmp(m, acem_method_name(opt.method))) FAIL("acem.method is %s, expected %s", m ? m : "(none)", acem_method_name(opt.method));
    }
    for (k = 0; k < base.n; ++k) {
        const tref *b = &base.t[k], *o = find(&out, b->t->name);
        acem_dtype want;
        size_t n = (size_t)b->t->numel;
        if (!o) {
            if (!partial) FAIL("%s: missing in the output", b->t->name);
            continue;
        }
        ++checked;
        if (!same_shape(b->t, o->t)) { FAIL("%s: shape differs", b->t->name); continue; }
        if (!acem_dtype_is_float(b->t->dtype)) {
            void *p = read_raw(b), *q = read_raw(o);
            if (o->t->dtype != b->t->dtype || memcmp(p, q, (size_t)(b->t->end - b->t->begin)))
                FAIL("%s: not a verbatim copy of the base", b->t->name);
            free(p);
            free(q);
            continue;
        }
        if (gguf) {
            const acem_st_tensor *t = b->t;
            if (out_dt != ACEM_DT_UNKNOWN && t->ndim >= 2 && (out_dt < ACEM_DT_GGUF_FIRST || t->shape[t->ndim - 1] % 32 == 0))
                want = out_dt;
            else if (t->dtype >= ACEM_DT_GGUF_FIRST && acem_tensor_rule(&opt, t->name, t->ndim) != ACEM_RULE_KEEP)
                want = ACEM_DT_F16;
            else
                want = t->dtype;
        } else
            want = out_dt != ACEM_DT_UNKNOWN ? out_dt : b->t->dtype;
        if (want == ACEM_DT_F8_E4M3 || want == ACEM_DT_F8_E5M2) want = ACEM_DT_F16;
        if (o->t->dtype != want) { FAIL("%s: dtype %s, expected %s", b->t->name, acem_dtype_name(o->t->dtype), acem_dtype_name(want)); continue; }
        {
            float *bf = read_f32(b), *res = (float *)malloc((n ? n : 1) * sizeof(float));
            const float *xs[32];
            size_t R = b->t->ndim == 2 ? (size_t)b->t->shape[0] : n, C = b->t->ndim == 2 ? (size_t)b->t->shape[1] : 1;
            acem_rule rule = acem_tensor_rule(&opt, b->t->name, b->t->ndim);
            acem_error err;
            acem_result r;
            unsigned char *expect, *got;
            size_t nb = (size_t)(o->t->end - o->t->begin), j;
            for (e = 0; e < T; ++e) {
                const tref *x = find(&ex[e], b->t->name);
                if (!x) { FAIL("%s missing in expert %zu", b->t->name, e); exit(1); }
                xs[e] = read_f32(x);
            }
            r = acem_merge_alloc(&opt, rule, b->t->name, R, C, T, bf, xs, res, NULL, &err);
            if (r != ACEM_OK) { FAIL("%s: acem_merge: %s", b->t->name, err.message); continue; }
            expect = (unsigned char *)malloc(nb ? nb : 1);
            encode(o->t, want, res, expect, nb);
            got = (unsigned char *)read_raw(o);
            if (memcmp(expect, got, nb)) {
                for (j = 0; j < nb && expect[j] == got[j]; ++j) {}
                FAIL("%s (%s, rule %s): differs from acem_merge at byte %zu of %zu", b->t->name, acem_dtype_name(want),
                     acem_rule_name(rule), j, nb);
            }
            free(expect); free(got); free(bf); free(res);
            for (e = 0; e < T; ++e) free((void *)xs[e]);
        }
    }
    if (checked != out.n) FAIL("the output holds %zu tensors, %zu of them from the base", out.n, checked);
    if (!checked) FAIL("no tensor checked");
    printf("cli_check merge: %zu tensors checked against acem_merge: %s\n", checked, g_fail ? "MISMATCH" : "bitwise equal");
    return g_fail;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}
static int cmd_gguf_view(const char *path) {
    acem_st_file f;
    const acem_st_tensor **t;
    size_t k, d;
    open_file(&f, path);
    if (f.format != ACEM_FORMAT_GGUF) { printf("FAIL: %s is not GGUF\n", path); return 1; }
    printf("{\"version\":%u,\"data\":%llu,\"kv\":[", f.gguf_version, (unsigned long long)f.header_len); /* before clamping to the file */
    for (k = 0; k < f.n_kv; ++k) {
        printf("%s[", k ? "," : "");
        json_str(f.kv[k].key);
        printf(",%u,", f.kv[k].type);
        json_str(f.kv[k].value);
        printf("]");
    }
    printf("],\"tensors\":[");
    t = (const acem_st_tensor **)calloc(f.n_tensors + 1, sizeof(void *));
    for (k = 0; k < f.n_tensors; ++k) t[k] = &f.tensors[k];
    qsort(t, f.n_tensors, sizeof(void *), cmp_begin);
    for (k = 0; k < f.n_tensors; ++k) {
        printf("%s[", k ? "," : "");
        json_str(t[k]->name);
        printf(",[");
        for (d = t[k]->ndim; d-- > 0;) printf("%s%llu", d + 1 < t[k]->ndim ? "," : "", (unsigned long long)t[k]->shape[d]);
        printf("],%d,%llu]", acem_gguf_type_id(t[k]->dtype), (unsigned long long)t[k]->begin);
    }
    printf("]}\n");
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "same")) return cmd_same(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "gguf-view")) return cmd_gguf_view(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "merge")) return cmd_merge(argc - 2, argv + 2);
    fprintf(stderr, "usage: cli_check merge [options] OUT BASE EXPERT... | cli_check same A B | cli_check gguf-view FILE\n");
    return 2;
}
