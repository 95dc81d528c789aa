/**
 * Acquiring a GPUDevice: Dawn's node addon (npm `webgpu`) in Node, `navigator.gpu` in a
 * browser or any runtime that has it, or a device the embedder already owns. Where the `GPU`
 * object comes from is gpu-entry.ts (Node) or gpu-entry.browser.ts (the browser build).
 */
import { ErrorCodes, MoeError } from '@moe-route/core'
import { NO_ADAPTER_HINT, gpuEntry } from './gpu-entry.js'

/** Options of {@link acquireDevice}. */
export interface AcquireDeviceOptions {
  /** Use this device instead of requesting one (embedding in another WebGPU runtime). */
  readonly device?: GPUDevice
  /** Passed to `requestAdapter`. */
  readonly powerPreference?: GPUPowerPreference
  /** Dawn toggles/flags for `create()` (Node only), e.g. `['backend=vulkan']`. */
  readonly dawnFlags?: readonly string[]
  /** Ask for `timestamp-query` (needed for kernel profiling). Default true. */
  readonly timestamps?: boolean
  /**
   * Add Dawn's `enable-dawn-features=allow_unsafe_apis` to `dawnFlags` (Node only; merged
   * into an `enable-dawn-features=` flag already given). Dawn exposes
   * `chromium-experimental-subgroup-matrix` (the int8 tensor-core kernel) only with it.
   * Default false.
   */
  readonly unsafeApis?: boolean
}

/** `dawnFlags` with `allow_unsafe_apis` merged in when `unsafeApis` is set. */
export function dawnFlagsOf(options: Pick<AcquireDeviceOptions, 'dawnFlags' | 'unsafeApis'>): string[] {
  const flags = [...(options.dawnFlags ?? [])]
  if (!options.unsafeApis) return flags
  const i = flags.findIndex((f) => f.startsWith('enable-dawn-features='))
  if (i < 0) flags.push('enable-dawn-features=allow_unsafe_apis')
  else if (!flags[i].slice('enable-dawn-features='.length).split(',').includes('allow_unsafe_apis')) flags[i] += ',allow_unsafe_apis'
  return flags
}

/** Features of the acquired device that the kernels use. */
export interface DeviceFeatures {
  readonly subgroups: boolean
  /** Subgroup size when the adapter reports one fixed size (min = max), else null. */
  readonly subgroupSize: number | null
  readonly timestampQuery: boolean
  /** `chromium-experimental-subgroup-matrix` (Dawn on NVIDIA: int8 tensor cores). */
  readonly subgroupMatrix: boolean
}

/** A device plus what moe-route knows about it. */
export interface AcquiredDevice {
  readonly device: GPUDevice
  /** Human-readable adapter description, e.g. `nvidia NVIDIA H100 80GB HBM3 (vulkan)`. */
  readonly adapterName: string
  readonly adapterInfo: Record<string, unknown>
  readonly features: DeviceFeatures
  /** True when this package requested the device (and may destroy or re-acquire it). */
  readonly owned: boolean
}

const WANTED_FEATURES = ['subgroups', 'timestamp-query', 'chromium-experimental-subgroup-matrix'] as const

function infoRecord(info: GPUAdapterInfo | undefined): Record<string, unknown> {
  if (!info) return {}
  const out: Record<string, unknown> = {}
  for (const k of ['vendor', 'architecture', 'device', 'description', 'subgroupMinSize', 'subgroupMaxSize'] as const) {
    const v = (info as unknown as Record<string, unknown>)[k]
    if (v !== undefined && v !== '') out[k] = v
  }
  return out
}

/** Human-readable adapter name from adapter info (`llvmpipe`, `NVIDIA H100 80GB HBM3`, …). */
export function describeAdapter(info: Record<string, unknown>): string {
  const parts = [info.vendor, info.description || info.device, info.architecture].filter((p) => typeof p === 'string' && p.length > 0)
  return parts.length ? [...new Set(parts as string[])].join(' / ') : 'unknown adapter'
}

function featuresOf(device: GPUDevice, info: Record<string, unknown>): DeviceFeatures {
  const min = info.subgroupMinSize
  const max = info.subgroupMaxSize
  const fixed = typeof min === 'number' && min === max && min >= 4 && min <= 128 && (min & (min - 1)) === 0 ? min : null
  return {
    subgroups: device.features.has('subgroups') && fixed !== null,
    subgroupSize: fixed,
    timestampQuery: device.features.has('timestamp-query'),
    subgroupMatrix: device.features.has('chromium-experimental-subgroup-matrix'),
  }
}

/**
 * Requests an adapter and a device with the limits the MoE kernels need (the adapter's own
 * maxima for storage-buffer size, workgroup storage and storage bindings), or wraps the
 * device given in `options.device`. Throws `MOE_ROUTE_ERR_BACKEND_UNAVAILABLE` when no
 * adapter is found.
 * @example
 * const { device, adapterName } = await acquireDevice({ powerPreference: 'high-performance' })
 */
export async function acquireDevice(options: AcquireDeviceOptions = {}): Promise<AcquiredDevice> {
  if (options.device) {
    const device = options.device
    const info = infoRecord((device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo)
    return { device, adapterName: describeAdapter(info), adapterInfo: info, features: featuresOf(device, info), owned: false }
  }
  const gpu = await gpuEntry(dawnFlagsOf(options))
  const adapter = gpu ? await gpu.requestAdapter(options.powerPreference ? { powerPreference: options.powerPreference } : {}) : null
  if (!adapter) {
    throw new MoeError(
      ErrorCodes.BACKEND_UNAVAILABLE,
      `no WebGPU adapter found. ${NO_ADAPTER_HINT}`,
      { plugin: 'webgpu' },
    )
  }
  const info = infoRecord(adapter.info)
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f) && (f !== 'timestamp-query' || options.timestamps !== false)) as GPUFeatureName[]
  const L = adapter.limits
  const device = await adapter.requestDevice({
    label: 'moe-route',
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxBufferSize: L.maxBufferSize,
      maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
    },
  })
  return { device, adapterName: describeAdapter(info), adapterInfo: info, features: featuresOf(device, info), owned: true }
}

/**
 * Whether a WebGPU adapter can be found here (for tests and CLIs deciding what to run).
 * Never throws.
 */
export async function probeAdapter(options: Pick<AcquireDeviceOptions, 'powerPreference' | 'dawnFlags' | 'unsafeApis'> = {}): Promise<string | null> {
  try {
    const gpu = await gpuEntry(dawnFlagsOf(options))
    const adapter = gpu ? await gpu.requestAdapter(options.powerPreference ? { powerPreference: options.powerPreference } : {}) : null
    return adapter ? describeAdapter(infoRecord(adapter.info)) : null
  } catch {
    return null
  }
}
