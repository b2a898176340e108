#!/usr/bin/env bash
# bench/whole_merge.sh - a whole GPT-2-small-shaped ACE merge: `acem merge --method ace`
# against the PyTorch transcription of the reference implementation
# (bench/ref_ace_torch.py), same inputs, same thread count.
#
#   bench/whole_merge.sh                      # what `make bench-merge` runs
#   THREADS="1 2" REPS=3 TORCH_REPS=3 EXPERTS=7 BLOCKS=12 bench/whole_merge.sh
#
# Steps: generate the inputs once (bench/gen_gpt2.py, into bench/data/, kept
# between runs), then for each thread count N in $THREADS run, alternating,
#   /usr/bin/time -v build/acem merge --method ace --base base.safetensors \
#        -o out_acem.safetensors e1..eT --threads N -q
#   /usr/bin/time -v python3 bench/ref_ace_torch.py --base base.safetensors \
#        -o out_torch.safetensors e1..eT --threads N -q
# ($REPS acem runs and $TORCH_REPS torch runs; the table reports medians); then,
# for the thread-count ratio, $PAIRS more rounds of acem alone, one run per
# thread count back to back (the runs above are minutes apart, with a torch
# run between each: this machine drifts by 10-20% over such spans, and
# alternating is what the torch ratios get too),
# checks every output tensor with bench/compare.py (1e-4 relative, of the tensor
# and of the merge update), checks that acem's output is bitwise identical for
# every thread count, and prints one table, saved as
# bench/results/whole-merge-<date>.txt.
#
# Environment knobs (defaults in brackets):
#   THREADS ["1 2"]  REPS [3]  TORCH_REPS [3]  PAIRS [3]  EXPERTS [7]  BLOCKS [12]
#   (three torch runs, not one: a single torch run per thread count took 150.4 s
#   in one make bench and 135.4 s in the next, moving the 1-thread ratio from
#   2.95x to 2.72x; the median of three moves less)
#   VOCAB [50257]  SEED [0]  DATA [bench/data/gpt2-b$BLOCKS-e$EXPERTS-s$SEED]
#   ACEM [build/acem]  PYTHON [/usr/bin/python3]
#   TORCH_CORETYPE [SkylakeX on a CPU with AVX-512, else default]: OPENBLAS_CORETYPE
#     for the torch runs. Debian's torch calls OpenBLAS, which on an AVX-512 AMD
#     CPU picks its AVX2 (Haswell) kernels by default; SkylakeX forces its AVX-512
#     kernels: the stronger reference (on a CPU without AVX-512 they would fault).
#     "default" leaves OpenBLAS's own choice. The core in use is printed.
#   ACEM_BENCH_ROWS: a file to which the summary rows of `make bench`'s table are
#     appended (bench/rows.h has the format).
#   SKIP_TORCH [0]: 1 times acem only (the torch columns are left empty).
#   F16 [1]: also time acem on F16 copies of the same files ($DATA/f16/, made
#     once by acem itself: `merge --method average --out-dtype f16` of each file
#     with itself as its only expert), F16 output, $REPS runs per thread count,
#     against acem's own F32 times (most checkpoints are F16 or BF16: this is
#     the path they take; no torch runs, and no agreement check: the rounded
#     inputs are other deltas).
#   KEEP_OUT [0]: 1 keeps the merged outputs (bench/data/.../run.XXXXXX).
# Only one whole_merge.sh runs at a time (a lock in bench/data/): overlapping
# runs on a 2-core machine would time each other.
#   RESULTS [bench/results]
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-"1 2"}
REPS=${REPS:-3}
TORCH_REPS=${TORCH_REPS:-3}
PAIRS=${PAIRS:-3}
EXPERTS=${EXPERTS:-7}
BLOCKS=${BLOCKS:-12}
VOCAB=${VOCAB:-50257}
SEED=${SEED:-0}
ACEM=${ACEM:-build/acem}
PY=${PYTHON:-/usr/bin/python3}
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then TORCH_CORETYPE=${TORCH_CORETYPE:-SkylakeX}
else TORCH_CORETYPE=${TORCH_CORETYPE:-default}; fi
SKIP_TORCH=${SKIP_TORCH:-0}
F16=${F16:-1}
RESULTS=${RESULTS:-bench/results}
tag="gpt2-b$BLOCKS-e$EXPERTS-s$SEED"
[ "$VOCAB" = 50257 ] || tag="$tag-v$VOCAB"
DATA=${DATA:-bench/data/$tag}

