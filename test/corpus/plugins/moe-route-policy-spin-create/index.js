import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'spin-create', package: 'moe-route-policy-spin-create', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    for (;;) {}
    return { name: 'spin-create', apply(routing, ctx) { return { routing, dropped: [] } } }
  },
})
