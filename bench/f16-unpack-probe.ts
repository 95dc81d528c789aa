/**
 * Design probe (issue 15): what converting packed f16 weights to f32 costs next to the FMAs that
 * use them — the multi-row kernels convert every weight once (`unpack2x16float`) and then run
 * one FMA per weight and group row, so with ~8 rows per group the conversion may bound them.
 * Each invocation runs 4 independent chains for `iters` iterations; per iteration and chain one
 * u32 is turned into two f32 values feeding two FMAs:
 * - `bitcast`: the two values are bitcasts of the word and the word + 1 (one integer add);
 * - `unpack`: `unpack2x16float(word)` (Dawn/Tint → SPIR-V UnpackHalf2x16);
 * - `fma-x8`: `unpack2x16float` once, then the two values feed 8 FMAs each (8 rows);
 * - `bitcast-x8`: as `bitcast` with 8 FMAs per value.
 * Prints ns per iteration and chain of the whole GPU (wall of back-to-back dispatches ÷ work),
 * and the FMA rate each variant reaches.
 *
 * Usage: node f16-unpack-probe.mjs [--iters 4096]
 */
import { acquireDevice } from '@moe-route/backend-webgpu'
import { msPerDispatch } from './lib/gpu-timing.js'

const args = process.argv.slice(2)
const iters = Number(args[args.indexOf('--iters') + 1] || 4096)
const acquired = await acquireDevice({ powerPreference: 'high-performance' })
const device = acquired.device
console.log(JSON.stringify({ probe: 'f16-unpack', adapter: acquired.adapterName, device: acquired.adapterInfo?.device, iters }))

type Variant = 'bitcast' | 'unpack' | 'bitcast-x8' | 'fma-x8'
function wgsl(v: Variant): string {
  const rows = v.endsWith('x8') ? 8 : 1
  const conv = v.startsWith('bitcast') ? (p: string) => `vec2<f32>(bitcast<f32>(${p} & 0x3fffffffu), bitcast<f32>((${p} + 1u) & 0x3fffffffu))` : (p: string) => `unpack2x16float(${p})`
  const C = [0, 1, 2, 3]
  const R = Array.from({ length: rows }, (_, r) => r)
  return `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> u: vec4<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  ${C.map((c) => `var p${c} = g.x * 4u + ${c}u + u.y;`).join(' ')}
  ${C.map((c) => R.map((r) => `var a${c}_${r} = 0.0; var b${c}_${r} = 0.0;`).join(' ')).join(' ')}
  let s = bitcast<f32>(u.z);
  for (var i = 0u; i < u.x; i = i + 1u) {
    ${C.map((c) => `let v${c} = ${conv(`p${c}`)}; p${c} = p${c} + 0x00010001u;`).join('\n    ')}
    ${C.map((c) => R.map((r) => `a${c}_${r} = fma(v${c}.x, s + ${r}.0, a${c}_${r}); b${c}_${r} = fma(v${c}.y, s - ${r}.0, b${c}_${r});`).join(' ')).join('\n    ')}
  }
  let t = ${C.map((c) => R.map((r) => `a${c}_${r} + b${c}_${r}`).join(' + ')).join(' + ')};
  if (t == 1234.5678) { out[g.x] = t; }
}`
}

const groups = 4096 // 1 Mi invocations: several waves on any GPU
const out = device.createBuffer({ size: 4 * groups * 256, usage: 0x80 })
const ub = device.createBuffer({ size: 16, usage: 0x40 | 0x8 })
device.queue.writeBuffer(ub, 0, new Uint32Array([iters, 7, new Uint32Array(new Float32Array([1.000001]).buffer)[0], 0]))
for (const v of ['bitcast', 'unpack', 'bitcast-x8', 'fma-x8'] as const) {
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: wgsl(v) }), entryPoint: 'main' } })
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }, { binding: 1, resource: { buffer: ub } }] })
  const m = await msPerDispatch(device, pipeline, bg, [groups, 1, 1], 10, 5)
  const chainIters = groups * 256 * 4 * iters
  const rows = v.endsWith('x8') ? 8 : 1
  const fmas = chainIters * 2 * rows
  console.log(JSON.stringify({ variant: v, msPerDispatch: m, psPerChainIteration: (m * 1e9) / chainIters, fmaTflops: (2 * fmas) / (m * 1e9) }))
}
process.exit(0)
