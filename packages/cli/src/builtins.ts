/**
 * Every first-party plugin, registered into the CLI's registry. Library users import
 * plugins explicitly instead; this list only serves the CLI and config files.
 */
import { createRegistry, type Plugin, type PluginRegistry } from '@moe-route/core'
import cpuBackend from '@moe-route/backend-cpu'
import capacityDrop from '@moe-route/policy-capacity-drop'
import expandedDrop from '@moe-route/policy-expanded-drop'
import reroute from '@moe-route/policy-reroute'
import deviceCapacity from '@moe-route/policy-device-capacity'
import expertDrop from '@moe-route/policy-expert-drop'
import spareCapacityReroute from '@moe-route/policy-spare-capacity-reroute'
import dynamicGating from '@moe-route/policy-dynamic-gating'
import expertBuffer from '@moe-route/policy-expert-buffer'
import { placementPlugins } from '@moe-route/policy-placement'
import { c2rRouter, deviceLimitPolicy } from '@moe-route/policy-c2r'

/** First-party plugins that need nothing beyond Node (the WebGPU backend is added lazily). */
export const builtinPlugins: readonly Plugin[] = [
  cpuBackend,
  capacityDrop,
  expandedDrop,
  reroute,
  deviceCapacity,
  expertDrop,
  spareCapacityReroute,
  deviceLimitPolicy,
  dynamicGating,
  expertBuffer,
  c2rRouter,
  ...placementPlugins,
]

/** A registry with core's and every first-party plugin. */
export function builtinRegistry(extra: readonly Plugin[] = []): PluginRegistry {
  return createRegistry([...builtinPlugins, ...extra])
}
