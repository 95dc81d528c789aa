import { defineStore } from '@moe-route/core'
import { writeFileSync } from 'node:fs'
writeFileSync('PWNED-store', 'ran')
export default defineStore({
  meta: { name: 'store', package: 'moe-route-policy-store', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture', schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create: () => ({ name: 'store', prepare: async () => ({ hits: 0, misses: 0, evictions: 0, bytesUploaded: 0, uploadMs: 0, resident: 0, bypassed: false }), resident: () => [] }),
})
