"""A real expert-parallel MoE layer on N devices of one host, replaying moe-route routing: the
measurement `moe-route simulate` is compared against (bench/ep-compare.mjs, issue 21).

One process per device (torchrun, or --nproc N which spawns them), torch.distributed with NCCL on
GPUs (gloo with --device cpu). Per layer call, on every rank:

  dispatch  gather this rank's token copies into a send buffer (index_select) and exchange them
            with one all_to_all_single (uneven splits)
  experts   the rows each local expert slot serves, grouped by slot, through transformers-style
            grouped GEMMs (torch._grouped_mm, as transformers' grouped_mm experts do; a loop of
            matmuls where it is missing or fails its self-check): SwiGLU, gate_up (2I x H) then
            down (H x I), times the routing weight, summed per received row (index_add_)
  combine   one all_to_all_single back, then the partial sums added into the rank's tokens
            (index_add_)

Conventions are the simulator's (packages/simulator/src/expert-parallel.ts), so both sides count
the same rows and bytes: token t of a T-token batch lives on device min(N-1, floor(t*N/T)); a
replicated expert serves token t with replica t mod r (replicas in slot order); with
--dispatch dedupe (default, the simulator's default) a token goes once to each device that hosts
any of its experts and comes back as one partial sum; --dispatch pair sends one copy per
(token, expert) pair (the simulator's dedupe: false). Bytes on the wire are counted without a
device's copies to itself. The routing metadata (which slot and weight each received row serves)
and the split sizes are computed on every rank from the replayed routing before timing; a
serving engine would send the k ids and weights with each row (<= 1.6% of the bytes at these
shapes) and exchange counts first.

Inputs (what moe-route writes; paths in a manifest are relative to the manifest):
  trace      a moe-route JSONL routing trace (`moe-route workload --from mixtral:c4:layer7 --out
             t.jsonl`): {"layer", "token", "experts": [k ids], "weights": [k]} per line, .jsonl or
             .jsonl.gz; the batches are consecutive runs of T records of one layer
  placement  `moe-route placement ... --format eplb|moe-route|sglang|vllm` (JSON; phy2log slots
             GPU-major, slots / N per device)
  decisions  optional: `moe-route route -c <config with capacity-drop> -i <batch> --json` output,
             one line per batch (.jsonl or .jsonl.gz): {"tokens": [{"kept": [[e, w]...],
             "dropped": [[e, w, reason]...]}...], "capacity", ...}; the kept pairs and weights
             replace the trace's (each token's kept + dropped experts must be its trace experts)

Weights: expert e's w13 (2I x H) and w2 (H x I) from normal(0, 0.02) with a generator seeded by
(--weight-seed, e) on the device; replicas are identical. Hidden states of batch b: normal(0, 1)
seeded by (--x-seed, b), the whole T x H batch drawn on every rank and sliced.

Timing: before every call a barrier (all_reduce of one element, then a device sync), then CUDA
events at the phase boundaries (time.perf_counter on CPU); --warmup calls, then --repeats timed
calls per batch. A rank's dispatch includes waiting for peers to start, its combine waiting for
the slowest rank's experts: the layer time of a call is the largest rank total. Isolated
all-to-alls (--isolated, default on): the same two exchanges alone, buffers ready, after a
barrier.

Usage (repository root):
  torchrun --standalone --nproc-per-node N bench/ep_layer.py --manifest DIR/manifest-N{N}.json --out OUT/ep-layer-N{N}.json
  python3 bench/ep_layer.py --nproc N --manifest ...              (spawns N processes itself)
  python3 bench/ep_layer.py --nproc 2 --device cpu --shape tiny-mixtral --trace t.jsonl \
      --placement p.json --tokens-per-batch 16 --batches 2 [--decisions g1.0=d.jsonl] --out x.json
  python3 bench/ep_layer.py --plan-only --manifest DIR/manifest-N8.json --out /dev/null
                                     (reads and plans every input without torch: check inputs first)
NVLink multicast stays off: NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1 and
NVSHMEM_DISABLE_NVLS=1 are set here before torch is imported (and inherited by spawned ranks).

JSON (schema "moe-route/ep-layer@1"; machine-readable: bench/ep-layer.schema.json):
  schema, date (ISO, end of run), complete (false while runs remain),
  meta {devices, backend, device ("cpu" or the GPU name), deviceCount, torch, cuda, nccl, python,
    machine, dtype, activationBytes, dispatch ("dedupe"|"pair"), expertsImpl ("grouped_mm"|"loop"),
    expertsImplNote, env {NCCL_NVLS_ENABLE, TORCH_SYMM_MEM_DISABLE_MULTICAST, NVSHMEM_DISABLE_NVLS},
    warmup, repeats, weightSeed, xSeed},
  manifest (path as given, or null),
  runs [one per (configuration, variant), in run order]:
    config (name), variant (name), shape {name, hidden, intermediate, experts, topK},
    placement {name, file, format, slots, slotsPerDevice, phy2log}, trace {file, layer},
    decisions (file or null), capacityFactor (number or null), tokensPerBatch,
    batches [one per batch]:
      batch, tokens, pairs (the trace's), pairsKept (computed), activeExperts,
      deviceRows [N] (pairs computed per device), slotRows [N][slots/N],
      dispatchBytes {sent [N], recv [N]} (combine moves the same bytes the other way),
      layerMs (median over repeats of the largest rank total), layerMsRepeats [repeats],
      expertsMaxMsRepeats [repeats] (largest rank experts time of each call),
      commMs (median over repeats of layer - largest experts: what the all-to-alls and the
        gather/scatter add to the slowest device),
      perDevice [N] {device, dispatchMs, expertsMs, combineMs, layerMs} (medians over repeats),
      isolated {dispatchMs [N], combineMs [N], dispatchMaxMs, combineMaxMs} or null,
      check {tokens, relL2} or null (the first --check-tokens tokens of every rank against a
        float32 (float64 on CPU) reference that recomputes every pair from regenerated weights)
    summary {layerMsMean, commMsMean, expertsMaxMsMean, droppedFraction, checkRelL2Max},
    error / skipped (why a run has no batches)
  notes [strings]
The exit code is 1 when a run failed, 2 on bad input.
"""
from __future__ import annotations

