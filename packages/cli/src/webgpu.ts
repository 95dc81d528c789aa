/**
 * Lazy loading of the WebGPU backend: an optional peer dependency of the CLI (its Dawn
 * binaries are large), imported only when a config or `--backend` names it.
 */
import { ErrorCodes, MoeError, isMoeError, type Plugin } from '@moe-route/core'
import { importOptional } from './optional.js'

/** Imports @moe-route/backend-webgpu and returns its backend plugin. */
export async function loadBackendPlugin(name: 'webgpu'): Promise<Plugin> {
  try {
    const mod = (await importOptional('@moe-route/backend-webgpu', `the ${name} backend`, () => import('@moe-route/backend-webgpu'))) as unknown as { default?: Plugin; webgpuBackend?: Plugin }
    const plugin = mod.webgpuBackend ?? mod.default
    if (!plugin) throw new Error('it exports no backend plugin')
    return plugin
  } catch (cause) {
    if (isMoeError(cause)) throw cause
    throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, `the ${name} backend cannot be loaded: ${(cause as Error).message}`, { plugin: name }, { cause })
  }
}
