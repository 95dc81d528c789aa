/** Runs bench/gpu-probe.ts's layer-kernel probe on the package's generated decode kernel. */
import { gemvGateUpWgsl } from '../packages/backends/webgpu/src/kernels/expert-ffn/expert-gemv.wgsl.js'
import { probeLayerGemv } from './gpu-probe.js'

for (const [rows, wg] of [[4, 256], [2, 256], [4, 128]] as const) await probeLayerGemv(gemvGateUpWgsl as never, rows, wg)
process.exit(0)
