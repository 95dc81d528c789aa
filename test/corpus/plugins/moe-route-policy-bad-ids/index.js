import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'bad-ids', package: 'moe-route-policy-bad-ids', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    
    return { name: 'bad-ids', apply(routing, ctx) { return { routing: { ...routing, expertIds: routing.expertIds.map(() => 1e6) }, dropped: [] } } }
  },
})
