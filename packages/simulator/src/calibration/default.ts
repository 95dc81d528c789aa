/**
 * The shipped cost-model calibrations (same content as the JSON files next to this file; a
 * test keeps them equal). Written by scripts/calibrate.mjs from GPU benchmark runs.
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
  "flops": 425400000000000,
  "callOverheadMs": 0.4982,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 1.0242431640625,
      "predictedMs": 0.741
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 1.1587488174438476,
      "predictedMs": 1.349
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 1.2149951934814454,
      "predictedMs": 1.47
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 1.3063859939575195,
      "predictedMs": 1.47
    },
    {
      "tokens": 512,
      "activeExperts": 8,
      "ms": 2.000296115875244,
      "predictedMs": 1.47
    },
    {
      "tokens": 2048,
      "activeExperts": 8,
      "ms": 4.151285489400228,
      "predictedMs": 3.891
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 6.933855692545573,
      "predictedMs": 7.283
    }
  ]
}

/** H100, moe-route's WebGPU layer (Dawn, f16 weights). */
export const H100_WEBGPU: Calibration = {
  "format": "moe-route.cost-model/v1",
  "device": "nvidia / NVIDIA: 580.159.04 580.159.4.0 (NVIDIA H100 80GB HBM3), moe-route WebGPU layer (Dawn, f16 weights)",
  "provenance": "MEASURED by moe-route's bench/webgpu-layer.bench.ts on 2026-11-22 (bench/results/webgpu-layer.json): fused layer, no drop, Mixtral-8x7B shape; weight bandwidth = the read bandwidth measured in the same run (3.05 TB/s), flops and callOverheadMs fitted.",
  "shape": {
    "hidden": 4096,
    "intermediate": 14336,
    "topK": 2
  },
  "bytesPerWeight": 2,
  "weightBandwidth": 3048574053349.63,
  "flops": 17680000000000,
  "callOverheadMs": 0.9138,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 0.9160611000006611,
      "predictedMs": 1.145
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 4.085222400000203,
      "predictedMs": 1.723
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 3.0745621499998377,
      "predictedMs": 2.189
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 9.850918937499955,
      "predictedMs": 6.015
    },
    {
      "tokens": 512,
      "activeExperts": 8,
      "ms": 21.890753499999846,
      "predictedMs": 21.32
    },
    {
      "tokens": 2048,
      "activeExperts": 8,
      "ms": 70.85624833333229,
      "predictedMs": 82.538
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 144.77093266666634,
      "predictedMs": 164.161
    }
  ]
}

/** H200, transformers grouped_mm (bf16). */
export const H200_HF_GROUPED_MM: Calibration = {
  "format": "moe-route.cost-model/v1",
  "device": "NVIDIA H200, Hugging Face transformers 5.17.0 MixtralSparseMoeBlock, PyTorch 2.11.0+cu130 bf16, grouped_mm",
  "provenance": "MEASURED by moe-route's bench/peer_mixtral.py on 2026-12-01 (bench/results/peer-mixtral.json): Mixtral-8x7B shape, every weight normal(0, 0.02), CUDA-event ms per call; weight bandwidth 4.34 TB/s (the read bandwidth measured in the same run), flops and callOverheadMs fitted by least squares on relative error.",
  "shape": {
    "hidden": 4096,
    "intermediate": 14336,
    "topK": 2
  },
  "bytesPerWeight": 2,
  "weightBandwidth": 4336355788367.2817,
  "flops": 467700000000000,
  "callOverheadMs": 0.7927,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 1.2336688041687012,
      "predictedMs": 0.955
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 1.2799967765808105,
      "predictedMs": 1.361
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 1.26692476272583,
      "predictedMs": 1.443
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 1.2848559617996216,
      "predictedMs": 1.443
    },
    {
      "tokens": 512,
      "activeExperts": 8,
      "ms": 1.8471839427947998,
      "predictedMs": 1.564
    },
    {
      "tokens": 2048,
      "activeExperts": 8,
      "ms": 3.8487466176350913,
      "predictedMs": 3.878
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 6.570144017537435,
      "predictedMs": 6.964
    }
  ]
}

