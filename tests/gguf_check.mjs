// tests/gguf_check.mjs NPM_PREFIX VIEW.json FILE.gguf
//
// Reads FILE.gguf with Hugging Face's GGUF parser (@huggingface/gguf, installed
// under NPM_PREFIX by `make test`) and compares what it finds with acem's
// reading of the same file (VIEW.json, from `cli_check gguf-view FILE.gguf`):
// the version, the data section's offset, every key/value pair in order (type,
// and value: strings exactly, numbers to 1e-6 relative, arrays by length and
// element type), every tensor in file order (name, dims in ggml's order, type
// id, offset). Exits 0 when the two readers agree, 1 otherwise.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [prefix, viewPath, file] = process.argv.slice(2);
if (!file) {
    console.error("usage: node tests/gguf_check.mjs NPM_PREFIX VIEW.json FILE.gguf");
    process.exit(2);
}
const entry = path.resolve(prefix, "node_modules/@huggingface/gguf/dist/index.mjs");
let gguf;
try {
    ({ gguf } = await import(pathToFileURL(entry).href));
} catch (e) {
    console.log(`FAIL: @huggingface/gguf is not installed under ${prefix} (${e.message}); make test installs it with npm`);
    process.exit(1);
}
const view = JSON.parse(readFileSync(viewPath, "utf8"));
const r = await gguf(path.resolve(file), { allowLocalFile: true, typedMetadata: true });
const TYPES = ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"];
const problems = [];
const bad = (m) => problems.push(m);

if (Number(r.metadata.version) !== view.version) bad(`version ${r.metadata.version} vs ${view.version}`);
if (BigInt(r.tensorDataOffset) !== BigInt(view.data)) bad(`data offset ${r.tensorDataOffset} vs ${view.data}`);
const pseudo = new Set(["version", "tensor_count", "kv_count"]);
const keys = Object.keys(r.typedMetadata).filter((k) => !pseudo.has(k));
if (keys.length !== view.kv.length) bad(`${keys.length} pairs vs ${view.kv.length}`);
view.kv.forEach(([key, type, text], i) => {
    if (keys[i] !== key) { bad(`pair ${i}: key ${keys[i]} vs ${key}`); return; }
    const tv = r.typedMetadata[key];
    if (tv.type !== type) { bad(`${key}: type ${tv.type} vs ${type}`); return; }
    if (type === 8) {
        if (tv.value !== text) bad(`${key}: string differs`);
    } else if (type === 9) {
        const m = /^\[(\d+) x (\w+)\]$/.exec(text);
        if (!m || tv.value.length !== Number(m[1]) || TYPES[tv.subType] !== m[2])
            bad(`${key}: array of ${tv.value.length} ${TYPES[tv.subType]} vs ${text}`);
    } else if (type === 7) {
        if (String(Boolean(tv.value)) !== text) bad(`${key}: ${tv.value} vs ${text}`);
    } else {
        const a = Number(tv.value), b = Number(text);
        const exact = type !== 6 && type !== 12;
        if (exact ? BigInt(tv.value) !== BigInt(text) : Math.abs(a - b) > 1e-6 * Math.max(Math.abs(a), Math.abs(b), 1e-30))
            bad(`${key}: ${tv.value} vs ${text}`);
    }
});
const ts = r.tensorInfos;
if (ts.length !== view.tensors.length) bad(`${ts.length} tensors vs ${view.tensors.length}`);
view.tensors.forEach(([name, dims, type, offset], i) => {
    const t = ts[i];
    if (!t) return;
    const shape = t.shape.map((x) => Number(x));
    if (t.name !== name || t.dtype !== type || BigInt(t.offset) !== BigInt(offset) || shape.join(",") !== dims.join(","))
        bad(`tensor ${i}: ${t.name} [${shape}] type ${t.dtype} at ${t.offset} vs ${name} [${dims}] type ${type} at ${offset}`);
});
if (problems.length) {
    for (const p of problems.slice(0, 20)) console.log(`FAIL: ${file}: ${p}`);
    process.exit(1);
}
console.log(`gguf_check: ${file}: @huggingface/gguf agrees with acem (${view.kv.length} pairs, ${view.tensors.length} tensors)`);
