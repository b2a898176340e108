/* tests/cli_llama.c - does llama.cpp itself load what acem writes?

   cli_llama LIBDIR BASE.gguf [MODEL.gguf ...] [--lora ADAPTER.gguf ...]

   LIBDIR holds llama.cpp's prebuilt shared libraries (make test installs the
   npm package @node-llama-cpp/linux-x64: LIBDIR is its bins/linux-x64). Loads
   BASE and every MODEL with llama_model_load_from_file (each must load and
   have BASE's parameter count), and every ADAPTER on BASE with
   llama_adapter_lora_init (each must load: llama.cpp checks the architecture,
   the tensor names and the factor shapes). Prints one line per file; exits 0
   when everything loads, 1 otherwise, 2 when the libraries cannot be used.

   There is no llama.h here: llama_model_params is returned and passed by value,
   so the program uses an opaque struct larger than llama's. On x86-64 System V
   (the only target of that package) a struct that large is returned through a
   caller's buffer and passed in memory, where the bytes past llama's struct are
   never read. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct params_t { unsigned char b[1024]; } params_t;
typedef void (*log_cb_t)(int level, const char *text, void *user);

static void quiet(int level, const char *text, void *user) { (void)level; (void)text; (void)user; }

/* a function from a library, without casting an object pointer (ISO C) */
static void sym(void *lib, const char *name, void *fn, size_t size) {
    void *p = dlsym(lib, name);
    if (!p) {
        printf("FAIL: %s not found: %s\n", name, dlerror());
        memset(fn, 0, size);
        return;
    }
    memcpy(fn, &p, size);
}

int main(int argc, char **argv) {
    char path[4096];
    void *ll, *gg, *base;
    void (*load_all)(const char *);
    void (*backend_init)(void);
    void (*log_set)(log_cb_t, void *);
    params_t (*default_params)(void);
    void *(*model_load)(const char *, params_t);
    uint64_t (*n_params)(const void *);
    void *(*lora_init)(void *, const char *);
    params_t mp;
    uint64_t want;
    int i, lora = 0, bad = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: cli_llama LIBDIR BASE.gguf [MODEL.gguf ...] [--lora ADAPTER.gguf ...]\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/libggml.v0.5.0.so", argv[1]);
    gg = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    snprintf(path, sizeof path, "%s/libllama.v0.5.0.so", argv[1]);
    ll = gg ? dlopen(path, RTLD_NOW | RTLD_GLOBAL) : NULL;
    if (!ll) {
        printf("FAIL: cannot load llama.cpp from %s: %s (make test installs @node-llama-cpp/linux-x64 with npm)\n", argv[1], dlerror());
        return 2;
    }
    sym(gg, "ggml_backend_load_all_from_path", &load_all, sizeof load_all);
    sym(ll, "llama_backend_init", &backend_init, sizeof backend_init);
    sym(ll, "llama_log_set", &log_set, sizeof log_set);
    sym(ll, "llama_model_default_params", &default_params, sizeof default_params);
    sym(ll, "llama_model_load_from_file", &model_load, sizeof model_load);
    sym(ll, "llama_model_n_params", &n_params, sizeof n_params);
    sym(ll, "llama_adapter_lora_init", &lora_init, sizeof lora_init);
    if (!load_all || !backend_init || !log_set || !default_params || !model_load || !n_params || !lora_init) return 2;
    log_set(quiet, NULL);
    load_all(argv[1]);
    backend_init();
    mp = default_params();
    if (!(base = model_load(argv[2], mp))) {
        printf("FAIL: llama.cpp cannot load the base %s\n", argv[2]);
        return 1;
    }
    want = n_params(base);
    printf("%s: loaded (%llu parameters)\n", argv[2], (unsigned long long)want);
    for (i = 3; i < argc; ++i) {
        if (!strcmp(argv[i], "--lora")) { lora = 1; continue; }
        if (lora) {
            void *a = lora_init(base, argv[i]);
            printf("%s%s: %s\n", a ? "" : "FAIL: ", argv[i], a ? "loaded as a LoRA adapter of the base" : "llama.cpp refuses it as an adapter");
            bad += !a;
        } else {
            void *m = model_load(argv[i], mp);
            uint64_t n = m ? n_params(m) : 0;
            printf("%s%s: %s (%llu parameters)\n", m && n == want ? "" : "FAIL: ", argv[i], m ? "loaded" : "llama.cpp cannot load it",
                   (unsigned long long)n);
            bad += !m || n != want;
        }
    }
    return bad ? 1 : 0;
}
