/**
 * Timing helpers shared by the GPU benchmarks: the read-bandwidth ceiling and wall-clock ms per
 * call of back-to-back submissions (one wait at the end, like CUDA-event timing of
 * back-to-back launches) after a time-based warm-up.
 */

/**
 * Read bandwidth in bytes/s: a WGSL kernel that reads `bytes` once with 16-byte loads and
 * writes one word per workgroup (never taken), timed over back-to-back dispatches. This is
 * the ceiling a decode GEMV can reach (it only reads weights).
 */
export async function readBandwidth(device: GPUDevice, bytes: number, reps = 30): Promise<number> {
  const WG = 256
  const PER = 16 // vec4 loads per invocation
  const groups = bytes / 16 / (WG * PER)
  const src = device.createBuffer({ label: 'bw-src', size: bytes, usage: 0x80 /* STORAGE */ })
  const sink = device.createBuffer({ label: 'bw-sink', size: groups * 4 * WG, usage: 0x80 })
  const module = device.createShaderModule({
    label: 'bw-read',
    code: `@group(0) @binding(0) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = wid.y * n.x + wid.x;
  var acc = vec4<u32>(0u);
  for (var i = 0u; i < ${PER}u; i = i + 1u) { acc = acc ^ a[(g * ${PER}u + i) * ${WG}u + l]; }
  let v = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (v == 0x12345678u) { o[g * ${WG}u + l] = v; }
}`,
  })
  const pipeline = device.createComputePipeline({ label: 'bw-read', layout: 'auto', compute: { module, entryPoint: 'main' } })
  const bg = device.createBindGroup({ label: 'bw-read', layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }] })
  const gx = Math.min(groups, 32768)
  const gy = Math.ceil(groups / gx)
  const run = async (n: number) => {
    const enc = device.createCommandEncoder({ label: 'bw-read' })
    const pass = enc.beginComputePass()
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bg)
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(gx, gy)
    pass.end()
    device.queue.submit([enc.finish()])
    await device.queue.onSubmittedWorkDone()
  }
  await run(3)
  const t0 = performance.now()
  await run(reps)
  const s = (performance.now() - t0) / 1000
  src.destroy()
  sink.destroy()
  return (bytes * reps) / s
}

/**
 * ms per call of `once` (which encodes and submits one call without waiting), `n` calls back
 * to back and one wait at the end, after at least `warmupMs` of calls: the GPU clocks down
 * while the host works between configurations, and the first calls after that ran up to 1.6×
 * slower on an H100.
 */
export async function timeBackToBack(device: GPUDevice, once: () => void, n: number, warmupMs = 150): Promise<number> {
  const w0 = performance.now()
  for (let i = 0; i < 3 || performance.now() - w0 < warmupMs; i++) {
    once()
    if (i % 8 === 7) await device.queue.onSubmittedWorkDone()
  }
  await device.queue.onSubmittedWorkDone()
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
