/**
 * A minimal `/metrics` endpoint over node:http for a prom-client Registry: what a CLI run or a
 * small service needs to be scraped by Prometheus. Loopback only unless a host is given.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { register as globalRegister, type Registry } from 'prom-client'
import { ErrorCodes, MoeError } from '@moe-route/core'

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /** TCP port; 0 picks a free one (read it back from `port` of the result). */
  readonly port: number
  /** Address to listen on. Default `127.0.0.1` (loopback only); `0.0.0.0` or `::` exposes it. */
  readonly host?: string
  /** Registry to serve. Default prom-client's global `register`. */
  readonly registry?: Registry
  /** Path of the endpoint. Default `/metrics`. */
  readonly path?: string
}

/** A listening metrics endpoint. */
export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string
  readonly host: string
  /** The port listened on (the chosen one when 0 was asked). */
  readonly port: number
  /** The underlying node:http server. */
  readonly server: Server
  /** Stops listening and closes open (keep-alive) connections. */
  close(): Promise<void>
}

/**
 * Serves a registry at `http://host:port/metrics` (GET and HEAD; other paths 404, other
 * methods 405). Resolves once listening; rejects with MOE_ROUTE_ERR_TELEMETRY_LISTEN_FAILED
 * when the address is in use or not available, MOE_ROUTE_ERR_TELEMETRY_OPTIONS_INVALID for a bad
 * port, host or path.
 * @example
 * const metrics = new RoutingMetrics()
 * metrics.observe(stream)
 * const server = await serveMetrics({ port: 9464, registry: metrics.registry })
 * // … run …
 * await server.close()
 */
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
  const { port, host = '127.0.0.1', registry = globalRegister, path = '/metrics' } = options ?? ({} as ServeMetricsOptions)
  const bad = (field: string, message: string): never => {
    throw new MoeError(ErrorCodes.TELEMETRY_OPTIONS_INVALID, `serveMetrics ${field}: ${message}`, { path: field })
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) bad('port', `must be an integer in 0..65535, got ${String(port)}`)
  if (typeof host !== 'string' || host.length === 0) bad('host', 'must be a non-empty string')
  if (typeof path !== 'string' || !path.startsWith('/')) bad('path', `must start with /, got ${String(path)}`)
  if (typeof registry?.metrics !== 'function') bad('registry', 'must be a prom-client Registry')

  const server = createServer((req, res) => void handle(req, res, registry, path))
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        new MoeError(ErrorCodes.TELEMETRY_LISTEN_FAILED, `cannot serve metrics on ${host}:${port}: ${e.code ?? e.message}`, { host, port, errno: e.code }, { cause: e }),
      )
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const address = server.address()
  const actualPort = typeof address === 'object' && address ? address.port : port
  const urlHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${urlHost}:${actualPort}${path}`,
    host,
    port: actualPort,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()))
        server.closeAllConnections()
      }),
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, registry: Registry, path: string): Promise<void> {
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  if ((q < 0 ? url : url.slice(0, q)) !== path) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found; metrics are at ${path}\n`)
    return
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
    return
  }
  try {
    const body = await registry.metrics()
    res.writeHead(200, { 'content-type': registry.contentType })
    res.end(req.method === 'HEAD' ? undefined : body)
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${(e as Error)?.message ?? String(e)}\n`)
  }
}
