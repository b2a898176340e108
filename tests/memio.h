/* tests/memio.h - what the file-format tests share: a deterministic PRNG,
   in-memory read and write callbacks (with injected failures), opening a
   byte buffer as a file (acem_st_open_bytes + acem_st_open), little-endian
   helpers, an independent f16 decoder and a bitwise float comparison.
   Include after acem.h and testing.h. */
#ifndef ACEM_TESTS_MEMIO_H
#define ACEM_TESTS_MEMIO_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic PRNG (splitmix64) --------------------------------------- */
static uint64_t g_rng = 1;
static int g_verbose = 0; /* ST_VERBOSE=1 in the environment: print every corpus message */
static inline uint64_t rnd_u64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* ---- in-memory I/O ------------------------------------------------------------ */
typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    size_t fail_after; /* a write that would go past this many bytes fails */
} wbuf;
static inline int wbuf_write(void *user, const void *src, size_t n) {
    wbuf *w = (wbuf *)user;
    if (n > w->fail_after || w->n > w->fail_after - n) return 1;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        unsigned char *q;
        while (cap < w->n + n) cap *= 2;
        q = (unsigned char *)realloc(w->p, cap);
        if (!q) return 1;
        w->p = q;
        w->cap = cap;
    }
    if (n) memcpy(w->p + w->n, src, n);
    w->n += n;
    return 0;
}
static inline void wbuf_init(wbuf *w, acem_write_io *io, const char *path) {
    memset(w, 0, sizeof *w);
    w->fail_after = (size_t)-1;
    io->user = w;
    io->write = wbuf_write;
    io->path = path;
}

typedef struct mem_src {
    const unsigned char *p;
    size_t n;        /* bytes that exist                                      */
    size_t fail_at;  /* reads that touch bytes at or past this fail (I/O error) */
    int oob;         /* reads past n were requested                           */
    size_t reads;
} mem_src;
static inline int mem_read(void *user, uint64_t off, void *dst, size_t n) {
    mem_src *m = (mem_src *)user;
    m->reads++;
    if (off > m->n || n > m->n - (size_t)off) { m->oob = 1; return 1; }
    if ((size_t)off + n > m->fail_at) return 1;
    if (n) memcpy(dst, m->p + off, n);
    return 0;
}

typedef struct opened {
    mem_src src;
    acem_read_io io;
    acem_st_file f;
    void *arena;
    size_t need;
} opened;
/* Opens p[0..n) as a file named path; on success o->arena must be freed. */
static inline acem_result open_mem(opened *o, const unsigned char *p, size_t n, const char *path, acem_error *err) {
    acem_result r;
    memset(o, 0, sizeof *o);
    o->src.p = p;
    o->src.n = n;
    o->src.fail_at = (size_t)-1;
    o->io.user = &o->src;
    o->io.read = mem_read;
    o->io.size = n;
    o->io.path = path;
    memset(err, 0, sizeof *err);
    r = acem_st_open_bytes(&o->io, &o->need, err);
    if (r != ACEM_OK) return r;
    o->arena = malloc(o->need ? o->need : 1);
    if (!o->arena) return ACEM_ERR_OUT_OF_MEMORY;
    r = acem_st_open(&o->f, &o->io, o->arena, o->need, err);
    if (r != ACEM_OK) { free(o->arena); o->arena = NULL; }
    return r;
}
static inline void close_mem(opened *o) { free(o->arena); o->arena = NULL; }

static inline void put_u64(unsigned char *b, uint64_t v) {
    int k;
    for (k = 0; k < 8; ++k) b[k] = (unsigned char)(v >> (8 * k));
}
static inline uint64_t get_u64(const unsigned char *b) {
    uint64_t v = 0;
    int k;
    for (k = 7; k >= 0; --k) v = (v << 8) | b[k];
    return v;
}

/* ---- independent decoders ------------------------------------------------------- */
static inline float ref_f16(unsigned h) {
    unsigned s = h >> 15, e = (h >> 10) & 31u, m = h & 1023u;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)m, -24);
    else v = ldexp((double)(1024 + m), (int)e - 25);
    return (float)(s ? -v : v);
}
/* same float: bitwise, or both NaN */
static inline int same_f(float a, float b) {
    if (a != a || b != b) return a != a && b != b;
    return memcmp(&a, &b, 4) == 0;
}

#endif
