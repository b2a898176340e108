#!/usr/bin/env bash
# tests/test_cli.sh [BUILD_DIR] - end-to-end tests of the `acem` command-line tool.
#
# Needs BUILD_DIR/acem, BUILD_DIR/cli_gen (writes small checkpoints with acem.h's
# writer) and BUILD_DIR/cli_check (recomputes every merged tensor in memory with
# acem_merge and compares bitwise); `make test` builds them and runs this script.
# Prints "test_cli: N passed, N failed"; exits non-zero if anything failed.
# Scratch files live in a temporary directory that is removed at exit.
set -u
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)

B=${1:-build}
ACEM=$B/acem
GEN=$B/cli_gen
CHECK=$B/cli_check
LORA=$B/cli_lora
LLAMA=$B/cli_llama
. "$TESTS_DIR/cli_lib.sh"
cli_require test_cli "$ACEM" "$GEN" "$CHECK" "$LORA" "$LLAMA"
# absolute paths: the tests run in the scratch directory
NPM_PREFIX=$(cd "$B" && pwd)/npm # @huggingface/gguf, installed there by make test
NODE=${NODE:-node}
ACEM=$(cd "$(dirname "$ACEM")" && pwd)/acem
GEN=$(cd "$(dirname "$GEN")" && pwd)/cli_gen
CHECK=$(cd "$(dirname "$CHECK")" && pwd)/cli_check
LORA=$(cd "$(dirname "$LORA")" && pwd)/cli_lora
LLAMA=$(cd "$(dirname "$LLAMA")" && pwd)/cli_llama
LLAMA_LIBS=$NPM_PREFIX/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64 # llama.cpp, prebuilt

cli_scratch acem_cli

E3="e1.safetensors e2.safetensors e3.safetensors"

# ---- generate the checkpoints; remember the inputs' checksums ---------------------
t "cli_gen" "$GEN" .
head -c 3000 e2.safetensors >trunc.safetensors
head -c 2000 e2.gguf >trunc.gguf
inputs=$(find . -type f \( -name '*.safetensors' -o -name '*.json' -o -name '*.gguf' \) | sort)
sums_before=$(cksum $inputs)

# ---- basics ---------------------------------------------------------------------------
t "--version" sh -c "'$ACEM' --version | grep -q '^acem [0-9]'"
t "help lists the exit codes" sh -c "'$ACEM' help | grep -q 'resource limit'"
t "merge --help has the Slurm example" sh -c "'$ACEM' merge --help | grep -q 'SLURM_ARRAY_TASK_ID'"
t "no command is a usage error" sh -c "'$ACEM' >/dev/null 2>&1; test \$? = 1"
t "thread pool contract (4 workers)" "$ACEM" pool-check 4
t "thread pool contract (1 worker)" "$ACEM" pool-check 1
t "demo runs" sh -c "'$ACEM' demo | grep -q ace"

# ---- every method end to end, bitwise equal to the in-memory merge ----------------------
for m in ace average task-arithmetic ties dare-ta dare-ties actmat iso-c tsv-m; do
    t "merge --method $m" "$ACEM" merge -q --method "$m" --exclude score --base base.safetensors -o "m_$m.safetensors" $E3
    t "inspect the $m output" "$ACEM" inspect "m_$m.safetensors"
    t "$m output == acem_merge (bitwise)" "$CHECK" merge --method "$m" --exclude score "m_$m.safetensors" base.safetensors $E3
done
# non-default parameters
t "ace with --eps/--tau/--k-frac/--lambda" "$ACEM" merge -q --eps 2e-3 --tau 0.5 --k-frac 0.5 --lambda 0.9 \
    --base base.safetensors -o p_ace.safetensors $E3
t "  == acem_merge" "$CHECK" merge --method ace --eps 2e-3 --tau 0.5 --k-frac 0.5 --lambda 0.9 p_ace.safetensors base.safetensors $E3
t "dare-ties with --drop/--density/--seed" "$ACEM" merge -q --method dare-ties --drop 0.3 --density 0.4 --seed 7 \
    --base base.safetensors -o p_dare.safetensors $E3
t "  == acem_merge" "$CHECK" merge --method dare-ties --drop 0.3 --density 0.4 --seed 7 p_dare.safetensors base.safetensors $E3
t "two experts, two exclusions" "$ACEM" merge -q --exclude 'bias$' --exclude '^score' --base base.safetensors \
    -o p_two.safetensors e1.safetensors e3.safetensors
