import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'throws-42', package: 'moe-route-policy-throws-42', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    
    return { name: 'throws-42', apply(routing, ctx) { throw 42 } }
  },
})
