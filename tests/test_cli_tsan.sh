#!/usr/bin/env bash
# tests/test_cli_tsan.sh [BUILD_DIR] - the CLI's threads under ThreadSanitizer.
#
# Needs BUILD_DIR/tsan/acem (tools/acem.c built with -fsanitize=thread; `make
# test` builds it), BUILD_DIR/acem and BUILD_DIR/cli_gen. Merges with 2 and 3
# threads (the pool, whose idle threads watch its counters before they sleep;
# the reader, which shares a read's 1 MiB pieces with the thread waiting for
# it; the write-behind thread) must report no data race and give the bytes of
# the ordinary build's 1-thread run. Prints "test_cli_tsan: N passed, N failed".
set -u
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
B=${1:-build}
. "$TESTS_DIR/cli_lib.sh"
cli_require test_cli_tsan "$B/tsan/acem" "$B/acem" "$B/cli_gen"
TSAN=$(cd "$B/tsan" && pwd)/acem
ACEM=$(cd "$B" && pwd)/acem
GEN=$(cd "$B" && pwd)/cli_gen
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
cli_scratch acem_tsan

t "cli_gen" "$GEN" .
t "cli_gen --big" "$GEN" --big .
E3="e1.safetensors e2.safetensors e3.safetensors"
BIG="big_e1.safetensors big_e2.safetensors"
for m in ace ties average; do
    for set in small big; do
        if [ $set = small ]; then base=base.safetensors; ex=$E3; else base=big_base.safetensors; ex=$BIG; fi
        "$ACEM" merge -q --method $m --threads 1 --base $base -o ref_${set}_$m.safetensors $ex >"$LOG" 2>&1 ||
            fail "$set $m: the 1-thread reference run (exit $?)"
        for n in 2 3; do
            t "$set, $m, --threads $n under ThreadSanitizer: no race, the 1-thread bytes" sh -c \
                "'$TSAN' merge -q --method $m --threads $n --base $base -o t.safetensors $ex &&
                 cmp -s t.safetensors ref_${set}_$m.safetensors"
        done
    done
done
echo "test_cli_tsan: $passed passed, $failed failed"
[ "$failed" = 0 ]
