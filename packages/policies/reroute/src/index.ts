/**
 * @moe-route/policy-reroute — deprecated: the `reroute` policy is now part of
 * `@moe-route/policy-capacity`. Import `{ reroute }` from `@moe-route/policy-capacity` (or
 * everything this package exported from `@moe-route/policy-capacity/reroute`); this package only
 * re-exports that subpath, for one minor version.
 * @deprecated Use `@moe-route/policy-capacity` (subpath `@moe-route/policy-capacity/reroute`).
 * @packageDocumentation
 */
import { reroute } from '@moe-route/policy-capacity/reroute'

export * from '@moe-route/policy-capacity/reroute'
// the plugin itself, not the module namespace, as the default export under require() too
export default reroute
