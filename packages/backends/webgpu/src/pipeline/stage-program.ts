/**
 * Compiles the WGSL stages of plugins (routers and policies lowered to WGSL over core's
 * preludes) into compute pipelines with explicit bind-group layouts — explicit because a
 * stage's entry point need not use every binding of its prelude — cached per device by the
 * stage's key and entry point.
 */
import { ErrorCodes, MoeError, POLICY_PRELUDE, ROUTER_PRELUDE, type WgslStage } from '@moe-route/core'

const COMPUTE = 4 // GPUShaderStage.COMPUTE

/** Binding types of the two preludes, in binding order. */
const LAYOUTS = {
  policy: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'storage', 'storage', 'storage', 'uniform', 'uniform'],
  router: ['read-only-storage', 'read-only-storage', 'storage', 'storage', 'storage', 'storage', 'storage', 'uniform', 'uniform'],
} as const

/** A router stage or a policy stage. */
export type StageRole = keyof typeof LAYOUTS

/** One compiled entry point of a stage. */
export interface CompiledPass {
  readonly pipeline: GPUComputePipeline
  readonly layout: GPUBindGroupLayout
}

const layouts = new WeakMap<GPUDevice, Map<StageRole, GPUBindGroupLayout>>()
const pipelines = new WeakMap<GPUDevice, Map<string, CompiledPass>>()

/** The bind-group layout of a prelude on a device (one per device and role). */
export function stageLayout(device: GPUDevice, role: StageRole): GPUBindGroupLayout {
  let byRole = layouts.get(device)
  if (!byRole) layouts.set(device, (byRole = new Map()))
  let layout = byRole.get(role)
  if (!layout) {
    layout = device.createBindGroupLayout({
      label: `moe-route ${role} stage`,
      entries: LAYOUTS[role].map((type, binding) => ({ binding, visibility: COMPUTE, buffer: { type } })),
    })
    byRole.set(role, layout)
  }
  return layout
}

/** The full WGSL of a stage: extensions, the prelude of its role, then its code. */
export function stageSource(stage: WgslStage, role: StageRole): string {
  const enables = (stage.enable ?? []).map((e) => `enable ${e};\n`).join('')
  const diag = stage.enable?.includes('subgroups') ? 'diagnostic(off, subgroup_uniformity);\n' : ''
  return `${enables}${diag}${role === 'router' ? ROUTER_PRELUDE : POLICY_PRELUDE}\n${stage.code}`
}

/**
 * Compiles (once per device, stage key and entry point) every pass of a stage. Async
 * compilation so a pipeline's stages compile in parallel before the first batch.
 * @throws MOE_ROUTE_ERR_PLUGIN_FAILED naming the plugin when its WGSL does not compile.
 */
export async function compileStage(device: GPUDevice, stage: WgslStage, role: StageRole, plugin: string): Promise<CompiledPass[]> {
  let byKey = pipelines.get(device)
  if (!byKey) pipelines.set(device, (byKey = new Map()))
  const layout = stageLayout(device, role)
  const pipelineLayout = device.createPipelineLayout({ label: `moe-route ${role} stage`, bindGroupLayouts: [layout] })
  let module: GPUShaderModule | null = null
  const out: CompiledPass[] = []
  for (const pass of stage.passes) {
    const key = `${role}|${stage.key}|${pass.entryPoint}`
    let compiled = byKey.get(key)
    if (!compiled) {
      module ??= device.createShaderModule({ label: `${plugin} (${stage.key})`, code: stageSource(stage, role) })
      device.pushErrorScope('validation')
      let pipeline: GPUComputePipeline
      try {
        pipeline = await device.createComputePipelineAsync({ label: `${plugin}:${pass.entryPoint}`, layout: pipelineLayout, compute: { module, entryPoint: pass.entryPoint } })
      } catch (cause) {
        await device.popErrorScope().catch(() => null)
        const info = await module.getCompilationInfo().catch(() => null)
        const msgs = info ? info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ') : ''
        throw new MoeError(ErrorCodes.PLUGIN_FAILED, `the GPU lowering of ${plugin} does not compile: ${msgs || (cause as Error).message}`, { plugin, hook: 'lower' }, { cause })
      }
      const err = await device.popErrorScope().catch(() => null)
      if (err) throw new MoeError(ErrorCodes.PLUGIN_FAILED, `the GPU lowering of ${plugin} is invalid: ${err.message}`, { plugin, hook: 'lower' })
      compiled = { pipeline, layout }
      byKey.set(key, compiled)
    }
    out.push(compiled)
  }
  return out
}
