import { uniformWorkload } from '@moe-route/workloads'
const w = uniformWorkload(256, 8)
let n = 0
for (const r of w.routings({ tokensPerBatch: 8192, batches: 128, seed: 1 })) n += r.tokens
