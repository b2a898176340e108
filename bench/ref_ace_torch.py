#!/usr/bin/python3
"""bench/ref_ace_torch.py - the reference ACE-Merging (`ace_merging`) transcribed to PyTorch.

    /usr/bin/python3 bench/ref_ace_torch.py --base BASE.safetensors -o OUT.safetensors \
        EXPERT.safetensors... [--threads N] [--eps 1e-2] [--tau 0.3] [--k-frac 0.3] [-q]
    /usr/bin/python3 bench/ref_ace_torch.py --selftest

This is the baseline the whole-merge benchmark (bench/whole_merge.sh) compares
`acem merge --method ace` with. It is written the way a PyTorch user writes the
reference implementation (see ../shared/spec/ace-merging.md, steps 1-6 with every
quirk), not tuned:

  * the base and ALL experts are loaded fully into memory as state dicts;
  * per tensor, the deltas of all experts are formed, then the T covariance
    proxies Sigma_t (C x C each) and their regularised versions are kept in lists;
  * W_pre = B A^-1 with A = A0 + 1 m^T via torch.linalg.solve (general LU);
  * the refinement takes torch.linalg.svd(F, full_matrices=False) of the whole
    R x C matrix F and adds sigma_iso * U_k V_k^T for k = floor(min(R, C) * k_frac);
  * float32 compute (--float64: float64 compute, float32 output, for accuracy
    checks; the selftest runs both).

Rules: tensors that are not 2-D, or whose name contains "text_projection", get
the mean of the deltas; 2-D tensors the ACE layer rule. lambda = 1. T = 1 returns
the expert's delta. eps 1e-2, tau 0.3, k_frac 0.3, guard g = 1e-12 as in the
reference; like the reference it would return NaN when k = 0 (never for GPT-2).

--threads N sets torch.set_num_threads(N) and, before torch is imported,
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS (Debian's torch calls
OpenBLAS for matrix products and LAPACK; the environment variables are what
bound its threads). The output is written with bench/st_io.py, tensors in the
base file's order.

--selftest runs the two reference test vectors of the spec ("Reference test
vectors", T = 3, 4 x 5) in float64 and float32 and checks M (and W_pre, sigma_iso
for the gated case) to 1e-5 relative Frobenius.
"""
import argparse
import math
import os
import sys
import time

G = 1e-12


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--base")
    ap.add_argument("-o", "--output")
    ap.add_argument("experts", nargs="*")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eps", type=float, default=1e-2)
    ap.add_argument("--tau", type=float, default=0.3)
    ap.add_argument("--k-frac", type=float, default=0.3)
    ap.add_argument("--float64", action="store_true",
                    help="compute in float64 instead of float32 (accuracy checks)")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args()
    if not a.selftest and (not a.base or not a.output or not a.experts):
        ap.error("--base, -o and at least one expert are required (or --selftest)")
    return a


ARGS = parse()
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

torch.set_num_threads(ARGS.threads)


def blas_core():
    """The kernel set OpenBLAS (behind Debian's torch) selected, if it is OpenBLAS."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return "OpenBLAS " + lib.openblas_get_corename().decode()
    except Exception:  # noqa: BLE001 - informational only
        return "BLAS unknown"


# ---- state dicts ------------------------------------------------------------------
def load_state_dict(path):
    """Whole file into memory, one tensor per entry (like safetensors' load_file)."""
    start, hdr = st_io.read_header(path)
    buf = bytearray(os.path.getsize(path))
    with open(path, "rb") as f:
        f.readinto(buf)
    sd = {}
    for name, d in hdr.items():
        b, e = d["data_offsets"]
        dt = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
              "BF16": torch.bfloat16}[d["dtype"]]
        t = torch.frombuffer(buf, dtype=dt, count=(e - b) // (torch.finfo(dt).bits // 8),
                             offset=start + b) if e > b else torch.empty(0, dtype=dt)
        sd[name] = t.reshape(d["shape"])
    return sd


def save_state_dict(sd, path):
    st_io.save(path, {k: v.detach().cpu().numpy() for k, v in sd.items()})