import os

# NVLink multicast (NVLS) must stay off on the lent machines; set before torch/NCCL load.
os.environ["NCCL_NVLS_ENABLE"] = "0"
os.environ["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"
os.environ["NVSHMEM_DISABLE_NVLS"] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_mixtral import write_json  # noqa: E402  (the bench scripts' atomic JSON writer; pure Python to import)

SCHEMA = "moe-route/ep-layer@1"
MANIFEST_SCHEMA = "moe-route/ep-manifest@1"
SHAPES = {
    "mixtral-8x7b": dict(hidden=4096, intermediate=14336, experts=8, topK=2),
    "olmoe-1b-7b": dict(hidden=2048, intermediate=1024, experts=64, topK=8),
    # the same routing shapes at toy sizes, for CPU runs and tests
    "tiny-mixtral": dict(hidden=32, intermediate=64, experts=8, topK=2),
    "tiny-olmoe": dict(hidden=32, intermediate=48, experts=64, topK=8),
}
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "fp64": "float64"}
ENV_FLAGS = ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS")


class InputError(Exception):
    """Bad input (file, flag, manifest): reported with the file and field, exit code 2."""


def log(msg: str) -> None:
    print(msg, flush=True)


# --- inputs ------------------------------------------------------------------------------------

def open_text(path: str):
    try:
        return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot open ({e.strerror or e})") from None


def json_lines(path: str):
    """(line number, parsed JSON) of every non-blank line of a .jsonl[.gz] file."""
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not JSON ({e.msg})") from None


def _int_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)


def read_trace(path: str, experts: int, topk: int, count: int, layer: int | None = None):
    """The first `count` records of one layer (default: the first record's) as ids (count, k)
    int64 and weights (count, k) float64 (1/k each where a record has no weights)."""
    ids = np.empty((count, topk), dtype=np.int64)
    weights = np.empty((count, topk), dtype=np.float64)
    n = 0
    missing_weights = 0
    for lineno, rec in json_lines(path):
        if n >= count:
            break
        if not isinstance(rec, dict) or not isinstance(rec.get("layer"), int) or not _int_list(rec.get("experts")):
            raise InputError(f"{path}:{lineno}: a trace record needs an integer \"layer\" and an \"experts\" list of integers")
        if layer is None:
            layer = rec["layer"]
        if rec["layer"] != layer:
            continue
        ex = rec["experts"]
        if len(ex) != topk:
            raise InputError(f"{path}:{lineno}: {len(ex)} experts, the shape routes top-{topk}")
        if len(set(ex)) != topk or min(ex) < 0 or max(ex) >= experts:
            raise InputError(f"{path}:{lineno}: experts {ex} must be {topk} distinct ids in 0..{experts - 1}")
        w = rec.get("weights")
        if w is None:
            missing_weights += 1
            w = [1.0 / topk] * topk
        if not isinstance(w, list) or len(w) != topk or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in w):
            raise InputError(f"{path}:{lineno}: \"weights\" must be {topk} finite numbers")
        ids[n] = ex
        weights[n] = w
        n += 1
    if n < count:
        raise InputError(f"{path}: {n} records of layer {layer}, {count} needed (batches x tokens per batch)")
    return ids, weights, layer, missing_weights


def read_decisions(path: str, batches: int, tokens: int, experts: int):
    """`moe-route route --json` outputs, one per line: per batch, per token the kept (expert,
    weight) pairs and the dropped experts; plus each line's capacity."""
    out = []
    for lineno, doc in json_lines(path):
        if len(out) >= batches:
            break
        toks = doc.get("tokens") if isinstance(doc, dict) else None
        if not isinstance(toks, list):
            raise InputError(f"{path}:{lineno}: a `moe-route route` output needs a \"tokens\" list")
        if len(toks) != tokens:
            raise InputError(f"{path}:{lineno}: {len(toks)} tokens, the batch has {tokens}")
        kept, dropped = [], []
        for t, tok in enumerate(toks):
            k = tok.get("kept") if isinstance(tok, dict) else None
            d = tok.get("dropped", []) if isinstance(tok, dict) else None
            if not isinstance(k, list) or not isinstance(d, list):
                raise InputError(f"{path}:{lineno}: tokens[{t}] needs \"kept\" and \"dropped\" lists")
            kk = []
            for j, pair in enumerate(k):
                if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], int) or isinstance(pair[0], bool)
                        or not 0 <= pair[0] < experts or not isinstance(pair[1], (int, float)) or not math.isfinite(pair[1])):
                    raise InputError(f"{path}:{lineno}: tokens[{t}].kept[{j}] must be [expert in 0..{experts - 1}, finite weight]")
                kk.append((pair[0], float(pair[1])))
            dd = []
            for j, pair in enumerate(d):
                if not isinstance(pair, list) or len(pair) < 1 or not isinstance(pair[0], int) or not 0 <= pair[0] < experts:
                    raise InputError(f"{path}:{lineno}: tokens[{t}].dropped[{j}] must start with an expert in 0..{experts - 1}")
                dd.append(pair[0])
            kept.append(kk)
            dropped.append(dd)
        cap = doc.get("capacity")
        out.append(dict(kept=kept, dropped=dropped, capacity=cap if isinstance(cap, (int, float)) else None))
    if len(out) < batches:
        raise InputError(f"{path}: {len(out)} decision lines, {batches} batches needed")
    return out


