/**
 * Timing helpers shared by the GPU benchmarks: the read-bandwidth ceiling and wall-clock ms per
 * call of back-to-back submissions (one wait at the end, like CUDA-event timing of
 * back-to-back launches) after a time-based warm-up.
 */

/** Invocations per workgroup and vec4 loads per invocation of the read-bandwidth kernel. */
const BW_WG = 256
const BW_PER = 16

/**
 * The read-bandwidth kernel: each invocation XORs 16 vec4 of `a` (bindings a, o) and writes
 * only if the result is one magic word, so nothing but the reads costs. `readGrid(bytes)` is
 * its dispatch for a buffer of `bytes` bytes, and the sink `o` needs `sinkBytes(bytes)`.
 */
export const readKernelWgsl = `@group(0) @binding(0) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${BW_WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = wid.y * n.x + wid.x;
  var acc = vec4<u32>(0u);
  for (var i = 0u; i < ${BW_PER}u; i = i + 1u) { acc = acc ^ a[(g * ${BW_PER}u + i) * ${BW_WG}u + l]; }
  let v = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (v == 0x12345678u) { o[g * ${BW_WG}u + l] = v; }
}`

const readGroups = (bytes: number) => bytes / 16 / (BW_WG * BW_PER)

/** Dispatch grid of {@link readKernelWgsl} over `bytes` bytes. */
export function readGrid(bytes: number): [number, number, number] {
  const groups = readGroups(bytes)
  const gx = Math.min(groups, 32768)
  return [gx, Math.ceil(groups / gx), 1]
}

/** Bytes of the kernel's sink buffer for a source of `bytes` bytes. */
export const sinkBytes = (bytes: number): number => readGroups(bytes) * 4 * BW_WG

/**
 * Read bandwidth in bytes/s: a WGSL kernel that reads `bytes` once with 16-byte loads and
 * writes one word per workgroup (never taken), timed over back-to-back dispatches. This is
 * the ceiling a decode GEMV can reach (it only reads weights).
 */
export async function readBandwidth(device: GPUDevice, bytes: number, reps = 30): Promise<number> {
  const src = device.createBuffer({ label: 'bw-src', size: bytes, usage: 0x80 /* STORAGE */ })
  const sink = device.createBuffer({ label: 'bw-sink', size: sinkBytes(bytes), usage: 0x80 })
  const module = device.createShaderModule({ label: 'bw-read', code: readKernelWgsl })
  const pipeline = device.createComputePipeline({ label: 'bw-read', layout: 'auto', compute: { module, entryPoint: 'main' } })
  const bg = device.createBindGroup({ label: 'bw-read', layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }] })
  const s = (await msPerDispatch(device, pipeline, bg, readGrid(bytes), reps, 1, 3)) / 1000
  src.destroy()
  sink.destroy()
  return bytes / s
}

/**
 * ms per dispatch of one pipeline: `n` dispatches of `grid` back to back in one compute pass,
 * one wait at the end, after `warmup` dispatches; the median over `rounds` such runs.
 */
export async function msPerDispatch(device: GPUDevice, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, grid: readonly [number, number, number], n: number, rounds = 1, warmup = 2): Promise<number> {
  const run = async (m: number) => {
    const enc = device.createCommandEncoder()
    const pass = enc.beginComputePass()
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    for (let i = 0; i < m; i++) pass.dispatchWorkgroups(grid[0], grid[1], grid[2])
    pass.end()
    device.queue.submit([enc.finish()])
    await device.queue.onSubmittedWorkDone()
  }
  await run(warmup)
  const ms: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    await run(n)
    ms.push((performance.now() - t0) / n)
  }
  return median(ms)
}

/**
 * ms per call of `once` (which encodes and submits one call without waiting), `n` calls back
 * to back and one wait at the end, after at least `warmupMs` of calls: the GPU clocks down
 * while the host works between configurations, and the first calls after that ran up to 1.6×
 * slower on an H100. `onTimed` runs between the warm-up and the timed calls (diagnostics).
 */
export async function timeBackToBack(device: GPUDevice, once: () => void, n: number, warmupMs = 150, onTimed?: () => void): Promise<number> {
  const w0 = performance.now()
  for (let i = 0; i < 3 || performance.now() - w0 < warmupMs; i++) {
    once()
    if (i % 8 === 7) await device.queue.onSubmittedWorkDone()
  }
  await device.queue.onSubmittedWorkDone()
  onTimed?.()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) once()
  await device.queue.onSubmittedWorkDone()
  return (performance.now() - t0) / n
}

/** Median of the values. */
export const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
