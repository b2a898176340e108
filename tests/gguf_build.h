/* tests/gguf_build.h - GGUF files byte by byte, little-endian, independently
   of acem's writer: the header, key/value pairs, tensor infos (dims as ggml
   writes them, innermost first), padding. Used by tests/test_gguf.c and
   tests/cli_gen.c. */
#ifndef ACEM_TESTS_GGUF_BUILD_H
#define ACEM_TESTS_GGUF_BUILD_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    unsigned char *p;
    size_t n, cap;
} gb;
static inline void gb_put(gb *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = (unsigned char *)realloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static inline void gb_le(gb *b, uint64_t v, int n) {
    unsigned char t[8];
    int k;
    for (k = 0; k < n; ++k) t[k] = (unsigned char)(v >> (8 * k));
    gb_put(b, t, (size_t)n);
}
static inline void gb_str(gb *b, const char *s) {
    gb_le(b, strlen(s), 8);
    gb_put(b, s, strlen(s));
}
static inline void gb_head(gb *b, uint32_t version, uint64_t n_t, uint64_t n_kv) {
    gb_put(b, "GGUF", 4);
    gb_le(b, version, 4);
    gb_le(b, n_t, 8);
    gb_le(b, n_kv, 8);
}
static inline void gb_kv_int(gb *b, const char *key, uint32_t type, uint64_t v, int bytes) {
    gb_str(b, key);
    gb_le(b, type, 4);
    gb_le(b, v, bytes);
}
static inline void gb_kv_str(gb *b, const char *key, const char *v) {
    gb_str(b, key);
    gb_le(b, 8, 4);
    gb_str(b, v);
}
/* a tensor info: dims as ggml writes them (innermost first) */
static inline void gb_info(gb *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    uint32_t d;
    gb_str(b, name);
    gb_le(b, nd, 4);
    for (d = 0; d < nd; ++d) gb_le(b, ne[d], 8);
    gb_le(b, type, 4);
    gb_le(b, off, 8);
}
static inline void gb_pad(gb *b, size_t align) {
    static const unsigned char z[256] = {0};
    gb_put(b, z, (align - b->n % align) % align);
}
#endif
