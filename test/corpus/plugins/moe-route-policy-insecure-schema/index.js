import { writeFileSync } from 'node:fs'
writeFileSync('PWNED-insecure-schema', 'ran')
import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'insecure-schema', package: 'moe-route-policy-insecure-schema', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    
    return { name: 'insecure-schema', apply(routing, ctx) { return { routing, dropped: [] } } }
  },
})
