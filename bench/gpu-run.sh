#!/usr/bin/env bash
# The GPU-host benchmarks in two commands (each fits the host's 10-minute call), from the project
# root on the GPU host after `../shared/gpu/prepare.sh packages/cli/dist/bin.js bench/*.bench.ts`
# on the dev machine and `cp -r packages/workloads/data .gpu/data`:
#   bash bench/gpu-run.sh OUT layer      # moe-route's layer pipeline and the peers, one command (issue 24's run)
#   bash bench/gpu-run.sh OUT pipeline   # the configured pipeline, the configured CLI run, lowered stages
set -uo pipefail
out=${1:?out dir}; mode=${2:-pipeline}
mkdir -p "$out"
source .gpu/env.sh >/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
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
