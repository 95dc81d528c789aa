"""Peer baseline for bench/webgpu-layer.bench.ts: Hugging Face transformers' MixtralSparseMoeBlock
(PyTorch, bf16) on the same GPU and shapes, with the eager and grouped_mm experts
implementations where this transformers version offers them.

Every parameter is drawn from normal(0, 0.02) with a fixed seed (a block built on its own
leaves the router in a state that sends every token to the same experts, which makes any
implementation look faster); x ~ normal(0, 1). Reports ms per call (CUDA events over
back-to-back calls after warm-up) and how many experts were active.

Usage: python3 bench/peer_mixtral.py [--out dir] [--quick] [--iters n] [--tokens 1,8]
"""
import argparse
import json
import os
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="bench/results")
parser.add_argument("--quick", action="store_true")
parser.add_argument("--iters", type=int, default=20)
parser.add_argument("--tokens", default="", help="comma-separated T (default 1,8,32,128,512,2048,4096)")
args = parser.parse_args()

import transformers
from transformers import MixtralConfig
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

SHAPES = [
    dict(label="mixtral-8x7b", hidden=4096, intermediate=14336, experts=8, topk=2),
    # OLMoE's shape through the same block (OLMoE does not renormalise top-k; the cost is the same).
    dict(label="olmoe-1b-7b", hidden=2048, intermediate=1024, experts=64, topk=8),
]
TOKENS = [int(t) for t in args.tokens.split(",")] if args.tokens else [1, 32, 512] if args.quick else [1, 8, 32, 128, 512, 2048, 4096]
dev = torch.device("cuda")
dtype = torch.bfloat16


def build(shape, impl):
    cfg = MixtralConfig(
        hidden_size=shape["hidden"],
        intermediate_size=shape["intermediate"],
        num_local_experts=shape["experts"],
        num_experts_per_tok=shape["topk"],
    )
    used = "default"
    for attr in ("_experts_implementation", "experts_implementation"):
        try:
            setattr(cfg, attr, impl)
            used = f"{attr}={impl}"
            break
        except Exception:  # noqa: BLE001 - older versions reject unknown attributes
            continue
    torch.manual_seed(0)
    block = MixtralSparseMoeBlock(cfg).to(dev, dtype)
    with torch.no_grad():
        g = torch.Generator(device=dev).manual_seed(1)
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32).to(dtype) * 0.02)
    block.eval()
    # What the block really uses, if it says.
    experts = getattr(block, "experts", None)
    actual = None
    for holder in (experts, block):
        c = getattr(holder, "config", None)
        if c is not None:
            actual = getattr(c, "_experts_implementation", None) or getattr(c, "experts_implementation", None)
            if actual:
                break
    return block, used, actual


def run(block, x):
    out = block(x)
    return out[0] if isinstance(out, tuple) else out


def router_of(block):
    for name in ("gate", "router"):
        m = getattr(block, name, None)
        if m is not None:
            return m
    return None


def active_experts(block, x, k):
    gate = router_of(block)
    w = gate.weight if hasattr(gate, "weight") else None
    if w is None:
        return None
    logits = x.reshape(-1, x.shape[-1]).float() @ w.float().t()
    return int(torch.unique(torch.topk(logits, k, dim=-1).indices).numel())


def time_block(block, x, iters):
    with torch.no_grad():
        for _ in range(3):
            run(block, x)
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            run(block, x)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / iters


rows = []
meta = dict(torch=torch.__version__, transformers=transformers.__version__, gpu=torch.cuda.get_device_name(0))
print(json.dumps(meta), flush=True)
for shape in SHAPES:
    for impl in ("eager", "grouped_mm"):
        try:
            block, used, actual = build(shape, impl)
        except Exception as e:  # noqa: BLE001
            print(json.dumps(dict(shape=shape["label"], impl=impl, error=str(e)[:300])), flush=True)
            continue
        if impl == "grouped_mm" and actual not in (None, "grouped_mm"):
            print(json.dumps(dict(shape=shape["label"], impl=impl, skipped=f"block uses {actual}")), flush=True)
            continue
        for T in TOKENS:
            torch.manual_seed(T)
            x = torch.randn(1, T, shape["hidden"], device=dev, dtype=dtype)
            try:
                n = max(3, min(args.iters, (2000 + T - 1) // max(1, T)))
                ms = time_block(block, x, n)
                row = dict(shape=shape["label"], impl=impl, config=used, actual=actual, T=T, ms=ms, activeExperts=active_experts(block, x, shape["topk"]), iters=n)
            except Exception as e:  # noqa: BLE001
                row = dict(shape=shape["label"], impl=impl, T=T, error=str(e)[:300])
            rows.append(row)
            print(json.dumps(row), flush=True)
        del block
        torch.cuda.empty_cache()
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "peer-mixtral.json"), "w") as f:
    json.dump(dict(meta=meta, date=time.strftime("%Y-%m-%dT%H:%M:%S"), rows=rows), f, indent=2)
print("wrote", os.path.join(args.out, "peer-mixtral.json"))
