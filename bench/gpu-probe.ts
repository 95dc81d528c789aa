/**
 * GPU probe (design data, not a benchmark of record): which Dawn flags expose
 * `chromium-experimental-subgroup-matrix`, which WGSL reading of an int8 subgroup-matrix load
 * is exact, how fast a naive int8 tile runs, and how close decode GEMV layouts get to the read
 * bandwidth. Prints one JSON line per finding.
 *   ../shared/gpu/prepare.sh bench/gpu-probe.ts && (on the GPU) node .gpu/gpu-probe.mjs
 */
import { create, globals } from 'webgpu'
import { msPerDispatch, readGrid, readKernelWgsl, sinkBytes } from './lib/gpu-timing.js'

Object.assign(globalThis, globals)
process.env.XDG_RUNTIME_DIR ||= '/tmp'
const log = (o: Record<string, unknown>) => console.log(JSON.stringify(o))
const flagSets = [[], ['enable-dawn-features=allow_unsafe_apis'], ['enable-dawn-features=allow_unsafe_apis,disable_robustness']]
const gpus: GPU[] = []
const isMain = /gpu-probe\.(mjs|ts)$/.test(process.argv[1] ?? '')
for (const flags of isMain ? flagSets : []) {
  const gpu = create(flags) as GPU
  gpus.push(gpu)
  const a = await gpu.requestAdapter({ powerPreference: 'high-performance' })
  if (!a) {
    log({ flags, adapter: null })
    continue
  }
  const info = a.info as GPUAdapterInfo & { subgroupMatrixConfigs?: unknown[] }
  const cfgs = [...(info.subgroupMatrixConfigs ?? [])].map((c) => {
    const o = c as Record<string, unknown>
    return { M: o.M, N: o.N, K: o.K, comp: o.componentType, res: o.resultComponentType }
  })
  log({ flags, adapter: info.description, features: [...a.features].sort(), subgroupMatrixConfigs: cfgs })
}

async function deviceFor(flagIndex: number, features: string[]): Promise<GPUDevice | null> {
  const a = await gpus[flagIndex].requestAdapter({ powerPreference: 'high-performance' })
  if (!a) return null
  const want = features.filter((f) => a.features.has(f)) as GPUFeatureName[]
  const L = a.limits
  const d = await a.requestDevice({
    requiredFeatures: want,
    requiredLimits: { maxStorageBufferBindingSize: L.maxStorageBufferBindingSize, maxBufferSize: L.maxBufferSize, maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize },
  })
  d.onuncapturederror = (e) => log({ uncaptured: (e as GPUUncapturedErrorEvent).error.message.slice(0, 400) })
  return d
}

async function compile(device: GPUDevice, code: string): Promise<{ pipeline: GPUComputePipeline | null; errors: string[] }> {
  device.pushErrorScope('validation')
  const module = device.createShaderModule({ code })
  const msgs = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)
  let p: GPUComputePipeline | null = null
  if (msgs.length === 0) p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
  const err = await device.popErrorScope()
  if (err) msgs.push(err.message.slice(0, 300))
  return { pipeline: msgs.length ? null : p, errors: msgs.slice(0, 3) }
}

function buf(device: GPUDevice, data: ArrayBufferView | number, extra = 0): GPUBuffer {
  const size = typeof data === 'number' ? data : data.byteLength
  const b = device.createBuffer({ size: Math.max(16, Math.ceil(size / 16) * 16), usage: 0x80 | 0x8 | 0x4 | extra })
  if (typeof data !== 'number') device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength)
  return b
}

async function read(device: GPUDevice, src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const st = device.createBuffer({ size: bytes, usage: 0x1 | 0x8 })
  const enc = device.createCommandEncoder()
  enc.copyBufferToBuffer(src, 0, st, 0, bytes)
  device.queue.submit([enc.finish()])
  await st.mapAsync(1)
  const out = st.getMappedRange().slice(0)
  st.unmap()
  st.destroy()
  return out
}

async function timeDispatch(device: GPUDevice, p: GPUComputePipeline, bufs: GPUBuffer[], grid: [number, number, number], n: number): Promise<number> {
  const bg = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: bufs.map((b, i) => ({ binding: i, resource: { buffer: b } })) })
  return msPerDispatch(device, p, bg, grid, n)
}

