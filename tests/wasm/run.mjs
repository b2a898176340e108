// tests/wasm/run.mjs - run acem inside WebAssembly (Node, no npm packages).
//
//   node tests/wasm/run.mjs build/acem.wasm [label]
//
// Loads the freestanding module built from tests/wasm/acem_wasm.c, feeds it the
// reference test vectors of /work/shared/spec/ace-merging.md ("Reference test
// vectors") and checks the merged matrices to 1e-4 relative Frobenius; then runs
// every method on a small random problem, the streaming API against acem_merge,
// the arena size query, and acem_gemm against a naive product. Prints
// "<label>: N passed, N failed" (label defaults to "wasm") and exits non-zero on
// any failure.
import { readFileSync } from 'node:fs';

const [path, label = 'wasm'] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(cond, msg) {
  if (cond) passed++;
  else { failed++; console.log(`FAIL ${label}: ${msg}`); }
}
function finish() {
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
if (!path) { console.log('usage: node tests/wasm/run.mjs MODULE.wasm [label]'); failed++; finish(); }

// ---- load -----------------------------------------------------------------------
let X, memory;
try {
  const mod = new WebAssembly.Module(readFileSync(path));
  const imports = WebAssembly.Module.imports(mod);
  check(imports.length === 1 && imports[0].module === 'env' && imports[0].name === 'log' &&
        imports[0].kind === 'function',
        `the only import must be env.log, got ${JSON.stringify(imports)}`);
  const env = { log: Math.log };
  for (const imp of imports) if (imp.module === 'env' && !(imp.name in env)) {
    env[imp.name] = () => { throw new Error(`unexpected import env.${imp.name} called`); };
  }
  X = new WebAssembly.Instance(mod, { env }).exports;
  memory = X.memory;
} catch (e) {
  check(false, `cannot load ${path}: ${e.message}`);
  finish();
}

const IO_FLOATS = X.wasm_io_floats();
const io = () => new Float32Array(memory.buffer, X.wasm_io(), IO_FLOATS);
const info = () => {
  const d = new Float64Array(memory.buffer, X.wasm_info(), 16);
  return { gated: d[0], refined: d[1], fallback: d[2], gamma: d[3], sigma_iso: d[4],
           k: d[5], directions: d[6], rule: d[7], method: d[8], need: d[9],
           bytes_required: d[10], passes: d[11] };
};
const cstr = (p) => {
  const b = new Uint8Array(memory.buffer);
  let e = p;
  while (b[e]) e++;
  return new TextDecoder().decode(b.subarray(p, e));
};
const resultString = (r) => (r >= 0 ? cstr(X.wasm_result_string(r)) : `code ${r}`);

// Put base (or null) and T experts of n floats into io, merge, return the output.
// Returns { r, out, info, message }; out is a copy.
function merge({ method = 0, flags = 0, rows, cols, experts, base = null, mode = 0,
                 arenaDelta = 0, seed = 0 }) {
  const n = rows * cols, T = experts.length;
  const buf = io();
  if ((T + 2) * n > IO_FLOATS) throw new Error('problem too large for the io buffer');
  if (base) buf.set(base, 0);
  experts.forEach((e, t) => buf.set(e, (t + 1) * n));
  let r;
  try {
    r = X.wasm_merge(method, flags, rows, cols, T, base ? 1 : 0, mode, arenaDelta, seed);
  } catch (e) {
    return { r: -2, out: null, info: info(), message: `trap: ${e.message}` };
  }
  const out = Float32Array.from(io().subarray((T + 1) * n, (T + 2) * n));
  return { r, out, info: info(), message: cstr(X.wasm_message()) };
}

function relFro(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { const d = a[i] - b[i]; num += d * d; den += b[i] * b[i]; }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}
const rel = (a, b) => Math.abs(a - b) / Math.abs(b);
const allFinite = (x) => x && x.every(Number.isFinite);
const bitEqual = (a, b) => a && b && a.length === b.length &&
  Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength),
                 Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

// ---- the spec's reference test vectors ------------------------------------------------
// T = 3, D_t is 4 x 5, D_t[i][j] = s_t sin(1 + 5i + j + 7t + 0.3 i j);
// eps 1e-2, k_frac 0.3, tau 0.3 are acem's defaults (zeroed options).
const R = 4, C = 5;
const specDeltas = (s) => s.map((st, t) => {
  const d = new Float32Array(R * C);
  for (let i = 0; i < R; i++)
    for (let j = 0; j < C; j++) d[i * C + j] = st * Math.sin(1 + 5 * i + j + 7 * t + 0.3 * i * j);
  return d;
});
const M1 = [
   9.604968e-02,  1.359419e-02, -8.465004e-02, -3.905521e-02,  9.332188e-03,
   4.074697e-02,  3.531878e-02, -3.286280e-02, -7.777140e-03,  6.424796e-03,
  -6.350259e-02,  6.116873e-03,  3.556643e-02,  1.716386e-02, -2.281238e-03,
  -7.329406e-02, -5.502984e-02,  8.194640e-02,  2.966848e-02, -1.347575e-02];
