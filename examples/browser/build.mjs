// Builds the page into dist/ (and, with --serve, serves it on http://127.0.0.1:8000 or $PORT):
// - dist/routing.json: batches of recorded Mixtral-8x7B routing (layer 7, C4 text) as router
//   scores, drawn here in Node by @moe-route/workloads (its recorded data is read with node:fs,
//   so the page gets this slice instead of the package);
// - dist/app.js: src/main.ts bundled by esbuild for the browser (core, capacity-drop, the
//   WebGPU backend's browser entry and Chart.js);
// - dist/index.html.
import * as esbuild from 'esbuild'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { workloadFromSpec } from '@moe-route/workloads'

const here = dirname(fileURLToPath(import.meta.url))

/** The recorded routing the page replays: spec, batches and tokens per batch. */
export const ROUTING = { spec: 'mixtral:c4:layer7', batches: 8, tokensPerBatch: 64, seed: 1 }

/** Writes dist/routing.json from the recorded routing. */
export function writeRouting(outdir) {
  const workload = workloadFromSpec(ROUTING.spec)
  const batches = [...workload.batchesSync({ tokensPerBatch: ROUTING.tokensPerBatch, batches: ROUTING.batches, seed: ROUTING.seed })].map((b) => ({
    id: b.id,
    tokens: b.tokens,
    scores: Array.from(b.scores), // float32 values: printed exactly, read back exactly
  }))
  const data = { spec: workload.spec, description: workload.description, experts: workload.experts, topK: workload.topK, batches }
  writeFileSync(join(outdir, 'routing.json'), JSON.stringify(data))
  return data
}

/** esbuild options of the page's bundle: an app's production build for the browser. */
const bundle = (outdir) => ({
  entryPoints: { app: join(here, 'src/main.ts') },
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outdir,
  logLevel: 'warning',
})

/** Builds the page into `outdir` (default dist/). */
export async function buildPage(outdir = join(here, 'dist')) {
  mkdirSync(outdir, { recursive: true })
  writeRouting(outdir)
  copyFileSync(join(here, 'src/index.html'), join(outdir, 'index.html'))
  await esbuild.build(bundle(outdir))
  return outdir
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outdir = await buildPage()
  console.log(`built ${outdir} (${ROUTING.batches} batches × ${ROUTING.tokensPerBatch} tokens of ${ROUTING.spec})`)
  if (process.argv.includes('--serve')) {
    const ctx = await esbuild.context(bundle(outdir))
    const port = Number(process.env.PORT ?? 8000)
    const { port: bound } = await ctx.serve({ host: '127.0.0.1', port, servedir: outdir })
    console.log(`serving on http://127.0.0.1:${bound}/ (Ctrl-C stops); open it in a browser with WebGPU`)
  }
}