t "  == acem_merge" "$CHECK" merge --method ace --exclude 'bias$' --exclude '^score' p_two.safetensors base.safetensors \
    e1.safetensors e3.safetensors
t "--preset gpt2 (exclude score, eps 4e-2)" "$ACEM" merge -q --preset gpt2 --base base.safetensors -o p_gpt2.safetensors $E3
t "  == acem_merge with eps 4e-2" "$CHECK" merge --method ace --eps 4e-2 --exclude score p_gpt2.safetensors base.safetensors $E3
t "  provenance metadata" sh -c "'$ACEM' inspect p_gpt2.safetensors | grep -q 'acem.eps: 0.04' &&
    '$ACEM' inspect p_gpt2.safetensors | grep -q 'acem.experts: \[\"e1.safetensors\",\"e2.safetensors\",\"e3.safetensors\"\]' &&
    '$ACEM' inspect p_gpt2.safetensors | grep -q 'acem.version: '"
t "--preset llama with an explicit --eps" "$ACEM" merge -q --preset llama --eps 3e-3 --base base.safetensors -o p_llama.safetensors $E3
t "  == acem_merge with eps 3e-3" "$CHECK" merge --method ace --eps 3e-3 p_llama.safetensors base.safetensors $E3
t "--threads 4: identical bytes" sh -c "'$ACEM' merge -q --threads 4 --exclude score --base base.safetensors -o thr.safetensors $E3 &&
    cmp -s thr.safetensors m_ace.safetensors"
# --threads > 1 reads the next expert on another thread while the current one is merged:
# every method (one pass or two) gives the bytes of the serial run
for m in ties average ace; do
    t "--threads 2 read-ahead, $m: identical bytes" sh -c "'$ACEM' merge -q --method $m --threads 2 --base base.safetensors \
        -o ra2_$m.safetensors $E3 && '$ACEM' merge -q --method $m --base base.safetensors -o ra1_$m.safetensors $E3 &&
        cmp -s ra1_$m.safetensors ra2_$m.safetensors"
done
# with --threads 2 an F32 tensor is read in 1 MiB pieces, by the reader thread
# and by the thread that waits for it: tensors of several pieces, the last partial
t "cli_gen --big" "$GEN" --big .
for m in ace average; do
    t "--threads 2, tensors read in pieces, $m: identical bytes" sh -c "'$ACEM' merge -q --method $m --threads 2 \
        --base big_base.safetensors -o big2_$m.safetensors big_e1.safetensors big_e2.safetensors &&
        '$ACEM' merge -q --method $m --base big_base.safetensors -o big1_$m.safetensors big_e1.safetensors big_e2.safetensors &&
        cmp -s big1_$m.safetensors big2_$m.safetensors"
    t "  == acem_merge" "$CHECK" merge --method $m big2_$m.safetensors big_base.safetensors big_e1.safetensors big_e2.safetensors
done
t "same run twice: identical bytes" sh -c "'$ACEM' merge -q --exclude score --base base.safetensors -o again.safetensors $E3 &&
    cmp -s again.safetensors m_ace.safetensors"
t "the output replaces an older file" sh -c "'$ACEM' merge -q --exclude score --base base.safetensors -o again.safetensors $E3"

# ---- sharded input and output ----------------------------------------------------------------
t "sharded inputs (index)" "$ACEM" merge -q --exclude score --base sharded/base -o sh_in.safetensors sharded/e1 sharded/e2 sharded/e3
t "  same tensors as the single-file run" "$CHECK" same sh_in.safetensors m_ace.safetensors
t "directory with model.safetensors" "$ACEM" merge -q --exclude score --base single/base -o single.safetensors $E3
t "  same tensors" "$CHECK" same single.safetensors m_ace.safetensors
t "sharded output (--out-shard-size 3K)" "$ACEM" merge -q --exclude score --out-shard-size 3K --base base.safetensors -o sh_out $E3
t "  several shards + index" test -f sh_out/model.safetensors.index.json -a -f sh_out/model-00002-of-00003.safetensors
t "  same tensors, consistent index" "$CHECK" same sh_out m_ace.safetensors
t "  inspect reads the sharded output" "$ACEM" inspect sh_out
t "sharded in and out, 2 threads" "$ACEM" merge -q --threads 2 --exclude score --out-shard-size 2048 --base sharded/base -o sh_both \
    sharded/e1 sharded/e2 sharded/e3
