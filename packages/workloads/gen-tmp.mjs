import { uniformWorkload } from '@moe-route/workloads'
const w = uniformWorkload(256, 8)
let t0 = performance.now(), n = 0
for (const c of w.choices({ tokensPerBatch: 8192, batches: 128, seed: 1 })) n += c.tokens
console.log('choices', n, ((performance.now() - t0) / 1000).toFixed(2))
t0 = performance.now(); n = 0
for (const r of w.routings({ tokensPerBatch: 8192, batches: 128, seed: 1 })) n += r.tokens
console.log('routings', n, ((performance.now() - t0) / 1000).toFixed(2))
// plain loop
t0 = performance.now()
let a = 1
const cnt = new Int32Array(256)
for (let i = 0; i < 8388608; i++) { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); cnt[Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 256)]++ }
console.log('plain', ((performance.now() - t0) / 1000).toFixed(3))
