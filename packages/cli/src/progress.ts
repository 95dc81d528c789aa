/**
 * Progress on stderr, only when stderr is a terminal (never in pipes, files or CI logs): a bar
 * via cli-progress when the amount of work is known, otherwise an elapsed-time line.
 */
import cliProgress from 'cli-progress'
import type { CliContext } from './context.js'

/** A minimal progress handle. */
export interface Progress {
  /** Adds `n` units done (`payload.tokens` updates the token count the run bar shows). */
  tick(n: number, payload?: Record<string, unknown>): void
  /** Sets the units done. */
  set(done: number): void
  stop(): void
}

const NONE: Progress = { tick() {}, set() {}, stop() {} }

/**
 * A bar of `total` units, or a no-op when disabled or not interactive. `label` goes first
 * (what is being done); with `tokens`, the bar also shows a token count from `tick`'s payload.
 */
export function createProgress(ctx: CliContext, enabled: boolean, total: number, unit: string, options: { label?: string; tokens?: boolean } = { tokens: true }): Progress {
  if (!enabled || !ctx.interactive || !Number.isFinite(total) || total <= 0) return NONE
  const label = options.label ? `${options.label} ` : ''
  const bar = new cliProgress.SingleBar(
    {
      format: `  ${label}{bar} {value}/{total} ${unit}${options.tokens ? ' | {tokens} tokens' : ''} | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      // synchronous loops (the cache simulator) still redraw: cli-progress renders on update
      synchronousUpdate: true,
    },
    cliProgress.Presets.shades_classic,
  )
  bar.start(total, 0, { tokens: 0 })
  return { tick: (n, payload) => bar.increment(n, payload), set: (done) => bar.update(done), stop: () => bar.stop() }
}

/** Runs `fn` with an elapsed-time line on a terminal (see {@link createActivity}). */
export async function withActivity<T>(ctx: CliContext, enabled: boolean, label: string, fn: () => Promise<T>): Promise<T> {
  const a = createActivity(ctx, enabled, label)
  try {
    return await fn()
  } finally {
    a.stop()
  }
}

/**
 * For work of unknown size (reading a trace or an engine record): `label … N s` redrawn every
 * quarter second while the event loop turns, cleared by `stop()`.
 */
export function createActivity(ctx: CliContext, enabled: boolean, label: string): { stop(): void } {
  if (!enabled || !ctx.interactive) return { stop() {} }
  const t0 = performance.now()
  const draw = () => process.stderr.write(`\r  ${label} … ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  const timer = setInterval(draw, 250)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
      process.stderr.write('\r\x1b[2K')
    },
  }
}
