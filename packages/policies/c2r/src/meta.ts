/** Package identity used in every plugin's `meta` (a test keeps it equal to package.json). */
export const PACKAGE_NAME = '@moe-route/policy-c2r'
/** Package version (equals package.json's). */
export const PACKAGE_VERSION = '0.1.0'
/** Range of @moe-route/core these plugins work with. */
export const CORE_RANGE = '^0.1.0'
