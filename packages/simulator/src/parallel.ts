/**
 * A run spread over worker threads. A *job module* (an ES module every thread imports) makes
 * the simulator options and any batch by its id; each worker evaluates the batches whose index
 * is its number modulo the worker count and posts the outcomes back; this thread folds them in
 * batch order. Every batch's outcome depends only on the job and the batch id (policies draw
 * from per-batch seeded streams), and the fold order is fixed, so the result is the same for
 * any worker count (wall-clock fields aside).
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { ErrorCodes, MoeError, type Routing, type TokenBatch } from '@moe-route/core'
import { createSimulator, type BatchOutcome, type BatchSimulation, type SimulationResult, type SimulatorOptions } from './simulator.js'

/** What a job module's `createSimulationJob(data)` returns. */
export interface SimulationJob {
  /** The simulator options (model, placement, policies, …), made the same way on every thread. */
  readonly options: SimulatorOptions
  /** The ids of the batches to simulate, in fold order. */
  readonly batchIds: readonly number[]
  /** Makes batch `id` (random access: any thread, any order). */
  batch(id: number): TokenBatch | Routing | Promise<TokenBatch | Routing>
  /** Releases what the job holds (files), if anything. */
  close?(): void | Promise<void>
}

/** The export a job module must have. */
export type CreateSimulationJob = (data: unknown) => SimulationJob | Promise<SimulationJob>

/** Options of {@link simulateInWorkers}. */
export interface ParallelSimulationOptions {
  /** URL (or absolute path) of the job module; it exports `createSimulationJob`. */
  readonly module: string | URL
  /** Structured-clonable input of `createSimulationJob` (the same on every thread). */
  readonly data: unknown
  /** Worker threads (default: the machine's available parallelism, at most one per batch); 1 runs on this thread. */
  readonly workers?: number
  /** Called after each batch is folded, in batch order (e.g. a progress bar). */
  readonly onBatch?: (batch: BatchSimulation, done: number, total: number) => void
  /** Keep per-batch records in the result (default true). */
  readonly keepBatches?: boolean
}

type WorkerMessage = { index: number; outcome: BatchOutcome } | { error: { message: string; code?: string; details?: unknown } } | { done: true }

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../dist/worker.js' : './worker.js', import.meta.url)

/** Loads a job module and makes its job. */
export async function loadSimulationJob(module: string | URL, data: unknown): Promise<SimulationJob> {
  const url = typeof module === 'string' && !/^[a-z]+:/i.test(module) ? new URL(`file://${module}`) : module
  const mod = (await import(String(url))) as { createSimulationJob?: CreateSimulationJob }
  if (typeof mod.createSimulationJob !== 'function') {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `simulation job module ${String(module)} does not export createSimulationJob`)
  }
  return mod.createSimulationJob(data)
}

/**
 * Runs a job over `workers` threads and folds the outcomes in batch order.
 * @example
 * const result = await simulateInWorkers({ module: new URL('./my-job.js', import.meta.url), data: { seed: 1 }, workers: 4 })
 */
export async function simulateInWorkers(options: ParallelSimulationOptions): Promise<SimulationResult> {
  const job = await loadSimulationJob(options.module, options.data)
  try {
    const ids = job.batchIds
    const sim = createSimulator({ ...job.options, keepBatches: options.keepBatches ?? job.options.keepBatches })
    const W = Math.max(1, Math.min(options.workers ?? availableParallelism(), ids.length))
    if (!Number.isInteger(W)) throw new MoeError(ErrorCodes.INPUT_INVALID, `workers must be a positive integer, got ${options.workers}`, { path: '--workers' })
    let done = 0
    const fold = (o: BatchOutcome) => {
      const record = sim.absorb(o)
      done++
      options.onBatch?.(record, done, ids.length)
    }
    if (W === 1) {
      for (const id of ids) fold(sim.evaluate(await job.batch(id), id))
      return sim.result()
    }
    const pending = new Map<number, BatchOutcome>()
    let next = 0
    const workers: Worker[] = []
    try {
      await new Promise<void>((resolve, reject) => {
        let finished = 0
        for (let w = 0; w < W; w++) {
          const worker = new Worker(WORKER_URL, { workerData: { module: String(options.module), data: options.data, worker: w, workers: W } })
          workers.push(worker)
          worker.on('message', (m: WorkerMessage) => {
            if ('error' in m) {
              reject(new MoeError((m.error.code as never) ?? ErrorCodes.INPUT_INVALID, m.error.message, (m.error.details as never) ?? {}))
              return
            }
            if ('done' in m) {
              if (++finished === W) resolve()
              return
            }
            pending.set(m.index, m.outcome)
            while (pending.has(next)) {
              const o = pending.get(next)!
              pending.delete(next++)
              fold(o)
            }
          })
          worker.on('error', reject)
          worker.on('exit', (code) => {
            if (code !== 0) reject(new MoeError(ErrorCodes.INPUT_INVALID, `simulation worker ${w} exited with code ${code}`))
          })
        }
      })
    } finally {
      await Promise.all(workers.map((w) => w.terminate()))
    }
    if (next !== ids.length) throw new MoeError(ErrorCodes.INPUT_INVALID, `workers returned ${next} of ${ids.length} batches`)
    return sim.result()
  } finally {
    await job.close?.()
  }
}