def read_placement(path: str, devices: int, experts: int, layer_index: int = 0):
    """A moe-route placement file (eplb, moe-route, sglang or vllm JSON) as (phy2log row, format)."""
    try:
        with open_text(path) as f:
            text = f.read()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    if not text.lstrip().startswith(("{", "[")):
        raise InputError(f"{path}: not JSON (TensorRT-LLM YAML maps are not read here: write `moe-route placement ... --format eplb`)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e.msg})") from None
    fmt = None
    rows = None
    if isinstance(doc, list):
        fmt, rows = "eplb", doc if doc and isinstance(doc[0], list) else [doc]
    elif isinstance(doc, dict) and "phy2log" in doc:
        fmt = "moe-route" if doc.get("format") == "moe-route.placement/v1" else "eplb"
        m = doc["phy2log"]
        rows = m if isinstance(m, list) and m and isinstance(m[0], list) else [m]
        g = doc.get("numGpus")
        if g is not None and g != devices:
            raise InputError(f"{path}: placed on {g} GPUs, this run has {devices} devices")
    elif isinstance(doc, dict) and "physical_to_logical_map" in doc:
        fmt, rows = "sglang", doc["physical_to_logical_map"]
    elif isinstance(doc, dict) and "layer_list" in doc:
        fmt = "vllm"
        rows = []
        for i, layer in enumerate(doc["layer_list"] if isinstance(doc["layer_list"], list) else []):
            devs = layer.get("device_list") if isinstance(layer, dict) else None
            if not isinstance(devs, list) or len(devs) != devices:
                raise InputError(f"{path}: layer_list[{i}] must list {devices} devices")
            row = []
            for j, d in enumerate(devs):
                ex = d.get("device_expert") if isinstance(d, dict) else None
                if not _int_list(ex):
                    raise InputError(f"{path}: layer_list[{i}].device_list[{j}].device_expert must be a list of expert ids")
                row += ex
            rows.append(row)
    else:
        raise InputError(f"{path}: not a placement file moe-route writes (phy2log, physical_to_logical_map or layer_list)")
    if not isinstance(rows, list) or not rows or not all(_int_list(r) for r in rows):
        raise InputError(f"{path}: the slot table must be [[expert per slot] per layer]")
    if not 0 <= layer_index < len(rows):
        raise InputError(f"{path}: has {len(rows)} layer(s), no index {layer_index}")
    row = rows[layer_index]
    if len(row) % devices != 0:
        raise InputError(f"{path}: {len(row)} slots do not divide over {devices} devices")
    for s, e in enumerate(row):
        if not 0 <= e < experts:
            raise InputError(f"{path}: slot {s} holds expert {e}, outside 0..{experts - 1}")
    missing = sorted(set(range(experts)) - set(row))
    if missing:
        raise InputError(f"{path}: experts {missing[:8]} have no slot")
    return list(row), fmt


# --- the plan of one batch (host, numpy; identical on every rank) ------------------------------

class Replicas:
    """Slots of each expert in slot order: device and local slot index per replica."""

    def __init__(self, phy2log: list[int], devices: int, experts: int) -> None:
        spd = len(phy2log) // devices
        per = [[] for _ in range(experts)]
        for s, e in enumerate(phy2log):
            per[e].append(s)
        self.count = np.array([len(p) for p in per], dtype=np.int64)
        self.offset = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)
        flat = np.array([s for p in per for s in p], dtype=np.int64)
        self.device = flat // spd
        self.slot = flat % spd
        self.slots_per_device = spd


