/**
 * A process watchdog for the one case a time limit cannot interrupt from inside the thread: a
 * plugin whose top-level code never returns (a synchronous loop while it is imported). The
 * import's own timer cannot fire then, because the thread is busy. A command line starts the
 * watchdog once ({@link startWatchdog}); the plugin loader arms it around each import
 * ({@link armWatchdog}). If an armed deadline passes — the loader's timer would have disarmed it
 * had the thread been free — the watchdog thread writes the coded error to stderr and ends the
 * process (SIGKILL, exit status 137): better than hanging. Libraries never start it; there,
 * isolation (`isolate: true`) is the way to stop such a plugin cleanly.
 */
import { Worker } from 'node:worker_threads'

/** Layout of the shared state: [0] armed generation (0 = disarmed), [1] message length; then the deadline and the message. */
const HEADER = 8
const MESSAGE_BYTES = 1024

let state: { flags: Int32Array; deadline: Float64Array; message: Uint8Array } | null = null

const SOURCE = `'use strict'
const { workerData } = require('node:worker_threads')
const { writeSync } = require('node:fs')
const flags = new Int32Array(workerData.sab, 0, 2)
const deadline = new Float64Array(workerData.sab, ${HEADER}, 1)
const message = new Uint8Array(workerData.sab, ${HEADER + 8}, ${MESSAGE_BYTES})
for (;;) {
  const gen = Atomics.load(flags, 0)
  Atomics.wait(flags, 0, gen, 200)
  if (Atomics.load(flags, 0) !== 0 && Date.now() > deadline[0]) {
    const text = Buffer.from(message.slice(0, Atomics.load(flags, 1))).toString('utf8')
    try { writeSync(2, 'MOE_ROUTE_ERR_PLUGIN_TIMEOUT: ' + text + ' (its code blocks the thread it was imported in, so the process is stopped; --isolate-plugins stops such a plugin cleanly)\\n') } catch {}
    process.kill(process.pid, 'SIGKILL')
  }
}
`

let enabled = false

/**
 * Enables the process watchdog. Its thread starts at the first {@link armWatchdog} (a command
 * that imports no plugin package pays nothing) and never keeps the process alive.
 */
export function startWatchdog(): void {
  enabled = true
}

function spawn(): void {
  const sab = new SharedArrayBuffer(HEADER + 8 + MESSAGE_BYTES)
  state = { flags: new Int32Array(sab, 0, 2), deadline: new Float64Array(sab, HEADER, 1), message: new Uint8Array(sab, HEADER + 8, MESSAGE_BYTES) }
  const worker = new Worker(SOURCE, { eval: true, workerData: { sab }, env: {} })
  worker.unref()
}

let generation = 0

/**
 * Arms the watchdog for `ms` milliseconds with the message it prints if the deadline passes;
 * returns the function that disarms it. Does nothing (and returns a no-op) unless
 * {@link startWatchdog} enabled it.
 */
export function armWatchdog(message: string, ms: number): () => void {
  if (!enabled) return () => {}
  if (!state) spawn()
  const s = state!
  const bytes = new TextEncoder().encode(message).subarray(0, MESSAGE_BYTES)
  s.message.set(bytes)
  Atomics.store(s.flags, 1, bytes.length)
  s.deadline[0] = Date.now() + ms
  const gen = (generation = (generation % 0x7ffffffe) + 1)
  Atomics.store(s.flags, 0, gen)
  return () => {
    if (Atomics.load(s.flags, 0) === gen) Atomics.store(s.flags, 0, 0)
  }
}
