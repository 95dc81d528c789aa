/**
 * Acquires a WebGPU device in Node through Dawn (the `webgpu` npm package, an optional peer
 * dependency). On a machine without a GPU, Mesa's lavapipe gives Dawn a CPU Vulkan adapter.
 */

/** A device with what benchmarks and tests report about it. */
export interface NodeGpu {
  readonly device: GPUDevice
  readonly adapter: { readonly vendor: string; readonly architecture: string; readonly device: string; readonly description: string }
  /** The Dawn `GPU` instance; held here because collecting it while the device lives crashes Dawn. */
  readonly gpu: GPU
  /** Destroys the device. */
  dispose(): void
}

/**
 * Returns a device with maxBufferSize and maxStorageBufferBindingSize raised to the adapter's
 * limits, or null when `webgpu` is not installed or no adapter is found.
 */
export async function requestNodeGpu(): Promise<NodeGpu | null> {
  process.env.XDG_RUNTIME_DIR ||= '/tmp'
  let mod: { create(flags: string[]): GPU }
  try {
    mod = (await import('webgpu')) as unknown as { create(flags: string[]): GPU }
  } catch {
    return null
  }
  const gpu = mod.create([])
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' })
  if (!adapter) return null
  const device = await adapter.requestDevice({
    label: 'expert-buffer',
    requiredLimits: {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    },
  })
  const i = adapter.info
  return {
    device,
    gpu,
    adapter: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description },
    dispose: () => device.destroy(),
  }
}
