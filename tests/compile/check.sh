#!/usr/bin/env bash
# tests/compile/check.sh NAME OUTDIR - run one compile-matrix check.
#
# Writes OUTDIR/NAME.result ("pass" or "fail") and OUTDIR/NAME.log (the commands
# and the compiler output); always exits 0 so that make carries on. tests/run.sh
# counts the .result files as the "compile" program. Called by the Makefile with
# CC, CXX, CLANG and ARCH in the environment; run from the repository root.
set -u
name=$1
out=$2
CC=${CC:-cc}
CXX=${CXX:-g++}
CLANG=${CLANG:-clang}
CLANGXX=${CLANGXX:-${CLANG}++}
ARCH=${ARCH--march=native}
W="-Wall -Wextra -Wpedantic -Werror"
S=tests/compile
o=$out/$name            # prefix for this check's outputs
mkdir -p "$out"

run() { echo "+ $*"; "$@"; }
# run a command that must fail; its output goes to $o.err (and the log)
run_fails() {
    echo "+ $* (must fail)"
    if "$@" >"$o.err" 2>&1; then cat "$o.err"; echo "unexpected success"; return 1; fi
    cat "$o.err"
    return 0
}
cpu_has() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }

# ---- the checks ----------------------------------------------------------------
# -O2 where the optimiser's warnings or code matter (c99, c99_nosimd, c11_avx2,
# cxx17, clang_c11, the examples); -O0 where the front end or the linker is what
# is being tested (much cheaper).
# use.c / use.cpp include acem.h with ACEM_IMPLEMENTATION, call a handful of
# functions (every method on a small problem, the streaming API, a kernel, dtype
# conversions, regexes) and exit non-zero if anything is off.
check_c99()   { run $CC -std=c99 $W -O2 $ARCH -I. -o "$o" $S/use.c -lm && run "$o"; }
check_c11()   { run $CC -std=c11 $W -O0 $ARCH -I. -o "$o" $S/use.c -lm && run "$o"; }
check_c99_nosimd() { run $CC -std=c99 $W -O2 -DACEM_NO_SIMD -I. -o "$o" $S/use.c -lm && run "$o"; }
# AVX2 + FMA without AVX-512: the middle SIMD tier, which -march=native skips on
# an AVX-512 machine.
check_c11_avx2() {
    case $(uname -m) in x86_64|amd64|i?86) ;; *) echo "skipped: not x86"; return 0;; esac
    run $CC -std=c11 $W -O2 -mavx2 -mfma -mno-avx512f -I. -o "$o" $S/use.c -lm || return 1
    if cpu_has avx2 && cpu_has fma; then run "$o"; else echo "built, not run: CPU lacks AVX2/FMA"; fi
}
# AVX-512: the top SIMD tier, compiled (C and C++, -O2, with -Wconversion) on
# every x86 machine and run only where the CPU has it, so that a machine without
# AVX-512 still catches compile errors in those paths.
check_c11_avx512() {
    case $(uname -m) in x86_64|amd64) ;; *) echo "skipped: not x86-64"; return 0;; esac
    local f="-mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma"
    run $CC -std=c11 $W -Wconversion -O2 $f -I. -o "$o" $S/use.c -lm || return 1
    run $CXX -std=c++17 $W -O2 $f -I. -o "$o.cxx" $S/use.cpp -lm || return 1
    if cpu_has avx512f; then run "$o" && run "$o.cxx"; else echo "built, not run: CPU lacks AVX-512"; fi
}
check_cxx11() { run $CXX -std=c++11 $W -O0 $ARCH -I. -o "$o" $S/use.cpp -lm && run "$o"; }
check_cxx17() { run $CXX -std=c++17 $W -O2 $ARCH -I. -o "$o" $S/use.cpp -lm && run "$o"; }
check_wconversion() {
    run $CC -std=c11 $W -Wconversion -O0 $ARCH -I. -c -o "$o.o" $S/use.c &&
    run $CC -std=c11 $W -Wconversion -O0 -DACEM_NO_SIMD -I. -c -o "$o.nosimd.o" $S/use.c
}
check_clang_c11() { run $CLANG -std=c11 $W -O2 $ARCH -I. -o "$o" $S/use.c -lm && run "$o"; }
check_clangxx_cxx17() { run $CLANGXX -std=c++17 $W -O0 $ARCH -I. -o "$o" $S/use.cpp -lm && run "$o"; }
# Two translation units, both ACEM_STATIC + ACEM_IMPLEMENTATION, linked together.
# (-Wno-unused-function: with ACEM_STATIC every API function the TU does not call
# is an unused static function.)
check_static2tu() {
    local f="-std=c99 $W -Wno-unused-function -O0 $ARCH -I."
    run $CC $f -c -o "$o.a.o" $S/static_a.c &&
    run $CC $f -c -o "$o.b.o" $S/static_b.c &&
    run $CC -o "$o" "$o.a.o" "$o.b.o" -lm &&
    run "$o"
}
# A TU with the declarations only (-Werror), linked with a TU holding the
# implementation.
check_decl_only() {
    run $CC -std=c99 $W -O0 -I. -c -o "$o.o" $S/decl_only.c &&
    run $CC -std=c99 $W -O0 $ARCH -I. -c -o "$o.impl.o" $S/impl.c &&
    run $CC -o "$o" "$o.o" "$o.impl.o" -lm &&
    run "$o"
}
# The same declarations-only TU compiled as C++, linked with the C implementation:
# proves the extern "C" linkage.
check_cxx_decl_c_impl() {
    run $CXX -std=c++11 $W -O0 -I. -x c++ -c -o "$o.o" $S/decl_only.c &&
    run $CC -std=c99 $W -O0 $ARCH -I. -c -o "$o.impl.o" $S/impl.c &&
    run $CXX -o "$o" "$o.o" "$o.impl.o" -lm &&
    run "$o"
}
# The implementation exports nothing but the functions declared with ACEMDEF.
check_symbols() {
    run $CC -std=c99 $W -O0 $ARCH -I. -c -o "$o.o" $S/impl.c || return 1
    local declared defined extra
    # names from the declarations part of acem.h (before the implementation)
    declared=$(sed -n '1,/^#ifdef ACEM_IMPLEMENTATION/p' acem.h | grep -E '^ACEMDEF' |
               sed -E 's/\(.*//; s/.*[ *]//' | grep -v '^$' | sort -u)
    defined=$(nm -g --defined-only "$o.o" | awk '{print $3}' | sort -u)
    echo "declared: $(echo $declared | wc -w) functions; defined globals: $(echo $defined | wc -w)"
    extra=$(comm -13 <(echo "$declared") <(echo "$defined"))
    if [ -n "$extra" ]; then echo "global symbols not declared with ACEMDEF:"; echo "$extra"; return 1; fi
    local missing
    missing=$(comm -23 <(echo "$declared") <(echo "$defined"))
    if [ -n "$missing" ]; then echo "declared but not defined:"; echo "$missing"; return 1; fi
}
# ACEM_IMPLEMENTAION (sic) must not produce an implementation: compiling works,
# linking must fail on the undefined acem_result_string.
check_typo() {
    run $CC -std=c99 $W -O0 -I. -c -o "$o.o" $S/typo.c || return 1
    run_fails $CC -o "$o" "$o.o" -lm || return 1
    grep -q 'acem_result_string' "$o.err" || { echo "link failed, but not on acem_result_string"; return 1; }
}
# All hooks defined: acem.h must need no libc header (only the compiler's own
# freestanding <stddef.h> / <stdint.h>).
check_freestanding() {
    local inc
    inc=$($CC -print-file-name=include)
    run $CC -std=c99 $W -O0 -ffreestanding -nostdinc -isystem "$inc" -I. -c -o "$o.o" $S/freestanding.c
}
# The WebAssembly glue, warning-free, with and without wasm SIMD.
check_wasm32_werror() {
    local inc
    inc=$($CLANG -print-resource-dir)/include
    local f="--target=wasm32 -ffreestanding -nostdinc -isystem $inc $W -O0 -I."
    run $CLANG $f -c -o "$o.o" tests/wasm/acem_wasm.c &&
    run $CLANG $f -msimd128 -c -o "$o.simd.o" tests/wasm/acem_wasm.c
}
# ACEM_MALLOC / ACEM_FREE hooks are used by the allocating convenience function...
check_malloc_hooks() { run $CC -std=c99 $W -O0 $ARCH -I. -o "$o" $S/malloc_hooks.c -lm && run "$o"; }
# ... and defining only one of them is a compile-time error.
check_malloc_one_hook() {
    run_fails $CC -std=c99 $W -O0 -I. -c -o "$o.o" $S/malloc_one_hook.c || return 1
    grep -E 'error' "$o.err" | grep -qE 'ACEM_(MALLOC|FREE)' ||
        { echo "compile failed, but not with an error naming ACEM_MALLOC / ACEM_FREE"; return 1; }
}

