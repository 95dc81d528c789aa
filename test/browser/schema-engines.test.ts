/**
 * Both builds of core validate alike: the Node build (Ajv) and the browser build
 * (`dist/index.browser.js`, core's own eval-free interpreter, no Ajv) give the same verdict and
 * the same MoeIssues (code, path naming the exact field, message, plugin) for a table of configs
 * and for generated options of every first-party plugin. Needs a build (the browser entry is
 * core's `dist/`).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as esbuild from 'esbuild'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Ajv } from 'ajv'
import { beforeAll, describe, expect, it } from 'vitest'
import * as node from '@moe-route/core'
import { firstPartyPluginPackages } from '../../scripts/workspace.mjs'
import { BROWSER_BUNDLE, ROUTING_ENTRY, measureBrowserBundle } from './bundle.js'

type Core = typeof node
type Plugin = node.Plugin

const root = fileURLToPath(new URL('../..', import.meta.url))
const BROWSER_ENTRY = `${root}packages/core/dist/index.browser.js`

let browser: Core
let plugins: Plugin[]

const sorted = (issues: readonly node.MoeIssue[]) => [...issues].sort((a, b) => `${a.path}\0${a.message}`.localeCompare(`${b.path}\0${b.message}`))
const show = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x === undefined ? '<undefined>' : x))

beforeAll(async () => {
  browser = (await import(pathToFileURL(BROWSER_ENTRY).href)) as Core
  const found = new Set<Plugin>()
  for (const { pkg } of firstPartyPluginPackages(root)) {
    const mod = (await import(pkg.name)) as Record<string, unknown>
    for (const value of Object.values(mod)) if (node.isPlugin(value)) found.add(value as Plugin)
  }
  plugins = [...found]
})

/** Options that exercise a plugin's schema: defaults, and for each field (one level into objects and arrays) values of every JSON type, edge numbers and an unknown field. */
function optionCases(schema: Record<string, unknown>): unknown[] {
  const POOL = [NaN, Infinity, -Infinity, -1, 0, 0.5, 1, 3, 1e9, '', 'x', 'drop', true, null, [], [1, 'a'], {}, { nested: 1 }]
  const cases: unknown[] = [undefined, {}, { unknownField: 1 }]
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>
  for (const [key, sub] of Object.entries(props)) {
    for (const v of [...POOL, ...((sub.enum as unknown[] | undefined) ?? [])]) cases.push({ [key]: v })
    for (const [inner, innerSchema] of Object.entries((sub.properties ?? {}) as Record<string, unknown>)) {
      for (const v of POOL) cases.push({ [key]: { [inner]: v } })
      void innerSchema
    }
    if (sub.items) for (const v of POOL) cases.push({ [key]: [v] }, { [key]: [v, v] })
  }
  return cases
}

