#!/usr/bin/env bash
# tests/test_lora_cli.sh [BUILD_DIR] - end-to-end tests of `acem merge` with PEFT
# LoRA adapters as experts (tools/acem.c), against dense checkpoints built from
# the same adapters and against float64 checks.
#
# Needs BUILD_DIR/acem, BUILD_DIR/cli_lora (tests/cli_lora.c: writes the base
# model, the adapters and their dense checkpoints; compares and applies) and
# BUILD_DIR/cli_check (bitwise comparison). Prints
# "test_lora_cli: N passed, N failed"; exits non-zero if anything failed.
set -u
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)

B=${1:-build}
. "$TESTS_DIR/cli_lib.sh"
cli_require test_lora_cli "$B/acem" "$B/cli_lora" "$B/cli_check"
ACEM=$(cd "$B" && pwd)/acem
LORA=$(cd "$B" && pwd)/cli_lora
CHECK=$(cd "$B" && pwd)/cli_check
cli_scratch acem_lora_cli

t "cli_lora gen" "$LORA" gen .
ALL="a1 a2 a3 a4 a5"                 # mixed module sets, rsLoRA, patterns, fan_in_fan_out, embedding, modules_to_save
DALL="d_a1.safetensors d_a2.safetensors d_a3.safetensors d_a4.safetensors d_a5.safetensors"
SAME="a2 a7 a8"                      # one module set (ACE: see below)
DSAME="d_a2.safetensors d_a7.safetensors d_a8.safetensors"
NOFIFO="a1 a2 a3 a5"

# ---- the plan ---------------------------------------------------------------------------
t "dry run: the plan" sh -c "'$ACEM' merge --dry-run --method ties --base base.safetensors $ALL 2>&1 | tee plan.txt >/dev/null"
t "  lists the adapters with rsLoRA, patterns, fan_in_fan_out" sh -c "grep -q 'rsLoRA' plan.txt && grep -q 'rank_pattern' plan.txt &&
    grep -q 'fan_in_fan_out' plan.txt && grep -q 'a5: r 4, lora_alpha 8' plan.txt"
t "  ties: dense path, and why" grep -q 'ties has no exact low-rank form' plan.txt
t "  modules_to_save shown as dense deltas" sh -c "grep -q 'modules_to_save weights (merged as dense deltas' plan.txt && grep -q 'score.weight' plan.txt"
t "ace: the low-rank path" sh -c "'$ACEM' merge --dry-run --base base.safetensors $ALL 2>&1 | grep -q '17 tensors merged exactly in low-rank form'"

# ---- every rule: the adapters == the dense checkpoints built from them ------------------------
# ties, dare-*, iso-c, tsv-m take the dense path: bitwise equal. average, task-arithmetic:
# low-rank, within 1e-4. ACTMat: low-rank against a float64 ACTMat (the f32 dense path is
# ill-conditioned here: about 2e-3 away from float64 on q_proj), and against the dense path
# on a well-conditioned subset. ACE merges each tensor over the adapters that change it,
# so it is compared with the dense path on adapters sharing one module set, and on mixed
# sets the tensors one adapter changes must equal base + that adapter's delta.
for m in ties dare-ta dare-ties iso-c tsv-m; do
    t "$m: adapters" "$ACEM" merge -q --method "$m" --base base.safetensors -o "l_$m.safetensors" $ALL
    t "$m: dense checkpoints" "$ACEM" merge -q --method "$m" --base base.safetensors -o "d_$m.safetensors" $DALL
    t "  $m: bitwise equal" "$CHECK" same "l_$m.safetensors" "d_$m.safetensors"
done
for m in average task-arithmetic; do
    t "$m: adapters" "$ACEM" merge -q --method "$m" --base base.safetensors -o "l_$m.safetensors" $ALL
    t "$m: dense checkpoints" "$ACEM" merge -q --method "$m" --base base.safetensors -o "d_$m.safetensors" $DALL
    t "  $m: low-rank == dense within 1e-4" "$LORA" close "l_$m.safetensors" "d_$m.safetensors" 1e-4
