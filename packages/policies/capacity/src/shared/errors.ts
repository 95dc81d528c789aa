/** Error codes of the capacity-aware policies and the checks every policy runs on its input. */
import { ErrorCodes, MoeError, type MoeErrorCode, type Routing } from '@moe-route/core'

/** Codes thrown by the capacity-aware policy packages (stable, part of the public API). */
export const PolicyErrorCodes = {
  /**
   * `expanded-drop` with `candidates: 'local'` needs to know which experts are local to a
   * token: a placement over more than one device, or an explicit `localExperts` option.
   */
  PLACEMENT_REQUIRED: 'MOE_ROUTE_ERR_POLICY_PLACEMENT_REQUIRED',
  /** `localExperts` names an expert outside 0..E−1, or has no entry for a token's device. */
  LOCAL_EXPERTS_INVALID: 'MOE_ROUTE_ERR_POLICY_LOCAL_EXPERTS_INVALID',
} as const satisfies Record<string, MoeErrorCode>

/**
 * Checks what every capacity policy relies on: `topK ≤ experts`, `slots ≥ 1` when there are
 * tokens, and source devices that are non-negative integers. Throws a `MoeError` (core) whose
 * `details.plugin` names the policy.
 */
export function checkRouting(routing: Routing, policy: string): void {
  if (routing.topK > routing.experts) {
    throw new MoeError(ErrorCodes.TOPK_EXCEEDS_EXPERTS, `${policy}: topK ${routing.topK} exceeds experts ${routing.experts}`, {
      plugin: policy,
      hook: 'apply',
    })
  }
  if (routing.topK < 1 && routing.tokens > 0) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${policy}: topK must be at least 1, got ${routing.topK}`, { plugin: policy, hook: 'apply' })
  }
  const src = routing.sourceDevice
  if (src) {
    for (let t = 0; t < src.length; t++) {
      if (src[t] < 0) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `${policy}: sourceDevice of token ${t} is ${src[t]}, expected ≥ 0`, {
          plugin: policy,
          hook: 'apply',
          record: t,
        })
      }
    }
  }
}