let seed = 12345
const rnd = () => {
  seed ^= seed << 13
  seed >>>= 0
  seed ^= seed >>> 17
  seed ^= seed << 5
  seed >>>= 0
  return seed
}

/** Fills a buffer with hashed non-zero words (f16 pairs of magnitude ≲ 0.06): incompressible data. */
async function fillRandom(device: GPUDevice, b: GPUBuffer, bytes: number): Promise<void> {
  const { pipeline } = await compile(
    device,
    `@group(0) @binding(0) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = g.y * n.x * 256u + g.x;
  if (i >= arrayLength(&o)) { return; }
  var h = i * 747796405u + 2891336453u;
  h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
  h = (h >> 22u) ^ h;
  o[i] = (h & 0x23ff23ffu) | 0x20002000u;
}`,
  )
  const words = bytes / 4
  const groups = Math.ceil(words / 256)
  const gx = Math.min(groups, 32768)
  await timeDispatch(device, pipeline!, [b], [gx, Math.ceil(groups / gx), 1], 1)
}

/** Read bandwidth on a zero (never written) buffer and on hashed data. */
async function probeBandwidth(): Promise<void> {
  const device = await deviceFor(0, [])
  if (!device) return
  const bytes = process.env.PROBE_TINY ? 2 ** 26 : 2 ** 30
  const src = buf(device, bytes)
  const sink = buf(device, sinkBytes(bytes))
  const { pipeline } = await compile(device, readKernelWgsl)
  const grid = readGrid(bytes)
  const zeroMs = await timeDispatch(device, pipeline!, [src, sink], grid, 20)
  await fillRandom(device, src, bytes)
  const randMs = await timeDispatch(device, pipeline!, [src, sink], grid, 20)
  log({ bandwidth: 'read 1 GiB', zeroTBs: bytes / (zeroMs / 1e3) / 1e12, randomTBs: bytes / (randMs / 1e3) / 1e12 })
  src.destroy()
  sink.destroy()
}

