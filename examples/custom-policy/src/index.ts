/**
 * moe-route-policy-entropy-drop — a moe-route policy that, under a per-expert capacity,
 * drops the pairs of the tokens the router is least sure about first.
 * @packageDocumentation
 */
export { entropyDropPolicy as default, entropyDropPolicy, entropyDrop, POLICY_NAME } from './entropy-drop.policy.js'
export { defaultOptions, schema, type EntropyDropOptions } from './entropy-drop.schema.js'
export { tokenEntropy } from './entropy.js'
