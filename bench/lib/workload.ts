/** Recorded routing for the GPU benchmarks: the batches of a workload spec, collected. */
import type { TokenBatch } from '@moe-route/core'
import { workloadFromSpec } from '@moe-route/workloads'

/** `batches` batches of `tokensPerBatch` tokens of a workload spec (e.g. `mixtral:c4:layer7`), with their gate scores. */
export async function openWorkloadSpec(spec: string, tokensPerBatch: number, batches: number, seed = 1): Promise<TokenBatch[]> {
  const out: TokenBatch[] = []
  for await (const b of workloadFromSpec(spec).batches({ tokensPerBatch, batches, seed })) out.push(b)
  return out
}
