#!/usr/bin/env bash
# tests/run.sh - run the test programs and sum their results.
#
#   tests/run.sh [COMMAND | FILE.result]...
#
# Each COMMAND (one argument, split on blanks: a test binary, or e.g.
# "node tests/wasm/run.mjs build/acem.wasm wasm") is run with its output in
# build/logs/; it must print a line "<name>: N passed, N failed" (tests/testing.h
# does). A program built as build/<variant>/<prog> is reported as
# "<variant>/<name>" (BUILD: the build directory, default build). A program that crashes, times out or prints no such line
# counts as 1 failed; one that exits non-zero while reporting 0 failed (a
# sanitizer report at exit, say) gets 1 failed added.
#
# Each FILE.result (written by tests/compile/check.sh: "pass" or "fail") is one
# compile-matrix test; together they are reported as "compile: N passed, N failed".
#
# The very last line is the total, "N passed, N failed"; the exit status is
# non-zero if anything failed. Environment: JOBS (parallel programs, default: the
# number of cores), TEST_TIMEOUT (seconds per program, default 600), BUILD,
# LOGDIR (default $BUILD/logs).
set -u

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
BUILD=${BUILD:-build}
LOGDIR=${LOGDIR:-$BUILD/logs}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cmds=()
results=()
for a in "$@"; do
    case $a in
        *.result) results+=("$a") ;;
        *) cmds+=("$a") ;;
    esac
done

mkdir -p "$LOGDIR"
logname() { local s=${1//[^A-Za-z0-9._-]/_}; echo "$LOGDIR/${s#_}"; }

# ---- run the programs, JOBS at a time ------------------------------------------
TO=()
command -v timeout >/dev/null 2>&1 && TO=(timeout -k 10 "$TEST_TIMEOUT")
for c in "${cmds[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n 2>/dev/null || true; done
    log=$(logname "$c")
    rm -f "$log.log" "$log.rc"
    (
        read -r -a argv <<<"$c"
        if [ -x "${argv[0]}" ] || command -v "${argv[0]}" >/dev/null 2>&1; then
            "${TO[@]}" "${argv[@]}" >"$log.log" 2>&1 </dev/null
            echo $? >"$log.rc"
        else
            echo "not built: ${argv[0]}" >"$log.log"
            echo 127 >"$log.rc"
        fi
    ) 2>>"$log.log" &
done
wait

# ---- collect -----------------------------------------------------------------------
total_p=0
total_f=0
for c in "${cmds[@]}"; do
    log=$(logname "$c")
    rc=$(cat "$log.rc" 2>/dev/null || echo 255)
    line=$(grep -E '^[^ :]+: [0-9]+ passed, [0-9]+ failed$' "$log.log" 2>/dev/null | tail -n 1)
    read -r -a argv <<<"$c"
    # $BUILD/<variant>/<prog> -> "<variant>/"
    prefix=
    case ${argv[0]} in "$BUILD"/*/*) prefix=$(basename "$(dirname "${argv[0]}")")/ ;; esac
    if [ -n "$line" ]; then
        name=${line%%:*}
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.*, ([0-9]+) failed$/\1/' <<<"$line")
        note=
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; note="exit status $rc after reporting 0 failed"; fi
    else
        name=$(basename "${argv[0]}")
        [ "${#argv[@]}" -gt 1 ] && name=$(basename "${argv[-1]}")
        p=0
        f=1
        case $rc in
            124|137) note="timed out after ${TEST_TIMEOUT}s" ;;
            127) note=$(head -n 1 "$log.log") ;;
            *) if [ "$rc" -gt 128 ] 2>/dev/null; then
                   note="no result line (killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
               else
                   note="no result line (exit status $rc)"
               fi ;;
        esac
    fi
    if [ "$f" != 0 ]; then
        echo "---- $prefix$name: $c (log: $log.log)"
        [ -n "$note" ] && echo "     $note"
        # the FAIL lines, then the end of the log (sanitizer reports, crashes)
        grep -m 40 '^FAIL' "$log.log" | sed 's/^/     /'
        grep -v '^FAIL' "$log.log" | tail -n 25 | sed 's/^/   | /'
    fi
    echo "$prefix$name: $p passed, $f failed"
    total_p=$((total_p + p))
    total_f=$((total_f + f))
done

if [ "${#results[@]}" -gt 0 ]; then
    cp=0
    cf=0
    for r in "${results[@]}"; do
        n=$(basename "$r" .result)
        if [ "$(cat "$r" 2>/dev/null)" = pass ]; then
            cp=$((cp + 1))
        else
            cf=$((cf + 1))
            echo "---- compile/$n failed (log: ${r%.result}.log)"
            if [ -f "${r%.result}.log" ]; then
                tail -n 30 "${r%.result}.log" | sed 's/^/   | /'
            else
                echo "     did not run"
            fi
        fi
    done
    echo "compile: $cp passed, $cf failed"
    total_p=$((total_p + cp))
    total_f=$((total_f + cf))
fi

echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
