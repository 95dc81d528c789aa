import { ScoreModel, TokenRandom } from '@moe-route/workloads'
const m = new ScoreModel(256, 8)
const r = new TokenRandom()
const N = 1048576
let t0 = performance.now(), acc = 0
for (let t = 0; t < N; t++) { r.at(5, t); const z = m.drawTop(r.next); acc += z[7] }
console.log('drawTop', ((performance.now() - t0) / 1000).toFixed(2))
const pairs = new Float32Array(N * 8), w = new Float32Array(N * 8), keys = new Int32Array(N), f = new Float64Array(N)
t0 = performance.now()
for (let t = 0; t < N; t++) { r.at(5, t); const z = m.drawTop(r.next); m.finish(z, pairs, w, t * 8, true, keys, f, t) }
console.log('draw+finish', ((performance.now() - t0) / 1000).toFixed(2))
t0 = performance.now()
for (let t = 0; t < N; t++) { r.at(5, t); for (let j = 0; j < 8; j++) acc += r.next() }
console.log('rng only', ((performance.now() - t0) / 1000).toFixed(2), acc > 0)
