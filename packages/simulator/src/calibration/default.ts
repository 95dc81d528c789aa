/**
 * The shipped cost-model calibrations (same content as the JSON files next to this file; a
 * test keeps them equal). Written by scripts/calibrate-h100.mjs from bench/results.
 */
import type { Calibration } from '../cost-model.js'

/** H100, transformers grouped_mm (bf16): the default cost model. */
export const H100_HF_GROUPED_MM: Calibration = {
  "format": "moe-route.cost-model/v1",
  "device": "NVIDIA H100 80GB HBM3, Hugging Face transformers 5.17.0 MixtralSparseMoeBlock, PyTorch 2.11.0+cu130 bf16, grouped_mm",
  "provenance": "MEASURED by moe-route's bench/peer_mixtral.py on 2026-11-22 (bench/results/peer-mixtral.json): Mixtral-8x7B shape, every weight normal(0, 0.02), CUDA-event ms per call; weight bandwidth fixed at 2.9e12 B/s (H100 HBM3 copy-kernel rate from DESIGN.md), flops and callOverheadMs fitted by least squares on relative error.",
  "shape": {
    "hidden": 4096,
    "intermediate": 14336,
    "topK": 2
  },
  "bytesPerWeight": 2,
  "weightBandwidth": 2900000000000,
  "flops": 427800000000000,
  "callOverheadMs": 0.5069,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 1.0643247604370116,
      "predictedMs": 0.75
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 1.1620304107666015,
      "predictedMs": 1.357
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 1.2234416007995605,
      "predictedMs": 1.479
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 1.3037179708480835,
      "predictedMs": 1.479
    },
    {
      "tokens": 512,
      "activeExperts": 8,
      "ms": 2.022696018218994,
      "predictedMs": 1.479
    },
    {
      "tokens": 2048,
      "activeExperts": 8,
      "ms": 4.1538238525390625,
      "predictedMs": 3.88
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 6.867381413777669,
      "predictedMs": 7.254
    }
  ]
}

/** H100, moe-route's WebGPU layer (Dawn, f16 weights). */
export const H100_WEBGPU: Calibration = {
  "format": "moe-route.cost-model/v1",
  "device": "nvidia / NVIDIA: 580.159.04 580.159.4.0 (NVIDIA H100 80GB HBM3), moe-route WebGPU layer (Dawn, f16 weights)",
  "provenance": "MEASURED by moe-route's bench/webgpu-layer.bench.ts on 2026-11-22 (bench/results/webgpu-layer.json): fused layer, no drop, Mixtral-8x7B shape; weight bandwidth = the measured Dawn copyBufferToBuffer rate (0.84 TB/s), flops and callOverheadMs fitted.",
  "shape": {
    "hidden": 4096,
    "intermediate": 14336,
    "topK": 2
  },
  "bytesPerWeight": 2,
  "weightBandwidth": 842905098172.2067,
  "flops": 17780000000000,
  "callOverheadMs": 0.2076,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 0.9133344500005478,
      "predictedMs": 1.044
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 3.7136775999999374,
      "predictedMs": 3.133
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 5.873660100000416,
      "predictedMs": 3.551
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 9.843696812500639,
      "predictedMs": 5.28
    },
    {
      "tokens": 512,
      "activeExperts": 8,
      "ms": 21.6066287499998,
      "predictedMs": 20.499
    },
    {
      "tokens": 2048,
      "activeExperts": 8,
      "ms": 71.617406,
      "predictedMs": 81.372
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 145.12171466666527,
      "predictedMs": 162.537
    }
  ]
}
