import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'returns-null', package: 'moe-route-policy-returns-null', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    
    return { name: 'returns-null', apply(routing, ctx) { return null } }
  },
})