t "  same tensors" "$CHECK" same sh_both m_ace.safetensors
t "sharded output into an existing directory" "$ACEM" merge -q --exclude score --out-shard-size 3K --base base.safetensors -o sh_out $E3
t "  same tensors, no temporaries" sh -c "'$CHECK' same sh_out m_ace.safetensors && test -z \"\$(ls -A sh_out | grep tmp)\""

# ---- --shard I/N + join -------------------------------------------------------------------
for i in 1 2 3; do
    t "--shard $i/3" "$ACEM" merge -q --exclude score --shard "$i/3" --base base.safetensors -o "part$i.safetensors" $E3
    t "  part $i == acem_merge on its subset" "$CHECK" merge --partial --method ace --exclude score "part$i.safetensors" base.safetensors $E3
done
t "the parts are disjoint and complete" sh -c "n=0; for i in 1 2 3; do
    k=\$('$ACEM' inspect part\$i.safetensors | sed -n 's/^total: \([0-9]*\) tensors.*/\1/p'); n=\$((n + k)); done; test \$n = 10"
t "join" "$ACEM" join -q -o joined part3.safetensors part1.safetensors part2.safetensors
t "  join == single merge, consistent index" "$CHECK" same joined m_ace.safetensors
t "  shard metadata" sh -c "'$ACEM' inspect part2.safetensors | grep -q 'acem.shard: 2/3'"
t "--shard from sharded inputs: the same split" sh -c "'$ACEM' merge -q --exclude score --shard 2/3 --base sharded/base \
    -o part2b.safetensors sharded/e1 sharded/e2 sharded/e3 && '$CHECK' same part2b.safetensors part2.safetensors"

# ---- dtypes ----------------------------------------------------------------------------------
for d in f16 bf16; do
    t "$d inputs" "$ACEM" merge -q --base "base_$d.safetensors" -o "in_$d.safetensors" "e1_$d.safetensors" "e2_$d.safetensors" "e3_$d.safetensors"
    t "  == acem_merge, written as $d" "$CHECK" merge --method ace "in_$d.safetensors" "base_$d.safetensors" "e1_$d.safetensors" \
        "e2_$d.safetensors" "e3_$d.safetensors"
    # the read-ahead thread fills the buffers (converting f16 / bf16 as it reads)
    t "  --threads 2 (read-ahead), $d inputs: identical bytes" sh -c "'$ACEM' merge -q --threads 2 --base base_$d.safetensors \
        -o in2_$d.safetensors e1_$d.safetensors e2_$d.safetensors e3_$d.safetensors && cmp -s in2_$d.safetensors in_$d.safetensors"
    t "--out-dtype $d from f32" "$ACEM" merge -q --method ties --exclude score --out-dtype "$d" --base base.safetensors -o "out_$d.safetensors" $E3
    t "  == acem_merge converted to $d" "$CHECK" merge --method ties --exclude score --out-dtype "$d" "out_$d.safetensors" base.safetensors $E3
done
t "--out-dtype f32 from bf16" "$ACEM" merge -q --method average --out-dtype f32 --base base_bf16.safetensors -o bf_to_f32.safetensors \
    e1_bf16.safetensors e2_bf16.safetensors
t "  == acem_merge" "$CHECK" merge --method average --out-dtype f32 bf_to_f32.safetensors base_bf16.safetensors e1_bf16.safetensors e2_bf16.safetensors

# ---- GGUF in, GGUF out ---------------------------------------------------------------------------
G3="e1.gguf e2.gguf e3.gguf"
Q3="e1_q8.gguf e2_q8.gguf e3_q8.gguf"
for m in ace ties task-arithmetic; do
    t "GGUF merge --method $m" "$ACEM" merge -q --method "$m" --base base.gguf -o "g_$m.gguf" $G3
    t "  == acem_merge, the base's pairs and tensor order kept" "$CHECK" merge --method "$m" "g_$m.gguf" base.gguf $G3
done
t "GGUF inspect: version, pairs in order, escaped text, provenance" sh -c "'$ACEM' inspect g_ace.gguf >ins.txt &&
    grep -q 'GGUF version 3, alignment 32' ins.txt && grep -q '^    general.architecture: test' ins.txt &&
    grep -qF 'tokenizer.ggml.tokens: [3 x STRING]' ins.txt && grep -qF 'messages %}\\n{{' ins.txt &&
    grep -qF 'acem.experts: [\"e1.gguf\",\"e2.gguf\",\"e3.gguf\"]' ins.txt &&
    grep -q 'blk.2.ffn.weight  *F32  *\[8, 64\]' ins.txt"
