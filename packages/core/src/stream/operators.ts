/**
 * RxJS operators over token batches. Pure `(source) => Observable`; the Promise boundary
 * (the engine's forward) sits inside, bounded by explicit capacity.
 */
import type { OperatorFunction, Subscription } from 'rxjs'
import { Observable, map } from './rx.js'
import { ErrorCodes, MoeError } from '../errors.js'
import type { LayerResult, TokenBatch } from '../types.js'
import type { BatchProcessor } from './token-stream.js'

/** Options of {@link moeLayer}. */
export interface MoeLayerOptions {
  /** Batches processed concurrently; results are emitted in input order. Default 1. */
  readonly maxInFlight?: number
  /**
   * Batches a push-based source may queue ahead of processing. Past it the stream errors
   * with MOE_ROUTE_ERR_STREAM_OVERFLOW naming the refused batch (already queued ones are
   * not lost: they are processed and emitted first). Default 1024.
   */
  readonly maxQueued?: number
}

/**
 * Runs each batch of the source through the engine, in order, with at most `maxInFlight`
 * batches in progress and at most `maxQueued` waiting.
 * @example
 * batches$.pipe(moeLayer(engine, { maxInFlight: 2 })).subscribe((r) => console.log(r.telemetry))
 */
export function moeLayer(engine: BatchProcessor, options: MoeLayerOptions = {}): OperatorFunction<TokenBatch, LayerResult> {
  const maxInFlight = options.maxInFlight ?? 1
  const maxQueued = options.maxQueued ?? 1024
  return (source) =>
    new Observable<LayerResult>((subscriber) => {
      const queue: TokenBatch[] = []
      const running: { promise: Promise<LayerResult>; result?: LayerResult; error?: unknown; done: boolean }[] = []
      let sourceDone = false
      let pendingError: unknown
      let closed = false
      let sub: Subscription | undefined
      let stopSource = false
      const flush = () => {
        while (running.length > 0 && running[0].done) {
          const head = running.shift()!
          if (head.error !== undefined) {
            closed = true
            subscriber.error(head.error)
            return
          }
          subscriber.next(head.result!)
        }
        while (!closed && running.length < maxInFlight && queue.length > 0) start(queue.shift()!)
        if (!closed && running.length === 0 && queue.length === 0) {
          if (pendingError !== undefined) {
            closed = true
            subscriber.error(pendingError)
          } else if (sourceDone) {
            closed = true
            subscriber.complete()
          }
        }
      }
      const start = (batch: TokenBatch) => {
        const entry: (typeof running)[number] = { promise: engine.forward(batch), done: false }
        running.push(entry)
        entry.promise.then(
          (r) => (entry.result = r),
          (e) => (entry.error = e),
        ).finally(() => {
          entry.done = true
          flush()
        })
      }
      sub = source.subscribe({
        next(batch) {
          if (closed || pendingError !== undefined) return
          if (running.length < maxInFlight) start(batch)
          else if (queue.length < maxQueued) queue.push(batch)
          else {
            pendingError = new MoeError(
              ErrorCodes.STREAM_OVERFLOW,
              `batch ${batch?.id} arrived with ${queue.length} batches already queued (maxQueued ${maxQueued}); slow the source or use TokenStream for backpressure`,
              { record: batch?.id },
            )
            if (sub) sub.unsubscribe()
            else stopSource = true
            flush()
          }
        },
        error(e) {
          pendingError = e
          flush()
        },
        complete() {
          sourceDone = true
          flush()
        },
      })
      if (stopSource) sub.unsubscribe()
      return () => {
        closed = true
        sub?.unsubscribe()
      }
    })
}

/**
 * Routing only, synchronously: each batch (logits or scores) becomes its RouteResult.
 * Pure and marble-testable; no Promise boundary inside.
 */
export function routeLayer(engine: { route(batch: TokenBatch): Omit<LayerResult, 'output'> }): OperatorFunction<TokenBatch, Omit<LayerResult, 'output'>> {
  return (source) => source.pipe(map((batch) => engine.route(batch)))
}

/**
 * Adapts an Observable to an async iterable for consumers without RxJS. Values arriving
 * faster than they are pulled are buffered up to `maxBuffered` (default 1024), then the
 * iterator throws MOE_ROUTE_ERR_STREAM_OVERFLOW.
 */
export function toAsyncIterable<T>(source: Observable<T>, maxBuffered = 1024): AsyncIterableIterator<T> {
  const buffer: T[] = []
  let done = false
  let error: unknown
  let wake: (() => void) | undefined
  let sub: Subscription | undefined
  let stopSource = false
  sub = source.subscribe({
    next(v) {
      if (buffer.length >= maxBuffered) {
        error ??= new MoeError(ErrorCodes.STREAM_OVERFLOW, `more than ${maxBuffered} values buffered ahead of the consumer`)
        if (sub) sub.unsubscribe()
        else stopSource = true
      } else buffer.push(v)
      wake?.()
    },
    error(e) {
      error = e
      wake?.()
    },
    complete() {
      done = true
      wake?.()
    },
  })
  if (stopSource) sub.unsubscribe()
  const it: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (buffer.length > 0) return { value: buffer.shift()!, done: false }
        if (error !== undefined) throw error
        if (done) return { value: undefined, done: true }
        await new Promise<void>((r) => (wake = r))
        wake = undefined
      }
    },
    async return(): Promise<IteratorResult<T>> {
      sub?.unsubscribe()
      done = true
      return { value: undefined, done: true }
    },
    [Symbol.asyncIterator]() {
      return it
    },
  }
  return it
}

/** Processes a pull-based source (array, generator, trace reader) lazily and in order. */
export async function* processBatches(
  engine: BatchProcessor,
  source: Iterable<TokenBatch> | AsyncIterable<TokenBatch>,
): AsyncGenerator<LayerResult> {
  for await (const batch of source as AsyncIterable<TokenBatch>) yield await engine.forward(batch)
}
