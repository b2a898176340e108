#!/usr/bin/env bash
# tools/deps.sh [test|bench] - install, only if missing, the Debian packages that
# `make test` (the default) or `make bench` needs:
#   test:  g++ make clang lld wasi-libc nodejs libopenblas-dev liblapacke-dev
#          libclang-rt-<llvm>-dev-wasm32, and npm if nodejs came without it
#          (clang + lld build the freestanding WebAssembly test, Node runs it;
#          npm installs the GGUF parser the CLI test compares acem with;
#          the compiler-rt wasm32 builtins are linked if clang ever needs them;
#          OpenBLAS and LAPACKE: the ACEM_USE_CBLAS + ACEM_USE_LAPACK variant)
#   bench: python3-numpy python3-torch time libopenblas-dev liblapacke-dev
#          (PyTorch: the whole-merge reference; OpenBLAS and LAPACKE: the
#          reference of the kernel benchmarks; GNU time: peak memory)
# Quick when everything is present (one dpkg-query). Missing packages: as root,
# `apt-get update` then a non-interactive `apt-get install` (waiting for the dpkg
# lock); otherwise prints the command to run and exits non-zero. On a system
# without dpkg it only checks that the commands (and, for bench, Python's numpy
# and torch) are there.
set -euo pipefail

set_name=${1:-test}
case "$set_name" in
test)
    tag="deps"
    pkgs=(g++ make clang lld wasi-libc nodejs libopenblas-dev liblapacke-dev)
    apt_opts=(--no-install-recommends)
    lock_s=600
    ;;
bench)
    tag="bench deps"
    pkgs=(python3-numpy python3-torch time libopenblas-dev liblapacke-dev)
    apt_opts=() # python3-torch with its recommends, as it has always been installed
    lock_s=1200
    ;;
*)
    echo "usage: tools/deps.sh [test|bench]" >&2
    exit 1
    ;;
esac

# without dpkg: only check that what the set uses is there
no_dpkg_check() {
    local miss=() c
    if [ "$set_name" = test ]; then
        for c in cc c++ make clang wasm-ld node npm; do
            command -v "$c" >/dev/null 2>&1 || miss+=("$c")
        done
        [ "${#miss[@]}" -eq 0 ] || {
            echo "$tag: missing commands: ${miss[*]} (not a Debian system: install a C/C++" \
                 "compiler, make, clang with wasm-ld (lld), Node.js and npm)" >&2
            exit 1
        }
        echo "$tag: ok (no dpkg; commands present)"
    else
        /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null && [ -x /usr/bin/time ] || {
            echo "$tag: need /usr/bin/python3 with numpy and torch, and GNU time in /usr/bin/time" >&2
            exit 1
        }
        echo "$tag: ok (no dpkg; numpy, torch and /usr/bin/time present)"
    fi
    exit 0
}
command -v dpkg-query >/dev/null 2>&1 || no_dpkg_check

# the wasm32 compiler-rt package follows clang's major version (14 on Debian 12)
rt_pkg() {
    local v
    v=$(clang -dumpversion 2>/dev/null | cut -d. -f1 || true)
    echo "libclang-rt-${v:-14}-dev-wasm32"
}

missing() {
    local ok
    ok=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null |
         awk '$2 == "ii" { print $1 }' || true)
    for p in "$@"; do
        grep -qxF "$p" <<<"$ok" || echo "$p"
    done
}

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "$tag: missing packages: $*" >&2
        echo "$tag: run as root:  apt-get update && apt-get install -y ${apt_opts[*]:+${apt_opts[*]} }$*" >&2
        exit 1
    fi
    echo "$tag: installing: $*"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -q -o DPkg::Lock::Timeout=$lock_s)
    if [ -z "${DEPS_UPDATED:-}" ]; then
        "${apt[@]}" update >/dev/null
        DEPS_UPDATED=1
    fi
    "${apt[@]}" install -y ${apt_opts[@]+"${apt_opts[@]}"} "$@" >/dev/null
    echo "$tag: installed: $*"
}

# Debian's nodejs comes without npm (NodeSource's includes it)
npm_check() {
    [ "$set_name" != test ] || command -v npm >/dev/null 2>&1 || apt_install npm
}

want=("${pkgs[@]}")
[ "$set_name" = test ] && command -v clang >/dev/null 2>&1 && want+=("$(rt_pkg)")
mapfile -t need < <(missing "${want[@]}")
if [ "${#need[@]}" -eq 0 ]; then
    npm_check
    echo "$tag: ok (${want[*]} installed)"
    exit 0
fi
apt_install "${need[@]}"
if [ "$set_name" = test ]; then
    # clang was just installed: now its version names the compiler-rt package
    mapfile -t need < <(missing "$(rt_pkg)")
    [ "${#need[@]}" -eq 0 ] || apt_install "${need[@]}"
fi
npm_check
echo "$tag: ok"