def build_plan(pt, pe, pw, T: int, N: int, reps: Replicas, dedupe: bool, row_bytes: int):
    """Token copies, splits and per-slot rows of one batch. pt, pe, pw: token, expert, weight of
    every computed (kept) pair. Returns global counts and one entry per rank."""
    P = len(pt)
    src_all = np.minimum(N - 1, (np.arange(T, dtype=np.int64) * N) // max(1, T))
    ri = reps.offset[pe] + (pt % reps.count[pe])
    pd = reps.device[ri]
    ps = reps.slot[ri]
    psrc = src_all[pt]
    if dedupe:
        key = (psrc * N + pd) * T + pt
        ukey, copy_of_pair = np.unique(key, return_inverse=True)
        csrc, cdst, ctok = ukey // (N * T), (ukey // T) % N, ukey % T
    else:
        order = np.lexsort((np.arange(P), pt, pd, psrc))
        copy_of_pair = np.empty(P, dtype=np.int64)
        copy_of_pair[order] = np.arange(P)
        csrc, cdst, ctok = psrc[order], pd[order], pt[order]
    copy_of_pair = copy_of_pair.reshape(-1)
    spd = reps.slots_per_device
    cross = csrc != cdst
    sent = (np.bincount(csrc[cross], minlength=N) * row_bytes).tolist()
    recv = (np.bincount(cdst[cross], minlength=N) * row_bytes).tolist()
    slot_rows = np.zeros((N, spd), dtype=np.int64)
    np.add.at(slot_rows, (pd, ps), 1)
    ranks = []
    for r in range(N):
        owned = np.nonzero(src_all == r)[0]
        start = int(owned[0]) if len(owned) else 0
        sm = csrc == r
        send_idx = ctok[sm] - start
        send_splits = np.bincount(cdst[sm], minlength=N)
        rm = cdst == r
        recv_ids = np.nonzero(rm)[0]
        recv_splits = np.bincount(csrc[rm], minlength=N)
        row_of_copy = np.full(len(csrc), -1, dtype=np.int64)
        row_of_copy[recv_ids] = np.arange(len(recv_ids))
        mine = np.nonzero(pd == r)[0]
        rows = row_of_copy[copy_of_pair[mine]]
        slots = ps[mine]
        order = np.lexsort((rows, slots))
        ranks.append(dict(
            start=start, tokens=len(owned), send_idx=send_idx, send_splits=send_splits.tolist(),
            recv_splits=recv_splits.tolist(), recv_rows=int(len(recv_ids)), pair_rows=rows[order],
            pair_w=pw[mine][order], slot_counts=np.bincount(slots, minlength=spd),
        ))
    return dict(
        pairsKept=P, deviceRows=np.bincount(pd, minlength=N).tolist(), slotRows=slot_rows.tolist(),
        activeExperts=int(len(np.unique(pe))), sent=sent, recv=recv, ranks=ranks,
    )


def pairs_from_trace(ids, weights):
    T, k = ids.shape
    return np.repeat(np.arange(T, dtype=np.int64), k), ids.reshape(-1).astype(np.int64), weights.reshape(-1).astype(np.float64)


def pairs_from_decisions(dec, ids, path: str, batch: int):
    pt, pe, pw = [], [], []
    for t, (kept, dropped) in enumerate(zip(dec["kept"], dec["dropped"])):
        mine = sorted([e for e, _ in kept] + list(dropped))
        if mine != sorted(ids[t].tolist()):
            raise InputError(f"{path}: batch {batch} token {t}: kept + dropped experts {mine} differ from the trace's "
                             f"{sorted(ids[t].tolist())} (decisions made on another batch or trace?)")
        for e, w in kept:
            pt.append(t)
            pe.append(e)
            pw.append(w)
    return np.array(pt, dtype=np.int64), np.array(pe, dtype=np.int64), np.array(pw, dtype=np.float64)


# --- torch side --------------------------------------------------------------------------------

def expert_weights(torch, e: int, shape: dict, seed: int, device, dtype):
    """Expert e's (w13 [2I, H], w2 [H, I]): normal(0, 0.02) drawn in float32 on `device`."""
    H, I = shape["hidden"], shape["intermediate"]
    g = torch.Generator(device=device)
    g.manual_seed(seed * 1_000_003 + e)
    w13 = (torch.randn((2 * I, H), generator=g, device=device, dtype=torch.float32) * 0.02).to(dtype)
    w2 = (torch.randn((H, I), generator=g, device=device, dtype=torch.float32) * 0.02).to(dtype)
    return w13, w2


def batch_hidden(torch, b: int, T: int, H: int, seed: int, device, dtype):
    g = torch.Generator(device=device)
    g.manual_seed(seed * 1_000_003 + b)
    return torch.randn((T, H), generator=g, device=device, dtype=torch.float32).to(dtype)


def expert_forward(torch, F, x, w13, w2):
    """SwiGLU expert in transformers' layout: gate and up halves of w13, then w2."""
    I = w2.shape[1]
    h = x @ w13.t()
    return (F.silu(h[:, :I]) * h[:, I:]) @ w2.t()


class Experts:
    """Local expert slots stacked as w13 [S, 2I, H] and w2 [S, H, I]; grouped GEMM over slots."""

    def __init__(self, torch, F, w13, w2, impl: str) -> None:
        self.torch, self.F, self.w13, self.w2, self.impl = torch, F, w13, w2, impl
        self.I = w2.shape[2]

    def _gmm(self, x, w, offs_dev, counts):
        torch = self.torch
        if self.impl == "grouped_mm":
            return torch._grouped_mm(x, w.transpose(-2, -1), offs=offs_dev)
        out = x.new_empty((x.shape[0], w.shape[1]))
        o = 0
        for s, c in enumerate(counts):
            if c:
                out[o:o + c] = x[o:o + c] @ w[s].t()
            o += c
        return out

    def __call__(self, recv, pair_rows, pair_w, offs_dev, counts, out_rows):
        """out_rows[r] += w * expert_slot(recv[r]) for every (row, slot, weight) pair."""
        if pair_rows.numel() == 0:
            return out_rows
        xg = recv.index_select(0, pair_rows)
        h = self._gmm(xg, self.w13, offs_dev, counts)
        a = self.F.silu(h[:, :self.I]) * h[:, self.I:]
        y = self._gmm(a, self.w2, offs_dev, counts)
        y.mul_(pair_w)
        out_rows.index_add_(0, pair_rows, y)
        return out_rows


def grouped_mm_check(torch, device, dtype):
    """(usable, note): torch._grouped_mm on this device and dtype, checked against matmuls."""
    if device.type != "cuda":
        return False, "loop of matmuls (torch._grouped_mm is CUDA-only here)"
    if not hasattr(torch, "_grouped_mm"):
        return False, f"loop of matmuls (torch {torch.__version__} has no torch._grouped_mm)"
    if dtype != torch.bfloat16:
        return False, "loop of matmuls (torch._grouped_mm runs bf16)"
    try:
        g = torch.Generator(device=device)
        g.manual_seed(7)
        x = torch.randn((48, 64), generator=g, device=device).to(dtype)
        w = torch.randn((3, 32, 64), generator=g, device=device).to(dtype)
        counts = [16, 0, 32]
        offs = torch.tensor(np.cumsum(counts).tolist(), dtype=torch.int32, device=device)
        got = torch._grouped_mm(x, w.transpose(-2, -1), offs=offs).float()
        want = torch.cat([x[:16].float() @ w[0].float().t(), x[16:].float() @ w[2].float().t()])
        err = float((got - want).norm() / want.norm())
        if not err < 2e-2:
            return False, f"loop of matmuls (torch._grouped_mm self-check off by relative L2 {err:.2e})"
        return True, f"torch._grouped_mm (self-check relative L2 {err:.1e})"
    except Exception as e:  # noqa: BLE001
        return False, f"loop of matmuls (torch._grouped_mm failed its self-check: {type(e).__name__}: {e})"


class Rank:
    """One process: its device, the process group and the timing primitives."""

    def __init__(self, torch, dist, args, rank: int, world: int, local_rank: int) -> None:
        self.torch, self.dist, self.args = torch, dist, args
        self.rank, self.world = rank, world
        self.cuda = args.device == "cuda"
        if self.cuda:
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        else:
            self.device = torch.device("cpu")
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        backend = "nccl" if self.cuda else "gloo"
        # a rank that fails leaves the others in a collective: give up after this long, not NCCL's 10 min
        kw = dict(timeout=datetime.timedelta(seconds=args.collective_timeout_s))
        if self.cuda:
            kw["device_id"] = self.device
        try:
            dist.init_process_group(backend, rank=rank, world_size=world, **kw)
        except TypeError:  # torch without device_id
            dist.init_process_group(backend, rank=rank, world_size=world, timeout=kw["timeout"])
        self.backend = backend
        self.flag = torch.zeros(1, device=self.device)

    def barrier(self) -> None:
        self.dist.all_reduce(self.flag)
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def clock(self):
        """A timestamp: a recorded CUDA event, or perf_counter on CPU."""
        if self.cuda:
            ev = self.torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def elapsed(self, marks) -> list[float]:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)
            return [marks[i].elapsed_time(marks[i + 1]) for i in range(len(marks) - 1)]
        return [(marks[i + 1] - marks[i]) * 1e3 for i in range(len(marks) - 1)]

    def gather(self, obj):
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def agree(self, value):
        """Rank 0's value on every rank."""
        box = [value]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]


