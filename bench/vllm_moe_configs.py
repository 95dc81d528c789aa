# SPDX-License-Identifier: Apache-2.0
#
# Tile configurations for the port of vLLM's Triton fused-MoE kernel (vllm_fused_moe.py), and
# vLLM's rules for choosing one. Pure Python (no torch, no triton) so that the selection logic
# can be tested anywhere: python3 bench/test_vllm_moe.py
#
# Ported from vLLM (https://github.com/vllm-project/vllm, Apache License 2.0, copyright the vLLM
# contributors), main at 91a893de64722019ea2faf852e06cabe143b3490 (2026-08-20):
#   vllm/model_executor/layers/fused_moe/fused_moe.py: get_config_file_name (the H200 family
#     rule), get_moe_configs / try_get_optimal_moe_config (the nearest-M rule),
#     get_default_config (the bf16 / fp16 branch, CUDA)
#   vllm/utils/platform_utils.py: get_device_name_as_file_name
#   vllm/model_executor/layers/fused_moe/configs/*.json: the tables below, as tuples
#     (BLOCK_SIZE_M, BLOCK_SIZE_N, BLOCK_SIZE_K, GROUP_SIZE_M, num_warps, num_stages)
# plus one table that upstream vLLM does not ship (see FORK_TABLES).
#
# In vLLM's file names N is the intermediate size per expert (w2.shape[2]): 14336 for
# Mixtral-8x7B at TP1, 1024 for OLMoE-1B-7B; M is the number of tokens in the batch.
# For bf16 weights (no quantization) the file name has no dtype suffix.
"""vLLM fused-MoE tile tables and config selection (pure Python)."""

from __future__ import annotations

import re

VLLM_COMMIT = "91a893de64722019ea2faf852e06cabe143b3490"
CONFIG_DIR = "vllm/model_executor/layers/fused_moe/configs"
CONFIG_KEYS = ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps", "num_stages")

