#!/usr/bin/env node
// Fits the shipped cost-model calibrations from one GPU benchmark run (bench/README.md's
// commands: webgpu-layer.json and peer-mixtral.json from the same command), names them after
// the GPU the peer reports (H100, H200), writes <gpu>-hf-grouped-mm.json, <gpu>-webgpu.json
// and, when the run has int8 rows, <gpu>-webgpu-int8.json into src/calibration, then regenerates
// src/calibration/default.ts from every JSON there. Needs `npm run build` first.
// Usage: node scripts/calibrate.mjs [--results dir]   (default: bench/results)
//        node scripts/calibrate.mjs --defaults-only     (only regenerate default.ts from the JSON files,
//          e.g. after adding a calibration written by bench/ep-compare.mjs)
//   The H100 calibrations came from the run of 2026-11-22 (git show 451340d:bench/results/…).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { checkCalibration, fitCalibration } from '../dist/index.js'

const calDir = new URL('../src/calibration/', import.meta.url)
if (process.argv.includes('--defaults-only')) {
  writeDefaults()
  process.exit(0)
}
const root = new URL('../../../', import.meta.url)
const ai = process.argv.indexOf('--results')
const dir = ai >= 0 ? new URL(`${process.argv[ai + 1].replace(/\/?$/, '/')}`, `file://${process.cwd()}/`) : new URL('bench/results/', root)
const peer = JSON.parse(readFileSync(new URL('peer-mixtral.json', dir)))
const gpu = JSON.parse(readFileSync(new URL('webgpu-layer.json', dir)))
const tag = /H100/.test(peer.meta.gpu) ? 'h100' : /H200/.test(peer.meta.gpu) ? 'h200' : null
if (!tag) throw new Error(`calibrate: unknown GPU '${peer.meta.gpu}' (H100 or H200)`)
const GPU = tag.toUpperCase()
const shape = { hidden: 4096, intermediate: 14336, topK: 2 }
const rows = (list) => list.map((r) => ({ tokens: r.T, activeExperts: r.activeExperts, ms: r.ms }))
const date = (d) => d.slice(0, 10)
// H100 (2026-11-22): weight bandwidth of grouped_mm fixed at DESIGN.md's 2.9 TB/s copy rate;
// later runs: the read bandwidth the WebGPU bench measured in the same command.
const peerBandwidth = tag === 'h100' ? 2.9e12 : gpu.readBandwidthTBs * 1e12
const out = {
  [`${tag}-hf-grouped-mm`]: fitCalibration({
    device: `${peer.meta.gpu}, Hugging Face transformers ${peer.meta.transformers} MixtralSparseMoeBlock, PyTorch ${peer.meta.torch} bf16, grouped_mm`,
    provenance: `MEASURED by moe-route's bench/peer_mixtral.py on ${date(peer.date)} (bench/results/peer-mixtral.json): Mixtral-8x7B shape, every weight normal(0, 0.02), CUDA-event ms per call; weight bandwidth ${(peerBandwidth / 1e12).toFixed(2)} TB/s (${tag === 'h100' ? 'the H100 HBM3 copy-kernel rate from DESIGN.md' : 'the read bandwidth measured in the same run'}), flops and callOverheadMs fitted by least squares on relative error.`,
    shape,
    bytesPerWeight: 2,
    weightBandwidth: peerBandwidth,
    points: rows(peer.rows.filter((r) => r.shape === 'mixtral-8x7b' && r.impl === 'grouped_mm' && r.ms)),
  }),
  [`${tag}-webgpu`]: fitCalibration({
    device: `${gpu.adapter} (${peer.meta.gpu}), moe-route WebGPU layer (Dawn, f16 weights)`,
    provenance: `MEASURED by moe-route's bench/webgpu-layer.bench.ts on ${date(gpu.date)} (bench/results/webgpu-layer.json): fused layer, no drop, Mixtral-8x7B shape; weight bandwidth = the read bandwidth measured in the same run (${gpu.readBandwidthTBs.toFixed(2)} TB/s), flops and callOverheadMs fitted.`,
    shape,
    bytesPerWeight: 2,
    weightBandwidth: gpu.readBandwidthTBs * 1e12,
    points: rows(gpu.rows.filter((r) => r.shape === 'mixtral-8x7b' && r.policy === 'dynamic')),
  }),
}
const int8 = gpu.rows.filter((r) => r.shape === 'mixtral-8x7b' && r.policy === 'dynamic/int8')
if (int8.length > 0) {
  out[`${tag}-webgpu-int8`] = fitCalibration({
    device: `${gpu.adapter} (${peer.meta.gpu}), moe-route WebGPU layer (Dawn, int8 W8A8: GEMV / subgroup-matrix kernels)`,
    provenance: `MEASURED by moe-route's bench/webgpu-layer.bench.ts on ${date(gpu.date)} (bench/results/webgpu-layer.json): fused layer, no drop, int8 weights quantized per channel on the GPU, Mixtral-8x7B shape; weight bandwidth = the read bandwidth measured in the same run (${gpu.readBandwidthTBs.toFixed(2)} TB/s), one byte per weight (scales ignored), flops (int8 ops) and callOverheadMs fitted.`,
    shape,
    bytesPerWeight: 1,
    weightBandwidth: gpu.readBandwidthTBs * 1e12,
    points: rows(int8),
  })
}
for (const [name, cal] of Object.entries(out)) writeFileSync(new URL(`${name}.json`, calDir), JSON.stringify(cal, null, 2) + '\n')
writeDefaults()

// default.ts: one constant per JSON file (h200-webgpu-int8.json → H200_WEBGPU_INT8)
function writeDefaults() {
  const what = (name) => {
    const [g, ...rest] = name.split('-')
    const kind = rest.join('-')
    const label =
      kind === 'hf-grouped-mm'
        ? 'transformers grouped_mm (bf16)'
        : kind === 'webgpu'
          ? "moe-route's WebGPU layer (Dawn, f16 weights)"
          : kind === 'webgpu-int8'
            ? "moe-route's WebGPU layer (Dawn, int8 W8A8)"
            : kind.startsWith('ep-')
              ? `bench/ep_layer.py expert-parallel layer (grouped_mm experts, NCCL all-to-all link), ${kind.slice(3)} shape`
              : kind
    return `${g.toUpperCase()}, ${label}${name === 'h100-hf-grouped-mm' ? ': the default cost model' : ''}`
  }
  const files = readdirSync(calDir).filter((f) => f.endsWith('.json')).sort()
  const consts = files.map((f) => {
    const name = f.replace(/\.json$/, '')
    const cal = JSON.parse(readFileSync(new URL(f, calDir)))
    checkCalibration(cal)
    return `/** ${what(name)}. */\nexport const ${name.toUpperCase().replace(/-/g, '_')}: Calibration = ${JSON.stringify(cal, null, 2)}\n`
  })
  writeFileSync(
    new URL('default.ts', calDir),
    `/**
 * The shipped cost-model calibrations (same content as the JSON files next to this file; a
 * test keeps them equal). Written by scripts/calibrate.mjs from GPU benchmark runs.
 */
import type { Calibration } from '../cost-model.js'

${consts.join('\n')}`,
  )
}
console.log(JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, c]) => [k, { flops: c.flops, overheadMs: c.callOverheadMs, worst: Math.max(...c.points.map((p) => Math.abs(p.predictedMs - p.ms) / p.ms)) }]))))