done
t "actmat: adapters" "$ACEM" merge -q --method actmat --base base.safetensors -o l_actmat.safetensors $ALL
t "  actmat: == float64 ACTMat of the dense checkpoints within 1e-5" "$LORA" actmat64 l_actmat.safetensors base.safetensors 1e-5 $DALL
t "actmat (a1 a4 a5): adapters" "$ACEM" merge -q --method actmat --base base.safetensors -o l_act3.safetensors a1 a4 a5
t "actmat (a1 a4 a5): dense" "$ACEM" merge -q --method actmat --base base.safetensors -o d_act3.safetensors d_a1.safetensors d_a4.safetensors d_a5.safetensors
t "  actmat: low-rank == dense within 1e-4" "$LORA" close l_act3.safetensors d_act3.safetensors 1e-4
t "ace (one module set): adapters" "$ACEM" merge -q --base base.safetensors -o l_ace.safetensors $SAME
t "ace (one module set): dense" "$ACEM" merge -q --base base.safetensors -o d_ace.safetensors $DSAME
t "  ace: low-rank == dense within 1e-4" "$LORA" close l_ace.safetensors d_ace.safetensors 1e-4
t "ace, eps/tau/k-frac/lambda: adapters" "$ACEM" merge -q --eps 3e-3 --tau 0.5 --k-frac 0.5 --lambda 0.8 --base base.safetensors -o l_ace2.safetensors $SAME
t "ace, eps/tau/k-frac/lambda: dense" "$ACEM" merge -q --eps 3e-3 --tau 0.5 --k-frac 0.5 --lambda 0.8 --base base.safetensors -o d_ace2.safetensors $DSAME
t "  ace: low-rank == dense within 1e-4" "$LORA" close l_ace2.safetensors d_ace2.safetensors 1e-4
t "ace, mixed module sets" "$ACEM" merge -q --base base.safetensors -o l_acem.safetensors $ALL
t "  tensors only a2 changes == base + a2" "$LORA" apply a2 base.safetensors l_acem.safetensors 1e-5 'k_proj|o_proj|up_proj'
t "  tensors only a4 changes (fan_in_fan_out, prefix) == base + a4" "$LORA" apply a4 base.safetensors l_acem.safetensors 1e-5 'c_attn|c_proj|c_fc'
t "  tensors only a5 changes (embedding, modules_to_save) == base + a5" "$LORA" apply a5 base.safetensors l_acem.safetensors 1e-5 'score.weight|lm_head|embed'
t "--threads 3: identical bytes (ace)" sh -c "'$ACEM' merge -q --threads 3 --base base.safetensors -o thr.safetensors $ALL && cmp -s thr.safetensors l_acem.safetensors"
t "--threads 3: identical bytes (ties)" sh -c "'$ACEM' merge -q --threads 3 --method ties --base base.safetensors -o thr2.safetensors $ALL && cmp -s thr2.safetensors l_ties.safetensors"
t "--out-shard-size 8K" "$ACEM" merge -q --out-shard-size 8K --base base.safetensors -o shd $ALL
t "  the same tensors (bitwise), shards + index" sh -c "'$CHECK' same shd l_acem.safetensors && test -f shd/model.safetensors.index.json"
t "--out-dtype bf16" "$ACEM" merge -q --out-dtype bf16 --base base.safetensors -o bf.safetensors $ALL
t "  within bf16 rounding" "$LORA" close bf.safetensors l_acem.safetensors 1e-2

# ---- the merged adapter ----------------------------------------------------------------------
for m in ace average task-arithmetic actmat; do
    t "$m: --output-adapter" "$ACEM" merge -q --method "$m" --base base.safetensors --output-adapter "o_$m" $NOFIFO
    t "$m: the model from the same adapters" "$ACEM" merge -q --method "$m" --base base.safetensors -o "m_$m.safetensors" $NOFIFO
    t "  $m: base + the output adapter == the merged model within 1e-5" "$LORA" apply "o_$m" base.safetensors "m_$m.safetensors" 1e-5
done
t "  config: lora_alpha = r, no rsLoRA, patterns, modules_to_save" sh -c "grep -q '\"use_rslora\": false' o_ace/adapter_config.json &&
    grep -q '\"r\": 16,' o_ace/adapter_config.json && grep -q '\"lora_alpha\": 16,' o_ace/adapter_config.json &&
    grep -q 'rank_pattern' o_ace/adapter_config.json && grep -q '\"modules_to_save\": \[\"score\"\]' o_ace/adapter_config.json"
t "  full weights and embedding factors under PEFT names" sh -c "'$ACEM' inspect o_ace/adapter_model.safetensors >ins.txt &&
    grep -q 'base_model.model.score.weight ' ins.txt && grep -q 'base_model.model.model.embed_tokens.lora_embedding_A' ins.txt"
t "  no temporaries" sh -c "test -z \"\$(ls -A . | grep tmp)\""
t "the output adapter is an input again (task-arithmetic, lambda 1)" "$ACEM" merge -q --method task-arithmetic --lambda 1 \
    --base base.safetensors -o rt.safetensors o_ace