def median(v):
    return float(statistics.median(v)) if v else None


class LayerRun:
    """One configuration on one rank: local weights, then batches of each variant."""

    def __init__(self, R: Rank, cfg: dict, dtype, impl: str) -> None:
        import torch
        import torch.nn.functional as F

        self.R, self.cfg, self.dtype, self.torch, self.F = R, cfg, dtype, torch, F
        shape = cfg["shape"]
        self.shape = shape
        N = R.world
        self.reps = Replicas(cfg["phy2log"], N, shape["experts"])
        spd = self.reps.slots_per_device
        local = cfg["phy2log"][R.rank * spd:(R.rank + 1) * spd]
        H, I = shape["hidden"], shape["intermediate"]
        w13 = torch.empty((spd, 2 * I, H), dtype=dtype, device=R.device)
        w2 = torch.empty((spd, H, I), dtype=dtype, device=R.device)
        for s, e in enumerate(local):
            a, b = expert_weights(torch, e, shape, R.args.weight_seed, R.device, dtype)
            w13[s].copy_(a)
            w2[s].copy_(b)
            del a, b
        self.experts = Experts(torch, F, w13, w2, impl)
        self.row_bytes = H * torch.empty((), dtype=dtype).element_size()

    def close(self) -> None:
        del self.experts
        if self.R.cuda:
            self.torch.cuda.empty_cache()

    def tensors(self, plan, b: int, T: int):
        torch, R = self.torch, self.R
        me = plan["ranks"][R.rank]
        x_all = batch_hidden(torch, b, T, self.shape["hidden"], R.args.x_seed, R.device, self.dtype)
        x = x_all[me["start"]:me["start"] + me["tokens"]].contiguous()
        del x_all
        dev = R.device
        counts = me["slot_counts"].tolist()
        return dict(
            x=x,
            send_idx=torch.as_tensor(me["send_idx"], dtype=torch.long).to(dev),
            send_splits=me["send_splits"], recv_splits=me["recv_splits"], recv_rows=me["recv_rows"],
            pair_rows=torch.as_tensor(me["pair_rows"], dtype=torch.long).to(dev),
            pair_w=torch.as_tensor(me["pair_w"], dtype=torch.float64).to(dev).to(self.dtype).reshape(-1, 1),
            counts=counts,
            offs=torch.as_tensor(np.cumsum(counts).astype(np.int32), dtype=torch.int32).to(dev),
        )

    def forward(self, t, timed: bool):
        """One layer call; returns (output, [dispatch, experts, combine] ms or None)."""
        torch, dist, R = self.torch, self.R.dist, self.R
        H = self.shape["hidden"]
        if timed:
            R.barrier()
            m0 = R.clock()
        send = t["x"].index_select(0, t["send_idx"])
        recv = send.new_empty((t["recv_rows"], H))
        dist.all_to_all_single(recv, send, t["recv_splits"], t["send_splits"])
        if timed:
            m1 = R.clock()
        out_rows = torch.zeros_like(recv)
        self.experts(recv, t["pair_rows"], t["pair_w"], t["offs"], t["counts"], out_rows)
        if timed:
            m2 = R.clock()
        back = send.new_empty(send.shape)
        dist.all_to_all_single(back, out_rows, t["send_splits"], t["recv_splits"])
        out = torch.zeros_like(t["x"])
        out.index_add_(0, t["send_idx"], back)
        if timed:
            m3 = R.clock()
            return out, R.elapsed([m0, m1, m2, m3])
        return out, None

    def isolated(self, t, repeats: int):
        """The dispatch and combine all_to_all_single alone, buffers ready: ms per repeat."""
        torch, dist, R = self.torch, self.R.dist, self.R
        H = self.shape["hidden"]
        send = t["x"].index_select(0, t["send_idx"])
        recv = send.new_empty((t["recv_rows"], H))
        back = send.new_empty(send.shape)
        rows = torch.zeros_like(recv)
        disp, comb = [], []
        for _ in range(repeats):
            R.barrier()
            a = R.clock()
            dist.all_to_all_single(recv, send, t["recv_splits"], t["send_splits"])
            b = R.clock()
            disp.append(R.elapsed([a, b])[0])
            R.barrier()
            a = R.clock()
            dist.all_to_all_single(back, rows, t["send_splits"], t["recv_splits"])
            b = R.clock()
            comb.append(R.elapsed([a, b])[0])
        return disp, comb

    def reference(self, t, plan, n_check: int):
        """This rank's first n_check tokens recomputed pair by pair from regenerated weights."""
        torch, R = self.torch, self.R
        me = plan["ranks"][R.rank]
        ref_dtype = torch.float64 if not R.cuda else torch.float32
        lo = me["start"]
        hi = lo + n_check
        pt, pe, pw = plan["pairs"]
        sel = (pt >= lo) & (pt < hi)
        x = t["x"][:n_check].to(ref_dtype)
        ref = torch.zeros((n_check, self.shape["hidden"]), dtype=ref_dtype, device=R.device)
        for e in np.unique(pe[sel]).tolist():
            m = sel & (pe == e)
            rows = torch.as_tensor(pt[m] - lo, dtype=torch.long).to(R.device)
            w = torch.as_tensor(pw[m], dtype=ref_dtype).to(R.device).reshape(-1, 1)
            w13, w2 = expert_weights(torch, e, self.shape, R.args.weight_seed, R.device, self.dtype)
            y = expert_forward(torch, self.F, x.index_select(0, rows), w13.to(ref_dtype), w2.to(ref_dtype))
            ref.index_add_(0, rows, y * w)
            del w13, w2
        return ref


