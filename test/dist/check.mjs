// Run by di.test.ts in a plain Node process (no vitest transforms, no source condition),
// once as ESM and once through require(): every package's dist must load, every built-in
// plugin must register, and a container must resolve the engine with every service injected
// (esbuild emits no decorator metadata, so this fails if an @inject is missing).
import { createRequire } from 'node:module'
import { publishedPackages } from '../../scripts/workspace.mjs'

const mode = process.argv[2] // 'esm' | 'cjs'
const require = createRequire(import.meta.url)
// every published library package of the workspace (the CLI, a `bin`, is run by its own tests)
const names = publishedPackages().filter(({ pkg }) => !pkg.bin).map(({ pkg }) => pkg.name)
const load = async (name) => (mode === 'cjs' ? require(name) : import(name))

const core = await load('@moe-route/core')
const mods = {}
for (const n of names) mods[n] = await load(n)
const plugins = new Set()
for (const m of Object.values(mods)) {
  for (const v of [m.default, ...Object.values(m)]) {
    if (core.isPlugin(v)) plugins.add(v)
    else if (Array.isArray(v)) v.filter((x) => core.isPlugin(x)).forEach((x) => plugins.add(x))
  }
}
const registry = core.createRegistry([...plugins])
const byKind = {}
for (const p of registry.list()) (byKind[p.kind] ??= []).push(p.name)
const model = { experts: 8, topK: 2, hidden: 16, intermediate: 32, normalizeTopK: true }
const resolved = []
// One container per policy plugin, each with the engine resolved and one batch routed.
for (const name of byKind.policy ?? []) {
  const c = core.createMoeContainer({ config: { model, devices: 2, policies: [{ use: name }] }, registry })
  const engine = c.resolve(core.MoeEngine)
  for (const [k, v] of Object.entries({ router: engine.router, dispatcher: engine.dispatcher, placement: engine.placement, config: engine.config })) {
    if (!v) throw new Error(`${name}: engine.${k} was not injected`)
  }
  if (engine.policies.length !== 1) throw new Error(`${name}: policy stack not injected`)
  const logits = new Float32Array(16 * 8).map((_, i) => Math.sin(i * 1.7))
  const r = engine.route({ id: 0, tokens: 16, logits, sourceDevice: new Int32Array(16).map((_, i) => i % 2) })
  resolved.push(`policy:${name}:${r.telemetry.pairsAfter}`)
}
for (const kind of ['router', 'dispatcher', 'placement', 'store']) {
  for (const name of byKind[kind] ?? []) {
    const cfg = { model, devices: 2, [kind]: { use: name } }
    try {
      const engine = core.createMoeContainer({ config: cfg, registry }).resolve(core.MoeEngine)
      if (!engine.router || !engine.dispatcher) throw new Error('not injected')
      resolved.push(`${kind}:${name}`)
    } catch (e) {
      // Plugins whose defaults need data (a profile, a trace) must say so with a coded error.
      if (!e.code) throw e
      resolved.push(`${kind}:${name}:needs-options(${e.code})`)
    }
  }
}
console.log(JSON.stringify({ mode, packages: names.length, plugins: registry.list().length, byKind, resolved }))
