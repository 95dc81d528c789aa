import { defineConfig } from 'tsup'
import { nodeAndBrowserBuilds } from '../../../scripts/tsup-browser.js'

// Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
// dist/index.browser.js uses the *.browser.ts twins: navigator.gpu only (no Dawn), no checkpoint files.
// The declarations name GPUDevice and GPUBuffer: consumers get the WebGPU types with them.
export default defineConfig(
  nodeAndBrowserBuilds([/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu'], {
    dts: { banner: '/// <reference types="@webgpu/types" />' },
  }),
)
