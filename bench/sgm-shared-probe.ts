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
const code = (offset: number, stride: number, half: 0 | 1, shift: number) => `enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> B: array<i32>;
@group(0) @binding(1) var<storage, read_write> C: array<i32>;
var<workgroup> Ws: array<i32, ${WORDS}>;
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var w = lid; w < ${WORDS}u; w = w + 32u) {
    var v = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) { v = v | ((((4u * w + j) >> ${shift}u) & 127u) << (8u * j)); }
    Ws[w] = bitcast<i32>(v);
  }
  workgroupBarrier();
  let a = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&Ws, ${offset}u, false, ${stride}u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&B, ${half * 512}u, false, 16u);
  var c: subgroup_matrix_result<i32, 16, 16>;
  c = subgroupMatrixMultiplyAccumulate(a, b, c);
  subgroupMatrixStore(&C, 0u, c, false, 16u);
}`
// B: two 32×16 selection matrices (row-major, stride 16): half 0 picks k = n, half 1 picks k = n + 16
const bBytes = new Int8Array(1024)
for (let n = 0; n < 16; n++) {
  bBytes[n * 16 + n] = 1
  bBytes[512 + (n + 16) * 16 + n] = 1
}
const bBuf = device.createBuffer({ size: 1024, usage: 0x80 | 0x8 })
device.queue.writeBuffer(bBuf, 0, bBytes)
async function run(offset: number, stride: number, half: 0 | 1, shift: number): Promise<Int32Array> {
  const module = device.createShaderModule({ code: code(offset, stride, half, shift) })
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
  const cBuf = device.createBuffer({ size: 1024, usage: 0x80 | 0x4 })
  const rb = device.createBuffer({ size: 1024, usage: 0x1 | 0x8 })
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: bBuf } }, { binding: 1, resource: { buffer: cBuf } }] })
  const enc = device.createCommandEncoder()
  const pass = enc.beginComputePass()
  pass.setPipeline(pipeline)
  pass.setBindGroup(0, bg)
  pass.dispatchWorkgroups(1)
  pass.end()
  enc.copyBufferToBuffer(cBuf, 0, rb, 0, 1024)
  device.queue.submit([enc.finish()])
  await rb.mapAsync(1)
  const out = new Int32Array(rb.getMappedRange().slice(0))
  rb.unmap()
  return out
}
for (const [offset, stride] of [[0, 32], [0, 64], [64, 32], [4, 32], [0, 8], [0, 48], [0, 80], [0, 96], [16, 32], [32, 32], [16, 80]]) {
  // byte index read at (row r, col c): lo 7 bits from shift 0, hi from shift 7
  const idx: number[][] = Array.from({ length: 16 }, () => new Array(32).fill(-1))
  for (const half of [0, 1] as const) {
    const lo = await run(offset, stride, half, 0)
    const hi = await run(offset, stride, half, 7)
    for (let r = 0; r < 16; r++) for (let n = 0; n < 16; n++) idx[r][n + 16 * half] = hi[r * 16 + n] * 128 + lo[r * 16 + n]
  }
  const exact = idx.every((row, r) => row.every((v, c) => v === offset + r * stride + c))
  console.log(JSON.stringify({ probe: 'sgm-shared-left', offset, stride, exact, rows: idx.slice(0, 2).map((row) => row.join(',')), row15: idx[15].join(',') }))
}
// RIGHT fragments from workgroup memory: right<i8, 16, 32> (32 k rows × 16 n) loaded from Ws at (offset, stride);
// the left operand selects k = r (half 0) or k = r + 16 (half 1), so C[r][n] = B[k][n]
const codeR = (offset: number, stride: number, half: 0 | 1, shift: number) => `enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> A: array<i32>;
@group(0) @binding(1) var<storage, read_write> C: array<i32>;
var<workgroup> Ws: array<i32, ${WORDS}>;
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var w = lid; w < ${WORDS}u; w = w + 32u) {
    var v = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) { v = v | ((((4u * w + j) >> ${shift}u) & 127u) << (8u * j)); }
    Ws[w] = bitcast<i32>(v);
  }
  workgroupBarrier();
  let a = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&A, ${half * 512}u, false, 32u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&Ws, ${offset}u, false, ${stride}u);
  var c: subgroup_matrix_result<i32, 16, 16>;
  c = subgroupMatrixMultiplyAccumulate(a, b, c);
  subgroupMatrixStore(&C, 0u, c, false, 16u);
}`
// A: two 16×32 selection matrices (row-major, stride 32): half 0 picks k = r, half 1 picks k = r + 16
const aBytes = new Int8Array(1024)
for (let r = 0; r < 16; r++) {
  aBytes[r * 32 + r] = 1
  aBytes[512 + r * 32 + r + 16] = 1
}
const aBuf = device.createBuffer({ size: 1024, usage: 0x80 | 0x8 })
device.queue.writeBuffer(aBuf, 0, aBytes)
async function runR(offset: number, stride: number, half: 0 | 1, shift: number): Promise<Int32Array> {
  const module = device.createShaderModule({ code: codeR(offset, stride, half, shift) })
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
  const cBuf = device.createBuffer({ size: 1024, usage: 0x80 | 0x4 })
  const rb = device.createBuffer({ size: 1024, usage: 0x1 | 0x8 })
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: aBuf } }, { binding: 1, resource: { buffer: cBuf } }] })
  const enc = device.createCommandEncoder()
  const pass = enc.beginComputePass()
  pass.setPipeline(pipeline)
  pass.setBindGroup(0, bg)
  pass.dispatchWorkgroups(1)
  pass.end()
  enc.copyBufferToBuffer(cBuf, 0, rb, 0, 1024)
  device.queue.submit([enc.finish()])
  await rb.mapAsync(1)
  const out = new Int32Array(rb.getMappedRange().slice(0))
  rb.unmap()
  return out
}
for (const [offset, stride] of [[0, 16], [512, 16], [0, 32], [16, 16], [32, 32], [0, 48]]) {
  // byte index read at (k row, n col)
  const idx: number[][] = Array.from({ length: 32 }, () => new Array(16).fill(-1))
  for (const half of [0, 1] as const) {
    const lo = await runR(offset, stride, half, 0)
    const hi = await runR(offset, stride, half, 7)
    for (let r = 0; r < 16; r++) for (let n = 0; n < 16; n++) idx[r + 16 * half][n] = hi[r * 16 + n] * 128 + lo[r * 16 + n]
  }
  const exact = idx.every((row, k) => row.every((v, n) => v === offset + k * stride + n))
  console.log(JSON.stringify({ probe: 'sgm-shared-right', offset, stride, exact, k0: idx[0].join(','), k1: idx[1].join(','), k31: idx[31].join(',') }))
}
// Two subgroups, runtime offsets: subgroup s loads its LEFT fragment from Ws at byte s·off1 (off1 from
// a uniform, so not a constant) with stride 32 and stores its product with the k = r selection to C[s·256..]
const codeMulti = `enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> B: array<i32>;
@group(0) @binding(1) var<storage, read_write> C: array<i32>;
@group(0) @binding(2) var<uniform> u: vec4<u32>;
var<workgroup> Ws: array<i32, ${WORDS}>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
  for (var w = lid; w < ${WORDS}u; w = w + 64u) {
    var v = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) { v = v | ((((4u * w + j) >> u.y) & 127u) << (8u * j)); }
    Ws[w] = bitcast<i32>(v);
  }
  workgroupBarrier();
  let a = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&Ws, sg * u.x, false, 32u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&B, 0u, false, 16u);
  var c: subgroup_matrix_result<i32, 16, 16>;
  c = subgroupMatrixMultiplyAccumulate(a, b, c);
  subgroupMatrixStore(&C, sg * 256u, c, false, 16u);
}`
{
  const module = device.createShaderModule({ code: codeMulti })
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
  for (const off1 of [512, 1024]) {
    const idx: number[][] = Array.from({ length: 32 }, () => new Array(16).fill(-1))
    const parts: Int32Array[] = []
    for (const shift of [0, 7]) {
      const cBuf = device.createBuffer({ size: 2048, usage: 0x80 | 0x4 })
      const uBuf = device.createBuffer({ size: 16, usage: 0x40 | 0x8 })
      device.queue.writeBuffer(uBuf, 0, new Uint32Array([off1, shift, 0, 0]))
      const rb = device.createBuffer({ size: 2048, usage: 0x1 | 0x8 })
      const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: bBuf } }, { binding: 1, resource: { buffer: cBuf } }, { binding: 2, resource: { buffer: uBuf } }] })
      const enc = device.createCommandEncoder()
      const pass = enc.beginComputePass()
      pass.setPipeline(pipeline)
      pass.setBindGroup(0, bg)
      pass.dispatchWorkgroups(1)
      pass.end()
      enc.copyBufferToBuffer(cBuf, 0, rb, 0, 2048)
      device.queue.submit([enc.finish()])
      await rb.mapAsync(1)
      parts.push(new Int32Array(rb.getMappedRange().slice(0)))
      rb.unmap()
    }
    // subgroup s, row r, col n (k = n): byte s·off1 + r·32 + n
    for (let sgi = 0; sgi < 2; sgi++) for (let r = 0; r < 16; r++) for (let n = 0; n < 16; n++) idx[sgi * 16 + r][n] = parts[1][sgi * 256 + r * 16 + n] * 128 + parts[0][sgi * 256 + r * 16 + n]
    const exact = idx.every((row, q) => row.every((v, n) => v === Math.floor(q / 16) * off1 + (q % 16) * 32 + n))
    console.log(JSON.stringify({ probe: 'sgm-shared-left-2-subgroups-runtime-offset', off1, exact, sg0row0: idx[0].join(','), sg1row0: idx[16].join(','), sg1row15: idx[31].join(',') }))
  }
}
// Ws beside other workgroup variables (the staged GEMM's first form declared two u32 group bounds
// after it): one u32 declared before or after Ws, written and read, then a LEFT load at (0, 32).
// If the driver places the scalar first, Ws's base is no longer 16-byte aligned.
for (const where of ['before', 'after'] as const) {
  const scalar = 'var<workgroup> gb: array<u32, 2>;'
  const src = code(0, 32, 0, 0)
    .replace(`var<workgroup> Ws: array<i32, ${WORDS}>;`, where === 'before' ? `${scalar}\nvar<workgroup> Ws: array<i32, ${WORDS}>;` : `var<workgroup> Ws: array<i32, ${WORDS}>;\n${scalar}`)
    .replace('  workgroupBarrier();\n  let a', '  if (lid == 0u) { gb[0] = 1u; gb[1] = 2u; }\n  let g = workgroupUniformLoad(&gb[1]);\n  if (g != 2u) { return; }\n  let a')
  const module = device.createShaderModule({ code: src })
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
  const cBuf = device.createBuffer({ size: 1024, usage: 0x80 | 0x4 })
  const rb = device.createBuffer({ size: 1024, usage: 0x1 | 0x8 })
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: bBuf } }, { binding: 1, resource: { buffer: cBuf } }] })
  const enc = device.createCommandEncoder()
  const pass = enc.beginComputePass()
  pass.setPipeline(pipeline)
  pass.setBindGroup(0, bg)
  pass.dispatchWorkgroups(1)
  pass.end()
  enc.copyBufferToBuffer(cBuf, 0, rb, 0, 1024)
  device.queue.submit([enc.finish()])
  await rb.mapAsync(1)
  const lo = new Int32Array(rb.getMappedRange().slice(0))
  rb.unmap()
  // low 7 bits of the byte index read at (r, n), n < 16
  const exact = Array.from({ length: 16 }, (_, r) => Array.from({ length: 16 }, (_, n) => lo[r * 16 + n] === ((r * 32 + n) & 127))).every((row) => row.every(Boolean))
  console.log(JSON.stringify({ probe: 'sgm-shared-left-beside-scalar', where, exact, row0: Array.from(lo.subarray(0, 16)).join(',') }))
}
process.exit(0)
