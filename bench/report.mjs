// Combines bench/results/webgpu-layer.json (moe-route's WebGPU layer, f16 and int8 W8A8) and
// peer-mixtral.json (bench/peer_mixtral.py: transformers' MoE blocks and the vLLM fused-MoE port,
// eager and CUDA-graph) into markdown tables and an SVG plot (webgpu-layer.md, .svg); the peers at
// their best, with the best peer at each T, into peers.md (also without webgpu-layer.json); and
// int8-sweep.json (when present) into int8-sweep.md.
// Usage: node bench/report.mjs [dir]   (default bench/results)
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2] ?? 'bench/results'
const peer = JSON.parse(readFileSync(join(dir, 'peer-mixtral.json'), 'utf8'))
const oursFile = join(dir, 'webgpu-layer.json')
const ours = existsSync(oursFile) ? JSON.parse(readFileSync(oursFile, 'utf8')) : null
const f = (v, d = 2) => (v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toFixed(d))
const peerMs = (shape, impl, T) => peer.rows.find((r) => r.shape === shape && r.impl === impl && r.T === T && r.ms)
const row = (shape, T, policy) => ours.rows.find((r) => r.shape === shape && r.T === T && r.policy === policy)

// Peers at their best (schema moe-route/peer-mixtral@2: eager and CUDA-graph times per peer)
const hasGraph = peer.rows.some((r) => 'graphMs' in r)
const bestPeer = (shape, T) => (peer.best ?? []).find((b) => b.shape === shape && b.T === T)
if (hasGraph) {
  const impls = [['eager', 'transformers eager'], ['grouped_mm', 'transformers grouped_mm'], ['batched_mm', 'transformers batched_mm'], ['vllm_fused_moe', 'vLLM fused_moe (Triton)']]
    .filter(([i]) => peer.rows.some((r) => r.impl === i))
  const cell = (r) => {
    if (!r) return '–'
    if (r.skipped) return 'skipped'
    if (r.error) return 'error'
    return `${f(r.ms, 3)} / ${f(r.graphMs, 3)}${r.relL2Flag ? ' ⚠' : ''}`
  }
  const tile = (r) => (r?.tile ? `${r.tile.BLOCK_SIZE_M}×${r.tile.BLOCK_SIZE_N}×${r.tile.BLOCK_SIZE_K} g${r.tile.GROUP_SIZE_M} w${r.tile.num_warps} s${r.tile.num_stages} (${/^sweep/.test(r.tileSource ?? '') ? 'sweep' : /shipped/.test(r.tileSource ?? '') ? 'shipped' : 'default'})` : '–')
  const ourMs = (shape, T) => ours?.rows.find((r) => r.shape === shape && r.T === T && r.policy === 'dynamic')?.ms
  const m = peer.meta
  const out = [`Peers at their best: ${m.gpu}${m.driver ? ` (driver ${m.driver})` : ''}, torch ${m.torch}, triton ${m.triton ?? '–'}, transformers ${m.transformers ?? '–'}; ${peer.date.slice(0, 10)}. ms per layer call (router included), \`eager\` = calls back to back / \`graph\` = CUDA-graph replay, median of ${peer.args?.repeats ?? '?'} repeats; ⚠ = output off the fp32 reference by more than 1e-2 (never the best). Best = fastest correct peer and mode.`, '']
  const head = ['shape', 'T', 'active experts', ...impls.map(([, n]) => `${n} (eager / graph)`), 'vLLM tile', 'best peer', 'best ms']
  if (ours) head.push('moe-route f16 ms', '× best')
  out.push(`| ${head.join(' | ')} |`)
  out.push(`|${head.map(() => '---').join('|')}|`)
  for (const shape of [...new Set(peer.rows.map((r) => r.shape))]) {
    for (const T of [...new Set(peer.rows.filter((r) => r.shape === shape).map((r) => r.T))].sort((a, b) => a - b)) {
      const rs = peer.rows.filter((r) => r.shape === shape && r.T === T)
      const b = bestPeer(shape, T)
      const cells = [shape, T, rs.find((r) => r.activeExperts != null)?.activeExperts ?? '–', ...impls.map(([i]) => cell(rs.find((r) => r.impl === i))),
        tile(rs.find((r) => r.impl === 'vllm_fused_moe')), b ? `${b.impl} (${b.mode})` : '–', f(b?.ms, 3)]
      if (ours) {
        const o = ourMs(shape, T)
        cells.push(f(o), f(b && o ? b.ms / o : NaN))
      }
      out.push(`| ${cells.join(' | ')} |`)
    }
  }
  const flagged = peer.rows.filter((r) => r.relL2Flag)
  const rel = peer.rows.flatMap((r) => [r.relL2, r.graphRelL2]).filter((v) => Number.isFinite(v))
  out.push('')
  out.push(`Output vs the fp32 reference: relative L2 ${rel.length ? `${Math.min(...rel).toExponential(1)}–${Math.max(...rel).toExponential(1)}` : '–'} over ${rel.length} outputs; ${flagged.length} flagged.` +
    ` Errors: ${peer.rows.filter((r) => r.error).length}, skipped: ${peer.rows.filter((r) => r.skipped).length} (the JSON says why).`)
  writeFileSync(join(dir, 'peers.md'), out.join('\n') + '\n')
  console.log(out.join('\n'))
  if (ours) console.log('')
}

