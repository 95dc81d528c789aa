import { defineConfig } from 'tsup'

export default defineConfig({
  // one entry per policy folder (the subpaths the former per-policy packages re-export)
  entry: {"index": "src/index.ts", "capacity-drop": "src/capacity-drop/index.ts", "expanded-drop": "src/expanded-drop/index.ts", "reroute": "src/reroute/index.ts", "spare-capacity-reroute": "src/spare-capacity-reroute/index.ts", "device-capacity": "src/device-capacity/index.ts", "expert-drop": "src/expert-drop/index.ts"},
  format: ['esm', 'cjs'],
  // shared chunks in both formats: every subpath hands out the same plugin objects as the root
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  tsconfig: 'tsconfig.build.json',
  // Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
  external: [/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu'],
})
