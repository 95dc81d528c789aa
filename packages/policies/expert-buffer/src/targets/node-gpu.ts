/**
 * A WebGPU device in Node for the store's own WebGPU target. One module owns device
 * acquisition: this asks `@moe-route/backend-webgpu` (Dawn through the npm `webgpu` package;
 * Mesa's lavapipe without a GPU), which must be installed. With that backend's device pipeline
 * the store needs no device of its own: the backend attaches its slots (`attachDevice`).
 */

/** A device with what benchmarks and tests report about it. */
export interface NodeGpu {
  readonly device: GPUDevice
  readonly adapter: { readonly vendor: string; readonly architecture: string; readonly device: string; readonly description: string }
  /** Destroys the device. */
  dispose(): void
}

/**
 * A high-performance device from `@moe-route/backend-webgpu`'s `acquireDevice` (limits raised
 * to the adapter's), or null when that package or an adapter is missing.
 * @deprecated Call `acquireDevice()` from `@moe-route/backend-webgpu` directly; this wrapper stays for one minor version.
 */
export async function requestNodeGpu(): Promise<NodeGpu | null> {
  const specifier = '@moe-route/backend-webgpu'
  let mod: { acquireDevice(o?: object): Promise<{ device: GPUDevice; adapterInfo: Record<string, string> }> }
  try {
    mod = (await import(specifier)) as typeof mod
  } catch {
    return null
  }
  try {
    const { device, adapterInfo: i } = await mod.acquireDevice({ powerPreference: 'high-performance' })
    return {
      device,
      adapter: { vendor: i.vendor ?? '', architecture: i.architecture ?? '', device: i.device ?? '', description: i.description ?? '' },
      dispose: () => device.destroy(),
    }
  } catch {
    return null
  }
}
