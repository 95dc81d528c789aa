"""The peers of bench/webgpu-layer.bench.ts at their best, on the same GPU: the whole MoE layer
(router GEMM, softmax, top-k, experts, combine) in bf16, timed two ways each:

  eager  calls of the Python callable back to back (what a plain PyTorch loop pays: at small T
         mostly kernel-launch overhead)
  graph  replay of a CUDA graph captured from the same callable (torch.cuda.CUDAGraph, warmed up
         on a side stream first, as PyTorch documents): what a serving loop that captures decode
         pays

Peers (impl):
  eager, grouped_mm, batched_mm   Hugging Face transformers' MixtralSparseMoeBlock (Mixtral shape)
                                  / OlmoeSparseMoeBlock (OLMoE shape, no top-k renormalisation)
                                  with that experts implementation (config._experts_implementation);
                                  batched_mm only where transformers has it and its gathered weights
                                  fit --batched-mm-max-gib
  vllm_fused_moe                  bench/vllm_fused_moe.py: a port of vLLM's Triton fused_moe_kernel
                                  and launcher; tiles from vLLM's shipped table for this GPU and
                                  shape, else the fastest of a small sweep (vLLM's default tile,
                                  vLLM's tables for the same E at other N, the fork-tuned Mixtral H100
                                  table; see vllm_moe_configs.py), chosen by graph time per T

Shapes: mixtral-8x7b (H 4096, I 14336, E 8, k 2, renormalised top-k) and olmoe-1b-7b (H 2048,
I 1024, E 64, k 8); T tokens in {1, 8, 32, 128, 512, 2048, 4096}. Every weight is drawn from
normal(0, 0.02) with a fixed seed on the GPU (a block left to its own initialisation sends every
token to the same experts); x ~ normal(0, 1). The same weights and x feed every peer.

Correctness: each output (eager call and graph replay) against an fp32 reference of the same
layer (router logits from the same bf16 GEMM the peers run, so the routing is the same; experts in
fp32, TF32 off): relative L2 over the tokens whose top-k is unambiguous (tokens with a tie between
the k-th and (k+1)-th expert probability are left out and counted: any top-k may pick either);
rows above 1e-2 are flagged and never count as the best peer.

Timing: CUDA events around back-to-back calls after a warm-up; calls per repeat chosen so a repeat
lasts ~target/repeats; ms per call = median over the repeats (all repeats in the JSON).

Isolation: the vLLM peer and the transformers peers run in child processes of this script, one
group at a time, so that a crash (a faulting kernel, a hung capture) loses one configuration, not
the run: the parent marks the configuration that was running as an error and starts a new child
for the rest (--max-restarts); a child silent for --hang-s is stopped likewise. Every configuration
is also in its own try/except. The vLLM group may use 3/5 of the budget, the transformers group the
rest; a configuration past its group's share is recorded as skipped. The JSON is rewritten after
each child; the run ends at most ~45 s after --budget-s.

Usage (GPU host, repository root):
  python3 bench/peer_mixtral.py --out out              # full matrix -> out/peer-mixtral.json
  python3 bench/peer_mixtral.py --quick --out out      # smoke run: Mixtral, T 1 and 32, short timings
  options: --shapes mixtral-8x7b,olmoe-1b-7b --tokens 1,8 --peers eager,grouped_mm,vllm_fused_moe
           --modes eager,graph --budget-s 360 --target-s 0.2 --repeats 5 --iters N (fixed calls per
           repeat) --sweep auto|off|always --force-capture --no-isolate
  --out DIR writes DIR/peer-mixtral.json (what bench/report.mjs reads); --out FILE.json writes FILE.json.

JSON (schema "moe-route/peer-mixtral@2"):
  schema, date (ISO local time of the run's end), meta {gpu, deviceFileName, capability, smCount,
    memoryGiB, driver, torch, cuda, triton, transformers, python, host}, args {...},
  shapes [{name, hidden, intermediate, experts, topk, renormalize}],
  rows [one per (shape, T, impl), in run order]:
    shape, T, impl, peer (label), activeExperts (distinct experts the reference routing uses),
    ms / msRepeats / iters          eager back-to-back, median ms per call, every repeat, calls per repeat
    graphMs / graphMsRepeats / graphIters   CUDA-graph replay, likewise
    relL2, graphRelL2               output vs the fp32 reference (null when not measured)
    relL2Flag                       true when either is above 1e-2 or not finite
    tiedTokens                      tokens left out of relL2 (tie at the top-k boundary)
    error, graphError, skipped      why a number is missing (row-level error: none of it ran)
    transformers peers: block (class), config (what was set), actual (what the experts module reads),
      renormalize
    vllm_fused_moe: tile {BLOCK_SIZE_M, BLOCK_SIZE_N, BLOCK_SIZE_K, GROUP_SIZE_M, num_warps,
      num_stages}, tileSource, naive (one block per token-slot, no alignment), helpers {topk, align,
      silu_and_mul: "triton" or why torch}, sweep [{label, tile, graphMs | ms, relL2, error}]
  best [one per (shape, T) with a timing]: shape, T, impl, peer, mode (eager|graph), ms: the fastest
    unflagged peer
  `ms` keeps its earlier meaning (eager back-to-back), so older readers (report.mjs's first tables,
  packages/simulator/scripts/calibrate.mjs) read the same quantity as before.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import vllm_moe_configs as C  # noqa: E402  (pure Python)

SCHEMA = "moe-route/peer-mixtral@2"
SHAPES = {
    "mixtral-8x7b": dict(family="mixtral", hidden=4096, intermediate=14336, experts=8, topk=2, renormalize=True),
    "olmoe-1b-7b": dict(family="olmoe", hidden=2048, intermediate=1024, experts=64, topk=8, renormalize=False),
}
ALL_TOKENS = [1, 8, 32, 128, 512, 2048, 4096]
QUICK_TOKENS = [1, 32]
VLLM = "vllm_fused_moe"
HF_IMPLS = ["eager", "grouped_mm", "batched_mm"]
ALL_IMPLS = HF_IMPLS + [VLLM]
GROUPS = [("vllm", [VLLM]), ("hf", HF_IMPLS)]  # run order; the vLLM port first (no transformers import)
GROUP_WEIGHT = {"vllm": 3.0, "hf": 2.0}  # shares of the budget left (the vLLM sweep compiles Triton tiles)
PEER_LABEL = {
    "eager": "transformers eager",
    "grouped_mm": "transformers grouped_mm",
    "batched_mm": "transformers batched_mm",
    VLLM: "vLLM fused_moe (Triton port)",
}
REL_L2_FLAG = 1e-2
WEIGHT_SEED = 1


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------
# arguments and plan (pure)
# ----------------------------------------------------------------------------------------------


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/results", help="directory for peer-mixtral.json, or a .json path")
    p.add_argument("--quick", action="store_true", help="smoke run: Mixtral only, T 1 and 32, short timings")
    p.add_argument("--shapes", default="", help="comma-separated: " + ",".join(SHAPES))
    p.add_argument("--tokens", default="", help="comma-separated T (default " + ",".join(map(str, ALL_TOKENS)) + ")")
    p.add_argument("--peers", default="", help="comma-separated: " + ",".join(ALL_IMPLS))
    p.add_argument("--modes", default="eager,graph", help="eager, graph or both")
    p.add_argument("--budget-s", type=float, default=360.0, help="wall-clock bound; configurations past it are skipped")
    p.add_argument("--target-s", type=float, default=None, help="seconds of timed calls per configuration and mode (default 0.2, quick 0.05)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per configuration and mode (default 5, quick 3)")
    p.add_argument("--iters", type=int, default=None, help="fixed calls per repeat (default: from --target-s)")
    p.add_argument("--sweep", choices=["auto", "off", "always"], default="auto",
                   help="vLLM tiles: auto = vLLM's shipped table if it ships for this GPU and shape, else a small sweep; "
                        "off = exactly what vLLM runs (shipped or default); always = sweep even where a table ships")
    p.add_argument("--sweep-limit", type=int, default=None, help="at most this many sweep candidates per T (quick: 2)")
    p.add_argument("--batched-mm-max-gib", type=float, default=8.0, help="skip batched_mm where its gathered weights exceed this")
    p.add_argument("--force-capture", action="store_true", help="capture a graph even when the forward synchronises with the host")
    p.add_argument("--no-isolate", action="store_true", help="run every peer in this process (no child processes)")
    p.add_argument("--max-restarts", type=int, default=3, help="new child processes per group after crashes")
    p.add_argument("--hang-s", type=float, default=180.0, help="stop a child process that reports nothing for this long")
    # internal: a child process
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    p.add_argument("--records", default=None, help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    shapes = _csv(a.shapes) if a.shapes else (["mixtral-8x7b"] if a.quick else list(SHAPES))
    for s in shapes:
        if s not in SHAPES:
            p.error(f"unknown shape {s!r} (known: {', '.join(SHAPES)})")
    try:
        tokens = [int(t) for t in _csv(a.tokens)] if a.tokens else (QUICK_TOKENS if a.quick else ALL_TOKENS)
    except ValueError:
        p.error(f"--tokens takes comma-separated integers, got {a.tokens!r}")
    if not tokens or any(t < 1 or t > 65536 for t in tokens):
        p.error(f"--tokens must be integers in 1..65536, got {a.tokens!r}")
    peers = _csv(a.peers) if a.peers else list(ALL_IMPLS)
    for i in peers:
        if i not in ALL_IMPLS:
            p.error(f"unknown peer {i!r} (known: {', '.join(ALL_IMPLS)})")
    modes = _csv(a.modes)
    if not modes or any(m not in ("eager", "graph") for m in modes):
        p.error(f"--modes takes eager, graph or both, got {a.modes!r}")
    if a.budget_s <= 0:
        p.error("--budget-s must be positive")
    a.shape_list = shapes
    a.token_list = sorted(set(tokens))
    a.peer_list = [i for i in ALL_IMPLS if i in peers]
    a.mode_list = [m for m in ("eager", "graph") if m in modes]
    a.target = a.target_s if a.target_s is not None else (0.05 if a.quick else 0.2)
    a.reps = a.repeats if a.repeats is not None else (3 if a.quick else 5)
    if a.target <= 0 or a.reps < 1 or (a.iters is not None and a.iters < 1):
        p.error("--target-s, --repeats and --iters must be positive")
    a.sweep_max = a.sweep_limit if a.sweep_limit is not None else (2 if a.quick else None)
    return a


def plan(args) -> list[tuple[str, int, str]]:
    """Every (shape, T, impl) of the run, in run order within a group: shape, then T, then peer."""
    return [(s, t, i) for s in args.shape_list for t in args.token_list for i in args.peer_list]


def resolve_out(out: str) -> str:
    return out if out.endswith(".json") else os.path.join(out, "peer-mixtral.json")


def encode_work(items) -> str:
    return json.dumps([list(it) for it in items])


def decode_work(text: str) -> list[tuple[str, int, str]]:
    return [(str(s), int(t), str(i)) for s, t, i in json.loads(text)]


# ----------------------------------------------------------------------------------------------
# results (pure)
# ----------------------------------------------------------------------------------------------


def base_row(shape: str, T: int, impl: str) -> dict:
    return dict(shape=shape, T=T, impl=impl, peer=PEER_LABEL.get(impl, impl), activeExperts=None,
                ms=None, msRepeats=None, iters=None, graphMs=None, graphMsRepeats=None, graphIters=None,
                relL2=None, graphRelL2=None, relL2Flag=False, tiedTokens=None)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def flag_row(row: dict) -> None:
    flagged = False
    for key, ms_key in (("relL2", "ms"), ("graphRelL2", "graphMs")):
        v = row.get(key)
        if v is not None and (not _finite(v) or v > REL_L2_FLAG):
            flagged = True
        if row.get(ms_key) is not None and v is None and row.get("relL2Note") is None:
            flagged = True  # timed but never checked
    row["relL2Flag"] = flagged


def best_per_t(rows: list[dict]) -> list[dict]:
    """The fastest unflagged (impl, mode) per (shape, T)."""
    best: dict[tuple[str, int], dict] = {}
    for r in rows:
        if r.get("error") or r.get("skipped") or r.get("relL2Flag"):
            continue
        for mode, key in (("eager", "ms"), ("graph", "graphMs")):
            v = r.get(key)
            if not _finite(v):
                continue
            k = (r["shape"], r["T"])
            if k not in best or v < best[k]["ms"]:
                best[k] = dict(shape=r["shape"], T=r["T"], impl=r["impl"], peer=r.get("peer", r["impl"]), mode=mode, ms=v)
    return [best[k] for k in sorted(best, key=lambda k: (list(SHAPES).index(k[0]) if k[0] in SHAPES else 99, k[1]))]


def fmt_ms(v) -> str:
    return f"{v:.3f}" if _finite(v) else "-"


def summary_lines(rows: list[dict], shapes: list[str], impls: list[str]) -> list[str]:
    lines = []
    best = {(b["shape"], b["T"]): b for b in best_per_t(rows)}
    for s in shapes:
        sh = SHAPES[s]
        lines.append("")
        lines.append(f"{s} (H {sh['hidden']}, I {sh['intermediate']}, E {sh['experts']}, k {sh['topk']}): "
                     "ms per layer call, eager / graph; * = relL2 above 1e-2")
        head = f"{'T':>5} {'act':>4} " + " ".join(f"{i:>19}" for i in impls) + "  best"
        lines.append(head)
        for t in sorted({r["T"] for r in rows if r["shape"] == s}):
            cells = []
            act = None
            for i in impls:
                r = next((x for x in rows if x["shape"] == s and x["T"] == t and x["impl"] == i), None)
                if r is None:
                    cells.append(f"{'':>19}")
                    continue
                act = act if act is not None else r.get("activeExperts")
                if r.get("skipped"):
                    cell = "skipped"
                elif r.get("error"):
                    cell = "error"
                else:
                    cell = f"{fmt_ms(r.get('ms'))} / {fmt_ms(r.get('graphMs'))}" + ("*" if r.get("relL2Flag") else "")
                cells.append(f"{cell:>19}")
            b = best.get((s, t))
            btxt = f"{b['impl']} ({b['mode']}) {b['ms']:.3f}" if b else "-"
            lines.append(f"{t:>5} {act if act is not None else '-':>4} " + " ".join(cells) + "  " + btxt)
    return lines


def write_json(path: str, doc: dict) -> None:
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2, allow_nan=False, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(o):
    return str(o)


def _sanitize(v):
    """NaN/inf are not JSON: write them as null (and keep a note in the row)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _sanitize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_sanitize(x) for x in v]
    return v


