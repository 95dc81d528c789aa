/**
 * The WebGPU backend in a browser: core + capacity-drop + @moe-route/backend-webgpu bundled by
 * esbuild for the browser (their `browser` entries: no Node built-ins, no Dawn), served on
 * loopback and run in headless Chromium on a CPU WebGPU adapter (SwiftShader), through core's
 * engine, at the Node WebGPU test's shape; every batch is compared with the CPU backend run
 * here in Node (same kept pairs, drops, plan and telemetry; output within the same tolerance).
 *
 * Without Chromium this file skips with a message saying how to get it, except under CI (or
 * MOE_ROUTE_REQUIRE_WEBGPU=1), where a missing Chromium or adapter is a failure.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { createMoe } from '@moe-route/core'
import { cpuBackend, maxRelError } from '@moe-route/backend-cpu'
import capacityDrop from '@moe-route/policy-capacity-drop'
import { measureBrowserBundle, servePage, type ServedPage } from './bundle.js'
import { CHROMIUM_HOWTO, browserRequired, findChromium, launchChromium, within } from './chromium.js'
import { MODEL, TOKENS, layerBatches, layerConfig, viewOf, type PageApi, type ResultView } from './layer-case.js'

vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 })

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The README statements of the bundle size: `**N kB** minified, **M kB** gzip`. */
function statedSizes(readme: string): { minified: number; gzip: number } {
  const text = readFileSync(`${root}/${readme}`, 'utf8')
  const m = /\*\*([\d.]+) kB\*\* minified, \*\*([\d.]+) kB\*\* gzip/.exec(text)
  if (!m) throw new Error(`${readme} states no browser bundle size ("**N kB** minified, **M kB** gzip")`)
  return { minified: Number(m[1]) * 1000, gzip: Number(m[2]) * 1000 }
}

