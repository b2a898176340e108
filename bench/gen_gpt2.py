#!/usr/bin/python3
"""bench/gen_gpt2.py - synthetic GPT-2-small-shaped base model and fine-tuned experts.

    /usr/bin/python3 bench/gen_gpt2.py OUTDIR [--experts 7] [--seed 0]
                                       [--blocks 12] [--vocab 50257] [--n-ctx 1024]

Writes OUTDIR/base.safetensors and OUTDIR/e1.safetensors .. eT.safetensors (F32),
with the tensor names and shapes of GPT-2 as stored (Conv1D weights (in, out)):
wte.weight V x 768, wpe.weight 1024 x 768, h.{i}.ln_1.weight/bias,
h.{i}.attn.c_attn.weight 768 x 2304 (+ bias), h.{i}.attn.c_proj.weight 768 x 768
(+ bias), h.{i}.ln_2.weight/bias, h.{i}.mlp.c_fc.weight 768 x 3072 (+ bias),
h.{i}.mlp.c_proj.weight 3072 x 768 (+ bias), ln_f.weight/bias.

Base: weights N(0, 0.02), layer-norm weights 1 + N(0, 0.02), biases N(0, 0.002).
Expert t = base + delta_t. Each 2-D delta looks like fine-tuning: a low-rank
product (rank 8..32, ~85% of the energy) plus dense Gaussian noise (~15%), scaled
so that ||delta_t||_F^2 = n0(layer) * f_t(layer)^2, with n0 around e^-3..e^-5 (so
that ln n stays away from 0, where ACE's gate statistic is ill-defined):

  * "gated" layers: f_t log-spaced over two orders of magnitude (0.1 .. 10, in a
    per-layer shuffled order), which gives gamma ~ 0.5..1.2 > tau = 0.3;
  * the others: f_t in [0.75, 1.3], which gives gamma ~ 0.01 < 0.3.

Which 2-D tensors gate: wpe; in even blocks attn.c_attn and mlp.c_proj, in odd
blocks attn.c_proj and mlp.c_fc (25 of the 50 matrices in GPT-2 small); wte
never. 1-D deltas: N(0, 1e-4) noise. Deterministic given --seed (one numpy
Generator per (seed, model, tensor)). Prints the gate statistic gamma of every
2-D tensor as the spec defines it (from the exact generated norms) and a summary.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

D = 768


def gpt2_specs(blocks, vocab, n_ctx):
    s = [("wte.weight", (vocab, D)), ("wpe.weight", (n_ctx, D))]
    for i in range(blocks):
        p = "h.%d." % i
        s += [(p + "ln_1.weight", (D,)), (p + "ln_1.bias", (D,)),
              (p + "attn.c_attn.weight", (D, 3 * D)), (p + "attn.c_attn.bias", (3 * D,)),
              (p + "attn.c_proj.weight", (D, D)), (p + "attn.c_proj.bias", (D,)),
              (p + "ln_2.weight", (D,)), (p + "ln_2.bias", (D,)),
              (p + "mlp.c_fc.weight", (D, 4 * D)), (p + "mlp.c_fc.bias", (4 * D,)),
              (p + "mlp.c_proj.weight", (4 * D, D)), (p + "mlp.c_proj.bias", (D,))]
    s += [("ln_f.weight", (D,)), ("ln_f.bias", (D,))]
    return s


def gated_layer(name):
    if name == "wpe.weight":
        return True
    if not name.startswith("h."):
        return False
    blk = int(name.split(".")[1])
    if blk % 2 == 0:
        return name.endswith("attn.c_attn.weight") or name.endswith("mlp.c_proj.weight")
    return name.endswith("attn.c_proj.weight") or name.endswith("mlp.c_fc.weight")


def rng_for(seed, model, tensor, what=0):
    return np.random.default_rng([seed, model, tensor, what])


def base_tensor(seed, ti, name, shape):
    g = rng_for(seed, 0, ti)
    x = g.standard_normal(shape, dtype=np.float32)
    if len(shape) == 2:
        return x * np.float32(0.02)
    if name.endswith(".weight"):                       # layer norm gains
        return np.float32(1.0) + x * np.float32(0.02)
    return x * np.float32(0.002)


def layer_plan(seed, ti, name, T):
    """per-layer target squared norm n0, expert factors f_t, rank."""
    g = rng_for(seed, 10_000, ti)
    n0 = math.exp(g.uniform(-5.0, -3.0))
    rank = int(g.integers(8, 33))
    if gated_layer(name):
        f = 10.0 ** np.linspace(-1.0, 1.0, T) if T > 1 else np.ones(1)
        f = f[g.permutation(T)]
    else:
        f = g.uniform(0.75, 1.3, size=T)
    return n0, f, rank


def delta_tensor(seed, t, ti, name, shape, n0, f, rank):
    g = rng_for(seed, t, ti)
    if len(shape) != 2:
        return g.standard_normal(shape, dtype=np.float32) * np.float32(1e-4)
    R, C = shape
    U = g.standard_normal((R, rank), dtype=np.float32)
    V = g.standard_normal((rank, C), dtype=np.float32)
    low = U @ V
    noise = g.standard_normal((R, C), dtype=np.float32)
    # energy split 85% / 15%, then the exact target norm
    low *= np.float32(math.sqrt(0.85 / max(float(np.vdot(low, low)), 1e-30)))
    noise *= np.float32(math.sqrt(0.15 / max(float(np.vdot(noise, noise)), 1e-30)))
    d = low
    d += noise
    d *= np.float32(math.sqrt(n0) * f[t - 1])
    return d


def gamma_of(norms):
    l = np.log(np.asarray(norms, dtype=np.float64) + 1e-12)
    if len(l) < 2:
        return 0.0
    return float(np.var(l, ddof=1) / (np.mean(l) ** 2 + 1e-12))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("outdir")
    ap.add_argument("--experts", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--n-ctx", type=int, default=1024)
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args()
    T = a.experts
    if T < 1:
        ap.error("--experts must be >= 1")
    os.makedirs(a.outdir, exist_ok=True)
    specs = gpt2_specs(a.blocks, a.vocab, a.n_ctx)
    st_specs = [(n, np.float32, s) for n, s in specs]
    t0 = time.time()

    base = {}
    w = st_io.Writer(os.path.join(a.outdir, "base.safetensors.tmp"), st_specs)
    for ti, (name, shape) in enumerate(specs):
        base[name] = base_tensor(a.seed, ti, name, shape)
        w.write(name, base[name])
    w.close()

    plans = {name: layer_plan(a.seed, ti, name, T)
             for ti, (name, shape) in enumerate(specs) if len(shape) == 2}
    norms = {name: [] for name in plans}
    for t in range(1, T + 1):
        w = st_io.Writer(os.path.join(a.outdir, "e%d.safetensors.tmp" % t), st_specs)
        for ti, (name, shape) in enumerate(specs):
            if len(shape) == 2:
                d = delta_tensor(a.seed, t, ti, name, shape, *plans[name])
            else:
                d = delta_tensor(a.seed, t, ti, name, shape, 0, None, 0)
            x = base[name] + d
            if len(shape) == 2:   # the norm acem/torch will see: (base + d) - base in f32
                dd = (x - base[name]).astype(np.float64)
                norms[name].append(float(np.vdot(dd, dd)))
            w.write(name, x)
        w.close()
        if not a.quiet:
            print("gen_gpt2: expert %d/%d written (%.1f s)" % (t, T, time.time() - t0),
                  file=sys.stderr)
    # rename at the end so that an interrupted run never leaves a partial set
    os.replace(os.path.join(a.outdir, "base.safetensors.tmp"),
               os.path.join(a.outdir, "base.safetensors"))
    for t in range(1, T + 1):
        os.replace(os.path.join(a.outdir, "e%d.safetensors.tmp" % t),
                   os.path.join(a.outdir, "e%d.safetensors" % t))

    ng = 0
    lines = []
    for name in plans:
        g = gamma_of(norms[name])
        ng += g > 0.3
        lines.append("  %-28s %-12s gamma %8.4f %s" % (
            name, "x".join(map(str, dict(specs)[name])), g, "gated" if g > 0.3 else ""))
    with open(os.path.join(a.outdir, "gates.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    nparam = sum(int(np.prod(s)) for _, s in specs)
    print("gen_gpt2: %s: base + %d experts, %d tensors, %.1f M parameters each; "
          "%d of %d matrices gate (gamma > 0.3; list in gates.txt); %.1f s"
          % (a.outdir, T, len(specs), nparam / 1e6, ng, len(plans), time.time() - t0))


if __name__ == "__main__":
    main()