t "  == the merged model within 1e-5" "$LORA" close rt.safetensors m_ace.safetensors 1e-5
t "fan_in_fan_out adapters: --output-adapter" "$ACEM" merge -q --base base.safetensors --output-adapter o_fifo a4 a6
t "  fan_in_fan_out kept" grep -q '"fan_in_fan_out": true' o_fifo/adapter_config.json
t "  the model" "$ACEM" merge -q --base base.safetensors -o m_fifo.safetensors a4 a6
t "  base + adapter == model within 1e-5" "$LORA" apply o_fifo base.safetensors m_fifo.safetensors 1e-5
t "into an existing directory" sh -c "mkdir -p o_exist && '$ACEM' merge -q --base base.safetensors --output-adapter o_exist $NOFIFO &&
    cmp -s o_exist/adapter_model.safetensors o_ace/adapter_model.safetensors && test -z \"\$(ls -A o_exist | grep tmp)\""
# --rank K
t "--rank 2" sh -c "'$ACEM' merge --method ace --base base.safetensors --output-adapter o_r2 --rank 2 $NOFIFO 2>summary.txt"
t "  summary reports the energy kept" grep -q 'energy .*kept at --rank 2: min' summary.txt
t "  truncation == the prefix of the exact adapter (SVD order)" sh -c "'$LORA' trunc o_ace o_r2 2 >trunc.txt"
t "  the reported energy == the checker's" sh -c "a=\$(sed -n 's/.*--rank 2: min \([0-9.]*\).*mean \([0-9.]*\), max \([0-9.]*\).*/\1 \2 \3/p' summary.txt);
    b=\$(sed -n 's/^energy min \([0-9.]*\) mean \([0-9.]*\) max \([0-9.]*\)/\1 \2 \3/p' trunc.txt);
    test -n \"\$a\" && awk -v a=\"\$a\" -v b=\"\$b\" 'BEGIN { split(a, x); split(b, y);
        for (i = 1; i <= 3; ++i) if ((x[i] - y[i]) > 1e-4 || (y[i] - x[i]) > 1e-4) exit 1 }'"
t "--rank 3 (average)" "$ACEM" merge -q --method average --base base.safetensors --output-adapter o_r3 --rank 3 $NOFIFO
t "  truncation == prefix" "$LORA" trunc o_average o_r3 3

# ---- refusals: exit 2 (input) or 1 (usage), clear messages, nothing written ------------------------
expect_error "missing lora_B" 2 "bad_missing_b|v_proj.lora_B.weight|missing" merge --base base.safetensors -o o/x.safetensors a1 bad_missing_b
expect_error "wrong shapes" 2 "bad_shape|q_proj.lora_A.weight|[16, 16]" merge --base base.safetensors -o o/x.safetensors bad_shape a2
expect_error "bad JSON" 2 "bad_json/adapter_config.json|malformed JSON" merge --base base.safetensors -o o/x.safetensors a1 bad_json
expect_error "r mismatch" 2 "bad_r|rank 5|rank 4" merge --base base.safetensors -o o/x.safetensors bad_r
expect_error "DoRA (use_dora)" 2 "bad_dora|DoRA" merge --base base.safetensors -o o/x.safetensors a1 bad_dora
expect_error "DoRA (magnitude vector)" 2 "bad_dora_key|lora_magnitude_vector" merge --base base.safetensors -o o/x.safetensors bad_dora_key
expect_error "module absent from the base" 2 "bad_module|layers.9.self_attn.q_proj" merge --base base.safetensors -o o/x.safetensors a1 bad_module
expect_error "adapters and checkpoints mixed" 2 "a1|d_a2.safetensors|all checkpoints or all adapters" merge --base base.safetensors -o o/x.safetensors a1 d_a2.safetensors
expect_error "--output-adapter with ties" 1 "ties has no exact low-rank form" merge --method ties --base base.safetensors --output-adapter o/ad a1 a2
expect_error "--output-adapter, mixed fan_in_fan_out" 2 "disagree on fan_in_fan_out" merge --base base.safetensors --output-adapter o/ad a1 a4
expect_error "--rank without --output-adapter" 1 "--rank" merge --rank 2 --base base.safetensors -o o/x.safetensors a1
expect_error "-o and --output-adapter" 1 "exclude each other" merge --base base.safetensors -o o/x.safetensors --output-adapter o/ad a1
expect_error "--output-adapter with checkpoints" 1 "needs LoRA adapters" merge --base base.safetensors --output-adapter o/ad d_a1.safetensors

echo "test_lora_cli: $passed passed, $failed failed"
[ "$failed" = 0 ]