[ -x "$ACEM" ] || make --no-print-directory cli >/dev/null
[ -x "$ACEM" ] || { echo "whole_merge: $ACEM not built (make cli)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "whole_merge: /usr/bin/time missing (tools/deps.sh bench)" >&2; exit 1; }

mkdir -p bench/data
# one benchmark at a time on this machine: two overlapping runs time each other
exec 9>"bench/data/.whole_merge.lock"
if ! flock -n 9; then
    echo "whole_merge: another whole_merge.sh is running; waiting for it to finish" >&2
    flock 9
    echo "whole_merge: the other run finished; starting" >&2
fi

experts=()
for ((t = 1; t <= EXPERTS; ++t)); do experts+=("$DATA/e$t.safetensors"); done
if [ ! -f "$DATA/base.safetensors" ] || [ ! -f "${experts[-1]}" ] || [ ! -f "$DATA/gates.txt" ]; then
    echo "whole_merge: generating $DATA (base + $EXPERTS experts, $BLOCKS blocks)" >&2
    "$PY" bench/gen_gpt2.py "$DATA" --experts "$EXPERTS" --seed "$SEED" --blocks "$BLOCKS" \
        --vocab "$VOCAB" -q >&2
fi
mkdir -p "$RESULTS"
# outputs (4 x ~500 MB) in a private directory next to the inputs, removed at the
# end (KEEP_OUT=1 keeps it)
OUT=$(mktemp -d "$DATA/run.XXXXXX")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ "${KEEP_OUT:-0}" = 1 ] || rm -rf "$OUT"' EXIT
# time a private copy: another `make` rebuilding build/acem mid-run must not
# mix two binaries in one table
ACEM_SRC=$ACEM
cp "$ACEM" "$tmp/acem"
ACEM="$tmp/acem"
acem_sum=$(sha256sum "$ACEM" | cut -c1-12)

# run LABEL CMD...: appends "seconds kbytes" to $tmp/LABEL.times; fails loudly
run() {
    local label=$1; shift
    if ! /usr/bin/time -v -o "$tmp/time.txt" "$@" >"$tmp/run.out" 2>&1; then
        echo "whole_merge: FAILED: $*" >&2
        cat "$tmp/run.out" "$tmp/time.txt" >&2
        return 1
    fi
    awk -F': ' '
        /Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; ++i) s = s * 60 + p[i] }
        /Maximum resident set size/ { m = $2 }
        END { printf "%.2f %d\n", s, m }' "$tmp/time.txt" >>"$tmp/$label.times"
    echo "  $label: $(tail -n 1 "$tmp/$label.times" | awk '{ printf "%.1f s, %.0f MiB peak RSS", $1, $2 / 1024 }')" >&2
    grep -h -E "^(ref_ace_torch|acem):" "$tmp/run.out" >>"$tmp/$label.log" || true
}
# same_bits WHAT FIRST N FILE_FIRST FILE_N: the line saying whether the output with N
# threads is bitwise that with FIRST threads (it must be)
same_bits() {
    if cmp -s "$4" "$5"; then
        compare_lines+=("$1 with $3 threads: bitwise identical to $2 thread(s)")
    else
        compare_lines+=("$1 with $3 threads: DIFFERS from $2 thread(s) (must be bitwise identical)")
    fi
}
# stat FILE COLUMN: "median min max" of a column
stat() {
    awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '
        { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                             printf "%s %s %s %d\n", m, v[1], v[NR], NR }'
}

date_tag=${RESULT_TAG:-$(date +%Y-%m-%d)} # bench/run.sh passes its tag
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
machine="$cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$TORCH_CORETYPE" = default ]; then torch_env=(env -u OPENBLAS_CORETYPE)
else torch_env=(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE="$TORCH_CORETYPE"); fi
t_start=$(date +%s)

