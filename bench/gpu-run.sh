#!/usr/bin/env bash
# The GPU-host benchmarks in two commands (each fits the host's 10-minute call), from the project
# root on the GPU host after `../shared/gpu/prepare.sh packages/cli/dist/bin.js bench/*.bench.ts`
# on the dev machine and `cp -r packages/workloads/data .gpu/data`:
#   bash bench/gpu-run.sh OUT layer      # moe-route's layer pipeline and the peers, one command (issue 24's run)
#   bash bench/gpu-run.sh OUT pipeline   # the configured pipeline, the configured CLI run, lowered stages
#   bash bench/gpu-run.sh OUT grid       # expert-GEMM grids, indirect vs direct (T 32–4096), and the wall-gap probe
#   bash bench/gpu-run.sh OUT staged     # workgroup-memory fragment probe, staged int8 GEMM plans (tiny diagnostics, then Mixtral/OLMoE T 128–4096),
#                                        # then the layer at T 8/2048/4096 (buffer pool)
#                                        # (after ../shared/gpu/prepare.sh bench/sgm-shared-probe.ts bench/int8-sweep.bench.ts bench/webgpu-layer.bench.ts)
#   bash bench/gpu-run.sh OUT table      # the layer (f16 and int8, default plans) at T 1–4096 and the peers (then node bench/report.mjs OUT)
#   bash bench/gpu-run.sh OUT gate       # the gate matmul alone: team kernels, default tiles, candidate tiles (T 1–4096),
#                                        # then the layer at T 32–4096 (after ../shared/gpu/prepare.sh bench/gate.bench.ts bench/webgpu-layer.bench.ts)
#   bash bench/gpu-run.sh OUT prefetch   # multi-row kernels' weight-load timing (pf 0/1/2) per plan layout, Mixtral/OLMoE T 1–128; f16-unpack probe
#   bash bench/gpu-run.sh OUT multirow   # multi-row decode sweep → plan table → layer + peers (T ≤ 512) → parity (Mixtral T = 16, OLMoE T = 32, 128)
set -uo pipefail
out=${1:?out dir}; mode=${2:-pipeline}
mkdir -p "$out"
source .gpu/env.sh >/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
if [ "$mode" = multirow ]; then
  # the multi-row decode sweep, the plan table from it, then the layer (single-row kernels beside) and the peers
  timeout 240 node .gpu/webgpu-layer.bench.mjs --out /tmp/mr-sweep --shapes mixtral-8x7b --tokens 1,8,32,128 --policies dynamic --no-parity --multirow-sweep 2>&1 | grep -v '^Warning: maxDynamic' > "$out/multirow-sweep.log"
  node bench/multirow-plans.mjs "$out/multirow-sweep.log" > "$out/multirow-plans.json"
  timeout 150 node .gpu/webgpu-layer.bench.mjs --out "$out" --tokens "${TOKENS:-1,8,32,128,512}" --policies "dynamic,dynamic/single-row,drop γ1.0,dynamic/int8" --mr-plans "$out/multirow-plans.json" 2>&1 | grep -v '^Warning: maxDynamic' > "$out/webgpu-layer.log"
  PYTHONUNBUFFERED=1 timeout 170 python3 bench/peer_mixtral.py --out "$out" --tokens "${TOKENS:-1,8,32,128,512}" --budget-s 130 > "$out/peers.log" 2>&1
  # GPU parity of the multi-row kernels against the CPU reference at batch sizes where they run
  mkdir -p "$out/parity"
  timeout "${PARITY_S:-120}" node .gpu/webgpu-layer.bench.mjs --out "$out/parity" --parity-only --parity-tokens "${PARITY_TOKENS:-mixtral-8x7b:16,olmoe-1b-7b:32,olmoe-1b-7b:128}" --mr-plans "$out/multirow-plans.json" 2>&1 | grep -v '^Warning: maxDynamic' > "$out/parity.log"
  exit 0
fi
if [ "$mode" = prefetch ]; then
  # multi-row kernels: each tile's weight loads after the staging barrier (pf 0), before the staging
  # (pf 1) or one tile ahead (pf 2), with and without fma chains (fm), for the plan layouts of each
  # group size (SUFFIXES: pf[:fm] per base layout nr:ks:cpt:wr, e.g. "0 0:1 2 2:1"; EXTRA32: more
  # base layouts at Mixtral T = 32; MORE32 / MT32 with ONLY32=1: only those, at block rows MT32);
  # then the f16-unpack probe (NO_PROBE=1 skips it)
  # (after ../shared/gpu/prepare.sh bench/webgpu-layer.bench.ts bench/f16-unpack-probe.ts)
  pfx() { local r=''; for l in "$@"; do for p in ${SUFFIXES:-0 1 2}; do r="$r,$l:$p"; done; done; echo "${r#,}"; }
  sweep() {
    timeout 150 node .gpu/webgpu-layer.bench.mjs --out /tmp/pf-sweep --shapes "$1" --tokens "$2" --policies dynamic --no-parity \
      --multirow-sweep --mr-mt "$3" --mr-layouts "$4" 2>&1 | grep -v '^Warning: maxDynamic' >> "$out/prefetch-sweep.log"
  }
  if [ -z "${ONLY32:-}" ]; then
    sweep mixtral-8x7b 1 2 "$(pfx 8:16:4:1 8:16:2:1 16:8:4:1)"
    sweep mixtral-8x7b 8 8 "$(pfx 32:8:2:2 16:8:2:2)"
    sweep mixtral-8x7b 32 16 "$(pfx 32:8:2:2 32:8:1:4 64:4:2:2 32:8:4:2 ${EXTRA32:-})"
    sweep mixtral-8x7b 128 32 "$(pfx 64:4:2:2 64:8:2:4 128:2:2:1)"
    sweep olmoe-1b-7b 8 2 "$(pfx 8:16:4:1)"
    sweep olmoe-1b-7b 32 16 "$(pfx 32:8:2:2)"
    sweep olmoe-1b-7b 128 32 "$(pfx 128:2:2:1 64:4:2:4)"
  fi
  # more layouts at Mixtral T = 32 only (ONLY32=1 skips every other sweep above)
  [ -z "${MORE32:-}" ] || sweep mixtral-8x7b 32 "${MT32:-16}" "$(pfx $MORE32)"
  [ -n "${NO_PROBE:-}" ] || timeout 60 node .gpu/f16-unpack-probe.mjs 2>&1 | grep -v '^Warning: maxDynamic' > "$out/f16-unpack-probe.log"
  exit 0