describe('browser bundle: core + capacity-drop + the WebGPU backend', () => {
  it('resolves the browser entries (no Node built-ins, no Dawn) and is as large as the READMEs say', async () => {
    // platform 'browser': a Node built-in still reachable from these packages fails this build
    const size = await measureBrowserBundle()
    expect(size.inputs).toContain('packages/backends/webgpu/dist/index.browser.js')
    expect(size.inputs).toContain('packages/backends/cpu/dist/index.browser.js')
    expect(size.inputs.filter((i) => /node_modules\/webgpu\/|packages\/workloads\//.test(i))).toEqual([])
    for (const readme of ['README.md', 'packages/backends/webgpu/README.md']) {
      const stated = statedSizes(readme)
      const drift = `measured ${size.minified} B minified, ${size.gzip} B gzip; ${readme} says ${stated.minified} / ${stated.gzip} (update it from \`npm run bundle-size -w @moe-route/test-browser\`)`
      expect(Math.abs(size.minified / stated.minified - 1), drift).toBeLessThan(0.15)
      expect(Math.abs(size.gzip / stated.gzip - 1), drift).toBeLessThan(0.15)
    }
  })
})

/** The Node WebGPU test's checks: same decisions exactly, weights within 1e-5, output within 1e-4 relative. */
function expectSameLayer(g: ResultView, c: ResultView, what: string): void {
  expect(g.pairs.map(([t, e]) => `${t}:${e}`), `${what}: kept pairs`).toEqual(c.pairs.map(([t, e]) => `${t}:${e}`))
  g.pairs.forEach(([, , w], i) => expect(Math.abs(w - c.pairs[i][2]), `${what}: weight of pair ${i}`).toBeLessThan(1e-5))
  expect(g.dropped, `${what}: dropped pairs`).toEqual(c.dropped)
  expect([g.counts, g.offsets, g.rowToken], `${what}: dispatch plan`).toEqual([c.counts, c.offsets, c.rowToken])
  const { gateMassKept: gm, backend: gb, hostRoundTrips: gr, fallback: gf, ...gt } = g.telemetry
  const { gateMassKept: cm, backend: cb, hostRoundTrips: cr, fallback: cf, ...ct } = c.telemetry
  expect(gt, `${what}: telemetry`).toEqual(ct)
  expect(gm).toBeCloseTo(cm, 5)
  expect([gb, gr, gf], `${what}: ran on the device pipeline`).toEqual(['webgpu', null, null])
  expect([cb, cr, cf]).toEqual(['cpu', null, null])
  expect(g.output).toHaveLength(g.tokens * MODEL.hidden)
  expect(maxRelError(g.output, c.output), `${what}: output vs CPU`).toBeLessThan(1e-4)
  expect(g.outputNorm).toBeCloseTo(c.outputNorm, 3)
}

const chromiumPath = findChromium()
if (!chromiumPath && !browserRequired) console.warn(`[test/browser] skipping the Chromium tests: no Chromium found. ${CHROMIUM_HOWTO}`)

describe.skipIf(!chromiumPath && !browserRequired)('the WebGPU layer in headless Chromium', () => {
  let served: ServedPage | undefined
  let browser: Browser | undefined
  let page: Page | undefined
  const pageLog: string[] = []
  const cpu: ResultView[] = []
  let adapter: { vendor: string; architecture: string; description: string } | null = null

  beforeAll(async () => {
    const engine = createMoe({ config: layerConfig('cpu'), plugins: [capacityDrop, cpuBackend] })
    for (const b of layerBatches()) cpu.push(viewOf(await engine.forward(b)))
    await engine.dispose()
    if (!chromiumPath) return
    served = await servePage('layer.page.ts', 'moe-route browser test')
    browser = await launchChromium(chromiumPath)
    page = await browser.newPage()
    page.on('console', (m) => pageLog.push(`${m.type()}: ${m.text()}`))
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`))
    await page.goto(served.url)
    await page.waitForFunction(() => 'moeRouteTest' in globalThis, undefined, { timeout: 30_000 })
    adapter = await page.evaluate(async () => {
      const a = await navigator.gpu?.requestAdapter()
      return a ? { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description } : null
    })
  })

  /** The page, once Chromium gave it an adapter; else fails (required) or skips the test. */
  const ready = (ctx: { skip(note?: string): never }): Page => {
    if (!chromiumPath) throw new Error(`Chromium is required here (CI or MOE_ROUTE_REQUIRE_WEBGPU=1). ${CHROMIUM_HOWTO}`)
    if (!adapter) {
      const msg = `headless Chromium (${chromiumPath}) gives no WebGPU adapter with the flags of test/browser/chromium.ts`
      if (browserRequired) throw new Error(`${msg} (required here: CI or MOE_ROUTE_REQUIRE_WEBGPU=1)\npage log:\n${pageLog.join('\n')}`)
      console.warn(`[test/browser] skipping: ${msg}`)
      ctx.skip(msg)
    }
    return page!
  }

  afterAll(async () => {
    await browser?.close()
    await served?.close()
  })

  /** Calls `window.moeRouteTest[method](arg)` in the page, bounded in time; failures carry the page's log. */
  const callPage = <M extends keyof PageApi>(page: Page, method: M, arg?: Parameters<PageApi[M]>[0]): ReturnType<PageApi[M]> =>
    within(
      120_000,
      `moeRouteTest.${method}(${arg ?? ''})`,
      page.evaluate(([m, a]) => (globalThis as unknown as { moeRouteTest: Record<string, (x: unknown) => Promise<unknown>> }).moeRouteTest[m](a), [method, arg] as const),
    ).catch((e: Error) => {
      throw new Error(`${e.message}\npage log:\n${pageLog.join('\n')}`)
    }) as ReturnType<PageApi[M]>

  it('finds Chromium and gets a WebGPU adapter in the page', (ctx) => {
    ready(ctx)
    console.log(`[test/browser] ${chromiumPath}: WebGPU adapter ${JSON.stringify(adapter)}`)
    expect(adapter!.vendor || adapter!.architecture).toBeTruthy()
  })

  for (const mode of ['config', 'device'] as const) {
    const how = mode === 'config' ? 'the backend named in the config (navigator.gpu)' : 'a GPUDevice the page hands in'
    it(`runs the layer with capacity-drop on ${how} and matches the CPU backend (T = ${TOKENS.join(', ')})`, async (ctx) => {
      const run = await callPage(ready(ctx), 'run', mode)
      expect(run.adapter.length).toBeGreaterThan(0)
      // the whole configured layer on the device: router, policy, dispatch and experts
      expect(run.stages).toEqual([
        { stage: 'router:softmax-top-k', where: 'device' },
        { stage: 'policy:capacity-drop', where: 'device' },
        { stage: 'dispatch:exact-size', where: 'device' },
        { stage: 'experts', where: 'device' },
      ])
      expect(run.results).toHaveLength(cpu.length)
      run.results.forEach((g, i) => expectSameLayer(g, cpu[i], `${mode} batch ${i} (T = ${g.tokens})`))
      // capacity-drop did drop at γ = 1.0 somewhere (the comparison covers drops, not only keeps)
      expect(cpu.some((c) => c.telemetry.droppedPairs > 0)).toBe(true)
    })
  }

  it('refuses a safetensors weight source with a coded error (no file system in a page)', async (ctx) => {
    const err = await callPage(ready(ctx), 'checkpointError')
    expect(err?.code).toBe('MOE_ROUTE_ERR_BACKEND_UNAVAILABLE')
    expect(err?.message).toMatch(/layer\.safetensors.*browser build/)
  })
})