# ----------------------------------------------------------------------------------------------
# parent: plans, runs one child per group, restarts after crashes, writes the JSON
# ----------------------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):  # noqa: ARG001
    raise Interrupted(f"signal {signum}")


def read_records(path: str) -> list[dict]:
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
    return out


def _child_cmd(args, group: str, work, records: str, deadline: float) -> list[str]:
    cmd = [sys.executable, "-u", os.path.abspath(__file__), "--child", group, "--work", encode_work(work),
           "--records", records, "--deadline", repr(deadline), "--modes", ",".join(args.mode_list),
           "--target-s", repr(args.target), "--repeats", str(args.reps), "--sweep", args.sweep,
           "--batched-mm-max-gib", repr(args.batched_mm_max_gib)]
    if args.iters is not None:
        cmd += ["--iters", str(args.iters)]
    if args.sweep_max is not None:
        cmd += ["--sweep-limit", str(args.sweep_max)]
    if args.force_capture:
        cmd.append("--force-capture")
    if args.quick:
        cmd.append("--quick")
    return cmd


def _describe_rc(rc: int) -> str:
    if rc is None:
        return "did not exit"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with code {rc}"


def run_parent(args) -> int:
    t0 = time.time()
    deadline = t0 + args.budget_s
    out_path = resolve_out(args.out)
    items = plan(args)
    rows: dict[tuple[str, int, str], dict] = {}
    meta: dict = {}
    notes: list[str] = []
    signal.signal(signal.SIGTERM, _on_signal)
    log(f"peer_mixtral: {len(items)} configurations ({', '.join(args.shape_list)}; T {args.token_list}; "
        f"{', '.join(args.peer_list)}; {', '.join(args.mode_list)}), budget {args.budget_s:.0f} s -> {out_path}")

    def doc() -> dict:
        ordered = [rows[it] for it in items if it in rows]
        return _sanitize(dict(
            schema=SCHEMA,
            date=time.strftime("%Y-%m-%dT%H:%M:%S"),
            meta=dict(meta, host=socket.gethostname(), python=platform.python_version(),
                      wallS=round(time.time() - t0, 1)),
            args=dict(shapes=args.shape_list, tokens=args.token_list, peers=args.peer_list, modes=args.mode_list,
                      budgetS=args.budget_s, targetS=args.target, repeats=args.reps, iters=args.iters,
                      sweep=args.sweep, sweepLimit=args.sweep_max, quick=args.quick,
                      batchedMmMaxGiB=args.batched_mm_max_gib, forceCapture=args.force_capture,
                      isolate=not args.no_isolate, relL2Flag=REL_L2_FLAG),
            shapes=[dict(name=s, **{k: v for k, v in SHAPES[s].items() if k != "family"}, family=SHAPES[s]["family"])
                    for s in args.shape_list],
            notes=notes,
            rows=ordered,
            best=best_per_t(ordered),
        ))

    def absorb(recs: list[dict]) -> None:
        """Rows and meta from a child's records (idempotent: the file is re-read whole)."""
        for r in recs:
            if "meta" in r:
                meta.update({k: v for k, v in r["meta"].items() if v is not None or k not in meta})
            elif "row" in r:
                row = r["row"]
                rows[(row["shape"], int(row["T"]), row["impl"])] = row

    child: subprocess.Popen | None = None
    try:
        for gi, (group, impls) in enumerate(GROUPS):
            pending = [it for it in items if it[2] in impls]
            if not pending:
                continue
            later = sum(GROUP_WEIGHT[g] for g, im in GROUPS[gi + 1:] if any(it[2] in im for it in items))
            restarts = 0
            while pending:
                now = time.time()
                if now >= deadline:
                    for it in pending:
                        rows[it] = dict(base_row(*it), skipped=f"budget: --budget-s {args.budget_s:.0f} reached")
                    pending = []
                    break
                # a group gets its weighted share of what is left with the groups after it
                child_deadline = now + (deadline - now) * GROUP_WEIGHT[group] / (GROUP_WEIGHT[group] + later)
                fd, records = tempfile.mkstemp(prefix=f"peer-{group}-", suffix=".jsonl")
                os.close(fd)
                killed = False
                if args.no_isolate:
                    rc = run_child_inprocess(args, group, pending, records, child_deadline)
                else:
                    cmd = _child_cmd(args, group, pending, records, child_deadline)
                    env = dict(os.environ, PYTHONUNBUFFERED="1")
                    env.setdefault("HF_HUB_OFFLINE", "1")
                    env.setdefault("TRANSFORMERS_OFFLINE", "1")
                    child = subprocess.Popen(cmd, env=env)
                    # a configuration may overrun the deadline a little (one sweep, one compile)
                    kill_at = min(child_deadline + 60.0, deadline + 30.0)
                    last_size, last_progress, last_write = -1, time.time(), time.time()
                    rc = None
                    while rc is None:
                        rc = child.poll()
                        if rc is None:
                            size = os.path.getsize(records) if os.path.exists(records) else 0
                            if size != last_size:
                                last_size, last_progress = size, time.time()
                            if time.time() - last_write > 10.0:  # the JSON stays current under a hard kill
                                absorb(read_records(records))
                                write_json(out_path, doc())
                                last_write = time.time()
                            stalled = time.time() - last_progress > args.hang_s
                            if time.time() > kill_at or stalled:
                                killed = f"it reported nothing for {args.hang_s:.0f} s" if stalled else "it ran past its share of --budget-s"
                                log(f"peer_mixtral: stopping the {group} process: {killed}")
                                child.terminate()
                                try:
                                    rc = child.wait(timeout=15)
                                except subprocess.TimeoutExpired:
                                    child.kill()
                                    rc = child.wait()
                                break
                            time.sleep(0.25)
                    child = None
                recs = read_records(records)
                try:
                    os.unlink(records)
                except OSError:
                    pass
                absorb(recs)
                begun = None
                aborted = None
                for r in recs:
                    if "begin" in r:
                        begun = r["begin"]
                    elif "abort" in r:
                        aborted = r["abort"]
                    elif "fatal" in r:
                        notes.append(f"{group}: {r['fatal']}")
                    elif "row" in r:
                        row = r["row"]
                        if begun and (begun.get("shape"), begun.get("T"), begun.get("impl")) == (row["shape"], int(row["T"]), row["impl"]):
                            begun = None
                done = {it for it in pending if it in rows}
                pending = [it for it in pending if it not in done]
                if not pending:
                    break
                fatal = next((r["fatal"] for r in recs if "fatal" in r), None)
                if rc == 0 or fatal:
                    why = fatal or f"the {group} process ended without running it"
                    for it in pending:
                        rows[it] = dict(base_row(*it), error=why)
                    pending = []
                    break
                what = (f"the {group} benchmark process was stopped: {killed}" if killed
                        else f"the {group} benchmark process {_describe_rc(rc)}")
                if aborted:
                    what += f" ({aborted})"
                if begun and begun.get("stage") == "setup":
                    bad = [it for it in pending if it[0] == begun.get("shape")]
                    for it in bad:
                        rows[it] = dict(base_row(*it), error=f"{what} while setting up {it[0]}")
                elif begun:
                    key = (begun["shape"], int(begun["T"]), begun["impl"])
                    if key in pending:
                        rows[key] = dict(base_row(*key), error=f"{what} while running this configuration")
                # else: it aborted after writing the row that broke CUDA, or died before starting
                # any configuration: nothing to blame; the restarts are bounded
                pending = [it for it in pending if it not in rows]
                notes.append(f"{group}: {what}" + (f"; after {begun}" if begun else ""))
                restarts += 1
                if pending and restarts > args.max_restarts:
                    for it in pending:
                        rows[it] = dict(base_row(*it), error=f"not run: {what}, {restarts - 1} restarts already")
                    pending = []
                elif pending:
                    log(f"peer_mixtral: {what}; restarting it for the {len(pending)} configurations left")
            write_json(out_path, doc())
    except (Interrupted, KeyboardInterrupt) as e:
        notes.append(f"interrupted: {e}")
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        for it in items:
            if it not in rows:
                rows[it] = dict(base_row(*it), skipped="interrupted")
    for it in items:
        if it not in rows:
            rows[it] = dict(base_row(*it), skipped="not reached")
    final = doc()
    write_json(out_path, final)
    for line in summary_lines(final["rows"], args.shape_list, args.peer_list):
        log(line)
    errors = sum(1 for r in final["rows"] if r.get("error"))
    flagged = sum(1 for r in final["rows"] if r.get("relL2Flag"))
    skipped = sum(1 for r in final["rows"] if r.get("skipped"))
    log("")
    log(f"peer_mixtral: wrote {out_path} ({len(final['rows'])} rows: {errors} errors, {skipped} skipped, "
        f"{flagged} flagged above relL2 {REL_L2_FLAG:g}) in {time.time() - t0:.0f} s on {meta.get('gpu', 'no GPU')}")
    measured = any(_finite(r.get("ms")) or _finite(r.get("graphMs")) for r in final["rows"])
    return 0 if measured else 1  # 1: nothing was timed (the JSON says why)