def run_variant(R: Rank, L: LayerRun, cfg: dict, variant: dict, ids, weights, doc: dict, save_dir: str | None, run_index: int):
    """Every batch of one variant; fills doc["batches"] on rank 0."""
    torch = L.torch
    args = R.args
    T = cfg["tokensPerBatch"]
    N = R.world
    decisions = None
    if variant.get("decisions"):
        decisions = read_decisions(variant["decisions"], cfg["batches"], T, cfg["shape"]["experts"])
    dropped_pairs = 0
    all_pairs = 0
    for b in range(cfg["batches"]):
        bid = ids[b * T:(b + 1) * T]
        bw = weights[b * T:(b + 1) * T]
        if decisions is None:
            pt, pe, pw = pairs_from_trace(bid, bw)
        else:
            pt, pe, pw = pairs_from_decisions(decisions[b], bid, variant["decisionsLabel"], b)
        plan = build_plan(pt, pe, pw, T, N, L.reps, args.dispatch == "dedupe", L.row_bytes)
        plan["pairs"] = (pt, pe, pw)
        t = L.tensors(plan, b, T)
        times = []
        for i in range(args.warmup + args.repeats):
            _, ms = L.forward(t, timed=True)
            if i >= args.warmup:
                times.append(ms)
        iso = L.isolated(t, args.repeats) if args.isolated else None
        check = None
        n_check = min(args.check_tokens, t["x"].shape[0])
        if args.check_tokens > 0 or save_dir:
            out, _ = L.forward(t, timed=False)
            if save_dir:
                torch.save(out.cpu(), os.path.join(save_dir, f"run{run_index}-b{b}-r{R.rank}.pt"))
            if n_check > 0:
                ref = L.reference(t, plan, n_check)
                diff = (out[:n_check].to(ref.dtype) - ref)
                check = (float((diff * diff).sum()), float((ref * ref).sum()), n_check)
        gathered = R.gather(dict(times=times, iso=iso, check=check))
        all_pairs += len(bid) * bid.shape[1]
        dropped_pairs += len(bid) * bid.shape[1] - plan["pairsKept"]
        if R.rank != 0:
            continue
        reps = len(times)
        layer = [max(sum(g["times"][i]) for g in gathered) for i in range(reps)]
        emax = [max(g["times"][i][1] for g in gathered) for i in range(reps)]
        per_device = [dict(
            device=d,
            dispatchMs=median([x[0] for x in g["times"]]),
            expertsMs=median([x[1] for x in g["times"]]),
            combineMs=median([x[2] for x in g["times"]]),
            layerMs=median([sum(x) for x in g["times"]]),
        ) for d, g in enumerate(gathered)]
        isolated = None
        if args.isolated:
            isolated = dict(
                dispatchMs=[median(g["iso"][0]) for g in gathered],
                combineMs=[median(g["iso"][1]) for g in gathered],
                dispatchMaxMs=median([max(g["iso"][0][i] for g in gathered) for i in range(args.repeats)]),
                combineMaxMs=median([max(g["iso"][1][i] for g in gathered) for i in range(args.repeats)]),
            )
        checks = [g["check"] for g in gathered if g["check"]]
        chk = None
        if checks:
            num = sum(c[0] for c in checks)
            den = sum(c[1] for c in checks)
            chk = dict(tokens=sum(c[2] for c in checks), relL2=math.sqrt(num / den) if den > 0 else (0.0 if num == 0 else None))
        doc["batches"].append(dict(
            batch=b, tokens=T, pairs=int(bid.size), pairsKept=plan["pairsKept"], activeExperts=plan["activeExperts"],
            deviceRows=plan["deviceRows"], slotRows=plan["slotRows"],
            dispatchBytes=dict(sent=plan["sent"], recv=plan["recv"]),
            layerMs=median(layer), layerMsRepeats=layer, expertsMaxMsRepeats=emax,
            commMs=median([a - e for a, e in zip(layer, emax)]),
            perDevice=per_device, isolated=isolated, check=chk,
        ))
        bb = doc["batches"][-1]
        log(f"  {cfg['name']} {variant['name']} batch {b}: layer {bb['layerMs']:.3f} ms (experts max "
            f"{median(emax):.3f}, comm {bb['commMs']:.3f}), rows/device {plan['deviceRows']}, "
            f"kept {plan['pairsKept']}/{bid.size}" + (f", relL2 {chk['relL2']:.1e}" if chk and chk["relL2"] is not None else ""))
        del t
    if R.rank == 0:
        bs = doc["batches"]
        rel = [x["check"]["relL2"] for x in bs if x["check"] and x["check"]["relL2"] is not None]
        doc["summary"] = dict(
            layerMsMean=statistics.fmean([x["layerMs"] for x in bs]),
            commMsMean=statistics.fmean([x["commMs"] for x in bs]),
            expertsMaxMsMean=statistics.fmean([median(x["expertsMaxMsRepeats"]) for x in bs]),
            droppedFraction=dropped_pairs / all_pairs if all_pairs else 0.0,
            checkRelL2Max=max(rel) if rel else None,
        )


# --- configurations ----------------------------------------------------------------------------

def _resolve(base: str, p: str | None) -> str | None:
    if p is None:
        return None
    return p if os.path.isabs(p) or not base else os.path.join(base, p)


