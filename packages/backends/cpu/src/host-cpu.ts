/** The host CPU, as the cpu backend reports it (Node: `node:os`; see host-cpu.browser.ts). */
import { cpus } from 'node:os'

/** The host CPU's model (e.g. `Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz`) and logical core count. */
export function hostCpu(): { model: string; cores: number } {
  const list = cpus()
  return { model: list[0]?.model?.trim() || 'cpu', cores: list.length }
}
