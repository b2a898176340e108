#!/usr/bin/env bash
# tools/deps.sh - install, only if missing, the Debian packages `make test` needs:
#   g++ make clang lld wasi-libc nodejs libopenblas-dev liblapacke-dev
#   libclang-rt-<llvm>-dev-wasm32
#   (libopenblas-dev, liblapacke-dev: the ACEM_USE_CBLAS + ACEM_USE_LAPACK test
#   variant links OpenBLAS and LAPACKE)
# (clang + lld build the freestanding WebAssembly test, Node runs it; the
# compiler-rt wasm32 builtins are linked if clang ever needs them).
# Quick when everything is present (one dpkg-query). Missing packages: as root,
# `apt-get update` then a non-interactive `apt-get install`; otherwise prints the
# command to run and exits non-zero. On a system without dpkg it only checks that
# the commands exist.
set -euo pipefail

base_pkgs=(g++ make clang lld wasi-libc nodejs libopenblas-dev liblapacke-dev)

if ! command -v dpkg-query >/dev/null 2>&1; then
    miss=()
    for c in cc c++ make clang wasm-ld node; do
        command -v "$c" >/dev/null 2>&1 || miss+=("$c")
    done
    if [ "${#miss[@]}" -gt 0 ]; then
        echo "deps: missing commands: ${miss[*]} (not a Debian system: install a C/C++" \
             "compiler, make, clang with wasm-ld (lld) and Node.js)" >&2
        exit 1
    fi
    echo "deps: ok (no dpkg; commands present)"
    exit 0
fi

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
        echo "deps: missing packages: $*" >&2
        echo "deps: run as root:  apt-get update && apt-get install -y --no-install-recommends $*" >&2
        exit 1
    fi
    echo "deps: installing: $*"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -q -o DPkg::Lock::Timeout=600)
    if [ -z "${DEPS_UPDATED:-}" ]; then
        "${apt[@]}" update >/dev/null
        DEPS_UPDATED=1
    fi
    "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null
    echo "deps: installed: $*"
}

want=("${base_pkgs[@]}")
command -v clang >/dev/null 2>&1 && want+=("$(rt_pkg)")
mapfile -t need < <(missing "${want[@]}")
if [ "${#need[@]}" -eq 0 ]; then
    echo "deps: ok (${want[*]} installed)"
    exit 0
fi
apt_install "${need[@]}"
# clang was just installed: now its version names the compiler-rt package
mapfile -t need < <(missing "$(rt_pkg)")
[ "${#need[@]}" -eq 0 ] || apt_install "${need[@]}"
echo "deps: ok"
