#!/usr/bin/env bash
# One command on the GPU host (see bench/README.md): the configured pipeline benchmark, the
# configured CLI run at the Mixtral shape (wall time, peak memory), and the peers.
# Usage (from the project root on the GPU host, after ../shared/gpu/prepare.sh on the dev machine):
#   bash bench/gpu-run.sh OUT_DIR [quick]
set -uo pipefail
out=${1:?out dir}; mode=${2:-full}
mkdir -p "$out"
source .gpu/env.sh >/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
echo "== pipeline bench"
node .gpu/pipeline.bench.mjs --out "$out" 2>&1 | grep -v '^Warning: maxDynamic' | tee "$out/pipeline.log"
echo "== configured CLI run (moe-route run --backend webgpu) at the Mixtral shape"
for T in 1 32 512; do
  n=$([ "$T" -ge 512 ] && echo 16 || echo 64)
  /usr/bin/time -v node .gpu/bin.mjs run --config bench/configs/mixtral-drop-webgpu.json --tokens "$T" --batches "$n" --json --no-progress \
    > "$out/cli-run-T$T.json" 2> "$out/cli-run-T$T.time" || echo "cli run T=$T failed: $(tail -3 "$out/cli-run-T$T.time")"
  grep -E 'Maximum resident|Elapsed' "$out/cli-run-T$T.time"
  node -e "const r=require('./$out/cli-run-T$T.json'); console.log(JSON.stringify({T:$T, startupMs:r.pipeline.startupMs, msPerBatch:r.pipeline.msPerBatch, stages:r.pipeline.stages.map(s=>s.stage+':'+s.where), dropped:r.droppedFraction}))" 2>/dev/null
done
echo "== peers"
if [ "$mode" = quick ]; then PYTHONUNBUFFERED=1 python3 bench/peer_mixtral.py --quick --out "$out" 2>&1 | tee "$out/peers.log"
else PYTHONUNBUFFERED=1 python3 bench/peer_mixtral.py --out "$out" 2>&1 | tee "$out/peers.log"; fi