def load_configs(args, devices: int) -> list[dict]:
    """The configurations of a manifest or of the command line, checked, with paths resolved."""
    if args.manifest:
        base = os.path.dirname(args.manifest)
        try:
            with open_text(args.manifest) as f:
                man = json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"{args.manifest}: not JSON ({e.msg})") from None
        if not isinstance(man, dict) or man.get("schema") != MANIFEST_SCHEMA or not isinstance(man.get("configs"), list):
            raise InputError(f"{args.manifest}: not an ep manifest (schema \"{MANIFEST_SCHEMA}\" with \"configs\")")
        if man.get("devices") not in (None, devices):
            raise InputError(f"{args.manifest}: written for {man.get('devices')} devices, this run has {devices}")
        raw = man["configs"]
    else:
        if not (args.shape and args.trace and args.placement):
            raise InputError("--manifest, or --shape, --trace and --placement")
        variants = [dict(name="none", decisions=None)] if not args.no_baseline else []
        for spec in args.decisions or []:
            name, sep, path = spec.partition("=")
            if not sep:
                name, path = os.path.basename(spec), spec
            variants.append(dict(name=name, decisions=path))
        if not variants:
            raise InputError("--no-baseline needs at least one --decisions")
        base = ""
        raw = [dict(name=f"{args.shape}/{os.path.basename(args.placement)}/T{args.tokens_per_batch}", shape=args.shape,
                    trace=args.trace, layer=args.layer, placement=args.placement, placementName=os.path.basename(args.placement),
                    placementLayer=0, tokensPerBatch=args.tokens_per_batch, batches=args.batches, variants=variants)]
    out = []
    for i, c in enumerate(raw):
        where = f"{args.manifest or 'command line'}: configs[{i}]"
        if not isinstance(c, dict):
            raise InputError(f"{where}: must be an object")
        shape_name = c.get("shape")
        if shape_name not in SHAPES:
            raise InputError(f"{where}: shape {shape_name!r} is not one of {', '.join(SHAPES)}")
        shape = dict(name=shape_name, **SHAPES[shape_name])
        T, B = c.get("tokensPerBatch"), c.get("batches")
        if not isinstance(T, int) or T < 1 or not isinstance(B, int) or B < 1:
            raise InputError(f"{where}: tokensPerBatch and batches must be positive integers")
        for k in ("trace", "placement"):
            if not isinstance(c.get(k), str):
                raise InputError(f"{where}: \"{k}\" must be a file path")
        variants = c.get("variants")
        if not isinstance(variants, list) or not variants:
            raise InputError(f"{where}: \"variants\" must list at least one {{name, decisions}}")
        vs = []
        for j, v in enumerate(variants):
            if not isinstance(v, dict) or not isinstance(v.get("name"), str):
                raise InputError(f"{where}.variants[{j}]: needs a \"name\"")
            d = v.get("decisions")
            vs.append(dict(name=v["name"], decisions=_resolve(base, d), decisionsLabel=d, capacityFactor=v.get("capacityFactor")))
        placement_file = _resolve(base, c["placement"])
        phy2log, fmt = read_placement(placement_file, devices, shape["experts"], c.get("placementLayer", 0) or 0)
        out.append(dict(
            name=c.get("name") or f"config{i}", shape=shape, trace=_resolve(base, c["trace"]), traceLabel=c["trace"],
            layer=c.get("layer"), placementFile=c["placement"], placementName=c.get("placementName") or c["placement"],
            placementFormat=fmt, phy2log=phy2log, tokensPerBatch=T, batches=B, variants=vs,
        ))
    return out


