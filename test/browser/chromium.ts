/**
 * Headless Chromium with WebGPU on a CPU adapter, for the browser tests (driven by
 * playwright-core; no browser is downloaded: Debian's `chromium` package, or CHROMIUM_BIN).
 *
 * The flags, as found with Debian bookworm's Chromium 156 on a machine without a GPU:
 * - `--enable-unsafe-webgpu`: WebGPU is not shipped on Linux yet; without it
 *   `requestAdapter()` answers null.
 * - `--use-webgpu-adapter=swiftshader`: the adapter is SwiftShader, the CPU Vulkan
 *   implementation bundled with Chromium (`/usr/lib/chromium/libvk_swiftshader.so`), on every
 *   machine, GPU or not (adapter info: vendor `google`, architecture `swiftshader`, subgroups
 *   of 4). Chromium does not offer Mesa's lavapipe to WebGPU (it is a CPU Vulkan device that
 *   Chromium skips), so the browser path needs no Mesa at all.
 * - The GPU process must run: no `--disable-gpu` is needed, but it is harmless (WebGPU still
 *   gets SwiftShader with it).
 * - The rest keeps Chromium off the network (this machine's network is closed).
 * playwright-core adds `--headless` and `--no-sandbox` itself.
 */
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

/** Chromium flags that give WebGPU a CPU adapter (SwiftShader) in headless mode. */
export const CHROMIUM_WEBGPU_ARGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** True where a browser test must run, never skip: CI, or MOE_ROUTE_REQUIRE_WEBGPU=1 (as for the Node WebGPU tests). */
export const browserRequired = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'

/** How to get Chromium, for skip and failure messages. */
export const CHROMIUM_HOWTO =
  'Install Debian\'s Chromium with `sudo scripts/install-chromium.sh` (apt-get install chromium), or set CHROMIUM_BIN to a Chromium/Chrome executable.'

/** The Chromium executable: CHROMIUM_BIN, else `chromium` / `chromium-browser` on PATH; null when none. */
export function findChromium(): string | null {
  const fromEnv = process.env.CHROMIUM_BIN
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : null
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean)
  for (const name of ['chromium', 'chromium-browser']) {
    for (const dir of dirs) if (existsSync(join(dir, name))) return join(dir, name)
  }
  return null
}

/**
 * Launches headless Chromium with {@link CHROMIUM_WEBGPU_ARGS} (playwright-core gives it a
 * fresh profile folder and removes it on `close()`). Bounded: the launch gives up after
 * `timeoutMs`. Close the browser when done; Playwright also ends it when this process exits.
 */
export function launchChromium(executablePath: string, timeoutMs = 60_000): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_WEBGPU_ARGS], timeout: timeoutMs })
}

/** Rejects after `ms` with a message naming `what` (page.evaluate has no timeout of its own). */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}
