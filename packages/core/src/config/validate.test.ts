import { describe, expect, it } from 'vitest'
import { createRegistry } from '../container.js'
import { definePolicy } from '../plugin/define.js'
import { checkConfig, resolveConfig } from './validate.js'
import { isMoeError } from '../errors.js'

const model = { experts: 8, topK: 2, hidden: 64, intermediate: 128 }
const drop = definePolicy<{ capacityFactor: number; priority: string }>({
  meta: {
    name: 'capacity-drop', package: 'x', version: '0.1.0', core: '^0.1.0',
    schema: {
      type: 'object',
      properties: { capacityFactor: { type: 'number', exclusiveMinimum: 0 }, priority: { enum: ['score', 'first', 'last', 'random'] } },
      additionalProperties: false,
    },
    defaultOptions: { capacityFactor: 1.5, priority: 'score' },
  },
  create: () => ({ name: 'capacity-drop', apply: (routing) => ({ routing, dropped: [] }) }),
})
const registry = createRegistry([drop])

// Ten distinct mistakes; each must produce an issue naming the field.
const mistakes: [string, unknown, string, string][] = [
  ['missing model', {}, '/model', 'is required'],
  ['experts not an integer', { model: { ...model, experts: 7.5 } }, '/model/experts', 'integer'],
  ['topK > experts', { model: { ...model, topK: 9 } }, '/model/topK', '≤ experts'],
  ['missing hidden', { model: { experts: 8, topK: 2, intermediate: 128 } }, '/model/hidden', 'is required'],
  ['unknown top-level field', { model, polices: [] }, '/polices', 'is not a known field'],
  ['unknown policy', { model, policies: [{ use: 'capacity-dorp' }] }, '/policies/0/use', "unknown policy plugin 'capacity-dorp'"],
  ['γ ≤ 0', { model, policies: [{ use: 'capacity-drop', options: { capacityFactor: 0 } }] }, '/policies/0/options/capacityFactor', 'must be > 0'],
  ['unknown priority', { model, policies: [{ use: 'capacity-drop', options: { priority: 'loudest' } }] }, '/policies/0/options/priority', 'must be one of'],
  ['policy without use', { model, policies: [{ options: {} }] }, '/policies/0/use', 'is required'],
  ['devices zero', { model, devices: 0 }, '/devices', 'must be >= 1'],
  ['unknown backend', { model, backend: { use: 'cuda' } }, '/backend/use', "unknown backend plugin 'cuda'"],
  ['workload tokens negative', { model, workload: { source: 'mixtral:c4:layer7', tokensPerBatch: -5 } }, '/workload/tokensPerBatch', 'must be >= 1'],
  ['unknown dispatcher', { model, dispatcher: { use: 'magic' } }, '/dispatcher/use', 'unknown dispatcher'],
]

describe('config validation', () => {
  it.each(mistakes)('%s → names the field', (_name, raw, path, text) => {
    const { issues } = checkConfig(raw, registry)
    const hit = issues.find((i) => i.path === path)
    expect(hit, JSON.stringify(issues)).toBeDefined()
    expect(hit!.message).toContain(text)
  })

  it('collects every problem at once', () => {
    const { issues } = checkConfig({ model: { ...model, topK: 9 }, policies: [{ use: 'nope' }, { use: 'capacity-drop', options: { capacityFactor: -1 } }] }, registry)
    expect(issues.map((i) => i.path).sort()).toEqual(['/model/topK', '/policies/0/use', '/policies/1/options/capacityFactor'])
  })

  it('resolveConfig throws CONFIG_INVALID with all issues, and fills defaults otherwise', () => {
    try {
      resolveConfig({ model: { ...model, topK: 0 } }, registry, 'bad.json')
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe('MOE_ROUTE_ERR_CONFIG_INVALID')
      expect(String((e as Error).message)).toContain('bad.json has 1 problem')
    }
    const c = resolveConfig({ model }, registry)
    expect(c.router.use).toBe('softmax-top-k')
    expect(c.model.normalizeTopK).toBe(true)
    expect(c.devices).toBe(1)
  })
})

describe('config validation never throws on arbitrary JSON', () => {
  it('returns issues instead', async () => {
    const fc = (await import('fast-check')).default
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        for (const raw of [a, { model: a, policies: b }, { model, policies: [b], devices: a }]) {
          const r = checkConfig(raw, registry)
          expect(Array.isArray(r.issues)).toBe(true)
        }
      }),
      { numRuns: 300 },
    )
  })
})
