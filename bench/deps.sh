#!/usr/bin/env bash
# bench/deps.sh - install, only if missing, the Debian packages the whole-merge
# benchmark needs (only `make bench` calls this; `make test` never does):
#   python3-numpy python3-torch time libopenblas-dev liblapacke-dev
# (OpenBLAS and LAPACKE: the reference of the kernel benchmarks)
# Quick when everything is present (one dpkg-query). As root, missing packages
# are installed with apt-get (waiting for the dpkg lock); otherwise the command
# to run is printed and the script exits non-zero. Without dpkg it only checks
# that /usr/bin/python3 can import numpy and torch and that /usr/bin/time exists.
set -euo pipefail

pkgs=(python3-numpy python3-torch time libopenblas-dev liblapacke-dev)

if ! command -v dpkg-query >/dev/null 2>&1; then
    if /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null && [ -x /usr/bin/time ]; then
        echo "bench deps: ok (no dpkg; numpy, torch and /usr/bin/time present)"
        exit 0
    fi
    echo "bench deps: need /usr/bin/python3 with numpy and torch, and GNU time in /usr/bin/time" >&2
    exit 1
fi

ok=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null |
     awk '$2 == "ii" { print $1 }' || true)
need=()
for p in "${pkgs[@]}"; do
    grep -qxF "$p" <<<"$ok" || need+=("$p")
done
if [ "${#need[@]}" -eq 0 ]; then
    echo "bench deps: ok (${pkgs[*]} installed)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench deps: missing packages: ${need[*]}" >&2
    echo "bench deps: run as root:  apt-get update && apt-get install -y ${need[*]}" >&2
    exit 1
fi
echo "bench deps: installing: ${need[*]} (python3-torch is large: a few minutes)"
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=1200)
"${apt[@]}" update >/dev/null
"${apt[@]}" install -y "${need[@]}" >/dev/null
echo "bench deps: installed: ${need[*]}"
