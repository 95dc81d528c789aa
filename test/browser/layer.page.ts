/**
 * The page of the browser test (bundled by esbuild for `platform: 'browser'`, so the WebGPU
 * backend and the CPU backend resolve to their `browser` entries): runs the layer case through
 * core's engine on the WebGPU backend and exposes the results as `window.moeRouteTest`.
 */
import { createMoe, isMoeError, type MoeEngine } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity-drop'
import { createWebGpuBackend, webgpuBackend } from '@moe-route/backend-webgpu'
import { layerBatches, layerConfig, viewOf, type PageApi, type PageRun } from './layer-case.js'

/** The page's own device, as an embedding runtime would hold one (default limits, no features). */
async function pageDevice(): Promise<GPUDevice> {
  const adapter = await navigator.gpu?.requestAdapter()
  if (!adapter) throw new Error('navigator.gpu gave no adapter')
  return adapter.requestDevice({ label: 'page device' })
}

async function run(mode: PageRun['mode']): Promise<PageRun> {
  const { backend: named, ...config } = layerConfig('webgpu')
  const engine: MoeEngine =
    mode === 'config'
      ? createMoe({ config: { ...config, backend: named }, plugins: [capacityDrop, webgpuBackend] })
      : // a backend instance replaces the config's backend section
        createMoe({ config, plugins: [capacityDrop], backend: createWebGpuBackend({ device: await pageDevice(), weightsDtype: 'f32' }) })
  try {
    const stages = (await engine.ready()).map((s) => ({ stage: s.stage, where: s.where }))
    const results = []
    for (const b of layerBatches()) results.push(viewOf(await engine.forward(b)))
    return { mode, adapter: engine.backend?.info().adapter ?? '(none)', stages, results }
  } finally {
    await engine.dispose()
  }
}

async function checkpointError(): Promise<{ code: string; message: string } | null> {
  const config = { ...layerConfig('webgpu'), weights: { file: 'layer.safetensors' } }
  const engine = createMoe({ config, plugins: [capacityDrop, webgpuBackend] })
  try {
    await engine.ready()
    return null
  } catch (e) {
    return isMoeError(e) ? { code: e.code, message: e.message } : { code: 'not a MoeError', message: String(e) }
  } finally {
    await engine.dispose()
  }
}

const api: PageApi = { run, checkpointError }
;(globalThis as { moeRouteTest?: PageApi }).moeRouteTest = api
document.title = 'moe-route browser test: ready'
