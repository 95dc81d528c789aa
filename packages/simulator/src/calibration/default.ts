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
