/**
 * Design probe (issue 15, prefill): the int8 subgroup-matrix multiply-accumulate rate Dawn reaches
 * on this GPU, without and with the fragment loads a GEMM's inner step needs — the ceiling the
 * staged int8 GEMMs (~170 int8 TOPS on an H100) should be compared with. Every subgroup runs
 * `iters` steps; per step:
 * - `reg-N`: N independent accumulators, each += A·B of fragments loaded once before the loop
 *   (no loads: the MMA pipe alone);
 * - `wg-FMxFN`: FM left and FN right fragments loaded from workgroup memory (offsets stepping
 *   through a 16 KB tile, as the staged GEMM's inner step reads it), then FM·FN MMAs;
 * - `st-FMxFN`: the same loads from a storage buffer (L1/L2 resident).
 * Ops = 2·16·16·32 per MMA (i8×i8→i32, M16 N16 K32). One dispatch of `groups` workgroups of 4
 * subgroups; ms = wall of back-to-back dispatches ÷ count. The accumulators are stored (when a
 * never-true uniform says so) so the compiler keeps the work.
 *
 * `--robustness off` adds Dawn's disable_robustness toggle (no bounds clamping of the loads).
 *
 * Usage: node sgm-peak-probe.mjs [--iters 2048] [--groups 1056] [--robustness off]
 */
import { acquireDevice } from '@moe-route/backend-webgpu'
import { msPerDispatch } from './lib/gpu-timing.js'

const args = process.argv.slice(2)
const opt = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const iters = opt('--iters', 2048)
const groups = opt('--groups', 1056)
const robustOff = args.includes('--robustness') && args[args.indexOf('--robustness') + 1] === 'off'
const acquired = await acquireDevice({ unsafeApis: true, powerPreference: 'high-performance', dawnFlags: robustOff ? ['enable-dawn-features=disable_robustness'] : [] })
const { device, features } = acquired
console.log(JSON.stringify({ probe: 'sgm-peak', adapter: acquired.adapterName, device: acquired.adapterInfo?.device, iters, groups, robustness: !robustOff, subgroupMatrix: features.subgroupMatrix }))
if (!features.subgroupMatrix) process.exit(0)

const LEFT = 'subgroup_matrix_left<i8, 32, 16>'
const RIGHT = 'subgroup_matrix_right<i8, 16, 32>'
const RESULT = 'subgroup_matrix_result<i32, 16, 16>'
const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const WG_WORDS = 4096 // 16 KB of workgroup memory

type Variant = { name: string; mmas: number; src: string }
function header(): string {
  return `enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> S: array<i32>;
@group(0) @binding(1) var<storage, read_write> C: array<i32>;
@group(0) @binding(2) var<uniform> u: vec4<u32>;`
}
function regVariant(n: number): Variant {
  const N = range(n)
  return {
    name: `reg-${n}`,
    mmas: n,
    src: `${header()}
@compute @workgroup_size(128)
fn main(@builtin(subgroup_id) sg: u32) {
  let a = subgroupMatrixLoad<${LEFT}>(&S, 0u, false, 32u);
  let b0 = subgroupMatrixLoad<${RIGHT}>(&S, 512u, false, 16u);
  let b1 = subgroupMatrixLoad<${RIGHT}>(&S, 1024u, false, 16u);
${N.map((i) => `  var c${i}: ${RESULT};`).join('\n')}
  for (var it = 0u; it < u.x; it = it + 2u) {
${N.map((i) => `    c${i} = subgroupMatrixMultiplyAccumulate(a, b0, c${i});`).join('\n')}
${N.map((i) => `    c${i} = subgroupMatrixMultiplyAccumulate(a, b1, c${i});`).join('\n')}
  }
  if (u.y == 12345u) {
${N.map((i) => `    subgroupMatrixStore(&C, ${i * 256}u, c${i}, false, 16u);`).join('\n')}
  }
}`,
  }
}
function loadVariant(where: 'wg' | 'st', fm: number, fn: number): Variant {
  const FM = range(fm)
  const FN = range(fn)
  const arr = where === 'wg' ? '&Ws' : '&S'
  // per step: A fragments at rows of a 64-byte-wide tile, B fragments as 512-byte blocks; the
  // step's base moves through 16 KB (bytes), as a K loop walks its staged tile
  return {
    name: `${where}-${fm}x${fn}`,
    mmas: fm * fn,
    src: `${header()}
${where === 'wg' ? `var<workgroup> Ws: array<i32, ${WG_WORDS}>;` : ''}
@compute @workgroup_size(128)
fn main(@builtin(subgroup_id) sg: u32, @builtin(local_invocation_index) lid: u32) {
${where === 'wg' ? `  for (var w = lid; w < ${WG_WORDS}u; w = w + 128u) { Ws[w] = S[w]; }\n  workgroupBarrier();` : ''}
${FM.map((i) => FN.map((j) => `  var c${i}${j}: ${RESULT};`).join('\n')).join('\n')}
  for (var it = 0u; it < u.x; it = it + 1u) {
    let base = ((it * 1024u) + sg * 256u) % ${WG_WORDS * 4 - 8192}u;
${FM.map((i) => `    let a${i} = subgroupMatrixLoad<${LEFT}>(${arr}, base + ${i * 16 * 64}u, false, 64u);`).join('\n')}
${FN.map((j) => `    let b${j} = subgroupMatrixLoad<${RIGHT}>(${arr}, base + ${4096 + j * 512}u, false, 16u);`).join('\n')}
${FM.map((i) => FN.map((j) => `    c${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}${j});`).join('\n')).join('\n')}
  }
  if (u.y == 12345u) {
${FM.map((i) => FN.map((j) => `    subgroupMatrixStore(&C, ${(i * fn + j) * 256}u, c${i}${j}, false, 16u);`).join('\n')).join('\n')}
  }
}`,
  }
}

const variants: Variant[] = [regVariant(4), regVariant(8), regVariant(16), loadVariant('wg', 2, 4), loadVariant('wg', 4, 4), loadVariant('wg', 1, 4), loadVariant('st', 2, 4), loadVariant('st', 4, 4)]
const S = device.createBuffer({ size: WG_WORDS * 4, usage: 0x80 | 0x8 })
device.queue.writeBuffer(S, 0, new Int32Array(WG_WORDS).map((_, i) => ((i * 2654435761) >>> 0) & 0x7f7f7f7f))
const C = device.createBuffer({ size: 64 * 1024, usage: 0x80 })
const ub = device.createBuffer({ size: 16, usage: 0x40 | 0x8 })
device.queue.writeBuffer(ub, 0, new Uint32Array([iters, 0, 0, 0]))
for (const v of variants) {
  device.pushErrorScope('validation')
  const module = device.createShaderModule({ code: v.src })
  const info = await module.getCompilationInfo()
  const errs = info.messages.filter((m) => m.type === 'error').map((m) => m.message)
  if (errs.length) {
    console.log(JSON.stringify({ variant: v.name, errors: errs.slice(0, 3) }))
    await device.popErrorScope()
    continue
  }
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [S, C, ub].map((buffer, binding) => ({ binding, resource: { buffer } })) })
  const err = await device.popErrorScope()
  if (err) {
    console.log(JSON.stringify({ variant: v.name, error: err.message }))
    continue
  }
  const m = await msPerDispatch(device, pipeline, bg, [groups, 1, 1], 5, 5)
  const mmaCount = groups * 4 * iters * v.mmas
  console.log(JSON.stringify({ variant: v.name, msPerDispatch: m, int8Tops: (2 * 16 * 16 * 32 * mmaCount) / (m * 1e9) }))
}
process.exit(0)