/** int8 subgroup-matrix: sweep syntax and readings, then time the exact one. */
async function probeSubgroupMatrix(): Promise<void> {
  const device = await deviceFor(1, ['subgroups', 'chromium-experimental-subgroup-matrix'])
  if (!device || !device.features.has('chromium-experimental-subgroup-matrix')) {
    log({ subgroupMatrix: 'not on the device' })
    return
  }
  const M = 16
  const N = 16
  const K = 32
  const variants: Record<string, string>[] = []
  for (const syntax of ['bool', 'template']) for (const order of ['CR', 'RC']) for (const units of ['elems', 'words']) variants.push({ syntax, order, units })
  const src = (v: Record<string, string>, S: number) => {
    const L = v.order === 'CR' ? `subgroup_matrix_left<i8, ${K}, ${M}>` : `subgroup_matrix_left<i8, ${M}, ${K}>`
    const R = v.order === 'CR' ? `subgroup_matrix_right<i8, ${N}, ${K}>` : `subgroup_matrix_right<i8, ${K}, ${N}>`
    const C = v.order === 'CR' ? `subgroup_matrix_result<i32, ${N}, ${M}>` : `subgroup_matrix_result<i32, ${M}, ${N}>`
    const div = v.units === 'words' ? ' / 4u' : ''
    const st = v.units === 'words' ? S / 4 : S
    const load = (T: string, off: string, s: number) => (v.syntax === 'bool' ? `subgroupMatrixLoad<${T}>(${off}, false, ${s}u)` : `subgroupMatrixLoad<${T}, row_major>(${off}, ${s}u)`)
    const store = (off: string, m: string) => (v.syntax === 'bool' ? `subgroupMatrixStore(&Cm, ${off}, ${m}, false, ${S}u)` : `subgroupMatrixStore<row_major>(&Cm, ${off}, ${m}, ${S}u)`)
    // A: S×S row-major (M×K tiles), B: S×S row-major K×N.
    return `enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> A: array<i32>;
@group(0) @binding(1) var<storage, read> B: array<i32>;
@group(0) @binding(2) var<storage, read_write> Cm: array<i32>;
@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
  let col0 = wid.x * ${2 * N}u;
  let row0 = wid.y * ${2 * M}u;
  var c00: ${C}; var c01: ${C}; var c10: ${C}; var c11: ${C};
  for (var k = 0u; k < ${S}u; k = k + ${K}u) {
    let a0 = ${load(L, `&A, (row0 * ${S}u + k)${div}`, st)};
    let a1 = ${load(L, `&A, ((row0 + ${M}u) * ${S}u + k)${div}`, st)};
    let b0 = ${load(R, `&B, (k * ${S}u + col0)${div}`, st)};
    let b1 = ${load(R, `&B, (k * ${S}u + col0 + ${N}u)${div}`, st)};
    c00 = subgroupMatrixMultiplyAccumulate(a0, b0, c00);
    c01 = subgroupMatrixMultiplyAccumulate(a0, b1, c01);
    c10 = subgroupMatrixMultiplyAccumulate(a1, b0, c10);
    c11 = subgroupMatrixMultiplyAccumulate(a1, b1, c11);
  }
  ${store(`row0 * ${S}u + col0`, 'c00')};
  ${store(`row0 * ${S}u + col0 + ${N}u`, 'c01')};
  ${store(`(row0 + ${M}u) * ${S}u + col0`, 'c10')};
  ${store(`(row0 + ${M}u) * ${S}u + col0 + ${N}u`, 'c11')};
}`
  }
  const operands = (S: number) => {
    const a = new Int8Array(S * S)
    const b = new Int8Array(S * S)
    for (let i = 0; i < S * S; i++) {
      a[i] = (rnd() % 255) - 127
      b[i] = (rnd() % 255) - 127
    }
    return { a, b, A: buf(device, a), B: buf(device, b), C: buf(device, S * S * 4) }
  }
  const check = (o: { a: Int8Array; b: Int8Array }, C: Int32Array, S: number) => {
    let bad = 0
    for (let s = 0; s < 64; s++) {
      const r = rnd() % S
      const c = rnd() % S
      let acc = 0
      for (let k = 0; k < S; k++) acc += o.a[r * S + k] * o.b[k * S + c]
      if (acc !== C[r * S + c]) bad++
    }
    return bad
  }
  const small = 128
  const os = operands(small)
  let exact: Record<string, string> | null = null
  for (const v of variants) {
    const { pipeline, errors } = await compile(device, src(v, small))
    if (!pipeline) {
      log({ sgmVariant: v, errors })
      continue
    }
    await timeDispatch(device, pipeline, [os.A, os.B, os.C], [small / 32, small / 32, 1], 1)
    const bad = check(os, new Int32Array(await read(device, os.C, small * small * 4)), small)
    log({ sgmVariant: v, bad })
    if (bad === 0 && !exact) exact = v
  }
  if (!exact) return
  for (const S of [2048, 4096]) {
    const o = operands(S)
    const { pipeline } = await compile(device, src(exact, S))
    const ms = await timeDispatch(device, pipeline!, [o.A, o.B, o.C], [S / 32, S / 32, 1], 10)
    const bad = check(o, new Int32Array(await read(device, o.C, S * S * 4)), S)
    log({ sgmNaive: exact, S, ms, tops: (2 * S ** 3) / (ms / 1e3) / 1e12, bad })
  }
}

/**
 * Decode GEMV layouts, one f16 matrix pair [rows × H] (gate and up) with one token: the
 * "column-slice" layout (each invocation owns fixed columns with x in registers, R rows per
 * workgroup, reduction across the workgroup) at several R, vs the read bandwidth.
 */