t "GGUF inspect of a file without tensors" sh -c "'$ACEM' inspect kv.gguf | grep -q '0 tensors'"
t "GGUF --threads 2: identical bytes" sh -c "'$ACEM' merge -q --threads 2 --base base.gguf -o g_thr.gguf $G3 && cmp -s g_thr.gguf g_ace.gguf"
t "GGUF of a GGUF output (its acem pairs replaced, not doubled)" sh -c "'$ACEM' merge -q --method average --base g_ace.gguf \
    -o g_again.gguf g_ties.gguf g_task-arithmetic.gguf && '$ACEM' inspect g_again.gguf | grep -c '^    acem.method: average' | grep -qx 1 &&
    ! '$ACEM' inspect g_again.gguf | grep -q 'acem.method: ace'"
t "GGUF --out-dtype f16 (1-D tensors keep F32)" "$ACEM" merge -q --out-dtype f16 --base base.gguf -o g_f16.gguf $G3
t "  == acem_merge" "$CHECK" merge --method ace --out-dtype f16 g_f16.gguf base.gguf $G3
t "GGUF --out-dtype q8_0 (Q8_0 where the last dim is whole blocks)" "$ACEM" merge -q --out-dtype q8_0 --base base.gguf -o g_q8.gguf $G3
t "  == acem_merge, quantized by ggml's rule" "$CHECK" merge --method ace --out-dtype q8_0 g_q8.gguf base.gguf $G3
t "  blk.2.ffn.weight is Q8_0, layers.0.attn.weight stays F32" sh -c "'$ACEM' inspect g_q8.gguf >ins.txt &&
    grep -q 'blk.2.ffn.weight  *Q8_0' ins.txt && grep -q 'layers.0.attn.weight  *F32' ins.txt"
for q in q4_0 q4_1 q5_0 q5_1; do
    t "GGUF --out-dtype $q" "$ACEM" merge -q --method average --out-dtype "$q" --base base.gguf -o "g_$q.gguf" $G3
    t "  == acem_merge, quantized by ggml's rule" "$CHECK" merge --method average --out-dtype "$q" "g_$q.gguf" base.gguf $G3
done
t "Q8_0 and Q4_K base: merged, written as F16; the excluded IQ2_XXS copied verbatim" "$ACEM" merge -q --exclude iq2 --base base_q8.gguf \
    -o g_fromq8.gguf $Q3
t "  == acem_merge on the dequantized values" "$CHECK" merge --method ace --exclude iq2 g_fromq8.gguf base_q8.gguf $Q3
t "  the plan says so" sh -c "'$ACEM' merge --dry-run --exclude iq2 --base base_q8.gguf -o x.gguf $Q3 2>&1 |
    grep -q '2 block-quantized tensors will be written as F16'"
# GGUF LoRA adapters (llama.cpp's layout): the low-rank merge equals the merge of
# the dense checkpoints base + alpha / r * B A (alpha 0: scale 1; F16 factors)
for m in ace average task-arithmetic ties; do
    t "GGUF LoRA adapters, $m" "$ACEM" merge -q --method "$m" --base base.gguf -o "gl_$m.gguf" lora1.gguf lora2.gguf
    t "  the dense checkpoints, $m" "$ACEM" merge -q --method "$m" --base base.gguf -o "gd_$m.gguf" lora1_dense.gguf lora2_dense.gguf
    t "  low-rank == dense within 1e-4" "$LORA" close "gl_$m.gguf" "gd_$m.gguf" 1e-4
done
t "GGUF LoRA --threads 2: identical bytes" sh -c "'$ACEM' merge -q --threads 2 --base base.gguf -o gl_thr.gguf lora1.gguf lora2.gguf &&
    cmp -s gl_thr.gguf gl_ace.gguf"
t "GGUF LoRA plan: the adapters and their scales" sh -c "'$ACEM' merge --dry-run --base base.gguf -o x.gguf lora1.gguf lora2.gguf 2>&1 |
    grep -q 'lora2.gguf: r from the shapes, adapter.lora.alpha 0 (scale 1): 2 LoRA modules'"
expect_error "GGUF LoRA: lora_a without lora_b" 2 "lora_bad.gguf|blk.2.ffn.weight.lora_b" merge --base base.gguf -o o/x.gguf lora1.gguf lora_bad.gguf
expect_error "GGUF LoRA on a safetensors base" 2 "lora1.gguf|base.safetensors" merge --base base.safetensors -o o/x.safetensors lora1.gguf
expect_error "GGUF LoRA mixed with a checkpoint" 2 "lora1.gguf|e1.gguf|all checkpoints or all adapters" merge --base base.gguf -o o/x.gguf lora1.gguf e1.gguf
# one merged GGUF adapter: applied to the base it gives the merged model
t "GGUF LoRA --output-adapter (exact)" "$ACEM" merge -q --base base.gguf --output-adapter gm_lora.gguf lora1.gguf lora2.gguf
t "  applied to the base == the merged model within 1e-5" sh -c "'$ACEM' merge -q --method average --base base.gguf \
    -o gm_applied.gguf gm_lora.gguf && '$LORA' close gm_applied.gguf gl_ace.gguf 1e-5"