# example_NAME: examples/NAME.c builds warning-free as C99, runs without
# arguments, and prints the same output twice (the determinism contract).
check_example() {
    local ex=$1 to=() rc
    command -v timeout >/dev/null 2>&1 && to=(timeout 120)
    run $CC -std=c99 $W -O2 $ARCH -I. -o "$o" "examples/$ex.c" -lm || return 1
    echo "+ $o (twice)"
    "${to[@]}" "$o" >"$o.out1" 2>&1 || { rc=$?; cat "$o.out1"; echo "exit status $rc"; return 1; }
    "${to[@]}" "$o" >"$o.out2" 2>&1 || { rc=$?; cat "$o.out2"; echo "exit status $rc"; return 1; }
    tail -n 5 "$o.out1"
    cmp "$o.out1" "$o.out2" || { diff "$o.out1" "$o.out2" | head -n 20; return 1; }
    echo "(output identical on two runs)"
}
# cli: tools/acem.c (C99 + POSIX) builds warning-free and answers `acem help`.
check_cli() {
    run $CC -std=c99 $W -O2 $ARCH -pthread -I. -o "$o" tools/acem.c -lm &&
    run "$o" help >/dev/null &&
    run "$o" --version
}

# ---- run it ----------------------------------------------------------------------
case $name in
    example_*) eval "check_$name() { check_example ${name#example_}; }" ;;
esac
if ! declare -F "check_$name" >/dev/null; then
    echo "check.sh: unknown check '$name'" >&2
    echo fail >"$o.result"
    exit 0
fi
rm -f "$o.result"
if ( "check_$name" ) >"$o.log" 2>&1; then
    echo pass >"$o.result"
    echo "compile/$name: pass"
else
    echo fail >"$o.result"
    echo "compile/$name: FAIL (see $o.log)"
fi
exit 0