async function probeGemv(flagIndex: number, random: boolean): Promise<void> {
  const device = await deviceFor(flagIndex, ['subgroups'])
  if (!device) return
  const rows = process.env.PROBE_TINY ? 2048 : 14336
  const H = 4096
  const HC = H / 8
  const bytes = rows * H * 2
  const wg = buf(device, bytes)
  const wu = buf(device, bytes)
  const wd = buf(device, bytes)
  if (random) for (const b of [wg, wu, wd]) await fillRandom(device, b, bytes)
  const xv = new Float32Array(rows)
  for (let i = 0; i < xv.length; i++) xv[i] = (rnd() / 2 ** 32) * 2 - 1
  const x = buf(device, xv)
  const out = buf(device, rows * 4)
  for (const WG of [128, 256]) {
    for (const R of [2, 4, 8, 16]) {
      const CPT = HC / WG
      const S = WG / 32
      const code = `enable subgroups;
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> wg: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> wu: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, ${S * R * 2}>;
fn dot8(p: vec4<u32>, a: vec4<f32>, b: vec4<f32>) -> f32 {
  return dot(vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)), a) + dot(vec4<f32>(unpack2x16float(p.z), unpack2x16float(p.w)), b);
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sl: u32) {
  let row0 = wid.x * ${R}u;
${Array.from({ length: CPT }, (_, c) => `  let xa${c} = x[2u * (lid + ${c * WG}u)]; let xb${c} = x[2u * (lid + ${c * WG}u) + 1u];`).join('\n')}
${Array.from({ length: R }, (_, r) => `  var g${r} = 0.0; var u${r} = 0.0;`).join('\n')}
${Array.from({ length: R }, (_, r) => Array.from({ length: CPT }, (_, c) => `  let pg${r}_${c} = wg[(row0 + ${r}u) * ${HC}u + lid + ${c * WG}u]; let pu${r}_${c} = wu[(row0 + ${r}u) * ${HC}u + lid + ${c * WG}u];`).join('\n')).join('\n')}
${Array.from({ length: R }, (_, r) => Array.from({ length: CPT }, (_, c) => `  g${r} += dot8(pg${r}_${c}, xa${c}, xb${c}); u${r} += dot8(pu${r}_${c}, xa${c}, xb${c});`).join('\n')).join('\n')}
${Array.from({ length: R }, (_, r) => `  { let a = subgroupAdd(g${r}); let b = subgroupAdd(u${r}); if (sl == 0u) { part[(lid / 32u) * ${2 * R}u + ${2 * r}u] = a; part[(lid / 32u) * ${2 * R}u + ${2 * r + 1}u] = b; } }`).join('\n')}
  workgroupBarrier();
  if (lid < ${R}u) {
    var g = 0.0; var u = 0.0;
    for (var s = 0u; s < ${S}u; s++) { g += part[s * ${2 * R}u + 2u * lid]; u += part[s * ${2 * R}u + 2u * lid + 1u]; }
    out[row0 + lid] = g / (1.0 + exp(-g)) * u;
  }
}`
      const { pipeline, errors } = await compile(device, code)
      if (!pipeline) {
        log({ gemv: { WG, R }, errors })
        continue
      }
      const ms = await timeDispatch(device, pipeline, [x, wg, wu, out], [rows / R, 1, 1], process.env.PROBE_TINY ? 2 : 50)
      log({ gemv: 'column-slice gate+up', random, flags: flagSets[flagIndex], WG, R, ms, TBs: (2 * bytes) / (ms / 1e3) / 1e12 })
    }
  }
  // the down projection shape (K = 14336): rows 4096
  for (const R of [4, 8]) {
    const WG = 256
    const KC = rows / 8
    const CPT = KC / WG
    const code = `enable subgroups;
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> wd: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, ${(WG / 32) * R}>;
fn dot8(p: vec4<u32>, a: vec4<f32>, b: vec4<f32>) -> f32 {
  return dot(vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)), a) + dot(vec4<f32>(unpack2x16float(p.z), unpack2x16float(p.w)), b);
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sl: u32) {
  let row0 = wid.x * ${R}u;
${Array.from({ length: R }, (_, r) => `  var d${r} = 0.0;`).join('\n')}
  for (var c = 0u; c < ${CPT}u; c++) {
    let ch = lid + c * ${WG}u;
    let xa = x[2u * ch]; let xb = x[2u * ch + 1u];
${Array.from({ length: R }, (_, r) => `    let p${r} = wd[(row0 + ${r}u) * ${KC}u + ch];`).join('\n')}
${Array.from({ length: R }, (_, r) => `    d${r} += dot8(p${r}, xa, xb);`).join('\n')}
  }
${Array.from({ length: R }, (_, r) => `  { let a = subgroupAdd(d${r}); if (sl == 0u) { part[(lid / 32u) * ${R}u + ${r}u] = a; } }`).join('\n')}
  workgroupBarrier();
  if (lid < ${R}u) {
    var d = 0.0;
    for (var s = 0u; s < ${WG / 32}u; s++) { d += part[s * ${R}u + lid]; }
    out[row0 + lid] = d;
  }
}`
    const { pipeline, errors } = await compile(device, code)
    if (!pipeline) {
      log({ gemvDown: { R }, errors })
      continue
    }
    const ms = await timeDispatch(device, pipeline, [x, wd, out], [H / R, 1, 1], process.env.PROBE_TINY ? 2 : 50)
    log({ gemv: 'column-slice down', random, flags: flagSets[flagIndex], R, ms, TBs: bytes / (ms / 1e3) / 1e12 })
  }
  wg.destroy()
  wu.destroy()
  wd.destroy()
}