t "  llama.cpp's layout: lora_a [q, in], lora_b [out, q], general.type adapter" sh -c "'$ACEM' inspect gm_lora.gguf >ins.txt &&
    grep -q 'layers.0.attn.weight.lora_a  *F32  *\[6, 16\]' ins.txt && grep -q 'layers.0.attn.weight.lora_b  *F32  *\[24, 6\]' ins.txt &&
    grep -q '^    general.type: adapter' ins.txt && grep -q '^    general.architecture: test' ins.txt"
t "GGUF LoRA --output-adapter --rank 2 (truncated, f16)" sh -c "'$ACEM' merge -q --base base.gguf --rank 2 --out-dtype f16 \
    --output-adapter gm_r2.gguf lora1.gguf lora2.gguf && '$ACEM' inspect gm_r2.gguf | grep -q 'blk.2.ffn.weight.lora_a  *F16  *\[2, 64\]'"
expect_error "GGUF LoRA --output-adapter as a directory name" 1 "--output-adapter|*.gguf" merge --base base.gguf --output-adapter o/ad lora1.gguf lora2.gguf
expect_error "GGUF LoRA --output-adapter with q8_0" 1 "--out-dtype Q8_0|f32, f16 or bf16" merge --base base.gguf --out-dtype q8_0 --output-adapter o/ad.gguf lora1.gguf
# llama.cpp itself loads what acem writes: merged models (F32, F16, Q8_0, from
# LoRA adapters) of a tiny llama, and the merged GGUF adapter on the base
t "tiny llama: ace" "$ACEM" merge -q --base tiny_base.gguf -o tl_ace.gguf tiny_e1.gguf tiny_e2.gguf
t "tiny llama: ties, --out-dtype f16" "$ACEM" merge -q --method ties --out-dtype f16 --base tiny_base.gguf -o tl_f16.gguf tiny_e1.gguf tiny_e2.gguf
t "tiny llama: --out-dtype q8_0" "$ACEM" merge -q --out-dtype q8_0 --base tiny_base.gguf -o tl_q8.gguf tiny_e1.gguf tiny_e2.gguf
t "tiny llama: --out-dtype q4_0" "$ACEM" merge -q --out-dtype q4_0 --base tiny_base.gguf -o tl_q4.gguf tiny_e1.gguf tiny_e2.gguf
t "tiny llama: two GGUF LoRA adapters into the model" "$ACEM" merge -q --base tiny_base.gguf -o tl_lora.gguf tiny_lora1.gguf tiny_lora2.gguf
t "tiny llama: two GGUF LoRA adapters into one" "$ACEM" merge -q --base tiny_base.gguf --output-adapter tl_adapter.gguf \
    tiny_lora1.gguf tiny_lora2.gguf
t "llama.cpp loads every one (llama_model_load_from_file, llama_adapter_lora_init)" "$LLAMA" "$LLAMA_LIBS" tiny_base.gguf \
    tl_ace.gguf tl_f16.gguf tl_q8.gguf tl_q4.gguf tl_lora.gguf --lora tiny_lora1.gguf tl_adapter.gguf
t "  and refuses a model it does not know (the check can fail)" sh -c "! '$LLAMA' '$LLAMA_LIBS' tiny_base.gguf g_ace.gguf --lora gm_lora.gguf"
# a second reader: Hugging Face's GGUF parser sees what acem sees (pairs, types,
# values, tensors, dims, types, offsets), in acem's outputs and in cli_gen's files
for f in g_ace.gguf g_q8.gguf g_fromq8.gguf g_again.gguf gl_ace.gguf gm_lora.gguf tl_q8.gguf tl_adapter.gguf base_q8.gguf kv.gguf lora2.gguf; do
    t "@huggingface/gguf reads $f as acem does" sh -c "'$CHECK' gguf-view $f >view.json &&
        '$NODE' '$TESTS_DIR/gguf_check.mjs' '$NPM_PREFIX' view.json $f"