# ---- ACE (reference `ace_merging`, one layer) ---------------------------------------
def ace_layer(deltas, eps=1e-2, tau=0.3, k_frac=0.3, info=None):
    """deltas: list of T tensors R x C (float). Returns M (R x C)."""
    T = len(deltas)
    if T == 1:
        return deltas[0].clone()
    R, C = deltas[0].shape
    dev, dt = deltas[0].device, deltas[0].dtype

    # 1. heterogeneity gate on the uncentred deltas
    norms = torch.stack([d.pow(2).sum() for d in deltas])
    logn = torch.log(norms + G)
    gamma = logn.var(unbiased=True) / (logn.mean() ** 2 + G)
    gated = bool(gamma > tau)
    nbar = norms.mean()

    # 2. covariance proxies from the column-centred deltas
    eye = torch.eye(C, device=dev, dtype=dt)
    centred, covs, regs = [], [], []
    for d in deltas:
        dc = d - d.mean(dim=0, keepdim=True)
        S = dc.T @ dc
        tr = torch.trace(S) + G
        if gated:
            S = S / tr
            e = eps / tr
        else:
            e = eps
        centred.append(dc)
        covs.append(S)
        regs.append(S + e * eye)

    # 3. accumulate
    A0 = torch.stack(regs).sum(dim=0)
    B = sum(dc @ Sr for dc, Sr in zip(centred, regs))
    m = torch.stack(covs).sum(dim=0).mean(dim=0)          # column means of sum_t Sigma_t
    if gated:
        m = m / (nbar + G)

    # 4. collective structural prior, pre-solution W_pre = B A^-1
    A = A0 + m.unsqueeze(0)                                # m^T added to every row
    W_pre = torch.linalg.solve(A, B, left=False)

    if info is not None:
        info.update(gamma=float(gamma), gated=gated, norms=norms.tolist(), W_pre=W_pre)
    if not gated:
        return W_pre

    # 5. spectral refinement
    k = int(math.floor(min(R, C) * k_frac))
    Sbar = A0 / T
    Res = sum(d @ (S - Sbar) for d, S in zip(deltas, covs))
    F = Res + W_pre
    U, s, Vh = torch.linalg.svd(F, full_matrices=False)
    sigma_iso = s[:k].mean()
    if info is not None:
        info.update(sigma_iso=float(sigma_iso), k=k)
    return W_pre + sigma_iso * (U[:, :k] @ Vh[:k, :])


def ace_merging(base_sd, ft_sds, eps=1e-2, tau=0.3, k_frac=0.3, lam=1.0, log=None,
                dtype=torch.float32):
    merged = {}
    stats = {"ace": 0, "gated": 0, "mean": 0}
    for name, w0 in base_sd.items():
        w0f = w0.to(dtype)
        deltas = [sd[name].to(dtype) - w0f for sd in ft_sds]
        if w0.dim() != 2 or "text_projection" in name:
            M = torch.stack(deltas).mean(dim=0)
            stats["mean"] += 1
        else:
            info = {}
            t0 = time.time()
            M = ace_layer(deltas, eps, tau, k_frac, info)
            stats["ace"] += 1
            stats["gated"] += bool(info.get("gated"))
            if log:
                log("  %-28s %-10s gamma %.4f %-6s %.2f s" % (
                    name, "x".join(map(str, w0.shape)), info.get("gamma", 0.0),
                    "gated" if info.get("gated") else "", time.time() - t0))
        merged[name] = (w0f + lam * M).to(w0.dtype)
    return merged, stats


# ---- selftest: the spec's reference test vectors -------------------------------------
CASE1_M = [[9.604968e-02, 1.359419e-02, -8.465004e-02, -3.905521e-02, 9.332188e-03],
           [4.074697e-02, 3.531878e-02, -3.286280e-02, -7.777140e-03, 6.424796e-03],
           [-6.350259e-02, 6.116873e-03, 3.556643e-02, 1.716386e-02, -2.281238e-03],
           [-7.329406e-02, -5.502984e-02, 8.194640e-02, 2.966848e-02, -1.347575e-02]]
