/**
 * Builds the example as `npm start` does (dist/), opens it in headless Chromium on a CPU
 * WebGPU adapter, and checks what it shows: every recorded batch ran on the device pipeline,
 * the loads it charts are the ones core's engine computes from the same recorded routing here in
 * Node, the table says the same, and the chart was drawn (a screenshot of the canvas, decoded:
 * bar areas in the ratio of the totals, the capacity line present). The screenshot of the whole
 * page is left in dist/screenshot.png.
 *
 * Without Chromium it skips with a message saying how to get it, except under CI (or
 * MOE_ROUTE_REQUIRE_WEBGPU=1), where it fails.
 */
import * as esbuild from 'esbuild'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PNG } from 'pngjs'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createMoe } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity-drop'
import { CHROMIUM_HOWTO, browserRequired, findChromium, launchChromium } from '../../test/browser/chromium.js'
import { ROUTING, buildPage, type RecordedRouting } from './build.mjs'
import type { ExampleResult } from './src/main.js'
import { MODEL, layerConfig } from './src/model.js'

vi.setConfig({ testTimeout: 240_000, hookTimeout: 240_000 })

const dist = fileURLToPath(new URL('./dist', import.meta.url))
const chromiumPath = findChromium()
if (!chromiumPath && !browserRequired) console.warn(`[examples/browser] skipping: no Chromium found. ${CHROMIUM_HOWTO}`)

/** Pixels of `png` within `tol` (per channel) of the hex colour. */
function countColour(png: PNG, hex: string, tol = 12): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))
  let n = 0
  for (let i = 0; i < png.data.length; i += 4) {
    if (Math.abs(png.data[i] - r) <= tol && Math.abs(png.data[i + 1] - g) <= tol && Math.abs(png.data[i + 2] - b) <= tol) n++
  }
  return n
}

describe.skipIf(!chromiumPath && !browserRequired)('examples/browser', () => {
  let served: esbuild.BuildContext | undefined
  let browser: Browser | undefined
  let page: Page | undefined
  let url = ''
  const pageLog: string[] = []

  beforeAll(async () => {
    if (!chromiumPath) return
    await buildPage(dist)
    served = await esbuild.context({ logLevel: 'silent' })
    const { port } = await served.serve({ host: '127.0.0.1', port: 0, servedir: dist })
    url = `http://127.0.0.1:${port}/`
    browser = await launchChromium(chromiumPath)
    page = await browser.newPage({ viewport: { width: 1000, height: 1100 } })
    page.on('console', (m) => pageLog.push(`${m.type()}: ${m.text()}`))
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`))
  })

  afterAll(async () => {
    await browser?.close()
    await served?.dispose()
  })

  it('runs the recorded Mixtral routing through the layer on WebGPU and charts the load before and after capacity-drop', async (ctx) => {
    if (!chromiumPath) throw new Error(`Chromium is required here (CI or MOE_ROUTE_REQUIRE_WEBGPU=1). ${CHROMIUM_HOWTO}`)
    await page!.goto(url)
    await page!.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: 180_000 })
    const status = await page!.locator('#status').textContent()
    if (/no WebGPU adapter/.test(status ?? '') && !browserRequired) {
      console.warn(`[examples/browser] skipping: Chromium (${chromiumPath}) gave the page no WebGPU adapter`)
      return ctx.skip()
    }
    expect(await page!.evaluate(() => document.body.dataset.state), `${status}\npage log:\n${pageLog.join('\n')}`).toBe('done')
    const result = (await page!.evaluate(() => (globalThis as { moeRouteExample?: unknown }).moeRouteExample)) as ExampleResult

    // every batch on the device pipeline, the policy applied at its capacity
    expect(result.stages.every((s) => s.where === 'device')).toBe(true)
    expect(result.batches).toHaveLength(ROUTING.batches)
    const cap = Math.ceil((1.0 * ROUTING.tokensPerBatch * MODEL.topK) / MODEL.experts)
    for (const b of result.batches) {
      expect([b.backend, b.fallback, b.capacity]).toEqual(['webgpu', null, cap])
      expect(Math.max(...b.loadAfter)).toBeLessThanOrEqual(cap)
      expect(b.outputNorm).toBeGreaterThan(0)
    }

    // the charted loads are core's decisions on the same recorded routing (routing depends on the scores only)
    const routing = JSON.parse(readFileSync(join(dist, 'routing.json'), 'utf8')) as RecordedRouting
    const engine = createMoe({ config: layerConfig(1, null), plugins: [capacityDrop] })
    routing.batches.forEach((b, i) => {
      const t = engine.route({ id: b.id, tokens: b.tokens, scores: Float32Array.from(b.scores) }).telemetry
      expect([result.batches[i].loadBefore, result.batches[i].loadAfter], `batch ${i}`).toEqual([[...t.loadBefore], [...t.loadAfter]])
    })
    await engine.dispose()
    const { before, after } = result.totals
    expect(before.reduce((a, b) => a + b)).toBe(ROUTING.batches * ROUTING.tokensPerBatch * MODEL.topK)
    expect(after.reduce((a, b) => a + b)).toBeLessThan(before.reduce((a, b) => a + b)) // γ = 1 drops on recorded routing

    // the table shows the same numbers
    const rows = await page!.locator('#loads tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)))
    expect(rows).toEqual(before.map((b, e) => [`expert ${e}`, `${b}`, `${after[e]}`, `${b - after[e]}`]))

    // the chart was drawn: bar areas in the ratio of the totals, and the capacity line
    const png = PNG.sync.read(await page!.locator('#chart').screenshot())
    expect(png.width * png.height).toBeGreaterThan(100_000)
    const [grey, blue, red] = [countColour(png, '#8c959f'), countColour(png, '#0969da'), countColour(png, '#cf222e')]
    expect(grey).toBeGreaterThan(5_000)
    expect(blue).toBeGreaterThan(5_000)
    expect(red).toBeGreaterThan(100)
    const totalRatio = after.reduce((a, b) => a + b) / before.reduce((a, b) => a + b)
    expect(Math.abs(blue / grey - totalRatio), `bar areas ${blue} / ${grey} vs totals ratio ${totalRatio}`).toBeLessThan(0.05)

    writeFileSync(join(dist, 'screenshot.png'), await page!.screenshot({ fullPage: true }))
  })
})