if (!ours) process.exit(0)

const lines = []
lines.push(`Machine: ${peer.meta.gpu} via WebGPU adapter \`${ours.adapter}\` (Dawn/Vulkan); torch ${peer.meta.torch}, transformers ${peer.meta.transformers}.`)
lines.push(`Measured read bandwidth ${f(ours.readBandwidthTBs)} TB/s; moe-route weights f16 (packed), torch bf16. ms per layer call, back-to-back calls; GPU ms = sum of moe-route kernel times (timestamp queries).`)
lines.push('')
lines.push('| shape | T | active experts (ours / torch) | moe-route ms | GPU ms | eager ms | grouped_mm ms | × eager | × grouped_mm | roofline ms | % roofline |')
lines.push('|---|---|---|---|---|---|---|---|---|---|---|')
const shapes = [...new Set(ours.rows.map((r) => r.shape))]
const plot = []
for (const shape of shapes) {
  for (const T of [...new Set(ours.rows.filter((r) => r.shape === shape).map((r) => r.T))]) {
    const cands = ours.rows.filter((r) => r.shape === shape && r.T === T && r.policy.startsWith('dynamic'))
    const auto = row(shape, T, 'dynamic')
    const e = peerMs(shape, 'eager', T)
    const g = peerMs(shape, 'grouped_mm', T)
    lines.push(`| ${shape} | ${T} | ${auto.activeExperts} / ${e?.activeExperts ?? g?.activeExperts ?? '–'} | ${f(auto.ms)} | ${f(auto.gpuMs)} | ${f(e?.ms)} | ${f(g?.ms)} | ${f(e ? e.ms / auto.ms : NaN)} | ${f(g ? g.ms / auto.ms : NaN)} | ${f(auto.rooflineMs, 3)} | ${f(100 * auto.rooflineMs / auto.ms, 0)}% |`)
    plot.push({ shape, T, ours: auto.ms, eager: e?.ms, grouped: g?.ms, bestPeer: bestPeer(shape, T)?.ms, roofline: auto.rooflineMs, best: Math.min(...cands.map((c) => c.ms)) })
  }
}
lines.push('')
lines.push('int8 W8A8 (weights quantized per output channel on the GPU from the same f16 weights, activations per row; `auto` kernels: GEMV for ≤ 2 rows per expert, else subgroup-matrix GEMMs). Roofline int8 = active experts\' int8 weights and scales ÷ read bandwidth; rel L2 = output against the f16 layer:')
lines.push('')
lines.push('| shape | T | int8 ms | GPU ms | × eager | × grouped_mm | × f16 | % int8 roofline | % f16 roofline | expert kernels | rel L2 vs f16 |')
lines.push('|---|---|---|---|---|---|---|---|---|---|---|')
for (const shape of shapes) {
  for (const T of [...new Set(ours.rows.filter((r) => r.shape === shape).map((r) => r.T))]) {
    const q = row(shape, T, 'dynamic/int8')
    const d = row(shape, T, 'dynamic')
    if (!q) continue
    const e = peerMs(shape, 'eager', T)
    const g = peerMs(shape, 'grouped_mm', T)
    const kinds = [...new Set(Object.keys(q.kernels ?? {}).filter((k) => /int8-(gemv|sgm|dot4)/.test(k)).map((k) => k.replace(/^.*\|/, '').replace(/^experts-int8-/, '').replace(/-(gate-up|down)$/, '')))].join(', ')
    lines.push(`| ${shape} | ${T} | ${f(q.ms)} | ${f(q.gpuMs)} | ${f(e ? e.ms / q.ms : NaN)} | ${f(g ? g.ms / q.ms : NaN)} | ${f(d ? d.ms / q.ms : NaN)} | ${f(100 * q.rooflineMs / q.ms, 0)}% | ${f(100 * q.rooflineF16Ms / q.ms, 0)}% | ${kinds} | ${q.int8VsF16RelativeL2 === undefined ? '–' : q.int8VsF16RelativeL2.toExponential(1)} |`)
    const p = plot.find((x) => x.shape === shape && x.T === T)
    if (p) p.int8 = q.ms
  }
}
lines.push('')
lines.push('Policies (moe-route, ms per call; static gating pads every expert to C = ceil(γ·k·T/E) and computes the padding):')
lines.push('')
lines.push('| shape | T | dynamic | drop γ1.0 | drop γ1.5 | static γ1.0 | static ÷ dynamic | dynamic/gemv | dynamic/gemm |')
lines.push('|---|---|---|---|---|---|---|---|---|')
for (const shape of shapes) {
  for (const T of [...new Set(ours.rows.filter((r) => r.shape === shape).map((r) => r.T))]) {
    const d = row(shape, T, 'dynamic')
    const s = row(shape, T, 'static γ1.0')
    lines.push(`| ${shape} | ${T} | ${f(d?.ms)} | ${f(row(shape, T, 'drop γ1.0')?.ms)} | ${f(row(shape, T, 'drop γ1.5')?.ms)} | ${f(s?.ms)} | ${f(s && d ? s.ms / d.ms : NaN)} | ${f(row(shape, T, 'dynamic/gemv')?.ms)} | ${f(row(shape, T, 'dynamic/gemm')?.ms)} |`)
  }
}
// Multi-row decode kernels against the single-row GEMV kernels (policy 'dynamic/single-row', same command)
if (ours.rows.some((r) => r.policy === 'dynamic/single-row')) {
  const bestPeerMs = (shape, T) => (peer.best ?? []).find((b) => b.shape === shape && b.T === T)
  const gg = (shape, T) => peer.rows.find((r) => r.shape === shape && r.impl === 'grouped_mm' && r.T === T)
  const ek = (r, part) => Object.entries(r?.kernels ?? {}).filter(([k]) => k.includes('experts-') && k.includes(part)).reduce((a, [, v]) => a + v, 0)
  lines.push('')
  lines.push('f16 decode kernels, dynamic routing: the multi-row kernels (plan table by rows per expert) against the single-row GEMV kernels in the same run; expert kernels = gate+up / down GPU ms (timestamp queries); GB/s = active experts\' f16 weight bytes ÷ expert-kernel GPU time:')
  lines.push('')
  lines.push('| shape | T | rows / expert | single-row ms (GPU) | single-row gate+up / down | multi-row ms (GPU) | multi-row gate+up / down | speed-up (GPU) | multi-row weight GB/s | % roofline | grouped_mm eager / graph | best peer ms |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const shape of shapes) {
    for (const T of [...new Set(ours.rows.filter((r) => r.shape === shape && r.policy === 'dynamic/single-row').map((r) => r.T))]) {
      const d = row(shape, T, 'dynamic')
      const s = row(shape, T, 'dynamic/single-row')
      if (!d || !s) continue
      const bytes = (d.rooflineMs / 1000) * ours.readBandwidthTBs * 1e12
      const kms = ek(d, 'gate-up') + ek(d, 'down')
      const g = gg(shape, T)
      const b = bestPeerMs(shape, T)
      const ke = { 'mixtral-8x7b': [2, 8], 'olmoe-1b-7b': [8, 64] }[shape]
      const perExpert = ke ? Math.ceil((T * ke[0]) / ke[1]) : '–'
      lines.push(`| ${shape} | ${T} | ${perExpert} | ${f(s.ms)} (${f(s.gpuMs)}) | ${f(ek(s, 'gate-up'), 3)} / ${f(ek(s, 'down'), 3)} | ${f(d.ms)} (${f(d.gpuMs)}) [${d.expertKernel}] | ${f(ek(d, 'gate-up'), 3)} / ${f(ek(d, 'down'), 3)} | ${f(s.gpuMs / d.gpuMs)}× | ${f(bytes / (kms / 1000) / 1e9, 0)} | ${f(100 * d.rooflineMs / d.ms, 0)}% | ${f(g?.ms, 3)} / ${f(g?.graphMs, 3)} | ${f(b?.ms, 3)} (${b ? `${b.impl} ${b.mode}` : '–'}) |`)
    }
  }
}
lines.push('')
lines.push('Parity at the real shapes (3 tokens, fused GPU layer vs the CPU reference on the same f16 weights): ' +
  ours.parity.map((p) => `${p.shape}: same pairs ${p.samePairs}, relative L2 ${p.relativeL2.toExponential(1)}`).join('; ') + '.')
