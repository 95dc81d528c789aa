/** The `webgpu` backend plugin (for configs and `moe-route run --backend webgpu`). */
import { defineBackend } from '@moe-route/core'
import { createWebGpuBackend, type WebGpuBackendOptions } from './webgpu-backend.js'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'

/**
 * Options of the `webgpu` backend plugin: every {@link WebGpuBackendOptions} field a JSON
 * config can express. API-only: `device` (a live GPUDevice object cannot come from JSON) and
 * `int8Tiles` (per-GPU tuning of the int8 tensor-core tiles, set by benchmarks).
 */
export interface WebGpuPluginOptions {
  weightsDtype: 'f32' | 'f16'
  profile: boolean
  powerPreference: 'low-power' | 'high-performance' | null
  subgroups: boolean
  expertKernel: 'auto' | 'gemv' | 'gemm' | 'int8'
  gemvMaxRows: number
  gemvRows: number | null
  int8Kernel: 'auto' | 'dot4' | 'subgroup-matrix'
  int8GemvMaxRows: number | null
  indirectGemmGrid: boolean
  unsafeApis: boolean
  dawnFlags: string[]
  fallback: boolean
}

/** Defaults of the plugin's options: f16 weights (half the bytes decode streams), kernels chosen by group size. */
export const webgpuDefaultOptions: WebGpuPluginOptions = {
  weightsDtype: 'f16',
  profile: false,
  powerPreference: null,
  subgroups: true,
  expertKernel: 'auto',
  gemvMaxRows: 64,
  gemvRows: null,
  int8Kernel: 'auto',
  int8GemvMaxRows: null,
  indirectGemmGrid: false,
  unsafeApis: false,
  dawnFlags: [],
  fallback: true,
}

/** JSON Schema of the plugin's options. */
export const webgpuOptionsSchema = {
  type: 'object',
  properties: {
    weightsDtype: { type: 'string', enum: ['f32', 'f16'], description: 'Storage of expert weights on the device' },
    profile: { type: 'boolean', description: 'Time every kernel with timestamp queries (per-stage device times in telemetry)' },
    powerPreference: { type: ['string', 'null'], enum: ['low-power', 'high-performance', null] },
    subgroups: { type: 'boolean', description: 'Use subgroup reductions where the device has them' },
    expertKernel: { type: 'string', enum: ['auto', 'gemv', 'gemm', 'int8'], description: 'int8: W8A8 weights quantized on the device' },
    gemvMaxRows: { type: 'integer', minimum: 1, maximum: 1048576 },
    gemvRows: { type: ['integer', 'null'], minimum: 1, maximum: 64 },
    int8Kernel: { type: 'string', enum: ['auto', 'dot4', 'subgroup-matrix'] },
    int8GemvMaxRows: { type: ['integer', 'null'], minimum: 0, maximum: 1024 },
    indirectGemmGrid: { type: 'boolean', description: 'Launch the expert GEMMs over the indirect grid the GPU writes (exact row tiles) instead of a direct grid (no host-side indirect validation)' },
    unsafeApis: { type: 'boolean', description: "Dawn's allow_unsafe_apis (exposes the int8 tensor-core feature)" },
    dawnFlags: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9_=,-]+$', maxLength: 200 }, maxItems: 16, description: 'Dawn instance flags (Node), e.g. backend=vulkan' },
    fallback: { type: 'boolean', description: 'Finish a batch on the CPU when the device is lost' },
  },
  additionalProperties: false,
} as const

/**
 * The `webgpu` backend plugin. Register it with core's registry (or name `webgpu` in a
 * config once registered); the device is acquired on the first call.
 * @example
 * import { webgpuBackend } from '@moe-route/backend-webgpu'
 * registry.register(webgpuBackend)
 */
export const webgpuBackend = defineBackend<WebGpuPluginOptions>({
  meta: {
    name: 'webgpu',
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: CORE_RANGE,
    description: 'MoE layer kernels in WGSL on a WebGPU device (Dawn in Node); CPU fallback on device loss',
    schema: webgpuOptionsSchema as unknown as Record<string, unknown>,
    defaultOptions: webgpuDefaultOptions,
  },
  create(o) {
    const opts: WebGpuBackendOptions = {
      weightsDtype: o.weightsDtype,
      profile: o.profile,
      subgroups: o.subgroups,
      expertKernel: o.expertKernel,
      gemvMaxRows: o.gemvMaxRows,
      fallback: o.fallback,
      int8Kernel: o.int8Kernel,
      ...(o.unsafeApis ? { unsafeApis: true } : {}),
      ...(o.dawnFlags.length ? { dawnFlags: o.dawnFlags } : {}),
      ...(o.gemvRows !== null ? { gemvRows: o.gemvRows } : {}),
      ...(o.int8GemvMaxRows !== null ? { int8GemvMaxRows: o.int8GemvMaxRows } : {}),
      ...(o.indirectGemmGrid ? { indirectGemmGrid: true } : {}),
      ...(o.powerPreference ? { powerPreference: o.powerPreference } : {}),
    }
    return createWebGpuBackend(opts)
  },
})

export default webgpuBackend
