setInterval(() => {}, 1000)
await new Promise(() => {})
import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'hang-timer', package: 'moe-route-policy-hang-timer', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    
    return { name: 'hang-timer', apply(routing, ctx) { return { routing, dropped: [] } } }
  },
})
