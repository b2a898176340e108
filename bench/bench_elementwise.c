/* bench/bench_elementwise.c - acem's element-wise merge rules (average, task
   arithmetic, TIES) against the memory-bandwidth limit of this machine, one
   thread, through the public API (acem_merge on in-memory tensors).

     cc -O2 -march=native -I. -o build/bench_elementwise bench/bench_elementwise.c -lm
     build/bench_elementwise [MiB per tensor = 64] [T = 4] [reps = 5]

   The program first measures, on buffers of the same sizes as the merge:
     read   streaming read bandwidth: the faster of two probes, a sum over
            base and the T experts read at once (T + 1 streams, as a merge
            reads them) and the same buffers read one after the other;
     copy   memcpy(out, base) bandwidth, counting bytes read + bytes written;
     write  the write bandwidth implied by the two: a memcpy of N bytes takes
            N/read + N/write, so 1/write = t_copy/N - 1/read;
     fused  a plain C loop with exactly the minimal traffic of a one-pass
            merge: out[i] = base[i] + lambda * sum_t (x_t[i] - base[i]).
   Then each rule, median of `reps` runs of acem_merge (after one warm-up):
     bytes  what the rule must move: T experts + base read, output written
            ((T + 1) N read + N written; N = tensor bytes). TIES cannot do
            with one read: an expert's trim threshold is the k-th smallest of
            all its magnitudes, so the whole expert is read before any of its
            entries can be trimmed; the sign election then needs every
            expert's trimmed entry, so a second read follows. Its "2 (total)"
            row counts 2 (T + 1) N read + N written: each expert and the base
            twice (base: the deltas need it in both reads), the output once.
            acem's fused path moves that: one pass selects the thresholds
            (base read once per 4 experts: exactly once for T <= 4), one pass
            elects and averages (plus a few percent for the threshold
            candidates and the sample). "per pass" divides the time by 2.
     limit  bytes_read / read + bytes_written / write (seconds).
     ratio  measured time / limit (1.0 = at the bandwidth limit; the target
            is <= 1.5). "vs fused": time / the fused loop's time (the same
            minimal traffic, run by a trivial kernel).
   The rows are printed as one table; the median over reps is reported, and
   the spread (min..max) of the acem times. A second table times the
   half-precision array conversions (acem_f16_to_f32_array and the other
   three) on as many values as one tensor holds, against the same limit for
   their bytes (2 per value on the half side, 4 on the f32 side): every f16 or
   bf16 checkpoint is read and written through them (reported, no target).
   A third times GGUF's legacy blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): the
   quantization of --out-dtype q8_0 .. q5_1 (acem_st_write_f32 into memory)
   and the dequantization of reading such a model (acem_st_read_f32 from
   memory), against the same limit for the f32 side and the block bytes
   (reported, no target). */
#define _POSIX_C_SOURCE 200809L
#define ACEM_IMPLEMENTATION
#include "acem.h"
#include "rows.h"
#include "../tests/memio.h" /* in-memory write and read callbacks */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

static double now(void) { return bench_wall(); }
static void *xmalloc(size_t n) { return bench_alloc("bench_elementwise", n); }
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *t, int n) {
    double s[64];
    int i;
    for (i = 0; i < n; ++i) s[i] = t[i];
    qsort(s, (size_t)n, sizeof(double), cmpd);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}
static double minv(const double *t, int n) { double m = t[0]; int i; for (i = 1; i < n; ++i) if (t[i] < m) m = t[i]; return m; }
static double maxv(const double *t, int n) { double m = t[0]; int i; for (i = 1; i < n; ++i) if (t[i] > m) m = t[i]; return m; }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next32(void) {
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}
/* roughly N(0, s): sum of uniforms (the distribution only matters for TIES' top-k) */
static void fill(float *p, size_t n, float mean, float s) {
    size_t i;
    for (i = 0; i < n; ++i) {
        float u = (float)((double)next32() + (double)next32() + (double)next32() - 6442450942.5) *
                  (float)(1.0 / 2479700524.0);
        p[i] = mean + s * u;
    }
}

