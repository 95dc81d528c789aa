/**
 * Seeded random layer weights and hidden states now live in @moe-route/workloads (synthetic
 * data has one home); these aliases stay for one minor version.
 */
import { randomHidden as hidden, randomLayerWeights as weights, type RandomWeightsOptions as Options } from '@moe-route/workloads/synthetic'

/** @deprecated import `randomLayerWeights` from `@moe-route/workloads` (`@moe-route/workloads/synthetic` in a browser); removed in the next minor version. */
export const randomLayerWeights = weights
/** @deprecated import `randomHidden` from `@moe-route/workloads` (`@moe-route/workloads/synthetic` in a browser); removed in the next minor version. */
export const randomHidden = hidden
/** @deprecated import `RandomWeightsOptions` from `@moe-route/workloads`; removed in the next minor version. */
export type RandomWeightsOptions = Options
