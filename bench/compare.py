#!/usr/bin/python3
"""bench/compare.py - per-tensor agreement of two merged safetensors files.

    /usr/bin/python3 bench/compare.py A.safetensors B.safetensors [--tol 1e-4]
        [--base BASE.safetensors] [--gates GATES.txt] [--all]

For every tensor (same names, shapes required) prints nothing unless it fails,
then a summary: the largest relative Frobenius difference
||A - B||_F / ||B||_F (B is the reference) over all tensors, and the worst ones.
With --base the difference is also measured relative to the merge *update*
||B - base||_F (the part the merge computed: the base is identical in both
outputs and, being much larger than the update of an un-gated layer, would hide
errors in it); for this figure, element differences up to one float32 ulp of the
output are not counted: they are the final rounding of base + update, and which
way it goes depends on summation order (layer norms: base ~1, update ~1e-4). A tensor passes when it is finite and its relative difference
is <= --tol (default 1e-4, the issue's "outputs agreeing to 1e-4 relative per
tensor"), and, with --base, its update-relative difference too (stricter). --gates marks gated tensors (gen_gpt2.py's gates.txt).
Exit status 0 when every tensor passes, 1 otherwise.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b", help="reference")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--base")
    ap.add_argument("--gates")
    ap.add_argument("--all", action="store_true", help="print every tensor")
    x = ap.parse_args()
    A, B = st_io.load(x.a), st_io.load(x.b)
    base = st_io.load(x.base) if x.base else None
    gated = set()
    if x.gates:
        for line in open(x.gates):
            f = line.split()
            if f and f[-1] == "gated":
                gated.add(f[0])
    bad = 0
    rows = []
    if set(A) != set(B):
        print("compare: tensor names differ: only in A %s, only in B %s"
              % (sorted(set(A) - set(B))[:5], sorted(set(B) - set(A))[:5]))
        bad += 1
    for name in B:
        if name not in A:
            continue
        a = np.asarray(A[name], dtype=np.float64)
        b = np.asarray(B[name], dtype=np.float64)
        if a.shape != b.shape:
            print("compare: %s: shape %s vs %s" % (name, a.shape, b.shape))
            bad += 1
            continue
        nb = np.linalg.norm(b)
        d = np.linalg.norm(a - b)
        r = d / nb if nb > 0 else (0.0 if d == 0 else np.inf)
        ru = float("nan")
        if base is not None:
            # differences within one float32 ulp of the output are the rounding of
            # base + update to float32 (which ulp is hit depends on summation order):
            # only what exceeds it counts against the update
            ulp = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float32)).astype(np.float64)
            dx = np.linalg.norm(np.maximum(np.abs(a - b) - ulp, 0.0))
            nu = np.linalg.norm(b - np.asarray(base[name], dtype=np.float64))
            ru = dx / nu if nu > 0 else (0.0 if dx == 0 else np.inf)
        ok = bool(np.isfinite(a).all()) and r <= x.tol and (base is None or ru <= x.tol)
        rule = "gated" if name in gated else ("ace" if a.ndim == 2 else "mean")
        rows.append((r, ru, name, a.shape, rule, ok))
        bad += not ok
    for r, ru, name, shape, rule, ok in rows:
        if x.all or not ok:
            print("  %-28s %-11s %-6s rel %.2e  rel-to-update(>1ulp) %.2e  %s" % (
                name, "x".join(map(str, shape)), rule, r, ru, "ok" if ok else "FAIL"))
    rows.sort(reverse=True)
    worst = rows[:3]
    print("compare: %d tensors, %d above %.0e; worst: %s" % (
        len(rows), bad, x.tol,
        ", ".join("%s (%s) %.2e [update %.2e]" % (n, rule, r, ru)
                  for r, ru, n, _, rule, _ in worst)))
    for rule in ("gated", "ace", "mean"):
        sel = [r for r in rows if r[4] == rule]
        if sel:
            print("compare:   %-5s %3d tensors, max rel %.2e, max rel-to-update (beyond 1 ulp) %.2e" % (
                rule, len(sel), max(r[0] for r in sel), max(r[1] for r in sel)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