describe('core validates alike in its Node build (Ajv) and its browser build (interpreter)', () => {
  it('the browser build carries no Ajv, and the routing bundle stays within 120 kB', async () => {
    expect(readFileSync(BROWSER_ENTRY, 'utf8')).not.toMatch(/from ["']ajv|require\(["']ajv/)
    const size = await measureBrowserBundle(ROUTING_ENTRY)
    expect(size.inputs).toContain('packages/core/dist/index.browser.js')
    expect(size.inputs).toContain('packages/core/dist/polyfill.browser.js')
    expect(size.inputs.filter((i) => /node_modules\/(ajv|fast-uri|reflect-metadata)\//.test(i))).toEqual([])
    expect(size.minified).toBeLessThanOrEqual(120_000)
    // the READMEs state it (±15%, as the WebGPU bundle's statement in webgpu-layer.test.ts)
    for (const [readme, pattern] of [
      ['README.md', /core \+ one policy \(`createMoe`[^]*?is ([\d.]+) kB minified, ([\d.]+) kB gzip/],
      ['packages/core/README.md', /\*\*([\d.]+) kB\*\* minified, \*\*([\d.]+) kB\*\* gzip/],
    ] as const) {
      const m = pattern.exec(readFileSync(`${root}${readme}`, 'utf8'))
      expect(m, `${readme} states the routing bundle's size`).not.toBeNull()
      const drift = `measured ${size.minified} B minified, ${size.gzip} B gzip; ${readme} says ${m![1]} / ${m![2]} kB (update it from \`npm run bundle-size -w @moe-route/test-browser -- --routing\`)`
      expect(Math.abs(size.minified / (Number(m![1]) * 1000) - 1), drift).toBeLessThan(0.15)
      expect(Math.abs(size.gzip / (Number(m![2]) * 1000) - 1), drift).toBeLessThan(0.15)
    }
  })

  it('the routing bundle runs on its own: the Reflect polyfill is in place before tsyringe checks for it', async () => {
    // a fresh process: in this one, the Node build has already installed reflect-metadata
    const dir = mkdtempSync(join(tmpdir(), 'moe-route-routing-'))
    try {
      const r = await esbuild.build({ ...BROWSER_BUNDLE, stdin: { contents: `${ROUTING_ENTRY}\nconsole.log(JSON.stringify(globalThis.result))\n`, resolveDir: fileURLToPath(new URL('.', import.meta.url)), loader: 'js' }, absWorkingDir: root, write: false, outfile: 'routing.mjs' })
      writeFileSync(join(dir, 'routing.mjs'), r.outputFiles[0].contents)
      const loadAfter = JSON.parse(execFileSync(process.execPath, [join(dir, 'routing.mjs')], { encoding: 'utf8' })) as number[]
      expect(loadAfter).toHaveLength(8)
      expect(loadAfter.reduce((a, b) => a + b, 0)).toBe(2) // one token, top-2
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('every first-party plugin registers in both builds, and its options get the same issues', () => {
    expect(plugins.length).toBeGreaterThan(10)
    const a = node.createRegistry(plugins)
    const b = browser.createRegistry(plugins)
    let invalid = 0
    let total = 0
    for (const plugin of [...node.corePlugins, ...plugins]) {
      for (const options of optionCases(plugin.meta.schema as Record<string, unknown>)) {
        const path = `/policies/0/options`
        const x = a.checkOptions(plugin, options, path)
        const y = b.checkOptions(plugin, options, path)
        expect(sorted(y.issues), `${plugin.kind} ${plugin.meta.name} with ${show(options)}`).toEqual(sorted(x.issues))
        total++
        if (x.issues.length > 0) invalid++
      }
    }
    // the table is not all-valid or all-invalid: both verdicts are compared
    expect(total).toBeGreaterThan(1000)
    expect(invalid / total).toBeGreaterThan(0.3)
    expect(invalid / total).toBeLessThan(0.95)
  })

  const model = { experts: 8, topK: 2, hidden: 16, intermediate: 32 }
  // [config, valid]: the verdict is asserted too, so the rows compare both kinds of result
  const CONFIGS: [unknown, boolean][] = [
    [{ model }, true],
    [{ model, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.25 } }] }, true],
    [{ model, policies: [{ use: 'capacity-drop', options: { capacityFactor: -1, overflow: 'explode', extra: 1 } }] }, false],
    [{ model, policies: [{ use: 'capacity-drop', options: { capacityFactor: JSON.parse('1e400') } }] }, false], // a JSON config's 1e400 is Infinity
    [{ model, policies: [{ use: 'capacity-drop', options: { capacityFactor: NaN } }, { use: 'no-such-policy' }] }, false],
    [{ model, policies: [{ use: 'reroute', fallback: { use: 'reroute' } }] }, false],
    [{ model: { ...model, topK: 9 }, devices: 16 }, false],
    [{ model: { ...model, experts: 1.5, hidden: Infinity }, seed: NaN, activationBytes: 3 }, false],
    [{ model, stream: { maxInFlight: 8, capacity: 4 }, weights: { std: 0, layout: 'gpt' } }, false],
    [{ model, router: { use: 'softmax-top-k', options: { unknown: true } }, dispatcher: { use: 'exact-size', options: 'x' } }, false],
    [{ model, policies: 'capacity-drop', plugins: [1], security: { isolatePlugins: 'yes' } }, false],
    [{ model, 'a/b~c': 1, '': 2 }, false],
    [{ policies: [] }, false],
    [[], false],
    [null, false],
  ]

  it.each(CONFIGS.map(([c, valid]) => [show(c), c, valid]))('config %s', (_, config, valid) => {
    const a = node.checkConfig(config, node.createRegistry(plugins))
    const b = browser.checkConfig(config, browser.createRegistry(plugins))
    expect(sorted(b.issues)).toEqual(sorted(a.issues))
    expect(a.issues.length === 0).toBe(valid)
  })

  it('createMoe throws the same MoeError (code, first path, every issue) in both builds', () => {
    const config = { model, policies: [{ use: 'capacity-drop', options: { capacityFactor: 'big' } }] }
    const caught = (core: Core) => {
      try {
        core.createMoe({ config, plugins })
      } catch (e) {
        return e as node.MoeError
      }
      throw new Error('createMoe accepted an invalid config')
    }
    const [x, y] = [caught(node), caught(browser)]
    expect([y.code, y.details.path, y.details.issues]).toEqual([x.code, x.details.path, x.details.issues])
    expect(y.details.issues).toEqual([{ code: node.ErrorCodes.PLUGIN_OPTIONS_INVALID, path: '/policies/0/options/capacityFactor', message: 'must be number', plugin: 'capacity-drop' }])
  })

  it('an Ajv instance passed as the registry option is used by both builds', () => {
    for (const core of [node, browser]) {
      const compiled: object[] = []
      const ajv = new Ajv({ allErrors: true, strict: false, strictNumbers: true })
      const spy = { compile: ((schema: object) => (compiled.push(schema), ajv.compile(schema))) as Ajv['compile'] }
      const registry = core.createRegistry(plugins, { ajv: spy })
      const capacityDrop = registry.get('policy', 'capacity-drop')
      expect(compiled).toContain(capacityDrop.meta.schema)
      expect(registry.checkOptions(capacityDrop, { capacityFactor: Infinity }, '/o').issues.map((i) => i.path)).toEqual(['/o/capacityFactor'])
    }
  })
})
