/** A progress bar on stderr (only when stderr is a terminal), via cli-progress. */
import cliProgress from 'cli-progress'
import type { CliContext } from './context.js'

/** A minimal progress handle. */
export interface Progress {
  tick(n: number, payload?: Record<string, unknown>): void
  stop(): void
}

/** Creates a bar, or a no-op when disabled or not interactive. */
export function createProgress(ctx: CliContext, enabled: boolean, total: number, unit: string): Progress {
  if (!enabled || !ctx.interactive || !Number.isFinite(total)) return { tick() {}, stop() {} }
  const bar = new cliProgress.SingleBar(
    { format: `  {bar} {value}/{total} ${unit} | {tokens} tokens | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  )
  bar.start(total, 0, { tokens: 0 })
  return { tick: (n, payload) => bar.increment(n, payload), stop: () => bar.stop() }
}
