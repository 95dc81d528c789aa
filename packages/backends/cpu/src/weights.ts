/**
 * Seeded random layer weights and hidden states now live in `@moe-route/core/testing` (beside
 * `randomLogits`; `@moe-route/workloads` exports them with the other synthetic inputs); these
 * aliases stay for one minor version.
 */
import { randomHidden as hidden, randomLayerWeights as weights, type RandomWeightsOptions as Options } from '@moe-route/core/testing'

/** @deprecated import `randomLayerWeights` from `@moe-route/workloads` or `@moe-route/core/testing`; removed in the next minor version. */
export const randomLayerWeights = weights
/** @deprecated import `randomHidden` from `@moe-route/workloads` or `@moe-route/core/testing`; removed in the next minor version. */
export const randomHidden = hidden
/** @deprecated import `RandomWeightsOptions` from `@moe-route/workloads`; removed in the next minor version. */
export type RandomWeightsOptions = Options