done
expect_error "GGUF: a block type acem cannot dequantize" 2 "base_q8.gguf|blk.2.ffn.iq2|IQ2_XXS|--exclude" merge --base base_q8.gguf -o o/x.gguf $Q3
expect_error "GGUF base, safetensors output name" 1 "base.gguf|*.gguf" merge --base base.gguf -o o/x.safetensors $G3
expect_error "safetensors base, GGUF output name" 1 "o/x.gguf|GGUF base" merge --base base.safetensors -o o/x.gguf $E3
expect_error "GGUF with --out-shard-size" 1 "--out-shard-size" merge --out-shard-size 1K --base base.gguf -o o/x.gguf $G3
expect_error "GGUF with --shard" 1 "--shard" merge --shard 1/2 --base base.gguf -o o/x.gguf $G3
expect_error "--out-dtype q8_0 for safetensors" 1 "--out-dtype Q8_0|GGUF" merge --out-dtype q8_0 --base base.safetensors -o o/x.safetensors $E3
expect_error "GGUF expert of another model" 2 "e1.gguf|blk.2.ffn.weight" merge --base base.safetensors -o o/x.safetensors e1.gguf
expect_error "GGUF expert of another dtype" 2 "e1_q8.gguf|blk.2.ffn.weight" merge --base base.gguf -o o/x.gguf e1.gguf e1_q8.gguf
expect_error "truncated GGUF expert" 2 "trunc.gguf" merge --base base.gguf -o o/x.gguf e1.gguf trunc.gguf
expect_error "join: a GGUF file" 2 "g_ace.gguf|GGUF" join -o o/j g_ace.gguf
# split GGUF models (llama-gguf-split): read from their first part, written as one file
t "split GGUF base and experts" "$ACEM" merge -q --base base_split-00001-of-00002.gguf -o gs.gguf \
    e1_split-00001-of-00002.gguf e2_split-00001-of-00002.gguf
t "  the same tensors as the merge of the unsplit files" sh -c "'$ACEM' merge -q --base base.gguf -o gu.gguf e1.gguf e2.gguf &&
    '$CHECK' same gs.gguf gu.gguf"
t "  in the same order, without split.* pairs" sh -c "'$CHECK' gguf-view gs.gguf | grep -o '\[\"[a-z0-9_.]*\",\[' >o1.txt &&
    '$CHECK' gguf-view gu.gguf | grep -o '\[\"[a-z0-9_.]*\",\[' >o2.txt && cmp -s o1.txt o2.txt && test -s o1.txt &&
    ! '$ACEM' inspect gs.gguf | grep -q 'split\.'"
t "  inspect lists both parts" sh -c "'$ACEM' inspect base_split-00001-of-00002.gguf | grep -q '2 files, 11 tensors'"
mkdir -p lone && cp base_split-00001-of-00002.gguf lone/m-00001-of-00002.gguf
expect_error "a split GGUF model with a part missing" 3 "lone/m-00002-of-00002.gguf|missing" merge --base lone/m-00001-of-00002.gguf -o o/x.gguf e1.gguf
expect_error "a later part of a split GGUF model" 2 "base_split-00002-of-00002.gguf|give its first part" merge --base base_split-00002-of-00002.gguf -o o/x.gguf e1.gguf
expect_error "a split GGUF model not named as llama-gguf-split names it" 2 "split.gguf|3 parts|llama-gguf-split" merge --base split.gguf -o o/x.gguf e1.gguf

# ---- the plan, --dry-run, --memory-limit -------------------------------------------------------
rm -rf o && mkdir o
t "--dry-run succeeds" sh -c "'$ACEM' merge --dry-run --base base.safetensors -o o/dry.safetensors $E3 2>plan.txt"
t "  and writes nothing" test -z "$(ls -A o)"
t "  the plan names rules, exclusions, memory, output size" sh -c "grep -q 'tensors    10: 5 ace, 4 mean of deltas' plan.txt &&
    grep -q 'memory     peak' plan.txt && grep -q 'output     o/dry.safetensors: 1 file' plan.txt &&
    grep -q 'position_ids (I32)' plan.txt"
t "  the planned output size is exact" sh -c "'$ACEM' merge -q --base base.safetensors -o o/real.safetensors $E3 &&
    test \"\$(sed -n 's/.*(\([0-9]*\) bytes)\$/\1/p' plan.txt | head -n 1)\" = \"\$(wc -c <o/real.safetensors | tr -d ' ')\""
