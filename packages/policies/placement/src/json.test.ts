import { contiguousPlacement, createRegistry } from '@moe-route/core'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { rebalanceExperts } from './eplb.js'
import { placementFromJSON, placementToJSON } from './json.js'
import { PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'
import { placementPlugins } from './plugins.js'
import { placementProtocol } from './protocol.js'

describe('placement JSON', () => {
  it('round-trips replicated placements through the phy2log form', () => {
    const phy = rebalanceExperts([[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86]], { numReplicas: 16, numGroups: 4, numNodes: 2, numGpus: 8 }).phy2log
    const [map] = placementFromJSON({ phy2log: phy }, { gpus: 8 })
    const doc = JSON.parse(JSON.stringify(placementToJSON(map)))
    const [back] = placementFromJSON(doc)
    expect(back.replicas.map((r) => [...r].sort())).toEqual(map.replicas.map((r) => [...r].sort()))
    expect(doc.logcnt[0].reduce((a: number, b: number) => a + b)).toBe(16)
  })

  it('reads a bare phy2log row and rejects uneven devices', () => {
    expect(placementFromJSON([1, 0, 3, 2], { gpus: 2 })[0].replicas).toEqual([[0], [0], [1], [1]])
    expect(() => placementToJSON(contiguousPlacement(5, 2))).toThrow(/equal slots/)
    expect(() => placementFromJSON({ phy2log: [0, 1] })).toThrow(/numGpus/)
    expect(() => placementFromJSON({ phy2log: [0, 0, 1, 3] }, { gpus: 2, experts: 4 })).toThrow(/no slot/)
  })
})

describe('plugins', () => {
  it('register with core and build placements through the registry', () => {
    const registry = createRegistry([...placementPlugins])
    const context = { model: { experts: 8, topK: 2, hidden: 8, intermediate: 8, normalizeTopK: true }, devices: 4, seed: 1 }
    const history = [[100, 90, 1, 1, 1, 1, 1, 1]]
    const greedy = registry.create('placement', 'greedy', {}, context).place({ experts: 8, devices: 4, history })
    expect(greedy.strategy).toBe('greedy')
    const eplb = registry.create('placement', 'eplb', { replicas: 12 }, context).place({ experts: 8, devices: 4, history })
    expect(eplb.replicas[0].length).toBeGreaterThan(1)
    expect(() => registry.create('placement', 'anti-correlation', { rho: 'x' }, context)).toThrow(/rho/)
    expect(() => registry.create('placement', 'greedy', {}, context).place({ experts: 8, devices: 4 })).toThrow(/history/)
  })

  it('carry the package name and version of package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    expect([PACKAGE_NAME, PACKAGE_VERSION]).toEqual([pkg.name, pkg.version])
    for (const p of placementPlugins) expect(p.meta.package).toBe(pkg.name)
  })
})

describe('protocol', () => {
  it('builds on the first half and measures on the second', () => {
    // Expert 0 hot in the first half only: greedy isolates it, which no longer helps later.
    const history = [[90, 1, 1, 1], [90, 1, 1, 1], [1, 1, 50, 50], [1, 1, 50, 50]]
    const registry = createRegistry([...placementPlugins])
    const ctx = { model: { experts: 4, topK: 1, hidden: 1, intermediate: 1, normalizeTopK: false }, devices: 2, seed: 0 }
    const rows = placementProtocol([registry.create('placement', 'contiguous', {}, ctx), registry.create('placement', 'greedy', {}, ctx)], { experts: 4, devices: 2, history })
    expect(rows.map((r) => r.strategy)).toEqual(['contiguous', 'greedy'])
    expect(rows[0]).toMatchObject({ buildBatches: 2, measureBatches: 2 })
    expect(rows[0].maxLoad).toBeCloseTo(100 / 102)
  })
})
