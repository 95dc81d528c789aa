/**
 * Probe (GPU host): what an int8 subgroup-matrix LEFT (then RIGHT) fragment loaded from
 * WORKGROUP memory reads, per (offset, stride) in int8 elements; `exact` = every element read
 * from offset + row·stride + col. Workgroup memory (array<i32>) is filled with byte i = code(i) (two runs: low and high
 * 7 bits of i), the fragment is loaded with (offset, stride), multiplied by selection matrices
 * (B[k][n] = 1 where k = n or k = n + 16), and the result tells which byte each (row, col) read.
 * Usage: node sgm-shared-probe.mjs [--flags enable-dawn-features=allow_unsafe_apis,...]
 */
import { acquireDevice } from '@moe-route/backend-webgpu'

const args = process.argv.slice(2)
const fi = args.indexOf('--flags')
const flags = fi >= 0 ? args[fi + 1].split(' ') : []
const { device, features } = await acquireDevice({ unsafeApis: true, dawnFlags: flags })
if (!features.subgroupMatrix) {
  console.log(JSON.stringify({ probe: 'sgm-shared', skipped: 'no subgroup matrices' }))
  process.exit(0)
}
const WORDS = 1024
const HEADER = 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;'
/** WGSL: `threads` invocations fill Ws with byte i = ((i >> shift) & 127), then a barrier. */
const fillWs = (threads: number, shift: string) => `  for (var w = lid; w < ${WORDS}u; w = w + ${threads}u) {
    var v = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) { v = v | ((((4u * w + j) >> ${shift}) & 127u) << (8u * j)); }
    Ws[w] = bitcast<i32>(v);
  }
  workgroupBarrier();`
/**
 * One subgroup: the `side` fragment loaded from Ws at (offset, stride), the other operand the
 * `half`-th selection matrix from storage (binding 0, `Sel`); C = the product (binding 1).
 */
const fragmentShader = (side: 'left' | 'right', offset: number, stride: number, half: 0 | 1, shift: number) => {
  const fromWs = `(&Ws, ${offset}u, false, ${stride}u)`
  const fromSel = side === 'left' ? `(&Sel, ${half * 512}u, false, 16u)` : `(&Sel, ${half * 512}u, false, 32u)`
  return `${HEADER}
@group(0) @binding(0) var<storage, read> Sel: array<i32>;
@group(0) @binding(1) var<storage, read_write> C: array<i32>;
var<workgroup> Ws: array<i32, ${WORDS}>;
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32) {
${fillWs(32, `${shift}u`)}
  let a = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>${side === 'left' ? fromWs : fromSel};
  let b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>${side === 'left' ? fromSel : fromWs};
  var c: subgroup_matrix_result<i32, 16, 16>;
  c = subgroupMatrixMultiplyAccumulate(a, b, c);
  subgroupMatrixStore(&C, 0u, c, false, 16u);
}`
}
/** Runs `src` as one workgroup with `inputs` at bindings 0, 2, 3, … and a fresh C (outBytes) at binding 1; returns C. */
async function runOnce(src: string, inputs: GPUBuffer[], outBytes = 1024): Promise<Int32Array> {
  const module = device.createShaderModule({ code: src })
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
  const cBuf = device.createBuffer({ size: outBytes, usage: 0x80 | 0x4 })
  const rb = device.createBuffer({ size: outBytes, usage: 0x1 | 0x8 })
  const buffers = [inputs[0], cBuf, ...inputs.slice(1)]
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) })
  const enc = device.createCommandEncoder()
  const pass = enc.beginComputePass()
  pass.setPipeline(pipeline)
  pass.setBindGroup(0, bg)
  pass.dispatchWorkgroups(1)
  pass.end()
  enc.copyBufferToBuffer(cBuf, 0, rb, 0, outBytes)
  device.queue.submit([enc.finish()])
  await rb.mapAsync(1)
  const out = new Int32Array(rb.getMappedRange().slice(0))
  rb.unmap()
  return out
}
/** A storage buffer holding `bytes`. */
function storageOf(bytes: Int8Array | Uint32Array, usage = 0x80 | 0x8): GPUBuffer {
  const buf = device.createBuffer({ size: Math.max(16, bytes.byteLength), usage })
  device.queue.writeBuffer(buf, 0, bytes)
  return buf
}
/** The byte index a C element read: low 7 bits from the shift-0 run, high 7 from the shift-7 run. */
const byteIndex = (lo: Int32Array, hi: Int32Array, i: number) => hi[i] * 128 + lo[i]

