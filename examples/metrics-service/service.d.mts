/** Types of service.mjs (for its tests and for TypeScript hosts copying it). */
import type { BatchTelemetry } from '@moe-route/core'
import type { Meter } from '@opentelemetry/api'
import type { MetricsServer } from '@moe-route/telemetry'
import type { Registry } from 'prom-client'

export interface ServiceOptions {
  batches?: number
  tokens?: number
  intervalMs?: number
  metrics?: boolean
  port?: number
  host?: string
  meter?: Meter
  registry?: Registry
  onListening?: (url: string) => void
  onBatch?: (t: BatchTelemetry) => void
}
export interface ServiceReport {
  workload: { source: string; batches: number; tokensPerBatch: number; seed: number }
  batches: number
  tokens: number
  pairs: number
  droppedPairs: number
  droppedFraction: number
  reroutedPairs: number
  gateMassKept: number
  maxMeanLoad: { before: { mean: number; max: number }; after: { mean: number; max: number } }
  balancedness: {
    before: { mean: number; min: number }
    after: { mean: number; min: number }
    last: { before: number; after: number }
  }
  load: { before: number[]; after: number[] }
  output: { l2Norm: number }
  startedAt: number
  finishedAt: number
  cpuSeconds: number
  metricsUrl: string | null
  server?: MetricsServer
}
export declare function runService(options?: ServiceOptions): Promise<ServiceReport>
