/**
 * @moe-route/policy-device-capacity — deprecated: the `device-capacity` policy is now part of
 * `@moe-route/policy-capacity`. Import `{ deviceCapacity }` from `@moe-route/policy-capacity` (or
 * everything this package exported from `@moe-route/policy-capacity/device-capacity`); this package only
 * re-exports that subpath, for one minor version.
 * @deprecated Use `@moe-route/policy-capacity` (subpath `@moe-route/policy-capacity/device-capacity`).
 * @packageDocumentation
 */
import { deviceCapacity } from '@moe-route/policy-capacity/device-capacity'

export * from '@moe-route/policy-capacity/device-capacity'
// the plugin itself, not the module namespace, as the default export under require() too
export default deviceCapacity