# Tables that upstream vLLM ships for bf16 (dtype=None), keyed by (device file name, E, N).
# The shapes benchmarked here: only E=8,N=14336 on NVIDIA_H200 ships. The others are the same E
# at another N (Mixtral at TP2 is N=7168; Qwen1.5/2-MoE at TP2/TP4/TP8 are N=2560/1280/640), used
# as sweep candidates when the exact table does not ship.
SHIPPED_TABLES: dict[tuple[str, int, int], dict[int, tuple[int, int, int, int, int, int]]] = {
    # E=8,N=14336,device_name=NVIDIA_H200.json (vLLM 71c1e0710, 2025-03-15)
    ("NVIDIA_H200", 8, 14336): {
        1: (16, 128, 128, 16, 4, 5), 2: (32, 64, 128, 1, 4, 5), 4: (16, 64, 64, 1, 4, 5),
        8: (16, 128, 128, 1, 4, 5), 16: (16, 64, 256, 16, 4, 3), 24: (16, 128, 256, 16, 4, 2),
        32: (16, 128, 128, 16, 8, 3), 48: (32, 128, 128, 16, 4, 3), 64: (32, 128, 128, 64, 4, 3),
        96: (32, 128, 128, 64, 4, 3), 128: (64, 128, 128, 1, 8, 4), 256: (128, 256, 64, 1, 8, 4),
        512: (128, 256, 64, 16, 8, 4), 1024: (128, 256, 64, 16, 8, 4),
        1536: (128, 256, 64, 16, 8, 4), 2048: (128, 256, 64, 32, 8, 4),
        3072: (128, 256, 64, 16, 8, 4), 4096: (128, 256, 64, 16, 8, 4),
    },
    # E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json (vLLM 8fe838659, 2024-03-14)
    ("NVIDIA_H100_80GB_HBM3", 8, 7168): {
        1: (16, 64, 128, 64, 4, 4), 2: (16, 128, 128, 32, 8, 4), 4: (16, 32, 256, 16, 4, 4),
        8: (16, 128, 128, 32, 8, 4), 16: (16, 128, 128, 1, 4, 4), 24: (16, 128, 128, 1, 4, 4),
        32: (16, 128, 128, 1, 4, 4), 48: (32, 128, 128, 1, 4, 4), 64: (32, 128, 128, 1, 4, 4),
        96: (32, 128, 128, 64, 4, 4), 128: (64, 128, 128, 1, 4, 4), 256: (64, 128, 128, 64, 4, 4),
        512: (64, 256, 64, 32, 4, 4), 1024: (128, 256, 64, 16, 8, 4),
        1536: (128, 256, 64, 64, 8, 4), 2048: (128, 256, 64, 32, 8, 4),
        3072: (128, 256, 64, 64, 8, 4), 4096: (128, 256, 64, 16, 8, 4),
    },
    # E=8,N=7168,device_name=NVIDIA_H200.json (vLLM 71c1e0710, 2025-03-15)
    ("NVIDIA_H200", 8, 7168): {
        1: (16, 128, 128, 64, 4, 5), 2: (16, 128, 256, 16, 4, 3), 4: (16, 128, 128, 32, 8, 4),
        8: (32, 128, 128, 1, 4, 3), 16: (16, 128, 128, 16, 4, 5), 24: (16, 64, 256, 16, 4, 3),
        32: (16, 128, 128, 1, 4, 5), 48: (32, 128, 128, 1, 4, 5), 64: (32, 128, 128, 1, 4, 4),
        96: (64, 128, 128, 1, 8, 4), 128: (64, 128, 128, 1, 8, 4), 256: (128, 256, 64, 1, 8, 4),
        512: (128, 256, 64, 32, 8, 4), 1024: (128, 256, 64, 64, 8, 4),
        1536: (128, 256, 64, 16, 8, 4), 2048: (128, 256, 64, 16, 8, 4),
        3072: (128, 256, 64, 64, 8, 4), 4096: (128, 256, 64, 16, 8, 3),
    },
    # E=64,N=1280,device_name=NVIDIA_H100_80GB_HBM3.json (vLLM bd4397352, 2024-06-13)
    ("NVIDIA_H100_80GB_HBM3", 64, 1280): {
        1: (16, 256, 128, 16, 4, 3), 2: (16, 64, 128, 16, 4, 4), 4: (16, 64, 256, 16, 4, 3),
        8: (16, 32, 256, 1, 4, 2), 16: (16, 32, 128, 16, 4, 5), 24: (16, 128, 256, 32, 4, 2),
        32: (16, 256, 128, 1, 4, 3), 48: (16, 256, 128, 1, 4, 3), 64: (16, 256, 128, 1, 4, 3),
        96: (32, 256, 128, 1, 4, 3), 128: (32, 128, 128, 1, 4, 3), 256: (64, 64, 64, 1, 4, 3),
        512: (128, 128, 64, 1, 8, 3), 1024: (128, 256, 64, 1, 8, 4), 1536: (128, 256, 64, 1, 8, 4),
        2048: (128, 256, 64, 1, 8, 4), 3072: (128, 256, 64, 32, 8, 4),
        4096: (128, 256, 64, 1, 8, 4),
    },
    # E=64,N=1280,device_name=NVIDIA_H200.json (vLLM 71c1e0710, 2025-03-15)
    ("NVIDIA_H200", 64, 1280): {
        1: (16, 64, 64, 1, 4, 4), 2: (16, 128, 128, 16, 4, 2), 4: (16, 64, 128, 32, 4, 5),
        8: (16, 128, 128, 32, 4, 3), 16: (16, 64, 128, 16, 4, 2), 24: (16, 128, 256, 32, 4, 2),
        32: (16, 128, 128, 1, 4, 4), 48: (16, 128, 128, 32, 8, 3), 64: (16, 128, 128, 1, 8, 3),
        96: (32, 128, 128, 1, 4, 3), 128: (32, 128, 128, 1, 4, 3), 256: (64, 64, 64, 1, 4, 3),
        512: (128, 256, 64, 1, 8, 4), 1024: (128, 256, 64, 1, 8, 4), 1536: (128, 256, 64, 1, 8, 4),
        2048: (128, 256, 64, 1, 8, 4), 3072: (128, 256, 64, 16, 8, 4),
        4096: (128, 256, 64, 16, 8, 4),
    },
    # E=64,N=640,device_name=NVIDIA_H100_80GB_HBM3.json (vLLM bd4397352, 2024-06-13)
    ("NVIDIA_H100_80GB_HBM3", 64, 640): {
        1: (16, 128, 128, 1, 8, 4), 2: (16, 64, 128, 16, 4, 4), 4: (16, 64, 128, 64, 4, 4),
        8: (32, 256, 128, 32, 4, 3), 16: (16, 128, 128, 32, 8, 4), 24: (16, 32, 128, 64, 4, 3),
        32: (16, 64, 128, 16, 4, 2), 48: (16, 128, 128, 1, 4, 2), 64: (16, 64, 128, 1, 4, 3),
        96: (32, 64, 128, 1, 4, 2), 128: (32, 64, 128, 1, 4, 2), 256: (64, 128, 64, 1, 4, 3),
        512: (64, 128, 64, 1, 4, 3), 1024: (128, 256, 64, 1, 8, 4), 1536: (128, 256, 64, 16, 8, 4),
        2048: (128, 256, 64, 1, 8, 4), 3072: (128, 256, 64, 1, 8, 4),
        4096: (128, 256, 64, 16, 8, 4),
    },
    # E=64,N=640,device_name=NVIDIA_H200.json (vLLM 71c1e0710, 2025-03-15)
    ("NVIDIA_H200", 64, 640): {
        1: (16, 128, 128, 32, 4, 5), 2: (16, 64, 64, 1, 4, 4), 4: (64, 128, 64, 32, 4, 3),
        8: (16, 128, 128, 32, 4, 4), 16: (16, 128, 128, 32, 4, 3), 24: (16, 64, 128, 16, 4, 3),
        32: (16, 64, 128, 16, 4, 3), 48: (16, 64, 128, 16, 4, 3), 64: (16, 64, 128, 1, 4, 3),
        96: (16, 64, 128, 32, 4, 2), 128: (64, 128, 64, 1, 4, 3), 256: (64, 128, 64, 1, 4, 3),
        512: (128, 256, 64, 16, 8, 4), 1024: (128, 256, 64, 1, 8, 4),
        1536: (128, 256, 64, 16, 8, 4), 2048: (128, 256, 64, 1, 8, 4),
        3072: (128, 256, 64, 16, 8, 4), 4096: (128, 256, 64, 1, 8, 4),
    },
    # E=64,N=2560,device_name=NVIDIA_H200.json (vLLM 71c1e0710, 2025-03-15)
    ("NVIDIA_H200", 64, 2560): {
        1: (16, 64, 128, 32, 4, 2), 2: (16, 128, 128, 32, 4, 5), 4: (16, 64, 64, 16, 4, 5),
        8: (16, 64, 256, 1, 4, 3), 16: (16, 128, 128, 16, 4, 5), 24: (16, 64, 256, 16, 4, 3),
        32: (16, 64, 128, 1, 4, 5), 48: (16, 128, 256, 1, 4, 2), 64: (16, 128, 128, 1, 8, 3),
        96: (32, 128, 128, 1, 4, 3), 128: (32, 128, 128, 1, 4, 3), 256: (64, 64, 64, 1, 4, 3),
        512: (128, 256, 64, 1, 8, 4), 1024: (128, 256, 64, 16, 8, 4),
        1536: (128, 256, 64, 16, 8, 4), 2048: (128, 256, 64, 1, 8, 4),
        3072: (128, 256, 64, 1, 8, 4), 4096: (128, 256, 64, 16, 8, 4),
    },
}