def collect_meta(torch, R: Rank, args, dtype, impl_note: str, impl: str) -> dict:
    m = dict(devices=R.world, backend=R.backend, torch=torch.__version__, python=platform.python_version(),
             machine=f"{platform.machine()}, {os.cpu_count()} CPUs", dtype=args.dtype,
             activationBytes=torch.empty((), dtype=dtype).element_size(), dispatch=args.dispatch,
             expertsImpl=impl, expertsImplNote=impl_note, env={k: os.environ.get(k) for k in ENV_FLAGS},
             warmup=args.warmup, repeats=args.repeats, weightSeed=args.weight_seed, xSeed=args.x_seed)
    if R.cuda:
        m.update(device=torch.cuda.get_device_name(R.device), deviceCount=torch.cuda.device_count(), cuda=torch.version.cuda)
        try:
            v = torch.cuda.nccl.version()
            m["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
        except Exception:  # noqa: BLE001
            m["nccl"] = None
    else:
        m.update(device="cpu", deviceCount=0, cuda=None, nccl=None)
    return m


def worker(rank: int, world: int, local_rank: int, args) -> int:
    import torch
    import torch.distributed as dist

    R = Rank(torch, dist, args, rank, world, local_rank)
    status = 0
    try:
        dtype = getattr(torch, DTYPES[args.dtype])
        if args.experts_impl == "loop":
            impl, note = "loop", "loop of matmuls (--experts-impl loop)"
        else:
            ok, note = grouped_mm_check(torch, R.device, dtype)
            if args.experts_impl == "grouped_mm" and not ok:
                raise InputError(f"--experts-impl grouped_mm: {note}")
            impl = "grouped_mm" if ok else "loop"
        configs = load_configs(args, world)
        started = time.time()
        doc = dict(schema=SCHEMA, date=None, complete=False, meta=collect_meta(torch, R, args, dtype, note, impl),
                   manifest=args.manifest, runs=[], notes=[])
        if rank == 0:
            log(f"ep_layer: {world} x {doc['meta']['device']} ({R.backend}), {args.dtype}, dispatch {args.dispatch}, experts {note}")
        save_dir = args.save_outputs
        if save_dir and rank == 0:
            os.makedirs(save_dir, exist_ok=True)
        run_index = 0
        for cfg in configs:
            shape = cfg["shape"]
            total = cfg["tokensPerBatch"] * cfg["batches"]
            ids, weights, layer, missing = read_trace(cfg["trace"], shape["experts"], shape["topK"], total, cfg["layer"])
            if missing and rank == 0:
                doc["notes"].append(f"{cfg['traceLabel']}: {missing} records without weights (1/k used)")
            L = None
            for variant in cfg["variants"]:
                run = dict(config=cfg["name"], variant=variant["name"],
                           shape={k: shape[k] for k in ("name", "hidden", "intermediate", "experts", "topK")},
                           placement=dict(name=cfg["placementName"], file=cfg["placementFile"], format=cfg["placementFormat"],
                                          slots=len(cfg["phy2log"]), slotsPerDevice=len(cfg["phy2log"]) // world, phy2log=cfg["phy2log"]),
                           trace=dict(file=cfg["traceLabel"], layer=layer), decisions=variant["decisionsLabel"],
                           capacityFactor=variant["capacityFactor"], tokensPerBatch=cfg["tokensPerBatch"], batches=[], summary=None)
                over = R.agree(time.time() - started > args.budget_s if rank == 0 else None)
                if over:
                    run["skipped"] = f"past --budget-s {args.budget_s}"
                else:
                    try:
                        if L is None:
                            L = LayerRun(R, cfg, dtype, impl)
                        run_variant(R, L, cfg, variant, ids, weights, run, save_dir, run_index)
                    except InputError:
                        raise
                    except Exception as e:  # noqa: BLE001
                        # a failed collective leaves the group unusable: record, write, stop
                        run["error"] = f"{type(e).__name__}: {e}"
                        status = 1
                        traceback.print_exc()
                        if rank == 0:
                            doc["runs"].append(run)
                            doc["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
                            write_json(args.out, doc)
                        raise
                if rank == 0:
                    doc["runs"].append(run)
                    doc["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
                    write_json(args.out, doc)
                run_index += 1
            if L is not None:
                L.close()
        if rank == 0:
            doc["complete"] = True
            doc["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
            write_json(args.out, doc)
            log(f"ep_layer: wrote {args.out} ({len(doc['runs'])} runs, {time.time() - started:.1f} s)")
    except InputError as e:
        if rank == 0:
            print(f"ep_layer: {e}", file=sys.stderr, flush=True)
        status = 2
    except Exception:  # noqa: BLE001
        status = status or 1
    finally:
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass
    return status


def plan_only(args) -> int:
    """Reads every input and builds every batch's plan, without torch: a check of the inputs
    (traces, placements, decisions against the trace) before a GPU run, and their row counts."""
    devices = args.nproc
    if devices is None and args.manifest:
        with open_text(args.manifest) as f:
            devices = json.load(f).get("devices")
    if not isinstance(devices, int) or devices < 1:
        raise InputError("--plan-only needs --nproc N (or a manifest that names its devices)")
    started = time.time()
    for cfg in load_configs(args, devices):
        shape = cfg["shape"]
        T = cfg["tokensPerBatch"]
        ids, weights, layer, _ = read_trace(cfg["trace"], shape["experts"], shape["topK"], T * cfg["batches"], cfg["layer"])
        reps = Replicas(cfg["phy2log"], devices, shape["experts"])
        for v in cfg["variants"]:
            dec = read_decisions(v["decisions"], cfg["batches"], T, shape["experts"]) if v["decisions"] else None
            kept = 0
            worst = []
            rows = np.zeros(devices, dtype=np.int64)
            for b in range(cfg["batches"]):
                bid, bw = ids[b * T:(b + 1) * T], weights[b * T:(b + 1) * T]
                pt, pe, pw = pairs_from_trace(bid, bw) if dec is None else pairs_from_decisions(dec[b], bid, v["decisionsLabel"], b)
                plan = build_plan(pt, pe, pw, T, devices, reps, args.dispatch == "dedupe", shape["hidden"] * 2)
                kept += plan["pairsKept"]
                rows += np.array(plan["deviceRows"])
                worst.append(max(max(a, c) for a, c in zip(plan["sent"], plan["recv"])))
            log(f"{cfg['name']} {v['name']}: layer {layer}, kept {kept}/{ids.size} pairs, rows per device {rows.tolist()}, "
                f"busiest device's dispatch bytes (bf16) per batch {worst}")
    log(f"plan-only: every input read and planned for {devices} devices in {time.time() - started:.1f} s")
    return 0


def _spawned(index: int, world: int, args, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(index), WORLD_SIZE=str(world), LOCAL_RANK=str(index))
    code = worker(index, world, index, args)
    if code:
        sys.exit(code)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="A real expert-parallel MoE layer replaying moe-route routing (see the module docstring).")
    p.add_argument("--manifest", help="configurations written by `node bench/ep-compare.mjs prepare`")
    p.add_argument("--shape", choices=sorted(SHAPES), help="single configuration: the layer shape")
    p.add_argument("--trace", help="single configuration: moe-route JSONL trace (.jsonl[.gz])")
    p.add_argument("--layer", type=int, default=None, help="trace layer (default: the first record's)")
    p.add_argument("--placement", help="single configuration: placement file moe-route wrote")
    p.add_argument("--decisions", action="append", help="NAME=FILE: `moe-route route --json` lines, one per batch (repeatable)")
    p.add_argument("--no-baseline", action="store_true", help="single configuration: no variant without decisions")
    p.add_argument("--tokens-per-batch", type=int, default=2048)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--out", required=True, help="JSON output file")
    p.add_argument("--device", choices=["cuda", "cpu"], default=None, help="default: cuda when available")
    p.add_argument("--nproc", type=int, default=None, help="spawn this many ranks (instead of torchrun)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default bf16 on cuda, fp32 on cpu")
    p.add_argument("--dispatch", choices=["dedupe", "pair"], default="dedupe")
    p.add_argument("--experts-impl", choices=["auto", "grouped_mm", "loop"], default="auto")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls per batch (default 3 on cuda, 1 on cpu)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per batch (default 10 on cuda, 3 on cpu)")
    p.add_argument("--no-isolated", dest="isolated", action="store_false", help="skip the isolated all-to-all timings")
    p.add_argument("--check-tokens", type=int, default=64, help="tokens per rank checked against the reference (0: none)")
    p.add_argument("--save-outputs", default=None, help="directory for every rank's output tensor per batch (tests)")
    p.add_argument("--weight-seed", type=int, default=1)
    p.add_argument("--x-seed", type=int, default=2)
    p.add_argument("--budget-s", type=float, default=480.0, help="runs that would start after this many seconds are skipped")
    p.add_argument("--collective-timeout-s", type=float, default=180.0, help="a collective waiting longer fails the run (default 180)")
    p.add_argument("--plan-only", action="store_true", help="read and plan every input for --nproc N devices, no torch (an input check)")
    a = p.parse_args(argv)
    if a.device is None:
        try:
            import torch

            a.device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            a.device = "cpu"
    a.dtype = a.dtype or ("bf16" if a.device == "cuda" else "fp32")
    a.warmup = a.warmup if a.warmup is not None else (3 if a.device == "cuda" else 1)
    a.repeats = a.repeats if a.repeats is not None else (10 if a.device == "cuda" else 3)
    if a.repeats < 1 or a.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.plan_only:
        try:
            return plan_only(args)
        except InputError as e:
            print(f"ep_layer: {e}", file=sys.stderr, flush=True)
            return 2
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and args.nproc is None:
        return worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")), args)
    n = args.nproc or 1
    if args.device == "cuda":
        import torch

        if torch.cuda.device_count() < n:
            print(f"ep_layer: --nproc {n} but {torch.cuda.device_count()} CUDA devices", file=sys.stderr)
            return 2
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        mp.spawn(_spawned, args=(n, args, port), nprocs=n, join=True)
    except mp.ProcessExitedException as e:
        return e.exit_code if e.exit_code in (1, 2) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
