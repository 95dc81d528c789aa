/**
 * Where a `GPU` object comes from in the browser build: `navigator.gpu` (a page, a worker,
 * Deno). No Dawn and no Node built-ins; Dawn flags have no meaning here and are ignored.
 */
import type * as NodeTwin from './gpu-entry.js'

/** How to get an adapter when none is found here (part of `MOE_ROUTE_ERR_BACKEND_UNAVAILABLE`). */
export const NO_ADAPTER_HINT: typeof NodeTwin.NO_ADAPTER_HINT =
  'navigator.gpu is missing or gave no adapter: use a browser with WebGPU (Chromium-based 113+, Safari 26+, Firefox 141+ on Windows) on a secure context (https or localhost); ' +
  'headless Chromium needs --enable-unsafe-webgpu (a CPU adapter: add --use-webgpu-adapter=swiftshader). Or pass a GPUDevice you own: createWebGpuBackend({ device })'

/** `navigator.gpu`, or null when this runtime has none. Never throws. */
export const gpuEntry: typeof NodeTwin.gpuEntry = async () => {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator
  return nav?.gpu ?? null
}
