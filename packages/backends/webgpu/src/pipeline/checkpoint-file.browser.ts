/**
 * The browser build's checkpoint reader: a page has no file system to open a path on, so a
 * `safetensors` weight source fails with a coded error that says what to use instead.
 */
import { ErrorCodes, MoeError } from '@moe-route/core'
import type * as NodeTwin from './checkpoint-file.js'

/** @throws MOE_ROUTE_ERR_BACKEND_UNAVAILABLE always: reading a checkpoint by path needs Node. */
export const openCheckpoint: typeof NodeTwin.openCheckpoint = async (file) => {
  throw new MoeError(
    ErrorCodes.BACKEND_UNAVAILABLE,
    `cannot read the checkpoint ${file}: loading weights from a safetensors path needs Node's file system, and this is the browser build. ` +
      'In a page use seeded weights (config weights: { seed, std }, generated on the GPU) or pass host LayerWeights to createMoe({ weights })',
    { plugin: 'webgpu', file },
  )
}