# ----------------------------------------------------------------------------------------------
# child: the measurements (imports torch)
# ----------------------------------------------------------------------------------------------


class Skip(Exception):
    """A configuration that does not apply (recorded as skipped, not as an error)."""


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip()[:500]}"


def run_child_inprocess(args, group, work, records, deadline) -> int:
    a = argparse.Namespace(**vars(args))
    a.child, a.records, a.deadline = group, records, deadline
    a.work_items = list(work)
    try:
        return child_main(a)
    except Exception as e:  # noqa: BLE001
        with open(records, "a") as f:
            f.write(json.dumps({"fatal": f"in-process run failed: {_err(e)}"}) + "\n")
        return 1


class Emitter:
    def __init__(self, path: str) -> None:
        self.f = open(path, "a")

    def __call__(self, record: dict) -> None:
        self.f.write(json.dumps(_sanitize(record), default=_json_default) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def child_entry(args) -> int:
    args.work_items = decode_work(args.work)
    return child_main(args)


def child_main(args) -> int:
    emit = Emitter(args.records)
    try:
        try:
            import torch
            import torch.nn.functional as F
        except Exception as e:  # noqa: BLE001
            emit({"fatal": f"cannot import torch: {_err(e)}"})
            return 2
        if not torch.cuda.is_available():
            emit({"fatal": f"no CUDA device (torch {torch.__version__}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"})
            return 2
        torch.set_grad_enabled(False)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        bench = ChildBench(torch, F, args, emit)
        emit({"meta": bench.meta})
        return bench.run()
    finally:
        emit.close()


class ChildBench:
    def __init__(self, torch, F, args, emit) -> None:
        self.torch, self.F, self.args, self.emit = torch, F, args, emit
        self.dev = torch.device("cuda")
        self.meta = self._meta()
        self.device_file = self.meta["deviceFileName"]

    # --- environment ---------------------------------------------------------------------------
    def _meta(self) -> dict:
        torch = self.torch
        props = torch.cuda.get_device_properties(0)
        gpu = torch.cuda.get_device_name(0)
        m = dict(gpu=gpu, deviceFileName=C.device_name_as_file_name(gpu), capability=f"{props.major}.{props.minor}",
                 smCount=props.multi_processor_count, memoryGiB=round(props.total_memory / 2**30, 1),
                 torch=torch.__version__, cuda=torch.version.cuda)
        try:
            q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=10)
            m["driver"] = q.stdout.strip().splitlines()[0] if q.returncode == 0 and q.stdout.strip() else None
        except Exception:  # noqa: BLE001
            m["driver"] = None
        try:
            import triton

            m["triton"] = triton.__version__
        except Exception as e:  # noqa: BLE001
            m["triton"] = None
            m["tritonError"] = _err(e)
        if self.args.child == "hf":
            try:
                import transformers

                m["transformers"] = transformers.__version__
            except Exception as e:  # noqa: BLE001
                m["transformers"] = None
                m["transformersError"] = _err(e)
        return m

    def deadline_passed(self) -> bool:
        return self.args.deadline is not None and time.time() > self.args.deadline

    def healthy(self) -> str | None:
        """None when the CUDA context still works, else why not."""
        torch = self.torch
        try:
            torch.cuda.synchronize()
            t = torch.arange(8, device=self.dev, dtype=torch.float32)
            if float(t.sum()) != 28.0:
                return "a check sum came back wrong"
            return None
        except Exception as e:  # noqa: BLE001
            return _err(e)

    # --- inputs and reference ------------------------------------------------------------------
    def make_weights(self, shape: dict):
        torch = self.torch
        E, H, I = shape["experts"], shape["hidden"], shape["intermediate"]
        g = torch.Generator(device=self.dev)
        g.manual_seed(WEIGHT_SEED)

        def draw(*size):
            t = torch.randn(*size, generator=g, device=self.dev, dtype=torch.float32)
            return t.mul_(0.02).to(torch.bfloat16)

        gate = draw(E, H)
        w13 = torch.empty((E, 2 * I, H), dtype=torch.bfloat16, device=self.dev)
        for e in range(E):
            w13[e].copy_(draw(2 * I, H))
        w2 = torch.empty((E, H, I), dtype=torch.bfloat16, device=self.dev)
        for e in range(E):
            w2[e].copy_(draw(H, I))
        return gate, w13, w2

    def make_x(self, T: int, H: int):
        torch = self.torch
        g = torch.Generator(device=self.dev)
        g.manual_seed(1000 + T)
        return torch.randn((T, H), generator=g, device=self.dev, dtype=torch.float32).to(torch.bfloat16)

    def reference(self, x, gate, w13, w2, k: int, renormalize: bool) -> dict:
        """fp32 layer; routing from the same bf16 router GEMM as the peers; tokens with a tie at the
        k-th place are left out of the comparison."""
        torch, F = self.torch, self.F
        T = x.size(0)
        E = gate.size(0)
        I = w2.size(2)
        logits = F.linear(x, gate)
        probs = torch.softmax(logits.float(), dim=-1)
        sp, si = torch.sort(probs, dim=-1, descending=True, stable=True)
        w = sp[:, :k]
        ids = si[:, :k]
        tied = (sp[:, k - 1] == sp[:, k]) if k < E else torch.zeros(T, dtype=torch.bool, device=self.dev)
        if renormalize:
            w = w / w.sum(dim=-1, keepdim=True)
        xf = x.float()
        out = torch.zeros((T, w2.size(1)), dtype=torch.float32, device=self.dev)
        experts = torch.unique(ids).tolist()
        for e in experts:
            tok, slot = (ids == e).nonzero(as_tuple=True)
            h = xf[tok] @ w13[e].float().t()
            a = F.silu(h[:, :I]) * h[:, I:]
            y = a @ w2[e].float().t()
            out.index_add_(0, tok, y * w[tok, slot].unsqueeze(1))
        return dict(out=out, keep=~tied, tied=int(tied.sum()), active=len(experts))

    def rel_l2(self, y, ref: dict):
        torch = self.torch
        keep = ref["keep"]
        if int(keep.sum()) == 0:
            return None
        yo = y.reshape(ref["out"].shape).float()
        d = (yo - ref["out"])[keep]
        r = ref["out"][keep]
        den = float(torch.linalg.vector_norm(r))
        num = float(torch.linalg.vector_norm(d))
        return num / den if den > 0 else float("nan")

    # --- timing --------------------------------------------------------------------------------
    def time_fn(self, fn, target_s: float, repeats: int, fixed_calls: int | None = None):
        """(median ms per call, [ms per call per repeat], calls per repeat)."""
        torch = self.torch
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        fn()
        fn()
        torch.cuda.synchronize()
        start.record()
        for _ in range(3):
            fn()
        end.record()
        end.synchronize()
        est = max(start.elapsed_time(end) / 3, 1e-3)
        warm = min(int(0.03 * 1000 / est), 500)  # ~30 ms more of warm-up
        for _ in range(warm):
            fn()
        calls = fixed_calls or max(2, min(5000, int(round(target_s * 1000 / repeats / est))))
        times = []
        for _ in range(repeats):
            torch.cuda.synchronize()
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / calls)
        return statistics.median(times), times, calls

    def host_sync(self, fn) -> str | None:
        """Runs fn once with torch's sync debug mode on 'error': the message if fn synchronises
        with the host (a graph capture of it would fail), else None."""
        torch = self.torch
        prev = torch.cuda.get_sync_debug_mode()
        try:
            torch.cuda.set_sync_debug_mode("error")
            fn()
            return None
        except RuntimeError as e:
            return str(e).strip().splitlines()[0][:300]
        finally:
            torch.cuda.set_sync_debug_mode(prev)
            torch.cuda.synchronize()

    def capture(self, fn):
        """Warm-up on a side stream, then capture fn into a CUDA graph: (graph, static output)."""
        torch = self.torch
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        gc.collect()
        g = torch.cuda.CUDAGraph()
        cs = torch.cuda.Stream()
        with torch.cuda.stream(cs):
            g.capture_begin()
            try:
                out = fn()
            except BaseException:
                try:
                    g.capture_end()
                except Exception:  # noqa: BLE001 - the capture is invalid anyway
                    pass
                raise
            g.capture_end()
        torch.cuda.synchronize()
        return g, out

    def measure(self, fn, ref: dict, row: dict, target_s: float | None = None, repeats: int | None = None,
                modes=None, sync_ok_check: bool = True) -> None:
        """Fills row's eager and graph numbers for fn (a callable returning the layer output)."""
        torch = self.torch
        a = self.args
        target_s = a.target if target_s is None else target_s
        repeats = a.reps if repeats is None else repeats
        modes = a.mode_list if modes is None else modes
        out = fn()
        torch.cuda.synchronize()
        row["relL2"] = self.rel_l2(out, ref)
        if row["relL2"] is None:
            row["relL2Note"] = "every token has a tie at the top-k boundary: nothing to compare"
        del out
        if "eager" in modes:
            ms, reps, calls = self.time_fn(fn, target_s, repeats, a.iters)
            row.update(ms=ms, msRepeats=reps, iters=calls)
        if "graph" in modes:
            try:
                if sync_ok_check and not a.force_capture:
                    why = self.host_sync(fn)
                    if why:
                        raise Skip(f"not capturable: the forward synchronises with the host ({why})")
                g, gout = self.capture(fn)
                try:
                    g.replay()
                    torch.cuda.synchronize()
                    row["graphRelL2"] = self.rel_l2(gout, ref)
                    ms, reps, calls = self.time_fn(g.replay, target_s, repeats, a.iters)
                    row.update(graphMs=ms, graphMsRepeats=reps, graphIters=calls)
                finally:
                    del g, gout
                    gc.collect()
                    torch.cuda.empty_cache()
            except Skip as e:
                row["graphError"] = str(e)
            except Exception as e:  # noqa: BLE001
                row["graphError"] = _err(e)
                why = self.healthy()
                if why:
                    raise RuntimeError(f"graph capture left CUDA unusable: {why}") from e

    # --- peers ---------------------------------------------------------------------------------
    def build_hf(self, shape: dict, impl: str, weights):
        torch = self.torch
        import transformers

        info: dict = {}
        E, H, I, k = shape["experts"], shape["hidden"], shape["intermediate"], shape["topk"]
        if impl != "eager":
            try:
                from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS

                keys = None
                if hasattr(ALL_EXPERTS_FUNCTIONS, "valid_keys"):
                    keys = list(ALL_EXPERTS_FUNCTIONS.valid_keys())
                elif hasattr(ALL_EXPERTS_FUNCTIONS, "_global_mapping"):
                    keys = list(ALL_EXPERTS_FUNCTIONS._global_mapping.keys())
                if keys is not None and impl not in keys:
                    raise Skip(f"transformers {transformers.__version__} has no experts implementation {impl!r} (has {keys})")
            except ImportError as e:
                raise Skip(f"transformers {transformers.__version__} has no experts implementations ({_err(e)})") from e
        if shape["family"] == "olmoe":
            try:
                from transformers import OlmoeConfig
                from transformers.models.olmoe.modeling_olmoe import OlmoeSparseMoeBlock as Block

                cfg = OlmoeConfig(hidden_size=H, intermediate_size=I, num_experts=E, num_experts_per_tok=k,
                                  norm_topk_prob=False)
                renormalize = bool(getattr(cfg, "norm_topk_prob", False))
            except Exception as e:  # noqa: BLE001
                from transformers import MixtralConfig
                from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock as Block

                cfg = MixtralConfig(hidden_size=H, intermediate_size=I, num_local_experts=E, num_experts_per_tok=k)
                renormalize = True
                info["blockFallback"] = f"OlmoeSparseMoeBlock unavailable ({_err(e)}): MixtralSparseMoeBlock (renormalised top-k)"
        else:
            from transformers import MixtralConfig
            from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock as Block

            cfg = MixtralConfig(hidden_size=H, intermediate_size=I, num_local_experts=E, num_experts_per_tok=k)
            renormalize = True
        if hasattr(cfg, "router_jitter_noise"):
            cfg.router_jitter_noise = 0.0
        used = None
        for attr in ("_experts_implementation", "experts_implementation"):
            try:
                setattr(cfg, attr, impl)
                used = f"{attr}={impl}"
                break
            except Exception:  # noqa: BLE001
                continue
        try:
            with torch.device("meta"):
                block = Block(cfg)
            built = "meta"
        except Exception:  # noqa: BLE001
            block = Block(cfg)
            built = "cpu"
        load_block_weights(torch, block, *weights)
        if built == "cpu":
            block.to(self.dev)
        for name, b in block.named_buffers():
            if b.is_meta:
                raise RuntimeError(f"buffer {name} has no value (built on the meta device)")
        block.eval()
        actual = None
        for holder in (getattr(block, "experts", None), block):
            c = getattr(holder, "config", None)
            if c is not None:
                actual = getattr(c, "_experts_implementation", None) or getattr(c, "experts_implementation", None)
                if actual:
                    break
        if impl != "eager" and actual not in (None, impl):
            raise Skip(f"the block runs {actual!r}, not {impl!r}")
        if impl != "eager" and actual is None:
            raise Skip(f"transformers {transformers.__version__}: the block has no experts implementation switch")
        info.update(block=type(block).__name__, config=used, actual=actual, renormalize=renormalize)
        return block, info

    def run(self) -> int:
        torch = self.torch
        a = self.args
        emit = self.emit
        work = a.work_items
        order = []
        for it in work:
            if it[0] not in order:
                order.append(it[0])
        for sname in order:
            shape = SHAPES[sname]
            mine = [it for it in work if it[0] == sname]
            tokens = sorted({it[1] for it in mine})
            E, H, I, k = shape["experts"], shape["hidden"], shape["intermediate"], shape["topk"]
            emit({"begin": {"shape": sname, "stage": "setup"}})
            try:
                weights = self.make_weights(shape)
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                for it in mine:
                    emit({"row": dict(base_row(*it), error=f"weights: {_err(e)}")})
                why = self.healthy()
                if why:
                    emit({"abort": f"CUDA unusable after setting up {sname}: {why}"})
                    return 3
                continue
            log(f"[{sname}] weights ready (E {E}, H {H}, I {I}, k {k}); {len(mine)} configurations")
            peers: dict[str, object] = {}
            refs: dict[tuple[int, bool], dict] = {}
            for T in tokens:
                impls = [it[2] for it in mine if it[1] == T]
                x = None
                for impl in impls:
                    row = base_row(sname, T, impl)
                    if self.deadline_passed():
                        row["skipped"] = "budget: this process's share of --budget-s was used"
                        emit({"row": row})
                        continue
                    emit({"begin": {"shape": sname, "T": T, "impl": impl}})
                    t_start = time.time()
                    try:
                        if x is None:
                            x = self.make_x(T, H)
                        if impl == VLLM:
                            self.run_vllm(peers, shape, weights, x, T, row, refs)
                        else:
                            self.run_hf(peers, shape, impl, weights, x, T, row, refs)
                    except Skip as e:
                        row["skipped"] = str(e)
                    except Exception as e:  # noqa: BLE001
                        row["error"] = _err(e)
                        row["trace"] = traceback.format_exc(limit=6)[-1500:]
                    flag_row(row)
                    row["wallS"] = round(time.time() - t_start, 2)
                    emit({"row": row})
                    log(progress_line(row))
                    why = self.healthy()
                    if why:
                        emit({"abort": f"CUDA unusable after {sname} T={T} {impl}: {why}"})
                        return 3
                del x
            peers.clear()
            refs.clear()
            del weights
            gc.collect()
            torch.cuda.empty_cache()
        return 0

    def ref_for(self, refs, weights, x, T, k, renormalize):
        key = (T, bool(renormalize))
        if key not in refs:
            refs[key] = self.reference(x, *weights, k, renormalize)
        return refs[key]

    def run_hf(self, peers, shape, impl, weights, x, T, row, refs) -> None:
        torch = self.torch
        k, H, I = shape["topk"], shape["hidden"], shape["intermediate"]
        if impl == "batched_mm":
            gib = T * k * 3 * H * I * 2 / 2**30
            if gib > self.args.batched_mm_max_gib:
                raise Skip(f"batched_mm gathers {gib:.1f} GiB of expert weights at this T (over --batched-mm-max-gib {self.args.batched_mm_max_gib:g})")
        if impl not in peers:
            try:
                peers[impl] = self.build_hf(shape, impl, weights)
            except Exception as e:  # noqa: BLE001 - remembered: every T of this peer reports it
                peers[impl] = e
        built = peers[impl]
        if isinstance(built, BaseException):
            raise built
        block, info = built
        row.update(info)
        ref = self.ref_for(refs, weights, x, T, k, info["renormalize"])
        row["activeExperts"] = ref["active"]
        row["tiedTokens"] = ref["tied"]
        x3 = x.view(1, T, H)

        def fn():
            out = block(x3)
            return out[0] if isinstance(out, tuple) else out

        self.measure(fn, ref, row)

    def run_vllm(self, peers, shape, weights, x, T, row, refs) -> None:
        torch = self.torch
        import vllm_fused_moe as V

        a = self.args
        E, H, I, k, renorm = shape["experts"], shape["hidden"], shape["intermediate"], shape["topk"], shape["renormalize"]
        if VLLM not in peers:
            try:
                ops = V.TritonOps()
                state = {"config": None}
                layer = V.FusedMoELayer(weights[0], weights[1], weights[2], k, renorm, lambda M: state["config"], ops)
                peers[VLLM] = (layer, ops, state)
            except Exception as e:  # noqa: BLE001
                peers[VLLM] = e
        built = peers[VLLM]
        if isinstance(built, BaseException):
            raise built
        layer, tops, state = built
        ref = self.ref_for(refs, weights, x, T, k, renorm)
        row["activeExperts"] = ref["active"]
        row["tiedTokens"] = ref["tied"]
        row["naive"] = V.use_naive_block_assignment(T, k, E)
        # candidates: what vLLM runs, or a sweep where nothing ships for this GPU and shape
        shipped = C.shipped_table(self.device_file, E, I) is not None
        if a.sweep == "off" or (a.sweep == "auto" and shipped):
            cfg, src = C.vllm_config(self.device_file, E, I, H, k, T)
            cands = [(src, cfg)]
        else:
            cands = C.sweep_candidates(self.device_file, E, I, H, k, T, limit=a.sweep_max)
        # the Triton helpers against the torch pieces at this T (fallback to torch per helper)
        status = V.check_helpers(tops, x, weights[0], k, renorm, [c["BLOCK_SIZE_M"] for _, c in cands])
        use = {name: (v is True) for name, v in status.items()}
        layer.ops = V.MixedOps(tops, use)
        row["helpers"] = {name: ("triton" if v is True else f"torch ({v})") for name, v in status.items()}

        def fn():
            return layer(x)

        sweep = []
        if len(cands) > 1:
            for label, cfg in cands:
                entry = dict(label=label, tile=dict(cfg))
                state["config"] = cfg
                try:
                    self.measure(fn, ref, entry, target_s=min(0.04, a.target), repeats=2,
                                 modes=["graph"] if "graph" in a.mode_list else ["eager"], sync_ok_check=False)
                except Exception as e:  # noqa: BLE001
                    entry["error"] = _err(e)
                    why = self.healthy()
                    if why:
                        sweep.append(entry)
                        row["sweep"] = sweep
                        raise RuntimeError(f"tile {C.config_key(cfg)} left CUDA unusable: {why}") from e
                for key in ("msRepeats", "graphMsRepeats", "iters", "graphIters", "activeExperts", "tiedTokens",
                            "relL2Flag", "peer", "shape", "T", "impl"):
                    entry.pop(key, None)
                sweep.append({k2: v for k2, v in entry.items() if v is not None})
                log(f"    sweep {sname_of(shape)} T={T} {C.config_key(cfg)}: "
                    f"{fmt_ms(entry.get('graphMs', entry.get('ms')))} ms, relL2 {entry.get('relL2')}"
                    + (f" [{entry['error'][:120]}]" if entry.get("error") else "") + f" ({label})")
            row["sweep"] = sweep

            def score(e):
                r = e.get("relL2")
                v = e.get("graphMs", e.get("ms"))
                ok = not e.get("error") and _finite(v) and (r is None or (_finite(r) and r <= REL_L2_FLAG))
                return v if ok else float("inf")

            best = min(range(len(cands)), key=lambda i: score(sweep[i]))
            if not math.isfinite(score(sweep[best])):
                raise RuntimeError("every tile candidate failed: " + "; ".join(
                    f"{C.config_key(c)}: {sweep[i].get('error') or 'relL2 ' + str(sweep[i].get('relL2'))}"
                    for i, (_, c) in enumerate(cands)))
            label, cfg = cands[best]
            row["tileSource"] = f"sweep of {len(cands)}: {label}"
        else:
            label, cfg = cands[0]
            row["tileSource"] = label
        row["tile"] = dict(cfg)
        state["config"] = cfg
        self.measure(fn, ref, row)


