# acem - build and test.
#
#   make          build the examples and the CLI (build/acem, from tools/acem.c)
#   make demo     build the CLI and run its embedded demo (`build/acem demo`,
#                 the program of examples/demo.c)
#   make test     install missing tools (tools/deps.sh), then run the whole suite:
#                 every tests/test_*.c built four ways (normal, -DACEM_NO_SIMD,
#                 ASan+UBSan, -DACEM_USE_CBLAS -DACEM_USE_LAPACK with OpenBLAS and
#                 LAPACKE), the compile matrix (tests/compile/check.sh) and the
#                 freestanding WebAssembly build run under Node (tests/wasm/),
#                 the CLI end to end (tests/test_cli.sh, with its helper
#                 programs tests/cli_*.c), and acem's GGUF block types against
#                 llama.cpp's own (tests/ggml_check.c; the references come
#                 from npm into build/npm).
#                 The last line printed is "N passed, N failed".
#   make wasm     only build build/acem.wasm and build/acem_simd128.wasm
#   make clean    remove build/
#
# Everything goes to build/. CC, CXX, CLANG, NODE, CFLAGS and ARCH can be
# overridden on the command line, e.g. `make test CC=clang CXX=clang++`.

CC     ?= cc
CXX    ?= g++
CLANG  ?= clang
NODE   ?= node
NPM    ?= npm
CFLAGS ?= -O2 -g
# The SIMD kernels are chosen at compile time from __AVX2__ / __AVX512F__ / ...:
# without -march=native the "normal" build would only exercise the scalar code.
ARCH   ?= -march=native
LDLIBS ?= -lm
SAN    ?= -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

B ?= build
NPROC := $(shell nproc 2>/dev/null || echo 2)

