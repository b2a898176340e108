# tests/cli_lib.sh - the shared harness of the CLI test scripts (sourced).
# The caller checks its programs (cli_require), moves into a scratch directory
# (cli_scratch: sets W and LOG) and sets ACEM (the acem binary); o/ there is the
# output directory expect_error checks.
# cli_require NAME PROGRAM...: each PROGRAM must be built; else the script
# reports "NAME: 0 passed, 1 failed" and exits
cli_require() {
    local name=$1 p
    shift
    for p in "$@"; do
        if [ ! -x "$p" ]; then
            echo "FAIL: $p is not built (make $p)"
            echo "$name: 0 passed, 1 failed"
            exit 1
        fi
    done
}
# cli_scratch PREFIX: cd into a new temporary directory W (removed at exit); LOG
# is a log file there
cli_scratch() {
    W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap 'rm -rf "$W"' EXIT
    cd "$W" || exit 1
    LOG=$W/log
}
passed=0
failed=0
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
    [ -s "$LOG" ] && tail -n 8 "$LOG" | sed 's/^/    | /'
}
pass() { passed=$((passed + 1)); }
# t DESCRIPTION COMMAND...: the command must succeed (output in $LOG)
t() {
    local d=$1
    shift
    if "$@" >"$LOG" 2>&1; then pass; else fail "$d (exit $?)"; fi
}
# expect_error DESCRIPTION CODE 'TEXT1|TEXT2' ACEM-ARGS...: acem must exit with CODE,
# print every TEXT on stderr, and leave the scratch output directory o/ empty
# (no output file, no temporary).
expect_error() {
    local d=$1 code=$2 texts=$3 rc x ok=1
    shift 3
    rm -rf o && mkdir o
    "$ACEM" "$@" >"$LOG" 2>&1
    rc=$?
    if [ "$rc" != "$code" ]; then fail "$d: exit $rc, expected $code"; return; fi
    IFS='|' read -r -a words <<<"$texts"
    for x in "${words[@]}"; do
        if ! grep -qF -- "$x" "$LOG"; then fail "$d: the message does not name '$x'"; ok=0; fi
    done
    if [ -n "$(ls -A o)" ]; then fail "$d: left files behind: $(ls -A o | tr '\n' ' ')"; ok=0; fi
    [ $ok = 1 ] && pass
}
