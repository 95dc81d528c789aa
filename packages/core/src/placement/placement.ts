import { defineToken } from '../tokens.js'

/**
 * Which device hosts which expert. `replicas[e]` lists the devices holding expert e (the
 * first is its primary); with replication a hot expert's tokens are split between replicas.
 */
export interface PlacementMap {
  readonly devices: number
  readonly experts: number
  readonly replicas: readonly (readonly number[])[]
  /** Name of the strategy that produced it. */
  readonly strategy: string
}

/** History a placement may learn from. */
export interface PlacementInput {
  readonly experts: number
  readonly devices: number
  /** Per-batch expert loads (batches × experts pair counts). */
  readonly history?: readonly (readonly number[])[]
  /** experts × experts co-activation counts (ordered pairs, diagonal ignored). */
  readonly coactivation?: readonly (readonly number[])[]
}

/** Decides where experts live. */
export interface Placement {
  readonly name: string
  place(input: PlacementInput): PlacementMap
}
export const Placement = defineToken<Placement>('Placement')

/** The placement in force for a container (a value, computed once at start-up). */
export const PlacementMap = defineToken<PlacementMap>('PlacementMap')
