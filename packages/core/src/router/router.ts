import type { DeviceStage, LoweringContext } from '../device/lowering.js'
import { defineToken } from '../tokens.js'
import type { Routing } from '../types.js'

/** What a router receives: one batch's gate output. Exactly one of logits/scores is set. */
export interface RouterInput {
  readonly tokens: number
  readonly experts: number
  /** tokens × experts logits. */
  readonly logits?: Float32Array
  /** tokens × experts probabilities (already softmaxed). */
  readonly scores?: Float32Array
  readonly sourceDevice?: Int32Array
  readonly decode?: boolean
}

/** Chooses k experts per token and their weights. */
export interface Router {
  readonly name: string
  route(input: RouterInput): Routing
  /** The router's GPU lowering (a WGSL stage over {@link ROUTER_PRELUDE}), if it has one. */
  lower?(context: LoweringContext): DeviceStage | null
}
export const Router = defineToken<Router>('Router')
