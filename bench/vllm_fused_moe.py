# SPDX-License-Identifier: Apache-2.0
#
# A standalone port of vLLM's Triton fused-MoE layer (bf16, no quantization, no expert
# parallelism), so that bench/peer_mixtral.py can time vLLM's kernel on a host without the vllm
# package (nothing here needs vllm's compiled _C extension).
#
# Ported from vLLM (https://github.com/vllm-project/vllm), Apache License 2.0, copyright the
# vLLM contributors; main at 91a893de64722019ea2faf852e06cabe143b3490 (2026-08-20):
#   vllm/model_executor/layers/fused_moe/fused_moe.py
#     - fused_moe_kernel: the bf16 path, kept line for line (the fp8/int8/int4 scales, bias,
#       SWAP_AB, tensor-descriptor and expert-map branches are dropped: unused for bf16 weights
#       on one GPU)
#     - invoke_fused_moe_triton_kernel: grid, the small-batch EM bound, strides
#     - _prepare_expert_assignment: the naive one-block-per-(token, slot) path when
#       num_tokens * top_k * 4 <= num_experts
#     - fused_experts_impl: GEMM1 (w13) -> SiLU-and-mul -> GEMM2 (w2, routed weights applied in
#       fp32 inside the kernel) -> sum over top-k, with vLLM's buffer shapes
#   vllm/model_executor/layers/fused_moe/moe_align_block_size.py: moe_align_block_size's
#     contract (sorted_token_ids padded with numel, expert_ids per block, num_tokens_post_padded,
#     max_num_tokens_padded = numel + E * (block_size - 1), capped at numel * block_size when
#     numel < E)
#   csrc/libtorch_stable/moe/moe_align_sum_kernels.cu (moe_align_block_size, moe_sum) and
#   csrc/moe/topk_softmax_kernels.cu (topk_softmax): CUDA kernels of vLLM's _C extension,
#     re-implemented here in Triton (the align in one program for small batches and three
#     programs otherwise, vLLM using one or two kernels; ranks within an expert are in token
#     order, where vLLM's atomics give an arbitrary order: the output is the same), and
#     silu_and_mul and moe_sum likewise (Triton; torch.sum).
# Router (what vLLM's Mixtral/OLMoE layers do before fused_experts): gate GEMM in bf16
# (F.linear), softmax in fp32, top-k, renormalisation of the top-k weights for Mixtral only.
#
# Importable without triton (and without a GPU): the torch reference pieces, the emulation of
# the kernel's indexing on CPU, and the launcher logic are tested by bench/test_vllm_moe.py.
"""Standalone port of vLLM's Triton fused-MoE kernel and its launcher (bf16)."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

try:  # the GPU host has triton; the CPU tests do not need it
    import triton
    import triton.language as tl

    HAVE_TRITON = True
    TRITON_IMPORT_ERROR = None
except Exception as _e:  # noqa: BLE001 - any import failure means "no triton here"
    triton = None
    tl = None
    HAVE_TRITON = False
    TRITON_IMPORT_ERROR = f"{type(_e).__name__}: {_e}"


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def max_num_tokens_padded(numel: int, num_experts: int, block_size: int) -> int:
    """Length of sorted_token_ids (vLLM's moe_align_block_size)."""
    m = numel + num_experts * (block_size - 1)
    if numel < num_experts:
        m = min(numel * block_size, m)
    return m


def use_naive_block_assignment(num_tokens: int, top_k: int, num_experts: int) -> bool:
    """vLLM's _prepare_expert_assignment: skip the alignment for very sparse batches."""
    return num_tokens * top_k * 4 <= num_experts


# ----------------------------------------------------------------------------------------------
# torch reference pieces (graph-capturable: no host synchronisation). Used as the oracle of the
# tests, as the fallback when a Triton helper fails its check on the GPU, and by the CPU tests.
# ----------------------------------------------------------------------------------------------


def moe_align_block_size_torch(topk_ids: torch.Tensor, block_size: int, num_experts: int):
    """(sorted_token_ids int32 [max_padded], expert_ids int32 [max_blocks], num_tokens_post_pad
    int32 [1]) with vLLM's semantics; within an expert, token-slots in index order; expert_ids past
    the last used block are 0 (never read: the GEMM returns early past num_tokens_post_pad)."""
    flat = topk_ids.reshape(-1).to(torch.int64)
    numel = flat.numel()
    dev = flat.device
    max_padded = max_num_tokens_padded(numel, num_experts, block_size)
    max_blocks = cdiv(max_padded, block_size)
    counts = torch.zeros(num_experts, dtype=torch.int64, device=dev).scatter_add_(0, flat, torch.ones_like(flat))
    nblk = (counts + (block_size - 1)) // block_size
    cum_blk = torch.cumsum(nblk, 0)
    start_tok = (cum_blk - nblk) * block_size
    first_of_expert = torch.cumsum(counts, 0) - counts
    sorted_e, order = torch.sort(flat, stable=True)
    rank = torch.arange(numel, device=dev) - first_of_expert[sorted_e]
    dest = start_tok[sorted_e] + rank
    sorted_ids = torch.full((max_padded,), numel, dtype=torch.int32, device=dev)
    sorted_ids.scatter_(0, dest, order.to(torch.int32))
    blocks = torch.arange(max_blocks, device=dev)
    total_blk = cum_blk[-1:]
    expert_ids = (blocks[:, None] >= cum_blk[None, :]).sum(1)
    expert_ids = torch.where(blocks < total_blk, expert_ids, torch.zeros_like(expert_ids)).to(torch.int32)
    num_tokens_post_pad = (total_blk * block_size).to(torch.int32)
    return sorted_ids, expert_ids, num_tokens_post_pad


def fused_topk_torch(gating_output: torch.Tensor, top_k: int, renormalize: bool):
    """Softmax in fp32, top-k (ties to the lower expert index), optional renormalisation.
    Returns (weights fp32 [T, k], ids int32 [T, k])."""
    probs = torch.softmax(gating_output.float(), dim=-1)
    sp, si = torch.sort(probs, dim=-1, descending=True, stable=True)
    weights = sp[:, :top_k].contiguous()
    ids = si[:, :top_k].to(torch.int32).contiguous()
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def silu_and_mul_torch(out: torch.Tensor, x: torch.Tensor) -> None:
    d = x.size(-1) // 2
    xf = x.float()
    out.copy_((F.silu(xf[..., :d]) * xf[..., d:]).to(out.dtype))


def emulate_fused_moe_kernel(A, B, C, topk_weights, sorted_token_ids, expert_ids, num_tokens_post_padded,
                             mul_routed_weight: bool, top_k: int, config: dict, naive: bool, EM: int) -> int:
    """CPU emulation of fused_moe_kernel's program grid and indexing (the same arithmetic as the
    Triton code below, one program at a time), for the tests. Asserts that every program id maps
    to a distinct (pid_m, pid_n) tile and that every unmasked load is in bounds. Returns the number
    of programs that did work."""
    BM, BN, BK, GM = (config[k] for k in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M"))
    N, K = B.size(1), B.size(2)
    num_valid_tokens = A.size(0) * top_k
    num_pid_m = cdiv(EM, BM)
    num_pid_n = cdiv(N, BN)
    grid = num_pid_m * num_pid_n
    ntpp = int(num_tokens_post_padded.reshape(-1)[0])
    c2d = C.view(-1, C.size(-1))
    tiles = set()
    worked = 0
    for pid in range(grid):
        num_pid_in_group = GM * num_pid_n
        group_id = pid // num_pid_in_group
        first_pid_m = group_id * GM
        group_size_m = min(num_pid_m - first_pid_m, GM)
        pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
        pid_n = (pid % num_pid_in_group) // group_size_m
        assert (pid_m, pid_n) not in tiles, f"tile {(pid_m, pid_n)} computed twice"
        assert 0 <= pid_m < num_pid_m and 0 <= pid_n < num_pid_n
        tiles.add((pid_m, pid_n))
        if pid_m * BM >= ntpp:
            continue
        offs = torch.arange(BM, dtype=torch.int64)
        if not naive:
            assert pid_m * BM + BM <= sorted_token_ids.numel(), "sorted_token_ids read out of bounds"
            offs_token = sorted_token_ids[pid_m * BM + offs].to(torch.int64)
        else:
            offs_token = torch.where(offs == 0, torch.tensor(pid_m), torch.tensor(num_valid_tokens))
        token_mask = offs_token < num_valid_tokens
        assert pid_m < expert_ids.numel(), "expert_ids read out of bounds"
        e = int(expert_ids[pid_m])
        assert 0 <= e < B.size(0), f"expert id {e} out of range"
        offs_bn = (pid_n * BN + torch.arange(BN)) % N
        rows = offs_token[token_mask]
        a = A[rows // top_k].float()  # [m, K]
        b = B[e][offs_bn].float()  # [BN, K]
        acc = torch.zeros(rows.numel(), BN, dtype=torch.float32)
        for k0 in range(0, K, BK):  # K loop, fp32 accumulation
            acc += a[:, k0:k0 + BK] @ b[:, k0:k0 + BK].t()
        if mul_routed_weight:
            acc *= topk_weights.reshape(-1)[rows].float()[:, None]
        cols = pid_n * BN + torch.arange(BN)
        cmask = cols < N
        block = acc[:, cmask].to(C.dtype)
        c2d[rows[:, None], cols[cmask][None, :]] = block
        worked += 1
    assert len(tiles) == grid
    return worked


# ----------------------------------------------------------------------------------------------
# Triton kernels
# ----------------------------------------------------------------------------------------------

if HAVE_TRITON:

    def _jit_no_spec(*names):
        """triton.jit that does not specialise the named int arguments (they change with the
        batch size and are only compared against, so one compiled kernel serves every T)."""
        def deco(fn):
            try:
                return triton.jit(do_not_specialize=list(names))(fn)
            except TypeError:  # a triton without do_not_specialize: specialise, still correct
                return triton.jit(fn)
        return deco

    @_jit_no_spec("EM", "num_valid_tokens")
    def fused_moe_kernel(
        # Pointers to matrices
        a_ptr,
        b_ptr,
        c_ptr,
        topk_weights_ptr,
        sorted_token_ids_ptr,
        expert_ids_ptr,
        num_tokens_post_padded_ptr,
        # Matrix dimensions
        N,
        K,
        EM,
        num_valid_tokens,
        # Strides
        stride_am,
        stride_ak,
        stride_be,
        stride_bk,
        stride_bn,
        stride_cm,
        stride_cn,
        naive_block_assignment: tl.constexpr,
        # Meta-parameters
        BLOCK_SIZE_M: tl.constexpr,
        BLOCK_SIZE_N: tl.constexpr,
        BLOCK_SIZE_K: tl.constexpr,
        GROUP_SIZE_M: tl.constexpr,
        MUL_ROUTED_WEIGHT: tl.constexpr,
        top_k: tl.constexpr,
        compute_type: tl.constexpr,
    ):
        """vLLM's fused_moe_kernel, bf16 path: C[token-slot] = A[token-slot // top_k] @ B[e].T
        for the tiles of sorted_token_ids (one expert per BLOCK_SIZE_M rows), optionally times the
        routed weight (in fp32, before the cast)."""
        # Map program ids `pid` to the block of C it should compute, in grouped ordering.
        pid = tl.program_id(axis=0)
        num_pid_m = tl.cdiv(EM, BLOCK_SIZE_M)
        num_pid_n = tl.cdiv(N, BLOCK_SIZE_N)
        num_pid_in_group = GROUP_SIZE_M * num_pid_n
        group_id = pid // num_pid_in_group
        first_pid_m = group_id * GROUP_SIZE_M
        group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
        pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
        pid_n = (pid % num_pid_in_group) // group_size_m

        offs = tl.arange(0, BLOCK_SIZE_M).to(tl.int64)
        num_tokens_post_padded = tl.load(num_tokens_post_padded_ptr)
        if pid_m * BLOCK_SIZE_M >= num_tokens_post_padded:
            return
        if not naive_block_assignment:
            offs_token_id = pid_m * BLOCK_SIZE_M + offs
            offs_token = tl.load(sorted_token_ids_ptr + offs_token_id)
        else:
            offs_token = tl.where(
                offs == 0,
                pid_m,  # first element = pid_m
                num_valid_tokens,  # remaining elements = constant
            )
        # int64 so that stride * offset cannot overflow
        offs_token = offs_token.to(tl.int64)
        token_mask = offs_token < num_valid_tokens

        off_experts = tl.load(expert_ids_ptr + pid_m).to(tl.int64)

        offs_bn = (pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N).to(tl.int64)) % N
        offs_k = tl.arange(0, BLOCK_SIZE_K)
        a_ptrs = a_ptr + (offs_token[:, None] // top_k * stride_am + offs_k[None, :] * stride_ak)
        b_ptrs = b_ptr + off_experts * stride_be + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)

        # Accumulate a [BLOCK_SIZE_M, BLOCK_SIZE_N] block of fp32 values.
        accumulator = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
        for k in range(0, tl.cdiv(K, BLOCK_SIZE_K)):
            a = tl.load(
                a_ptrs,
                mask=token_mask[:, None] & (offs_k[None, :] < K - k * BLOCK_SIZE_K),
                other=0.0,
            )
            b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_SIZE_K, other=0.0)
            accumulator += tl.dot(a, b)
            a_ptrs += BLOCK_SIZE_K * stride_ak
            b_ptrs += BLOCK_SIZE_K * stride_bk

        # Router weight, in fp32 before the cast (as vLLM).
        if MUL_ROUTED_WEIGHT:
            moe_weight = tl.load(topk_weights_ptr + offs_token, mask=token_mask, other=0)
            accumulator *= moe_weight[:, None]

        accumulator = accumulator.to(compute_type)

        offs_cn = pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
        c_ptrs = c_ptr + stride_cm * offs_token[:, None] + stride_cn * offs_cn[None, :]
        c_mask = token_mask[:, None] & (offs_cn[None, :] < N)
        tl.store(c_ptrs, accumulator, mask=c_mask)

    @triton.jit
    def _topk_softmax_kernel(
        logits_ptr, weights_ptr, ids_ptr, num_tokens, num_experts, stride_l,
        TOP_K: tl.constexpr, K_PAD: tl.constexpr, RENORMALIZE: tl.constexpr,
        E_PAD: tl.constexpr, BLOCK_T: tl.constexpr,
    ):
        """Per token: softmax over the experts in fp32, the top-k (ties to the lower index),
        optionally renormalised; weights fp32, ids int32 (vLLM's topk_softmax + renormalize)."""
        pid = tl.program_id(0)
        rows = pid * BLOCK_T + tl.arange(0, BLOCK_T)
        cols = tl.arange(0, E_PAD)
        rmask = rows < num_tokens
        cmask = cols < num_experts
        x = tl.load(
            logits_ptr + rows[:, None].to(tl.int64) * stride_l + cols[None, :],
            mask=rmask[:, None] & cmask[None, :],
            other=0.0,
        ).to(tl.float32)
        x = tl.where(cmask[None, :], x, float("-inf"))
        m = tl.max(x, axis=1)
        p = tl.exp(x - m[:, None])
        s = tl.sum(p, axis=1)
        p = p / s[:, None]
        kcols = tl.arange(0, K_PAD)
        w_acc = tl.zeros([BLOCK_T, K_PAD], dtype=tl.float32)
        i_acc = tl.zeros([BLOCK_T, K_PAD], dtype=tl.int32)
        for j in tl.static_range(TOP_K):
            best = tl.max(p, axis=1)
            idx = tl.min(tl.where(p == best[:, None], cols[None, :], E_PAD), axis=1)
            w_acc = tl.where(kcols[None, :] == j, best[:, None], w_acc)
            i_acc = tl.where(kcols[None, :] == j, idx[:, None], i_acc)
            p = tl.where(cols[None, :] == idx[:, None], -1.0, p)
        if RENORMALIZE:
            total = tl.sum(w_acc, axis=1)  # the padding columns hold 0
            w_acc = w_acc / total[:, None]
        omask = rmask[:, None] & (kcols[None, :] < TOP_K)
        optrs = rows[:, None].to(tl.int64) * TOP_K + kcols[None, :]
        tl.store(weights_ptr + optrs, w_acc, mask=omask)
        tl.store(ids_ptr + optrs, i_acc, mask=omask)

    @triton.jit
    def _align_small_kernel(
        topk_ids_ptr, sorted_ids_ptr, expert_ids_ptr, ntpp_ptr,
        numel, num_experts, max_padded, max_blocks,
        E_PAD: tl.constexpr, BLOCK: tl.constexpr, BLOCK_SIZE_M: tl.constexpr, CHUNK: tl.constexpr,
    ):
        """moe_align_block_size in one program (numel <= BLOCK), like vLLM's small-batch kernel."""
        offs = tl.arange(0, BLOCK)
        valid = offs < numel
        ids = tl.load(topk_ids_ptr + offs, mask=valid, other=-1).to(tl.int32)
        e = tl.arange(0, E_PAD)
        oh = (ids[:, None] == e[None, :]).to(tl.int32)
        cnt = tl.sum(oh, axis=0)
        nblk = (cnt + BLOCK_SIZE_M - 1) // BLOCK_SIZE_M
        cum_blk = tl.cumsum(nblk, axis=0)
        start_tok = (cum_blk - nblk) * BLOCK_SIZE_M
        total_blk = tl.sum(nblk, axis=0)
        tl.store(ntpp_ptr, total_blk * BLOCK_SIZE_M)
        rank = tl.sum(tl.cumsum(oh, axis=0) * oh, axis=1) - 1
        pos = tl.sum(oh * start_tok[None, :], axis=1) + rank
        emask = e < num_experts
        for b0 in range(0, max_blocks, CHUNK):
            b = b0 + tl.arange(0, CHUNK)
            ge = ((b[:, None] >= cum_blk[None, :]) & emask[None, :]).to(tl.int32)
            eid = tl.where(b < total_blk, tl.sum(ge, axis=1), 0)
            tl.store(expert_ids_ptr + b, eid, mask=b < max_blocks)
        for s0 in range(0, max_padded, CHUNK):
            s = s0 + tl.arange(0, CHUNK)
            tl.store(sorted_ids_ptr + s, tl.zeros([CHUNK], dtype=tl.int32) + numel, mask=s < max_padded)
        tl.debug_barrier()  # the padding fill above before the scatter below (same addresses)
        tl.store(sorted_ids_ptr + pos, offs, mask=valid)

    @triton.jit
    def _align_count_fill_kernel(
        topk_ids_ptr, partial_ptr, sorted_ids_ptr, numel, max_padded, num_count_programs,
        E_PAD: tl.constexpr, BLOCK: tl.constexpr,
    ):
        """Stage 1 of 3: fill sorted_token_ids with numel; per-program expert counts."""
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        tl.store(sorted_ids_ptr + offs, tl.zeros([BLOCK], dtype=tl.int32) + numel, mask=offs < max_padded)
        valid = offs < numel
        ids = tl.load(topk_ids_ptr + offs, mask=valid, other=-1).to(tl.int32)
        e = tl.arange(0, E_PAD)
        oh = (ids[:, None] == e[None, :]).to(tl.int32)
        cnt = tl.sum(oh, axis=0)
        tl.store(partial_ptr + pid * E_PAD + e, cnt, mask=(e < E_PAD) & (pid < num_count_programs))

    @triton.jit
    def _align_scan_kernel(
        partial_ptr, offsets_ptr, expert_ids_ptr, ntpp_ptr,
        num_experts, num_count_programs, max_blocks,
        E_PAD: tl.constexpr, P_PAD: tl.constexpr, BLOCK_SIZE_M: tl.constexpr, CHUNK: tl.constexpr,
    ):
        """Stage 2 of 3 (one program): padded per-expert starts, each program's write offsets,
        num_tokens_post_padded and expert_ids."""
        p = tl.arange(0, P_PAD)
        e = tl.arange(0, E_PAD)
        pmask = (p[:, None] < num_count_programs) & (e[None, :] < E_PAD)
        part = tl.load(partial_ptr + p[:, None] * E_PAD + e[None, :], mask=pmask, other=0)
        cnt = tl.sum(part, axis=0)
        nblk = (cnt + BLOCK_SIZE_M - 1) // BLOCK_SIZE_M
        cum_blk = tl.cumsum(nblk, axis=0)
        start_tok = (cum_blk - nblk) * BLOCK_SIZE_M
        total_blk = tl.sum(nblk, axis=0)
        tl.store(ntpp_ptr, total_blk * BLOCK_SIZE_M)
        excl = tl.cumsum(part, axis=0) - part
        tl.store(offsets_ptr + p[:, None] * E_PAD + e[None, :], start_tok[None, :] + excl, mask=pmask)
        emask = e < num_experts
        for b0 in range(0, max_blocks, CHUNK):
            b = b0 + tl.arange(0, CHUNK)
            ge = ((b[:, None] >= cum_blk[None, :]) & emask[None, :]).to(tl.int32)
            eid = tl.where(b < total_blk, tl.sum(ge, axis=1), 0)
            tl.store(expert_ids_ptr + b, eid, mask=b < max_blocks)

    @triton.jit
    def _align_scatter_kernel(
        topk_ids_ptr, offsets_ptr, sorted_ids_ptr, numel,
        E_PAD: tl.constexpr, BLOCK: tl.constexpr,
    ):
        """Stage 3 of 3: each token-slot to its place (token order within an expert)."""
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        valid = offs < numel
        ids = tl.load(topk_ids_ptr + offs, mask=valid, other=-1).to(tl.int32)
        e = tl.arange(0, E_PAD)
        oh = (ids[:, None] == e[None, :]).to(tl.int32)
        rank = tl.sum(tl.cumsum(oh, axis=0) * oh, axis=1) - 1
        base = tl.load(offsets_ptr + pid * E_PAD + e)
        pos = tl.sum(oh * base[None, :], axis=1) + rank
        tl.store(sorted_ids_ptr + pos, offs, mask=valid)

    @triton.jit
    def _silu_and_mul_kernel(x_ptr, out_ptr, d, stride_x, stride_o, BLOCK: tl.constexpr):
        """out[r, :] = silu(x[r, :d]) * x[r, d:], computed in fp32 (vLLM's silu_and_mul)."""
        row = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = cols < d
        g = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
        u = tl.load(x_ptr + row * stride_x + d + cols, mask=mask, other=0.0).to(tl.float32)
        y = g / (1.0 + tl.exp(-g)) * u
        tl.store(out_ptr + row * stride_o + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def _require_triton() -> None:
    if not HAVE_TRITON:
        raise RuntimeError(f"triton is not importable here ({TRITON_IMPORT_ERROR})")


def _compute_type(dtype: torch.dtype):
    if dtype == torch.bfloat16:
        return tl.bfloat16
    if dtype == torch.float16:
        return tl.float16
    if dtype == torch.float32:
        return tl.float32
    raise ValueError(f"unsupported dtype {dtype}")


def _align_block(E_PAD: int) -> int:
    """Token-slots per program in the align kernels: keep BLOCK x E_PAD at 8192 elements."""
    return max(128, min(1024, 8192 // E_PAD))


class TritonOps:
    """The kernels above behind the launcher's four operations."""

    name = "triton"

    def __init__(self) -> None:
        _require_triton()

    def topk(self, gating_output: torch.Tensor, top_k: int, renormalize: bool):
        T, E = gating_output.shape
        weights = torch.empty((T, top_k), dtype=torch.float32, device=gating_output.device)
        ids = torch.empty((T, top_k), dtype=torch.int32, device=gating_output.device)
        BLOCK_T = 16
        _topk_softmax_kernel[(cdiv(T, BLOCK_T),)](
            gating_output, weights, ids, T, E, gating_output.stride(0),
            TOP_K=top_k, K_PAD=next_power_of_2(top_k), RENORMALIZE=bool(renormalize),
            E_PAD=max(2, next_power_of_2(E)), BLOCK_T=BLOCK_T, num_warps=4,
        )
        return weights, ids

    def align(self, topk_ids: torch.Tensor, block_size: int, num_experts: int):
        numel = topk_ids.numel()
        dev = topk_ids.device
        E_PAD = max(2, next_power_of_2(num_experts))
        max_padded = max_num_tokens_padded(numel, num_experts, block_size)
        max_blocks = cdiv(max_padded, block_size)
        sorted_ids = torch.empty((max_padded,), dtype=torch.int32, device=dev)
        expert_ids = torch.empty((max_blocks,), dtype=torch.int32, device=dev)
        ntpp = torch.empty((1,), dtype=torch.int32, device=dev)
        small_block = max(16, next_power_of_2(numel))
        if numel <= 1024 and small_block * E_PAD <= 16384:  # vLLM: one kernel when numel < 1024, E <= 64
            _align_small_kernel[(1,)](
                topk_ids, sorted_ids, expert_ids, ntpp, numel, num_experts, max_padded, max_blocks,
                E_PAD=E_PAD, BLOCK=small_block, BLOCK_SIZE_M=block_size, CHUNK=256,
                num_warps=8 if small_block * E_PAD > 4096 else 4,
            )
            return sorted_ids, expert_ids, ntpp
        BLOCK = _align_block(E_PAD)
        P = cdiv(numel, BLOCK)
        P_PAD = max(2, next_power_of_2(P))
        if P_PAD * E_PAD > 65536:
            raise ValueError(f"align: {numel} token-slots x {num_experts} experts is past this port's scan size")
        partial = torch.empty((P, E_PAD), dtype=torch.int32, device=dev)
        offsets = torch.empty((P, E_PAD), dtype=torch.int32, device=dev)
        _align_count_fill_kernel[(cdiv(max_padded, BLOCK),)](
            topk_ids, partial, sorted_ids, numel, max_padded, P, E_PAD=E_PAD, BLOCK=BLOCK, num_warps=4,
        )
        _align_scan_kernel[(1,)](
            partial, offsets, expert_ids, ntpp, num_experts, P, max_blocks,
            E_PAD=E_PAD, P_PAD=P_PAD, BLOCK_SIZE_M=block_size, CHUNK=256, num_warps=8,
        )
        _align_scatter_kernel[(P,)](topk_ids, offsets, sorted_ids, numel, E_PAD=E_PAD, BLOCK=BLOCK, num_warps=4)
        return sorted_ids, expert_ids, ntpp

    def silu_and_mul(self, out: torch.Tensor, x: torch.Tensor) -> None:
        rows, n2 = x.shape
        d = n2 // 2
        BLOCK = 1024
        _silu_and_mul_kernel[(rows, cdiv(d, BLOCK))](x, out, d, x.stride(0), out.stride(0), BLOCK=BLOCK, num_warps=4)

    def gemm(self, A, B, C, topk_weights, sorted_token_ids, expert_ids, num_tokens_post_padded,
             mul_routed_weight: bool, top_k: int, config: dict, naive: bool, EM: int) -> None:
        BM, BN = config["BLOCK_SIZE_M"], config["BLOCK_SIZE_N"]
        grid = (cdiv(EM, BM) * cdiv(B.size(1), BN),)
        fused_moe_kernel[grid](
            A,
            B,
            C,
            topk_weights,
            # naive: never read (a constexpr branch); any int32 tensor keeps the signature fixed
            expert_ids if sorted_token_ids is None else sorted_token_ids,
            expert_ids,
            num_tokens_post_padded,
            B.size(1),
            B.size(2),
            EM,
            A.size(0) * top_k,
            A.stride(0),
            A.stride(1),
            B.stride(0),
            B.stride(2),
            B.stride(1),
            C.stride(1),
            C.stride(2),
            naive_block_assignment=bool(naive),
            BLOCK_SIZE_M=BM,
            BLOCK_SIZE_N=BN,
            BLOCK_SIZE_K=config["BLOCK_SIZE_K"],
            GROUP_SIZE_M=config["GROUP_SIZE_M"],
            MUL_ROUTED_WEIGHT=bool(mul_routed_weight),
            top_k=int(top_k),
            compute_type=_compute_type(C.dtype),
            num_warps=config["num_warps"],
            num_stages=config["num_stages"],
        )


class TorchOps:
    """The torch reference pieces behind the same interface; gemm is the CPU emulation of the
    Triton kernel (tests only)."""

    name = "torch"

    def topk(self, gating_output, top_k, renormalize):
        return fused_topk_torch(gating_output, top_k, renormalize)

    def align(self, topk_ids, block_size, num_experts):
        return moe_align_block_size_torch(topk_ids, block_size, num_experts)

    def silu_and_mul(self, out, x):
        silu_and_mul_torch(out, x)

    def gemm(self, A, B, C, topk_weights, sorted_token_ids, expert_ids, num_tokens_post_padded,
             mul_routed_weight, top_k, config, naive, EM):
        emulate_fused_moe_kernel(A, B, C, topk_weights, sorted_token_ids, expert_ids, num_tokens_post_padded,
                                 mul_routed_weight, top_k, config, naive, EM)


class MixedOps:
    """Per-operation choice (Triton where it passed its check, torch where it did not); gemm is
    always the Triton kernel: it is the peer being measured."""

    def __init__(self, triton_ops: TritonOps, use_triton: dict[str, bool]) -> None:
        self._t = triton_ops
        self._r = TorchOps()
        self.use_triton = dict(use_triton)
        self.name = "+".join(f"{k}:{'triton' if v else 'torch'}" for k, v in sorted(self.use_triton.items()))

    def topk(self, *a):
        return (self._t if self.use_triton.get("topk", True) else self._r).topk(*a)

    def align(self, *a):
        return (self._t if self.use_triton.get("align", True) else self._r).align(*a)

    def silu_and_mul(self, *a):
        return (self._t if self.use_triton.get("silu_and_mul", True) else self._r).silu_and_mul(*a)

    def gemm(self, *a):
        return self._t.gemm(*a)


# ----------------------------------------------------------------------------------------------
# Launcher (vLLM's fused_experts_impl / invoke_fused_moe_triton_kernel), shared by both ops
# ----------------------------------------------------------------------------------------------


def gemm_em(A_rows: int, top_k: int, config: dict, sorted_token_ids: torch.Tensor | None) -> int:
    """vLLM's EM: rows of the padded problem the grid covers (small-batch bound included)."""
    if sorted_token_ids is None:
        return A_rows * top_k * config["BLOCK_SIZE_M"]
    EM = sorted_token_ids.size(0)
    if A_rows < config["BLOCK_SIZE_M"]:
        # vLLM: "optimize for small batch_size" (top ids of a token are distinct, so at most
        # A_rows * top_k blocks hold tokens)
        EM = min(sorted_token_ids.size(0), A_rows * top_k * config["BLOCK_SIZE_M"])
    return EM


def fused_experts(hidden_states: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor,
                  topk_weights: torch.Tensor, topk_ids: torch.Tensor, config: dict, ops) -> torch.Tensor:
    """out[t] = sum_j topk_weights[t, j] * w2[e] @ silu_and_mul(w13[e] @ x[t]), e = topk_ids[t, j];
    w13 [E, 2I, H] (gate rows first, then up), w2 [E, H, I]."""
    assert hidden_states.dim() == 2 and hidden_states.is_contiguous(), "hidden_states must be [T, H] contiguous"
    assert w13.stride(-1) == 1 and w2.stride(-1) == 1, "weights need a unit last stride"
    assert hidden_states.size(1) == w13.size(2), f"hidden size {hidden_states.size(1)} != w13 {tuple(w13.shape)}"
    assert topk_weights.shape == topk_ids.shape and topk_weights.stride(1) == 1
    M = hidden_states.size(0)
    E, N, _ = w13.shape
    K = w2.size(1)
    top_k = topk_ids.size(1)
    dev, dtype = hidden_states.device, hidden_states.dtype
    BM = config["BLOCK_SIZE_M"]
    naive = use_naive_block_assignment(M, top_k, E)
    if naive:
        sorted_ids = None
        expert_ids = topk_ids.view(-1)
        ntpp = torch.full((1,), topk_ids.numel() * BM, dtype=torch.int32, device=dev)
    else:
        sorted_ids, expert_ids, ntpp = ops.align(topk_ids, BM, E)
    cache1 = torch.empty((M, top_k, N), dtype=dtype, device=dev)
    cache2 = torch.empty((M * top_k, N // 2), dtype=dtype, device=dev)
    cache3 = torch.empty((M, top_k, K), dtype=dtype, device=dev)
    ops.gemm(hidden_states, w13, cache1, topk_weights, sorted_ids, expert_ids, ntpp,
             False, top_k, config, naive, gemm_em(M, top_k, config, sorted_ids))
    ops.silu_and_mul(cache2, cache1.view(-1, N))
    ops.gemm(cache2, w2, cache3, topk_weights, sorted_ids, expert_ids, ntpp,
             True, 1, config, naive, gemm_em(M * top_k, 1, config, sorted_ids))
    out = torch.empty_like(hidden_states)
    torch.sum(cache3, dim=1, out=out)  # vLLM's moe_sum
    return out


class FusedMoELayer:
    """Router + fused experts, the whole MoE layer as vLLM runs it for Mixtral / OLMoE.

    gate_w [E, H], w13 [E, 2I, H] (gate then up), w2 [E, H, I], all the same dtype on one device.
    `config_for(M)` gives the tile config for a batch of M tokens (set per benchmark row)."""

    def __init__(self, gate_w: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor, top_k: int,
                 renormalize: bool, config_for: Callable[[int], dict], ops) -> None:
        E, N2, H = w13.shape
        if gate_w.shape != (E, H) or w2.shape != (E, H, N2 // 2) or N2 % 2:
            raise ValueError(f"shapes: gate {tuple(gate_w.shape)}, w13 {tuple(w13.shape)}, w2 {tuple(w2.shape)}")
        if not 1 <= top_k <= E:
            raise ValueError(f"top_k {top_k} with {E} experts")
        self.gate_w, self.w13, self.w2 = gate_w, w13, w2
        self.top_k, self.renormalize = top_k, bool(renormalize)
        self.config_for = config_for
        self.ops = ops

    def route(self, x: torch.Tensor):
        logits = F.linear(x, self.gate_w)
        return self.ops.topk(logits, self.top_k, self.renormalize)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        topk_weights, topk_ids = self.route(x)
        return fused_experts(x, self.w13, self.w2, topk_weights, topk_ids, self.config_for(x.size(0)), self.ops)


def check_helpers(ops: TritonOps, x: torch.Tensor, gate_w: torch.Tensor, top_k: int, renormalize: bool,
                  block_sizes: list[int]) -> dict[str, Any]:
    """Runs the Triton helpers (topk, align, silu_and_mul) on this batch and compares them with the
    torch reference pieces: {name: True | 'reason'}. The caller falls back to torch for a helper
    that is not True (and reports it)."""
    result: dict[str, Any] = {}
    logits = F.linear(x, gate_w)
    ref_w, ref_ids = fused_topk_torch(logits, top_k, renormalize)
    try:
        w, ids = ops.topk(logits, top_k, renormalize)
        torch.cuda.synchronize()
        differ = (ids.long() != ref_ids.long()).any(1)
        # a swap between two experts whose probabilities agree to rounding is a numerical tie
        # (exp implementations differ in the last bits), not an error
        near_tie = torch.isclose(w, ref_w, rtol=1e-5, atol=1e-7).all(1)
        if bool((differ & ~near_tie).any()):
            result["topk"] = f"ids differ on {int((differ & ~near_tie).sum())} of {ids.size(0)} tokens"
        elif not torch.allclose(w, ref_w, rtol=1e-5, atol=1e-6):
            result["topk"] = f"weights differ (max abs {float((w - ref_w).abs().max()):.2e})"
        else:
            result["topk"] = True
    except Exception as e:  # noqa: BLE001
        result["topk"] = f"{type(e).__name__}: {str(e)[:300]}"
    E = gate_w.size(0)
    if not use_naive_block_assignment(x.size(0), top_k, E):
        result["align"] = True
        for bs in sorted(set(block_sizes)):
            try:
                got = ops.align(ref_ids, bs, E)
                want = moe_align_block_size_torch(ref_ids, bs, E)
                torch.cuda.synchronize()
                names = ("sorted_token_ids", "expert_ids", "num_tokens_post_padded")
                bad = [n for n, g, r in zip(names, got, want) if not torch.equal(g, r)]
                if bad:
                    result["align"] = f"block {bs}: {', '.join(bad)} differ from the torch reference"
                    break
            except Exception as e:  # noqa: BLE001
                result["align"] = f"block {bs}: {type(e).__name__}: {str(e)[:300]}"
                break
    try:
        h = torch.randn(max(1, x.size(0)) * top_k, 2 * 96 + 2 * 1024, device=x.device).to(x.dtype)
        out = torch.empty(h.size(0), h.size(1) // 2, device=x.device, dtype=x.dtype)
        ref = torch.empty_like(out)
        ops.silu_and_mul(out, h)
        silu_and_mul_torch(ref, h)
        torch.cuda.synchronize()
        diff = float((out.float() - ref.float()).abs().max())
        scale = float(ref.float().abs().max()) or 1.0
        result["silu_and_mul"] = True if diff <= 2e-2 * scale else f"max abs diff {diff:.3e} (scale {scale:.3e})"
    except Exception as e:  # noqa: BLE001
        result["silu_and_mul"] = f"{type(e).__name__}: {str(e)[:300]}"
    return result


def dense_reference(x: torch.Tensor, gate_w: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor, top_k: int,
                    renormalize: bool, topk_weights: torch.Tensor | None = None,
                    topk_ids: torch.Tensor | None = None) -> torch.Tensor:
    """fp32 MoE layer (for small tests): router as fused_topk_torch unless weights/ids given."""
    if topk_ids is None:
        topk_weights, topk_ids = fused_topk_torch(F.linear(x, gate_w), top_k, renormalize)
    xf = x.float()
    I = w2.size(2)
    out = torch.zeros(x.size(0), w2.size(1), dtype=torch.float32, device=x.device)
    for t in range(x.size(0)):
        for j in range(top_k):
            e = int(topk_ids[t, j])
            h = w13[e].float() @ xf[t]
            a = F.silu(h[:I]) * h[I:]
            out[t] += float(topk_weights[t, j]) * (w2[e].float() @ a)
    return out


__all__ = [
    "HAVE_TRITON", "TRITON_IMPORT_ERROR", "FusedMoELayer", "TritonOps", "TorchOps", "MixedOps",
    "fused_experts", "gemm_em", "moe_align_block_size_torch", "fused_topk_torch", "silu_and_mul_torch",
    "emulate_fused_moe_kernel", "use_naive_block_assignment", "max_num_tokens_padded", "check_helpers",
    "dense_reference", "cdiv", "next_power_of_2",
]