/** H200, moe-route's WebGPU layer (Dawn, int8 W8A8). */
export const H200_WEBGPU_INT8: Calibration = {
  "format": "moe-route.cost-model/v1",
  "device": "nvidia / NVIDIA: 580.159.04 580.159.4.0 (NVIDIA H200), moe-route WebGPU layer (Dawn, int8 W8A8: GEMV / subgroup-matrix kernels)",
  "provenance": "MEASURED by moe-route's bench/webgpu-layer.bench.ts on 2026-12-01 (bench/results/webgpu-layer.json): fused layer, no drop, int8 weights quantized per channel on the GPU, Mixtral-8x7B shape; weight bandwidth = the read bandwidth measured in the same run (4.34 TB/s), one byte per weight (scales ignored), flops (int8 ops) and callOverheadMs fitted.",
  "shape": {
    "hidden": 4096,
    "intermediate": 14336,
    "topK": 2
  },
  "bytesPerWeight": 1,
  "weightBandwidth": 4336355788367.2817,
  "flops": 56720000000000,
  "callOverheadMs": 0.234,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 0.25657540000029255,
      "predictedMs": 0.315
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 0.883422900000005,
      "predictedMs": 0.518
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 0.9606807999996818,
      "predictedMs": 0.632
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 2.381234000000404,
      "predictedMs": 1.824
    },
    {
      "tokens": 512,
      "activeExperts": 8,
      "ms": 5.707128999998531,
      "predictedMs": 6.595
    },
    {
      "tokens": 2048,
      "activeExperts": 8,
      "ms": 24.234325666664517,
      "predictedMs": 25.677
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 48.453647333333116,
      "predictedMs": 51.119
    }
  ]
}

/** H200, moe-route's WebGPU layer (Dawn, f16 weights). */
export const H200_WEBGPU: Calibration = {
  "format": "moe-route.cost-model/v1",
  "device": "nvidia / NVIDIA: 580.159.04 580.159.4.0 (NVIDIA H200), moe-route WebGPU layer (Dawn, f16 weights)",
  "provenance": "MEASURED by moe-route's bench/webgpu-layer.bench.ts on 2026-12-01 (bench/results/webgpu-layer.json): fused layer, no drop, Mixtral-8x7B shape; weight bandwidth = the read bandwidth measured in the same run (4.34 TB/s), flops and callOverheadMs fitted.",
  "shape": {
    "hidden": 4096,
    "intermediate": 14336,
    "topK": 2
  },
  "bytesPerWeight": 2,
  "weightBandwidth": 4336355788367.2817,
  "flops": 16080000000000,
  "callOverheadMs": 0.1688,
  "points": [
    {
      "tokens": 1,
      "activeExperts": 2,
      "ms": 0.2875617499994405,
      "predictedMs": 0.331
    },
    {
      "tokens": 8,
      "activeExperts": 7,
      "ms": 1.472505149999779,
      "predictedMs": 0.738
    },
    {
      "tokens": 32,
      "activeExperts": 8,
      "ms": 4.325882450000063,
      "predictedMs": 1.571
    },
    {
      "tokens": 128,
      "activeExperts": 8,
      "ms": 12.412271937500009,
      "predictedMs": 5.778
    },
    {
      "tokens": 512,
      "activeExperts": 8,
      "ms": 25.295787749997544,
      "predictedMs": 22.605
    },
    {
      "tokens": 2048,
      "activeExperts": 8,
      "ms": 78.92366433333275,
      "predictedMs": 89.914
    },
    {
      "tokens": 4096,
      "activeExperts": 8,
      "ms": 138.51361100000213,
      "predictedMs": 179.66
    }
  ]
}
