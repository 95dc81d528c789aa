/**
 * @moe-route/policy-expert-drop — deprecated: the `expert-drop` policy is now part of
 * `@moe-route/policy-capacity`. Import `{ expertDrop }` from `@moe-route/policy-capacity` (or
 * everything this package exported from `@moe-route/policy-capacity/expert-drop`); this package only
 * re-exports that subpath, for one minor version.
 * @deprecated Use `@moe-route/policy-capacity` (subpath `@moe-route/policy-capacity/expert-drop`).
 * @packageDocumentation
 */
import { expertDrop } from '@moe-route/policy-capacity/expert-drop'

export * from '@moe-route/policy-capacity/expert-drop'
// the plugin itself, not the module namespace, as the default export under require() too
export default expertDrop
