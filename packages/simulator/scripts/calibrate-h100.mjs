#!/usr/bin/env node
// Refits the shipped cost-model calibrations from the H100 benchmark results in
// bench/results (run by bench/README.md's commands): transformers grouped_mm (the default:
// what a tuned engine reaches) and moe-route's own WebGPU layer. Needs `npm run build` first.
import { readFileSync, writeFileSync } from 'node:fs'
import { fitCalibration } from '../dist/index.js'

const root = new URL('../../../', import.meta.url)
const peer = JSON.parse(readFileSync(new URL('bench/results/peer-mixtral.json', root)))
const gpu = JSON.parse(readFileSync(new URL('bench/results/webgpu-layer.json', root)))
const shape = { hidden: 4096, intermediate: 14336, topK: 2 }
const rows = (list) => list.map((r) => ({ tokens: r.T, activeExperts: r.activeExperts, ms: r.ms }))

const grouped = fitCalibration({
  device: `${peer.meta.gpu}, Hugging Face transformers ${peer.meta.transformers} MixtralSparseMoeBlock, PyTorch ${peer.meta.torch} bf16, grouped_mm`,
  provenance: `MEASURED by moe-route's bench/peer_mixtral.py on ${peer.date.slice(0, 10)} (bench/results/peer-mixtral.json): Mixtral-8x7B shape, every weight normal(0, 0.02), CUDA-event ms per call; weight bandwidth fixed at 2.9e12 B/s (H100 HBM3 copy-kernel rate from DESIGN.md), flops and callOverheadMs fitted by least squares on relative error.`,
  shape,
  bytesPerWeight: 2,
  weightBandwidth: 2.9e12,
  points: rows(peer.rows.filter((r) => r.shape === 'mixtral-8x7b' && r.impl === 'grouped_mm' && r.ms)),
})
const webgpu = fitCalibration({
  device: `${gpu.adapter} (NVIDIA H100 80GB HBM3), moe-route WebGPU layer (Dawn, f16 weights)`,
  provenance: `MEASURED by moe-route's bench/webgpu-layer.bench.ts on ${gpu.date.slice(0, 10)} (bench/results/webgpu-layer.json): fused layer, no drop, Mixtral-8x7B shape; weight bandwidth = the read bandwidth measured in the same run (${gpu.readBandwidthTBs.toFixed(2)} TB/s), flops and callOverheadMs fitted.`,
  shape,
  bytesPerWeight: 2,
  weightBandwidth: gpu.readBandwidthTBs * 1e12,
  points: rows(gpu.rows.filter((r) => r.shape === 'mixtral-8x7b' && r.policy === 'dynamic')),
})
const dir = new URL('../src/calibration/', import.meta.url)
writeFileSync(new URL('h100-hf-grouped-mm.json', dir), JSON.stringify(grouped, null, 2) + '\n')
writeFileSync(new URL('h100-webgpu.json', dir), JSON.stringify(webgpu, null, 2) + '\n')
writeFileSync(
  new URL('default.ts', dir),
  `/**
 * The shipped cost-model calibrations (same content as the JSON files next to this file; a
 * test keeps them equal). Written by scripts/calibrate-h100.mjs from bench/results.
 */
import type { Calibration } from '../cost-model.js'

/** H100, transformers grouped_mm (bf16): the default cost model. */
export const H100_HF_GROUPED_MM: Calibration = ${JSON.stringify(grouped, null, 2)}

/** H100, moe-route's WebGPU layer (Dawn, f16 weights). */
export const H100_WEBGPU: Calibration = ${JSON.stringify(webgpu, null, 2)}
`,
)
console.log(JSON.stringify({ grouped: { flops: grouped.flops, overhead: grouped.callOverheadMs }, webgpu: { flops: webgpu.flops, overhead: webgpu.callOverheadMs } }))
