/**
 * The `webgpu` backend: the core Backend contract on a WebGPU device, with the batch in
 * flight finished on the CPU reference backend when the device is lost or runs out of memory.
 */
import {
  ErrorCodes,
  MoeError,
  isMoeError,
  type Backend,
  type BackendInfo,
  type DispatchPlan,
  type ExpertsResult,
  type LayerWeights,
  type PipelineSpec,
  type WeightSource,
} from '@moe-route/core'
import { expertsForward, gateMatmul } from '@moe-route/backend-cpu'
import { acquireDevice, type AcquireDeviceOptions, type AcquiredDevice } from './gpu/device.js'
import { GpuContext } from './gpu/context.js'
import type { WeightsDtype } from './kernels/expert-ffn/expert-ffn.program.js'
import { WebGpuMoeLayer, type ExpertKernel, type Int8KernelOption } from './layer.js'
import { generateLayerWeights, uploadLayerWeights, type DeviceLayerWeights } from './weights.js'
import { quantizeDeviceWeights, uploadInt8Weights, type DeviceInt8Weights } from './weights-int8.js'
import { createWebGpuPipeline, syntheticHidden, type WebGpuPipeline } from './pipeline/device-pipeline.js'
import { loadSafetensorsWeights } from './pipeline/safetensors-weights.js'
import { createStoreSlots } from './pipeline/store-slots.js'

/** Options of {@link createWebGpuBackend}. */
export interface WebGpuBackendOptions {
  /**
   * Storage of expert weights on the device: `f16` (packed two per u32; the default of device
   * pipelines) or `f32` (the default of `experts()` with host weights, for exact parity).
   */
  readonly weightsDtype?: WeightsDtype
  /** Time every kernel with timestamp queries (when the device has them); times land in `kernels`. */
  readonly profile?: boolean
  /** Adapter preference passed to `requestAdapter`. */
  readonly powerPreference?: GPUPowerPreference
  /** Run on this device instead of requesting one (browser, or another WebGPU runtime). */
  readonly device?: GPUDevice
  /** Use subgroup reductions where available (default true; false forces the workgroup-memory path). */
  readonly subgroups?: boolean
  /** Expert kernel: `auto` (default), `gemv` (decode), `gemm` (prefill) or `int8` (W8A8 prefill: weights quantized on upload). */
  readonly expertKernel?: ExpertKernel
  /** `auto` runs the decode kernels up to this many rows per expert group (default 64) and beyond it wherever the multi-row plan table covers the group, else the GEMM. */
  readonly gemvMaxRows?: number
  /** Finish a call on the CPU backend when the device is lost or out of memory (default true). */
  readonly fallback?: boolean
  /** Dawn flags for `create()` in Node (e.g. `['backend=vulkan']`). */
  readonly dawnFlags?: readonly string[]
  /** Dawn's `allow_unsafe_apis` (Node): exposes `chromium-experimental-subgroup-matrix` for the int8 tensor-core kernel. Default false. */
  readonly unsafeApis?: boolean
  /** int8 GEMM of `expertKernel: 'int8'`: `auto` (default), `dot4` or `subgroup-matrix`. */
  readonly int8Kernel?: Int8KernelOption
  /** Weight rows per workgroup of the decode kernels (default 4). */
  readonly gemvRows?: number
  /** The int8 expert kernel runs the decode GEMV while the typical group has at most this many rows (default 2). */
  readonly int8GemvMaxRows?: number
  /** Launch the expert GEMMs of device-built dynamic groups over the indirect grid (default false: a direct grid; see the layer option). */
  readonly indirectGemmGrid?: boolean
}

/** What a fallback did: the fields of core's `ExpertsResult.fallback`, plus when and where. */
export interface FallbackInfo {
  readonly from: 'webgpu'
  readonly to: 'cpu'
  readonly reason: string
  /** Which call fell back (`pipeline`: a batch of the device pipeline, finished by the engine on the host path). */
  readonly call: 'gate' | 'experts' | 'pipeline'
  readonly at: number
}

/** The WebGPU backend: core's Backend plus the device pipeline of a configured layer. */
export interface WebGpuBackend extends Backend {
  readonly name: 'webgpu'
  /** Acquires the device now (otherwise the first call does); resolves to the adapter name. */
  ready(): Promise<string>
  /** The layer on the current device (acquiring it if needed). */
  layer(): Promise<WebGpuMoeLayer>
  /** The last fallback of this backend, or null. */
  readonly lastFallback: FallbackInfo | null
  /** Number of calls finished on the CPU. */
  readonly fallbackCount: number
  /** The device pipeline of a configured layer (the engine calls this; see core's `PipelineSpec`). */
  pipeline(spec: PipelineSpec): Promise<WebGpuPipeline>
  /**
   * Weights on the device from a source: generated there (`seeded`), streamed from a
   * safetensors file through staging buffers, or uploaded from host arrays; int8 when the
   * expert kernel is `int8`. Never materialised as host f32.
   */
  deviceWeights(source: WeightSource, shape: LayerWeights['shape']): Promise<DeviceLayerWeights | DeviceInt8Weights>
  dispose(): Promise<void>
}

