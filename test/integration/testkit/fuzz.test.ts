/**
 * Fuzzing in CI: random stacks of every first-party policy, with random valid options (every
 * γ > 0), over generated routings, for a bounded time (FUZZ_SECONDS, default 20). Every step
 * must keep the outcome invariants, kept pairs must weigh > 0 and the capacity policies must
 * report the documented capacity. `npm run fuzz` runs the same for minutes.
 */
import { createRegistry, isPlugin, type Plugin } from '@moe-route/core'
import * as c2r from '@moe-route/policy-c2r'
import * as capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import * as deviceCapacity from '@moe-route/policy-capacity/device-capacity'
import * as expandedDrop from '@moe-route/policy-capacity/expanded-drop'
import * as expertDrop from '@moe-route/policy-capacity/expert-drop'
import * as reroute from '@moe-route/policy-capacity/reroute'
import * as spareCapacityReroute from '@moe-route/policy-capacity/spare-capacity-reroute'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { documentedCapacity, runStackCase, stackCase } from '@moe-route/testkit'

const policies = [c2r, capacityDrop, deviceCapacity, expandedDrop, expertDrop, reroute, spareCapacityReroute].flatMap((m) =>
  [...new Set(Object.values(m))].filter((v): v is Plugin<'policy'> => isPlugin(v) && v.kind === 'policy'),
)
const byName = new Map(policies.map((p) => [p.meta.name, p]))
const registry = createRegistry(policies)
const seconds = Number(process.env.FUZZ_SECONDS ?? 20)

describe('fuzzing policy stacks', () => {
  it('the documented capacity: C ≥ 1 for every γ > 0 with ceil, float noise snapped', () => {
    expect(documentedCapacity(1e-300, 2, 8, 8)).toBe(1)
    expect(documentedCapacity(Number.MIN_VALUE, 1, 1, 64)).toBe(1)
    expect(documentedCapacity(1.5, 2, 512, 8)).toBe(192)
    expect(documentedCapacity(1.1, 2, 10, 22)).toBe(1)
    expect(documentedCapacity(1e-300, 2, 8, 8, 'floor')).toBe(0)
    expect(documentedCapacity(2, 2, 0, 8)).toBe(0)
  })

  it(`random stacks of ${policies.length} policies keep every invariant (${seconds} s)`, () => {
    let cases = 0
    fc.assert(
      fc.property(stackCase({ plugins: policies }), (c) => {
        cases++
        const { violations } = runStackCase(c, byName, registry)
        if (violations.length > 0) throw new Error(violations.slice(0, 5).map((v) => `${v.policy} [${v.kind}]: ${v.message}`).join('\n'))
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false },
    )
    expect(cases).toBeGreaterThan(100)
  }, (seconds + 60) * 1000)
})