const W2 = [
   4.010767e-02, -6.536702e-03, -3.326415e-02, -3.008304e-03,  4.344440e-03,
   2.264126e-02,  3.027044e-03, -1.815579e-02, -1.520629e-03,  2.703953e-03,
  -2.151849e-02,  5.328868e-03,  1.612969e-02,  4.886373e-04, -1.999012e-03,
  -4.123044e-02, -1.819210e-03,  3.529025e-02,  4.040296e-03, -5.049381e-03];
const M2 = [
  -2.378785e+00, -3.605137e+00,  2.088887e+00,  6.141236e+00,  1.406397e-01,
  -3.633358e+00, -5.436023e+00,  3.189337e+00,  9.285106e+00,  2.087054e-01,
  -2.812463e+00, -4.146775e+00,  2.464690e+00,  7.089785e+00,  1.552600e-01,
  -9.380596e-01, -1.336037e+00,  8.220993e-01,  2.282082e+00,  4.548349e-02];
const ACE = 0, NO_REFINE = 4, TOL = 1e-4;

function expectOk(res, what) {
  check(res.r === 0, `${what}: ${resultString(res.r)} ${res.message}`);
  return res.r === 0;
}

{ // case 1: not gated, M = W_pre
  const D = specDeltas([0.10, 0.11, 0.095]);
  const a = merge({ rows: R, cols: C, experts: D });
  if (expectOk(a, 'case 1')) {
    const e = relFro(a.out, M1);
    check(e <= TOL, `case 1: M rel. Frobenius error ${e.toExponential(3)} > ${TOL}`);
    check(a.info.gated === 0 && a.info.refined === 0, `case 1: gated ${a.info.gated}, refined ${a.info.refined}, expected 0, 0`);
    check(rel(a.info.gamma, 8.764314e-03) <= 1e-3, `case 1: gamma ${a.info.gamma}, expected 8.764314e-03`);
  }
  const b = merge({ rows: R, cols: C, experts: D, mode: 1 });
  if (expectOk(b, 'case 1, streamed')) check(bitEqual(a.out, b.out), 'case 1: streamed != acem_merge (bitwise)');
  // with a base: experts = base + D, out = base + M
  const base = new Float32Array(R * C).map((_, i) => 0.5 * Math.cos(0.7 * i));
  const E = D.map((d) => d.map((v, i) => base[i] + v));
  const c = merge({ rows: R, cols: C, experts: E, base, mode: 1 });
  if (expectOk(c, 'case 1, with base')) {
    const m = c.out.map((v, i) => v - base[i]);
    const e = relFro(m, M1);
    check(e <= TOL, `case 1 with base: (out - base) rel. error ${e.toExponential(3)} > ${TOL}`);
  }
}

{ // case 2: gated, refined with k = 1
  const D = specDeltas([0.01, 0.1, 1.0]);
  const a = merge({ rows: R, cols: C, experts: D });
  if (expectOk(a, 'case 2')) {
    const e = relFro(a.out, M2);
    check(e <= TOL, `case 2: M rel. Frobenius error ${e.toExponential(3)} > ${TOL}`);
    check(a.info.gated === 1 && a.info.refined === 1, `case 2: gated ${a.info.gated}, refined ${a.info.refined}, expected 1, 1`);
    check(rel(a.info.gamma, 3.825191) <= 1e-4, `case 2: gamma ${a.info.gamma}, expected 3.825191`);
    check(rel(a.info.sigma_iso, 17.03818) <= 1e-4, `case 2: sigma_iso ${a.info.sigma_iso}, expected 17.03818`);
    check(a.info.k === 1, `case 2: k ${a.info.k}, expected 1`);
  }
  const b = merge({ rows: R, cols: C, experts: D, mode: 1 });
  if (expectOk(b, 'case 2, streamed')) check(bitEqual(a.out, b.out), 'case 2: streamed != acem_merge (bitwise)');
  // ACEM_FLAG_NO_REFINE: gated, no refinement -> M = W_pre
  const w = merge({ rows: R, cols: C, experts: D, flags: NO_REFINE });
  if (expectOk(w, 'case 2, NO_REFINE')) {
    const e = relFro(w.out, W2);
    check(e <= TOL, `case 2 NO_REFINE: W_pre rel. Frobenius error ${e.toExponential(3)} > ${TOL}`);
    check(w.info.gated === 1 && w.info.refined === 0, `case 2 NO_REFINE: gated ${w.info.gated}, refined ${w.info.refined}, expected 1, 0`);
  }
  // arena size: exactly acem_layer_bytes() works (above); one byte less is refused
  const s = merge({ rows: R, cols: C, experts: D, arenaDelta: -1 });
  check(s.r === 2 && s.info.bytes_required === s.info.need,
        `arena one byte short: got ${resultString(s.r)}, bytes_required ${s.info.bytes_required}, expected ACEM_ERR_ARENA_TOO_SMALL and ${s.info.need}`);
}

