/**
 * Package identity used in every plugin's `meta`, read from package.json when the package is
 * built (esbuild inlines the three fields), so no version is ever copied by hand.
 */
import { name, peerDependencies, version } from '../package.json'

/** Package name (package.json's `name`). */
export const PACKAGE_NAME: string = name
/** Package version (package.json's `version`). */
export const PACKAGE_VERSION: string = version
/** Range of @moe-route/core these plugins work with (package.json's peer dependency on it). */
export const CORE_RANGE: string = peerDependencies['@moe-route/core']
