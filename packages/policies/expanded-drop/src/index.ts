/**
 * @moe-route/policy-expanded-drop — deprecated: the `expanded-drop` policy is now part of
 * `@moe-route/policy-capacity`. Import `{ expandedDrop }` from `@moe-route/policy-capacity` (or
 * everything this package exported from `@moe-route/policy-capacity/expanded-drop`); this package only
 * re-exports that subpath, for one minor version.
 * @deprecated Use `@moe-route/policy-capacity` (subpath `@moe-route/policy-capacity/expanded-drop`).
 * @packageDocumentation
 */
import { expandedDrop } from '@moe-route/policy-capacity/expanded-drop'

export * from '@moe-route/policy-capacity/expanded-drop'
// the plugin itself, not the module namespace, as the default export under require() too
export default expandedDrop
