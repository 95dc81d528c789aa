/** Lazy loading of the WebGPU backend (its native addon is only loaded when asked for). */
import { ErrorCodes, MoeError, type Plugin } from '@moe-route/core'

/** Imports @moe-route/backend-webgpu and returns its backend plugin. */
export async function loadBackendPlugin(name: 'webgpu'): Promise<Plugin> {
  try {
    const mod = (await import('@moe-route/backend-webgpu')) as unknown as { default?: Plugin; webgpuBackend?: Plugin }
    const plugin = mod.webgpuBackend ?? mod.default
    if (!plugin) throw new Error('it exports no backend plugin')
    return plugin
  } catch (cause) {
    throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, `the ${name} backend cannot be loaded: ${(cause as Error).message}`, { plugin: name }, { cause })
  }
}
