#!/usr/bin/env bash
# bench/run.sh - what `make bench` runs: every benchmark, then one table.
#
#   make bench                  # builds what it needs, installs tools/deps.sh bench's packages
#   SECTIONS="kernels lora" bench/run.sh      # a subset (default: all of
#                                             # kernels elementwise lora merge)
#
# Each benchmark prints its own detailed table (kept in bench/results/ as
# <name>-<date>.txt) and appends its summary rows to one file (ACEM_BENCH_ROWS,
# format in bench/rows.h); this script prints them as one table with a machine
# line and saves it as bench/results/bench-<date>.txt (a subset: bench-<date>-<sections>.txt,
# and the details likewise). ratio > 1 means acem is
# better: reference time / acem time, or reference memory / acem memory, or
# (element-wise rules) the memory-bandwidth limit's time / acem's time. target:
# the least ratio the performance issue asks for, marked met or MISSED.
#
# The kernels are compared with OpenBLAS in the same process, single thread:
# on a CPU with AVX-512, acem's AVX-512 and scalar builds against OpenBLAS forced
# to its AVX-512 kernels (OPENBLAS_CORETYPE=SkylakeX, OPENBLAS_L2_SIZE unset) and
# acem's AVX2 build against OpenBLAS's AVX2 kernels (Haswell); on a CPU without
# AVX-512 the AVX2 (native) and scalar builds against OpenBLAS's own choice of
# kernels, and the AVX-512 rows are absent (they cannot run). The
# ACEM_USE_CBLAS build is listed with the core its OpenBLAS selected.
# Run it on a quiet machine, without -j: benchmarks must not overlap.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
SECTIONS=${SECTIONS:-"kernels elementwise lora merge"}
RESULTS=${RESULTS:-bench/results}
date_tag=$(date +%Y-%m-%d)
# a subset (make bench-kernels, bench-elementwise, ...) saves under its own names:
# it must not replace the files of the last whole `make bench`, which the README quotes
cmd="make bench"
if [ "$(echo $SECTIONS)" != "kernels elementwise lora merge" ]; then
    date_tag="$date_tag-$(echo $SECTIONS | tr ' ' '+')"
    cmd="SECTIONS=\"$(echo $SECTIONS)\" bench/run.sh"
fi
export RESULT_TAG=$date_tag
# the code measured: HEAD, "+changes" if acem.h, tools/ or bench/ (its results
# aside: this run rewrites them) differ from it; the load before the run
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git status --porcelain -- acem.h tools bench ':!bench/results' 2>/dev/null | grep -q . && echo "+changes" || true)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$RESULTS"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
export ACEM_BENCH_ROWS=$rows
has() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }
want() { case " $SECTIONS " in *" $1 "*) return 0;; esac; return 1; }
log() { echo "bench: $*" >&2; }

OB_SKX=(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1)
OB_HSW=(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1)
OB_DEF=(env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS=1)
if has avx512f; then tier="AVX-512"; elif has avx2 && has fma; then tier="AVX2+FMA (no AVX-512)"; else tier="no AVX2"; fi

if want kernels; then
    make --no-print-directory "$B/bench_kernels" "$B/bench_kernels_avx2" "$B/bench_kernels_scalar" \
        "$B/bench_kernels_cblas" >&2
    out="$RESULTS/kernels-$date_tag.txt"
    {
        if has avx512f; then
            log "kernels: AVX-512 build vs OpenBLAS SkylakeX"
            "${OB_SKX[@]}" "$B/bench_kernels"
            log "kernels: AVX2 build vs OpenBLAS Haswell"
            "${OB_HSW[@]}" "$B/bench_kernels_avx2" | tail -n +4
            ref=("${OB_SKX[@]}")
        else
            log "kernels: AVX2 build vs OpenBLAS's own kernels (no AVX-512 on this CPU)"
            "${OB_DEF[@]}" "$B/bench_kernels_avx2"
            ref=("${OB_DEF[@]}")
        fi
        log "kernels: portable scalar build (GEMM rows)"
        "${ref[@]}" "$B/bench_kernels_scalar" 3 gemm | tail -n +4
        log "kernels: ACEM_USE_CBLAS + ACEM_USE_LAPACK build"
        "${ref[@]}" "$B/bench_kernels_cblas" 3 gemm,syrk,potrf,trsm,syev | tail -n +4
    } | tee "$out"
fi
if want elementwise; then
    make --no-print-directory "$B/bench_elementwise" >&2
    log "element-wise rules vs the memory-bandwidth limit"
    "$B/bench_elementwise" ${BENCH_EW_ARGS:-64 4 5} | tee "$RESULTS/elementwise-$date_tag.txt"
fi
if want lora; then
    make --no-print-directory "$B/bench_lora" >&2
    log "LoRA: low-rank vs dense path"
    "$B/bench_lora" ${BENCH_LORA_ARGS:-} | tee "$RESULTS/lora-$date_tag.txt"
fi
if want merge; then
    tools/deps.sh bench >&2
    make --no-print-directory cli >&2
    log "whole GPT-2-small merge vs PyTorch (takes a while: the torch runs)"
    bench/whole_merge.sh
fi

# ---- the table ---------------------------------------------------------------------
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
fam=$(awk -F': ' '/cpu family/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
obv=$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo "?")
table="$RESULTS/bench-$date_tag.txt"
{
    echo "acem $(awk '/define ACEM_VERSION_STRING/ { gsub(/"/, "", $3); print $3 }' acem.h) (git $rev$dirty), $cmd, $(date '+%Y-%m-%d %H:%M')"
    echo "machine: $cpu (x86 family $fam), $(nproc) cores, $mem, $tier; OpenBLAS $obv; load average $load_before before the run"
    echo "ratio > 1: acem better (reference time / acem time; memory: reference / acem; element-wise: bandwidth-limit time / acem time; eigen residual: reference / acem)"
    echo
    awk -F'\t' '
        { n++; for (i = 1; i <= 9; ++i) c[n, i] = $i
          t = ($8 + 0 > 0) ? sprintf(">= %.2f %s", $8, ($6 + 0 >= $8 - 1e-9) ? "met" : "MISSED") : "-"
          c[n, 8] = t; c[n, 6] = sprintf($6 + 0 >= 1e4 ? "%.0e" : "%.2f", $6) }
        END {
          split("section|operation|shape|acem|reference|ratio|threads|target|note", h, "|")
          for (i = 1; i <= 9; ++i) { w[i] = length(h[i]); for (r = 1; r <= n; ++r) if (length(c[r, i]) > w[i]) w[i] = length(c[r, i]) }
          line = "|"; sep = "|"
          for (i = 1; i <= 9; ++i) { line = line sprintf(" %-" w[i] "s |", h[i]); s = ""; for (k = 0; k < w[i] + 2; ++k) s = s "-"; sep = sep s "|" }
          print line; print sep
          for (r = 1; r <= n; ++r) { line = "|"; for (i = 1; i <= 9; ++i) line = line sprintf(" %-" w[i] "s |", c[r, i]); print line }
        }' "$rows"
    echo
    echo "details: bench/results/{kernels,elementwise,lora,whole-merge}-$date_tag.txt; command: $cmd"
} | tee "$table"
echo "(saved as $table)" >&2