/**
 * Creates the WebGPU backend. The device is acquired lazily (first call or `ready()`); a
 * lost device that this backend requested is re-acquired on the next call.
 * @example
 * import { createWebGpuBackend } from '@moe-route/backend-webgpu'
 * const backend = createWebGpuBackend({ weightsDtype: 'f16', profile: true })
 * console.log(await backend.ready()) // e.g. "nvidia / NVIDIA H100 80GB HBM3"
 * const { output, kernels } = await backend.experts(x, plan, weights)
 */
export function createWebGpuBackend(options: WebGpuBackendOptions = {}): WebGpuBackend {
  let current: Promise<{ acquired: AcquiredDevice; layer: WebGpuMoeLayer; lost: { reason: string } | null }> | null = null
  let adapterName: string | null = null
  let lastFallback: FallbackInfo | null = null
  let fallbackCount = 0
  let queue: Promise<unknown> = Promise.resolve()
  const allowFallback = options.fallback !== false

  const acquireOpts: AcquireDeviceOptions = {
    ...(options.device ? { device: options.device } : {}),
    ...(options.powerPreference ? { powerPreference: options.powerPreference } : {}),
    ...(options.dawnFlags ? { dawnFlags: options.dawnFlags } : {}),
    ...(options.unsafeApis ? { unsafeApis: true } : {}),
  }

  function state() {
    current ??= (async () => {
      const acquired = await acquireDevice(acquireOpts)
      adapterName = acquired.adapterName
      const ctx = new GpuContext(acquired, { profile: options.profile === true })
      const s = {
        acquired,
        layer: new WebGpuMoeLayer(ctx, {
          ...(options.weightsDtype ? { weightsDtype: options.weightsDtype } : {}),
          ...(options.subgroups === false ? { subgroups: false } : {}),
          ...(options.expertKernel ? { expertKernel: options.expertKernel } : {}),
          ...(options.gemvMaxRows ? { gemvMaxRows: options.gemvMaxRows } : {}),
          ...(options.int8Kernel ? { int8Kernel: options.int8Kernel } : {}),
          ...(options.gemvRows ? { gemvRows: options.gemvRows } : {}),
          ...(options.int8GemvMaxRows ? { int8GemvMaxRows: options.int8GemvMaxRows } : {}),
          ...(options.indirectGemmGrid ? { indirectGemmGrid: true } : {}),
        }),
        lost: null as { reason: string } | null,
      }
      void acquired.device.lost.then((info) => {
        s.lost = { reason: `device lost (${info.reason}${info.message ? `: ${info.message}` : ''})` }
      })
      return s
    })()
    return current
  }

  /** Serialises calls (error scopes and the profiler are per device) and handles fallback. */
  function guarded<R>(call: FallbackInfo['call'], gpu: (layer: WebGpuMoeLayer) => Promise<R>, cpu: (() => R) | null): Promise<R & { fallback?: FallbackInfo }> {
    const run = async (): Promise<R & { fallback?: FallbackInfo }> => {
      let s = await state()
      if (s.lost && s.acquired.owned) {
        current = null
        s = await state()
      }
      const device = s.acquired.device
      let failure: string | null = s.lost ? s.lost.reason : null
      let result: R | undefined
      if (!failure) {
        device.pushErrorScope('out-of-memory')
        device.pushErrorScope('validation')
        try {
          result = await gpu(s.layer)
        } catch (e) {
          if (isMoeError(e) && e.code !== ErrorCodes.BACKEND_DEVICE_LOST) {
            await device.popErrorScope().catch(() => null)
            await device.popErrorScope().catch(() => null)
            throw e
          }
          failure = e instanceof Error ? `GPU call failed: ${e.message}` : 'GPU call failed'
        }
        const validation = await device.popErrorScope().catch(() => null)
        const oom = await device.popErrorScope().catch(() => null)
        if (oom) failure = `out of memory: ${oom.message}`
        else if (validation && !failure) {
          throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, `WebGPU validation error in ${call}: ${validation.message}`, { plugin: 'webgpu', hook: call })
        }
        if (failure || s.lost) {
          // give device.lost a moment to resolve so the reason names the loss
          await Promise.race([device.lost, new Promise((r) => setTimeout(r, 50))])
          if (s.lost) failure = s.lost.reason
        }
      }
      if (!failure) return result as R & { fallback?: FallbackInfo }
      if (!allowFallback || !cpu) {
        throw new MoeError(ErrorCodes.BACKEND_DEVICE_LOST, `${call} failed on the GPU: ${failure}`, { plugin: 'webgpu', hook: call })
      }
      const fallback: FallbackInfo = { from: 'webgpu', to: 'cpu', reason: failure, call, at: Date.now() }
      lastFallback = fallback
      fallbackCount++
      return { ...cpu(), fallback }
    }
    const p = queue.then(run, run)
    queue = p.catch(() => undefined)
    return p
  }

  const backend: WebGpuBackend = {
    name: 'webgpu',
    info(): BackendInfo {
      return {
        name: 'webgpu',
        adapter: adapterName ?? 'not acquired yet (acquired on first use)',
        weightsDtype: options.weightsDtype ?? 'f32',
        ...(lastFallback ? { lastFallback } : {}),
      }
    },
    async ready() {
      return (await state()).acquired.adapterName
    },
    async layer() {
      return (await state()).layer
    },
    async gate(x, tokens, weights) {
      const r = await guarded(
        'gate',
        async (layer) => ({ logits: (await layer.gate(x, tokens, weights)).logits }),
        () => ({ logits: gateMatmul(x, weights.router, tokens, weights.shape.hidden, weights.shape.experts) }),
      )
      return r.logits
    },
    async experts(x: Float32Array, plan: DispatchPlan, weights: LayerWeights): Promise<ExpertsResult> {
      return guarded(
        'experts',
        async (layer) => {
          const r = await layer.experts(x, plan, weights)
          return { output: r.output, ...(r.kernels ? { kernels: r.kernels } : {}) }
        },
        () => ({ output: expertsForward(x, plan, weights) }),
      )
    },
    async deviceWeights(source, shape) {
      const { layer } = await state()
      const ctx = layer.ctx
      const int8 = options.expertKernel === 'int8'
      const dtype: WeightsDtype = options.weightsDtype ?? 'f16'
      if (source.kind === 'host') return int8 ? uploadInt8Weights(ctx, source.weights) : uploadLayerWeights(ctx, source.weights, dtype)
      const dw =
        source.kind === 'seeded'
          ? await generateLayerWeights(ctx, shape, { seed: source.seed, std: source.std, ...(source.routerStd !== undefined ? { routerStd: source.routerStd } : {}), dtype: int8 ? 'f16' : dtype })
          : await loadSafetensorsWeights(ctx, source, shape, int8 ? 'f16' : dtype)
      if (!int8) return dw
      const w8 = await quantizeDeviceWeights(ctx, dw)
      dw.destroy()
      return w8
    },
    async pipeline(spec) {
      const s = await state()
      const { layer } = s
      const kernel = options.expertKernel ? { expertKernel: options.expertKernel } : {}
      const st = spec.store
      let p: WebGpuPipeline
      if (st?.attachDevice && st.slots !== undefined && typeof st.deviceSlot === 'function') {
        // an expert store on the data path: `slots` experts on the device, misses from host memory
        if (options.expertKernel === 'int8') throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, 'an expert store on the device pipeline needs f16 or f32 weights (the int8 kernels read every expert)', { plugin: 'webgpu', path: '/store' })
        const slots = await createStoreSlots(layer.ctx, spec.weights, spec.model, options.weightsDtype ?? 'f16', st.slots)
        st.attachDevice(slots.device)
        p = await createWebGpuPipeline(layer, slots.weights, spec, { ...kernel, storeSlots: st.slots, ownsWeights: true })
      } else {
        const dw = await backend.deviceWeights(spec.weights, spec.model)
        p = await createWebGpuPipeline(layer, dw, spec, { ...kernel, ownsWeights: true })
      }
      // a lost device becomes BACKEND_DEVICE_LOST: the engine finishes the batch on its host
      // path (unless fallback is off) and builds a new pipeline on the re-acquired device
      const forward = p.forward.bind(p)
      p.forward = async (batch, opts) => {
        try {
          return await forward(batch, opts)
        } catch (e) {
          if (isMoeError(e) && e.code !== 'MOE_ROUTE_ERR_BACKEND_KERNEL_FAILED') throw e
          await Promise.race([s.acquired.device.lost, new Promise((r) => setTimeout(r, 50))])
          if (!s.lost) throw e
          lastFallback = { from: 'webgpu', to: 'cpu', reason: s.lost.reason, call: 'pipeline', at: Date.now() }
          fallbackCount++
          throw new MoeError(ErrorCodes.BACKEND_DEVICE_LOST, `the device pipeline lost its device: ${s.lost.reason}`, { plugin: 'webgpu', hook: 'pipeline', fallback: allowFallback }, { cause: e })
        }
      }
      return p
    },
    async syntheticHidden(tokens, hidden, seed) {
      const { layer } = await state()
      return syntheticHidden(layer.ctx, tokens, hidden, seed)
    },
    get lastFallback() {
      return lastFallback
    },
    get fallbackCount() {
      return fallbackCount
    },
    async dispose() {
      const s = current ? await current.catch(() => null) : null
      current = null
      if (!s) return
      s.layer.ctx.dispose()
      if (s.acquired.owned) s.acquired.device.destroy()
    },
  }
  return backend
}
