/**
 * @moe-route/policy-spare-capacity-reroute — deprecated: the `spare-capacity-reroute` policy is now part of
 * `@moe-route/policy-capacity`. Import `{ spareCapacityReroute }` from `@moe-route/policy-capacity` (or
 * everything this package exported from `@moe-route/policy-capacity/spare-capacity-reroute`); this package only
 * re-exports that subpath, for one minor version.
 * @deprecated Use `@moe-route/policy-capacity` (subpath `@moe-route/policy-capacity/spare-capacity-reroute`).
 * @packageDocumentation
 */
import { spareCapacityReroute } from '@moe-route/policy-capacity/spare-capacity-reroute'

export * from '@moe-route/policy-capacity/spare-capacity-reroute'
// the plugin itself, not the module namespace, as the default export under require() too
export default spareCapacityReroute
