/** The `webgpu` backend plugin (for configs and `moe-route run --backend webgpu`). */
import { defineBackend } from '@moe-route/core'
import { createWebGpuBackend, type WebGpuBackendOptions } from './webgpu-backend.js'

/** Options of the `webgpu` backend plugin (JSON-serialisable subset of {@link WebGpuBackendOptions}). */
export interface WebGpuPluginOptions {
  weightsDtype: 'f32' | 'f16'
  profile: boolean
  powerPreference: 'low-power' | 'high-performance' | null
  subgroups: boolean
  expertKernel: 'auto' | 'gemv' | 'gemm'
  gemvMaxRows: number
  fallback: boolean
}

/** Defaults of the plugin's options. */
export const webgpuDefaultOptions: WebGpuPluginOptions = {
  weightsDtype: 'f32',
  profile: false,
  powerPreference: null,
  subgroups: true,
  expertKernel: 'auto',
  gemvMaxRows: 64,
  fallback: true,
}

/** JSON Schema of the plugin's options. */
export const webgpuOptionsSchema = {
  type: 'object',
  properties: {
    weightsDtype: { type: 'string', enum: ['f32', 'f16'] },
    profile: { type: 'boolean' },
    powerPreference: { type: ['string', 'null'], enum: ['low-power', 'high-performance', null] },
    subgroups: { type: 'boolean' },
    expertKernel: { type: 'string', enum: ['auto', 'gemv', 'gemm'] },
    gemvMaxRows: { type: 'integer', minimum: 1 },
    fallback: { type: 'boolean' },
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
    package: '@moe-route/backend-webgpu',
    version: '0.1.0',
    core: '^0.1.0',
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
      ...(o.powerPreference ? { powerPreference: o.powerPreference } : {}),
    }
    return createWebGpuBackend(opts)
  },
})

export default webgpuBackend
