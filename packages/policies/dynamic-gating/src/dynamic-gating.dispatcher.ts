/** The `dynamic-gating` dispatcher plugin: dynamic (exact-size) or static (padded) gating. */
import { defineDispatcher, type DispatchContext, type Dispatcher, type Routing } from '@moe-route/core'
import { dynamicDispatch } from './dynamic-dispatch.js'
import { dynamicGatingGrouping } from './dynamic-gating.grouping.js'
import { defaultOptions, schema, type DynamicGatingOptions } from './dynamic-gating.schema.js'
import type { DynamicGatingPlan } from './plan.js'
import { staticDispatch } from './static-dispatch.js'

/** npm name of this package (equals package.json `name`). */
export const PACKAGE_NAME = '@moe-route/policy-dynamic-gating'
/** Version of this package (equals package.json `version`). */
export const PACKAGE_VERSION = '0.1.0'

/** A dispatcher whose plans carry this package's exchange and memory fields. */
export interface DynamicGatingDispatcher extends Dispatcher {
  readonly name: 'dynamic-gating'
  /** The options in force (defaults merged). */
  readonly options: Readonly<DynamicGatingOptions>
  dispatch(routing: Routing, ctx: DispatchContext): DynamicGatingPlan
}

/**
 * Creates the dispatcher directly, without a registry (defaults merged under `options`;
 * the registry path validates options against {@link schema} first).
 * @example
 * const d = createDynamicGating({ mode: 'static', capacityFraction: 0.05 })
 * const plan = d.dispatch(routing, { placement, bytesPerToken: 1024 * 2 })
 */
export function createDynamicGating(options: Partial<DynamicGatingOptions> = {}): DynamicGatingDispatcher {
  const o: DynamicGatingOptions = { ...defaultOptions, ...options }
  return {
    name: 'dynamic-gating',
    options: o,
    dispatch(routing, ctx) {
      if (o.mode === 'dynamic') return dynamicDispatch(routing, ctx, { tokenCopies: o.tokenCopies, countBytes: o.countBytes })
      return staticDispatch(routing, ctx, {
        capacityFactor: o.capacityFactor,
        capacityFraction: o.capacityFraction,
        capacityRule: o.capacityRule,
        priority: o.priority,
        policyName: 'dynamic-gating',
      })
    },
    lower: (ctx) => dynamicGatingGrouping(o, ctx),
  }
}

/**
 * The `dynamic-gating` dispatcher plugin. Register it and select it in a config with
 * `dispatcher: { use: 'dynamic-gating', options: { mode: 'static', capacityFraction: 0.05 } }`.
 * @example
 * import dynamicGating from '@moe-route/policy-dynamic-gating'
 * const engine = createMoe({ plugins: [dynamicGating], config: { model, dispatcher: { use: 'dynamic-gating' } } })
 */
export const dynamicGating = defineDispatcher<DynamicGatingOptions>({
  meta: {
    name: 'dynamic-gating',
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: '^0.1.0',
    description: 'Dynamic gating (exact-size groups, two-step exchange) or the static-gating baseline (capacity padding)',
    schema,
    defaultOptions,
    device: ['grouping'],
    docs: { url: 'https://github.com/moe-route/moe-route/tree/main/packages/policies/dynamic-gating#readme' },
  },
  create: (options) => createDynamicGating(options),
})

export default dynamicGating