# A table for the exact Mixtral TP1 shape on the H100 SXM that upstream vLLM does NOT ship (vLLM
# on that GPU falls back to get_default_config): tuned by a vLLM maintainer with vLLM's
# benchmark_moe.py, in the fork zyongye/vllm at 4ca1d9292af452555f8dd2e0a74c00fc31a55817
# (2025-06-07), same path and name. Used only as a sweep candidate, labelled as such.
FORK_TABLES: dict[tuple[str, int, int], dict[int, tuple[int, int, int, int, int, int]]] = {
    ("NVIDIA_H100_80GB_HBM3", 8, 14336): {
        1: (16, 64, 256, 16, 8, 5), 2: (16, 64, 128, 64, 4, 3), 4: (16, 64, 128, 64, 4, 3),
        8: (32, 64, 256, 32, 8, 5), 16: (64, 128, 128, 1, 8, 2), 24: (16, 128, 256, 1, 8, 3),
        32: (32, 128, 128, 1, 8, 4), 48: (32, 128, 128, 1, 8, 4), 64: (64, 128, 128, 1, 8, 4),
        96: (64, 128, 128, 1, 8, 4), 128: (64, 128, 64, 1, 8, 5), 256: (128, 128, 64, 1, 4, 5),
        512: (128, 256, 64, 16, 8, 4), 1024: (128, 256, 64, 64, 8, 4),
        1536: (128, 256, 64, 16, 8, 4), 2048: (128, 256, 64, 64, 8, 4),
        3072: (128, 256, 64, 32, 8, 3), 4096: (128, 256, 64, 16, 8, 3),
    },
}


def device_name_as_file_name(name: str) -> str:
    """torch.cuda.get_device_name() as vLLM spells it in config file names, H200 family mapped
    to NVIDIA_H200 (vLLM's get_device_name_as_file_name + get_config_file_name)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"device name must be a non-empty string, got {name!r}")
    file_name = re.sub(r"[\s/]+", "_", name)
    if "H200" in file_name.split("_"):
        file_name = "NVIDIA_H200"
    return file_name


def config_file_name(E: int, N: int, device_file_name: str) -> str:
    """vLLM's config file name for bf16 weights (no dtype suffix)."""
    return f"E={E},N={N},device_name={device_file_name}.json"