def sname_of(shape: dict) -> str:
    return next((n for n, s in SHAPES.items() if s is shape), "?")


def progress_line(row: dict) -> str:
    head = f"  {row['shape']} T={row['T']:<5} {row['impl']:<15}"
    if row.get("skipped"):
        return f"{head} skipped: {row['skipped']}"
    if row.get("error"):
        return f"{head} ERROR {row['error'][:300]}"
    parts = [f"eager {fmt_ms(row.get('ms'))} ms", f"graph {fmt_ms(row.get('graphMs'))} ms"]
    r, g = row.get("relL2"), row.get("graphRelL2")
    parts.append(f"relL2 {r:.1e}" if _finite(r) else "relL2 -")
    if g is not None:
        parts.append(f"graph relL2 {g:.1e}" if _finite(g) else "graph relL2 -")
    parts.append(f"active {row.get('activeExperts')}")
    if row.get("tiedTokens"):
        parts.append(f"tied {row['tiedTokens']}")
    if row.get("tile"):
        parts.append(f"tile {C.config_key(row['tile'])}")
    if row.get("relL2Flag"):
        parts.append("FLAGGED")
    if row.get("graphError"):
        parts.append(f"graph: {row['graphError'][:160]}")
    return f"{head} " + ", ".join(parts)


