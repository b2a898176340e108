/* tools/acem.c - the `acem` command-line program: merge fine-tuned checkpoints
   (safetensors files, sharded directories or GGUF files) with ACE-Merging and the other
   data-free rules of acem.h, inspect checkpoints, join per-shard outputs, and
   run the embedded demo.

   A client of acem.h's public API only (C99 + POSIX).

   Build:  make            (or: cc -std=c99 -O2 -march=native -pthread
                                 -o build/acem tools/acem.c -lm)
   Usage:  acem help

   How a merge runs
   ----------------
   1. Every input is opened read-only and only its header is read (acem_st_open);
      every expert must hold exactly the base's tensor names, shapes and dtypes.
   2. A plan is built: the rule of every tensor (acem_tensor_rule), the output
      dtype, the output file(s) and their exact sizes (the header is laid out
      once through a counting writer), and the peak memory: the headers and
      tables the program holds, plus the largest per-tensor working set
      (acem_layer_bytes + two f32 buffers: the base, and one expert at a time
      which, after the last feed, receives the merged tensor). One block of that
      size is allocated once and carved per tensor.
   3. Tensors are streamed one at a time in the order each output header
      requires; the output goes to a temporary name in the destination
      directory, is fsync'd and renamed into place only when complete. Any
      failure (or SIGINT/SIGTERM/SIGHUP) removes the temporaries. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* glibc: madvise and MADV_HUGEPAGE (used where defined) */

#define ACEM_IMPLEMENTATION
#include "../acem.h"

/* The demo behind `acem demo` and `make demo`: compiled into this translation
   unit, against the implementation above (demo.c then includes acem.h again,
   which only sees the include guards). */
#define ACEM_DEMO_NO_MAIN
#define ACEM_DEMO_NO_IMPLEMENTATION
#include "../examples/demo.c"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- exit codes ------------------------------------------------------------ */
enum {
    CLI_OK = 0,
    CLI_USAGE = 1,    /* bad command line (unknown option or method, bad regex) */
    CLI_INPUT = 2,    /* invalid or mismatched input: format, names, shapes, dtypes */
    CLI_IO = 3,       /* cannot open / read / write / rename                      */
    CLI_NUMERIC = 4,  /* numerical failure (singular system, non-finite values)   */
    CLI_RESOURCE = 5  /* --memory-limit exceeded, out of memory                    */
};

static int exit_code_of(acem_result r) {
    switch (r) {
    case ACEM_OK: return CLI_OK;
    case ACEM_ERR_FORMAT:
    case ACEM_ERR_MISMATCH: return CLI_INPUT;
    case ACEM_ERR_IO: return CLI_IO;
    case ACEM_ERR_NOT_POSITIVE_DEFINITE:
    case ACEM_ERR_SINGULAR:
    case ACEM_ERR_NO_CONVERGENCE:
    case ACEM_ERR_NONFINITE: return CLI_NUMERIC;
    case ACEM_ERR_OUT_OF_MEMORY:
    case ACEM_ERR_ARENA_TOO_SMALL:
    case ACEM_ERR_SIZE_OVERFLOW: return CLI_RESOURCE;
    default: return CLI_USAGE;
    }
}

/* ---- program-wide state: verbosity, the progress line, temporaries ----------- */
static int g_quiet, g_verbose;
static int g_line_open; /* a \r progress line is on the terminal */

/* Temporary outputs, removed by cleanup_temps() on any error or signal. The
   array is sized before anything is registered, so the signal handler never
   sees it reallocated. */
static char **g_tmp;
static size_t g_tmp_cap;
static volatile sig_atomic_t g_tmp_n;
static char *volatile g_tmp_dir; /* a temporary directory, removed after its files */

static void cleanup_temps(void) {
    sig_atomic_t i;
    for (i = 0; i < g_tmp_n; ++i)
        if (g_tmp[i]) unlink(g_tmp[i]);
    g_tmp_n = 0;
    if (g_tmp_dir) { rmdir(g_tmp_dir); g_tmp_dir = NULL; }
}
static void on_signal(int sig) {
    cleanup_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}
/* SIGINT, SIGTERM and SIGHUP remove the temporaries before the process ends */
static void catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}
static void end_line(void) {
    if (g_line_open) { fputc('\n', stderr); g_line_open = 0; }
}

#if defined(__GNUC__) || defined(__clang__)
static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
static void die(int code, const char *fmt, ...) {
    va_list ap;
    end_line();
    fputs("acem: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cleanup_temps();
    exit(code);
}
static void warn(const char *fmt, ...) {
    va_list ap;
    if (g_quiet) return;
    end_line();
    fputs("acem: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
static void note(const char *fmt, ...) { /* the plan, progress and summary */
    va_list ap;
    if (g_quiet) return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- memory: every allocation the program holds while merging is counted ---- */
static size_t g_held; /* bytes held in headers and tables */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die(CLI_RESOURCE, "out of memory (allocating %zu bytes)", n);
    g_held += n;
    return p;
}
/* The merge's one work block: 2 MiB aligned and, where the system offers it,
   backed by transparent huge pages (madvise; Linux's default THP mode is
   "madvise"). The GEMMs walk hundreds of MB of it: with 4 KiB pages its first
   touch cost about 190,000 page faults on the GPT-2 bench, and the TLB misses
   showed in user time; 1 thread, median of 4: 54.7 -> 53.2 s. NULL when out of
   memory; free() releases it. */
static void *alloc_work(size_t n) {
    const size_t al = (size_t)2 << 20;
    void *p = NULL;
    if (n < al) return malloc(n ? n : 1);
    if (posix_memalign(&p, al, n) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}
static void *xcalloc(size_t n, size_t size) {
    void *p;
    if (size && n > (size_t)-1 / size) die(CLI_RESOURCE, "out of memory (size overflow)");
    p = xmalloc(n * size);
    memset(p, 0, n * size);
    return p;
}
static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return (char *)memcpy(xmalloc(n), s, n);
}
static char *xprintf(const char *fmt, ...) {
    va_list ap;
    int n;
    char *s;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) die(CLI_USAGE, "formatting failed");
    s = (char *)xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- small helpers ------------------------------------------------------------ */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "12.3 MiB" into buf (binary units) */
static const char *human(char *buf, size_t cap, uint64_t b) {
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int u = 0;
    if (b < 1024) { snprintf(buf, cap, "%llu bytes", (unsigned long long)b); return buf; }
    while (v >= 1024.0 && u < 5) { v /= 1024.0; ++u; }
    snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}

/* shortest decimal that reads back to the same double */
static void fmt_double(char *buf, size_t cap, double v) {
    int p;
    for (p = 1; p <= 17; ++p) {
        snprintf(buf, cap, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static const char *base_name(const char *path, char *buf, size_t cap) {
    size_t n = strlen(path), e, s;
    while (n > 1 && path[n - 1] == '/') --n;
    e = n;
    s = e;
    while (s > 0 && path[s - 1] != '/') --s;
    if (e - s >= cap) e = s + cap - 1;
    memcpy(buf, path + s, e - s);
    buf[e - s] = 0;
    return buf;
}
/* directory part of a path ("." if none); malloc'ed */
static char *dir_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') --n;
    while (n > 0 && path[n - 1] != '/') --n;
    while (n > 1 && path[n - 1] == '/') --n;
    if (n == 0) return xstrdup(".");
    {
        char *d = (char *)xmalloc(n + 1);
        memcpy(d, path, n);
        d[n] = 0;
        return d;
    }
}
static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir);
    return xprintf("%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", name);
}

static void shape_str(char *buf, size_t cap, const acem_st_tensor *t) {
    size_t d, o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (d = 0; d < t->ndim && o < cap; ++d)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* JSON string (quoted, escaped) appended to a growable buffer */
typedef struct sbuf { char *p; size_t n, cap; } sbuf;
static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *q;
        while (b->n + n + 1 > cap) cap *= 2;
        q = (char *)xmalloc(cap);
        if (b->n) memcpy(q, b->p, b->n);
        if (b->p) { free(b->p); g_held -= b->cap; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_json_str(sbuf *b, const char *s) {
    static const char hx[] = "0123456789abcdef";
    sb_putn(b, "\"", 1);
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2]; e[0] = '\\'; e[1] = (char)c; sb_putn(b, e, 2); }
        else if (c < 0x20) { char e[6]; e[0] = '\\'; e[1] = 'u'; e[2] = '0'; e[3] = '0'; e[4] = hx[c >> 4]; e[5] = hx[c & 15]; sb_putn(b, e, 6); }
        else sb_putn(b, (const char *)&c, 1);
    }
    sb_putn(b, "\"", 1);
}

/* ---- a small thread pool: acem_options.parallel_for ----------------------------
   parallel_for(user, fn, ctx, count) calls fn(ctx, i) exactly once for every i in
   [0, count): the calling thread and the helper threads take indices from a
   shared counter under a mutex, and the call returns when all calls have
   returned. n_workers = helpers + 1 calls may run at once. A call made while the
   pool is busy (from inside fn, or from another thread) runs serially on its
   own thread, which keeps the contract without deadlock. */
typedef struct cli_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake, done_cv;
    pthread_t *th;
    size_t n_th;
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t count, next, done;
    size_t gen;                /* calls started (and the quit): what an idle helper watches */
    int busy, quit, watch;     /* watch: no more threads than online CPUs (see pool_watch) */
} cli_pool;

/* Before sleeping on a condition variable, a helper that ran out of work and a
   caller waiting for the last calls to return watch the counter for a while
   (POOL_SPIN_S): the merge makes thousands of short parallel_for calls, and a
   sleeping thread's wake-up took ~90 us on average on a 2-vCPU VM (0.4 s of
   the GPT-2 bench's 2-thread wall, with the other lane idle meanwhile). The
   sleep stays: the watch only decides how soon a thread notices. No watch
   when the pool has more threads than the system has CPUs online (a watcher
   would take a CPU from a thread with work), nor with compilers that lack
   the __atomic builtins. */
#define POOL_SPIN_S 100e-6
#if defined(__GNUC__) || defined(__clang__)
#define pool_set(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
/* until *v != old (ne) or *v == old (!ne), or POOL_SPIN_S has passed */
static void pool_watch(const cli_pool *p, const size_t *v, size_t old, int ne) {
    double t0 = 0;
    unsigned k;
    if (!p->watch) return;
    for (k = 0;; ++k) {
        if ((__atomic_load_n(v, __ATOMIC_ACQUIRE) != old) == ne) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (!(k & 63)) {
            double t = now_s();
            if (!k) t0 = t;
            else if (t - t0 > POOL_SPIN_S) return;
        }
    }
}
#else
#define pool_set(x, v) ((x) = (v))
static void pool_watch(const cli_pool *p, const size_t *v, size_t old, int ne) { (void)p; (void)v; (void)old; (void)ne; }
#endif

static void *pool_main(void *arg) {
    cli_pool *p = (cli_pool *)arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        void (*fn)(void *, size_t);
        void *ctx;
        size_t i;
        if (!p->quit && !(p->fn && p->next < p->count)) {
            size_t g = p->gen;
            pthread_mutex_unlock(&p->mu);
            pool_watch(p, &p->gen, g, 1);
            pthread_mutex_lock(&p->mu);
        }
        while (!p->quit && !(p->fn && p->next < p->count)) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        fn = p->fn;
        ctx = p->ctx;
        i = p->next++;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, i);
        pthread_mutex_lock(&p->mu);
        pool_set(p->done, p->done + 1);
        if (p->done == p->count) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}
static void pool_parallel_for(void *user, void (*fn)(void *ctx, size_t i), void *ctx, size_t count) {
    cli_pool *p = (cli_pool *)user;
    size_t i;
    if (!count) return;
    pthread_mutex_lock(&p->mu);
    if (p->busy || !p->n_th || count == 1) {
        pthread_mutex_unlock(&p->mu);
        for (i = 0; i < count; ++i) fn(ctx, i);
        return;
    }
    p->busy = 1;
    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    p->next = 0;
    pool_set(p->done, 0);
    pool_set(p->gen, p->gen + 1);
    pthread_cond_broadcast(&p->wake);
    while (p->next < p->count) {
        i = p->next++;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, i);
        pthread_mutex_lock(&p->mu);
        pool_set(p->done, p->done + 1);
    }
    if (p->done < p->count) {
        pthread_mutex_unlock(&p->mu);
        pool_watch(p, &p->done, count, 0);
        pthread_mutex_lock(&p->mu);
    }
    while (p->done < p->count) pthread_cond_wait(&p->done_cv, &p->mu);
    p->fn = NULL;
    p->ctx = NULL;
    p->busy = 0;
    pthread_mutex_unlock(&p->mu);
}
static void pool_start(cli_pool *p, size_t n_workers) {
    size_t k;
    memset(p, 0, sizeof *p);
    if (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->wake, NULL) || pthread_cond_init(&p->done_cv, NULL))
        die(CLI_RESOURCE, "cannot create the thread pool");
    p->th = (pthread_t *)xcalloc(n_workers ? n_workers : 1, sizeof(pthread_t));
    {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        p->watch = ncpu > 0 && n_workers <= (size_t)ncpu;
    }
    for (k = 0; k + 1 < n_workers; ++k) {
        if (pthread_create(&p->th[k], NULL, pool_main, p)) die(CLI_RESOURCE, "cannot start thread %zu of %zu", k + 2, n_workers);
        p->n_th++;
    }
}
static void pool_stop(cli_pool *p) {
    size_t k;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pool_set(p->gen, p->gen + 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (k = 0; k < p->n_th; ++k) pthread_join(p->th[k], NULL);
    p->n_th = 0;
}
/* The first touch of the merge's buffers, on every lane of the pool at once
   (with --threads N > 1). A fresh page costs the kernel a zeroing, and under a
   hypervisor that also backs it with host memory: on the Zen 5 VM the benches
   run on, memset of 1.2 GB fresh huge pages took 1.6-2.6 s on one thread and
   1.1 s split over two, against 0.05 s for the second pass. Touched where the
   merge first writes them, those faults fell on whichever thread got there:
   mostly the main thread reading a base tensor while the other lane waited.
   GPT-2 bench, 2 threads, 8 alternating runs each: median 17.8 -> 16.8 s, sys
   3.0-3.8 -> 2.0 s. Touched: the buffer end of the work block (see bufs_at)
   and the write-behind buffer, not the arena (the library's workers write its
   large slots first; 2-thread GPT-2 RSS 1226 -> 925 MB). With one thread
   nothing is gained, so nothing is done. */
typedef struct touch_ctx { unsigned char *p; size_t n; } touch_ctx;
#define TOUCH_CHUNK ((size_t)2 << 20)
static void touch_part(void *ctx, size_t i) {
    const touch_ctx *c = (const touch_ctx *)ctx;
    size_t b = i * TOUCH_CHUNK, e = b + TOUCH_CHUNK < c->n ? b + TOUCH_CHUNK : c->n;
    for (; b < e; b += 4096) c->p[b] = 0;
}
static void touch_all(cli_pool *pool, void *p, size_t n) {
    touch_ctx c;
    if (!p || !n) return;
    c.p = (unsigned char *)p;
    c.n = n;
    pool_parallel_for(pool, touch_part, &c, (n + TOUCH_CHUNK - 1) / TOUCH_CHUNK);
}

/* ---- inputs: one .safetensors file, or a model (file or directory) -------------- */
typedef struct st_in {
    char *path;
    FILE *fp;
    acem_st_file st;
} st_in;

typedef struct mtensor {
    const acem_st_tensor *t;
    const st_in *file;
} mtensor;

typedef struct model {
    const char *path;    /* as given */
    int sharded;         /* read through model.safetensors.index.json */
    size_t n_files;
    st_in *files;
    size_t n;
    mtensor *tensors;    /* sorted by name */
    uint64_t data_bytes; /* sum of the tensors' byte sizes */
} model;

static int is_dir(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISDIR(s.st_mode);
}
static int exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0;
}

/* The inputs' reads (acem_read_io.read): pread on the file's descriptor, with
   no shared file position, so that two threads may read one file at once
   (see iothread). */
