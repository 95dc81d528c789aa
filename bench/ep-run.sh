#!/usr/bin/env bash
# bench/ep_layer.py for several expert-parallel degrees in one call of a GPU host (each call has
# 10 minutes), from the project root, with the inputs `node bench/ep-compare.mjs prepare` wrote:
#   bash bench/ep-run.sh OUT INPUTS N [N ...]      e.g. bash bench/ep-run.sh "$OUT" .ep/inputs 8 4 2 1
# Each N runs under torchrun (python3 -m torch.distributed.run) with an equal share of
# EP_BUDGET_S (default 540 s): ep_layer.py skips the runs that would start after its share less
# 60 s, and `timeout` stops it at its share (the JSON it wrote after each run stays). Writes
# OUT/ep-layer-N<N>.json, OUT/ep-layer.log (every N) and OUT/machine.txt (GPUs, topology): at
# most 4 + 2 files, under the GPU host's 8-file limit.
set -uo pipefail
out=${1:?usage: bench/ep-run.sh OUT INPUTS N [N ...]}
inputs=${2:?usage: bench/ep-run.sh OUT INPUTS N [N ...]}
shift 2
[ $# -ge 1 ] || { echo "ep-run.sh: name at least one N" >&2; exit 2; }
mkdir -p "$out"
{
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  nvidia-smi topo -m
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "nccl", torch.cuda.nccl.version())'
} > "$out/machine.txt" 2>&1
budget=${EP_BUDGET_S:-540}
share=$(( budget / $# ))
status=0
for N in "$@"; do
  manifest="$inputs/manifest-N$N.json"
  if [ ! -f "$manifest" ]; then echo "ep-run.sh: $manifest is missing" | tee -a "$out/ep-layer.log"; status=2; continue; fi
  echo "=== N=$N ($(date -Is), share ${share}s)" >> "$out/ep-layer.log"
  PYTHONUNBUFFERED=1 timeout -k 10 "$share" python3 -m torch.distributed.run --standalone --nproc-per-node "$N" \
    bench/ep_layer.py --manifest "$manifest" --out "$out/ep-layer-N$N.json" --budget-s $(( share - 60 )) >> "$out/ep-layer.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || { echo "ep-run.sh: N=$N exited $rc" | tee -a "$out/ep-layer.log"; status=1; }
done
grep -E '^ep_layer|exited|Error' "$out/ep-layer.log" | tail -20
exit $status