def load_block_weights(torch, block, gate_w, w13, w2) -> None:
    """Puts the shared weights into a transformers MoE block by parameter name: the router
    (gate.weight [E, H]), the fused 3-D experts (experts.gate_up_proj [E, 2I, H] gate rows first,
    or experts.gate_proj / up_proj [E, I, H]; experts.down_proj [E, H, I]; or their transposes), or the older per-expert Linear layers
    (experts.N.w1/w3/w2 or gate_proj/up_proj/down_proj). Any other parameter is an error: the
    reference would not know it."""
    import re

    E, H, I = w2.size(0), w2.size(1), w2.size(2)
    per_expert = re.compile(r"^(?:.*\.)?experts\.(\d+)\.(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight$")

    def put(name: str, value) -> None:
        *path, leaf = name.split(".")
        mod = block
        for p in path:
            mod = getattr(mod, p)
        old = getattr(mod, leaf)
        if tuple(old.shape) != tuple(value.shape):
            raise ValueError(f"{name}: shape {tuple(old.shape)}, weights {tuple(value.shape)}")
        setattr(mod, leaf, torch.nn.Parameter(value, requires_grad=False))

    for name, p in list(block.named_parameters()):
        shape = tuple(p.shape)
        m = per_expert.match(name)
        if m:
            e, which = int(m.group(1)), m.group(2)
            if which in ("w1", "gate_proj"):
                put(name, w13[e, :I])
            elif which in ("w3", "up_proj"):
                put(name, w13[e, I:])
            else:
                put(name, w2[e])
        elif name.endswith("gate.weight") and shape == tuple(gate_w.shape):
            put(name, gate_w)
        elif name.endswith("gate_up_proj"):
            if shape == (E, 2 * I, H):
                put(name, w13)
            elif shape == (E, H, 2 * I):
                put(name, w13.transpose(1, 2).contiguous())
            else:
                raise ValueError(f"{name}: unexpected shape {shape}")
        elif (name.endswith("gate_proj") or name.endswith("up_proj")) and p.dim() == 3:
            half = w13[:, :I] if name.endswith("gate_proj") else w13[:, I:]  # not concatenated
            if shape == (E, I, H):
                put(name, half.contiguous())
            elif shape == (E, H, I):
                put(name, half.transpose(1, 2).contiguous())
            else:
                raise ValueError(f"{name}: unexpected shape {shape}")
        elif name.endswith("down_proj") and p.dim() == 3:
            if shape == (E, H, I):
                put(name, w2)
            elif shape == (E, I, H):
                put(name, w2.transpose(1, 2).contiguous())
            else:
                raise ValueError(f"{name}: unexpected shape {shape}")
        else:
            raise ValueError(f"unexpected parameter {name} {shape}: the reference layer would not include it")
    for name, p in block.named_parameters():
        if p.is_meta:
            raise ValueError(f"parameter {name} was not set")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        if not (args.work and args.records):
            raise SystemExit("--child needs --work and --records")
        return child_entry(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
