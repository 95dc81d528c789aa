/** Conformance test suite for moe-route plugins (vitest and node:test). */
export {}
