/**
 * RxJS operators over token batches. Pure `(source) => Observable`; the Promise boundary
 * (the engine's forward) sits inside, bounded by explicit capacity.
 */
import type { OperatorFunction, Subscription } from 'rxjs'
import { Observable, map } from './rx.js'
import { ErrorCodes, MoeError } from '../errors.js'
import type { LayerResult, TokenBatch } from '../types.js'
import { TokenStream, type BatchProcessor } from './token-stream.js'

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
 * batches in progress and at most `maxQueued` waiting. The operator is a {@link TokenStream}
 * fed from the source (one scheduler for both APIs): a batch the stream has no room for ends
 * the output with MOE_ROUTE_ERR_STREAM_OVERFLOW after the batches before it, because a push
 * source cannot wait; use `TokenStream.write()` for a producer that can.
 * @example
 * batches$.pipe(moeLayer(engine, { maxInFlight: 2 })).subscribe((r) => console.log(r.telemetry))
 */
export function moeLayer(engine: BatchProcessor, options: MoeLayerOptions = {}): OperatorFunction<TokenBatch, LayerResult> {
  const maxInFlight = options.maxInFlight ?? 1
  const maxQueued = options.maxQueued ?? 1024
  return (source) =>
    new Observable<LayerResult>((subscriber) => {
      // capacity counts batches in progress and waiting: maxInFlight running + maxQueued queued
      const stream = new TokenStream<LayerResult>(engine, { maxInFlight, capacity: maxInFlight + maxQueued })
      const results = stream.results$().subscribe(subscriber)
      let sub: Subscription | undefined
      let stopSource = false
      // eslint-disable-next-line prefer-const -- a synchronous source calls next() before subscribe() returns; a const would be read before it is set
      sub = source.subscribe({
        next(batch) {
          let accepted: boolean
          try {
            accepted = stream.tryWrite(batch)
          } catch {
            // the stream failed already (an engine error): that error ends the output
            if (sub) sub.unsubscribe()
            else stopSource = true
            return
          }
          if (accepted) return
          stream.abort(
            new MoeError(
              ErrorCodes.STREAM_OVERFLOW,
              `batch ${batch?.id} arrived with ${maxQueued} batches already queued (maxQueued ${maxQueued}); slow the source or use TokenStream for backpressure`,
              { record: batch?.id },
            ),
          )
          if (sub) sub.unsubscribe()
          else stopSource = true
        },
        error(e) {
          stream.abort(e)
        },
        complete() {
          stream.end()
        },
      })
      if (stopSource) sub.unsubscribe()
      return () => {
        sub?.unsubscribe()
        results.unsubscribe()
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
  // eslint-disable-next-line prefer-const -- a synchronous source calls next() before subscribe() returns; a const would be read before it is set
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
