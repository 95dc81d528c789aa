/**
 * A bounded, ordered stream of batches through an engine. The producer awaits `write()`,
 * which resolves only while fewer than `capacity` batches are accepted but not yet consumed,
 * so a producer faster than its consumer waits instead of growing memory.
 */
import { Observable, Subject } from './rx.js'
import { ErrorCodes, MoeError } from '../errors.js'
import type { BatchTelemetry, ForwardOptions, LayerResult, LayerSummary, TokenBatch } from '../types.js'

/** Anything that turns a batch into a result (a MoeEngine, or a test double). */
export interface BatchProcessor<R extends LayerSummary = LayerResult> {
  forward(batch: TokenBatch, options?: ForwardOptions): Promise<R>
}

/** Options of a {@link TokenStream}. */
export interface TokenStreamOptions {
  /** Batches processed concurrently (results stay in order). Default 1. */
  readonly maxInFlight?: number
  /** Batches accepted but not yet consumed, at most. Default 16. */
  readonly capacity?: number
  /**
   * Options of every forward call (what comes back of each batch: set
   * `{ detail: 'telemetry', output: 'norm' }` to keep a GPU pipeline's results on the device).
   */
  readonly forward?: ForwardOptions
}

/** Counters of a stream (for tests and dashboards). */
export interface TokenStreamStats {
  accepted: number
  completed: number
  consumed: number
  /** Largest number of accepted-but-unconsumed batches seen. */
  maxPending: number
}

type Slot<R> = { batch: TokenBatch; result?: R; error?: unknown; done: boolean }

/**
 * Push batches in, pull results out, with explicit backpressure.
 * @example
 * const stream = new TokenStream(engine, { capacity: 8 })
 * ;(async () => { for (const b of batches) await stream.write(b); stream.end() })()
 * for await (const result of stream) console.log(result.telemetry.droppedFraction)
 */
export class TokenStream<R extends LayerSummary = LayerResult> implements AsyncIterable<R> {
  readonly stats: TokenStreamStats = { accepted: 0, completed: 0, consumed: 0, maxPending: 0 }
  /** Telemetry of each completed batch, in order. */
  readonly telemetry$: Observable<BatchTelemetry>
  readonly #telemetry = new Subject<BatchTelemetry>()
  readonly #engine: BatchProcessor<R>
  readonly #forward: ForwardOptions | undefined
  readonly #maxInFlight: number
  readonly #capacity: number
  readonly #slots: Slot<R>[] = []
  #started = 0
  #inFlight = 0
  #ended = false
  #failed: unknown
  #spaceWaiters: (() => void)[] = []
  #resultWaiters: (() => void)[] = []

  constructor(engine: BatchProcessor<R>, options: TokenStreamOptions = {}) {
    this.#engine = engine
    this.#forward = options.forward
    this.#maxInFlight = options.maxInFlight ?? 1
    this.#capacity = options.capacity ?? 16
    if (!(this.#maxInFlight >= 1) || !(this.#capacity >= this.#maxInFlight)) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `stream needs 1 ≤ maxInFlight (${this.#maxInFlight}) ≤ capacity (${this.#capacity})`)
    }
    this.telemetry$ = this.#telemetry.asObservable()
  }

  /** Batches accepted but not yet consumed. */
  get pending(): number {
    return this.stats.accepted - this.stats.consumed
  }

  /** Accepts a batch, waiting while the stream is full. Rejects after end() or a failure. */
  async write(batch: TokenBatch): Promise<void> {
    while (this.pending >= this.#capacity && !this.#failed) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve))
    }
    this.#accept(batch)
  }

  /** Accepts a batch if there is room now; returns false (and keeps nothing) otherwise. */
  tryWrite(batch: TokenBatch): boolean {
    if (this.pending >= this.#capacity) return false
    this.#accept(batch)
    return true
  }

  /**
   * Fails the stream from outside (a producer that broke): pending writes reject and the
   * iterator throws `error` once the batches before it are consumed.
   */
  abort(error: unknown): void {
    this.#failed ??= error
    this.#wakeResults()
    this.#wakeSpace()
  }

  /** No more batches: the iterator finishes once every accepted batch is consumed. */
  end(): void {
    this.#ended = true
    this.#wakeResults()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<R> {
    for (;;) {
      const head = this.#slots[0]
      if (head?.done) {
        this.#slots.shift()
        this.stats.consumed++
        this.#wakeSpace()
        if (head.error !== undefined) throw head.error
        yield head.result!
        continue
      }
      if (this.#slots.length === 0) {
        if (this.#failed !== undefined) throw this.#failed
        if (this.#ended) return
      }
      await new Promise<void>((resolve) => this.#resultWaiters.push(resolve))
    }
  }

  /** The results as an RxJS Observable (subscribing starts consumption). */
  results$(): Observable<R> {
    return new Observable<R>((subscriber) => {
      let stopped = false
      void (async () => {
        try {
          for await (const r of this) {
            if (stopped) return
            subscriber.next(r)
          }
          subscriber.complete()
        } catch (e) {
          subscriber.error(e)
        }
      })()
      return () => {
        stopped = true
      }
    })
  }

  #accept(batch: TokenBatch): void {
    if (this.#ended) throw new MoeError(ErrorCodes.STREAM_CLOSED, `batch ${batch?.id} written after end()`)
    if (this.#failed) throw new MoeError(ErrorCodes.STREAM_CLOSED, `batch ${batch?.id} written after the stream failed`, {}, { cause: this.#failed })
    this.#slots.push({ batch, done: false })
    this.stats.accepted++
    this.stats.maxPending = Math.max(this.stats.maxPending, this.pending)
    this.#pump()
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight) {
      const index = this.#started - this.stats.consumed
      const slot = this.#slots[index]
      if (!slot) return
      this.#started++
      this.#inFlight++
      ;(this.#forward ? this.#engine.forward(slot.batch, this.#forward) : this.#engine.forward(slot.batch)).then(
        (result) => {
          slot.result = result
          this.#telemetry.next(result.telemetry)
        },
        (error) => {
          slot.error = error
          this.#failed ??= error
        },
      ).finally(() => {
        slot.done = true
        // Drop the input reference once processed: only the result is kept until consumed.
        ;(slot as { batch?: TokenBatch }).batch = undefined
        this.#inFlight--
        this.stats.completed++
        this.#wakeResults()
        this.#pump()
      })
    }
  }

  #wakeSpace(): void {
    const w = this.#spaceWaiters
    this.#spaceWaiters = []
    for (const f of w) f()
  }

  #wakeResults(): void {
    const w = this.#resultWaiters
    this.#resultWaiters = []
    for (const f of w) f()
    if (this.#failed) this.#wakeSpace()
  }
}
