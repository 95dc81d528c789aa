/** Types of embed.mjs (for its test and for TypeScript hosts copying it). */
import type { DispatchPlan, MoeEngine } from '@moe-route/core'
export declare function createLayerRouter(o: { experts: number; topK: number; hidden: number; devices: number; capacityFactor: number }): MoeEngine
export declare function executePlan(plan: DispatchPlan, x: Float32Array, hidden: number, expert: (expert: number, row: Float32Array) => Float32Array): Float32Array
export declare const toyExpert: (e: number, row: Float32Array) => Float32Array
export declare function hostLogits(tokens: number, experts: number, seed: number): Float32Array
