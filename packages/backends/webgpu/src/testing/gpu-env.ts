/**
 * Test support (not published): find a WebGPU adapter or explain how to get one. When CI is
 * set (or MOE_ROUTE_REQUIRE_WEBGPU=1) a missing adapter is a failure, never a skip.
 */
import { it } from 'vitest'
import { probeAdapter } from '../gpu/device.js'

/** True when the environment demands real GPU tests. */
export const webgpuRequired = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'

const HOWTO =
  'No WebGPU adapter found. Install Mesa lavapipe (a CPU Vulkan driver Dawn can use): `sudo scripts/install-lavapipe.sh` ' +
  '(Debian/Ubuntu; needs Mesa ≥ 24, e.g. bookworm-backports mesa-vulkan-drivers), or run on a machine with a GPU and its Vulkan driver.'

/**
 * Resolves the adapter name, or null. With no adapter: registers a failing test when
 * required, else prints how to get one (the caller skips its suites).
 */
export async function webgpuAdapterForTests(): Promise<string | null> {
  const name = await probeAdapter()
  if (name) return name
  if (webgpuRequired) {
    it('finds a WebGPU adapter (required: CI or MOE_ROUTE_REQUIRE_WEBGPU=1)', () => {
      throw new Error(HOWTO)
    })
  } else {
    console.warn(`[@moe-route/backend-webgpu] skipping GPU tests. ${HOWTO}`)
  }
  return null
}
