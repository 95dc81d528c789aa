import { writeFileSync } from 'node:fs'
writeFileSync('PWNED-big-manifest', 'ran')
import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'big-manifest', package: 'moe-route-policy-big-manifest', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    
    return { name: 'big-manifest', apply(routing, ctx) { return { routing, dropped: [] } } }
  },
})
