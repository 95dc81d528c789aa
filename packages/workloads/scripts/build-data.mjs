#!/usr/bin/env node
/**
 * Derives the compact data shipped in packages/workloads/data/ from the recorded routing in
 * shared/data/routing (run from the repo: `node packages/workloads/scripts/build-data.mjs
 * [path/to/shared/data/routing]`). The package never reads shared/ at run time.
 *
 * Outputs (all little-endian, gzip):
 * - mixtral-<domain>.tokens.gz: the domain's text tokenized with mistral-tokenizer-js, u16 ids.
 *   Lines are tokenized one at a time (no BOS, no dummy prefix except the first line) and
 *   joined with the newline byte token 13, which is what SentencePiece gives for the whole text.
 * - mixtral-<domain>.experts.gz: per recorded layer, u32 n, then n token ids (LEB128 deltas),
 *   then n×8 per-expert counts (LEB128).
 * - expert-counts.json: `topk` and `top1` per model, domain and recorded layer (crossLayer dropped).
 * - llama-moe-coactivation.json: copied, minified.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import tokenizer from 'mistral-tokenizer-js'

const here = dirname(fileURLToPath(import.meta.url))
const src = resolve(process.argv[2] ?? join(here, '../../../../shared/data/routing'))
const out = join(here, '../data')
mkdirSync(out, { recursive: true })

function varints(values) {
  const bytes = []
  for (let v of values) {
    if (!(Number.isInteger(v) && v >= 0)) throw new Error(`bad varint ${v}`)
    while (v >= 0x80) {
      bytes.push((v & 0x7f) | 0x80)
      v = Math.floor(v / 128)
    }
    bytes.push(v)
  }
  return Buffer.from(bytes)
}

const counts = JSON.parse(readFileSync(join(src, 'expert-counts.json'), 'utf8'))
const compact = { source: 'allenai/OLMoE scripts/routing_output (Apache-2.0); topk and top1 counts only', models: {} }
for (const [model, m] of Object.entries(counts.models)) {
  compact.models[model] = { experts: m.experts, topK: m.topK, layers: m.layers, domains: {} }
  for (const [domain, d] of Object.entries(m.domains)) {
    compact.models[model].domains[domain] = d.top1 ? { topk: d.topk, top1: d.top1 } : { topk: d.topk }
  }
}
writeFileSync(join(out, 'expert-counts.json'), JSON.stringify(compact))

const co = JSON.parse(readFileSync(join(src, 'llama-moe-coactivation.json'), 'utf8'))
writeFileSync(join(out, 'llama-moe-coactivation.json'), JSON.stringify(co))

for (const domain of Object.keys(counts.models.mistral.domains)) {
  const t0 = Date.now()
  const text = readFileSync(join(src, 'texts', `${domain}.txt`), 'utf8')
  const ids = []
  text.split('\n').forEach((line, i) => {
    if (i > 0) ids.push(13)
    if (line.length > 0) ids.push(...tokenizer.encode(line, false, i === 0))
  })
  if (ids.some((id) => id > 0xffff)) throw new Error('token id does not fit u16')
  writeFileSync(join(out, `mixtral-${domain}.tokens.gz`), gzipSync(Buffer.from(new Uint16Array(ids).buffer), { level: 9 }))

  const te = JSON.parse(readFileSync(join(src, 'mixtral-token-experts', `${domain}.json`), 'utf8'))
  const parts = []
  for (const layer of te.expertTokenCounts) {
    const byId = new Map()
    for (const [e, m] of Object.entries(layer)) {
      for (const [id, c] of Object.entries(m)) {
        if (!byId.has(+id)) byId.set(+id, new Array(8).fill(0))
        byId.get(+id)[+e] = c
      }
    }
    const sorted = [...byId.keys()].sort((a, b) => a - b)
    const n = Buffer.alloc(4)
    n.writeUInt32LE(sorted.length)
    parts.push(n, varints(sorted.map((id, i) => (i === 0 ? id : id - sorted[i - 1]))), varints(sorted.flatMap((id) => byId.get(id))))
  }
  writeFileSync(join(out, `mixtral-${domain}.experts.gz`), gzipSync(Buffer.concat(parts), { level: 9 }))
  console.log(`${domain}: ${ids.length} tokens, ${Date.now() - t0} ms`)
}
