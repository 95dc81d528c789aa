import { version } from '../package.json'

/**
 * Version of @moe-route/core, checked against each plugin's `meta.core` range. Read from
 * package.json when the package is built (esbuild inlines the field), never copied by hand.
 */
export const CORE_VERSION: string = version
