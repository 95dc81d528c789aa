#!/usr/bin/env node
// Renders bench/results/{webgpu-layer,peer-mixtral}.json as the Markdown table in bench/README.md
// and bench/results/webgpu-layer.svg (ms per call vs T, log-log, both sides).
import { readFileSync, writeFileSync } from 'node:fs'

const dir = new URL('./results/', import.meta.url)
const w = JSON.parse(readFileSync(new URL('webgpu-layer.json', dir)))
const p = JSON.parse(readFileSync(new URL('peer-mixtral.json', dir)))
const HBM = 2.9e12 // H100 HBM3 read bandwidth reached by copy kernels (DESIGN.md); see the note
const peer = (s, impl, T) => p.rows.find((r) => r.shape === s && r.impl === impl && r.T === T)?.ms
const shapes = [...new Set(w.rows.map((r) => r.shape))]
const lines = [
  `Adapter: ${w.adapter}; peers: torch ${p.meta.torch}, transformers ${p.meta.transformers} on ${p.meta.gpu}; f16 weights (WebGPU) vs bf16 (PyTorch).`,
  `Measured copyBufferToBuffer bandwidth through Dawn: ${(w.copyBandwidthTBs).toFixed(2)} TB/s (read + write).`,
  '',
  '| shape | T | active experts | moe-route WebGPU ms | transformers eager ms | grouped_mm ms | speed-up vs eager | vs grouped_mm | roofline ms (2.9 TB/s) | % of roofline | % of roofline at the measured Dawn copy bandwidth | drop γ1.0 ms | drop γ1.5 ms | static γ1.0 ms |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
]
for (const s of shapes) {
  for (const T of [...new Set(w.rows.filter((r) => r.shape === s).map((r) => r.T))]) {
    const g = (pol) => w.rows.find((r) => r.shape === s && r.T === T && r.policy === pol)
    const d = g('dynamic')
    const e = peer(s, 'eager', T)
    const gm = peer(s, 'grouped_mm', T)
    const bytesPerExpert = d.rooflineMs * w.copyBandwidthTBs * 1e12 / 1000 / d.activeExperts
    const roof = (d.activeExperts * bytesPerExpert / HBM) * 1000
    lines.push(`| ${s} | ${T} | ${d.activeExperts} | ${d.ms.toFixed(2)} | ${e?.toFixed(2) ?? '–'} | ${gm?.toFixed(2) ?? '–'} | ${e ? (e / d.ms).toFixed(2) + '×' : '–'} | ${gm ? (gm / d.ms).toFixed(2) + '×' : '–'} | ${roof.toFixed(3)} | ${((100 * roof) / d.ms).toFixed(0)}% | ${d.pctRoofline.toFixed(0)}% | ${g('drop γ1.0').ms.toFixed(2)} | ${g('drop γ1.5').ms.toFixed(2)} | ${g('static γ1.0').ms.toFixed(2)} |`)
  }
}
lines.push('', `Parity at the real shapes (3 tokens, GPU vs CPU reference on the same f16 weights): ${w.parity.map((x) => `${x.shape} same pairs ${x.samePairs}, relative L2 ${x.relativeL2.toExponential(1)}`).join('; ')}.`)
const md = lines.join('\n')
console.log(md)

// A small log-log SVG: ms vs T per shape, moe-route and both peers.
const W = 720, H = 300, pad = 50
const xs = [1, 4096], ys = [0.3, 200]
const X = (t) => pad + ((Math.log(t) - Math.log(xs[0])) / (Math.log(xs[1]) - Math.log(xs[0]))) * (W / 2 - pad - 10)
const Y = (ms) => H - pad - ((Math.log(ms) - Math.log(ys[0])) / (Math.log(ys[1]) - Math.log(ys[0]))) * (H - 2 * pad)
const colors = { 'moe-route webgpu': '#d62728', eager: '#1f77b4', grouped_mm: '#2ca02c' }
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`
shapes.forEach((s, i) => {
  const ox = i * (W / 2)
  svg += `<g transform="translate(${ox},0)"><text x="${pad}" y="20" font-weight="bold">${s}: ms per call vs tokens (log-log)</text>`
  svg += `<line x1="${pad}" y1="${H - pad}" x2="${W / 2 - 10}" y2="${H - pad}" stroke="#000"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#000"/>`
  for (const t of [1, 8, 32, 128, 512, 2048, 4096]) svg += `<text x="${X(t)}" y="${H - pad + 14}" text-anchor="middle">${t}</text>`
  for (const m of [0.5, 1, 5, 10, 50, 100]) svg += `<text x="${pad - 4}" y="${Y(m) + 4}" text-anchor="end">${m}</text>`
  const series = {
    'moe-route webgpu': w.rows.filter((r) => r.shape === s && r.policy === 'dynamic').map((r) => [r.T, r.ms]),
    eager: p.rows.filter((r) => r.shape === s && r.impl === 'eager' && r.ms).map((r) => [r.T, r.ms]),
    grouped_mm: p.rows.filter((r) => r.shape === s && r.impl === 'grouped_mm' && r.ms).map((r) => [r.T, r.ms]),
  }
  let ly = 35
  for (const [name, pts] of Object.entries(series)) {
    svg += `<polyline fill="none" stroke="${colors[name]}" stroke-width="2" points="${pts.map(([t, ms]) => `${X(t).toFixed(1)},${Y(ms).toFixed(1)}`).join(' ')}"/>`
    svg += `<text x="${W / 2 - 120}" y="${ly}" fill="${colors[name]}">${name}</text>`
    ly += 14
  }
  svg += '</g>'
})
svg += '</svg>\n'
writeFileSync(new URL('webgpu-layer.svg', dir), svg)
