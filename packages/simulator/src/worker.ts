/**
 * The worker thread of {@link simulateInWorkers}: imports the job module, evaluates the batches
 * whose index is `worker` modulo `workers`, posts each outcome, then `{ done: true }`.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { createSimulator } from './simulator.js'
import { loadSimulationJob } from './parallel.js'

const { module, data, worker, workers } = workerData as { module: string; data: unknown; worker: number; workers: number }
const port = parentPort!

async function main(): Promise<void> {
  const job = await loadSimulationJob(module, data)
  try {
    const sim = createSimulator({ ...job.options, keepBatches: false })
    const ids = job.batchIds
    for (let index = worker; index < ids.length; index += workers) {
      const outcome = sim.evaluate(await job.batch(ids[index]), ids[index])
      port.postMessage({ index, outcome })
    }
  } finally {
    await job.close?.()
  }
  port.postMessage({ done: true })
}

main().catch((e: unknown) => {
  const err = e as { message?: string; code?: string; details?: unknown }
  port.postMessage({ error: { message: err.message ?? String(e), code: err.code, details: err.details } })
})