const md = lines.join('\n')
writeFileSync(join(dir, 'webgpu-layer.md'), md + '\n')
console.log(md)

// SVG: log-log ms vs T per shape, one panel each.
const W = 420, H = 300, M = 48
const panels = shapes.map((shape, i) => {
  const pts = plot.filter((p) => p.shape === shape)
  const all = pts.flatMap((p) => [p.ours, p.int8, p.eager, p.grouped, p.bestPeer, p.roofline]).filter((v) => v > 0)
  const y0 = Math.log10(Math.min(...all)) - 0.1, y1 = Math.log10(Math.max(...all)) + 0.1
  const x0 = Math.log10(pts[0].T), x1 = Math.log10(pts[pts.length - 1].T)
  const X = (t) => M + ((Math.log10(t) - x0) / (x1 - x0 || 1)) * (W - 2 * M)
  const Y = (v) => H - M - ((Math.log10(v) - y0) / (y1 - y0)) * (H - 2 * M)
  const series = [['ours', '#d62728', 'moe-route WebGPU f16'], ['int8', '#ff7f0e', 'moe-route WebGPU int8 W8A8'], ['eager', '#1f77b4', 'HF eager'], ['grouped', '#2ca02c', 'HF grouped_mm'], ['bestPeer', '#9467bd', 'best peer (any mode)'], ['roofline', '#7f7f7f', 'roofline']]
    .filter(([k]) => pts.some((p) => p[k] > 0))
  const paths = series.map(([k, c, name], j) => {
    const ps = pts.filter((p) => p[k] > 0).map((p) => `${X(p.T).toFixed(1)},${Y(p[k]).toFixed(1)}`)
    return `<polyline fill="none" stroke="${c}" stroke-width="2" points="${ps.join(' ')}"/><text x="${M + 8}" y="${M + 14 * j}" fill="${c}" font-size="11">${name}</text>`
  })
  const ticks = pts.map((p) => `<text x="${X(p.T)}" y="${H - M + 14}" font-size="10" text-anchor="middle">${p.T}</text>`)
  const yt = []
  for (let e = Math.ceil(y0); e <= Math.floor(y1); e++) yt.push(`<text x="${M - 4}" y="${Y(10 ** e) + 3}" font-size="10" text-anchor="end">${10 ** e}</text><line x1="${M}" x2="${W - M}" y1="${Y(10 ** e)}" y2="${Y(10 ** e)}" stroke="#ddd"/>`)
  return `<g transform="translate(${i * W},0)"><text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${shape}: ms per layer call vs tokens T (log-log)</text>${yt.join('')}${ticks.join('')}${paths.join('')}</g>`
})
writeFileSync(join(dir, 'webgpu-layer.svg'), `<svg xmlns="http://www.w3.org/2000/svg" width="${W * shapes.length}" height="${H}" font-family="sans-serif">${panels.join('')}</svg>\n`)