static int pread_exact(void *user, uint64_t off, void *dst, size_t n) {
    int fd = (int)(intptr_t)user;
    unsigned char *p = (unsigned char *)dst;
    while (n) {
        ssize_t got;
        if ((uint64_t)(off_t)off != off || (off_t)off < 0) return 1;
        got = pread(fd, p, n < ((size_t)1 << 30) ? n : (size_t)1 << 30, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 1; /* an error, or the file ends early */
        p += got;
        off += (uint64_t)got;
        n -= (size_t)got;
    }
    return 0;
}

/* Opens path read-only and reads its header. Dies with the library's message. */
static void st_in_open(st_in *f, const char *path) {
    acem_read_io io;
    acem_error err;
    acem_result r;
    size_t need = 0;
    void *arena;
    struct stat s;
    f->path = xstrdup(path);
    if (!(f->fp = fopen(path, "rb"))) die(CLI_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f->fp), &s) == 0 && !S_ISREG(s.st_mode)) die(CLI_INPUT, "%s: not a regular file", path);
    if (acem_stdio_reader(&io, f->fp, f->path) != ACEM_OK) die(CLI_IO, "%s: cannot determine the file size", path);
    io.user = (void *)(intptr_t)fileno(f->fp);
    io.read = pread_exact;
    memset(&err, 0, sizeof err);
    if ((r = acem_st_open_bytes(&io, &need, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
    arena = xmalloc(need);
    if ((r = acem_st_open(&f->st, &io, arena, need, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
}

static int cmp_mtensor(const void *a, const void *b) {
    return strcmp(((const mtensor *)a)->t->name, ((const mtensor *)b)->t->name);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static mtensor *model_find(const model *m, const char *name) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->tensors[mid].t->name, name);
        if (!c) return &m->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static char *read_whole(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    struct stat s;
    char *buf;
    if (!fp) die(CLI_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(fp), &s) != 0 || !S_ISREG(s.st_mode)) die(CLI_INPUT, "%s: not a regular file", path);
    if ((uint64_t)s.st_size > (uint64_t)ACEM_ST_MAX_HEADER) die(CLI_INPUT, "%s: %lld bytes is too large for an index", path, (long long)s.st_size);
    buf = (char *)xmalloc((size_t)s.st_size + 1);
    if (fread(buf, 1, (size_t)s.st_size, fp) != (size_t)s.st_size) die(CLI_IO, "%s: read error", path);
    fclose(fp);
    *len = (size_t)s.st_size;
    buf[*len] = 0;
    return buf;
}

static void model_build_table(model *m) {
    size_t k, i, n = 0;
    for (k = 0; k < m->n_files; ++k) n += m->files[k].st.n_tensors;
    m->tensors = (mtensor *)xcalloc(n, sizeof(mtensor));
    m->n = 0;
    m->data_bytes = 0;
    for (k = 0; k < m->n_files; ++k)
        for (i = 0; i < m->files[k].st.n_tensors; ++i) {
            m->tensors[m->n].t = &m->files[k].st.tensors[i];
            m->tensors[m->n].file = &m->files[k];
            m->data_bytes += m->files[k].st.tensors[i].end - m->files[k].st.tensors[i].begin;
            m->n++;
        }
    qsort(m->tensors, m->n, sizeof(mtensor), cmp_mtensor);
    for (k = 1; k < m->n; ++k)
        if (!strcmp(m->tensors[k - 1].t->name, m->tensors[k].t->name))
            die(CLI_INPUT, "%s: tensor '%s' is in both %s and %s", m->path, m->tensors[k].t->name,
                m->tensors[k - 1].file->path, m->tensors[k].file->path);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !memcmp(s + n - m, suf, m);
}
/* a split GGUF model (llama-gguf-split): path is its first part,
   PREFIX-00001-of-0000N.gguf; the others are opened beside it */
static void gguf_split_open(model *m, const char *path, unsigned long n) {
    const acem_st_file *st = &m->files[0].st;
    const char *no = acem_st_meta(st, "split.no");
    char suffix[64], *prefix;
    size_t pl, k;
    if (!no || strcmp(no, "0"))
        die(CLI_INPUT, "%s: part %s of a split GGUF model (split.no); give its first part", path, no ? no : "(missing)");
    snprintf(suffix, sizeof suffix, "-00001-of-%05lu.gguf", n);
    if (!ends_with(path, suffix))
        die(CLI_INPUT, "%s: the first part of a split GGUF model of %lu parts, but not named PREFIX%s (llama-gguf-split's names)",
            path, n, suffix);
    pl = strlen(path) - strlen(suffix);
    prefix = xprintf("%.*s", (int)pl, path);
    m->files = (st_in *)realloc(m->files, n * sizeof(st_in));
    if (!m->files) die(CLI_RESOURCE, "out of memory");
    memset(m->files + 1, 0, (n - 1) * sizeof(st_in));
    for (k = 1; k < n; ++k) {
        char *pk = xprintf("%s-%05zu-of-%05lu.gguf", prefix, k + 1, n);
        const char *c, *x;
        if (!exists(pk)) die(CLI_IO, "%s: part %zu of %lu of the split GGUF model %s is missing", pk, k + 1, n, path);
        st_in_open(&m->files[k], pk);
        c = acem_st_meta(&m->files[k].st, "split.count");
        x = acem_st_meta(&m->files[k].st, "split.no");
        if (m->files[k].st.format != ACEM_FORMAT_GGUF || !c || strtoul(c, NULL, 10) != n || !x || strtoul(x, NULL, 10) != k)
            die(CLI_INPUT, "%s: not part %zu of %lu of %s (split.no %s, split.count %s)", pk, k + 1, n, path, x ? x : "missing",
                c ? c : "missing");
    }
    m->n_files = n;
    free(prefix);
}

static void model_open(model *m, const char *path) {
    memset(m, 0, sizeof *m);
    m->path = path;
    if (!exists(path)) die(CLI_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!is_dir(path)) {
        const char *c;
        unsigned long n;
        m->n_files = 1;
        m->files = (st_in *)xcalloc(1, sizeof(st_in));
        st_in_open(&m->files[0], path);
        if (m->files[0].st.format == ACEM_FORMAT_GGUF && (c = acem_st_meta(&m->files[0].st, "split.count")) != NULL &&
            (n = strtoul(c, NULL, 10)) > 1)
            gguf_split_open(m, path, n);
        model_build_table(m);
        return;
    }
    {
        char *idx = path_join(path, "model.safetensors.index.json");
        char *single = path_join(path, "model.safetensors");
        size_t len = 0, max, n = 0, k, nf;
        char *json, *err_path = idx;
        const char **names, **files, **uniq;
        uint64_t total = 0;
        acem_error err;
        acem_result r;
        if (!exists(idx)) {
            if (!exists(single))
                die(CLI_INPUT, "%s: directory holds neither model.safetensors.index.json nor model.safetensors", path);
            m->n_files = 1;
            m->files = (st_in *)xcalloc(1, sizeof(st_in));
            st_in_open(&m->files[0], single);
            if (m->files[0].st.format != ACEM_FORMAT_SAFETENSORS) die(CLI_INPUT, "%s: a GGUF file named model.safetensors", single);
            model_build_table(m);
            return;
        }
        m->sharded = 1;
        json = read_whole(idx, &len);
        max = len / 6 + 2;
        names = (const char **)xcalloc(max, sizeof(char *));
        files = (const char **)xcalloc(max, sizeof(char *));
        memset(&err, 0, sizeof err);
        if ((r = acem_st_index_parse(json, len, names, files, max, &n, &total, &err)) != ACEM_OK)
            die(exit_code_of(r), "%s: %s", err_path, err.message);
        if (!n) die(CLI_INPUT, "%s: the weight_map is empty", idx);
        /* the distinct shard files, sorted */
        uniq = (const char **)xcalloc(n, sizeof(char *));
        memcpy(uniq, files, n * sizeof(char *));
        qsort(uniq, n, sizeof(char *), cmp_str);
        for (k = 0, nf = 0; k < n; ++k)
            if (!nf || strcmp(uniq[nf - 1], uniq[k])) uniq[nf++] = uniq[k];
        m->n_files = nf;
        m->files = (st_in *)xcalloc(nf, sizeof(st_in));
        for (k = 0; k < nf; ++k) {
            char *fp;
            if (!uniq[k][0] || strchr(uniq[k], '/') || !strcmp(uniq[k], ".") || !strcmp(uniq[k], ".."))
                die(CLI_INPUT, "%s: weight_map names the file '%s', which is not a file name in the same directory", idx, uniq[k]);
            fp = path_join(path, uniq[k]);
            st_in_open(&m->files[k], fp);
            if (m->files[k].st.format != ACEM_FORMAT_SAFETENSORS)
                die(CLI_INPUT, "%s: a GGUF file in a sharded safetensors checkpoint (%s)", fp, idx);
        }
        model_build_table(m);
        /* the index and the shards must agree exactly */
        {
            unsigned char *listed = (unsigned char *)xcalloc(m->n ? m->n : 1, 1);
            char b1[256], b2[256];
            for (k = 0; k < n; ++k) {
                mtensor *t = model_find(m, names[k]);
                if (!t) die(CLI_INPUT, "%s: weight_map lists tensor '%s' in %s, but no shard holds it", idx, names[k], files[k]);
                if (strcmp(base_name(t->file->path, b1, sizeof b1), files[k]))
                    die(CLI_INPUT, "%s: weight_map puts tensor '%s' in %s, but it is in %s", idx, names[k], files[k], t->file->path);
                if (listed[t - m->tensors]++) die(CLI_INPUT, "%s: weight_map lists tensor '%s' twice", idx, names[k]);
            }
            for (k = 0; k < m->n; ++k)
                if (!listed[k])
                    die(CLI_INPUT, "%s: tensor '%s' is not listed in %s", m->tensors[k].file->path, m->tensors[k].t->name,
                        base_name(idx, b2, sizeof b2));
            free(listed);
            g_held -= m->n ? m->n : 1;
        }
        /* the index JSON (names/files point into it) is not needed any more */
        free(names); free(files); free(uniq); free(json);
        g_held -= 2 * max * sizeof(char *) + n * sizeof(char *) + len + 1;
        if (g_verbose && total && total != m->data_bytes)
            warn("%s: metadata.total_size is %llu, but the shards hold %llu bytes of tensors", idx,
                 (unsigned long long)total, (unsigned long long)m->data_bytes);
    }
}

/* ---- argument parsing --------------------------------------------------------- */
static int parse_double(const char *s, double *v) {
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    return *s && !*e && !errno && isfinite(*v);
}
static int parse_u64(const char *s, uint64_t *v) {
    char *e;
    unsigned long long x;
    if (!*s || *s == '-' || *s == '+' || *s == ' ') return 0;
    errno = 0;
    x = strtoull(s, &e, 10);
    if (*e || errno) return 0;
    *v = (uint64_t)x;
    return 1;
}
/* BYTES with an optional K, M, G or T suffix (powers of 1024; "KB", "KiB" too) */
static int parse_bytes(const char *s, uint64_t *v) {
    char num[64], *e;
    size_t n = strlen(s), k;
    unsigned shift = 0;
    double x;
    if (!n || n >= sizeof num) return 0;
    memcpy(num, s, n + 1);
    k = n;
    if (k > 2 && (num[k - 1] == 'B' || num[k - 1] == 'b') && (num[k - 2] == 'i' || num[k - 2] == 'I')) k -= 2;
    else if (k > 1 && (num[k - 1] == 'B' || num[k - 1] == 'b') && strchr("kKmMgGtT", num[k - 2])) k -= 1;
    if (k > 1 && strchr("kKmMgGtT", num[k - 1])) {
        char c = num[k - 1];
        shift = (c == 'k' || c == 'K') ? 10 : (c == 'm' || c == 'M') ? 20 : (c == 'g' || c == 'G') ? 30 : 40;
        --k;
    }
    num[k] = 0;
    if (!k || num[0] == '-' || num[0] == '+') return 0;
    errno = 0;
    x = strtod(num, &e);
    if (*e || errno || !(x >= 0)) return 0;
    x = ldexp(x, (int)shift);
    if (x >= 18446744073709551615.0) return 0;
    *v = (uint64_t)x;
    return 1;
}

typedef struct argv_iter {
    int argc, i;
    char **argv;
    const char *cmd;
} argv_iter;

/* --name VALUE or --name=VALUE */
static const char *opt_value(argv_iter *it, const char *opt, const char *eq) {
    if (eq) return eq + 1;
    if (it->i + 1 >= it->argc) die(CLI_USAGE, "%s: option %s needs a value (see `acem %s --help`)", it->cmd, opt, it->cmd);
    return it->argv[++it->i];
}
/* compares an option with a long name, '_' accepted for '-'; *eq receives '=' */
static int opt_is(const char *arg, const char *name, const char **eq) {
    const char *a = arg, *b = name;
    while (*b && (*a == *b || (*b == '-' && *a == '_' && a > arg + 2))) { ++a; ++b; }
    if (*b) return 0;
    if (*a == '=') { *eq = a; return 1; }
    if (*a == 0) { *eq = NULL; return 1; }
    return 0;
}

/* ---- help ------------------------------------------------------------------------ */
static const char *const k_exit_codes =
    "Exit codes:\n"
    "  0  success\n"
    "  1  usage error (unknown option or method, bad value, bad regular expression)\n"
    "  2  invalid or mismatched input (malformed file, missing or extra tensor,\n"
    "     shape or dtype mismatch, inconsistent shards)\n"
    "  3  I/O error (cannot open, read, write or rename)\n"
    "  4  numerical failure (singular or non-positive-definite system, non-finite values)\n"
    "  5  resource limit (--memory-limit exceeded, out of memory)\n";

static void usage_main(FILE *o) {
    fprintf(o,
            "acem %s - merge fine-tuned models without data (ACE-Merging and related rules)\n"
            "\n"
            "Usage:\n"
            "  acem merge --base BASE -o OUT [options] EXPERT...   merge experts into BASE\n"
            "  acem inspect FILE|DIR                              tensors, dtypes, shapes, metadata, sizes\n"
            "  acem join -o OUTDIR SHARD_OUTPUT...                join the outputs of `merge --shard I/N`\n"
            "  acem demo                                          the embedded demo (no files needed)\n"
            "  acem --version | help | merge --help\n"
            "\n"
            "BASE and each EXPERT: a .safetensors file, a directory holding\n"
            "model.safetensors.index.json (sharded) or model.safetensors, a GGUF file\n"
            "(then the output is GGUF), or (experts) a PEFT LoRA adapter directory.\n"
            "\n%s",
            ACEM_VERSION_STRING, k_exit_codes);
}

static void usage_merge(FILE *o) {
    fprintf(o,
            "Usage: acem merge --base BASE -o OUT [options] EXPERT...\n"
            "\n"
            "Merges the experts (fine-tunes of BASE) tensor by tensor. BASE and each EXPERT\n"
            "are .safetensors files, checkpoint directories (model.safetensors.index.json\n"
            "or model.safetensors) or GGUF files. Every expert must hold exactly the base's\n"
            "tensors (names, shapes, dtypes); this is checked, from the headers only, before\n"
            "any work.\n"
            "\n"
            "Method and parameters:\n"
            "  --method M        ace (default), average, task-arithmetic, ties, dare-ta,\n"
            "                    dare-ties, actmat, iso-c, tsv-m\n"
            "  --eps E           ACE ridge epsilon (default 1e-2)\n"
            "  --tau T           ACE heterogeneity gate threshold (default 0.3)\n"
            "  --k-frac K        ACE spectral fraction, in (0, 1] (default 0.3)\n"
            "  --lambda L        merged = base + L * M (default: 0.3 for task-arithmetic and\n"
            "                    dare-ta, 1 otherwise)\n"
            "  --density D       TIES / DARE-TIES: fraction of entries kept (default 0.2)\n"
            "  --drop P          DARE drop probability, in (0, 1) (default 0.5)\n"
            "  --seed S          DARE seed (default 0)\n"
            "  --exclude REGEX   tensors whose name matches keep the base value (search\n"
            "                    semantics, like Python's re.search); repeatable\n"
            "  --preset P        model family: exclusions and the paper's epsilon\n"
            "                      gpt2      exclude 'score', eps 4e-2\n"
            "                      roberta   exclude 'classifier|bias|LayerNorm|embeddings', eps 2e-4\n"
            "                      clip-vit  no exclusions, eps 1e-5\n"
            "                      llama     exclude 'embed_tokens|lm_head' (GGUF: token_embd.weight,\n"
            "                                output.weight), eps 1e-5\n"
            "                    an explicit --eps wins; --exclude adds to the preset's\n"
            "\n"
            "Output:\n"
            "  -o, --output OUT  the merged .safetensors file (a .gguf file when BASE is\n"
            "                    GGUF: the base's key/value pairs and tensor order are kept,\n"
            "                    merged block-quantized tensors are written as F16, kept\n"
            "                    ones copied verbatim); with --out-shard-size, a\n"
            "                    directory of model-0000i-of-0000N.safetensors shards plus\n"
            "                    model.safetensors.index.json. Written under a temporary\n"
            "                    name in the same directory and renamed when complete.\n"
            "  --out-dtype T     f32, f16 or bf16 for every floating-point tensor (default:\n"
            "                    each base tensor's dtype; F8 tensors are written as F16)\n"
            "                    GGUF: q8_0, q4_0, q4_1, q5_0, q5_1 too (ggml's reference\n"
            "                    quantizers); applies to tensors of 2 or more dims\n"
            "                    (1-D ones keep the base's dtype, as llama.cpp expects)\n"
            "  --out-shard-size BYTES   largest shard (K, M, G suffixes: powers of 1024)\n"
            "\n");
    fprintf(o,
            "LoRA adapters (every EXPERT a PEFT directory: adapter_config.json +\n"
            "adapter_model.safetensors, or, with a GGUF base, a GGUF LoRA adapter file:\n"
            "general.type adapter, scale adapter.lora.alpha / r; full checkpoints and\n"
            "adapters do not mix):\n"
            "                    each adapter's delta is scale * B A on the base tensor\n"
            "                    <module>.weight (lora_alpha / r or / sqrt(r) with use_rslora,\n"
            "                    rank_pattern / alpha_pattern, fan_in_fan_out, embeddings);\n"
            "                    modules_to_save weights are merged as deltas (saved - base).\n"
            "                    ace, average, task-arithmetic and actmat merge exactly in\n"
            "                    low-rank form; the other methods expand dense deltas.\n"
            "  --output-adapter DIR   write one merged PEFT adapter instead of a model (with\n"
            "                    GGUF adapters: one merged GGUF adapter, a .gguf file)\n"
            "                    (lora_alpha = r, scale 1; exact: rank <= sum of the ranks)\n"
            "  --rank K          truncate each module of the output adapter to its K\n"
            "                    leading singular directions (the energy kept is reported)\n"
            "\n"
            "Resources:\n"
            "  --threads N       worker threads offered to acem (acem_options.parallel_for)\n"
            "  --memory-limit BYTES     refuse to start (exit 5) if the planned peak exceeds it\n"
            "  --shard I/N       merge only the I-th of N disjoint tensor subsets (1-based),\n"
            "                    balanced by bytes; the same on every run. Join the N outputs\n"
            "                    with `acem join`.\n"
            "\n"
            "Other:\n"
            "  --dry-run         check the inputs, print the plan, write nothing\n"
            "  -q, --quiet       print errors only\n"
            "  -v, --verbose     the plan per tensor, and ACE details per tensor\n"
            "\n"
            "The plan (before any heavy work), the progress and the summary go to stderr.\n"
            "\n"
            "Merging a large model on many machines (a Slurm array; any job runner works):\n"
            "\n"
            "  #!/bin/bash\n"
            "  #SBATCH --array=1-8\n"
            "  acem merge --base llama-base/ --preset llama --shard ${SLURM_ARRAY_TASK_ID}/8 \\\n"
            "       -o parts/part-${SLURM_ARRAY_TASK_ID}.safetensors ft-math/ ft-code/ ft-chat/\n"
            "\n"
            "  # when all 8 tasks are done (e.g. sbatch --dependency=afterok:JOBID):\n"
            "  acem join -o merged/ parts/part-*.safetensors\n"
            "\n%s",
            k_exit_codes);
}

/* ---- the merge ------------------------------------------------------------------- */
enum { ACT_MERGE, ACT_KEEP_RAW, ACT_KEEP_CONVERT, ACT_COPY, ACT_LORA };

typedef struct ptensor {
    size_t idx;             /* in base.tensors */
    const acem_st_tensor *bt;
    int action;
    acem_rule rule;
    acem_dtype out_dtype;
    size_t rows, cols;
    int passes;
    size_t arena, buf_a, buf_b, buf_c; /* per-tensor working set */
    struct lmod *lm;        /* ACT_LORA: what the adapters change */
    uint64_t read_bytes;    /* bytes read from the inputs */
    uint64_t out_bytes;
    size_t out_file;
} ptensor;

typedef struct outfile {
    char *final_path;       /* where it ends up */
    char *write_path;       /* where it is written (temporary) */
    char *name;             /* file name, for the index */
    size_t n;
    size_t *pidx;           /* plan indices */
    acem_st_tensor *t;      /* the output descriptors (parallel to pidx) */
    size_t *order;
    uint64_t header_bytes, size;
} outfile;

typedef struct merge_args {
    const char *base, *out, *preset;
    const char **experts;
    size_t n_experts;
    const char **excl;
    size_t n_excl;
    acem_options opt;
    int have_eps;
    acem_dtype out_dtype;   /* UNKNOWN: as the base */
    uint64_t shard_size;    /* 0: a single output file */
    uint64_t mem_limit;     /* 0: none */
    size_t threads;
    unsigned shard_i, shard_n;
    int dry;
    const char *out_adapter; /* --output-adapter DIR */
    uint64_t rank;          /* --rank K (0: exact) */
} merge_args;

static int counting_write(void *user, const void *src, size_t n) {
    (void)src;
    *(uint64_t *)user += n;
    return 0;
}

static size_t round_up64(size_t n) { return (n + 63) / 64 * 64; }

/* Progress: by bytes read from the inputs. */
typedef struct progress {
    int tty;
    double t0, last;
    uint64_t total, done;
    size_t i, n;
    const char *name;
} progress;
static progress g_prog;

static void progress_draw(int force) {
    progress *p = &g_prog;
    double t = now_s(), el = t - p->t0, rate, pct;
    char eta[32], nm[32], bar[24];
    size_t w = 16, fill, k, len;
    if (g_quiet || !p->tty) return;
    if (!force && t - p->last < 0.1) return;
    p->last = t;
    pct = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
    rate = el > 0 ? (double)p->done / el : 0;
    if (rate > 0 && p->done < p->total) {
        double s = (double)(p->total - p->done) / rate;
        if (s < 3600) snprintf(eta, sizeof eta, "%d:%02d", (int)s / 60, (int)s % 60);
        else snprintf(eta, sizeof eta, "%dh%02d", (int)(s / 3600), ((int)s % 3600) / 60);
    } else
        snprintf(eta, sizeof eta, "--:--");
    fill = (size_t)(pct / 100.0 * (double)w + 0.5);
    if (fill > w) fill = w;
    for (k = 0; k < w; ++k) bar[k] = k < fill ? '#' : '.';
    bar[w] = 0;
    /* the end of a long name is the informative part: "...layers.31.mlp.weight" */
    len = p->name ? strlen(p->name) : 0;
    if (len < sizeof nm) snprintf(nm, sizeof nm, "%s", p->name ? p->name : "");
    else snprintf(nm, sizeof nm, "...%s", p->name + len - (sizeof nm - 4));
    /* at most 79 columns */
    fprintf(stderr, "\r[%s] %5.1f%% %-31s %6.1f MB/s ETA %s\033[K", bar, pct, nm, rate / 1e6, eta);
    fflush(stderr);
    g_line_open = 1;
}

/* counts one merged tensor into the summary: ACE layers, gated, refined, fallbacks */
static void count_layer(const acem_layer_info *info, acem_rule rule, const char *name, size_t *n_ace, size_t *n_gated,
                        size_t *n_refined, const char **fallback, size_t *n_fallback) {
    if (rule == ACEM_RULE_METHOD && info->method == ACEM_ACE) {
        ++*n_ace;
        *n_gated += info->gated != 0;
        *n_refined += info->refined != 0;
    }
    if (info->fallback) fallback[(*n_fallback)++] = name;
}

/* one tensor's bytes are in (read, or read ahead): the progress bar */
static void progress_read(const mtensor *m) {
    g_prog.done += m->t->end - m->t->begin;
    progress_draw(0);
}
/* reads one tensor (as f32, or its raw bytes) and advances the progress bar */
static void read_counted(const mtensor *m, void *dst, int as_f32) {
    acem_error err;
    acem_result r;
    memset(&err, 0, sizeof err);
    r = as_f32 ? acem_st_read_f32(&m->file->st, m->t, (float *)dst, &err) : acem_st_read_raw(&m->file->st, m->t, dst, &err);
    if (r != ACEM_OK) die(exit_code_of(r), "%s", err.message);
    progress_read(m);
}
static void read_f32_counted(const mtensor *m, float *dst) { read_counted(m, dst, 1); }
static void read_raw_counted(const mtensor *m, void *dst) { read_counted(m, dst, 0); }

/* ---- read-ahead and write-behind: with --threads N > 1, two more threads move
   the data while the workers merge: one reads the next expert tensor into a
   second buffer, one writes merged tensors from a buffer of its own (the reads
   and writes would otherwise be serial time between parallel steps). While a
   job is posted, only its thread touches that file; the main thread counts
   progress and reports errors. */
typedef struct iothread { /* the reader: one job at a time, m into dst */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const mtensor *m;
    float *dst;
    size_t next, n, done;      /* the job's pieces: claimed, in all, read */
    int state;                 /* 0 idle, 1 posted, 2 done */
    int quit, started;
    acem_result r;
    acem_error err;
} iothread;
/* A job is read in pieces of IO_PIECE bytes (an F32 tensor; other dtypes, which
   are converted in place after the read, whole), and a thread that waits for
   it reads the pieces no one has taken: the ACE tensors' first pass over each
   expert computes little, so there the reads set the pace (GPT-2 bench, 2
   threads: 1.05 s of the main thread's waits for the reader, the other lane
   idle meanwhile). */
#define IO_PIECE ((size_t)1 << 20)
static size_t io_pieces(const mtensor *m) {
    uint64_t nb = m->t->end - m->t->begin;
    return m->t->dtype != ACEM_DT_F32 || nb <= IO_PIECE ? 1 : (size_t)((nb + IO_PIECE - 1) / IO_PIECE);
}
/* with mu held: reads the job's pieces until none is left to take */
static void io_take(iothread *ra) {
    while (ra->state == 1 && ra->next < ra->n) {
        size_t k = ra->next++;
        acem_result r;
        acem_error err;
        pthread_mutex_unlock(&ra->mu);
        memset(&err, 0, sizeof err);
        if (ra->n == 1) r = acem_st_read_f32(&ra->m->file->st, ra->m->t, ra->dst, &err);
        else { /* bytes [k IO_PIECE, (k + 1) IO_PIECE) of the tensor */
            acem_st_tensor piece = *ra->m->t;
            piece.begin += (uint64_t)k * IO_PIECE;
            if (piece.end - piece.begin > IO_PIECE) piece.end = piece.begin + IO_PIECE;
            r = acem_st_read_raw(&ra->m->file->st, &piece, (unsigned char *)(void *)ra->dst + k * IO_PIECE, &err);
        }
        pthread_mutex_lock(&ra->mu);
        if (r != ACEM_OK && ra->r == ACEM_OK) {
            ra->r = r;
            ra->err = err;
        }
        if (++ra->done == ra->n) {
            ra->state = 2;
            pthread_cond_broadcast(&ra->cv);
        }
    }
}
static void *io_main(void *arg) {
    iothread *ra = (iothread *)arg;
    pthread_mutex_lock(&ra->mu);
    for (;;) {
        while (!ra->quit && !(ra->state == 1 && ra->next < ra->n)) pthread_cond_wait(&ra->cv, &ra->mu);
        if (ra->quit) break;
        io_take(ra);
    }
    pthread_mutex_unlock(&ra->mu);
    return NULL;
}
static void io_start(iothread *ra) {
    memset(ra, 0, sizeof *ra);
    if (pthread_mutex_init(&ra->mu, NULL) || pthread_cond_init(&ra->cv, NULL) ||
        pthread_create(&ra->th, NULL, io_main, ra))
        die(CLI_RESOURCE, "cannot start an I/O thread");
    ra->started = 1;
}
static void io_post_read(iothread *ra, const mtensor *m, float *dst) {
    pthread_mutex_lock(&ra->mu);
    ra->m = m;
    ra->dst = dst;
    ra->next = ra->done = 0;
    ra->n = io_pieces(m);
    ra->r = ACEM_OK;
    ra->state = 1;
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
}
/* waits for the posted read, if any, reading the pieces not yet taken; dies
   (naming the file and tensor) if it failed, else advances the progress bar */
static void io_wait(iothread *ra) {
    int posted;
    pthread_mutex_lock(&ra->mu);
    posted = ra->state != 0;
    io_take(ra);
    while (ra->state == 1) pthread_cond_wait(&ra->cv, &ra->mu);
    ra->state = 0;
    pthread_mutex_unlock(&ra->mu);
    if (!posted) return;
    if (ra->r != ACEM_OK) die(exit_code_of(ra->r), "%s", ra->err.message);
    progress_read(ra->m);
}
/* reads m into dst now: with the reader, the two threads share the pieces */
static void io_read_now(iothread *ra, const mtensor *m, float *dst) {
    if (!ra->started) {
        read_f32_counted(m, dst);
        return;
    }
    io_post_read(ra, m, dst);
    io_wait(ra);
}
/* sets *quit under mu, wakes th and joins it (the reader and the writer) */
static void quit_thread(pthread_mutex_t *mu, pthread_cond_t *cv, int *quit, pthread_t th) {
    pthread_mutex_lock(mu);
    *quit = 1;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(mu);
    pthread_join(th, NULL);
}
static void io_stop(iothread *ra) {
    if (!ra->started) return;
    io_wait(ra);
    quit_thread(&ra->mu, &ra->cv, &ra->quit, ra->th);
    ra->started = 0;
}

/* Each tensor's data goes to its place in the output file (data start +
   its begin): the merge's processing order need not be the file's (see
   merge_order). Seeks only when the stream is not already there. */
static int out_seek(FILE *fp, uint64_t pos) {
    off_t at = ftello(fp);
    if (at >= 0 && (uint64_t)at == pos) return 0;
    if ((uint64_t)(off_t)pos != pos || (off_t)pos < 0) { errno = EFBIG; return -1; }
    return fseeko(fp, (off_t)pos, SEEK_SET);
}

/* The writer: a FIFO of merged tensors, written in the order posted, each in
   its own region of a ring buffer of cap bytes (cap >= the largest tensor). A tensor
   waits for the writer only when the ring has no room for it: a bias after a
   large weight goes in beside it. (With one region, the main thread waited
   for every previous write before finishing the next tensor: on the GPT-2
   bench 0.6-0.8 s of 2-thread wall, with the other lane idle, mostly at the
   small tensors that follow each large one.) Every WQ_SYNC bytes the writer
   also flushes the file and waits for the disk (fdatasync), off the main
   thread: the fsync before the rename then has little left (GPT-2 bench:
   0.27 s with the whole 475 MB output still to write back, after the last
   tensor, when both lanes are idle). */
#define WQ_MAX 16
#define WQ_SYNC ((size_t)16 << 20)
typedef struct wjob { acem_write_io *wio; FILE *fp; const acem_st_tensor *ot; size_t off, len; uint64_t pos; } wjob;
typedef struct wqueue {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *buf;
    size_t cap;
    wjob q[WQ_MAX];            /* pending: q[head], ..., the first being written */
    size_t head, n;
    size_t unsynced;           /* bytes written since the last fdatasync */
    int quit, started, failed;
    acem_result r;
    acem_error err;
} wqueue;
static void *wq_main(void *arg) {
    wqueue *w = (wqueue *)arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wjob j;
        acem_result r = ACEM_OK;
        acem_error err;
        while (!w->quit && !w->n) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->n) break;
        j = w->q[w->head];
        if (!w->failed) { /* after a failure the rest are dropped: the main thread dies */
            int sys = 0;
            pthread_mutex_unlock(&w->mu);
            if (out_seek(j.fp, j.pos) != 0) sys = 1;
            else r = acem_st_write_f32(j.wio, j.ot, (const float *)(void *)(w->buf + j.off), &err);
            if (!sys && r == ACEM_OK && (w->unsynced += j.len) >= WQ_SYNC) {
                w->unsynced = 0;
                sys = fflush(j.fp) != 0 || fdatasync(fileno(j.fp)) != 0;
            }
            if (sys) { /* an error as acem's own */
                memset(&err, 0, sizeof err);
                err.code = r = ACEM_ERR_IO;
                err.column = -1;
                snprintf(err.message, sizeof err.message, "%s: write error: %s", j.wio->path, strerror(errno));
            }
            pthread_mutex_lock(&w->mu);
            if (r != ACEM_OK) {
                w->failed = 1;
                w->r = r;
                w->err = err;
            }
        }
        w->head = (w->head + 1) % WQ_MAX;
        w->n--;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}
static void wq_start(wqueue *w, void *buf, size_t cap) {
    memset(w, 0, sizeof *w);
    w->buf = (unsigned char *)buf;
    w->cap = cap;
    if (pthread_mutex_init(&w->mu, NULL) || pthread_cond_init(&w->cv, NULL) || pthread_create(&w->th, NULL, wq_main, w))
        die(CLI_RESOURCE, "cannot start the write-behind thread");
    w->started = 1;
}
static void wq_check_locked(wqueue *w) { /* dies (naming the file and tensor) after a failed write */
    if (!w->failed) return;
    pthread_mutex_unlock(&w->mu);
    die(exit_code_of(w->r), "%s", w->err.message);
}
/* room for a tensor of len bytes (len <= cap): where it starts in the ring,
   after the newest pending region, or from the start once the oldest one
   has been written; waits for the writer while there is none */
static float *wq_room(wqueue *w, size_t len) {
    size_t off = 0;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wq_check_locked(w);
        if (!w->n) break;
        if (w->n < WQ_MAX) {
            const wjob *o = &w->q[w->head], *y = &w->q[(w->head + w->n - 1) % WQ_MAX];
            size_t end = (y->off + y->len + 63) & ~(size_t)63;
            if (y->off >= o->off) { /* not wrapped: after the newest, else before the oldest */
                if (end + len <= w->cap) { off = end; break; }
                if (len <= o->off) { off = 0; break; }
            } else if (end + len <= o->off) { off = end; break; }
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return (float *)(void *)(w->buf + off);
}
/* queues the tensor that wq_room placed at src, for wio (a stdio writer on
   fp), its data to start at file offset pos */
static void wq_post(wqueue *w, acem_write_io *wio, FILE *fp, const acem_st_tensor *ot, const float *src, size_t len,
                    uint64_t pos) {
    wjob *j;
    pthread_mutex_lock(&w->mu);
    j = &w->q[(w->head + w->n) % WQ_MAX];
    j->wio = wio;
    j->fp = fp;
    j->ot = ot;
    j->off = (size_t)((const unsigned char *)(const void *)src - w->buf);
    j->len = len;
    j->pos = pos;
    w->n++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
/* waits until every queued tensor is written (before a write of the main
   thread's own, and at the end of each output file) */
static void wq_drain(wqueue *w) {
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    while (w->n) pthread_cond_wait(&w->cv, &w->mu);
    wq_check_locked(w);
    pthread_mutex_unlock(&w->mu);
}
static void wq_stop(wqueue *w) {
    if (!w->started) return;
    wq_drain(w);
    quit_thread(&w->mu, &w->cv, &w->quit, w->th);
    w->started = 0;
}

/* Passes over the experts for a rule: a 0 x 0 layer needs no arena and reports
   them (acem.h has no query that does not need an initialised layer). */
static int passes_for(const acem_options *opt, acem_rule rule, size_t T) {
    acem_layer L;
    acem_error err;
    if (rule == ACEM_RULE_KEEP) return 0;
    if (acem_layer_init(&L, opt, rule, "", 0, 0, T, NULL, 0, &err) != ACEM_OK) return 2;
    return acem_layer_passes(&L);
}

/* deterministic assignment of the base's tensors to N subsets: sorted by size
   (descending) then name, each to the lightest subset (lowest number on ties) */
typedef struct shard_item { const char *name; uint64_t bytes; size_t idx; } shard_item;
static int cmp_shard_item(const void *a, const void *b) {
    const shard_item *x = (const shard_item *)a, *y = (const shard_item *)b;
    if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
    return strcmp(x->name, y->name);
}
static unsigned *shard_assign(const model *base, unsigned N) {
    shard_item *it = (shard_item *)xcalloc(base->n ? base->n : 1, sizeof(shard_item));
    uint64_t *load = (uint64_t *)xcalloc(N, sizeof(uint64_t));
    unsigned *which = (unsigned *)xcalloc(base->n ? base->n : 1, sizeof(unsigned));
    size_t k;
    for (k = 0; k < base->n; ++k) {
        it[k].name = base->tensors[k].t->name;
        it[k].bytes = base->tensors[k].t->end - base->tensors[k].t->begin;
        it[k].idx = k;
    }
    qsort(it, base->n, sizeof(shard_item), cmp_shard_item);
    for (k = 0; k < base->n; ++k) {
        unsigned s, best = 0;
        for (s = 1; s < N; ++s)
            if (load[s] < load[best]) best = s;
        load[best] += it[k].bytes;
        which[it[k].idx] = best + 1;
    }
    free(it);
    free(load);
    return which;
}

static void validate_expert(const model *base, const model *e) {
    size_t i = 0, j = 0, problems = 0;
    char s1[160], s2[160];
    end_line();
    while (i < base->n || j < e->n) {
        int c = i >= base->n ? 1 : j >= e->n ? -1 : strcmp(base->tensors[i].t->name, e->tensors[j].t->name);
        if (problems >= 10) { fprintf(stderr, "acem: error: ... (more problems in %s)\n", e->path); break; }
        if (c < 0) {
            fprintf(stderr, "acem: error: %s: tensor '%s' is missing (the base %s has it)\n", e->path, base->tensors[i].t->name,
                    base->tensors[i].file->path);
            ++problems; ++i;
        } else if (c > 0) {
            fprintf(stderr, "acem: error: %s: tensor '%s' is not in the base %s\n", e->tensors[j].file->path,
                    e->tensors[j].t->name, base->path);
            ++problems; ++j;
        } else {
            const acem_st_tensor *a = base->tensors[i].t, *b = e->tensors[j].t;
            int same_shape = a->ndim == b->ndim;
            size_t d;
            for (d = 0; same_shape && d < a->ndim; ++d) same_shape = a->shape[d] == b->shape[d];
            if (!same_shape) {
                shape_str(s1, sizeof s1, b);
                shape_str(s2, sizeof s2, a);
                fprintf(stderr, "acem: error: %s: tensor '%s': shape %s, but the base has %s\n", e->tensors[j].file->path,
                        b->name, s1, s2);
                ++problems;
            } else if (a->dtype != b->dtype) {
                fprintf(stderr, "acem: error: %s: tensor '%s': dtype %s, but the base has %s\n", e->tensors[j].file->path,
                        b->name, acem_dtype_name(b->dtype), acem_dtype_name(a->dtype));
                ++problems;
            }
            ++i; ++j;
        }
    }
    if (problems) die(CLI_INPUT, "%s does not match the base %s (%zu problem%s)", e->path, base->path, problems,
                      problems == 1 ? "" : "s");
}

/* the same file object? (so that an output never replaces an input) */
static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static void check_output_path(const merge_args *a, const model *ms, size_t nm) {
    size_t k, f;
    char *parent = dir_name(a->out);
    if (!is_dir(parent)) die(CLI_IO, "%s: cannot write: directory %s does not exist", a->out, parent);
    if (a->shard_size) {
        if (exists(a->out) && !is_dir(a->out)) die(CLI_USAGE, "%s exists and is not a directory (--out-shard-size writes a directory)", a->out);
    } else if (is_dir(a->out))
        die(CLI_USAGE, "%s is a directory; give a file name, or --out-shard-size to write a sharded directory", a->out);
    for (k = 0; k < nm; ++k) {
        if (same_file(a->out, ms[k].path))
            die(CLI_USAGE, "the output %s is the input %s; choose another output", a->out, ms[k].path);
        for (f = 0; f < ms[k].n_files; ++f) {
            char *d = dir_name(ms[k].files[f].path);
            if (same_file(a->out, ms[k].files[f].path) || (a->shard_size && same_file(a->out, d)))
                die(CLI_USAGE, "the output %s would overwrite the input %s; choose another output", a->out, ms[k].files[f].path);
            free(d);
        }
    }
    free(parent);
}

/* Creates the file for writing: a fresh temporary (O_EXCL), registered for cleanup. */
static FILE *create_temp(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    FILE *fp;
    if (fd < 0) die(CLI_IO, "%s: cannot create: %s", path, strerror(errno));
    g_tmp[g_tmp_n] = (char *)path;
    g_tmp_n = g_tmp_n + 1;
    if (!(fp = fdopen(fd, "wb"))) die(CLI_IO, "%s: cannot open: %s", path, strerror(errno));
    return fp;
}
static void finish_file(FILE *fp, const char *path) {
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) die(CLI_IO, "%s: write error: %s", path, strerror(errno));
    if (fclose(fp) != 0) die(CLI_IO, "%s: write error: %s", path, strerror(errno));
}
static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
}
/* room to register n temporaries for removal on failure or a signal */
static void temp_slots(size_t n) {
    g_tmp_cap = n;
    g_tmp = (char **)xcalloc(n, sizeof(char *));
}
/* where an output (a file or a fresh directory) is written before it is
   complete: .NAME.tmp-PID beside it */
static char *temp_path(const char *final) {
    char b[PATH_MAX], *parent = dir_name(final), *t;
    t = xprintf("%s/.%s.tmp-%ld", parent, base_name(final, b, sizeof b), (long)getpid());
    free(parent);
    return t;
}
/* a complete single file into place */
static void commit_file(const char *tmp, const char *final) {
    char *parent = dir_name(final);
    if (rename(tmp, final) != 0) die(CLI_IO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    g_tmp_n = 0;
    sync_dir(parent);
    free(parent);
}

/* Output directory handling, shared by `merge --out-shard-size` and `join`.
   A directory that does not exist is built under .NAME.tmp-PID next to it and
   renamed when complete; into an existing directory, each file is written as
   .FILE.tmp-PID and renamed at the end (the index last). */
typedef struct outdir {
    const char *path;
    int fresh;          /* the directory did not exist */
    char *tmp_dir;
} outdir;

static void outdir_begin(outdir *d, const char *path, size_t n_files) {
    memset(d, 0, sizeof *d);
    d->path = path;
    temp_slots(n_files + 1);
    if (!exists(path)) {
        d->fresh = 1;
        d->tmp_dir = temp_path(path);
        if (mkdir(d->tmp_dir, 0755) != 0) die(CLI_IO, "%s: cannot create: %s", d->tmp_dir, strerror(errno));
        g_tmp_dir = d->tmp_dir;
    } else if (!is_dir(path))
        die(CLI_USAGE, "%s exists and is not a directory", path);
}
/* where to write file NAME of the directory */
static char *outdir_write_path(const outdir *d, const char *name) {
    if (d->fresh) return path_join(d->tmp_dir, name);
    return xprintf("%s/.%s.tmp-%ld", d->path, name, (long)getpid());
}
static void outdir_commit(outdir *d, char *const *write_paths, char *const *names, size_t n) {
    size_t k;
    if (d->fresh) {
        sync_dir(d->tmp_dir);
        if (rename(d->tmp_dir, d->path) != 0) die(CLI_IO, "cannot rename %s to %s: %s", d->tmp_dir, d->path, strerror(errno));
        g_tmp_n = 0;
        g_tmp_dir = NULL;
    } else {
        for (k = 0; k < n; ++k) {
            char *final_path = path_join(d->path, names[k]);
            if (rename(write_paths[k], final_path) != 0)
                die(CLI_IO, "cannot rename %s to %s: %s", write_paths[k], final_path, strerror(errno));
            g_tmp[k] = NULL;
            free(final_path);
        }
        g_tmp_n = 0;
        sync_dir(d->path);
    }
    {
        char *parent = dir_name(d->path);
        sync_dir(parent);
        free(parent);
    }
}

typedef struct index_entry { const char *name, *file; } index_entry;
static int cmp_index_entry(const void *a, const void *b) {
    return strcmp(((const index_entry *)a)->name, ((const index_entry *)b)->name);
}
static void write_index(const char *path, index_entry *e, size_t n, uint64_t total) {
    sbuf b;
    size_t k;
    char num[32];
    FILE *fp;
    memset(&b, 0, sizeof b);
    qsort(e, n, sizeof(index_entry), cmp_index_entry);
    snprintf(num, sizeof num, "%llu", (unsigned long long)total);
    sb_puts(&b, "{\n  \"metadata\": {\n    \"total_size\": ");
    sb_puts(&b, num);
    sb_puts(&b, "\n  },\n  \"weight_map\": {");
    for (k = 0; k < n; ++k) {
        sb_puts(&b, k ? ",\n    " : "\n    ");
        sb_json_str(&b, e[k].name);
        sb_puts(&b, ": ");
        sb_json_str(&b, e[k].file);
    }
    sb_puts(&b, "\n  }\n}\n");
    fp = create_temp(path);
    if (fwrite(b.p, 1, b.n, fp) != b.n) die(CLI_IO, "%s: write error: %s", path, strerror(errno));
    finish_file(fp, path);
    free(b.p);
    g_held -= b.cap;
}

static const struct { const char *name, *exclude; double eps; } k_presets[] = {
    {"gpt2", "score", 4e-2},
    {"roberta", "classifier|bias|LayerNorm|embeddings", 2e-4},
    {"clip-vit", NULL, 1e-5},
    {"llama", "embed_tokens|lm_head|^token_embd\\.weight$|^output\\.weight$", 1e-5}, /* HF and GGUF names */
};

static void parse_merge_args(merge_args *a, int argc, char **argv) {
    argv_iter it;
    size_t n_preset = sizeof k_presets / sizeof k_presets[0], k;
    int only_files = 0;
    memset(a, 0, sizeof *a);
    a->threads = 1;
    /* (not counted in the plan's memory: the same plan with or without --dry-run) */
    a->experts = (const char **)calloc((size_t)argc + 1, sizeof(char *));
    a->excl = (const char **)calloc((size_t)argc + 1, sizeof(char *));
    if (!a->experts || !a->excl) die(CLI_RESOURCE, "out of memory");
    it.argc = argc; it.argv = argv; it.cmd = "merge";
    for (it.i = 0; it.i < argc; ++it.i) {
        const char *s = argv[it.i], *eq = NULL, *v;
        double d;
        if (only_files || s[0] != '-' || !s[1]) { a->experts[a->n_experts++] = s; continue; }
        if (!strcmp(s, "--")) { only_files = 1; continue; }
        if (!strcmp(s, "-h") || opt_is(s, "--help", &eq)) { usage_merge(stdout); exit(CLI_OK); }
        if (!strcmp(s, "-q") || opt_is(s, "--quiet", &eq)) { g_quiet = 1; continue; }
        if (!strcmp(s, "-v") || opt_is(s, "--verbose", &eq)) { g_verbose = 1; continue; }
        if (opt_is(s, "--dry-run", &eq)) { a->dry = 1; continue; }
        if (!strcmp(s, "-o") || opt_is(s, "--output", &eq) || opt_is(s, "--out", &eq)) {
            a->out = opt_value(&it, "-o", !strcmp(s, "-o") ? NULL : eq);
            continue;
        }
        if (opt_is(s, "--base", &eq)) { a->base = opt_value(&it, "--base", eq); continue; }
        if (opt_is(s, "--output-adapter", &eq)) { a->out_adapter = opt_value(&it, "--output-adapter", eq); continue; }
        if (opt_is(s, "--rank", &eq)) {
            v = opt_value(&it, "--rank", eq);
            if (!parse_u64(v, &a->rank) || !a->rank) die(CLI_USAGE, "--rank: '%s' is not a positive integer", v);
            continue;
        }
        if (opt_is(s, "--method", &eq)) {
            v = opt_value(&it, "--method", eq);
            if ((a->opt.method = acem_method_from_name(v)) == ACEM_METHOD_COUNT)
                die(CLI_USAGE, "unknown method '%s' (ace, average, task-arithmetic, ties, dare-ta, dare-ties, actmat, iso-c, tsv-m)", v);
            continue;
        }
#define NUM_OPT(NAME, FIELD, ZERO_MSG)                                                           \
        if (opt_is(s, NAME, &eq)) {                                                              \
            v = opt_value(&it, NAME, eq);                                                        \
            if (!parse_double(v, &d)) die(CLI_USAGE, "%s: '%s' is not a number", NAME, v);       \
            if (d == 0) die(CLI_USAGE, "%s: %s", NAME, ZERO_MSG);                                \
            a->opt.FIELD = d;                                                                    \
            continue;                                                                            \
        }
        NUM_OPT("--eps", eps, "must be positive")
        NUM_OPT("--k-frac", k_frac, "must be in (0, 1]")
        NUM_OPT("--lambda", lambda, "must be non-zero (omit it for the method's default)")
        NUM_OPT("--density", density, "must be in (0, 1]")
        NUM_OPT("--drop", drop, "must be in (0, 1) (acem reads 0 as the default, 0.5)")
#undef NUM_OPT
        if (opt_is(s, "--tau", &eq)) {
            v = opt_value(&it, "--tau", eq);
            if (!parse_double(v, &d)) die(CLI_USAGE, "--tau: '%s' is not a number", v);
            /* acem reads tau = 0 as "default 0.3": the smallest positive double
               gates exactly when gamma > 0 as well (gamma is never below it but
               above 0) */
            a->opt.tau = d == 0 ? 4.9406564584124654e-324 : d;
            continue;
        }
        if (opt_is(s, "--seed", &eq)) {
            uint64_t u;
            v = opt_value(&it, "--seed", eq);
            if (!parse_u64(v, &u)) die(CLI_USAGE, "--seed: '%s' is not a non-negative integer", v);
            a->opt.seed = u;
            continue;
        }
        if (opt_is(s, "--exclude", &eq)) {
            v = opt_value(&it, "--exclude", eq);
            if (acem_regex_check(v) != ACEM_OK) die(CLI_USAGE, "--exclude: bad regular expression '%s'", v);
            a->excl[a->n_excl++] = v;
            continue;
        }
        if (opt_is(s, "--preset", &eq)) {
            a->preset = opt_value(&it, "--preset", eq);
            continue;
        }
        if (opt_is(s, "--out-dtype", &eq)) {
            v = opt_value(&it, "--out-dtype", eq);
            if (!strcmp(v, "f32") || !strcmp(v, "F32") || !strcmp(v, "float32")) a->out_dtype = ACEM_DT_F32;
            else if (!strcmp(v, "f16") || !strcmp(v, "F16") || !strcmp(v, "float16")) a->out_dtype = ACEM_DT_F16;
            else if (!strcmp(v, "bf16") || !strcmp(v, "BF16") || !strcmp(v, "bfloat16")) a->out_dtype = ACEM_DT_BF16;
            else if (!strcmp(v, "q8_0") || !strcmp(v, "Q8_0")) a->out_dtype = ACEM_DT_Q8_0;
            else if (!strcmp(v, "q4_0") || !strcmp(v, "Q4_0")) a->out_dtype = ACEM_DT_Q4_0;
            else if (!strcmp(v, "q4_1") || !strcmp(v, "Q4_1")) a->out_dtype = ACEM_DT_Q4_1;
            else if (!strcmp(v, "q5_0") || !strcmp(v, "Q5_0")) a->out_dtype = ACEM_DT_Q5_0;
            else if (!strcmp(v, "q5_1") || !strcmp(v, "Q5_1")) a->out_dtype = ACEM_DT_Q5_1;
            else die(CLI_USAGE, "--out-dtype: '%s' is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1", v);
            continue;
        }
        if (opt_is(s, "--out-shard-size", &eq)) {
            v = opt_value(&it, "--out-shard-size", eq);
            if (!parse_bytes(v, &a->shard_size) || !a->shard_size)
                die(CLI_USAGE, "--out-shard-size: '%s' is not a positive byte count (K, M, G suffixes allowed)", v);
            continue;
        }
        if (opt_is(s, "--memory-limit", &eq)) {
            v = opt_value(&it, "--memory-limit", eq);
            if (!parse_bytes(v, &a->mem_limit) || !a->mem_limit)
                die(CLI_USAGE, "--memory-limit: '%s' is not a positive byte count (K, M, G suffixes allowed)", v);
            continue;
        }
        if (opt_is(s, "--threads", &eq)) {
            uint64_t u;
            v = opt_value(&it, "--threads", eq);
            if (!parse_u64(v, &u) || u < 1 || u > 1024) die(CLI_USAGE, "--threads: '%s' is not a number from 1 to 1024", v);
            a->threads = (size_t)u;
            continue;
        }
        if (opt_is(s, "--shard", &eq)) {
            unsigned long i, n = 0;
            char *e1, *e2;
            v = opt_value(&it, "--shard", eq);
            i = strtoul(v, &e1, 10);
            if (*v < '0' || *v > '9' || *e1 != '/' || e1[1] < '0' || e1[1] > '9' || (n = strtoul(e1 + 1, &e2, 10), *e2) ||
                i < 1 || n < 1 || i > n || n > 99999)
                die(CLI_USAGE, "--shard: '%s' is not I/N with 1 <= I <= N", v);
            a->shard_i = (unsigned)i;
            a->shard_n = (unsigned)n;
            continue;
        }
        die(CLI_USAGE, "merge: unknown option '%s' (see `acem merge --help`)", s);
    }
    if (!a->base) die(CLI_USAGE, "merge: --base BASE is required (see `acem merge --help`)");
    if (a->out && a->out_adapter) die(CLI_USAGE, "merge: -o and --output-adapter exclude each other (a model or an adapter)");
    if (!a->out && !a->out_adapter && !a->dry) die(CLI_USAGE, "merge: -o OUT is required (see `acem merge --help`)");
    if (a->rank && !a->out_adapter) die(CLI_USAGE, "merge: --rank K truncates the --output-adapter; it needs --output-adapter DIR");
    if (a->out_adapter && (a->shard_n || a->shard_size))
        die(CLI_USAGE, "merge: --output-adapter writes one adapter directory; --shard and --out-shard-size are for models");
    if (!a->n_experts) die(CLI_USAGE, "merge: no experts given (see `acem merge --help`)");
    if (a->shard_n && a->shard_size) die(CLI_USAGE, "merge: --shard and --out-shard-size exclude each other (join the shards with `acem join`)");
    if (a->preset) {
        for (k = 0; k < n_preset; ++k)
            if (!strcmp(a->preset, k_presets[k].name)) break;
        if (k == n_preset) die(CLI_USAGE, "--preset: unknown family '%s' (gpt2, roberta, clip-vit, llama)", a->preset);
        if (!a->opt.eps) a->opt.eps = k_presets[k].eps;
        else a->have_eps = 1;
        if (k_presets[k].exclude) a->excl[a->n_excl++] = k_presets[k].exclude;
    }
    a->opt.exclude = a->excl;
    a->opt.n_exclude = a->n_excl;
}

/* ---- LoRA adapters (PEFT directories) -------------------------------------------
   An expert that is a directory holding adapter_config.json is a PEFT LoRA
   adapter: adapter_config.json + adapter_model.safetensors. Its keys:
     base_model.model.<module>.lora_A.weight (r, in)  .lora_B.weight (out, r)
     base_model.model.<module>.lora_embedding_A (r, num_embeddings)
     base_model.model.<module>.lora_embedding_B (dim, r)
     base_model.model.<module>.<param>            a full replacement weight
       (modules_to_save; "<module>.modules_to_save.default.<param>" accepted)
   A LoRA module changes the base tensor <module>.weight by
   scale * B A, transposed (the base holds (in, out)) for fan_in_fan_out and for
   embeddings. Base names: <module>.weight as is; if the base has no such
   tensor, the name without its first component (adapter "transformer.h.0..."
   against a base "h.0..."); then the one base tensor whose name ends with
   ".<name>" (only when exactly one does). Everything is checked from the
   headers before any work. */
static const char k_peft_prefix[] = "base_model.model.";

enum { LK_NONE = 0, LK_LORA, LK_FULL };
enum { LP_LOW = 1, LP_DENSE };

typedef struct adapter {
    const char *dir;        /* the PEFT directory, or the GGUF adapter file */
    char *cfg_path;
    acem_peft_config cfg;   /* PEFT only */
    int gguf;               /* a GGUF LoRA adapter (general.type = adapter) */
    double alpha;           /* GGUF: adapter.lora.alpha (0: scale 1)        */
    model m;                /* adapter_model.safetensors, or the GGUF file   */
    size_t n_lora, n_full;  /* modules / full weights it changes */
} adapter;

typedef struct lpart {      /* one adapter's contribution to one base tensor */
    int kind;               /* LK_*                                          */
    int trans;              /* delta = (B A)^T: fan_in_fan_out or embedding  */
    size_t r;
    float scale;
    const mtensor *A, *B;   /* LK_LORA */
    const mtensor *W;       /* LK_FULL */
} lpart;

typedef struct lmod {       /* a base tensor that at least one adapter changes */
    size_t bidx;            /* in base->tensors */
    char *module;           /* module path as the first adapter names it       */
    char *param;            /* LK_FULL: "weight", "bias", ...                  */
    int emb, trans, trans_conflict;
    size_t n_lora, n_full, rsum, rmax;
    lpart *part;            /* one per adapter */
    int path;               /* LP_LOW or LP_DENSE once planned (0: kept)       */
    /* --output-adapter results (held until the adapter is written) */
    size_t q, q_full;       /* rank written, exact rank                        */
    double energy;          /* fraction of the merged delta's energy kept      */
    float *oA, *oB;         /* PEFT orientation: lora_A (q x in), lora_B (out x q) */
    float *ofull;           /* full weight (R x C) for a dense-path tensor     */
} lmod;

static int is_adapter_dir(const char *path) {
    char *c;
    int y;
    if (!is_dir(path)) return 0;
    c = path_join(path, "adapter_config.json");
    y = exists(c);
    free(c);
    return y;
}

/* a GGUF LoRA adapter file: a GGUF file whose general.type is "adapter" */
static int is_gguf_adapter(const char *path) {
    FILE *fp;
    unsigned char m[4];
    acem_read_io io;
    acem_st_file f;
    acem_error err;
    size_t need = 0;
    void *arena = NULL;
    const char *ty;
    int y = 0;
    if (is_dir(path) || !(fp = fopen(path, "rb"))) return 0;
    /* a malformed file is not an adapter here: model_open reports it later */
    if (fread(m, 1, 4, fp) == 4 && !memcmp(m, "GGUF", 4) && acem_stdio_reader(&io, fp, path) == ACEM_OK &&
        acem_st_open_bytes(&io, &need, &err) == ACEM_OK && (arena = malloc(need ? need : 1)) != NULL &&
        acem_st_open(&f, &io, arena, need, &err) == ACEM_OK)
        y = (ty = acem_st_meta(&f, "general.type")) != NULL && !strcmp(ty, "adapter");
    free(arena);
    fclose(fp);
    return y;
}
static int is_adapter(const char *path) { return is_adapter_dir(path) || is_gguf_adapter(path); }

/* a GGUF LoRA adapter (llama.cpp's convert_lora_to_gguf.py): adapter.type
   "lora", adapter.lora.alpha, tensors <base tensor>.lora_a (dims [in, r]) and
   .lora_b ([r, out]); the delta is alpha / r * B A (scale 1 when alpha is 0) */
static void adapter_open_gguf(adapter *ad, const char *path, const model *base) {
    const acem_st_file *st;
    const char *ty, *al, *a1, *a2;
    char *end;
    memset(ad, 0, sizeof *ad);
    ad->dir = path;
    ad->cfg_path = xstrdup(path);
    ad->gguf = 1;
    model_open(&ad->m, path);
    st = &ad->m.files[0].st;
    if (!(ty = acem_st_meta(st, "adapter.type")) || strcmp(ty, "lora"))
        die(CLI_INPUT, "%s: adapter.type is '%s'; acem merges LoRA adapters (adapter.type lora)", path, ty ? ty : "(missing)");
    if ((al = acem_st_meta(st, "adapter.lora.alpha")) != NULL) {
        ad->alpha = strtod(al, &end);
        if (*end || !isfinite(ad->alpha)) die(CLI_INPUT, "%s: adapter.lora.alpha is '%s', not a number", path, al);
    }
    if (base->sharded || base->files[0].st.format != ACEM_FORMAT_GGUF)
        die(CLI_INPUT, "%s is a GGUF LoRA adapter: its tensors are named after a GGUF model's, so the base must be a GGUF "
            "file (%s is not)", path, base->path);
    a1 = acem_st_meta(st, "general.architecture");
    a2 = acem_st_meta(&base->files[0].st, "general.architecture");
    if (a1 && a2 && strcmp(a1, a2))
        die(CLI_INPUT, "%s: an adapter for architecture '%s', but the base %s is '%s'", path, a1, base->path, a2);
}

static void adapter_open(adapter *ad, const char *dir) {
    char *st_path = path_join(dir, "adapter_model.safetensors"), *json;
    size_t len = 0, ab;
    void *arena;
    acem_error err;
    memset(ad, 0, sizeof *ad);
    ad->dir = dir;
    ad->cfg_path = path_join(dir, "adapter_config.json");
    if (!exists(st_path)) {
        char *bin = path_join(dir, "adapter_model.bin");
        if (exists(bin))
            die(CLI_INPUT, "%s: holds adapter_model.bin (a pickle) but no adapter_model.safetensors; acem reads safetensors only "
                "(convert it with PEFT: save_pretrained(..., safe_serialization=True))", dir);
        die(CLI_INPUT, "%s: an adapter directory (adapter_config.json) without adapter_model.safetensors", dir);
    }
    json = read_whole(ad->cfg_path, &len);
    ab = acem_peft_config_bytes(len);
    arena = xmalloc(ab);
    memset(&err, 0, sizeof err);
    if (acem_peft_config_parse(json, len, &ad->cfg, arena, ab, ad->cfg_path, &err) != ACEM_OK)
        die(CLI_INPUT, "%s", err.message);
    if (ad->cfg.peft_type && strcmp(ad->cfg.peft_type, "LORA"))
        die(CLI_INPUT, "%s: peft_type is '%s'; acem merges LoRA adapters (peft_type LORA)", ad->cfg_path, ad->cfg.peft_type);
    if (ad->cfg.use_dora)
        die(CLI_INPUT, "%s: a DoRA adapter (use_dora: true in adapter_config.json): DoRA's magnitude vectors rescale each "
            "merged column, which is not a delta acem can merge; merge it into its base with PEFT first", dir);
    model_open(&ad->m, st_path);
    ad->m.path = dir;
}

/* the base tensor for an adapter's name (see above); NULL if none */
static const mtensor *resolve_base(const model *base, const char *name) {
    const mtensor *t = model_find(base, name), *hit = NULL;
    const char *dot;
    size_t k, n = strlen(name), hits = 0;
    if (t) return t;
    if ((dot = strchr(name, '.')) != NULL && (t = model_find(base, dot + 1)) != NULL) return t;
    for (k = 0; k < base->n; ++k) {
        const char *bn = base->tensors[k].t->name;
        size_t l = strlen(bn);
        if (l > n && bn[l - n - 1] == '.' && !strcmp(bn + l - n, name)) { hit = &base->tensors[k]; ++hits; }
    }
    return hits == 1 ? hit : NULL;
}


static lmod *lmod_get(lmod **lm_of, size_t bidx, size_t T, const char *module, const char *param) {
    lmod *lm = lm_of[bidx];
    if (!lm) {
        lm = (lmod *)xcalloc(1, sizeof(lmod));
        lm->bidx = bidx;
        lm->module = xstrdup(module);
        lm->param = xstrdup(param);
        lm->part = (lpart *)xcalloc(T, sizeof(lpart));
        lm_of[bidx] = lm;
    }
    return lm;
}

/* Reads every adapter's header and maps its keys onto the base tensors:
   lm_of[k] (k: index in base->tensors) is NULL for a tensor no adapter
   changes. Dies (exit 2) naming the adapter directory and the key on anything
   wrong. */
/* registers adapter t's LoRA pair A (r x in), B (out x r) on the base tensor bt
   (emb: an embedding LoRA, whose delta is transposed; so is a fan_in_fan_out
   one), after checking the shapes, the rank and the scale */
static void lora_pair(lmod **lm_of, const model *base, adapter *ad, size_t t, size_t T, const char *module, const char *key,
                      const char *bkey, const mtensor *mt, const mtensor *B, const mtensor *bt, int emb) {
    size_t rA, rB, in, out, R, C;
    lmod *lm;
    lpart *pp;
    double r_used = 0, sc;
    int trans;
    char s1[160], s2[160];
    if (mt->t->ndim != 2 || B->t->ndim != 2) {
        shape_str(s1, sizeof s1, mt->t);
        shape_str(s2, sizeof s2, B->t);
        die(CLI_INPUT, "%s: module '%s': lora A %s and B %s must both be 2-D (convolution LoRA is not supported)",
            ad->dir, module, s1, s2);
    }
    rA = (size_t)mt->t->shape[0]; in = (size_t)mt->t->shape[1];
    out = (size_t)B->t->shape[0]; rB = (size_t)B->t->shape[1];
    if (rA != rB || !rA) {
        shape_str(s1, sizeof s1, mt->t);
        shape_str(s2, sizeof s2, B->t);
        die(CLI_INPUT, "%s: key '%s' %s and '%s' %s: the ranks (rows of A, columns of B) %s", ad->dir, key, s1, bkey, s2,
            rA ? "differ" : "are zero");
    }
    trans = emb || ad->cfg.fan_in_fan_out;
    R = trans ? in : out;
    C = trans ? out : in;
    if (bt->t->ndim != 2 || bt->t->shape[0] != R || bt->t->shape[1] != C) {
        shape_str(s1, sizeof s1, bt->t);
        die(CLI_INPUT, "%s: key '%s': B A is %zu x %zu, so the base tensor '%s' should be %zu x %zu%s, but it is %s%s",
            ad->dir, key, out, in, bt->t->name, R, C,
            emb ? " (an embedding: transposed)" : ad->cfg.fan_in_fan_out ? " (fan_in_fan_out: transposed)" : "", s1,
            !ad->gguf && !emb && bt->t->ndim == 2 && bt->t->shape[0] == C && bt->t->shape[1] == R && R != C
                ? (ad->cfg.fan_in_fan_out ? "; the shapes fit fan_in_fan_out = false"
                                          : "; the shapes fit fan_in_fan_out = true (GPT-2 Conv1D)")
                : "");
    }
    if (!acem_dtype_is_float(bt->t->dtype))
        die(CLI_INPUT, "%s: key '%s': the base tensor '%s' is %s, not floating point", ad->dir, key, bt->t->name,
            acem_dtype_name(bt->t->dtype));
    if (ad->gguf)
        sc = ad->alpha != 0 ? ad->alpha / (double)rA : 1.0;
    else {
        sc = acem_peft_scaling(&ad->cfg, module, rA, &r_used);
        if (r_used != (double)rA)
            die(CLI_INPUT, "%s: key '%s': adapter_config.json gives module '%s' rank %g (r or rank_pattern), but its "
                "tensors have rank %zu", ad->dir, key, module, r_used, rA);
    }
    if (!isfinite(sc) || !isfinite((float)sc))
        die(CLI_INPUT, "%s: key '%s': the scaling (lora_alpha / r) is not finite", ad->dir, key);
    lm = lmod_get(lm_of, (size_t)(bt - base->tensors), T, module, "weight");
    pp = &lm->part[t];
    if (pp->kind != LK_NONE)
        die(CLI_INPUT, "%s: key '%s': the base tensor '%s' is changed twice by this adapter", ad->dir, key, bt->t->name);
    if (lm->n_lora && lm->trans != trans) lm->trans_conflict = 1;
    if (!lm->n_lora) { lm->trans = trans; lm->emb = emb; }
    pp->kind = LK_LORA;
    pp->trans = trans;
    pp->r = rA;
    pp->scale = (float)sc;
    pp->A = mt;
    pp->B = B;
    lm->n_lora++;
    lm->rsum += rA;
    if (rA > lm->rmax) lm->rmax = rA;
    ad->n_lora++;
}

/* a GGUF adapter's pairs: <base tensor>.lora_a / .lora_b, nothing else */
static void lora_map_gguf(lmod **lm_of, const model *base, adapter *ad, size_t t, size_t T) {
    const model *m = &ad->m;
    size_t j;
    for (j = 0; j < m->n; ++j) {
        const mtensor *mt = &m->tensors[j], *B, *bt;
        const char *key = mt->t->name;
        char *bname, *bkey, *module;
        size_t bl;
        if (ends_with(key, ".lora_b")) {
            char *an = xprintf("%.*s.lora_a", (int)(strlen(key) - 7), key);
            if (!model_find(m, an)) die(CLI_INPUT, "%s: tensor '%s' has no partner: '%s' is missing", ad->dir, key, an);
            free(an);
            continue;
        }
        if (!ends_with(key, ".lora_a"))
            die(CLI_INPUT, "%s: tensor '%s' is not a LoRA tensor (a GGUF adapter holds <base tensor>.lora_a and .lora_b)",
                ad->dir, key);
        if (!acem_dtype_is_float(mt->t->dtype))
            die(CLI_INPUT, "%s: tensor '%s': dtype %s cannot be read as floating point", ad->dir, key, acem_dtype_name(mt->t->dtype));
        bl = strlen(key) - 7;
        bname = xprintf("%.*s", (int)bl, key);
        bkey = xprintf("%s.lora_b", bname);
        if (!(B = model_find(m, bkey))) die(CLI_INPUT, "%s: tensor '%s' has no partner: '%s' is missing", ad->dir, key, bkey);
        if (!acem_dtype_is_float(B->t->dtype))
            die(CLI_INPUT, "%s: tensor '%s': dtype %s cannot be read as floating point", ad->dir, bkey, acem_dtype_name(B->t->dtype));
        if (!(bt = model_find(base, bname)))
            die(CLI_INPUT, "%s: tensor '%s': the base %s has no tensor '%s'", ad->dir, key, base->path, bname);
        module = ends_with(bname, ".weight") ? xprintf("%.*s", (int)(bl - 7), bname) : xstrdup(bname);
        lora_pair(lm_of, base, ad, t, T, module, key, bkey, mt, B, bt, 0);
        free(module);
        free(bname);
        free(bkey);
    }
}

static lmod **lora_map(const model *base, adapter *ads, size_t T) {
    lmod **lm_of = (lmod **)xcalloc(base->n ? base->n : 1, sizeof(lmod *));
    size_t t, j;
    const size_t pl = sizeof k_peft_prefix - 1;
    static const char *const suf[4] = {".lora_A.weight", ".lora_B.weight", ".lora_embedding_A", ".lora_embedding_B"};
    for (t = 0; t < T; ++t) {
        adapter *ad = &ads[t];
        const model *m = &ad->m;
        if (!m->n) die(CLI_INPUT, "%s: %s holds no tensors", ad->dir, ad->gguf ? "the adapter" : "adapter_model.safetensors");
        if (ad->gguf) {
            lora_map_gguf(lm_of, base, ad, t, T);
            continue;
        }
        for (j = 0; j < m->n; ++j) {
            const mtensor *mt = &m->tensors[j];
            const char *key = mt->t->name, *rest = key + pl;
            int s = -1, k;
            char s1[160], s2[160];
            if (strncmp(key, k_peft_prefix, pl))
                die(CLI_INPUT, "%s: key '%s' does not start with '%s' (not a PEFT LoRA adapter file)", ad->dir, key, k_peft_prefix);
            if (strstr(rest, "lora_magnitude_vector"))
                die(CLI_INPUT, "%s: key '%s': a DoRA adapter (lora_magnitude_vector): DoRA's magnitude vectors rescale each "
                    "merged column, which is not a delta acem can merge; merge it into its base with PEFT first", ad->dir, key);
            for (k = 0; k < 4; ++k)
                if (ends_with(rest, suf[k])) { s = k; break; }
            if (s < 0 && strstr(rest, ".lora_"))
                die(CLI_INPUT, "%s: key '%s': not a LoRA tensor acem knows (lora_A.weight, lora_B.weight, lora_embedding_A, "
                    "lora_embedding_B)", ad->dir, key);
            if (!acem_dtype_is_float(mt->t->dtype))
                die(CLI_INPUT, "%s: key '%s': dtype %s is not a floating-point type", ad->dir, key, acem_dtype_name(mt->t->dtype));
            if (s == 1 || s == 3) { /* B: its A must exist (handled there) */
                size_t ml = strlen(rest) - strlen(suf[s]);
                char *an = xprintf("%s%.*s%s", k_peft_prefix, (int)ml, rest, suf[s - 1]);
                if (!model_find(m, an)) die(CLI_INPUT, "%s: key '%s' has no partner: '%s' is missing", ad->dir, key, an);
                free(an);
                continue;
            }
            if (s == 0 || s == 2) { /* a LoRA pair */
                size_t ml = strlen(rest) - strlen(suf[s]);
                char *module = xprintf("%.*s", (int)ml, rest), *bn, *bkey = xprintf("%s%s%s", k_peft_prefix, module, suf[s + 1]);
                const mtensor *B = model_find(m, bkey), *bt;
                if (!B) die(CLI_INPUT, "%s: key '%s' has no partner: '%s' is missing", ad->dir, key, bkey);
                bn = xprintf("%s.weight", module);
                if (!(bt = resolve_base(base, bn)))
                    die(CLI_INPUT, "%s: key '%s': the base %s has no tensor '%s' for module '%s'", ad->dir, key, base->path, bn, module);
                lora_pair(lm_of, base, ad, t, T, module, key, bkey, mt, B, bt, s == 2);
                free(bn);
                free(bkey);
                free(module);
                continue;
            }
            { /* a full replacement weight (modules_to_save) */
                char *nm = xstrdup(rest), *mts = strstr(nm, ".modules_to_save."), *dot, *param, *module;
                const mtensor *bt;
                lmod *lm;
                size_t d;
                int same = 1;
                if (mts) { /* drop ".modules_to_save.<adapter name>" */
                    char *after = strchr(mts + 17, '.');
                    if (!after) die(CLI_INPUT, "%s: key '%s': malformed modules_to_save name", ad->dir, key);
                    memmove(mts, after, strlen(after) + 1);
                }
                if (!(bt = resolve_base(base, nm)))
                    die(CLI_INPUT, "%s: key '%s': the base %s has no tensor '%s' (a full weight replaces a base tensor: "
                        "modules_to_save)", ad->dir, key, base->path, nm);
                same = bt->t->ndim == mt->t->ndim;
                for (d = 0; same && d < mt->t->ndim; ++d) same = bt->t->shape[d] == mt->t->shape[d];
                if (!same) {
                    shape_str(s1, sizeof s1, mt->t);
                    shape_str(s2, sizeof s2, bt->t);
                    die(CLI_INPUT, "%s: key '%s': shape %s, but the base tensor '%s' is %s", ad->dir, key, s1, bt->t->name, s2);
                }
                if (!acem_dtype_is_float(bt->t->dtype))
                    die(CLI_INPUT, "%s: key '%s': the base tensor '%s' is %s, not floating point", ad->dir, key, bt->t->name,
                        acem_dtype_name(bt->t->dtype));
                dot = strrchr(nm, '.');
                param = dot ? dot + 1 : nm;
                module = dot ? (*dot = 0, nm) : (char *)"";
                lm = lmod_get(lm_of, (size_t)(bt - base->tensors), T, module, param);
                if (lm->part[t].kind != LK_NONE)
                    die(CLI_INPUT, "%s: key '%s': the base tensor '%s' is changed twice by this adapter", ad->dir, key, bt->t->name);
                lm->part[t].kind = LK_FULL;
                lm->part[t].W = mt;
                lm->n_full++;
                ad->n_full++;
                free(nm);
            }
        }
    }
    return lm_of;
}

/* expert t's factors in base coordinates: delta = scale * Bp (R x r) Ap (r x C),
   both in dst (r * (R + C) floats); raw (as much) is scratch for a transposed
   delta (fan_in_fan_out, embeddings). */
static void lora_factors(const lpart *pp, size_t R, size_t C, float *raw, float *dst, const float **Bp, const float **Ap) {
    size_t r = pp->r, i, j;
    float *bp = dst, *ap = dst + R * r;
    if (!pp->trans) { /* A: r x C, B: R x r */
        read_f32_counted(pp->A, ap);
        read_f32_counted(pp->B, bp);
    } else { /* A: r x R (in = R), B: C x r: Bp = A^T, Ap = B^T */
        float *a = raw, *b = raw + r * R;
        read_f32_counted(pp->A, a);
        read_f32_counted(pp->B, b);
        for (i = 0; i < r; ++i)
            for (j = 0; j < R; ++j) bp[j * r + i] = a[i * R + j];
        for (i = 0; i < C; ++i)
            for (j = 0; j < r; ++j) ap[j * C + i] = b[i * r + j];
    }
    *Bp = bp;
    *Ap = ap;
}

/* the options for a LoRA tensor's rule: the "mean" rule (not 2-D, text_projection)
   is an average of the deltas scaled by the method's lambda */
static acem_options lora_opts(const acem_options *opt, const acem_options *ro, acem_rule rule) {
    acem_options lo = *opt;
    if (rule == ACEM_RULE_MEAN) { lo.method = ACEM_AVERAGE; lo.lambda = ro->lambda; }
    return lo;
}

/* The working set of a tensor that adapters change (see lora_run for the layout). */
static void plan_lora(ptensor *p, lmod *lm, const acem_options *opt, const acem_options *ro, size_t T, int to_adapter) {
    size_t R = p->rows, C = p->cols, t, *ranks = (size_t *)calloc(T, sizeof(size_t));
    uint64_t in_bytes = p->bt->end - p->bt->begin, fac = 0;
    acem_result r;
    if (!ranks) die(CLI_RESOURCE, "out of memory");
    p->action = ACT_LORA;
    p->lm = lm;
    for (t = 0; t < T; ++t) {
        const lpart *pp = &lm->part[t];
        if (pp->kind == LK_LORA) {
            ranks[t] = pp->r;
            fac += (pp->A->t->end - pp->A->t->begin) + (pp->B->t->end - pp->B->t->begin);
        } else if (pp->kind == LK_FULL)
            fac += pp->W->t->end - pp->W->t->begin;
    }
    lm->path = (lm->n_full || (p->rule == ACEM_RULE_METHOD && !acem_lora_supported(ro->method))) ? LP_DENSE : LP_LOW;
    if (lm->path == LP_LOW) {
        acem_options lo = lora_opts(opt, ro, p->rule);
        if ((r = acem_lora_bytes(&lo, R, C, T, ranks, &p->arena)) != ACEM_OK)
            die(exit_code_of(r), "tensor '%s' (%zu x %zu, ranks summing to %zu): %s", p->bt->name, R, C, lm->rsum, acem_result_string(r));
        p->buf_a = to_adapter ? 0 : R * C * sizeof(float);                   /* the base, then the merged tensor */
        p->buf_b = lm->rsum * (R + C) * sizeof(float);                       /* every adapter's factors          */
        p->buf_c = round_up64(lm->rmax * (R + C) * sizeof(float)) + (to_adapter ? 0 : acem_gemm_work_bytes(R, C, lm->rsum));
        p->passes = 1;
        p->read_bytes = (to_adapter ? 0 : in_bytes) + fac;
    } else {
        if ((r = acem_layer_bytes(opt, p->rule, R, C, T, &p->arena)) != ACEM_OK)
            die(exit_code_of(r), "tensor '%s' (%zu x %zu): %s", p->bt->name, R, C, acem_result_string(r));
        p->buf_a = p->buf_b = R * C * sizeof(float);                         /* the base; one expert at a time   */
        p->buf_c = lm->rmax ? 2 * round_up64(lm->rmax * (R + C) * sizeof(float)) + acem_gemm_work_bytes(R, C, lm->rmax) : 0;
        p->passes = passes_for(opt, p->rule, T);
        p->read_bytes = in_bytes + (uint64_t)p->passes * fac;
    }
    free(ranks);
}

/* The work block holds one tensor's working set at a time: its arena from
   the start, its buffers buf_a, buf_b, buf_c (each rounded up to 64 bytes)
   against the end. The buffers of every tensor then fall in the block's last
   max-buffers bytes, which --threads > 1 first-touches on all lanes before
   the merge (touch_all); the arena is left to the library, whose large slots
   are first written on its workers, and whose slots a tensor does not use
   are never touched. (With the buffers right after each arena, the 2-thread
   GPT-2 bench first-touched the whole 1.2 GB plan, 280 MB of it arena slots
   that only a refined layer writes: about 0.6 s of page clearing on this
   VM.) */
static size_t bufs_bytes(const ptensor *p) { return round_up64(p->buf_a) + round_up64(p->buf_b) + round_up64(p->buf_c); }
static unsigned char *bufs_at(const ptensor *p, unsigned char *work, size_t work_max) {
    return work + work_max - bufs_bytes(p);
}

/* One tensor that adapters change: the arena at work, the buffers at bufs
   (see bufs_at).
     low-rank: buf_a the base (model output), buf_b the factors of every adapter
       in base coordinates, buf_c scratch for a transposed read + GEMM work.
       The merged delta lambda*M = B A comes from acem_lora_merge; the model gets
       base + B A (one GEMM), the adapter output the first q directions.
     dense: buf_a the base, buf_b one expert at a time:
       base (untouched), the saved weight (modules_to_save) or base + scale*B A
       expanded with acem_gemm, fed to the layer API exactly as a checkpoint
       holding it would be.
   Returns the merged tensor (f32, in the work block) for the model output, or
   NULL after keeping the adapter output in lm. */
typedef struct lora_ctx {
    const acem_options *opt, *ro;
    size_t T;
    acem_lora *ex;          /* T entries of scratch */
    const adapter *ads;
    int to_adapter;
    uint64_t rank;          /* --rank K, 0: exact */
} lora_ctx;

/* Which adapters take part in a tensor's merge: all of them (an adapter that
   does not touch the tensor adds a zero delta), except for the ACE rule, which
   merges the adapters that touch it: a zero delta has trace 0, so the gate
   opens (ln(0 + g) is far from the others) and the trace normalisation gives
   it the ridge eps / g = eps * 1e12, which the refinement's mean proxy carries
   into the merged tensor (|M| ~ 1e10 |D|). */
static int lora_takes_part(const lora_ctx *c, const ptensor *p, size_t t) {
    return p->lm->part[t].kind != LK_NONE || !(p->rule == ACEM_RULE_METHOD && c->ro->method == ACEM_ACE);
}

static float *lora_run(const lora_ctx *c, const ptensor *p, const mtensor *bm, unsigned char *work, unsigned char *bufs,
                       acem_layer_info *info) {
    lmod *lm = p->lm;
    size_t R = p->rows, C = p->cols, T = c->T, t, i, j, Tm = 0;
    float *base = (float *)(void *)bufs;
    unsigned char *bb = (unsigned char *)base + round_up64(p->buf_a), *bc = bb + round_up64(p->buf_b);
    acem_error err;
    acem_result r;
    memset(&err, 0, sizeof err);
    if (lm->path == LP_LOW) {
        float *fac = (float *)(void *)bb, *raw = (float *)(void *)bc;
        void *gw = bc + round_up64(lm->rmax * (R + C) * sizeof(float));
        acem_options lo = lora_opts(c->opt, c->ro, p->rule);
        acem_lora_out out;
        size_t off = 0, q;
        for (t = 0; t < T; ++t) {
            const lpart *pp = &lm->part[t];
            const float *Bp = NULL, *Ap = NULL;
            if (!lora_takes_part(c, p, t)) continue;
            if (pp->kind == LK_LORA) {
                lora_factors(pp, R, C, raw, fac + off, &Bp, &Ap);
                off += pp->r * (R + C);
            }
            c->ex[Tm].rank = pp->kind == LK_LORA ? pp->r : 0;
            c->ex[Tm].scale = pp->kind == LK_LORA ? pp->scale : 1.0f;
            c->ex[Tm].A = Ap;
            c->ex[Tm].B = Bp;
            ++Tm;
        }
        if ((r = acem_lora_merge(&lo, p->bt->name, R, C, Tm, c->ex, work, p->arena, &out, info, &err)) != ACEM_OK)
            die(exit_code_of(r), "%s", err.message);
        lm->q_full = out.rank;
        if (!c->to_adapter) {
            read_f32_counted(bm, base);
            if (out.rank) acem_gemm(0, 0, R, C, out.rank, 1.0f, out.B, out.rank, out.A, C, 1.0f, base, C, gw);
            lm->q = out.rank;
            lm->energy = 1.0;
            return base;
        }
        q = c->rank && c->rank < out.rank ? (size_t)c->rank : out.rank;
        {
            double tot = 0, kept = 0;
            for (j = 0; j < out.rank; ++j) {
                tot += out.sv[j] * out.sv[j];
                if (j < q) kept += out.sv[j] * out.sv[j];
            }
            lm->energy = tot > 0 ? kept / tot : 1.0;
        }
        lm->q = q;
        lm->oA = (float *)xmalloc(q * (lm->trans ? R : C) * sizeof(float) + 1);
        lm->oB = (float *)xmalloc(q * (lm->trans ? C : R) * sizeof(float) + 1);
        if (!lm->trans) { /* lora_B = B[:, :q] (R x q), lora_A = A[:q] (q x C) */
            for (i = 0; i < R; ++i)
                for (j = 0; j < q; ++j) lm->oB[i * q + j] = out.B[i * out.rank + j];
            memcpy(lm->oA, out.A, q * C * sizeof(float));
        } else { /* (B A)^T = A^T B^T: lora_B = A[:q]^T (C x q), lora_A = B[:, :q]^T (q x R) */
            for (i = 0; i < C; ++i)
                for (j = 0; j < q; ++j) lm->oB[i * q + j] = out.A[j * C + i];
            for (j = 0; j < q; ++j)
                for (i = 0; i < R; ++i) lm->oA[j * R + i] = out.B[i * out.rank + j];
        }
        return NULL;
    } else {
        float *X = (float *)(void *)bb, *raw = (float *)(void *)bc;
        float *dst = (float *)(void *)(bc + round_up64(lm->rmax * (R + C) * sizeof(float)));
        void *gw = bc + 2 * round_up64(lm->rmax * (R + C) * sizeof(float));
        acem_layer L;
        int pass;
        const float *B = base;
        read_f32_counted(bm, base);
        for (t = 0; t < T; ++t) Tm += lora_takes_part(c, p, t);
        if ((r = acem_layer_init(&L, c->opt, p->rule, p->bt->name, R, C, Tm, work, p->arena, &err)) != ACEM_OK)
            die(exit_code_of(r), "%s", err.message);
        for (pass = 0; pass < acem_layer_passes(&L); ++pass)
            for (t = 0; t < T; ++t) {
                const lpart *pp = &lm->part[t];
                if (!lora_takes_part(c, p, t)) continue;
                if (pp->kind == LK_FULL) read_f32_counted(pp->W, X);
                else {
                    memcpy(X, B, R * C * sizeof(float));
                    if (pp->kind == LK_LORA) {
                        const float *Bp, *Ap;
                        lora_factors(pp, R, C, raw, dst, &Bp, &Ap);
                        acem_gemm(0, 0, R, C, pp->r, pp->scale, Bp, pp->r, Ap, C, 1.0f, X, C, gw);
                    }
                }
                if ((r = acem_layer_feed(&L, X, B, &err)) != ACEM_OK)
                    die(exit_code_of(r), "%s (adapter %s)", err.message, c->ads[t].dir);
            }
        if ((r = acem_layer_finish(&L, B, X, info, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
        if (!c->to_adapter) return X;
        lm->ofull = (float *)xmalloc(R * C * sizeof(float) + 1);
        memcpy(lm->ofull, X, R * C * sizeof(float));
        return NULL;
    }
}

static void print_lora_plan(const adapter *ads, size_t T, lmod *const *lm_of, const model *base, const acem_options *ro,
                            size_t n_low, size_t n_dense, size_t n_dense_full, size_t n_msave, size_t n_untouched) {
    size_t t, k, shown = 0;
    note("  adapters   %zu %s LoRA adapter%s\n", T, T && ads[0].gguf ? "GGUF" : "PEFT", T == 1 ? "" : "s");
    for (t = 0; t < T; ++t) {
        const acem_peft_config *c = &ads[t].cfg;
        if (ads[t].gguf) {
            note("    %s: r from the shapes, adapter.lora.alpha %g (scale %s): %zu LoRA module%s\n", ads[t].dir, ads[t].alpha,
                 ads[t].alpha != 0 ? "alpha / r" : "1", ads[t].n_lora, ads[t].n_lora == 1 ? "" : "s");
            continue;
        }
        note("    %s: r ", ads[t].dir);
        if (c->r > 0) note("%g", c->r);
        else note("from the shapes");
        note(", lora_alpha %g%s", c->lora_alpha, c->use_rslora ? " (rsLoRA: scale alpha/sqrt(r))" : "");
        if (c->n_rank_pattern || c->n_alpha_pattern)
            note(", %zu rank_pattern + %zu alpha_pattern entries", c->n_rank_pattern, c->n_alpha_pattern);
        if (c->fan_in_fan_out) note(", fan_in_fan_out");
        note(": %zu LoRA module%s", ads[t].n_lora, ads[t].n_lora == 1 ? "" : "s");
        if (ads[t].n_full) note(", %zu full weight%s (modules_to_save)", ads[t].n_full, ads[t].n_full == 1 ? "" : "s");
        note("\n");
    }
    if (n_low)
        note("  low-rank   %zu tensor%s merged exactly in low-rank form (%s in the adapters' factor coordinates; no dense delta)\n",
             n_low, n_low == 1 ? "" : "s", acem_method_name(ro->method));
    else
        note("  low-rank   0 tensors\n");
    if (ro->method == ACEM_ACE)
        note("  ace        each tensor is merged over the adapters that change it (an untouched tensor's zero delta would\n"
             "             open the gate and get the ridge eps / 1e-12 from the trace normalisation)\n");
    note("  dense path %zu tensor%s", n_dense, n_dense == 1 ? "" : "s");
    if (n_dense_full) note(": %zu with modules_to_save weights (merged as dense deltas saved - base)", n_dense_full);
    if (n_dense > n_dense_full)
        note("%s%zu LoRA module%s: %s has no exact low-rank form (dense R x C deltas, one adapter at a time)",
             n_dense_full ? "; " : ": ", n_dense - n_dense_full, n_dense - n_dense_full == 1 ? "" : "s", acem_method_name(ro->method));
    note("\n");
    if (n_msave) {
        note("  modules_to_save %zu:", n_msave);
        for (k = 0; k < base->n; ++k)
            if (lm_of[k] && lm_of[k]->n_full && (g_verbose || shown < 6)) {
                note("%s %s", shown ? "," : "", base->tensors[k].t->name);
                ++shown;
            }
        if (shown < n_msave) note(", ... (%zu more)", n_msave - shown);
        note("\n");
    }
    (void)n_untouched;
}

/* --output-adapter: writes DIR/adapter_model.safetensors and DIR/adapter_config.json
   (a fresh directory is built under a temporary name and renamed when complete;
   into an existing one, each file goes to a temporary name first). Returns the
   number of bytes written. */
/* the merged GGUF LoRA adapter (llama.cpp's layout): <base tensor>.lora_a (q x
   in) and .lora_b (out x q) per module, general.architecture as the base's,
   no adapter.lora.alpha (scale 1 for every rank); a temporary file renamed
   when complete. Returns its size. */
static uint64_t write_adapter_gguf(const merge_args *a, const ptensor *plan, size_t np, const model *base, const char *const *meta,
                                   size_t n_meta) {
    size_t i, n = 0, nt = 0, k;
    acem_st_tensor *ts;
    const float **data;
    const char **kv = (const char **)xcalloc(2 * (n_meta + 3), sizeof(char *));
    const char *arch = acem_st_meta(&base->files[0].st, "general.architecture");
    acem_dtype fdt = a->out_dtype != ACEM_DT_UNKNOWN ? a->out_dtype : ACEM_DT_F32;
    char *tmp;
    FILE *fp;
    acem_write_io wio;
    acem_error err;
    acem_result r;
    struct stat st;
    for (i = 0; i < np; ++i) n += plan[i].action == ACT_LORA && plan[i].lm->path == LP_LOW && plan[i].lm->q ? 2 : 0;
    ts = (acem_st_tensor *)xcalloc(n ? n : 1, sizeof(acem_st_tensor));
    data = (const float **)xcalloc(n ? n : 1, sizeof(float *));
    for (i = 0; i < np; ++i) {
        const ptensor *p = &plan[i];
        const lmod *lm = p->lm;
        if (p->action != ACT_LORA || lm->path != LP_LOW || !lm->q) continue;
        ts[nt].name = xprintf("%s.lora_a", p->bt->name);
        ts[nt].dtype = fdt; ts[nt].ndim = 2; ts[nt].shape[0] = lm->q; ts[nt].shape[1] = p->cols;
        data[nt++] = lm->oA;
        ts[nt].name = xprintf("%s.lora_b", p->bt->name);
        ts[nt].dtype = fdt; ts[nt].ndim = 2; ts[nt].shape[0] = p->rows; ts[nt].shape[1] = lm->q;
        data[nt++] = lm->oB;
    }
    n = 0;
    if (arch) { kv[2 * n] = "general.architecture"; kv[2 * n + 1] = arch; ++n; }
    kv[2 * n] = "general.type"; kv[2 * n + 1] = "adapter"; ++n;
    kv[2 * n] = "adapter.type"; kv[2 * n + 1] = "lora"; ++n;
    for (k = 0; k < n_meta; ++k, ++n) { kv[2 * n] = meta[2 * k]; kv[2 * n + 1] = meta[2 * k + 1]; }
    tmp = temp_path(a->out_adapter);
    temp_slots(1);
    fp = create_temp(tmp);
    acem_stdio_writer(&wio, fp, a->out_adapter);
    memset(&err, 0, sizeof err);
    if ((r = acem_gguf_write_header(&wio, NULL, ts, nt, kv, n, 0, NULL, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
    for (i = 0; i < nt; ++i)
        if ((r = acem_st_write_f32(&wio, &ts[i], data[i], &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
    finish_file(fp, tmp);
    if (stat(tmp, &st) != 0) die(CLI_IO, "%s: %s", tmp, strerror(errno));
    commit_file(tmp, a->out_adapter);
    return (uint64_t)st.st_size;
}

static uint64_t write_adapter(const merge_args *a, const ptensor *plan, size_t np, const char *const *meta, size_t n_meta,
                              int fifo) {
    size_t i, n = 0, nt = 0, rmax = 0, k;
    acem_st_tensor *ts;
    const float **data;
    size_t *order;
    acem_dtype fdt = a->out_dtype != ACEM_DT_UNKNOWN ? a->out_dtype : ACEM_DT_F32;
    outdir od;
    char *names[2], *wp[2];
    FILE *fp;
    acem_write_io wio;
    acem_error err;
    acem_result r;
    sbuf j;
    const char **msave;
    size_t n_msave = 0;
    struct stat st;
    uint64_t bytes = 0;
    for (i = 0; i < np; ++i) {
        const lmod *lm = plan[i].lm;
        if (plan[i].action != ACT_LORA) continue;
        if (lm->path == LP_LOW && lm->q) { n += 2; if (lm->q > rmax) rmax = lm->q; }
        else if (lm->path == LP_DENSE) n += 1;
    }
    ts = (acem_st_tensor *)xcalloc(n ? n : 1, sizeof(acem_st_tensor));
    data = (const float **)xcalloc(n ? n : 1, sizeof(float *));
    order = (size_t *)xcalloc(n ? n : 1, sizeof(size_t));
    msave = (const char **)xcalloc(n ? n : 1, sizeof(char *));
    for (i = 0; i < np; ++i) {
        const ptensor *p = &plan[i];
        const lmod *lm = p->lm;
        if (p->action != ACT_LORA) continue;
        if (lm->path == LP_LOW && lm->q) {
            size_t in = lm->trans ? p->rows : p->cols, out = lm->trans ? p->cols : p->rows;
            ts[nt].name = xprintf("%s%s.%s", k_peft_prefix, lm->module, lm->emb ? "lora_embedding_A" : "lora_A.weight");
            ts[nt].dtype = fdt; ts[nt].ndim = 2; ts[nt].shape[0] = lm->q; ts[nt].shape[1] = in;
            data[nt++] = lm->oA;
            ts[nt].name = xprintf("%s%s.%s", k_peft_prefix, lm->module, lm->emb ? "lora_embedding_B" : "lora_B.weight");
            ts[nt].dtype = fdt; ts[nt].ndim = 2; ts[nt].shape[0] = out; ts[nt].shape[1] = lm->q;
            data[nt++] = lm->oB;
        } else if (lm->path == LP_DENSE) {
            const char *mod = lm->module[0] ? lm->module : lm->param;
            ts[nt].name = lm->module[0] ? xprintf("%s%s.%s", k_peft_prefix, lm->module, lm->param) : xprintf("%s%s", k_peft_prefix, lm->param);
            ts[nt].dtype = a->out_dtype != ACEM_DT_UNKNOWN ? a->out_dtype : p->bt->dtype;
            if (ts[nt].dtype == ACEM_DT_F8_E4M3 || ts[nt].dtype == ACEM_DT_F8_E5M2) ts[nt].dtype = ACEM_DT_F16;
            ts[nt].ndim = p->bt->ndim;
            memcpy(ts[nt].shape, p->bt->shape, sizeof ts[nt].shape);
            data[nt++] = lm->ofull;
            for (k = 0; k < n_msave && strcmp(msave[k], mod); ++k) {}
            if (k == n_msave) msave[n_msave++] = mod;
        }
    }
    outdir_begin(&od, a->out_adapter, 2);
    names[0] = xstrdup("adapter_model.safetensors");
    names[1] = xstrdup("adapter_config.json");
    wp[0] = outdir_write_path(&od, names[0]);
    wp[1] = outdir_write_path(&od, names[1]);
    memset(&err, 0, sizeof err);
    fp = create_temp(wp[0]);
    acem_stdio_writer(&wio, fp, wp[0]);
    if ((r = acem_st_write_header(&wio, ts, nt, meta, n_meta, order, NULL, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
    for (i = 0; i < nt; ++i)
        if ((r = acem_st_write_f32(&wio, &ts[order[i]], data[order[i]], &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
    finish_file(fp, wp[0]);
    /* the config: scale 1 everywhere (lora_alpha = r, per-module ranks in the patterns) */
    memset(&j, 0, sizeof j);
    if (!rmax) rmax = 1;
    sb_puts(&j, "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": null,\n  \"base_model_name_or_path\": null,\n");
    sb_puts(&j, xprintf("  \"r\": %zu,\n  \"lora_alpha\": %zu,\n", rmax, rmax));
    sb_puts(&j, "  \"use_rslora\": false,\n  \"use_dora\": false,\n");
    sb_puts(&j, fifo ? "  \"fan_in_fan_out\": true,\n" : "  \"fan_in_fan_out\": false,\n");
    sb_puts(&j, "  \"lora_dropout\": 0.0,\n  \"bias\": \"none\",\n  \"init_lora_weights\": true,\n  \"inference_mode\": true,\n");
    for (k = 0; k < 3; ++k) { /* target_modules, rank_pattern, alpha_pattern */
        size_t c = 0;
        sb_puts(&j, k == 0 ? "  \"target_modules\": [" : k == 1 ? "  \"rank_pattern\": {" : "  \"alpha_pattern\": {");
        for (i = 0; i < np; ++i) {
            const lmod *lm = plan[i].lm;
            if (plan[i].action != ACT_LORA || lm->path != LP_LOW || !lm->q || (k && lm->q == rmax)) continue;
            sb_puts(&j, c++ ? ",\n    " : "\n    ");
            if (!k) sb_json_str(&j, lm->module);
            else { /* the exact module: dots escaped (the keys are regular expressions) */
                sbuf e;
                const char *s;
                memset(&e, 0, sizeof e);
                for (s = lm->module; *s; ++s) sb_putn(&e, *s == '.' ? "\\." : s, *s == '.' ? 2 : 1);
                sb_json_str(&j, e.p ? e.p : "");
                sb_puts(&j, xprintf(": %zu", lm->q));
            }
        }
        sb_puts(&j, c ? (k ? "\n  },\n" : "\n  ],\n") : (k ? "},\n" : "],\n"));
    }
    if (!n_msave) sb_puts(&j, "  \"modules_to_save\": null\n}\n");
    else {
        sb_puts(&j, "  \"modules_to_save\": [");
        for (k = 0; k < n_msave; ++k) { sb_puts(&j, k ? ", " : ""); sb_json_str(&j, msave[k]); }
        sb_puts(&j, "]\n}\n");
    }
    fp = create_temp(wp[1]);
    if (fwrite(j.p, 1, j.n, fp) != j.n) die(CLI_IO, "%s: write error: %s", wp[1], strerror(errno));
    finish_file(fp, wp[1]);
    for (k = 0; k < 2; ++k)
        if (stat(wp[k], &st) == 0) bytes += (uint64_t)st.st_size;
    outdir_commit(&od, wp, names, 2);
    return bytes;
}

/* prints up to `show` names of a list, then a count */
static void print_names(const char *label, const char *const *names, size_t n, size_t show) {
    size_t k;
    note("  %-10s %zu", label, n);
    if (!n) { note("\n"); return; }
    note(": ");
    for (k = 0; k < n && (g_verbose || k < show); ++k) note("%s%s", k ? ", " : "", names[k]);
    if (k < n) note(", ... (%zu more)", n - k);
    note("\n");
}

/* GGUF: tensors in the base file's order */
static const model *g_sort_model;
static int cmp_by_offset(const void *x, const void *y) { /* (part, offset): a split model's parts in order */
    const mtensor *p = &g_sort_model->tensors[*(const size_t *)x], *q = &g_sort_model->tensors[*(const size_t *)y];
    size_t fa = (size_t)(p->file - g_sort_model->files), fb = (size_t)(q->file - g_sort_model->files);
    if (fa != fb) return fa < fb ? -1 : 1;
    return p->t->begin < q->t->begin ? -1 : p->t->begin > q->t->begin;
}
/* GGUF output dtype of a float tensor: --out-dtype for tensors of 2+ dims
   (q8_0 where the last dim is whole blocks); otherwise the base's, except that
   merged block-quantized tensors become F16 (as llama.cpp's export-lora does) */
static acem_dtype gguf_out_dtype(acem_dtype want, const acem_st_tensor *bt, acem_rule rule) {
    if (want != ACEM_DT_UNKNOWN && bt->ndim >= 2 && (want < ACEM_DT_GGUF_FIRST || bt->shape[bt->ndim - 1] % 32 == 0)) return want;
    if (rule == ACEM_RULE_KEEP || bt->dtype < ACEM_DT_GGUF_FIRST) return bt->dtype;
    return ACEM_DT_F16;
}
/* The order the merge takes an output file's tensors in (po: o->n indices
   into o->order): the file's, except that the largest merged tensor goes
   first, so that its write runs while the rest are merged. Last (the
   safetensors order is by name), GPT-2's wte (150 MB) was written, and the
   file synced, after all the compute: 0.3-0.5 s of a 16 s 2-thread merge
   with both lanes idle. */
static void merge_order(const outfile *o, const ptensor *plan, size_t *po) {
    size_t i, k = 0, big = 0;
    uint64_t most = 0;
    for (i = 0; i < o->n; ++i) {
        const acem_st_tensor *t = &o->t[o->order[i]];
        if (plan[o->pidx[o->order[i]]].action == ACT_MERGE && t->end - t->begin > most) {
            most = t->end - t->begin;
            big = i;
        }
    }
    if (o->n) po[k++] = big;
    for (i = 0; i < o->n; ++i)
        if (i != big) po[k++] = i;
}
/* an output header: safetensors, or GGUF with src's key/value pairs in the
   given order (order[] then is the identity) */
static acem_result write_out_header(const acem_write_io *io, outfile *o, const acem_st_file *gguf_src, const char *const *meta,
                                    size_t n_meta, uint64_t *header_bytes, acem_error *err) {
    size_t i;
    if (!gguf_src) return acem_st_write_header(io, o->t, o->n, meta, n_meta, o->order, header_bytes, err);
    for (i = 0; i < o->n; ++i) o->order[i] = i;
    return acem_gguf_write_header(io, gguf_src, o->t, o->n, meta, n_meta, 0, header_bytes, err);
}

static int cmd_merge(int argc, char **argv) {
    merge_args a;
    acem_options ro;    /* resolved */
    acem_error err;
    acem_result r;
    model *ms;          /* ms[0] is the base, then the experts */
    model *base;
    size_t T, nm, k, i, np = 0, n_out = 0;
    ptensor *plan;
    outfile *outs;
    unsigned *shard_of = NULL;
    size_t work_max = 0, work_arg = 0, wb_max = 0, wb2 = 0; /* wb_max: the write-behind buffer */
    size_t bufs_max = 0;                            /* the largest buffer set (bufs_at) */
    uint64_t out_total = 0, out_data = 0, read_total = 0;
    const char **meta;
    size_t n_meta = 0;
    char hb[64], hb2[64], num[64];
    cli_pool pool;
    double t_start = now_s();
    size_t counts[4] = {0, 0, 0, 0}, n_keep = 0, n_copy = 0, n_f8 = 0;
    const char **keep_names, **copy_names;
    size_t planned;
    int has_ace = 0, gguf = 0;
    size_t *ord, n_deq = 0;  /* ord: base tensors in plan order (GGUF: file order) */
    const acem_st_file *gguf_src = NULL;
    /* LoRA adapters as experts */
    int lora = 0, fifo_out = 0;
    adapter *ads = NULL;
    lmod **lm_of = NULL;
    size_t n_ad = 0, n_untouched = 0, n_low = 0, n_dense = 0, n_dense_full = 0, n_msave = 0;
    uint64_t hold = 0; /* --output-adapter: results held until the adapter is written */

    parse_merge_args(&a, argc, argv);
    memset(&err, 0, sizeof err);
    if ((r = acem_options_resolve(&a.opt, &ro, &err)) != ACEM_OK) die(exit_code_of(r), "merge: %s", err.message);
    if (a.threads > 1) {
        pool_start(&pool, a.threads);
        a.opt.parallel_for = pool_parallel_for;
        a.opt.parallel_user = &pool;
        a.opt.n_workers = a.threads;
    }

    /* 1. open every input (headers only) and check them */
    T = a.n_experts;
    nm = T + 1;
    for (k = 0; k < T; ++k) n_ad += is_adapter(a.experts[k]) != 0;
    if (n_ad && n_ad < T) {
        size_t x = 0, y = 0;
        while (!is_adapter(a.experts[x])) ++x;
        while (is_adapter(a.experts[y])) ++y;
        die(CLI_INPUT, "%s is a LoRA adapter (%s) but %s is not: the experts must be all checkpoints or all adapters",
            a.experts[x], is_adapter_dir(a.experts[x]) ? "adapter_config.json" : "GGUF, general.type adapter", a.experts[y]);
    }
    lora = n_ad == T;
    if (a.out_adapter && !lora) die(CLI_USAGE, "merge: --output-adapter needs LoRA adapters as experts (directories with adapter_config.json)");
    ms = (model *)xcalloc(nm, sizeof(model));
    model_open(&ms[0], a.base);
    base = &ms[0];
    gguf = !base->sharded && base->files[0].st.format == ACEM_FORMAT_GGUF;
    if (gguf) {
        gguf_src = &base->files[0].st;
        if (a.shard_size) die(CLI_USAGE, "--out-shard-size: a GGUF output is one file (the base %s is GGUF)", a.base);
        if (a.shard_n) die(CLI_USAGE, "--shard: not available with a GGUF base (acem join writes safetensors)");
    } else if (a.out_dtype >= ACEM_DT_GGUF_FIRST)
        die(CLI_USAGE, "--out-dtype %s: only for GGUF output (the base %s is safetensors)", acem_dtype_name(a.out_dtype), a.base);
    if (a.out && !a.out_adapter) {
        int named = ends_with(a.out, ".gguf") || ends_with(a.out, ".GGUF");
        if (gguf && !named) die(CLI_USAGE, "the base %s is GGUF, so the output is GGUF: name it *.gguf (not %s)", a.base, a.out);
        if (!gguf && named)
            die(CLI_USAGE, "%s: a GGUF output needs a GGUF base (its key/value pairs describe the model to llama.cpp); the base %s "
                "is safetensors", a.out, a.base);
    }
    if (lora) {
        ads = (adapter *)xcalloc(T, sizeof(adapter));
        for (k = 0; k < T; ++k) {
            if (!is_adapter_dir(a.experts[k])) {
                adapter_open_gguf(&ads[k], a.experts[k], base);
            } else {
                if (gguf) die(CLI_INPUT, "%s is a PEFT adapter: its keys name a safetensors model's tensors, but the base %s is "
                              "GGUF", a.experts[k], a.base);
                adapter_open(&ads[k], a.experts[k]);
            }
            ms[1 + k] = ads[k].m;
        }
        lm_of = lora_map(base, ads, T);
    } else {
        for (k = 0; k < T; ++k) {
            model_open(&ms[1 + k], a.experts[k]);
        }
        for (k = 0; k < T; ++k) validate_expert(base, &ms[1 + k]);
    }
    if (a.out) check_output_path(&a, ms, nm);
    if (a.out_adapter) {
        char *parent = dir_name(a.out_adapter);
        int named = ends_with(a.out_adapter, ".gguf") || ends_with(a.out_adapter, ".GGUF");
        if (!is_dir(parent)) die(CLI_IO, "%s: cannot write: directory %s does not exist", a.out_adapter, parent);
        if (gguf && !named)
            die(CLI_USAGE, "--output-adapter %s: the adapters are GGUF, so is the merged one: name it *.gguf", a.out_adapter);
        if (!gguf && named)
            die(CLI_USAGE, "--output-adapter %s: PEFT adapters give a PEFT adapter directory, not a .gguf file", a.out_adapter);
        if (gguf && is_dir(a.out_adapter)) die(CLI_USAGE, "%s is a directory; the merged GGUF adapter is a file", a.out_adapter);
        if (gguf && a.out_dtype >= ACEM_DT_GGUF_FIRST)
            die(CLI_USAGE, "--out-dtype %s: a GGUF adapter's factors are written as f32, f16 or bf16", acem_dtype_name(a.out_dtype));
        if (!gguf && exists(a.out_adapter) && !is_dir(a.out_adapter)) die(CLI_USAGE, "%s exists and is not a directory", a.out_adapter);
        for (k = 0; k < T; ++k)
            if (same_file(a.out_adapter, ads[k].dir))
                die(CLI_USAGE, "the output %s is the input adapter %s; choose another output", a.out_adapter, ads[k].dir);
        for (k = 0; k < base->n_files; ++k) {
            char *d = dir_name(base->files[k].path);
            if (same_file(a.out_adapter, d)) die(CLI_USAGE, "the output %s is the base's directory; choose another output", a.out_adapter);
            free(d);
        }
        free(parent);
    }

    /* 2. the plan */
    if (a.shard_n) shard_of = shard_assign(base, a.shard_n);
    plan = (ptensor *)xcalloc(base->n ? base->n : 1, sizeof(ptensor));
    keep_names = (const char **)xcalloc(base->n ? base->n : 1, sizeof(char *));
    copy_names = (const char **)xcalloc(base->n ? base->n : 1, sizeof(char *));
    ord = (size_t *)xcalloc(base->n ? base->n : 1, sizeof(size_t));
    for (k = 0; k < base->n; ++k) ord[k] = k;
    if (gguf) { g_sort_model = base; qsort(ord, base->n, sizeof(size_t), cmp_by_offset); }
    for (i = 0; i < base->n; ++i) {
        const acem_st_tensor *bt;
        ptensor *p;
        uint64_t in_bytes, need;
        k = ord[i];
        bt = base->tensors[k].t;
        in_bytes = bt->end - bt->begin;
        if (shard_of && shard_of[k] != a.shard_i) continue;
        p = &plan[np++];
        p->idx = k;
        p->bt = bt;
        if (bt->numel > (uint64_t)((size_t)-1 / 8)) die(CLI_RESOURCE, "tensor '%s' is too large for this machine", bt->name);
        if (bt->dtype >= ACEM_DT_GGUF_FIRST && !acem_dtype_is_float(bt->dtype) &&
            acem_tensor_rule(&a.opt, bt->name, bt->ndim) != ACEM_RULE_KEEP)
            die(CLI_INPUT, "%s: tensor '%s' is %s, which acem cannot dequantize (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                "Q5_0, Q5_1, Q2_K to Q6_K, IQ4_NL, IQ4_XS, TQ2_0, MXFP4); convert the model to one of them first, or "
                "--exclude the tensor",
                base->files[0].path, bt->name, acem_dtype_name(bt->dtype));
        if (bt->dtype >= ACEM_DT_GGUF_FIRST && !acem_dtype_is_float(bt->dtype)) {
            /* an excluded block type acem cannot dequantize (any other stopped above): kept verbatim */
            p->action = ACT_KEEP_RAW;
            p->rule = ACEM_RULE_KEEP;
            p->out_dtype = bt->dtype;
            p->buf_a = (size_t)in_bytes;
            p->read_bytes = in_bytes;
            keep_names[n_keep++] = bt->name;
        } else if (!acem_dtype_is_float(bt->dtype)) {
            p->action = ACT_COPY;
            p->out_dtype = bt->dtype;
            p->buf_a = (size_t)in_bytes;
            p->read_bytes = in_bytes;
            copy_names[n_copy++] = bt->name;
        } else {
            p->rule = acem_tensor_rule(&a.opt, bt->name, bt->ndim);
            if (gguf) {
                p->out_dtype = gguf_out_dtype(a.out_dtype, bt, p->rule);
                n_deq += bt->dtype >= ACEM_DT_GGUF_FIRST && p->out_dtype != bt->dtype;
            } else
                p->out_dtype = a.out_dtype != ACEM_DT_UNKNOWN ? a.out_dtype : bt->dtype;
            if (p->out_dtype == ACEM_DT_F8_E4M3 || p->out_dtype == ACEM_DT_F8_E5M2) { p->out_dtype = ACEM_DT_F16; ++n_f8; }
            if (bt->ndim == 2) { p->rows = (size_t)bt->shape[0]; p->cols = (size_t)bt->shape[1]; }
            else { p->rows = (size_t)bt->numel; p->cols = 1; }
            if (p->rule == ACEM_RULE_KEEP || (lora && !lm_of[k])) {
                if (p->rule == ACEM_RULE_KEEP) keep_names[n_keep++] = bt->name;
                else { ++n_untouched; p->rule = ACEM_RULE_KEEP; }
                p->read_bytes = in_bytes;
                if (p->out_dtype == bt->dtype) { p->action = ACT_KEEP_RAW; p->buf_a = (size_t)in_bytes; }
                else { p->action = ACT_KEEP_CONVERT; p->buf_a = (size_t)bt->numel * sizeof(float); }
                if (a.out_adapter) { p->read_bytes = 0; p->buf_a = 0; }
            } else if (lora) {
                lmod *lm = lm_of[k];
                plan_lora(p, lm, &a.opt, &ro, T, a.out_adapter != NULL);
                if (lm->path == LP_LOW) ++n_low;
                else {
                    ++n_dense;
                    if (lm->n_full) ++n_dense_full;
                    if (lm->n_lora && a.out_adapter)
                        die(CLI_USAGE, "--output-adapter: %s has no exact low-rank form (its merged delta of '%s' is not a product "
                            "of the adapters' factors); write the merged model with -o, or use ace, average, task-arithmetic "
                            "or actmat", acem_method_name(ro.method), bt->name);
                }
                if (lm->n_full) ++n_msave;
                if (a.out_adapter) {
                    size_t K = lm->rsum;
                    if (a.rank && a.rank < K) K = (size_t)a.rank;
                    hold += lm->path == LP_LOW ? (uint64_t)K * (p->rows + p->cols) * sizeof(float) : bt->numel * sizeof(float);
                    if (lm->path == LP_LOW && !lm->emb) {
                        if (lm->trans_conflict || (fifo_out && (fifo_out - 1) != lm->trans))
                            die(CLI_INPUT, "--output-adapter: the adapters disagree on fan_in_fan_out (module '%s' and others); "
                                "adapter_config.json holds one flag", lm->module);
                        fifo_out = 1 + lm->trans;
                    }
                }
                if (p->rule == ACEM_RULE_METHOD && ro.method == ACEM_ACE) has_ace = 1;
            } else {
                p->action = ACT_MERGE;
                if ((r = acem_layer_bytes(&a.opt, p->rule, p->rows, p->cols, T, &p->arena)) != ACEM_OK)
                    die(exit_code_of(r), "tensor '%s' (%zu x %zu): %s", bt->name, p->rows, p->cols, acem_result_string(r));
                p->buf_a = p->buf_b = (size_t)bt->numel * sizeof(float);
                if (a.threads > 1 && p->rule != ACEM_RULE_KEEP) { /* read-ahead, write-behind */
                    p->buf_c = p->buf_b;
                    if (p->buf_b > wb_max) { wb2 = wb_max; wb_max = p->buf_b; }
                    else if (p->buf_b > wb2) wb2 = p->buf_b;
                }
                p->passes = passes_for(&a.opt, p->rule, T);
                p->read_bytes = in_bytes + (uint64_t)p->passes * T * in_bytes;
                if (p->rule == ACEM_RULE_METHOD && a.opt.method == ACEM_ACE) has_ace = 1;
            }
        }
        counts[p->action == ACT_COPY ? 3 : p->rule]++;
        need = (uint64_t)round_up64(p->arena) + round_up64(p->buf_a) + round_up64(p->buf_b) + round_up64(p->buf_c);
        if (need > (uint64_t)((size_t)-1 / 2)) die(CLI_RESOURCE, "tensor '%s' is too large for this machine", bt->name);
        if ((size_t)need > work_max) { work_max = (size_t)need; work_arg = np - 1; }
        if (bufs_bytes(p) > bufs_max) bufs_max = bufs_bytes(p);
        if (!acem_dtype_bytes(p->out_dtype, bt->numel, &p->out_bytes, NULL))
            die(CLI_INPUT, "tensor '%s': %llu values do not fit %s", bt->name, (unsigned long long)bt->numel,
                acem_dtype_name(p->out_dtype));
        read_total += p->read_bytes;
        out_data += p->out_bytes;
    }

    /* output files: one, or shards of at most shard_size bytes (in name order) */
    if (a.shard_size) {
        uint64_t cur = 0;
        for (i = 0; i < np; ++i) {
            if (i == 0 || (cur && cur + plan[i].out_bytes > a.shard_size)) { ++n_out; cur = 0; }
            cur += plan[i].out_bytes;
            plan[i].out_file = n_out - 1;
        }
        if (!n_out) n_out = 1;
    } else
        n_out = 1;
    outs = (outfile *)xcalloc(n_out, sizeof(outfile));
    for (i = 0; i < np; ++i) outs[plan[i].out_file].n++;
    for (k = 0; k < n_out; ++k) {
        outs[k].pidx = (size_t *)xcalloc(outs[k].n ? outs[k].n : 1, sizeof(size_t));
        outs[k].t = (acem_st_tensor *)xcalloc(outs[k].n ? outs[k].n : 1, sizeof(acem_st_tensor));
        outs[k].order = (size_t *)xcalloc(outs[k].n ? outs[k].n : 1, sizeof(size_t));
        outs[k].n = 0;
    }
    for (i = 0; i < np; ++i) {
        outfile *o = &outs[plan[i].out_file];
        acem_st_tensor *t = &o->t[o->n];
        o->pidx[o->n++] = i;
        t->name = plan[i].bt->name;
        t->dtype = plan[i].out_dtype;
        t->ndim = plan[i].bt->ndim;
        memcpy(t->shape, plan[i].bt->shape, sizeof t->shape);
    }

    /* provenance metadata */
    {
        sbuf ex, e;
        char b[PATH_MAX];
        meta = (const char **)xcalloc(40, sizeof(char *));
#define META(K, V) do { meta[2 * n_meta] = (K); meta[2 * n_meta + 1] = (V); ++n_meta; } while (0)
        META("acem.version", ACEM_VERSION_STRING);
        META("acem.method", acem_method_name(ro.method));
        fmt_double(num, sizeof num, ro.lambda); META("acem.lambda", xstrdup(num));
        if (ro.method == ACEM_ACE) {
            fmt_double(num, sizeof num, ro.eps); META("acem.eps", xstrdup(num));
            fmt_double(num, sizeof num, ro.tau); META("acem.tau", xstrdup(num));
            fmt_double(num, sizeof num, ro.k_frac); META("acem.k_frac", xstrdup(num));
        }
        if (ro.method == ACEM_TIES || ro.method == ACEM_DARE_TIES) {
            fmt_double(num, sizeof num, ro.density); META("acem.density", xstrdup(num));
        }
        if (ro.method == ACEM_DARE_TA || ro.method == ACEM_DARE_TIES) {
            fmt_double(num, sizeof num, ro.drop); META("acem.drop", xstrdup(num));
            META("acem.seed", xprintf("%llu", (unsigned long long)ro.seed));
        }
        if (a.preset) META("acem.preset", a.preset);
        if (a.n_excl) {
            memset(&ex, 0, sizeof ex);
            sb_puts(&ex, "[");
            for (k = 0; k < a.n_excl; ++k) { if (k) sb_puts(&ex, ","); sb_json_str(&ex, a.excl[k]); }
            sb_puts(&ex, "]");
            META("acem.exclude", ex.p);
        }
        if (a.out_dtype != ACEM_DT_UNKNOWN) META("acem.out_dtype", acem_dtype_name(a.out_dtype));
        META("acem.base", xstrdup(base_name(a.base, b, sizeof b)));
        memset(&e, 0, sizeof e);
        sb_puts(&e, "[");
        for (k = 0; k < T; ++k) { if (k) sb_puts(&e, ","); sb_json_str(&e, base_name(a.experts[k], b, sizeof b)); }
        sb_puts(&e, "]");
        META("acem.experts", e.p);
        if (gguf) { /* one file out: a split base's split.* pairs are dropped (value NULL) */
            META("split.no", NULL);
            META("split.count", NULL);
            META("split.tensors.count", NULL);
        }
        if (a.shard_n) {
            META("acem.shard", xprintf("%u/%u", a.shard_i, a.shard_n));
            META("acem.shard.tensors_total", xprintf("%zu", base->n));
        }
#undef META
    }

    /* exact output sizes: lay each header out through a counting writer */
    for (k = 0; k < n_out; ++k) {
        acem_write_io cio;
        uint64_t count = 0;
        cio.user = &count;
        cio.write = counting_write;
        cio.path = a.out ? a.out : "(output)";
        if ((r = write_out_header(&cio, &outs[k], gguf_src, meta, n_meta, &outs[k].header_bytes, &err)) != ACEM_OK)
            die(exit_code_of(r), "%s", err.message);
        outs[k].size = outs[k].header_bytes;
        for (i = 0; i < outs[k].n; ++i) outs[k].size += outs[k].t[i].end - outs[k].t[i].begin + outs[k].t[i].pad;
        out_total += outs[k].size;
    }
    /* output names */
    if (a.out) {
        char b[PATH_MAX];
        if (a.shard_size) {
            for (k = 0; k < n_out; ++k) {
                outs[k].name = xprintf("model-%05zu-of-%05zu.safetensors", k + 1, n_out);
                outs[k].final_path = path_join(a.out, outs[k].name);
            }
        } else {
            outs[0].final_path = xstrdup(a.out);
            outs[0].name = xstrdup(base_name(a.out, b, sizeof b));
            outs[0].write_path = temp_path(a.out);
        }
    }

    /* the write-behind ring: the largest merged tensor, which the merge takes
       first (merge_order), and room beside it for the next while it is
       written: the second largest, at most a quarter of the largest (two
       embedding-sized tensors would double the ring; a tensor that does not
       fit waits for that write, as it did at the end before) */
    if (wb_max) wb_max = round_up64(wb_max) + round_up64(wb2 < wb_max / 4 ? wb2 : wb_max / 4);
    planned = g_held + work_max + wb_max + (size_t)hold;

    /* print the plan */
    if (!g_quiet) {
        const char *mname = acem_method_name(ro.method);
        note("acem %s: merge plan\n", ACEM_VERSION_STRING);
        note("  method     %s", mname);
        if (ro.method == ACEM_ACE) {
            note(" (eps %g, tau %g, k_frac %g, lambda %g)", ro.eps, ro.tau, ro.k_frac, ro.lambda);
        } else if (ro.method == ACEM_TIES) note(" (density %g, lambda %g)", ro.density, ro.lambda);
        else if (ro.method == ACEM_DARE_TA) note(" (drop %g, seed %llu, lambda %g)", ro.drop, (unsigned long long)ro.seed, ro.lambda);
        else if (ro.method == ACEM_DARE_TIES)
            note(" (drop %g, density %g, seed %llu, lambda %g)", ro.drop, ro.density, (unsigned long long)ro.seed, ro.lambda);
        else note(" (lambda %g)", ro.lambda);
        if (a.preset) note(", preset %s", a.preset);
        note("\n");
        note("  base       %s (%zu file%s, %zu tensors, %s)\n", a.base, base->n_files, base->n_files == 1 ? "" : "s", base->n,
             human(hb, sizeof hb, base->data_bytes));
        if (!lora) {
            note("  experts    %zu:", T);
            for (k = 0; k < T; ++k) note(" %s", a.experts[k]);
            note("\n");
        } else
            print_lora_plan(ads, T, lm_of, base, &ro, n_low, n_dense, n_dense_full, n_msave, n_untouched);
        if (a.shard_n) {
            uint64_t sb = 0;
            for (i = 0; i < np; ++i) sb += plan[i].bt->end - plan[i].bt->begin;
            note("  shard      %u/%u: %zu of %zu tensors, %s of %s\n", a.shard_i, a.shard_n, np, base->n, human(hb, sizeof hb, sb),
                 human(hb2, sizeof hb2, base->data_bytes));
        }
        if (!lora)
            note("  tensors    %zu: %zu %s, %zu mean of deltas, %zu keep base (excluded), %zu copied (not float)\n", np,
                 counts[ACEM_RULE_METHOD], mname, counts[ACEM_RULE_MEAN], counts[ACEM_RULE_KEEP], counts[3]);
        else
            note("  tensors    %zu: %zu changed by the adapters (%zu %s, %zu mean of deltas), %zu keep base (excluded), "
                 "%zu untouched by every adapter (base copied), %zu copied (not float)\n", np, n_low + n_dense,
                 counts[ACEM_RULE_METHOD], mname, counts[ACEM_RULE_MEAN], n_keep, n_untouched, counts[3]);
        if (a.n_excl) {
            note("  exclude   ");
            for (k = 0; k < a.n_excl; ++k) note(" '%s'", a.excl[k]);
            note("\n");
        }
        print_names("excluded", keep_names, n_keep, 6);
        if (n_copy) {
            note("  copied     %zu (dtype not computed with, copied from the base verbatim): ", n_copy);
            for (k = 0; k < n_copy && (g_verbose || k < 6); ++k) {
                const mtensor *mt = model_find(base, copy_names[k]);
                note("%s%s (%s)", k ? ", " : "", copy_names[k], acem_dtype_name(mt->t->dtype));
            }
            if (k < n_copy) note(", ... (%zu more)", n_copy - k);
            note("\n");
        }
        if (n_f8) note("  note       %zu F8 tensor%s will be written as F16 (acem writes F32, F16, BF16, F64)\n", n_f8, n_f8 == 1 ? "" : "s");
        if (n_deq)
            note("  note       %zu block-quantized tensor%s will be written as %s (merged values are not requantized%s)\n", n_deq,
                 n_deq == 1 ? "" : "s", a.out_dtype != ACEM_DT_UNKNOWN ? acem_dtype_name(a.out_dtype) : "F16",
                 a.out_dtype >= ACEM_DT_GGUF_FIRST ? " but quantized again" : "; --out-dtype q8_0 stores Q8_0");
        if (a.out_adapter)
            note("  output     %s%s, factors %s, %s; "
                 "results held until written: at most %s\n", a.out_adapter,
                 gguf ? ": a GGUF LoRA adapter" : "/: a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)",
                 a.out_dtype != ACEM_DT_UNKNOWN ? acem_dtype_name(a.out_dtype) : "F32",
                 a.rank ? xprintf("truncated to rank %llu", (unsigned long long)a.rank) : "exact (rank <= sum of the ranks)",
                 human(hb, sizeof hb, hold));
        else
        note("  output     %s: %zu file%s, %s, %s (%llu bytes)\n", a.out ? a.out : "(none: --dry-run)", n_out, n_out == 1 ? "" : "s",
             a.out_dtype != ACEM_DT_UNKNOWN ? acem_dtype_name(a.out_dtype) : "dtypes as the base", human(hb, sizeof hb, out_total),
             (unsigned long long)out_total);
        if (np) {
            const ptensor *p = &plan[work_arg];
            char sh[160];
            shape_str(sh, sizeof sh, p->bt);
            note("  memory     peak %s (%zu bytes) = %s headers and tables + %s for '%s' %s", human(hb, sizeof hb, planned), planned,
                 human(hb2, sizeof hb2, g_held), human(num, sizeof num, work_max), p->bt->name, sh);
            if (p->action == ACT_MERGE) {
                char h3[64];
                note(" (arena %s + %d f32 buffers of %s)", human(hb, sizeof hb, p->arena), p->buf_c ? 3 : 2,
                     human(h3, sizeof h3, p->buf_a));
                if (wb_max) note(" + write-behind buffer %s", human(h3, sizeof h3, wb_max));
            } else if (p->action == ACT_LORA) {
                char h3[64], h4[64], h5[64];
                if (p->lm->path == LP_LOW)
                    note(" (low-rank: arena %s, base %s, factors %s, scratch %s)", human(hb, sizeof hb, p->arena),
                         human(h3, sizeof h3, p->buf_a), human(h4, sizeof h4, p->buf_b), human(h5, sizeof h5, p->buf_c));
                else
                    note(" (dense: arena %s + 2 f32 buffers of %s + factor scratch %s)", human(hb, sizeof hb, p->arena),
                         human(h3, sizeof h3, p->buf_a), human(h4, sizeof h4, p->buf_c));
            }
            note("\n");
        } else
            note("  memory     peak %s (%zu bytes)\n", human(hb, sizeof hb, planned), planned);
        if (lora)
            note("  reads      %s from the inputs (adapters read %s)\n", human(hb, sizeof hb, read_total),
                 has_ace && T > 1 && n_dense ? "twice for the dense-path ACE tensors" : "once");
        else
        note("  reads      %s from the inputs (experts read %s)\n", human(hb, sizeof hb, read_total),
             has_ace && T > 1 ? "twice for the ACE tensors" : "once");
        if (a.threads > 1) note("  threads    %zu\n", a.threads);
        if (g_verbose)
            for (i = 0; i < np; ++i) {
                const ptensor *p = &plan[i];
                char sh[160];
                shape_str(sh, sizeof sh, p->bt);
                if (p->action == ACT_LORA) {
                    size_t t;
                    note("    %-40s %-5s %-16s -> %-5s %-16s %s, ranks", p->bt->name, acem_dtype_name(p->bt->dtype), sh,
                         acem_dtype_name(p->out_dtype), p->rule == ACEM_RULE_METHOD ? mname : acem_rule_name(p->rule),
                         p->lm->path == LP_LOW ? "low-rank" : "dense path");
                    for (t = 0; t < T; ++t)
                        note("%s%s", t ? "/" : " ", p->lm->part[t].kind == LK_FULL ? "full" : xprintf("%zu", p->lm->part[t].r));
                    note(", arena %zu\n", p->arena);
                } else
                note("    %-40s %-5s %-16s -> %-5s %-16s arena %zu\n", p->bt->name, acem_dtype_name(p->bt->dtype), sh,
                     acem_dtype_name(p->out_dtype),
                     p->action == ACT_COPY ? "copy" : p->rule == ACEM_RULE_METHOD ? mname : acem_rule_name(p->rule), p->arena);
            }
    }
    if (a.mem_limit && planned > a.mem_limit)
        die(CLI_RESOURCE, "the plan needs %zu bytes at its peak, more than --memory-limit %llu", planned,
            (unsigned long long)a.mem_limit);
    if (a.dry) {
        note("dry run: nothing written\n");
        return CLI_OK;
    }

    /* 3. the merge */
    {
        unsigned char *work = (unsigned char *)alloc_work(work_max);
        outdir od;
        size_t done_t = 0, n_gated = 0, n_refined = 0, n_ace = 0, n_fallback = 0;
        const char **fallback = (const char **)xcalloc(np ? np : 1, sizeof(char *));
        size_t *po = (size_t *)xcalloc(np ? np : 1, sizeof(size_t)); /* merge_order */
        double wall;
        struct rusage ru;
        lora_ctx lc;
        size_t q_lo = (size_t)-1, q_hi = 0;
        iothread ra;
        wqueue wq;
        float *wbuf = NULL;
        if (!work) die(CLI_RESOURCE, "cannot allocate the %zu-byte work buffer", work_max);
        memset(&ra, 0, sizeof ra);
        memset(&wq, 0, sizeof wq);
        if (a.threads > 1) {
            io_start(&ra);
            /* huge pages like the work block: with 4 KiB pages its first touch was
               37,600 faults on the GPT-2 bench (this VM: 6.4 s per fresh 1.2 GB with
               4 KiB pages, 1.6 s with 2 MiB ones) */
            if (wb_max && !(wbuf = (float *)alloc_work(wb_max)))
                die(CLI_RESOURCE, "cannot allocate the %zu-byte write-behind buffer", wb_max);
            touch_all(&pool, work + work_max - bufs_max, bufs_max);
            touch_all(&pool, wbuf, wb_max);
            if (wbuf) wq_start(&wq, wbuf, wb_max);
        }
        catch_signals();
        lc.opt = &a.opt;
        lc.ro = &ro;
        lc.T = T;
        lc.ex = (acem_lora *)xcalloc(T, sizeof(acem_lora));
        lc.ads = ads;
        lc.to_adapter = a.out_adapter != NULL;
        lc.rank = a.rank;
        if (a.out_adapter) { /* compute every module, then write the adapter */
            uint64_t bytes;
            size_t n_mod = 0, n_full = 0, qmin = (size_t)-1, qmax = 0, n_e = 0, worst[3] = {0, 0, 0}, nw = 0;
            double emin = 2, emax = -1, esum = 0;
            const lmod *emin_lm = NULL;
            g_prog.tty = isatty(2);
            g_prog.t0 = now_s();
            g_prog.total = read_total;
            g_prog.n = n_low + n_dense;
            for (i = 0; i < np; ++i) {
                ptensor *p = &plan[i];
                acem_layer_info info;
                double t0 = now_s();
                if (p->action != ACT_LORA) continue;
                memset(&info, 0, sizeof info);
                g_prog.i = ++done_t;
                g_prog.name = p->bt->name;
                progress_draw(1);
                lora_run(&lc, p, &base->tensors[p->idx], work, bufs_at(p, work, work_max), &info);
                count_layer(&info, p->rule, p->bt->name, &n_ace, &n_gated, &n_refined, fallback, &n_fallback);
                if (p->lm->path == LP_LOW) {
                    const lmod *lm = p->lm;
                    ++n_mod;
                    if (lm->q < qmin) qmin = lm->q;
                    if (lm->q > qmax) qmax = lm->q;
                    ++n_e;
                    esum += lm->energy;
                    if (lm->energy < emin) { emin = lm->energy; emin_lm = lm; }
                    if (lm->energy > emax) emax = lm->energy;
                } else
                    ++n_full;
                if (!g_quiet && (!g_prog.tty || g_verbose)) {
                    end_line();
                    note("[%zu/%zu] %s: ", done_t, n_low + n_dense, p->bt->name);
                    if (p->lm->path == LP_LOW)
                        note("low-rank %s, rank %zu of %zu (sum of ranks %zu), energy kept %.6f", p->rule == ACEM_RULE_METHOD ?
                             acem_method_name(ro.method) : "mean", p->lm->q, p->lm->q_full, p->lm->rsum, p->lm->energy);
                    else
                        note("dense path %s, full weight (modules_to_save)", p->rule == ACEM_RULE_METHOD ? acem_method_name(ro.method) : acem_rule_name(p->rule));
                    if (info.gated || info.refined) note(" (%s, gamma %.3g)", info.refined ? "gated, refined" : "gated", info.gamma);
                    note(", %.2f s\n", now_s() - t0);
                }
            }
            g_prog.name = "done";
            progress_draw(1);
            end_line();
            bytes = gguf ? write_adapter_gguf(&a, plan, np, base, meta, n_meta) : write_adapter(&a, plan, np, meta, n_meta, fifo_out == 2);
            if (a.threads > 1) pool_stop(&pool);
            wall = now_s() - t_start;
            getrusage(RUSAGE_SELF, &ru);
            if (!g_quiet) {
                note("acem: merged %zu adapters into the adapter %s%s in %.2f s (%s read)\n", T, a.out_adapter, gguf ? "" : "/", wall,
                     human(hb, sizeof hb, g_prog.done));
                note("  modules    %zu LoRA module%s (rank %zu..%zu, %s), %zu full weight%s (modules_to_save)\n", n_mod,
                     n_mod == 1 ? "" : "s", n_mod ? qmin : 0, qmax, gguf ? "no adapter.lora.alpha: scale 1" : "lora_alpha = r", n_full,
                     n_full == 1 ? "" : "s");
                if (n_e) {
                    note("  energy     fraction of each module's merged delta kept%s: min %.6f (%s), mean %.6f, max %.6f\n",
                         a.rank ? xprintf(" at --rank %llu", (unsigned long long)a.rank) : " (exact)", emin,
                         emin_lm ? emin_lm->module : "", esum / (double)n_e, emax);
                    if (a.rank) { /* the three lowest */
                        for (nw = 0; nw < 3 && nw < n_e; ++nw) {
                            size_t best = (size_t)-1, x;
                            for (x = 0; x < np; ++x) {
                                const lmod *lm = plan[x].lm;
                                size_t y;
                                int used = 0;
                                if (plan[x].action != ACT_LORA || lm->path != LP_LOW) continue;
                                for (y = 0; y < nw; ++y) used |= worst[y] == x;
                                if (!used && (best == (size_t)-1 || lm->energy < plan[best].lm->energy)) best = x;
                            }
                            if (best == (size_t)-1) break;
                            worst[nw] = best;
                        }
                        note("  lowest    ");
                        for (i = 0; i < nw; ++i) note(" %s %.6f (rank %zu of %zu)%s", plan[worst[i]].lm->module, plan[worst[i]].lm->energy,
                                                      plan[worst[i]].lm->q, plan[worst[i]].lm->q_full, i + 1 < nw ? "," : "");
                        note("\n");
                    }
                }
                if (ro.method == ACEM_ACE) note("  ace        %zu layers: %zu gated, %zu refined\n", n_ace, n_gated, n_refined);
                note("  memory     peak planned %s (%zu bytes), measured max RSS %s\n", human(hb, sizeof hb, planned), planned,
                     human(hb2, sizeof hb2, (uint64_t)ru.ru_maxrss * 1024u));
                if (gguf) note("  output     %s (a GGUF LoRA adapter, %s)\n", a.out_adapter, human(hb, sizeof hb, bytes));
                else note("  output     %s/ (adapter_model.safetensors + adapter_config.json, %s)\n", a.out_adapter, human(hb, sizeof hb, bytes));
            }
            io_stop(&ra);
            wq_stop(&wq);
            free(wbuf);
            free(work);
            return CLI_OK;
        }
        if (a.shard_size) {
            outdir_begin(&od, a.out, n_out + 1);
            for (k = 0; k < n_out; ++k) outs[k].write_path = outdir_write_path(&od, outs[k].name);
        } else
            temp_slots(1);
        g_prog.tty = isatty(2);
        g_prog.t0 = now_s();
        g_prog.total = read_total;
        g_prog.n = np;
        for (k = 0; k < n_out; ++k) {
            outfile *o = &outs[k];
            FILE *fp = create_temp(o->write_path);
            acem_write_io wio;
            acem_stdio_writer(&wio, fp, o->final_path);
            if ((r = write_out_header(&wio, o, gguf_src, meta, n_meta, NULL, &err)) != ACEM_OK)
                die(exit_code_of(r), "%s", err.message);
            merge_order(o, plan, po);
            for (i = 0; i < o->n; ++i) {
                const acem_st_tensor *ot = &o->t[o->order[po[i]]];
                ptensor *p = &plan[o->pidx[o->order[po[i]]]];
                const mtensor *bm = &base->tensors[p->idx];
                unsigned char *buf_a = bufs_at(p, work, work_max), *buf_b = buf_a + round_up64(p->buf_a);
                uint64_t pos = o->header_bytes + ot->begin;
                acem_layer_info info;
                double t0 = now_s();
                memset(&info, 0, sizeof info);
                g_prog.i = ++done_t;
                g_prog.name = ot->name;
                progress_draw(1);
                if (p->action != ACT_MERGE || !wq.started) { /* this thread writes it (never with the writer's) */
                    wq_drain(&wq);
                    if (out_seek(fp, pos) != 0) die(CLI_IO, "%s: write error: %s", o->final_path, strerror(errno));
                }
                if (p->action == ACT_COPY || p->action == ACT_KEEP_RAW) {
                    read_raw_counted(bm, buf_a);
                    if ((r = acem_st_write_raw(&wio, ot, buf_a, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
                } else if (p->action == ACT_KEEP_CONVERT) {
                    read_f32_counted(bm, (float *)(void *)buf_a);
                    if ((r = acem_st_write_f32(&wio, ot, (const float *)(void *)buf_a, &err)) != ACEM_OK)
                        die(exit_code_of(r), "%s", err.message);
                } else if (p->action == ACT_LORA) {
                    float *res = lora_run(&lc, p, bm, work, buf_a, &info);
                    if ((r = acem_st_write_f32(&wio, ot, res, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
                    count_layer(&info, p->rule, ot->name, &n_ace, &n_gated, &n_refined, fallback, &n_fallback);
                    if (p->lm->path == LP_LOW) {
                        if (p->lm->q < q_lo) q_lo = p->lm->q;
                        if (p->lm->q > q_hi) q_hi = p->lm->q;
                    }
                } else {
                    acem_layer L;
                    float *X = (float *)(void *)buf_b, *Xn = X;
                    const float *B;
                    int pass, npass;
                    size_t k2, nfeed, ra_for = (size_t)-1;
                    B = (float *)(void *)buf_a;
                    io_read_now(&ra, bm, (float *)(void *)buf_a);
                    if ((r = acem_layer_init(&L, &a.opt, p->rule, ot->name, p->rows, p->cols, T, work, p->arena, &err)) != ACEM_OK)
                        die(exit_code_of(r), "%s", err.message);
                    npass = acem_layer_passes(&L);
                    nfeed = (size_t)npass * T;
                    if (p->buf_c) Xn = (float *)(void *)(buf_b + round_up64(p->buf_b));
                    /* expert k2 (pass k2 / T, expert k2 % T): read into buffer k2 % 2; with
                       read-ahead, the read of k2 + 1 runs while k2 is merged. (Not mapped:
                       fed from 4 KiB page-cache pages, ACE's first passes over each expert
                       took 11% of a 1-thread GPT-2 merge on Zen 5, against 4% with the copy
                       into the huge-page buffers: TLB walks, prefetchers stopping at every
                       page.) */
                    for (k2 = 0; k2 < nfeed; ++k2) {
                        const mtensor *em = &ms[1 + k2 % T].tensors[p->idx];
                        const float *cur = NULL;
                        float *nb = k2 % 2 ? Xn : X;
                        pass = (int)(k2 / T);
                        if (ra_for == k2) { /* posted while k2 - 1 was merged */
                            io_wait(&ra);
                            cur = nb;
                        }
                        if (p->buf_c && k2 + 1 < nfeed) {
                            io_post_read(&ra, &ms[1 + (k2 + 1) % T].tensors[p->idx], k2 % 2 ? X : Xn);
                            ra_for = k2 + 1;
                        }
                        if (!cur) {
                            read_f32_counted(em, nb);
                            cur = nb;
                        }
                        r = acem_layer_feed(&L, cur, B, &err);
                        if (r != ACEM_OK)
                            die(exit_code_of(r), "%s (expert %s, pass %d)", err.message, em->file->path, pass + 1);
                    }
                    if (wq.started) X = wq_room(&wq, p->buf_b);
                    if ((r = acem_layer_finish(&L, B, X, &info, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
                    if (wq.started) wq_post(&wq, &wio, fp, ot, X, p->buf_b, pos);
                    else if ((r = acem_st_write_f32(&wio, ot, X, &err)) != ACEM_OK) die(exit_code_of(r), "%s", err.message);
                    count_layer(&info, p->rule, ot->name, &n_ace, &n_gated, &n_refined, fallback, &n_fallback);
                }
                if (!g_quiet && (!g_prog.tty || g_verbose)) {
                    char sh[160];
                    double el = now_s() - g_prog.t0;
                    shape_str(sh, sizeof sh, p->bt);
                    end_line();
                    note("[%*zu/%zu] %5.1f%% %s %s %s -> %s, %s", (int)(np >= 10000 ? 5 : np >= 1000 ? 4 : np >= 100 ? 3 : np >= 10 ? 2 : 1),
                         done_t, np, g_prog.total ? 100.0 * (double)g_prog.done / (double)g_prog.total : 100.0, ot->name,
                         acem_dtype_name(p->bt->dtype), sh, acem_dtype_name(ot->dtype),
                         p->action == ACT_COPY ? "copy" : p->rule == ACEM_RULE_METHOD ? acem_method_name(ro.method) : acem_rule_name(p->rule));
                    if (p->action == ACT_LORA) {
                        if (p->lm->path == LP_LOW) note(" [low-rank, merged rank %zu]", p->lm->q);
                        else note(" [dense path]");
                    }
                    if ((p->action == ACT_MERGE || p->action == ACT_LORA) && p->rule == ACEM_RULE_METHOD && ro.method == ACEM_ACE)
                    {
                        if (info.refined) note(" (gated, refined: k %zu, %zu directions, gamma %.3g)", info.k, info.directions, info.gamma);
                        else note(" (%s, gamma %.3g)", info.gated ? "gated, not refined" : "not gated", info.gamma);
                    }
                    if (info.fallback) note(" [fallback]");
                    note(", %.2f s, %.1f MB/s\n", now_s() - t0, el > 0 ? (double)g_prog.done / el / 1e6 : 0.0);
                }
            }
            wq_drain(&wq);
            finish_file(fp, o->write_path);
        }
        g_prog.name = "done";
        progress_draw(1);
        end_line();
        if (a.shard_size) {
            index_entry *ie = (index_entry *)xcalloc(np ? np : 1, sizeof(index_entry));
            char *idx_name = xstrdup("model.safetensors.index.json"), *idx_path = outdir_write_path(&od, idx_name);
            char **wp = (char **)xcalloc(n_out + 1, sizeof(char *)), **nmv = (char **)xcalloc(n_out + 1, sizeof(char *));
            for (k = 0, i = 0; k < n_out; ++k) {
                size_t j;
                for (j = 0; j < outs[k].n; ++j, ++i) { ie[i].name = outs[k].t[j].name; ie[i].file = outs[k].name; }
                wp[k] = outs[k].write_path;
                nmv[k] = outs[k].name;
            }
            write_index(idx_path, ie, np, out_data);
            wp[n_out] = idx_path;
            nmv[n_out] = idx_name;
            outdir_commit(&od, wp, nmv, n_out + 1);
        } else
            commit_file(outs[0].write_path, a.out);
        if (a.threads > 1) pool_stop(&pool);
        wall = now_s() - t_start;
        getrusage(RUSAGE_SELF, &ru);
        if (!g_quiet) {
            double mt = now_s() - g_prog.t0;
            note("acem: merged %zu tensors into %s in %.2f s (merging %.2f s, %s read at %.1f MB/s)\n", np, a.out, wall, mt,
                 human(hb, sizeof hb, g_prog.done), mt > 0 ? (double)g_prog.done / mt / 1e6 : 0.0);
            note("  rules      %zu %s, %zu mean, %zu keep, %zu copy\n", counts[ACEM_RULE_METHOD], acem_method_name(ro.method),
                 counts[ACEM_RULE_MEAN], counts[ACEM_RULE_KEEP], counts[3]);
            if (lora)
                note("  lora       %zu tensor%s low-rank (merged ranks %zu..%zu), %zu dense path, %zu untouched (base copied)\n",
                     n_low, n_low == 1 ? "" : "s", n_low ? q_lo : 0, q_hi, n_dense, n_untouched);
            if (ro.method == ACEM_ACE) note("  ace        %zu layers: %zu gated, %zu refined\n", n_ace, n_gated, n_refined);
            note("  fallbacks  %zu", n_fallback);
            for (k = 0; k < n_fallback; ++k) note("%s%s", k ? ", " : ": ", fallback[k]);
            note("%s\n", n_fallback ? " (Cholesky / Sherman-Morrison fell back to LU)" : "");
            note("  memory     peak planned %s (%zu bytes), measured max RSS %s\n", human(hb, sizeof hb, planned), planned,
                 human(hb2, sizeof hb2, (uint64_t)ru.ru_maxrss * 1024u));
            note("  output     %s (%zu file%s, %s)\n", a.out, n_out, n_out == 1 ? "" : "s", human(hb, sizeof hb, out_total));
        }
        io_stop(&ra);
        wq_stop(&wq);
        free(wbuf);
        free(work);
    }
    return CLI_OK;
}

/* ---- inspect ------------------------------------------------------------------- */
/* a value on one line: control characters escaped, at most max bytes shown */
static void print_text(const char *v, size_t max) {
    size_t n = strlen(v), k;
    for (k = 0; k < n && k < max; ++k) {
        unsigned char c = (unsigned char)v[k];
        if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    if (k < n) printf("... (%zu bytes)", n);
}

static int cmd_inspect(int argc, char **argv) {
    model m;
    size_t k, w = 4, dcount[ACEM_DT_GGUF_END];
    uint64_t dbytes[ACEM_DT_GGUF_END];
    char b[PATH_MAX], hb[64];
    const char *path = NULL;
    for (k = 0; k < (size_t)argc; ++k) {
        if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
            printf("Usage: acem inspect FILE|DIR\n\nLists the tensors (name, dtype, shape, bytes), the dtype counts, the\n"
                   "total size and the metadata of a .safetensors file, a checkpoint directory or a\n"
                   "GGUF file (its key/value pairs in file order; shapes row-major, ggml's dims\n"
                   "reversed).\n\n%s", k_exit_codes);
            return CLI_OK;
        }
        if (path) die(CLI_USAGE, "inspect: one FILE or DIR at a time");
        path = argv[k];
    }
    if (!path) die(CLI_USAGE, "inspect: FILE or DIR expected");
    model_open(&m, path);
    memset(dcount, 0, sizeof dcount);
    memset(dbytes, 0, sizeof dbytes);
    printf("%s: %s, %zu file%s, %zu tensors, %llu bytes of tensor data (%s)\n", path,
           m.sharded ? "sharded safetensors checkpoint"
           : m.files[0].st.format == ACEM_FORMAT_GGUF ? xprintf("GGUF version %u, alignment %u", m.files[0].st.gguf_version,
                                                                 m.files[0].st.alignment)
                                                       : "safetensors",
           m.n_files, m.n_files == 1 ? "" : "s", m.n,
           (unsigned long long)m.data_bytes, human(hb, sizeof hb, m.data_bytes));
    for (k = 0; k < m.n_files; ++k) {
        const st_in *f = &m.files[k];
        size_t j;
        printf("file %s: %zu tensors, header %llu bytes%s, file %llu bytes\n", f->path, f->st.n_tensors,
               (unsigned long long)f->st.data_start, f->st.format == ACEM_FORMAT_GGUF ? " (with its padding)" : " (with its 8-byte length)",
               (unsigned long long)f->st.io.size);
        if (f->st.format == ACEM_FORMAT_GGUF) {
            printf("  key/value pairs (%zu):\n", f->st.n_kv);
            for (j = 0; j < f->st.n_kv; ++j) {
                printf("    %s: ", f->st.kv[j].key);
                print_text(f->st.kv[j].value, 100);
                printf("\n");
            }
        } else {
            printf("  metadata (%zu):\n", f->st.n_meta);
            for (j = 0; j < f->st.n_meta; ++j) printf("    %s: %s\n", f->st.meta[2 * j], f->st.meta[2 * j + 1]);
        }
    }
    for (k = 0; k < m.n; ++k) {
        size_t l = strlen(m.tensors[k].t->name);
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    printf("tensors:\n  %-*s  %-6s %-20s %14s%s\n", (int)w, "name", "dtype", "shape", "bytes", m.sharded ? "  file" : "");
    for (k = 0; k < m.n; ++k) {
        const acem_st_tensor *t = m.tensors[k].t;
        char sh[256];
        shape_str(sh, sizeof sh, t);
        printf("  %-*s  %-6s %-20s %14llu", (int)w, t->name, acem_dtype_name(t->dtype), sh, (unsigned long long)(t->end - t->begin));
        if (m.sharded) printf("  %s", base_name(m.tensors[k].file->path, b, sizeof b));
        printf("\n");
        dcount[t->dtype]++;
        dbytes[t->dtype] += t->end - t->begin;
    }
    printf("dtypes:");
    for (k = 1; k < ACEM_DT_GGUF_END; ++k)
        if (dcount[k]) printf(" %s %zu (%llu bytes)", acem_dtype_name((acem_dtype)k), dcount[k], (unsigned long long)dbytes[k]);
    printf("\ntotal: %zu tensors, %llu bytes (%s)\n", m.n, (unsigned long long)m.data_bytes, human(hb, sizeof hb, m.data_bytes));
    return CLI_OK;
}

/* ---- join ------------------------------------------------------------------------- */
typedef struct join_in { st_in f; unsigned i, n; } join_in;
static int cmp_join_in(const void *a, const void *b) {
    unsigned x = ((const join_in *)a)->i, y = ((const join_in *)b)->i;
    return x < y ? -1 : x > y;
}

static int cmd_join(int argc, char **argv) {
    const char *out = NULL;
    const char **paths = (const char **)xcalloc((size_t)argc + 1, sizeof(char *));
    size_t np = 0, k, j, total_tensors = 0;
    join_in *in;
    argv_iter it;
    model all;
    outdir od;
    uint64_t total = 0;
    char **wp, **names;
    index_entry *ie;
    unsigned N = 0;
    const char *tensors_total = NULL;
    int only_files = 0;
    it.argc = argc; it.argv = argv; it.cmd = "join";
    for (it.i = 0; it.i < argc; ++it.i) {
        const char *s = argv[it.i], *eq = NULL;
        if (only_files || s[0] != '-' || !s[1]) { paths[np++] = s; continue; }
        if (!strcmp(s, "--")) { only_files = 1; continue; }
        if (!strcmp(s, "-h") || opt_is(s, "--help", &eq)) {
            printf("Usage: acem join -o OUTDIR SHARD_OUTPUT...\n\n"
                   "Joins the N outputs of `acem merge --shard I/N` (I = 1..N, each exactly once;\n"
                   "checked from their acem.shard metadata, with disjoint tensors and the same\n"
                   "merge parameters) into one sharded checkpoint: OUTDIR/model-0000I-of-0000N.safetensors\n"
                   "plus OUTDIR/model.safetensors.index.json.\n\n%s", k_exit_codes);
            return CLI_OK;
        }
        if (!strcmp(s, "-q") || opt_is(s, "--quiet", &eq)) { g_quiet = 1; continue; }
        if (!strcmp(s, "-o") || opt_is(s, "--output", &eq) || opt_is(s, "--out", &eq)) {
            out = opt_value(&it, "-o", !strcmp(s, "-o") ? NULL : eq);
            continue;
        }
        die(CLI_USAGE, "join: unknown option '%s'", s);
    }
    if (!out) die(CLI_USAGE, "join: -o OUTDIR is required");
    if (!np) die(CLI_USAGE, "join: no shard outputs given");
    in = (join_in *)xcalloc(np, sizeof(join_in));
    for (k = 0; k < np; ++k) {
        const char *s;
        unsigned long i, n = 0;
        char *e1, *e2;
        st_in_open(&in[k].f, paths[k]);
        if (in[k].f.st.format != ACEM_FORMAT_SAFETENSORS)
            die(CLI_INPUT, "%s: a GGUF file; acem join takes the .safetensors outputs of `acem merge --shard I/N`", paths[k]);
        if (!(s = acem_st_meta(&in[k].f.st, "acem.shard")))
            die(CLI_INPUT, "%s: no acem.shard metadata (not an output of `acem merge --shard I/N`)", paths[k]);
        i = strtoul(s, &e1, 10);
        if (*e1 != '/' || (n = strtoul(e1 + 1, &e2, 10), *e2) || i < 1 || n < 1 || i > n || n > 99999)
            die(CLI_INPUT, "%s: acem.shard is '%s', not I/N", paths[k], s);
        in[k].i = (unsigned)i;
        in[k].n = (unsigned)n;
        if (k && in[k].n != in[0].n)
            die(CLI_INPUT, "%s is shard %u/%u but %s is shard %u/%u: not the same split", paths[k], in[k].i, in[k].n, paths[0],
                in[0].i, in[0].n);
        total_tensors += in[k].f.st.n_tensors;
    }
    N = in[0].n;
    qsort(in, np, sizeof(join_in), cmp_join_in);
    for (k = 1; k < np; ++k)
        if (in[k].i == in[k - 1].i) die(CLI_INPUT, "%s and %s are both shard %u/%u", in[k - 1].f.path, in[k].f.path, in[k].i, N);
    if (np != N) {
        unsigned want = 1;
        for (k = 0; k < np && in[k].i == want; ++k) ++want;
        die(CLI_INPUT, "shard %u/%u is missing (%zu of %u shard outputs given)", want, N, np, N);
    }
    /* the same merge: every acem.* key except acem.shard identical */
    for (k = 1; k < np; ++k) {
        const acem_st_file *a = &in[0].f.st, *b = &in[k].f.st;
        for (j = 0; j < a->n_meta + b->n_meta; ++j) {
            const acem_st_file *x = j < a->n_meta ? a : b, *y = j < a->n_meta ? b : a;
            const char *key = x->meta[2 * (j < a->n_meta ? j : j - a->n_meta)], *vx, *vy;
            if (strncmp(key, "acem.", 5) || !strcmp(key, "acem.shard")) continue;
            vx = acem_st_meta(x, key);
            vy = acem_st_meta(y, key);
            if (!vy || strcmp(vx, vy))
                die(CLI_INPUT, "%s and %s come from different merges (%s: '%s' vs '%s')", in[0].f.path, in[k].f.path, key,
                    acem_st_meta(a, key) ? acem_st_meta(a, key) : "(none)", acem_st_meta(b, key) ? acem_st_meta(b, key) : "(none)");
        }
    }
    /* disjoint and complete */
    memset(&all, 0, sizeof all);
    all.path = "the shard outputs";
    all.n_files = np;
    all.files = (st_in *)xcalloc(np, sizeof(st_in));
    for (k = 0; k < np; ++k) all.files[k] = in[k].f;
    model_build_table(&all);
    if ((tensors_total = acem_st_meta(&in[0].f.st, "acem.shard.tensors_total")) != NULL) {
        uint64_t want;
        if (!parse_u64(tensors_total, &want) || want != (uint64_t)total_tensors)
            die(CLI_INPUT, "the shard outputs hold %zu tensors, but the model has %s (acem.shard.tensors_total)", total_tensors,
                tensors_total);
    }
    /* never replace an input */
    for (k = 0; k < np; ++k) {
        char *fin = xprintf("%s/model-%05zu-of-%05zu.safetensors", out, k + 1, np);
        for (j = 0; j < np; ++j)
            if (same_file(fin, in[j].f.path) || same_file(out, in[j].f.path))
                die(CLI_USAGE, "the output %s would overwrite the input %s; choose another output directory", fin, in[j].f.path);
        free(fin);
    }
    /* write */
    outdir_begin(&od, out, np + 1);
    wp = (char **)xcalloc(np + 1, sizeof(char *));
    names = (char **)xcalloc(np + 1, sizeof(char *));
    ie = (index_entry *)xcalloc(all.n ? all.n : 1, sizeof(index_entry));
    catch_signals();
    {
        size_t e = 0;
        unsigned char *buf = (unsigned char *)xmalloc(1 << 20);
        for (k = 0; k < np; ++k) {
            FILE *src, *dst;
            size_t got;
            names[k] = xprintf("model-%05zu-of-%05zu.safetensors", k + 1, np);
            wp[k] = outdir_write_path(&od, names[k]);
            src = in[k].f.fp;
            if (fseek(src, 0, SEEK_SET) != 0) die(CLI_IO, "%s: cannot read: %s", in[k].f.path, strerror(errno));
            dst = create_temp(wp[k]);
            while ((got = fread(buf, 1, 1 << 20, src)) > 0)
                if (fwrite(buf, 1, got, dst) != got) die(CLI_IO, "%s: write error: %s", wp[k], strerror(errno));
            if (ferror(src)) die(CLI_IO, "%s: read error", in[k].f.path);
            finish_file(dst, wp[k]);
            for (j = 0; j < in[k].f.st.n_tensors; ++j) {
                ie[e].name = in[k].f.st.tensors[j].name;
                ie[e].file = names[k];
                total += in[k].f.st.tensors[j].end - in[k].f.st.tensors[j].begin;
                ++e;
            }
            note("%s -> %s/%s (%zu tensors)\n", in[k].f.path, out, names[k], in[k].f.st.n_tensors);
        }
        names[np] = xstrdup("model.safetensors.index.json");
        wp[np] = outdir_write_path(&od, names[np]);
        write_index(wp[np], ie, e, total);
        outdir_commit(&od, wp, names, np + 1);
        note("acem: joined %zu shard outputs (%zu tensors, %llu bytes) into %s\n", np, e, (unsigned long long)total, out);
    }
    return CLI_OK;
}

/* ---- a check of the thread pool (used by tests/test_cli.sh) ------------------------ */
typedef struct pool_check { pthread_mutex_t mu; unsigned *hits; size_t calls; double sink; } pool_check;
static void pool_check_fn(void *ctx, size_t i) {
    pool_check *c = (pool_check *)ctx;
    double x = 0;
    int k;
    for (k = 0; k < 200; ++k) x += (double)k * (double)i; /* a little work between the locks */
    pthread_mutex_lock(&c->mu);
    c->sink += x;
    c->hits[i]++;
    c->calls++;
    pthread_mutex_unlock(&c->mu);
}
static int cmd_pool_check(int argc, char **argv) {
    cli_pool p;
    pool_check c;
    uint64_t nw = 4;
    size_t counts[] = {0, 1, 2, 3, 17, 1000, 100000}, k, i, bad = 0;
    if (argc > 0 && (!parse_u64(argv[0], &nw) || nw < 1 || nw > 1024)) die(CLI_USAGE, "pool-check: N from 1 to 1024");
    pool_start(&p, (size_t)nw);
    pthread_mutex_init(&c.mu, NULL);
    c.sink = 0;
    for (k = 0; k < sizeof counts / sizeof counts[0]; ++k) {
        int rep;
        for (rep = 0; rep < 3; ++rep) {
            c.hits = (unsigned *)calloc(counts[k] ? counts[k] : 1, sizeof(unsigned));
            c.calls = 0;
            pool_parallel_for(&p, pool_check_fn, &c, counts[k]);
            for (i = 0; i < counts[k]; ++i) bad += c.hits[i] != 1;
            bad += c.calls != counts[k];
            free(c.hits);
        }
    }
    pool_stop(&p);
    printf("pool-check: %llu workers: %s\n", (unsigned long long)nw, bad ? "FAILED" : "ok");
    return bad ? CLI_NUMERIC : CLI_OK;
}

/* ---- main ------------------------------------------------------------------------- */
int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd) { usage_main(stderr); return CLI_USAGE; }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version") || !strcmp(cmd, "-V")) {
        printf("acem %s\n", ACEM_VERSION_STRING);
        return CLI_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2 && !strcmp(argv[2], "merge")) usage_merge(stdout);
        else usage_main(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "merge")) return cmd_merge(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "join")) return cmd_join(argc - 2, argv + 2);
    if (!strcmp(cmd, "demo")) return acem_demo(stdout) ? CLI_NUMERIC : CLI_OK;
    if (!strcmp(cmd, "pool-check")) return cmd_pool_check(argc - 2, argv + 2);
    fprintf(stderr, "acem: unknown command '%s'\n\n", cmd);
    usage_main(stderr);
    return CLI_USAGE;
}
