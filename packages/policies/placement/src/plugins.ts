/**
 * The placement plugins of this package (definePlacement objects for registries and
 * config files). Library users may call the functions directly instead.
 */
import { contiguousPlacementPlugin, definePlacement, ErrorCodes, MoeError, type PlacementInput } from '@moe-route/core'
import { collaborationPlacement } from './collaboration.js'
import { placementFromPhy2log, rebalanceExperts } from './eplb.js'
import { antiCorrelationPlacement, greedyPlacement } from './greedy.js'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'

const meta = { package: PACKAGE_NAME, version: PACKAGE_VERSION, core: CORE_RANGE }

function needHistory(input: PlacementInput, plugin: string) {
  if (!input.history || input.history.length === 0) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `placement '${plugin}' needs a load history (PlacementInput.history)`, { plugin, path: '/history' })
  }
  return input.history
}

/** `greedy`: heaviest expert first onto the least-loaded device with room (Paper B §VII). */
export const greedyPlacementPlugin = definePlacement<Record<string, never>>({
  meta: {
    ...meta,
    name: 'greedy',
    description: 'Greedy from load history: heaviest expert first onto the least-loaded device (Paper B)',
    schema: { type: 'object', properties: {}, additionalProperties: false },
    defaultOptions: {},
  },
  create() {
    return { name: 'greedy', place: (input) => greedyPlacement({ ...input, history: needHistory(input, 'greedy') }) }
  },
})

/** Options of the `anti-correlation` plugin. */
export interface AntiCorrelationOptions {
  /** Weight of the Pearson term (paper: 0.5). */
  rho: number
}

/** `anti-correlation`: greedy with ρ·Pearson correlation added to each device's estimate (Paper B). */
export const antiCorrelationPlacementPlugin = definePlacement<AntiCorrelationOptions>({
  meta: {
    ...meta,
    name: 'anti-correlation',
    description: 'Greedy with a ρ·correlation penalty: co-varying experts on different devices (Paper B)',
    schema: { type: 'object', properties: { rho: { type: 'number' } }, required: ['rho'], additionalProperties: false },
    defaultOptions: { rho: 0.5 },
  },
  create(options) {
    return { name: 'anti-correlation', place: (input) => antiCorrelationPlacement({ ...input, history: needHistory(input, 'anti-correlation'), rho: options.rho }) }
  },
})

/** `collaboration`: co-activated experts on the same device (Occult Algorithm 1, [SECONDARY]). */
export const collaborationPlacementPlugin = definePlacement<Record<string, never>>({
  meta: {
    ...meta,
    name: 'collaboration',
    description: 'Co-activated experts on the same device (Occult Algorithm 1, secondary source)',
    schema: { type: 'object', properties: {}, additionalProperties: false },
    defaultOptions: {},
  },
  create() {
    return {
      name: 'collaboration',
      place(input) {
        if (!input.coactivation) {
          throw new MoeError(ErrorCodes.INPUT_INVALID, "placement 'collaboration' needs a co-activation matrix (PlacementInput.coactivation)", { plugin: 'collaboration', path: '/coactivation' })
        }
        return collaborationPlacement({ experts: input.experts, devices: input.devices, coactivation: input.coactivation })
      },
    }
  },
})

/** Options of the `eplb` plugin. */
export interface EplbPluginOptions {
  /** Physical slots R (multiple of the device count); null = one slot per expert rounded up to a multiple of the devices. */
  replicas: number | null
  groups: number
  nodes: number
}

/**
 * `eplb`: DeepSeek EPLB replicas from the mean load of the history (uniform without one).
 * Tokens of a replicated expert are split between its replicas by consumers (simulator, dispatcher).
 */
export const eplbPlacementPlugin = definePlacement<EplbPluginOptions>({
  meta: {
    ...meta,
    name: 'eplb',
    description: 'DeepSeek EPLB: hot experts replicated, replicas packed onto GPUs (hierarchical or global)',
    schema: {
      type: 'object',
      properties: {
        replicas: { type: ['integer', 'null'], minimum: 1 },
        groups: { type: 'integer', minimum: 1 },
        nodes: { type: 'integer', minimum: 1 },
      },
      required: ['replicas', 'groups', 'nodes'],
      additionalProperties: false,
    },
    defaultOptions: { replicas: null, groups: 1, nodes: 1 },
  },
  create(options) {
    return {
      name: 'eplb',
      place(input) {
        const { experts, devices } = input
        const weight = new Array<number>(experts).fill(1)
        if (input.history && input.history.length > 0) {
          weight.fill(0)
          for (const row of input.history) row.forEach((v, e) => (weight[e] += v))
        }
        const R = options.replicas ?? Math.ceil(experts / devices) * devices
        const r = rebalanceExperts([weight], { numReplicas: R, numGroups: options.groups, numNodes: options.nodes, numGpus: devices })
        return placementFromPhy2log(r.phy2log[0], devices, experts, 'eplb')
      },
    }
  },
})

/** Options of the `phy2log` plugin. */
export interface Phy2logOptions {
  /** Slots GPU-major: the expert each physical slot holds (e.g. one layer of an EPLB output). */
  phy2log: number[]
}

/** `phy2log`: a fixed placement given in the phy2log form (import from a serving engine). */
export const phy2logPlacementPlugin = definePlacement<Phy2logOptions>({
  meta: {
    ...meta,
    name: 'phy2log',
    description: 'A fixed placement given as a phy2log row (slots GPU-major)',
    schema: {
      type: 'object',
      properties: { phy2log: { type: 'array', items: { type: 'integer', minimum: 0 } } },
      required: ['phy2log'],
      additionalProperties: false,
    },
    defaultOptions: { phy2log: [] },
  },
  create(options) {
    if (options.phy2log.length === 0) {
      throw new MoeError(ErrorCodes.PLUGIN_OPTIONS_INVALID, "placement 'phy2log' needs a non-empty phy2log option", { plugin: 'phy2log', path: '/options/phy2log' })
    }
    return { name: 'phy2log', place: ({ experts, devices }) => placementFromPhy2log(options.phy2log, devices, experts, 'phy2log') }
  },
})

/** Core's `contiguous` placement (the default), re-exported so one import brings every strategy. */
export { contiguousPlacementPlugin }

/**
 * Every placement plugin of this package (core's `contiguous` is not listed: core's
 * registry already holds it, and registering it twice is a duplicate).
 */
export const placementPlugins = [
  greedyPlacementPlugin,
  antiCorrelationPlacementPlugin,
  collaborationPlacementPlugin,
  eplbPlacementPlugin,
  phy2logPlacementPlugin,
] as const