// int8 kernel sweep: ms per call (int8 GEMM/GEMV GPU ms) per variant and T
const sweepFile = join(dir, 'int8-sweep.json')
if (existsSync(sweepFile)) {
  const sw = JSON.parse(readFileSync(sweepFile, 'utf8'))
  const names = [...new Set(sw.rows.map((r) => r.variant.split(' [')[0]))]
  const out = [`int8 kernels side by side (${sw.adapter}, ${sw.date.slice(0, 10)}): layer ms per call / int8 GEMM+GEMV GPU ms; max relative L2 between variants ${Math.max(...sw.rows.map((r) => r.relL2VsDot4 ?? 0)).toExponential(1)}.`, '']
  out.push(`| shape | T | ${names.join(' | ')} |`)
  out.push(`|---|---|${names.map(() => '---').join('|')}|`)
  for (const shape of [...new Set(sw.rows.map((r) => r.shape))]) {
    for (const T of [...new Set(sw.rows.filter((r) => r.shape === shape).map((r) => r.T))]) {
      const cell = (n) => {
        const r = sw.rows.find((x) => x.shape === shape && x.T === T && x.variant.split(' [')[0] === n)
        return r ? `${f(r.ms)} / ${f(r.gemmMs)}` : '–'
      }
      out.push(`| ${shape} | ${T} | ${names.map(cell).join(' | ')} |`)
    }
  }
  writeFileSync(join(dir, 'int8-sweep.md'), out.join('\n') + '\n')
  console.log('\n' + out.join('\n'))
}