echo "whole_merge: $DATA, threads $THREADS, $REPS acem / $TORCH_REPS torch runs each" >&2
compare_lines=()
first_threads=""
for n in $THREADS; do
    maxr=$REPS
    [ "$SKIP_TORCH" = 1 ] || [ "$TORCH_REPS" -le "$maxr" ] || maxr=$TORCH_REPS
    for ((r = 1; r <= maxr; ++r)); do
        if [ "$r" -le "$REPS" ]; then
            run "acem-$n" "$ACEM" merge --method ace --base "$DATA/base.safetensors" \
                -o "$OUT/out_acem_t$n.safetensors" "${experts[@]}" --threads "$n" -q
        fi
        if [ "$SKIP_TORCH" != 1 ] && [ "$r" -le "$TORCH_REPS" ]; then
            run "torch-$n" "${torch_env[@]}" "$PY" bench/ref_ace_torch.py --base "$DATA/base.safetensors" \
                -o "$OUT/out_torch_t$n.safetensors" "${experts[@]}" --threads "$n"
        fi
    done
    if [ "$SKIP_TORCH" != 1 ]; then
        if "$PY" bench/compare.py "$OUT/out_acem_t$n.safetensors" "$OUT/out_torch_t$n.safetensors" \
               --base "$DATA/base.safetensors" --gates "$DATA/gates.txt" >"$tmp/cmp.txt"; then
            verdict=ok
        else
            verdict=FAILED
        fi
        compare_lines+=("threads $n: acem vs torch: $verdict")
        while IFS= read -r l; do compare_lines+=("  $l"); done <"$tmp/cmp.txt"
    fi
    if [ -z "$first_threads" ]; then
        first_threads=$n
    else
        same_bits "acem output" "$first_threads" "$n" "$OUT/out_acem_t$first_threads.safetensors" "$OUT/out_acem_t$n.safetensors"
    fi