// ---- every method on a small random problem --------------------------------------------
let seed = 12345;
const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) / (1 << 24) * 2 - 1; };
const names = ['ace', 'average', 'task-arithmetic', 'ties', 'dare-ta', 'dare-ties', 'actmat', 'iso-c', 'tsv-m'];
check(X.wasm_method_count() === names.length, `method count ${X.wasm_method_count()}, expected ${names.length}`);
for (const [rows, cols, T] of [[24, 16, 4], [8, 20, 3], [33, 1, 3]]) {
  const n = rows * cols;
  const base = Float32Array.from({ length: n }, () => rnd());
  const D = Array.from({ length: T }, (_, t) => Float32Array.from({ length: n }, () => 0.05 * (t + 1) * rnd()));
  const E = D.map((d) => d.map((v, i) => base[i] + v));
  for (let m = 0; m < names.length; m++) {
    const what = `${names[m]} ${rows}x${cols} T=${T}`;
    check(cstr(X.wasm_method_name(m)) === names[m], `method ${m} name "${cstr(X.wasm_method_name(m))}", expected "${names[m]}"`);
    const a = merge({ method: m, rows, cols, experts: E, base, seed: 7 });
    if (!expectOk(a, what)) continue;
    check(allFinite(a.out), `${what}: non-finite output`);
    const b = merge({ method: m, rows, cols, experts: E, base, seed: 7, mode: 1 });
    if (expectOk(b, `${what}, streamed`)) check(bitEqual(a.out, b.out), `${what}: streamed != acem_merge (bitwise)`);
    if (m === 1 || m === 2) { // average: base + mean; task arithmetic: base + 0.3 sum
      const lam = m === 1 ? 1 / T : 0.3;
      const want = base.map((v, i) => v + lam * D.reduce((s, d) => s + d[i], 0));
      const e = relFro(a.out.map((v, i) => v - base[i]), want.map((v, i) => v - base[i]));
      check(e <= 1e-5, `${what}: rel. error ${e.toExponential(3)} against the JavaScript sum`);
    }
  }
}
{ // T = 1: ACE returns the expert's own delta
  const rows = 6, cols = 5, d = Float32Array.from({ length: rows * cols }, () => rnd());
  const a = merge({ rows, cols, experts: [d] });
  if (expectOk(a, 'ACE T=1')) {
    const e = relFro(a.out, d);
    check(e <= 1e-5, `ACE T=1: rel. error ${e.toExponential(3)} against the delta`);
  }
}

// ---- acem_gemm against a naive product ------------------------------------------------
for (const [m, n, k] of [[1, 1, 1], [5, 7, 3], [17, 33, 9], [64, 48, 40]]) {
  for (const ta of [0, 1]) for (const tb of [0, 1]) for (const useWork of [0, 1]) {
    const q = IO_FLOATS / 4;
    const A = Float32Array.from({ length: m * k }, () => rnd());
    const B = Float32Array.from({ length: k * n }, () => rnd());
    const C0 = Float32Array.from({ length: m * n }, () => rnd());
    const buf = io();
    buf.set(A, 0); buf.set(B, q); buf.set(C0, 2 * q);
    const alpha = 1.5, beta = 0.5;
    const what = `gemm m=${m} n=${n} k=${k} transa=${ta} transb=${tb} work=${useWork}`;
    let r;
    try { r = X.wasm_gemm(ta, tb, m, n, k, alpha, beta, useWork); } catch (e) { r = `trap: ${e.message}`; }
    if (r !== 0) { check(false, `${what}: ${r}`); continue; }
    const got = io().subarray(2 * q, 2 * q + m * n);
    const want = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const a = ta ? A[p * m + i] : A[i * k + p];
        const b = tb ? B[j * k + p] : B[p * n + j];
        s += a * b;
      }
      want[i * n + j] = alpha * s + beta * C0[i * n + j];
    }
    const e = relFro(got, want);
    check(e <= 1e-5, `${what}: rel. error ${e.toExponential(3)}`);
  }
}

