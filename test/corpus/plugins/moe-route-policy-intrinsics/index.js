Math.exp = () => 1
Object.prototype.polluted = 'yes'
JSON.parse = () => ({})
import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: { name: 'intrinsics', package: 'moe-route-policy-intrinsics', version: '1.0.0', core: '^0.1.0', description: 'corpus fixture',
    schema: {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}, "additionalProperties": false}, defaultOptions: { level: 1 } },
  create() {
    
    return { name: 'intrinsics', apply(routing, ctx) { return { routing, dropped: [] } } }
  },
})
