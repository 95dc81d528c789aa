/**
 * Design probe (issue 15): what one more dispatch, compute-pass boundary or buffer clear costs
 * in back-to-back submits — the overhead a small batch (T = 1) pays per kernel besides the
 * kernel's own work. A submit holds N tiny dependent dispatches (one workgroup of 64 adds one to
 * a word of a shared buffer, so Dawn puts a barrier between them, as between the pipeline's
 * kernels); variants: all in one pass; one pass each; a 64-byte clear between them; N clears and
 * one pass; and the same N dispatches over N distinct buffers (no dependency). Prints wall µs per
 * submit (500 submits back to back, one wait), the host's share (the submit loop alone) and the
 * per-dispatch slope between N = 4 and N = 16.
 *
 * Usage: node dispatch-cost-probe.mjs    (any adapter; the numbers that matter come from the GPU host)
 */
import { acquireDevice } from '@moe-route/backend-webgpu'
import { median } from './lib/gpu-timing.js'

const acquired = await acquireDevice({ powerPreference: 'high-performance' })
const device = acquired.device
console.log(JSON.stringify({ probe: 'dispatch-cost', adapter: acquired.adapterName, device: acquired.adapterInfo?.device }))
const module = device.createShaderModule({
  code: `@group(0) @binding(0) var<storage, read_write> b: array<atomic<u32>>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) l: u32) { if (l == 0u) { atomicAdd(&b[0], 1u); } }`,
})
const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
const bufs = Array.from({ length: 16 }, () => device.createBuffer({ size: 256, usage: 0x80 | 0x8 | 0x4 }))
const groups = bufs.map((buffer) => device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] }))

type Variant = 'one-pass' | 'pass-each' | 'clear-between' | 'clears-first' | 'independent'
function submit(v: Variant, n: number): void {
  const enc = device.createCommandEncoder()
  if (v === 'clears-first') for (let i = 0; i < n; i++) enc.clearBuffer(bufs[i % 16], 0, 64)
  let pass: GPUComputePassEncoder | null = null
  for (let i = 0; i < n; i++) {
    if (v === 'clear-between' && i > 0) {
      pass?.end()
      pass = null
      enc.clearBuffer(bufs[1], 0, 64)
    }
    if (!pass) pass = enc.beginComputePass()
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, v === 'independent' ? groups[i % 16] : groups[0])
    pass.dispatchWorkgroups(1)
    if (v === 'pass-each') {
      pass.end()
      pass = null
    }
  }
  pass?.end()
  device.queue.submit([enc.finish()])
}

async function time(v: Variant, n: number): Promise<{ wallUs: number; hostUs: number }> {
  const reps = 500
  for (let i = 0; i < 100; i++) submit(v, n)
  await device.queue.onSubmittedWorkDone()
  const walls: number[] = []
  const hosts: number[] = []
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    for (let i = 0; i < reps; i++) submit(v, n)
    const t1 = performance.now()
    await device.queue.onSubmittedWorkDone()
    walls.push(((performance.now() - t0) / reps) * 1000)
    hosts.push(((t1 - t0) / reps) * 1000)
  }
  return { wallUs: median(walls), hostUs: median(hosts) }
}

for (const v of ['one-pass', 'pass-each', 'clear-between', 'clears-first', 'independent'] as const) {
  const at: Record<number, { wallUs: number; hostUs: number }> = {}
  for (const n of [1, 4, 16]) at[n] = await time(v, n)
  console.log(JSON.stringify({ variant: v, ...Object.fromEntries(Object.entries(at).map(([n, t]) => [`n${n}`, t])), wallUsPerDispatch: (at[16].wallUs - at[4].wallUs) / 12, hostUsPerDispatch: (at[16].hostUs - at[4].hostUs) / 12 }))
}
process.exit(0)