t "-q prints nothing" sh -c "test -z \"\$('$ACEM' merge -q --base base.safetensors -o o/q.safetensors $E3 2>&1)\""
t "one progress line per tensor when not a terminal" sh -c "'$ACEM' merge --base base.safetensors -o o/p.safetensors $E3 2>&1 |
    grep -c '^\[ *[0-9]*/10\]' | grep -qx 10"
t "summary: gated/refined, fallbacks, peak memory" sh -c "'$ACEM' merge --base base.safetensors -o o/s.safetensors $E3 2>&1 |
    grep -q 'gated' && '$ACEM' merge --base base.safetensors -o o/s.safetensors $E3 2>&1 | grep -q 'measured max RSS'"
t "--memory-limit above the plan runs" "$ACEM" merge -q --memory-limit 64M --base base.safetensors -o o/lim.safetensors $E3
expect_error "--memory-limit 1" 5 "memory-limit" merge --memory-limit 1 --base base.safetensors -o o/x.safetensors $E3

# ---- errors: exit code, a message naming file and tensor, nothing left behind -----------------
expect_error "missing tensor" 2 "e_missing.safetensors|layers.0.mlp.bias" merge --base base.safetensors -o o/x.safetensors e1.safetensors e_missing.safetensors
expect_error "extra tensor" 2 "e_extra.safetensors|extra.weight" merge --base base.safetensors -o o/x.safetensors e_extra.safetensors
expect_error "shape mismatch" 2 "e_shape.safetensors|layers.0.attn.weight|[16, 24]" merge --base base.safetensors -o o/x.safetensors e1.safetensors e_shape.safetensors
expect_error "dtype mismatch" 2 "e_dtype.safetensors|layers.1.mlp.weight|F16" merge --base base.safetensors -o o/x.safetensors e_dtype.safetensors e2.safetensors
expect_error "f16 expert for an f32 base" 2 "e1_f16.safetensors|dtype F16" merge --base base.safetensors -o o/x.safetensors e1_f16.safetensors
expect_error "truncated expert" 2 "trunc.safetensors|truncated" merge --base base.safetensors -o o/x.safetensors e1.safetensors trunc.safetensors
expect_error "truncated base" 2 "trunc.safetensors" merge --base trunc.safetensors -o o/x.safetensors e1.safetensors
expect_error "nonexistent expert" 3 "nope.safetensors|cannot open" merge --base base.safetensors -o o/x.safetensors e1.safetensors nope.safetensors
expect_error "nonexistent output directory" 3 "o/no/such" merge --base base.safetensors -o o/no/such/x.safetensors e1.safetensors
expect_error "index naming a missing tensor" 2 "sharded_bad|ghost.weight" merge --base sharded_bad -o o/x.safetensors sharded/e1
expect_error "directory without a model" 2 "neither" merge --base o -o o/x.safetensors e1.safetensors
expect_error "bad regex" 1 "a(b" merge --exclude 'a(b' --base base.safetensors -o o/x.safetensors e1.safetensors
expect_error "unknown method" 1 "frobnicate" merge --method frobnicate --base base.safetensors -o o/x.safetensors e1.safetensors
expect_error "unknown preset" 1 "gpt5" merge --preset gpt5 --base base.safetensors -o o/x.safetensors e1.safetensors
expect_error "unknown option" 1 "--bogus" merge --bogus --base base.safetensors -o o/x.safetensors e1.safetensors
expect_error "bad number" 1 "--eps" merge --eps abc --base base.safetensors -o o/x.safetensors e1.safetensors
expect_error "out-of-range density" 1 "density" merge --method ties --density 2 --base base.safetensors -o o/x.safetensors e1.safetensors
expect_error "bad --shard" 1 "4/3" merge --shard 4/3 --base base.safetensors -o o/x.safetensors e1.safetensors
expect_error "no experts" 1 "no experts" merge --base base.safetensors -o o/x.safetensors
expect_error "numerical failure mid-merge (NaN delta)" 4 "layers.1.mlp.weight|e_nan.safetensors" merge --base base.safetensors -o o/x.safetensors e1.safetensors e_nan.safetensors
expect_error "numerical failure with read-ahead (--threads 2)" 4 "layers.1.mlp.weight|e_nan.safetensors" merge --threads 2 --base base.safetensors -o o/x.safetensors e1.safetensors e_nan.safetensors
expect_error "numerical failure, sharded output" 4 "non-finite" merge --out-shard-size 1K --base base.safetensors -o o/dir e1.safetensors e_nan.safetensors
expect_error "output = an input" 1 "e1.safetensors" merge --base base.safetensors -o e1.safetensors e1.safetensors e2.safetensors
expect_error "sharded output into an input directory" 1 "sharded/e1" merge --out-shard-size 1K --base base.safetensors -o sharded/e1 sharded/e1
expect_error "inspect a truncated file" 2 "trunc.safetensors|truncated" inspect trunc.safetensors
expect_error "inspect a missing file" 3 "nope" inspect nope.safetensors
expect_error "join: a shard missing" 2 "shard 2/3 is missing" join -o o/j part1.safetensors part3.safetensors
expect_error "join: a shard twice" 2 "both shard 1/3" join -o o/j part1.safetensors part1.safetensors part3.safetensors
expect_error "join: not a shard output" 2 "m_ace.safetensors|no acem.shard" join -o o/j part1.safetensors part2.safetensors m_ace.safetensors
"$ACEM" merge -q --method average --shard 3/3 --base base.safetensors -o other3.safetensors $E3
expect_error "join: a part from another merge" 2 "different merges|other3.safetensors" join -o o/j part1.safetensors part2.safetensors other3.safetensors