def as_config(entry: tuple[int, int, int, int, int, int]) -> dict[str, int]:
    """A table tuple as the kernel's config dict."""
    if len(entry) != len(CONFIG_KEYS) or not all(isinstance(v, int) and v > 0 for v in entry):
        raise ValueError(f"a tile entry is 6 positive ints {CONFIG_KEYS}, got {entry!r}")
    return dict(zip(CONFIG_KEYS, entry))


def config_key(config: dict[str, int]) -> tuple[int, ...]:
    """The tuple that identifies a config (for de-duplication and reporting)."""
    return tuple(int(config[k]) for k in CONFIG_KEYS)


def nearest_m(table: dict[int, object], M: int) -> int:
    """vLLM's rule: the table key closest to M; on a tie, the first in the table's order (the
    smaller one, the tables being in ascending order)."""
    if not table:
        raise ValueError("empty tile table")
    return min(table.keys(), key=lambda x: abs(x - M))


def get_default_config(M: int, E: int, N: int, K: int, topk: int) -> dict[str, int]:
    """vLLM's get_default_config for bf16/fp16 on CUDA (no quantization, no block shape)."""
    del N, K, topk  # unused by this branch in vLLM too
    if M <= 32:
        block_m = 16
    elif M <= 96:
        block_m = 32
    elif M <= 512:
        block_m = 64
    else:
        block_m = 128
    block_n = 64 if M <= 64 else 128
    block_k = 128 if M <= 64 else 64
    tokens_per_expert = M // max(E, 1)
    group_m = 16 if tokens_per_expert > 128 else 1
    num_warps = 4 if M <= 128 else 8
    num_stages = 4 if M <= 32 else 3
    return {
        "BLOCK_SIZE_M": block_m,
        "BLOCK_SIZE_N": block_n,
        "BLOCK_SIZE_K": block_k,
        "GROUP_SIZE_M": group_m,
        "num_warps": num_warps,
        "num_stages": num_stages,
    }


def shipped_table(device_file_name: str, E: int, N: int):
    """The table vLLM ships for this device and shape, or None."""
    return SHIPPED_TABLES.get((device_file_name, E, N))


def vllm_config(device_file_name: str, E: int, N: int, K: int, topk: int, M: int) -> tuple[dict[str, int], str]:
    """What vLLM itself would run (try_get_optimal_moe_config): the shipped table's entry
    nearest M, else get_default_config. Returns (config, source)."""
    table = shipped_table(device_file_name, E, N)
    if table is not None:
        m = nearest_m(table, M)
        return as_config(table[m]), f"vllm-shipped {config_file_name(E, N, device_file_name)} [M={m}]"
    return get_default_config(M, E, N, K, topk), "vllm-default (no shipped table for this GPU and shape)"


def sweep_candidates(device_file_name: str, E: int, N: int, K: int, topk: int, M: int,
                     limit: int | None = None) -> list[tuple[str, dict[str, int]]]:
    """Candidate tiles for a small sweep when vLLM ships no table for this device and shape:
    vLLM's default; the fork-tuned table for the exact shape and device, if any; vLLM's shipped
    tables for the same E on the same device (other N); and, on an H100 or H200, the shipped
    table for the exact shape on the other of the two. The entry nearest M of each, de-duplicated,
    in that order (the first is what vLLM would run)."""
    out: list[tuple[str, dict[str, int]]] = []
    seen: set[tuple[int, ...]] = set()

    def add(label: str, config: dict[str, int]) -> None:
        key = config_key(config)
        if key not in seen:
            seen.add(key)
            out.append((label, config))

    config, source = vllm_config(device_file_name, E, N, K, topk, M)
    add(source, config)
    fork = FORK_TABLES.get((device_file_name, E, N))
    if fork is not None:
        m = nearest_m(fork, M)
        add(f"fork-tuned zyongye/vllm@4ca1d92 {config_file_name(E, N, device_file_name)} [M={m}]", as_config(fork[m]))
    for (dev, e, n), table in sorted(SHIPPED_TABLES.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[0][2])):
        if dev == device_file_name and e == E and n != N:
            m = nearest_m(table, M)
            add(f"vllm-shipped {config_file_name(e, n, dev)} [M={m}] (other N)", as_config(table[m]))
    hopper = ("NVIDIA_H100_80GB_HBM3", "NVIDIA_H200")
    if device_file_name in hopper:
        for dev in hopper:
            table = SHIPPED_TABLES.get((dev, E, N))
            if dev != device_file_name and table is not None:
                m = nearest_m(table, M)
                add(f"vllm-shipped {config_file_name(E, N, dev)} [M={m}] (other GPU)", as_config(table[m]))
    if limit is not None:
        out = out[: max(1, limit)]
    return out
