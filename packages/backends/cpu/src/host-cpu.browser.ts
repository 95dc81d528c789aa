/** The host CPU in the browser build: no `node:os`; the model is not exposed, the core count is. */
import type * as NodeTwin from './host-cpu.js'

/** The host CPU's model (`browser cpu`) and logical core count (`navigator.hardwareConcurrency`). */
export const hostCpu: typeof NodeTwin.hostCpu = () => {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
  return { model: 'browser cpu', cores: nav?.hardwareConcurrency ?? 1 }
}
