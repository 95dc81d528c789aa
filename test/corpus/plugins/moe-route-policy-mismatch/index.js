import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'mismatch', package: 'moe-route-policy-mismatch', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 }, device: ['wgsl'] },
  create() {
    
    return { name: 'mismatch', apply(routing, ctx) { return { routing, dropped: [] } } }
  },
})