/* streaming read: 64-bit integer sum, 4 vector accumulators where available */
static volatile uint64_t sink;
static __attribute__((noinline)) uint64_t read_sum(const uint64_t *p, size_t n) {
    size_t i = 0;
    uint64_t s = 0;
#if defined(__AVX512F__)
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    uint64_t lane[8];
    int k;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(p + i + 8)));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(p + i + 16)));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(p + i + 24)));
    }
    _mm512_storeu_si512((void *)lane, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
    for (k = 0; k < 8; ++k) s += lane[k];
#elif defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    uint64_t lane[4];
    int k;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    _mm256_storeu_si256((__m256i *)lane, _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    for (k = 0; k < 4; ++k) s += lane[k];
#endif
    for (; i < n; ++i) s += p[i];
    return s;
}
/* the same over k buffers read concurrently (the access pattern of a merge,
   which reads T + 1 streams at once; more streams keep more misses in flight) */
static __attribute__((noinline)) uint64_t read_sum_multi(const uint64_t *const *p, size_t k, size_t n) {
    size_t i = 0, j;
    uint64_t s = 0;
#if defined(__AVX512F__)
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;
    uint64_t lane[8];
    int q;
    for (; i + 16 <= n; i += 16)
        for (j = 0; j < k; ++j) {
            a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(p[j] + i)));
            a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(p[j] + i + 8)));
        }
    _mm512_storeu_si512((void *)lane, _mm512_add_epi64(a0, a1));
    for (q = 0; q < 8; ++q) s += lane[q];
#elif defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    uint64_t lane[4];
    int q;
    for (; i + 8 <= n; i += 8)
        for (j = 0; j < k; ++j) {
            a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p[j] + i)));
            a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p[j] + i + 4)));
        }
    _mm256_storeu_si256((__m256i *)lane, _mm256_add_epi64(a0, a1));
    for (q = 0; q < 4; ++q) s += lane[q];
#endif
    for (; i < n; ++i)
        for (j = 0; j < k; ++j) s += p[j][i];
    return s;
}
/* the minimal one-pass merge: reads T + 1 streams, writes one; blocks of 4096
   floats keep the accumulator in L1 (explicit SIMD so that -O2 builds are fair) */
static __attribute__((noinline)) void fused(size_t n, size_t T, const float *base, const float *const *x,
                                            float lam, float *out) {
    size_t i, t, blk = 4096;
    for (i = 0; i < n; i += blk) {
        size_t e = i + blk < n ? i + blk : n, j = i;
#if defined(__AVX512F__)
        for (; j + 16 <= e; j += 16) {
            __m512 b = _mm512_loadu_ps(base + j), acc = _mm512_setzero_ps();
            for (t = 0; t < T; ++t) acc = _mm512_add_ps(acc, _mm512_sub_ps(_mm512_loadu_ps(x[t] + j), b));
            _mm512_storeu_ps(out + j, _mm512_fmadd_ps(_mm512_set1_ps(lam), acc, b));
        }
#elif defined(__AVX2__) && defined(__FMA__)
        for (; j + 8 <= e; j += 8) {
            __m256 b = _mm256_loadu_ps(base + j), acc = _mm256_setzero_ps();
            for (t = 0; t < T; ++t) acc = _mm256_add_ps(acc, _mm256_sub_ps(_mm256_loadu_ps(x[t] + j), b));
            _mm256_storeu_ps(out + j, _mm256_fmadd_ps(_mm256_set1_ps(lam), acc, b));
        }
#endif
        for (; j < e; ++j) {
            float acc = 0.0f;
            for (t = 0; t < T; ++t) acc += x[t][j] - base[j];
            out[j] = base[j] + lam * acc;
        }
    }
}

static void cpu_name(char *buf, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(buf, n, "unknown CPU");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            size_t l;
            c += 2;
            l = strlen(c);
            if (l && c[l - 1] == '\n') c[l - 1] = 0;
            snprintf(buf, n, "%s", c);
            break;
        }
    }
    fclose(f);
}

