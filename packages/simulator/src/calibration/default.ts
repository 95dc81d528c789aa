/**
 * The default cost-model calibration (same content as h100-hf-grouped-mm.json next to this
 * file; a test keeps them equal). Its provenance field says how it was obtained: DERIVED from
 * peer measurements, not measured by moe-route.
 */
import type { Calibration } from '../cost-model.js'

/** H100 calibration derived from the Hugging Face grouped_mm peer numbers in DESIGN.md. */
export const H100_HF_GROUPED_MM: Calibration = {
  "format": "moe-route.cost-model/v1",
  "device": "NVIDIA H100 80GB, Hugging Face transformers MixtralSparseMoeBlock, PyTorch bf16, grouped_mm",
  "provenance": "DERIVED, not measured by moe-route: fitted to the peer table in DESIGN.md (\"Peers to measure against\", measured 2026-11-22 on an H100, Mixtral-8x7B shape, weights normal(0, 0.02)). Weight bandwidth fixed at 2.9e12 B/s (the HBM limit measured there with a packed-f16 GEMV); flops and callOverheadMs fitted by least squares on relative error. Small-T points carry per-call overheads the roofline does not model (see predictedMs). Replace with measured moe-route WebGPU kernel times when they exist.",
  "shape": {
    "hidden": 4096,
    "intermediate": 14336,
    "topK": 2
  },
  "bytesPerWeight": 2,
  "weightBandwidth": 2900000000000,
  "flops": 463700000000000,
  "callOverheadMs": 0.456,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 1.07,
      "predictedMs": 0.699
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 1.14,
      "predictedMs": 1.306
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 1.26,
      "predictedMs": 1.428
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 1.28,
      "predictedMs": 1.428
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 6.68,
      "predictedMs": 6.68
    }
  ]
}