CASE2_W = [[4.010767e-02, -6.536702e-03, -3.326415e-02, -3.008304e-03, 4.344440e-03],
           [2.264126e-02, 3.027044e-03, -1.815579e-02, -1.520629e-03, 2.703953e-03],
           [-2.151849e-02, 5.328868e-03, 1.612969e-02, 4.886373e-04, -1.999012e-03],
           [-4.123044e-02, -1.819210e-03, 3.529025e-02, 4.040296e-03, -5.049381e-03]]
CASE2_M = [[-2.378785e+00, -3.605137e+00, 2.088887e+00, 6.141236e+00, 1.406397e-01],
           [-3.633358e+00, -5.436023e+00, 3.189337e+00, 9.285106e+00, 2.087054e-01],
           [-2.812463e+00, -4.146775e+00, 2.464690e+00, 7.089785e+00, 1.552600e-01],
           [-9.380596e-01, -1.336037e+00, 8.220993e-01, 2.282082e+00, 4.548349e-02]]


def selftest():
    def deltas(s, dt):
        return [torch.tensor([[s[t] * math.sin(1 + 5 * i + j + 7 * t + 0.3 * i * j)
                               for j in range(5)] for i in range(4)], dtype=dt)
                for t in range(3)]

    def rel(a, b):
        b = torch.tensor(b, dtype=torch.float64)
        return float(torch.linalg.norm(a.double() - b) / torch.linalg.norm(b))

    fails = 0

    def check(what, err, tol=1e-5):
        nonlocal fails
        ok = err <= tol
        fails += not ok
        print("  %-40s rel %.2e  %s" % (what, err, "ok" if ok else "FAIL (> %.0e)" % tol))

    for dt in (torch.float64, torch.float32):
        tn = str(dt).replace("torch.", "")
        info = {}
        M = ace_layer(deltas((0.10, 0.11, 0.095), dt), info=info)
        check("case 1 %s M (not gated)" % tn, rel(M, CASE1_M))
        check("case 1 %s gamma 8.764314e-03" % tn, abs(info["gamma"] / 8.764314e-03 - 1))
        check("case 1 %s n" % tn, rel(torch.tensor(info["norms"]),
                                      [1.103400e-01, 1.220915e-01, 8.114083e-02]))
        if info["gated"]:
            check("case 1 %s must not gate" % tn, 1.0, 0)
        info = {}
        M = ace_layer(deltas((0.01, 0.1, 1.0), dt), info=info)
        check("case 2 %s W_pre" % tn, rel(info["W_pre"], CASE2_W))
        check("case 2 %s M (gated, refined)" % tn, rel(M, CASE2_M))
        check("case 2 %s gamma 3.825191e+00" % tn, abs(info["gamma"] / 3.825191 - 1))
        check("case 2 %s sigma_iso 1.703818e+01" % tn, abs(info["sigma_iso"] / 17.03818 - 1))
        check("case 2 %s n" % tn, rel(torch.tensor(info["norms"]),
                                      [1.103400e-03, 1.009021e-01, 8.990673e+00]))
        if not info["gated"] or info["k"] != 1:
            check("case 2 %s must gate with k = 1" % tn, 1.0, 0)
    print("ref_ace_torch selftest: %s" % ("ok" if not fails else "%d FAILED" % fails))
    return 1 if fails else 0


def main():
    a = ARGS
    if a.selftest:
        sys.exit(selftest())
    log = None if a.quiet else (lambda s: print(s, file=sys.stderr))
    t0 = time.time()
    base_sd = load_state_dict(a.base)
    ft_sds = [load_state_dict(p) for p in a.experts]
    t1 = time.time()
    with torch.no_grad():
        merged, stats = ace_merging(base_sd, ft_sds, a.eps, a.tau, a.k_frac, log=log,
                                    dtype=torch.float64 if a.float64 else torch.float32)
    t2 = time.time()
    save_state_dict(merged, a.output)
    t3 = time.time()
    if not a.quiet:
        print("ref_ace_torch: %d experts, %d ACE matrices (%d gated), %d mean tensors; "
              "threads %d, %s; load %.1f s, merge %.1f s, save %.1f s"
              % (len(ft_sds), stats["ace"], stats["gated"], stats["mean"],
                 torch.get_num_threads(), blas_core(), t1 - t0, t2 - t1, t3 - t2), file=sys.stderr)


if __name__ == "__main__":
    main()