#define NM 3
int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64, T = argc > 2 ? (size_t)atol(argv[2]) : 4;
    int reps = argc > 3 ? atoi(argv[3]) : 5, r, m, passes[NM];
    size_t N = mib << 20, n = N / sizeof(float), t, arena_bytes = 0;
    float *base, *out, **x, **streams;
    void *arena;
    double tr[64], tr1[64], tc[64], tf[64], ts[NM][64], bw_read, bw_read1, bw_multi, bw_copy, bw_write, t_fused, rd1, wr, lim1;
    static const acem_method methods[NM] = {ACEM_AVERAGE, ACEM_TASK_ARITHMETIC, ACEM_TIES};
    char line[256], cpu[256];

    if (mib < 1 || T < 1 || T > 64 || reps < 1 || reps > 63) {
        fprintf(stderr, "usage: bench_elementwise [MiB per tensor >= 1] [T 1..64] [reps 1..63]\n");
        return 1;
    }
    base = (float *)xmalloc(N);
    out = (float *)xmalloc(N);
    x = (float **)xmalloc(T * sizeof *x);
    fill(base, n, 0.0f, 0.02f);
    for (t = 0; t < T; ++t) {
        size_t i;
        x[t] = (float *)xmalloc(N);
        fill(x[t], n, 0.0f, 1e-3f);
        for (i = 0; i < n; ++i) x[t][i] += base[i];
    }
    memset(out, 0, N);
    streams = (float **)xmalloc((T + 1) * sizeof *streams);
    streams[0] = base;
    for (t = 0; t < T; ++t) streams[t + 1] = x[t];
    for (m = 0; m < NM; ++m) {
        acem_options o;
        size_t b = 0;
        memset(&o, 0, sizeof o);
        o.method = methods[m];
        if (acem_layer_bytes(&o, ACEM_RULE_METHOD, n, 1, T, &b) != ACEM_OK) {
            fprintf(stderr, "bench_elementwise: acem_layer_bytes failed for %s\n", acem_method_name(methods[m]));
            return 2;
        }
        if (b > arena_bytes) arena_bytes = b;
    }
    arena = xmalloc(arena_bytes);
    memset(arena, 0, arena_bytes);
    for (m = 0; m < NM; ++m) {
        acem_options o;
        acem_layer L;
        memset(&o, 0, sizeof o);
        o.method = methods[m];
        passes[m] = 1;
        if (acem_layer_init(&L, &o, ACEM_RULE_METHOD, "bench", n, 1, T, arena, arena_bytes, NULL) == ACEM_OK)
            passes[m] = acem_layer_passes(&L);
    }

    /* Each repetition runs everything once, alternating the bandwidth probes and
       the merges, so that the ratios compare times taken under the same load.
       r = 0 is a warm-up (page faults, frequency). */
    for (r = 0; r <= reps; ++r) {
        double t0 = now(), t1, t2, t3;
        uint64_t s = 0;
        /* unmeasured: evicts the dirty lines the previous merge left in the caches */
        s += read_sum_multi((const uint64_t *const *)streams, T + 1, N / 8);
        t0 = now();
        for (t = 0; t < T; ++t) s += read_sum((const uint64_t *)x[t], N / 8);
        t1 = now();
        if (r) tr1[r - 1] = t1 - t0;
        s += read_sum_multi((const uint64_t *const *)streams, T + 1, N / 8);
        sink = s;
        t0 = t1;
        t1 = now();
        memcpy(out, base, N);
        t2 = now();
        fused(n, T, base, (const float *const *)x, 1.0f, out);
        t3 = now();
        if (r) { tr[r - 1] = t1 - t0; tc[r - 1] = t2 - t1; tf[r - 1] = t3 - t2; }
        for (m = 0; m < NM; ++m) {
            acem_options o;
            acem_layer_info info;
            acem_error err;
            acem_result res;
            memset(&o, 0, sizeof o);
            o.method = methods[m];
            t0 = now();
            res = acem_merge(&o, ACEM_RULE_METHOD, "bench", n, 1, T, base, (const float *const *)x, out, arena,
                             arena_bytes, &info, &err);
            if (res != ACEM_OK) {
                fprintf(stderr, "bench_elementwise: %s: %s\n", acem_method_name(methods[m]), err.message);
                return 3;
            }
            if (r) ts[m][r - 1] = now() - t0;
        }
    }
    bw_read = (double)((T + 1) * N) / median(tr, reps);
    bw_read1 = (double)(T * N) / median(tr1, reps);
    bw_multi = bw_read;
    if (bw_read1 > bw_read) bw_read = bw_read1; /* the limit uses the faster probe */
    bw_copy = 2.0 * (double)N / median(tc, reps);
    {
        double inv_w = median(tc, reps) / (double)N - 1.0 / bw_read;
        bw_write = inv_w > 0 ? 1.0 / inv_w : bw_read; /* noise guard: never faster than reads */
        if (bw_write > bw_read) bw_write = bw_read;
    }
    t_fused = median(tf, reps);
    rd1 = (double)((T + 1) * N);
    wr = (double)N;
    lim1 = rd1 / bw_read + wr / bw_write;

    cpu_name(cpu, sizeof cpu);
    printf("bench_elementwise: %zu experts of %zu MiB (%zu floats each) + base, output %zu MiB;"
           " median of %d reps; 1 thread\n", T, mib, n, mib, reps);
    printf("machine: %s, acem %s build; read %.1f GB/s (the faster of: %zu streams at once %.1f,"
           " one stream %.1f), memcpy %.1f GB/s (read+write), write %.1f GB/s (implied)\n", cpu,
#if defined(ACEM__AVX512)
           "AVX-512",
#elif defined(ACEM__AVX2)
           "AVX2",
#else
           "scalar",
#endif
           bw_read / 1e9, T + 1, bw_multi / 1e9, bw_read1 / 1e9, bw_copy / 1e9, bw_write / 1e9);
    printf("\n%-16s %-9s %8s %8s %9s %9s %7s %7s %8s  %s\n", "operation", "passes", "MB read", "MB wrtn",
           "time s", "limit s", "ratio", "target", "vs fused", "acem min..max s");
    printf("%-16s %-9s %8.0f %8.0f %9.4f %9.4f %7.2f %7s %8.2f\n", "fused C loop", "1", rd1 / 1e6, wr / 1e6,
           t_fused, lim1, t_fused / lim1, "", 1.0);
    for (m = 0; m < NM; ++m) {
        double tmed = median(ts[m], reps);
        int p = passes[m];
        double rdp = (double)p * rd1, limp = rdp / bw_read + wr / bw_write;
        snprintf(line, sizeof line, p == 1 ? "1" : "%d (total)", p);
        printf("%-16s %-9s %8.0f %8.0f %9.4f %9.4f %7.2f %7s %8.2f  %.4f..%.4f\n", acem_method_name(methods[m]),
               line, rdp / 1e6, wr / 1e6, tmed, limp, tmed / limp, tmed / limp <= 1.5 ? "met" : "MISSED",
               tmed / t_fused, minv(ts[m], reps), maxv(ts[m], reps));
        if (p > 1)
            printf("%-16s %-9s %8.0f %8.0f %9.4f %9.4f %7.2f %7s %8.2f  (time / %d)\n", "", "per pass", rd1 / 1e6,
                   wr / 1e6, tmed / p, lim1, tmed / p / lim1, tmed / p / lim1 <= 1.5 ? "met" : "MISSED",
                   tmed / p / t_fused, p);
        { /* make bench: against the bandwidth limit (ratio = limit / time: within 1.5x is >= 0.67) */
            char sh[96], a[32], r[48], note[64];
            snprintf(sh, sizeof sh, "%zu x %zu MiB + base, %d pass%s", T, mib, p, p > 1 ? "es" : "");
            snprintf(a, sizeof a, "%.4f s", tmed);
            snprintf(r, sizeof r, "%.4f s (bandwidth limit)", limp);
            snprintf(note, sizeof note, "%.1fx the limit; read %.1f GB/s", tmed / limp, bw_read / 1e9);
            bench_row("element-wise", acem_method_name(methods[m]), sh, a, r, limp / tmed, 1, 1.0 / 1.5, note);
        }
    }
    { /* the half-precision conversions every f16 / bf16 checkpoint goes through (reading the
         experts: widening; writing the merged model: narrowing), against the same limit */
        static const char *const cname[4] = {"f16 -> f32", "bf16 -> f32", "f32 -> f16", "f32 -> bf16"};
        uint16_t *h = (uint16_t *)xmalloc(n * sizeof(uint16_t));
        double tcv[4][64];
        int c;
        acem_f32_to_f16_array(x[0], h, n);
        for (r = 0; r <= reps; ++r)
            for (c = 0; c < 4; ++c) {
                double t0 = now();
                if (c == 0) acem_f16_to_f32_array(h, out, n);
                if (c == 1) acem_bf16_to_f32_array(h, out, n);
                if (c == 2) acem_f32_to_f16_array(x[0], h, n);
                if (c == 3) acem_f32_to_bf16_array(x[0], h, n);
                if (r) tcv[c][r - 1] = now() - t0;
            }
        printf("\n%-16s %-9s %8s %8s %9s %9s %7s\n", "conversion", "values", "MB read", "MB wrtn", "time s", "limit s",
               "ratio");
        for (c = 0; c < 4; ++c) {
            double tmed = median(tcv[c], reps), rd = (double)n * (c < 2 ? 2 : 4), wb = (double)n * (c < 2 ? 4 : 2);
            double lim = rd / bw_read + wb / bw_write;
            char sh[96], a[32], rr[48], note[64];
            printf("%-16s %-9zu %8.0f %8.0f %9.4f %9.4f %7.2f\n", cname[c], n, rd / 1e6, wb / 1e6, tmed, lim, tmed / lim);
            snprintf(sh, sizeof sh, "%zu values (%zu MiB as f32)", n, mib);
            snprintf(a, sizeof a, "%.4f s", tmed);
            snprintf(rr, sizeof rr, "%.4f s (bandwidth limit)", lim);
            snprintf(note, sizeof note, "%.2f ns a value; %.1fx the limit", tmed / (double)n * 1e9, tmed / lim);
            bench_row("element-wise", cname[c], sh, a, rr, lim / tmed, 1, 0, note);
        }
        free(h);
    }
    { /* GGUF blocks: --out-dtype q8_0 .. q5_1 quantizes every merged value (acem_st_write_f32 into
         memory), and reading a quantized model dequantizes every value (acem_st_read_f32 from
         memory); against the same limit for the f32 side and the block bytes */
        static const acem_dtype qd[5] = {ACEM_DT_Q8_0, ACEM_DT_Q4_0, ACEM_DT_Q4_1, ACEM_DT_Q5_0, ACEM_DT_Q5_1};
        size_t nq = n / 32 * 32;
        wbuf wb;
        acem_write_io wio;
        double tq[64], tdq[64];
        int c;
        wbuf_init(&wb, &wio, "bench.gguf");
        printf("\n%-16s %-9s %8s %8s %9s %9s %7s\n", "GGUF blocks", "values", "MB read", "MB wrtn", "time s", "limit s",
               "ratio");
        for (c = 0; c < 5; ++c) {
            acem_st_tensor ts;
            acem_error err;
            uint64_t hb = 0, qbytes = 0;
            int dir;
            memset(&ts, 0, sizeof ts);
            ts.name = "w";
            ts.dtype = qd[c];
            ts.ndim = 1;
            ts.shape[0] = nq;
            acem_dtype_bytes(qd[c], nq, &qbytes, NULL);
            for (r = 0; r <= reps; ++r) { /* (r = 0: the warm-up, which also grows wb) */
                double t0;
                opened o;
                acem_result res;
                wb.n = 0;
                if (acem_gguf_write_header(&wio, NULL, &ts, 1, NULL, 0, 0, &hb, &err) != ACEM_OK) goto fail;
                t0 = now();
                if (acem_st_write_f32(&wio, &ts, x[0], &err) != ACEM_OK) goto fail;
                if (r) tq[r - 1] = now() - t0;
                if (open_mem(&o, wb.p, wb.n, "bench.gguf", &err) != ACEM_OK) goto fail;
                t0 = now();
                res = acem_st_read_f32(&o.f, &o.f.tensors[0], out, &err);
                if (r) tdq[r - 1] = now() - t0;
                close_mem(&o);
                if (res != ACEM_OK) goto fail;
            }
            for (dir = 0; dir < 2; ++dir) {
                double tmed = median(dir ? tdq : tq, reps), rd = dir ? (double)qbytes : 4.0 * (double)nq;
                double wb = dir ? 4.0 * (double)nq : (double)qbytes, lim = rd / bw_read + wb / bw_write;
                char op[32], sh[96], a[32], rr[48], note[64];
                snprintf(op, sizeof op, dir ? "%s -> f32" : "f32 -> %s", acem_dtype_name(qd[c]));
                printf("%-16s %-9zu %8.0f %8.0f %9.4f %9.4f %7.2f\n", op, nq, rd / 1e6, wb / 1e6, tmed, lim, tmed / lim);
                snprintf(sh, sizeof sh, "%zu values (%zu MiB as f32)", nq, mib);
                snprintf(a, sizeof a, "%.4f s", tmed);
                snprintf(rr, sizeof rr, "%.4f s (bandwidth limit)", lim);
                snprintf(note, sizeof note, "%.2f ns a value; %.1fx the limit", tmed / (double)nq * 1e9, tmed / lim);
                bench_row("element-wise", op, sh, a, rr, lim / tmed, 1, 0, note);
            }
            continue;
        fail:
            fprintf(stderr, "bench_elementwise: %s: %s\n", acem_dtype_name(qd[c]), err.message);
            return 4;
        }
        free(wb.p);
    }
    printf("\nlimit = bytes read / read bandwidth + bytes written / write bandwidth; ratio = time / limit"
           " (target <= 1.5);\nvs fused = time / the fused one-pass C loop's time (same bytes as one pass).\n");
    for (t = 0; t < T; ++t) free(x[t]);
    free(x);
    free(streams);
    free(base);
    free(out);
    free(arena);
    return 0;
}