const only = isMain ? (process.env.PROBE_ONLY ?? 'all') : 'none'
if (only === 'all' || only === 'sgm') await probeSubgroupMatrix().catch((e) => log({ sgmError: String(e) }))
if (only === 'all' || only === 'bw') await probeBandwidth().catch((e) => log({ bwError: String(e) }))
if (only === 'all' || only === 'bw') await probeGemv(0, false).catch((e) => log({ gemvError: String(e) }))
if (only === 'all' || only === 'bw') await probeGemv(0, true).catch((e) => log({ gemvError: String(e) }))
if (only !== 'none') {
  log({ done: true })
  process.exit(0)
}

/**
 * The layer's decode gate+up kernel as generated, run alone on the Mixtral shape (one token,
 * one active expert), with variants that isolate what separates it from the probe kernel.
 */
export async function probeLayerGemv(gen: (c: Record<string, unknown>) => string, rows: number, wgSize: number, given?: GPUDevice, tag = 'probe device'): Promise<void> {
  const device = given ?? (await deviceFor(0, ['subgroups']))
  if (!device) return
  const H = 4096
  const I = 14336
  const hc = H / 8
  for (const E of [1, 8]) {
    const eActive = E - 1
    const bytes = E * I * H * 2
    const gate = buf(device, bytes)
    const up = buf(device, bytes)
    await fillRandom(device, gate, bytes)
    await fillRandom(device, up, bytes)
    const xv = new Float32Array(2 * H)
    for (let i = 0; i < H; i++) xv[i] = (rnd() / 2 ** 32) * 2 - 1
    const x = buf(device, xv)
    const rowToken = buf(device, new Int32Array([0, 0, 0, 0]))
    const off = new Int32Array(2 * E + 1).fill(-1)
    for (let e = 0; e <= E; e++) off[e] = e > eActive ? 1 : 0
    off[E + 1] = eActive
    const offsets = buf(device, off)
    const act = buf(device, I * 4)
    const params = device.createBuffer({ size: 16, usage: 0x40 | 0x8 })
    device.queue.writeBuffer(params, 0, new Uint32Array([1, hc, I, E]))
    const base = gen({ dtype: 'f16', mt: 1, rows, wg: wgSize, subgroupSize: 32, kc: hc })
    const variants: Record<string, string> = { asIs: base }
    for (const [name, code] of Object.entries(variants)) {
      const { pipeline, errors } = await compile(device, code)
      if (!pipeline) {
        log({ layerGemv: name, errors })
        continue
      }
      const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [x, rowToken, offsets, gate, up, act, params].map((b, i) => ({ binding: i, resource: { buffer: b } })).filter((en) => code.includes(`@binding(${en.binding})`)) })
      const go = async (m: number) => {
        const enc = device.createCommandEncoder()
        const pass = enc.beginComputePass()
        pass.setPipeline(pipeline)
        pass.setBindGroup(0, bg)
        for (let i = 0; i < m; i++) pass.dispatchWorkgroups(I / rows, 1, 1)
        pass.end()
        device.queue.submit([enc.finish()])
        await device.queue.onSubmittedWorkDone()
      }
      await go(2)
      const t0 = performance.now()
      await go(50)
      const ms = (performance.now() - t0) / 50
      log({ layerGemv: name, tag, E, rows, wg: wgSize, ms, TBs: (2 * I * H * 2) / (ms / 1e3) / 1e12 })
    }
    for (const b of [gate, up, x, rowToken, offsets, act, params]) b.destroy()
  }
}