// RIGHT selection (right<i8, 16, 32>, row-major, stride 16): half 0 picks k = n, half 1 picks k = n + 16
const selRightBytes = new Int8Array(1024)
for (let n = 0; n < 16; n++) {
  selRightBytes[n * 16 + n] = 1
  selRightBytes[512 + (n + 16) * 16 + n] = 1
}
const selRight = storageOf(selRightBytes)
// LEFT fragments from workgroup memory: C[r][n] = Ws byte at offset + r·stride + (n + 16·half)
for (const [offset, stride] of [[0, 32], [0, 64], [64, 32], [4, 32], [0, 8], [0, 48], [0, 80], [0, 96], [16, 32], [32, 32], [16, 80]]) {
  const idx: number[][] = Array.from({ length: 16 }, () => new Array(32).fill(-1))
  for (const half of [0, 1] as const) {
    const lo = await runOnce(fragmentShader('left', offset, stride, half, 0), [selRight])
    const hi = await runOnce(fragmentShader('left', offset, stride, half, 7), [selRight])
    for (let r = 0; r < 16; r++) for (let n = 0; n < 16; n++) idx[r][n + 16 * half] = byteIndex(lo, hi, r * 16 + n)
  }
  const exact = idx.every((row, r) => row.every((v, c) => v === offset + r * stride + c))
  console.log(JSON.stringify({ probe: 'sgm-shared-left', offset, stride, exact, rows: idx.slice(0, 2).map((row) => row.join(',')), row15: idx[15].join(',') }))
}
// LEFT selection (left<i8, 32, 16>, row-major, stride 32): half 0 picks k = r, half 1 picks k = r + 16
const selLeftBytes = new Int8Array(1024)
for (let r = 0; r < 16; r++) {
  selLeftBytes[r * 32 + r] = 1
  selLeftBytes[512 + r * 32 + r + 16] = 1
}
const selLeft = storageOf(selLeftBytes)
// RIGHT fragments from workgroup memory (32 k rows × 16 n): C[r][n] = Ws byte at offset + (r + 16·half)·stride + n
for (const [offset, stride] of [[0, 16], [512, 16], [0, 32], [16, 16], [32, 32], [0, 48]]) {
  const idx: number[][] = Array.from({ length: 32 }, () => new Array(16).fill(-1))
  for (const half of [0, 1] as const) {
    const lo = await runOnce(fragmentShader('right', offset, stride, half, 0), [selLeft])
    const hi = await runOnce(fragmentShader('right', offset, stride, half, 7), [selLeft])
    for (let r = 0; r < 16; r++) for (let n = 0; n < 16; n++) idx[r + 16 * half][n] = byteIndex(lo, hi, r * 16 + n)
  }
  const exact = idx.every((row, k) => row.every((v, n) => v === offset + k * stride + n))
  console.log(JSON.stringify({ probe: 'sgm-shared-right', offset, stride, exact, k0: idx[0].join(','), k1: idx[1].join(','), k31: idx[31].join(',') }))
}
// Two subgroups, runtime offsets: subgroup s loads its LEFT fragment from Ws at byte s·off1 (off1 from
// a uniform, so not a constant) with stride 32 and stores its product with the k = n selection to C[s·256..]
const codeMulti = `${HEADER}
@group(0) @binding(0) var<storage, read> Sel: array<i32>;
@group(0) @binding(1) var<storage, read_write> C: array<i32>;
@group(0) @binding(2) var<uniform> u: vec4<u32>;
var<workgroup> Ws: array<i32, ${WORDS}>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
${fillWs(64, 'u.y')}
  let a = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&Ws, sg * u.x, false, 32u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&Sel, 0u, false, 16u);
  var c: subgroup_matrix_result<i32, 16, 16>;
  c = subgroupMatrixMultiplyAccumulate(a, b, c);
  subgroupMatrixStore(&C, sg * 256u, c, false, 16u);
}`
for (const off1 of [512, 1024]) {
  const [lo, hi] = await Promise.all([0, 7].map((shift) => runOnce(codeMulti, [selRight, storageOf(new Uint32Array([off1, shift, 0, 0]), 0x40 | 0x8)], 2048)))
  // subgroup s, row r, col n (k = n): byte s·off1 + r·32 + n
  const idx: number[][] = Array.from({ length: 32 }, (_, q) => Array.from({ length: 16 }, (_, n) => byteIndex(lo, hi, q * 16 + n)))
  const exact = idx.every((row, q) => row.every((v, n) => v === Math.floor(q / 16) * off1 + (q % 16) * 32 + n))
  console.log(JSON.stringify({ probe: 'sgm-shared-left-2-subgroups-runtime-offset', off1, exact, sg0row0: idx[0].join(','), sg1row0: idx[16].join(','), sg1row15: idx[31].join(',') }))
}
// Ws beside other workgroup variables (the staged GEMM's first form declared two u32 group bounds
// after it): a u32 pair declared before or after Ws, written and read, then a LEFT load at (0, 32).
// If the driver places the pair first, Ws's base is no longer 16-byte aligned.
for (const where of ['before', 'after'] as const) {
  const scalar = 'var<workgroup> gb: array<u32, 2>;'
  const src = fragmentShader('left', 0, 32, 0, 0)
    .replace(`var<workgroup> Ws: array<i32, ${WORDS}>;`, where === 'before' ? `${scalar}\nvar<workgroup> Ws: array<i32, ${WORDS}>;` : `var<workgroup> Ws: array<i32, ${WORDS}>;\n${scalar}`)
    .replace('  workgroupBarrier();\n  let a', '  if (lid == 0u) { gb[0] = 1u; gb[1] = 2u; }\n  let g = workgroupUniformLoad(&gb[1]);\n  if (g != 2u) { return; }\n  let a')
  const lo = await runOnce(src, [selRight])
  // low 7 bits of the byte index read at (r, n), n < 16
  const exact = Array.from({ length: 16 }, (_, r) => Array.from({ length: 16 }, (_, n) => lo[r * 16 + n] === ((r * 32 + n) & 127))).every((row) => row.every(Boolean))
  console.log(JSON.stringify({ probe: 'sgm-shared-left-beside-scalar', where, exact, row0: Array.from(lo.subarray(0, 16)).join(',') }))
}
process.exit(0)
