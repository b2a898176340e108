# tests/cli_lib.sh - the shared harness of the CLI test scripts (sourced).
# The caller sets ACEM (the acem binary) and LOG (a scratch log file) and works
# in its scratch directory; o/ there is the output directory expect_error checks.
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
