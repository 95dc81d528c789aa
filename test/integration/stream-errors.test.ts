/**
 * A policy that throws during a batch does not take the stream down silently: the error
 * reaches the consumer (TokenStream, moeLayer, `moe-route run`) naming the plugin and hook,
 * after the batches before it; with a configured fallback the fallback runs on that batch
 * and telemetry's policies[i].fallback says so.
 */
import { createMoe, definePolicy, isMoeError, moeLayer, TokenStream, type LayerResult, type MoeEngine, type TokenBatch } from '@moe-route/core'
import { randomLogits } from '@moe-route/core/testing'
import entropyDrop from 'moe-route-policy-entropy-drop'
import { from, lastValueFrom, toArray } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { ROOT, cli, createProject, policyPackage, policySource, type Project } from './helpers.js'

const model = { experts: 8, topK: 2, hidden: 16, intermediate: 32 }
/** Throws from batch 2 on. */
const flaky = definePolicy<Record<string, never>>({
  meta: { name: 'flaky', package: 'moe-route-policy-flaky', version: '1.0.0', core: '^0.1.0', schema: { type: 'object', additionalProperties: false }, defaultOptions: {} },
  create: () => ({
    name: 'flaky',
    apply(routing, ctx) {
      if (ctx.batchId >= 2) throw new RangeError(`no room for batch ${ctx.batchId}`)
      return { routing, dropped: [] }
    },
  }),
})
const batches = (n: number): TokenBatch[] => Array.from({ length: n }, (_, id) => ({ id, tokens: 32, logits: randomLogits(32, 8, id + 1) }))
const engineWith = (fallback?: object): MoeEngine =>
  createMoe({ plugins: [flaky, entropyDrop], config: { model, policies: [{ use: 'flaky', ...(fallback ? { fallback } : {}) }] } })

function expectFlakyError(error: unknown): void {
  expect(isMoeError(error)).toBe(true)
  if (!isMoeError(error)) return
  expect(error.code).toBe('MOE_ROUTE_ERR_PLUGIN_FAILED')
  expect(error.details).toMatchObject({ plugin: 'flaky', hook: 'apply' })
  expect(error.message).toBe('plugin flaky failed in apply: no room for batch 2')
  expect(error.cause).toBeInstanceOf(RangeError)
}

describe('a policy that throws during a batch', () => {
  it('TokenStream: the consumer gets batches 0 and 1, then the error naming the plugin; writes are refused after', async () => {
    const stream = new TokenStream(engineWith(), { capacity: 2, maxInFlight: 2 })
    let refused: unknown
    const producer = (async () => {
      for (const b of batches(6)) await stream.write(b)
      stream.end()
    })().catch((e) => (refused = e))
    const got: number[] = []
    let error: unknown
    try {
      for await (const r of stream) got.push(r.batchId)
    } catch (e) {
      error = e
    }
    await producer
    expect(got).toEqual([0, 1])
    expectFlakyError(error)
    // The producer learns it too: its next write is refused, with the plugin error as cause.
    expect(refused).toMatchObject({ code: 'MOE_ROUTE_ERR_STREAM_CLOSED' })
    expect((refused as Error).cause).toBe(error)
  })

  it('moeLayer: the subscriber gets next(0), next(1), then error() naming the plugin', async () => {
    const seen: number[] = []
    const error = await new Promise((resolve, reject) => {
      from(batches(5))
        .pipe(moeLayer(engineWith(), { maxInFlight: 2 }))
        .subscribe({ next: (r) => seen.push(r.batchId), error: resolve, complete: () => reject(new Error('completed without the error')) })
    })
    expect(seen).toEqual([0, 1])
    expectFlakyError(error)
  })

  it('with a fallback: every batch completes, the fallback ran on batches 2+ and telemetry says so', async () => {
    const results: LayerResult[] = await lastValueFrom(
      from(batches(4)).pipe(moeLayer(engineWith({ use: 'entropy-drop', options: { capacityFactor: 0.5 } })), toArray()),
    )
    expect(results.map((r) => r.batchId)).toEqual([0, 1, 2, 3])
    expect(results[0].telemetry.policies[0]).toEqual({ policy: 'flaky', dropped: 0, rerouted: 0, added: 0, capacity: null })
    for (const r of results.slice(2)) {
      const p = r.telemetry.policies[0]
      expect(p.fallback).toEqual({
        from: 'flaky',
        to: 'entropy-drop',
        error: { code: 'MOE_ROUTE_ERR_PLUGIN_FAILED', message: `plugin flaky failed in apply: no room for batch ${r.batchId}` },
      })
      expect(p.capacity).toBe(4) // ⌈0.5·2·32/8⌉: the fallback's outcome
      expect(r.dropped.length).toBeGreaterThan(0)
      expect(r.dropped.every((d) => d.policy === 'entropy-drop' && d.reason === 'capacity')).toBe(true)
    }
  })
})

describe('moe-route run with a plugin that throws during a batch', () => {
  let project: Project
  beforeAll(() => {
    project = createProject()
    project.installBuilt('moe-route-policy-entropy-drop', join(ROOT, 'examples/custom-policy'))
    project.addPackage('moe-route-policy-fails-apply', policySource('fails-apply', { throwIn: 'apply', fromBatch: 2 }), policyPackage('fails-apply'))
  })
  afterAll(() => project.dispose())
  const runConfig = (policies: unknown[]) => ({
    model,
    policies,
    workload: { source: 'uniform:E=8:k=2', tokensPerBatch: 32, batches: 4, seed: 3 },
  })

  it('exits 1 with MOE_ROUTE_ERR_PLUGIN_FAILED naming the plugin and the batch, leaving no unhandled rejection', async () => {
    project.write('fails.json', runConfig([{ use: 'moe-route-policy-fails-apply' }]))
    // A rejection nobody handles would crash a real `moe-route` process with another error.
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    const r = await cli(['run', '-c', 'fails.json', '--json', '--no-progress'], project.dir).finally(() => new Promise((ok) => setTimeout(ok, 50)))
    process.off('unhandledRejection', onUnhandled)
    expect(unhandled.map((e) => String(e))).toEqual([])
    expect(r.out).toBe('')
    expect(r.err).toBe('MOE_ROUTE_ERR_PLUGIN_FAILED: plugin fails-apply failed in apply: exploded on batch 2')
    expect(r.code).toBe(1)
  })

  it('with a fallback from npm, completes every batch with the fallback dropping pairs', async () => {
    project.write('fallback.json', runConfig([{ use: 'moe-route-policy-fails-apply', fallback: { use: 'moe-route-policy-entropy-drop', options: { capacityFactor: 0.5 } } }]))
    const r = await cli(['run', '-c', 'fallback.json', '--json', '--no-progress'], project.dir)
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    const report = JSON.parse(r.out)
    expect(report.batches).toBe(4)
    expect(report.droppedPairs).toBeGreaterThan(0)
  })
})
