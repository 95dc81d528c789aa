/** @moe-route/cli — the `moe-route` command line, also usable as a library. */
export { main, defaultContext } from './main.js'
export type { CliContext } from './context.js'
export { runJob, renderRun, type RunReport } from './commands/run.js'
export { routeDocument, toRouteOutput, type RouteInput, type RouteOutput } from './commands/route.js'
export { DEFAULT_CONFIG } from './default-config.js'
export { builtinPlugins, builtinRegistry } from './builtins.js'
export { compareReports, renderCompare, DEFAULT_NORM_RTOL, type CompareResult, type CompareCheck, type CompareTolerance } from './commands/compare.js'
