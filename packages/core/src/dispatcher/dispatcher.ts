import type { DeviceStage, LoweringContext } from '../device/lowering.js'
import { defineToken } from '../tokens.js'
import type { PlacementMap } from '../placement/placement.js'
import type { DispatchPlan, Routing } from '../types.js'

/** What a dispatcher needs besides the routing. */
export interface DispatchContext {
  readonly placement: PlacementMap
  /** Bytes of one token's hidden vector on the wire (H × bytes per element). */
  readonly bytesPerToken: number
}

/** Turns (token, expert) pairs into expert groups and device traffic. */
export interface Dispatcher {
  readonly name: string
  dispatch(routing: Routing, ctx: DispatchContext): DispatchPlan
  /** The dispatcher's GPU lowering (a grouping descriptor the backend's kernels run), if any. */
  lower?(context: LoweringContext): DeviceStage | null
}
export const Dispatcher = defineToken<Dispatcher>('Dispatcher')
