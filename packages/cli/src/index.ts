/** The moe-route command line: run, route, validate, workload, trace, cache, simulate, placement, plugins. */
export {}