fi
if [ "$mode" = gate ]; then
  # the gate kernels side by side (GPU ms from timestamp queries, parity against the CPU), then the layer with the default gate
  timeout "${GATE_S:-330}" node .gpu/gate.bench.mjs --out "$out" ${TOKENS:+--tokens "$TOKENS"} 2>&1 | grep -v '^Warning: maxDynamic' > "$out/gate.log"
  timeout "${LAYER_S:-200}" node .gpu/webgpu-layer.bench.mjs --out "$out" --no-parity --tokens "${LAYER_TOKENS:-32,512,2048,4096}" --policies dynamic,dynamic/int8 2>&1 | grep -v '^Warning: maxDynamic' > "$out/webgpu-layer.log"
  exit 0
fi
if [ "$mode" = table ]; then
  # the layer (f16 auto and int8 W8A8, default plans) at every T, then the peers, in one command; then report.mjs OUT
  timeout "${LAYER_S:-200}" node .gpu/webgpu-layer.bench.mjs --out "$out" --tokens "${TOKENS:-1,8,32,128,512,2048,4096}" --policies "${POLICIES:-dynamic,dynamic/int8}" 2>&1 | grep -v '^Warning: maxDynamic' > "$out/webgpu-layer.log"
  PYTHONUNBUFFERED=1 timeout "${PEERS_S:-260}" python3 bench/peer_mixtral.py --out "$out" --tokens "${TOKENS:-1,8,32,128,512,2048,4096}" --budget-s "${PEER_BUDGET_S:-200}" > "$out/peers.log" 2>&1
  exit 0
fi
if [ "$mode" = staged ]; then
  timeout 90 node .gpu/sgm-shared-probe.mjs 2>&1 | grep '"probe"' > "$out/probe.log"
  timeout 120 node .gpu/int8-sweep.bench.mjs --out "$out/tiny" --tiny --tokens 32,128 --no-dot4 --plans S1,S1a0,X1,X2,X3,X4,X5,X6,X7 2>&1 | grep '^{' > "$out/tiny.log"
  timeout "${SWEEP_S:-240}" node .gpu/int8-sweep.bench.mjs --out "$out" --tokens "${SWEEP_TOKENS:-128,2048,4096}" --no-dot4 --plans "${SWEEP_PLANS:-P2,S1,S1a0,S2}" 2>&1 | grep '^{' > "$out/sweep.log"
  # the buffer pool at large T: wall vs GPU of back-to-back calls after calls of other shapes
  mkdir -p "$out/pool"
  timeout 100 node .gpu/webgpu-layer.bench.mjs --out "$out/pool" --no-parity --tokens 8,2048,4096 --policies dynamic,dynamic/int8 2>&1 | grep -v '^Warning: maxDynamic' > "$out/pool.log"
  exit 0
fi
if [ "$mode" = grid ]; then
  # expert-GEMM grids: the indirect grid against the default direct grid (row-tile loop), back to back
  for v in indirect direct; do
    timeout 120 node .gpu/webgpu-layer.bench.mjs --out "$out/$v" --no-parity --tokens "${TOKENS:-32,128,512,2048,4096}" --policies dynamic,dynamic/int8 $([ $v = indirect ] && echo --indirect-gemm-grid) 2>&1 | grep -v '^Warning: maxDynamic' > "$out/grid-$v.log"
  done
  timeout 60 node .gpu/wall-gap-probe.mjs 2>&1 | grep -v '^Warning: maxDynamic' > "$out/wall-gap.log"
  exit 0
fi
if [ "$mode" = layer ]; then
  node .gpu/webgpu-layer.bench.mjs --out "$out" 2>&1 | grep -v '^Warning: maxDynamic' > "$out/webgpu-layer.log"
  PYTHONUNBUFFERED=1 python3 bench/peer_mixtral.py --out "$out" --budget-s 220 > "$out/peers.log" 2>&1
  exit 0
fi
node .gpu/pipeline.bench.mjs --out "$out" 2>&1 | grep -v '^Warning: maxDynamic' > "$out/pipeline.log"
for T in 1 32 512; do
  n=$([ "$T" -ge 512 ] && echo 16 || echo 64)
  /usr/bin/time -v node .gpu/bin.mjs run --config bench/configs/mixtral-drop-webgpu.json --tokens "$T" --batches "$n" --json --no-progress \
    > "$out/cli-run-T$T.json" 2> "$out/cli-run-T$T.time" || echo "cli run T=$T failed: $(tail -3 "$out/cli-run-T$T.time")"
done
node .gpu/policy-stages.bench.mjs --out "$out" 2>&1 | grep -v '^Warning: maxDynamic' > "$out/policy-stages.log"
node .gpu/lowering-stages.bench.mjs --out "$out/lowering-stages.json" 2>&1 | grep -v '^Warning: maxDynamic' > "$out/lowering-stages.log"
