import { request } from 'node:http'
import { connect } from 'node:net'
import { Counter, Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { isMoeError } from '@moe-route/core'
import { serveMetrics, type MetricsServer } from './serve-metrics.js'

const open: MetricsServer[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

async function serve(registry: Registry, extra: object = {}): Promise<MetricsServer> {
  const s = await serveMetrics({ port: 0, registry, ...extra })
  open.push(s)
  return s
}

/** A request with a keep-alive agent-less connection (what Prometheus holds open between scrapes). */
function get(url: string, method = 'GET'): Promise<{ status: number; type?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { connection: 'keep-alive' } }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }))
    })
    req.on('error', reject).end()
  })
}

const errorOf = async (p: Promise<unknown>) => {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection')
}

describe('serveMetrics', () => {
  it('serves the registry on loopback at /metrics in the Prometheus text format', async () => {
    const registry = new Registry()
    new Counter({ name: 'moe_route_test_total', help: 'test', registers: [registry] }).inc(3)
    const s = await serve(registry)
    expect(s.host).toBe('127.0.0.1')
    expect(s.port).toBeGreaterThan(0)
    expect(s.url).toBe(`http://127.0.0.1:${s.port}/metrics`)
    const r = await get(s.url)
    expect(r.status).toBe(200)
    expect(r.type).toBe(registry.contentType)
    expect(r.body).toContain('# TYPE moe_route_test_total counter\nmoe_route_test_total 3')
    expect((await get(`${s.url}?x=1`)).status).toBe(200)
    const head = await get(s.url, 'HEAD')
    expect([head.status, head.body]).toEqual([200, ''])
  })

  it('answers 404 elsewhere and 405 to other methods', async () => {
    const s = await serve(new Registry(), { path: '/m' })
    expect((await get(`http://127.0.0.1:${s.port}/metrics`)).status).toBe(404)
    expect((await get(`http://127.0.0.1:${s.port}/m`, 'POST')).status).toBe(405)
  })

  it('answers 500 when a collect callback throws, and keeps serving', async () => {
    const registry = new Registry()
    let fail = true
    new Counter({ name: 'flaky_total', help: 'x', registers: [registry], collect() { if (fail) throw new Error('collector broke') } })
    const s = await serve(registry)
    const r = await get(s.url)
    expect([r.status, r.body]).toEqual([500, 'collecting metrics failed: collector broke\n'])
    fail = false
    expect((await get(s.url)).status).toBe(200)
  })

  it('closes promptly although a client holds a connection with a request in progress', async () => {
    const s = await serveMetrics({ port: 0, registry: new Registry() })
    const socket = connect(s.port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.on('error', () => {})
    socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n') // headers never finished
    await new Promise((resolve) => setTimeout(resolve, 50))
    const t0 = performance.now()
    await s.close()
    expect(performance.now() - t0).toBeLessThan(2000) // server.close() alone waits for that request (headersTimeout, 60 s)
    socket.destroy()
  })

  it('fails with MOE_ROUTE_ERR_TELEMETRY_LISTEN_FAILED when the port is taken', async () => {
    const s = await serve(new Registry())
    const e = await errorOf(serveMetrics({ port: s.port, registry: new Registry() }))
    expect(isMoeError(e) && e.code).toBe('MOE_ROUTE_ERR_TELEMETRY_LISTEN_FAILED')
    expect((e as Error).message).toBe(`cannot serve metrics on 127.0.0.1:${s.port}: EADDRINUSE`)
  })

  it('rejects a bad port, host or path with MOE_ROUTE_ERR_TELEMETRY_OPTIONS_INVALID', async () => {
    for (const [options, message] of [
      [{ port: 70000 }, /port: must be an integer in 0\.\.65535, got 70000/],
      [{ port: 1.5 }, /port: must be an integer/],
      [{ port: 0, host: '' }, /host: must be a non-empty string/],
      [{ port: 0, path: 'metrics' }, /path: must start with \//],
      [{ port: 0, registry: {} }, /registry: must be a prom-client Registry/],
    ] as const) {
      const e = await errorOf(serveMetrics(options as never))
      expect(isMoeError(e) && e.code).toBe('MOE_ROUTE_ERR_TELEMETRY_OPTIONS_INVALID')
      expect((e as Error).message).toMatch(message)
    }
  })
})
