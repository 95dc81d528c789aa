import { defineConfig } from 'tsup'
import { nodeAndBrowserBuilds } from '../../../scripts/tsup-browser.js'

// Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
// dist/index.browser.js uses src/host-cpu.browser.ts (no node:os)
export default defineConfig(nodeAndBrowserBuilds([/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu']))