HDR        := acem.h
TEST_HDRS  := $(wildcard tests/*.h)
TEST_SRCS  := $(wildcard tests/test_*.c)
TEST_NAMES := $(TEST_SRCS:tests/%.c=%)
# Shared helpers linked into every test program (the float64 reference merges).
TEST_SUPPORT := $(wildcard tests/ref.c)

# test-program variants: build/<variant>/<test>
VARIANTS := test nosimd san cblas
FLAGS_test   := $(CFLAGS) $(ARCH)
FLAGS_nosimd := $(CFLAGS) $(ARCH) -DACEM_NO_SIMD
# the optional backends: GEMM/SYRK/TRSM through OpenBLAS's CBLAS, the Cholesky and
# the eigen problems through LAPACKE (run single-threaded so that the results,
# like acem's, do not depend on scheduling)
FLAGS_cblas  := $(CFLAGS) $(ARCH) -DACEM_USE_CBLAS -DACEM_USE_LAPACK
LIBS_cblas   := -llapacke -lopenblas
export OPENBLAS_NUM_THREADS := 1
# (-O1 after CFLAGS for the sanitizer build: the usual ASan setting; compiles
# about 40% faster than -O2 and runs about as fast)
FLAGS_san    := $(CFLAGS) -O1 $(ARCH) $(SAN)
TEST_BINS := $(foreach v,$(VARIANTS),$(TEST_NAMES:%=$(B)/$(v)/%))

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(B)/%)
CLI_SRC      := $(wildcard tools/acem.c)
CLI_BIN      := $(CLI_SRC:tools/%.c=$(B)/%)
# The CLI is strict C99 + POSIX. Its test helpers (tests/cli_*.c: a checkpoint
# generator and a checker that recomputes merges with acem_merge and compares
# bitwise) are built with the very same flags: -std=c99 also turns off FP
# contraction (FMA), so a different -std would be a different "build" in the
# sense of acem's determinism contract. (clang contracts even with -std=c99, so
# -ffp-contract=off says it for both compilers: `make test CC=clang` failed 16
# bitwise checks of tests/test_cli.sh without it.)
CLI_FLAGS    := -std=c99 -ffp-contract=off -Wall -Wextra -Wpedantic -Werror -pthread
CLI_HELPERS  := $(patsubst tests/%.c,$(B)/%,$(wildcard tests/cli_*.c))
CLI_TESTS    := $(if $(CLI_BIN),"tests/test_cli.sh $(B)" "tests/test_lora_cli.sh $(B)" "tests/test_cli_tsan.sh $(B)")
# the CLI under ThreadSanitizer (its pool, reader and writer threads: tests/test_cli_tsan.sh)
CLI_TSAN     := $(if $(CLI_BIN),$(B)/tsan/acem)

# Compile matrix: each name is one test, implemented in tests/compile/check.sh.
COMPILE_CHECKS := c99 c11 c99_nosimd c11_avx2 c11_avx512 cxx11 cxx17 wconversion \
                  clang_c11 clangxx_cxx17 static2tu decl_only cxx_decl_c_impl \
                  symbols typo freestanding wasm32_werror malloc_hooks malloc_one_hook
# examples that run without arguments: built with -Werror, run twice, same output
RUN_EXAMPLES   := $(filter demo static_arena,$(EXAMPLE_SRCS:examples/%.c=%))
EXAMPLE_RESULTS := $(RUN_EXAMPLES:%=$(B)/compile/example_%.result)
CLI_RESULTS    := $(CLI_SRC:tools/acem.c=$(B)/compile/cli.result)
COMPILE_RESULTS := $(COMPILE_CHECKS:%=$(B)/compile/%.result) $(EXAMPLE_RESULTS) $(CLI_RESULTS)

# Freestanding WebAssembly: no libc, no entry point, only env.log imported.
WASM_FLAGS := --target=wasm32 -nostdlib -ffreestanding -O2 -Wall -Wextra \
              -Wl,--no-entry -Wl,--export-dynamic
WASM_BINS  := $(B)/acem.wasm $(B)/acem_simd128.wasm
WASM_RUNS  := "$(NODE) tests/wasm/run.mjs $(B)/acem.wasm wasm" \
              "$(NODE) tests/wasm/run.mjs $(B)/acem_simd128.wasm wasm-simd128"

.PHONY: all examples cli demo test test-build deps wasm compile-matrix clean
.DELETE_ON_ERROR:

all: examples cli
examples: $(EXAMPLE_BINS)
cli: $(CLI_BIN)

demo: $(B)/acem
	./$(B)/acem demo

$(EXAMPLE_BINS): $(B)/%: examples/%.c $(HDR) | $(B)
	$(CC) $(CFLAGS) $(ARCH) -I. -o $@ $< $(LDLIBS)

# tools/acem.c compiles examples/demo.c into itself (for `acem demo`).
$(CLI_BIN): $(B)/%: tools/%.c $(HDR) examples/demo.c | $(B)
	$(CC) $(CFLAGS) $(ARCH) $(CLI_FLAGS) -I. -o $@ $< $(LDLIBS)

$(B)/tsan/acem: tools/acem.c $(HDR) examples/demo.c | $(B)/tsan
	$(CC) -O1 -g -fsanitize=thread $(ARCH) $(CLI_FLAGS) -I. -o $@ $< $(LDLIBS)

$(CLI_HELPERS): $(B)/%: tests/%.c $(HDR) $(TEST_HDRS) | $(B)
	$(CC) $(CFLAGS) $(ARCH) $(CLI_FLAGS) -I. -o $@ $< $(LDLIBS)

# ---- tests -------------------------------------------------------------------
# The sub-make builds with -k (and -j<cores> unless -j was given) so that one
# broken program does not hide the others; tests/run.sh then counts whatever did
# not build as failed, and prints the closing "N passed, N failed" line.
test: deps
	@$(MAKE) --no-print-directory -k $(if $(filter -j%,$(MAKEFLAGS)),,-j$(NPROC)) test-build || true
	@BUILD=$(B) tests/run.sh $(TEST_BINS) $(WASM_RUNS) $(GGML_RUNS) $(CLI_TESTS) $(COMPILE_RESULTS)

# Two references from the npm registry, into build/npm (defined before
# test-build: make expands a rule's prerequisites as it reads it):
# - Hugging Face's GGUF parser, the second reader tests/test_cli.sh checks
#   acem's GGUF files with (tests/gguf_check.mjs);
# - llama.cpp's prebuilt libggml-base.so (x86-64 Linux), whose reference
#   quantizers and dequantizers tests/ggml_check.c compares acem's with.
NPM_PKGS  := @huggingface/gguf@0.4.6 @node-llama-cpp/linux-x64@3.22.1
NPM_STAMP := $(B)/npm/installed-gguf-0.4.6-ggml-3.22.1
GGML_SO   := $(B)/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so
GGML_RUNS := "$(B)/ggml_check $(GGML_SO)"
$(NPM_STAMP): | $(B)
	$(NPM) install --prefix $(B)/npm --no-save --no-package-lock --no-audit --no-fund --ignore-scripts --loglevel=error $(NPM_PKGS)
	@touch $@
$(B)/ggml_check: tests/ggml_check.c $(HDR) $(TEST_HDRS) | $(B)
	$(CC) $(CFLAGS) $(ARCH) -Wall -Wextra -Werror -I. -Itests -o $@ $< -ldl $(LDLIBS)

test-build: $(TEST_BINS) $(WASM_BINS) $(COMPILE_RESULTS) $(EXAMPLE_BINS) $(CLI_BIN) $(CLI_TSAN) $(CLI_HELPERS) $(NPM_STAMP) $(B)/ggml_check


deps:
	@tools/deps.sh

define test_variant
$(B)/$(1)/%: tests/%.c $(TEST_SUPPORT) $(HDR) $(TEST_HDRS) Makefile | $(B)/$(1)
	@rm -f $$@
	$$(CC) $$(FLAGS_$(1)) -pthread -I. -Itests -o $$@ $$< $(TEST_SUPPORT) $$(LIBS_$(1)) $$(LDLIBS)
endef
$(foreach v,$(VARIANTS),$(eval $(call test_variant,$(v))))

compile-matrix: $(COMPILE_RESULTS)

# A check never stops make: it writes pass/fail to NAME.result (log: NAME.log).
$(B)/compile/%.result: tests/compile/check.sh $(wildcard tests/compile/*.c tests/compile/*.cpp) \
                       tests/wasm/acem_wasm.c $(HDR) Makefile | $(B)/compile
	@CC='$(CC)' CXX='$(CXX)' CLANG='$(CLANG)' ARCH='$(ARCH)' tests/compile/check.sh $* $(B)/compile

$(EXAMPLE_RESULTS): $(B)/compile/example_%.result: examples/%.c tests/compile/check.sh $(HDR) Makefile | $(B)/compile
	@CC='$(CC)' ARCH='$(ARCH)' tests/compile/check.sh example_$* $(B)/compile

# (a plain rule: a static pattern rule needs a '%'; tools/acem.c includes examples/demo.c)
$(B)/compile/cli.result: tools/acem.c examples/demo.c tests/compile/check.sh $(HDR) Makefile | $(B)/compile
	@CC='$(CC)' ARCH='$(ARCH)' tests/compile/check.sh cli $(B)/compile

wasm: $(WASM_BINS)

# compiler-rt builtins for wasm32 (libclang-rt-*-dev-wasm32), in case clang
# emits calls to them; linked only if present.
WASM_RT = $(wildcard $(shell $(CLANG) --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null))

$(B)/acem.wasm: tests/wasm/acem_wasm.c $(HDR) Makefile | $(B)
	@rm -f $@
	$(CLANG) $(WASM_FLAGS) -I. -o $@ $< $(WASM_RT)

$(B)/acem_simd128.wasm: tests/wasm/acem_wasm.c $(HDR) Makefile | $(B)
	@rm -f $@
	$(CLANG) $(WASM_FLAGS) -msimd128 -I. -o $@ $< $(WASM_RT)

$(B) $(B)/compile $(B)/tsan $(foreach v,$(VARIANTS),$(B)/$(v)):
	@mkdir -p $@

clean:
	rm -rf $(B)

# ---- fuzzing (tests/fuzz_safetensors.c) ---------------------------------------
# make fuzz [FUZZ_TIME=60]: build the libFuzzer target for the safetensors reader
# with clang and run it for FUZZ_TIME seconds from a generated seed corpus (the
# same source built with -DFUZZ_SEEDS_MAIN writes the seeds and a dictionary).
# The corpus grows in $(B)/fuzz/corpus; a crash is written to $(B)/fuzz/crash-*
# and makes the target fail. Not part of `make test`.
FUZZ_TIME  ?= 60
FUZZ_FLAGS ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
.PHONY: fuzz
fuzz: $(B)/fuzz_safetensors $(B)/fuzz_seeds
	@mkdir -p $(B)/fuzz/seeds $(B)/fuzz/corpus
	$(B)/fuzz_seeds $(B)/fuzz/seeds $(B)/fuzz/dict
	$(B)/fuzz_safetensors -max_total_time=$(FUZZ_TIME) -max_len=4096 -dict=$(B)/fuzz/dict \
	    -artifact_prefix=$(B)/fuzz/ $(B)/fuzz/corpus $(B)/fuzz/seeds
$(B)/fuzz_safetensors: tests/fuzz_safetensors.c $(HDR) | $(B)
	$(CLANG) $(FUZZ_FLAGS) -I. -o $@ $< $(LDLIBS)
$(B)/fuzz_seeds: tests/fuzz_safetensors.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -DFUZZ_SEEDS_MAIN -I. -o $@ $< $(LDLIBS)
# ---- end of fuzzing ------------------------------------------------------------

# ---- benchmarks (bench/; not part of `make test`) -------------------------------------
# make bench: every benchmark, then ONE table (bench/run.sh): acem's kernels against
#   OpenBLAS in the same process (GEMM / SYRK / Cholesky / TRSM / eigensolver, single
#   thread: the native SIMD build, the AVX2 and portable scalar builds and the
#   ACEM_USE_CBLAS build), the element-wise rules against the memory-bandwidth limit,
#   the LoRA low-rank path against the dense one, and a whole GPT-2-small ACE merge
#   against the PyTorch transcription of the reference (1 and 2 threads). The table
#   and each benchmark's detailed output go to bench/results/<name>-<date>.txt.
#   tools/deps.sh bench installs the Debian packages the benchmarks need (OpenBLAS,
#   LAPACKE, PyTorch, numpy, GNU time). Takes about 35 minutes (the torch runs);
#   run it without -j on a quiet machine.
# make bench-kernels / bench-elementwise / bench-lora / bench-merge: one section
#   (the table then has only its rows).
# Knobs: BENCH_EW_ARGS (MiB per tensor, T, reps: "64 4 5"), BENCH_LORA_ARGS
#   (--quick, --no-dense-ace-wide), BENCH_MERGE_ENV (bench/whole_merge.sh's
#   environment, e.g. 'THREADS=1 REPS=1 BLOCKS=4').
BENCH_LIBS ?= -lopenblas -llapacke -lm
BENCH_EW_ARGS   ?= 64 4 5
BENCH_LORA_ARGS ?=
BENCH_MERGE_ENV ?=
BENCH_RUN = BENCH_EW_ARGS='$(BENCH_EW_ARGS)' BENCH_LORA_ARGS='$(BENCH_LORA_ARGS)' env $(BENCH_MERGE_ENV) B=$(B)
.PHONY: bench bench-kernels bench-elementwise bench-lora bench-merge bench-deps
bench: bench-deps
	@$(BENCH_RUN) bench/run.sh
bench-kernels: bench-deps
	@$(BENCH_RUN) SECTIONS=kernels bench/run.sh
bench-elementwise:
	@$(BENCH_RUN) SECTIONS=elementwise bench/run.sh
bench-lora:
	@$(BENCH_RUN) SECTIONS=lora bench/run.sh
bench-merge: bench-deps
	@$(BENCH_RUN) SECTIONS=merge bench/run.sh
bench-deps:
	@tools/deps.sh bench
# bench_kernels: the build's SIMD tier follows the flags (-march=native; AVX2 without
# AVX-512; -DACEM_NO_SIMD; -DACEM_USE_CBLAS)
$(B)/bench_kernels: bench/bench_kernels.c bench/rows.h $(HDR) | $(B)
	$(CC) -O2 -march=native -I. -o $@ $< $(BENCH_LIBS)
$(B)/bench_kernels_avx2: bench/bench_kernels.c bench/rows.h $(HDR) | $(B)
	$(CC) -O2 -march=native -mno-avx512f -mavx2 -mfma -I. -o $@ $< $(BENCH_LIBS)
$(B)/bench_kernels_scalar: bench/bench_kernels.c bench/rows.h $(HDR) | $(B)
	$(CC) -O2 -march=native -DACEM_NO_SIMD -I. -o $@ $< $(BENCH_LIBS)
$(B)/bench_kernels_cblas: bench/bench_kernels.c bench/rows.h $(HDR) | $(B)
	$(CC) -O2 -march=native -DACEM_USE_CBLAS -DACEM_USE_LAPACK -I. -o $@ $< $(BENCH_LIBS)
$(B)/bench_elementwise: bench/bench_elementwise.c bench/rows.h $(HDR) | $(B)
	$(CC) $(CFLAGS) $(ARCH) -I. -o $@ $< $(LDLIBS)
$(B)/bench_lora: bench/bench_lora.c bench/rows.h $(HDR) | $(B)
	$(CC) $(CFLAGS) $(ARCH) -I. -o $@ $< $(LDLIBS)
# ---- end of the benchmarks ----------------------------------------------------------------
