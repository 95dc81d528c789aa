/**
 * Where a `GPU` object comes from in Node (and any runtime with `navigator.gpu`): the page's
 * or runtime's `navigator.gpu` when there is one, else Dawn's node addon (npm `webgpu`). The
 * browser build uses gpu-entry.browser.ts instead (no Dawn, no `process`).
 */

/** How to get an adapter when none is found here (part of `MOE_ROUTE_ERR_BACKEND_UNAVAILABLE`). */
export const NO_ADAPTER_HINT: string =
  'On Linux without a GPU install Mesa lavapipe (scripts/install-lavapipe.sh); on a GPU host install the Vulkan loader and driver'

/**
 * Dawn `GPU` objects by flags. Held for the life of the process: when the `GPU` from
 * `create()` is garbage-collected while a device made from it lives, Dawn crashes the
 * process, so it must never become unreachable.
 */
const dawnInstances = new Map<string, GPU>()

/** `navigator.gpu` when the runtime has one, else Dawn with `dawnFlags` in Node, else null. Never throws. */
export async function gpuEntry(dawnFlags: readonly string[]): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator
  if (nav?.gpu) return nav.gpu
  if (typeof process === 'undefined' || !process.versions?.node) return null
  // Dawn's Vulkan backend wants a runtime dir; on CI containers it is often unset.
  process.env.XDG_RUNTIME_DIR ||= '/tmp'
  try {
    const key = dawnFlags.join('\u0000')
    let gpu = dawnInstances.get(key)
    if (!gpu) {
      const mod = (await import('webgpu')) as { create(flags: string[]): GPU }
      gpu = mod.create([...dawnFlags])
      dawnInstances.set(key, gpu)
    }
    return gpu
  } catch {
    return null
  }
}