done
set -- $THREADS
if [ $# -ge 2 ]; then # the thread-count ratio: acem alone, the thread counts back to back
    for ((r = 1; r <= PAIRS; ++r)); do
        for n in $THREADS; do
            run "pair-$n" "$ACEM" merge --method ace --base "$DATA/base.safetensors" \
                -o "$OUT/out_pair_t$n.safetensors" "${experts[@]}" --threads "$n" -q
        done
    done
    for n in "${@:2}"; do
        [ "$PAIRS" -gt 0 ] || break
        same_bits "acem output (paired runs)" "$1" "$n" "$OUT/out_pair_t$1.safetensors" "$OUT/out_pair_t$n.safetensors"
    done
fi
# the runs the thread-count ratio takes: the paired ones (PAIRS=0: those interleaved with torch)
rl=pair
[ "$PAIRS" -gt 0 ] || rl=acem
if [ "$F16" = 1 ]; then
    F16DIR="$DATA/f16"
    mkdir -p "$F16DIR"
    experts16=()
    for f in base.safetensors "${experts[@]##*/}"; do
        if [ ! -f "$F16DIR/$f" ]; then
            "$ACEM" merge --method average --out-dtype f16 --base "$DATA/$f" -o "$F16DIR/$f" "$DATA/$f" -q
        fi
        [ "$f" = base.safetensors ] || experts16+=("$F16DIR/$f")
    done
    first16=""
    for n in $THREADS; do
        for ((r = 1; r <= REPS; ++r)); do
            run "acem16-$n" "$ACEM" merge --method ace --base "$F16DIR/base.safetensors" \
                -o "$OUT/out16_t$n.safetensors" "${experts16[@]}" --threads "$n" -q
        done
        if [ -z "$first16" ]; then
            first16=$n
        else
            same_bits "acem output from the F16 files" "$first16" "$n" "$OUT/out16_t$first16.safetensors" "$OUT/out16_t$n.safetensors"
        fi
    done
fi
t_total=$(( $(date +%s) - t_start ))
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ------------------------------------------------------------------
{
    echo "whole merge: acem merge --method ace vs bench/ref_ace_torch.py (PyTorch), same files, same threads"
    echo "date $(date '+%Y-%m-%d %H:%M'); machine: $machine; load average $load0 (start) / $load1 (end)"
    echo "acem: $("$ACEM" --version 2>&1 | head -n 1) ($ACEM_SRC, sha256 $acem_sum); torch: $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)," \
         "$(cat "$tmp"/torch-*.log 2>/dev/null | grep -o 'OpenBLAS [A-Za-z0-9]*' | tail -n 1 || true)" \
         "(OPENBLAS_CORETYPE=$TORCH_CORETYPE)"
    nparam=$("$PY" -c "
import sys; sys.path.insert(0, 'bench'); import st_io, numpy as np
_, h = st_io.read_header('$DATA/base.safetensors')
print('%d tensors, %.1f M parameters' % (len(h), sum(int(np.prod(v['shape'])) for v in h.values()) / 1e6))")
    echo "inputs: $DATA: base + $EXPERTS experts, F32, $nparam each;" \
         "$(grep -c 'gated$' "$DATA/gates.txt") of $(wc -l <"$DATA/gates.txt") matrices gate"
    echo "runs: median of $REPS acem runs and $TORCH_REPS torch run(s) per thread count (min..max in brackets); total ${t_total} s"
    echo
    printf "%-8s %-26s %-11s %-26s %-11s %-9s %-9s\n" threads "acem wall s" "acem RSS" "torch wall s" "torch RSS" speed-up memory
    # seconds as "median [min..max]", rounded by awk like the summary rows
    # (the shell's printf rounds 30.45 up, awk's 30.4: one value, two numbers)
    secs() { awk -v a="$1" -v b="$2" -v c="$3" 'BEGIN { printf "%.1f [%.1f..%.1f]", a, b, c }'; }
    for n in $THREADS; do
        read -r am amin amax an < <(stat "$tmp/acem-$n.times" 1)
        read -r arss _ _ _ < <(stat "$tmp/acem-$n.times" 2)
        if [ "$SKIP_TORCH" != 1 ]; then
            read -r tm tmin tmax tn < <(stat "$tmp/torch-$n.times" 1)
            read -r trss _ _ _ < <(stat "$tmp/torch-$n.times" 2)
            printf "%-8s %-26s %-11s %-26s %-11s %-9s %-9s\n" "$n" \
                "$(secs "$am" "$amin" "$amax")" "$(awk -v k="$arss" 'BEGIN { printf "%.0f MiB", k / 1024 }')" \
                "$(secs "$tm" "$tmin" "$tmax")" "$(awk -v k="$trss" 'BEGIN { printf "%.0f MiB", k / 1024 }')" \
                "$(awk -v a="$am" -v t="$tm" 'BEGIN { printf "%.2fx", t / a }')" \
                "$(awk -v a="$arss" -v t="$trss" 'BEGIN { printf "%.1f%%", 100 * a / t }')"
        else
            printf "%-8s %-26s %-11s %-26s %-11s %-9s %-9s\n" "$n" \
                "$(secs "$am" "$amin" "$amax")" "$(awk -v k="$arss" 'BEGIN { printf "%.0f MiB", k / 1024 }')" \
                "-" "-" "-" "-"
        fi
    done
    if [ "$F16" = 1 ]; then
        echo
        printf "%-8s %-26s %-11s %-26s %-9s\n" threads "acem, F16 files: wall s" "acem RSS" "acem, F32 files: wall s" "F16 vs F32"
        for n in $THREADS; do
            read -r hm hmin hmax _ < <(stat "$tmp/acem16-$n.times" 1)
            read -r hrss _ _ _ < <(stat "$tmp/acem16-$n.times" 2)
            read -r am amin amax _ < <(stat "$tmp/acem-$n.times" 1)
            printf "%-8s %-26s %-11s %-26s %-9s\n" "$n" "$(secs "$hm" "$hmin" "$hmax")" \
                "$(awk -v k="$hrss" 'BEGIN { printf "%.0f MiB", k / 1024 }')" "$(secs "$am" "$amin" "$amax")" \
                "$(awk -v a="$am" -v h="$hm" 'BEGIN { printf "%.2fx", a / h }')"
        done
        echo "(the same model and experts stored as F16, F16 output; F16 vs F32 = F32 wall time / F16 wall time)"
    fi
    echo
    echo "speed-up = torch wall time / acem wall time (target >= 3); memory = acem peak RSS / torch peak RSS (target <= 25%)"
    set -- $THREADS
    if [ $# -ge 2 ]; then
        read -r a1 _ _ _ < <(stat "$tmp/$rl-$1.times" 1)
        read -r i1 _ _ _ < <(stat "$tmp/acem-$1.times" 1)
        for n in "${@:2}"; do
            read -r an _ _ _ < <(stat "$tmp/$rl-$n.times" 1)
            read -r in _ _ _ < <(stat "$tmp/acem-$n.times" 1)
            if [ "$rl" = pair ]; then
                read -r _ p1min p1max _ < <(stat "$tmp/pair-$1.times" 1)
                read -r _ pnmin pnmax _ < <(stat "$tmp/pair-$n.times" 1)
                echo "acem $n threads vs $1, $PAIRS rounds run back to back: $(secs "$an" "$pnmin" "$pnmax") vs $(secs "$a1" "$p1min" "$p1max"):" \
                     "$(awk -v a="$a1" -v b="$an" 'BEGIN { printf "%.2fx", a / b }') (target >= 1.7 for 2 vs 1);" \
                     "from the runs interleaved with torch above: $(awk -v a="$i1" -v b="$in" 'BEGIN { printf "%.2fx", a / b }')"
            else
                echo "acem $n threads vs $1: $(awk -v a="$a1" -v b="$an" 'BEGIN { printf "%.2fx", a / b }') (target >= 1.7 for 2 vs 1)"
            fi
        done
    fi
    echo
    echo "targets:"
    for n in $THREADS; do
        [ "$SKIP_TORCH" != 1 ] || break
        read -r am _ _ _ < <(stat "$tmp/acem-$n.times" 1)
        read -r arss _ _ _ < <(stat "$tmp/acem-$n.times" 2)
        read -r tm _ _ _ < <(stat "$tmp/torch-$n.times" 1)
        read -r trss _ _ _ < <(stat "$tmp/torch-$n.times" 2)
        awk -v n="$n" -v a="$am" -v t="$tm" -v ar="$arss" -v tr="$trss" 'BEGIN {
            printf "  %s thread(s): speed-up %.2fx >= 3: %s; memory %.1f%% <= 25%%: %s\n", n, t / a,
                   (t / a >= 3 ? "met" : "MISSED"), 100 * ar / tr, (ar / tr <= 0.25 ? "met" : "MISSED") }'
    done
    if [ "$(echo $THREADS)" != "${THREADS%% *}" ]; then
        read -r a1 _ _ _ < <(stat "$tmp/$rl-$1.times" 1)
        read -r a2 _ _ _ < <(stat "$tmp/$rl-$2.times" 1)
        awk -v a="$a1" -v b="$a2" -v n1="$1" -v n2="$2" 'BEGIN {
            printf "  acem %s vs %s thread(s): %.2fx >= 1.7: %s\n", n2, n1, a / b, (a / b >= 1.7 ? "met" : "MISSED") }'
    fi
    echo
    echo "agreement (bench/compare.py: relative Frobenius difference per tensor, of the tensor and of the update merged - base):"
    for l in "${compare_lines[@]}"; do echo "  $l"; done
    echo
    echo "details (last run of each):"
    for f in "$tmp"/*.log; do [ -s "$f" ] && echo "  $(basename "$f" .log): $(tail -n 1 "$f")"; done
    echo
    echo "commands:"
    echo "  /usr/bin/time -v $ACEM_SRC merge --method ace --base $DATA/base.safetensors -o OUT $DATA/e{1..$EXPERTS}.safetensors --threads N -q"
    echo "  /usr/bin/time -v ${torch_env[*]} $PY bench/ref_ace_torch.py --base $DATA/base.safetensors -o OUT $DATA/e{1..$EXPERTS}.safetensors --threads N"
    [ "$F16" != 1 ] || echo "  /usr/bin/time -v $ACEM_SRC merge --method ace --base $DATA/f16/base.safetensors -o OUT $DATA/f16/e{1..$EXPERTS}.safetensors --threads N -q"
} >"$tmp/table.txt"
# ---- rows for make bench's table (bench/rows.h) -----------------------------------
if [ -n "${ACEM_BENCH_ROWS:-}" ]; then
    shape="GPT-2 small, $EXPERTS experts, F32"
    set -- $THREADS
    for n in $THREADS; do
        read -r am _ _ _ < <(stat "$tmp/acem-$n.times" 1)
        read -r arss _ _ _ < <(stat "$tmp/acem-$n.times" 2)
        [ "$SKIP_TORCH" != 1 ] || continue
        read -r tm _ _ _ < <(stat "$tmp/torch-$n.times" 1)
        read -r trss _ _ _ < <(stat "$tmp/torch-$n.times" 2)
        awk -v n="$n" -v a="$am" -v t="$tm" -v ar="$arss" -v tr="$trss" -v sh="$shape" 'BEGIN {
            printf "whole merge\tace merge vs PyTorch\t%s\t%.1f s\t%.1f s\t%.3f\t%s\t3.00\tmedian wall time\n", sh, a, t, t / a, n
            printf "whole merge\tpeak RSS vs PyTorch\t%s\t%.0f MiB\t%.0f MiB\t%.3f\t%s\t4.00\t<= 25%% of the reference\n", sh, ar / 1024, tr / 1024, tr / ar, n }' \
            >>"$ACEM_BENCH_ROWS"
    done
    if [ $# -ge 2 ]; then
        read -r a1 _ _ _ < <(stat "$tmp/$rl-$1.times" 1)
        read -r a2 _ _ _ < <(stat "$tmp/$rl-$2.times" 1)
        same=$(printf '%s\n' "${compare_lines[@]}" | grep -q "^acem output with .*bitwise identical" && echo "output bitwise identical" || echo "OUTPUT DIFFERS")
        [ "$rl" != pair ] || same="$same; runs back to back"
        awk -v a="$a1" -v b="$a2" -v n1="$1" -v n2="$2" -v sh="$shape" -v same="$same" 'BEGIN {
            printf "whole merge\tace merge, %s vs %s thread(s)\t%s\t%.1f s\t%.1f s\t%.3f\t%s\t%s\t%s\n", n2, n1, sh, b, a, a / b, n2,
                   (n1 == 1 && n2 == 2) ? "1.70" : "0.00", same }' >>"$ACEM_BENCH_ROWS"
    fi
    if [ "$F16" = 1 ]; then
        for n in $THREADS; do
            read -r hm _ _ _ < <(stat "$tmp/acem16-$n.times" 1)
            read -r am _ _ _ < <(stat "$tmp/acem-$n.times" 1)
            awk -v n="$n" -v a="$am" -v h="$hm" -v sh="GPT-2 small, $EXPERTS experts, F16" 'BEGIN {
                printf "whole merge\tace merge, F16 files vs F32 files\t%s\t%.1f s\t%.1f s (acem, F32 files)\t%.3f\t%s\t0.00\tF16 output\n", sh, h, a, a / h, n }' \
                >>"$ACEM_BENCH_ROWS"
        done
    fi
    if [ "$SKIP_TORCH" != 1 ]; then
        v=$(printf '%s\n' "${compare_lines[@]}" | grep -c "acem vs torch: ok" || true)
        printf 'whole merge\toutputs agree with PyTorch\t%s\t%s of %s thread counts\t1e-4 per tensor\t%s\t-\t0.00\tbench/compare.py\n' \
            "$shape" "$v" "$(echo $THREADS | wc -w)" "$( [ "$v" = "$(echo $THREADS | wc -w)" ] && echo 1 || echo 0)" >>"$ACEM_BENCH_ROWS"
    fi
fi
cp "$tmp/table.txt" "$RESULTS/whole-merge-$date_tag.txt"
cat "$tmp/table.txt"
echo "(saved as $RESULTS/whole-merge-$date_tag.txt)"