# ---- an interrupted merge leaves nothing behind --------------------------------------------------
# SIGTERM, SIGINT or SIGHUP while the output is being written: the process ends
# by that signal (exit 128 + its number), and o/ holds neither the output nor
# a temporary. The signal is sent once the temporary exists, i.e. with the merge
# under way (24 ACE tensors with a 3072 x 3072 Cholesky each: seconds of work).
# Single-file output with 1 and 2 threads, and sharded output (a temporary
# directory of shards).
t "cli_gen --slow" "$GEN" --slow .
# 19 MB of output: with 2 threads the write-behind thread flushes and
# fdatasyncs the file every 16 MB while it writes; the bytes are 1 thread's
"$ACEM" merge -q --threads 1 --base slow_base.safetensors -o slow_t1.safetensors slow_e1.safetensors slow_e2.safetensors
t "--threads 2, 19 MB output (write-behind syncs): identical bytes" sh -c "'$ACEM' merge -q --threads 2 \
    --base slow_base.safetensors -o slow_t2.safetensors slow_e1.safetensors slow_e2.safetensors &&
    cmp -s slow_t1.safetensors slow_t2.safetensors"
for sig in TERM:15 INT:2 HUP:1; do
    name=${sig%%:*}
    num=${sig#*:}
    for how in "--threads 1" "--threads 2" "--out-shard-size 4M"; do
        rm -rf o && mkdir o
        "$ACEM" merge -q $how --base slow_base.safetensors -o o/out.safetensors \
            slow_e1.safetensors slow_e2.safetensors >"$LOG" 2>&1 &
        pid=$!
        n=0
        while [ -z "$(ls -A o)" ] && [ $n -lt 600 ] && kill -0 $pid 2>/dev/null; do
            sleep 0.02
            n=$((n + 1))
        done
        seen=$(ls -A o | tr '\n' ' ')
        kill -s "$name" $pid 2>/dev/null
        { wait $pid; } 2>/dev/null
        rc=$?
        if [ -z "$seen" ]; then fail "SIG$name, $how: no temporary appeared before the signal (rc $rc)"
        elif [ "$rc" != $((128 + num)) ]; then fail "SIG$name, $how: exit $rc, expected $((128 + num)) (saw: $seen)"
        elif [ -n "$(ls -A o)" ]; then fail "SIG$name, $how: left files behind: $(ls -A o | tr '\n' ' ')"
        else pass
        fi
    done
done

# ---- a write that fails mid-merge ------------------------------------------------------------------
# A file size limit (SIGXFSZ ignored, so write() fails with EFBIG) stops the
# output after about 3 MB: exit 3, the message names the output and "write
# error", nothing is left in o/. With 2 threads the failing write is the
# write-behind thread's; the main thread reports it.
fsize_old=$(ulimit -S -f)
for how in "--threads 1" "--threads 2"; do
    ulimit -S -f 3000
    trap '' XFSZ
    expect_error "write error (file size limit), $how" 3 "o/out.safetensors|write error" merge -q $how \
        --base slow_base.safetensors -o o/out.safetensors slow_e1.safetensors slow_e2.safetensors
    ulimit -S -f "$fsize_old"
    trap - XFSZ
done

# ---- the inputs were never modified --------------------------------------------------------------
sums_after=$(cksum $inputs)
if [ "$sums_before" = "$sums_after" ]; then pass; else fail "inputs changed"; fi

echo "test_cli: $passed passed, $failed failed"
[ "$failed" = 0 ]