// ---- files read from a byte buffer: safetensors and GGUF, as a web page gets them ----
{
  const enc = new TextEncoder();
  const bytes = () => new Uint8Array(memory.buffer, X.wasm_file(), X.wasm_file_bytes());
  const open = (u8) => { bytes().set(u8); return X.wasm_open(u8.length); };
  const f16 = (x) => { // exact for the values used here (small integers, halves)
    if (x === 0) return 0;
    const s = x < 0 ? 0x8000 : 0; x = Math.abs(x);
    const e = Math.floor(Math.log2(x));
    return s | ((e + 15) << 10) | Math.round((x / 2 ** e - 1) * 1024);
  };
  const tensor = (i, read) => {
    const r = X.wasm_tensor(i, read ? 1 : 0);
    const d = new Float64Array(memory.buffer, X.wasm_info(), 16);
    return { r, name: cstr(X.wasm_message()), dtype: d[0], ndim: d[1], shape: [...d.slice(2, 2 + d[1])],
             numel: d[6], bytes: d[7], values: read && r === 0 ? io().slice(0, d[6]) : null };
  };
  const meta = (key) => {
    new Uint8Array(memory.buffer, X.wasm_message(), X.wasm_message_bytes()).set([...enc.encode(key), 0]);
    const p = X.wasm_meta();
    return p ? cstr(p) : null;
  };
  // a GGUF file: one pair, an F32 matrix (ggml dims [3, 2]) and a Q8_0 vector (d = 1)
  const parts = [];
  const u32 = (v) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); parts.push(b); };
  const u64 = (v) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v), true); parts.push(b); };
  const str = (t) => { const b = enc.encode(t); u64(b.length); parts.push(b); };
  parts.push(enc.encode('GGUF')); u32(3); u64(2); u64(1);
  str('general.architecture'); u32(8); str('llama');
  str('w'); u32(2); u64(3); u64(2); u32(0); u64(0);
  str('q'); u32(1); u64(32); u32(8); u64(32);
  let len = parts.reduce((s, p) => s + p.length, 0);
  parts.push(new Uint8Array((32 - (len % 32)) % 32));
  const w = Float32Array.from([1.5, -2, 0.25, 4, -0.5, 8]);
  parts.push(new Uint8Array(w.buffer), new Uint8Array(8));
  const q = new Uint8Array(34); q[0] = 0x00; q[1] = 0x3c;
  for (let j = 0; j < 32; j++) q[2 + j] = (j - 16) & 255;
  parts.push(q);
  const gguf = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  len = 0; for (const p of parts) { gguf.set(p, len); len += p.length; }
  let r = open(gguf);
  check(r === 0, `GGUF open: ${resultString(r)} ${cstr(X.wasm_message())}`);
  if (r === 0) {
    const d = new Float64Array(memory.buffer, X.wasm_info(), 16);
    check(d[0] === 1 && d[1] === 2 && d[2] === 1 && d[4] === 32, `GGUF: format ${d[0]}, ${d[1]} tensors, ${d[2]} pairs, alignment ${d[4]}`);
    check(meta('general.architecture') === 'llama', `GGUF pair: ${meta('general.architecture')}`);
    const a = tensor(0, true), b = tensor(1, true);
    check(a.name === 'q' && b.name === 'w', `GGUF tensors in name order: ${a.name}, ${b.name}`);
    check(b.r === 0 && b.shape.join() === '2,3' && bitEqual(b.values, w), `GGUF F32 [2, 3]: r=${b.r} shape ${b.shape}`);
    check(a.r === 0 && a.bytes === 34 && a.values && a.values.every((v, j) => v === j - 16), `GGUF Q8_0 dequantized: r=${a.r}`);
  }
  // a safetensors file with an F16 tensor and metadata
  const hdr = enc.encode('{"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}');
  const st = new Uint8Array(8 + hdr.length + 8);
  new DataView(st.buffer).setBigUint64(0, BigInt(hdr.length), true);
  st.set(hdr, 8);
  const hv = [0.5, -3, 1024, 0.125];
  hv.forEach((v, j) => new DataView(st.buffer).setUint16(8 + hdr.length + 2 * j, f16(v), true));
  r = open(st);
  check(r === 0, `safetensors open: ${resultString(r)} ${cstr(X.wasm_message())}`);
  if (r === 0) {
    const h = tensor(0, true);
    check(meta('format') === 'pt' && h.name === 'h' && h.values && h.values.every((v, j) => v === hv[j]),
          `safetensors F16: ${h.name} ${h.values}`);
  }
  // a GGUF file of version 1: refused, with the file named
  const bad = gguf.slice(); bad[4] = 1;
  r = open(bad);
  check(r !== 0 && cstr(X.wasm_message()).includes('dropped.file: GGUF version 1'), `GGUF v1: ${r} ${cstr(X.wasm_message())}`);
  // every truncation of the GGUF file is refused, never a trap
  let traps = 0, opened = 0;
  for (let n = 0; n < gguf.length; n++) {
    try { if (open(gguf.subarray(0, n)) === 0) opened++; } catch (e) { traps++; }
  }
  check(traps === 0 && opened === 0, `GGUF truncations: ${opened} opened, ${traps} traps`);
}

finish();
