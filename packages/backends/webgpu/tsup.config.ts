import { defineConfig } from 'tsup'
import { nodeAndBrowserBuilds } from '../../../scripts/tsup-browser.js'

// Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
// dist/index.browser.js uses the *.browser.ts twins: navigator.gpu only (no Dawn), no checkpoint files
export default defineConfig(nodeAndBrowserBuilds([/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu']))
