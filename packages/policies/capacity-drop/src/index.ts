/**
 * @moe-route/policy-capacity-drop — deprecated: the `capacity-drop` policy is now part of
 * `@moe-route/policy-capacity`. Import `{ capacityDrop }` from `@moe-route/policy-capacity` (or
 * everything this package exported from `@moe-route/policy-capacity/capacity-drop`); this package only
 * re-exports that subpath, for one minor version.
 * @deprecated Use `@moe-route/policy-capacity` (subpath `@moe-route/policy-capacity/capacity-drop`).
 * @packageDocumentation
 */
import { capacityDrop } from '@moe-route/policy-capacity/capacity-drop'

export * from '@moe-route/policy-capacity/capacity-drop'
// the plugin itself, not the module namespace, as the default export under require() too
export default capacityDrop
