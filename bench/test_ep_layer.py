"""Tests of bench/ep_layer.py that run without a GPU.

  python3 bench/test_ep_layer.py          # the plan (numpy) and the readers always; with torch
  python3 bench/test_ep_layer.py -v       # importable also the layer itself on 1 and 2 CPU ranks
                                          # (gloo, float64) against a single-process reference

The reference here is written independently of the layer: for every token, the sum over its
kept (expert, weight) pairs of weight * SwiGLU expert(x), from the same seeded weights and
hidden states. With float64 the expert-parallel output must equal it to rounding (the dispatch
and combine move and add rows; they change no value). The JSON is validated against
bench/ep-layer.schema.json when the jsonschema package is importable (Debian: python3-jsonschema).
"""
from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import ep_layer as EP  # noqa: E402

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except Exception:  # noqa: BLE001
    HAVE_TORCH = False
try:
    import jsonschema

    HAVE_JSONSCHEMA = True
except Exception:  # noqa: BLE001
    HAVE_JSONSCHEMA = False


def write_trace(path: str, T: int, E: int, k: int, seed: int, layer: int = 3, skew: int | None = None) -> list[list[int]]:
    """A random JSONL trace (optionally every token on expert `skew` first), gzipped by suffix."""
    rnd = random.Random(seed)
    recs = []
    for t in range(T):
        ex = rnd.sample(range(E), k)
        if skew is not None and skew not in ex:
            ex[0] = skew
        w = [rnd.random() + 0.1 for _ in range(k)]
        s = sum(w)
        recs.append(dict(layer=layer, token=t, experts=ex, weights=[x / s for x in w]))
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "wt") as f:
        f.write(json.dumps(dict(layer=layer + 1, token=0, experts=list(range(k)), weights=[1 / k] * k)) + "\n")  # another layer: skipped
        for r in recs:
            f.write(json.dumps(r) + "\n")
    return [r["experts"] for r in recs]


def write_decisions(path: str, experts: list[list[int]], T: int, capacity: int, seed: int) -> None:
    """Route-output lines (one per batch of T tokens): each expert keeps its first `capacity`
    pairs in token order, the rest are dropped; kept weights are fresh numbers."""
    rnd = random.Random(seed)
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "wt") as f:
        for b in range(len(experts) // T):
            load: dict[int, int] = {}
            toks = []
            for ex in experts[b * T:(b + 1) * T]:
                kept, dropped = [], []
                for e in ex:
                    load[e] = load.get(e, 0) + 1
                    if load[e] <= capacity:
                        kept.append([e, round(rnd.random(), 6)])
                    else:
                        dropped.append([e, 0.1, "capacity"])
                toks.append(dict(kept=kept, dropped=dropped))
            f.write(json.dumps(dict(capacity=capacity, tokens=toks, load=[], loadBefore=[], droppedFraction=0, gateMassKept=1)) + "\n")


class Plan(unittest.TestCase):
    """The plan follows the simulator's conventions (sources, replicas, dedupe, bytes)."""

    def reps(self, phy2log, N, E):
        return EP.Replicas(phy2log, N, E)

    def test_dedupe_copies_splits_and_bytes_by_hand(self):
        # E=4 on 2 devices: experts 0,1 on device 0; 2,3 on device 1 (like the simulator's own test)
        reps = self.reps([0, 1, 2, 3], 2, 4)
        ids = np.array([[0, 1], [0, 2], [2, 3], [1, 3]])
        pt, pe, pw = EP.pairs_from_trace(ids, np.full((4, 2), 0.5))
        plan = EP.build_plan(pt, pe, pw, 4, 2, reps, True, 100)
        self.assertEqual(plan["deviceRows"], [4, 4])
        # cross-device copies: token 1 -> device 1, token 3 -> device 0
        self.assertEqual(plan["sent"], [100, 100])
        self.assertEqual(plan["recv"], [100, 100])
        r0, r1 = plan["ranks"]
        self.assertEqual((r0["start"], r0["tokens"], r1["start"], r1["tokens"]), (0, 2, 2, 2))
        # rank 0 sends tokens 0,1 to itself and token 1 to device 1 (ordered by destination, token)
        self.assertEqual(r0["send_idx"].tolist(), [0, 1, 1])
        self.assertEqual(r0["send_splits"], [2, 1])
        # rank 0 receives its own tokens 0,1 then token 3 from rank 1
        self.assertEqual(r0["recv_splits"], [2, 1])
        self.assertEqual(r0["recv_rows"], 3)
        # rank 0's pairs by slot: expert 0 <- rows 0 (t0), 1 (t1); expert 1 <- rows 0 (t0), 2 (t3)
        self.assertEqual(r0["pair_rows"].tolist(), [0, 1, 0, 2])
        self.assertEqual(r0["slot_counts"].tolist(), [2, 2])

    def test_pair_mode_sends_one_copy_per_pair(self):
        reps = self.reps([0, 1, 2, 3], 2, 4)
        pt, pe, pw = EP.pairs_from_trace(np.array([[2, 3]]), np.ones((1, 2)))
        dd = EP.build_plan(pt, pe, pw, 1, 2, reps, True, 10)
        pp = EP.build_plan(pt, pe, pw, 1, 2, reps, False, 10)
        self.assertEqual(dd["sent"], [10, 0])
        self.assertEqual(pp["sent"], [20, 0])
        self.assertEqual(pp["ranks"][1]["recv_rows"], 2)
        self.assertEqual(pp["ranks"][1]["pair_rows"].tolist(), [0, 1])

    def test_replicas_round_robin_by_token_in_slot_order(self):
        # expert 0 has slots 0 (device 0) and 3 (device 1); token t uses replica t mod 2
        reps = self.reps([0, 1, 2, 0], 2, 3)
        ids = np.array([[0], [0], [0], [0], [1]])
        pt, pe, pw = EP.pairs_from_trace(ids, np.ones((5, 1)))
        plan = EP.build_plan(pt, pe, pw, 5, 2, reps, True, 1)
        self.assertEqual(plan["slotRows"], [[2, 1], [0, 2]])  # tokens 0,2 on device 0; 1,3 on device 1
        self.assertEqual(plan["deviceRows"], [3, 2])

    def test_sources_are_the_simulators_contiguous_shards(self):
        reps = self.reps(list(range(8)), 4, 8)
        T = 10
        pt, pe, pw = EP.pairs_from_trace(np.zeros((T, 1), dtype=np.int64), np.ones((T, 1)))
        plan = EP.build_plan(pt, pe, pw, T, 4, reps, True, 1)
        sim = [min(3, (t * 4) // T) for t in range(T)]
        for r, me in enumerate(plan["ranks"]):
            self.assertEqual(list(range(me["start"], me["start"] + me["tokens"])), [t for t in range(T) if sim[t] == r])

    def test_random_plans_conserve_pairs_and_bytes(self):
        rnd = np.random.default_rng(3)
        for trial in range(20):
            N = int(rnd.integers(1, 6))
            E = N * int(rnd.integers(1, 4))
            extra = list(rnd.integers(0, E, size=int(rnd.integers(0, 3)) * N))
            phy2log = list(range(E)) + [int(e) for e in extra]
            rnd.shuffle(phy2log)
            reps = self.reps(phy2log, N, E)
            T = int(rnd.integers(1, 40))
            k = min(E, int(rnd.integers(1, 4)))
            ids = np.array([rnd.choice(E, size=k, replace=False) for _ in range(T)])
            keep = rnd.random((T, k)) < 0.8
            pt, pe, pw = EP.pairs_from_trace(ids, np.ones((T, k)))
            sel = keep.reshape(-1)
            for dedupe in (True, False):
                plan = EP.build_plan(pt[sel], pe[sel], pw[sel], T, N, reps, dedupe, 3)
                self.assertEqual(sum(plan["deviceRows"]), int(sel.sum()))
                self.assertEqual(sum(plan["sent"]), sum(plan["recv"]))
                self.assertEqual(sum(len(r["pair_rows"]) for r in plan["ranks"]), int(sel.sum()))
                for r in range(N):
                    me = plan["ranks"][r]
                    self.assertEqual(sum(me["send_splits"]), len(me["send_idx"]))
                    self.assertEqual(sum(me["recv_splits"]), me["recv_rows"])
                    self.assertEqual(sum(plan["ranks"][s]["send_splits"][r] for s in range(N)), me["recv_rows"], (trial, r))
                    if me["recv_rows"]:
                        self.assertTrue(me["pair_rows"].max() < me["recv_rows"])


class Readers(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.d = self.dir.name

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, text):
        p = os.path.join(self.d, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_placement_formats(self):
        row = [5, 7, 6, 2, 1, 4, 3, 7, 6, 0]
        for text, fmt in [
            (json.dumps({"phy2log": [row], "log2phy": [], "logcnt": []}), "eplb"),
            (json.dumps({"format": "moe-route.placement/v1", "numGpus": 2, "numExperts": 8, "phy2log": [row]}), "moe-route"),
            (json.dumps({"physical_to_logical_map": [row]}), "sglang"),
            (json.dumps({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 2, "device_list": [
                {"device_id": 0, "device_expert": row[:5]}, {"device_id": 1, "device_expert": row[5:]}]}]}), "vllm"),
            (json.dumps(row), "eplb"),
        ]:
            got, f = EP.read_placement(self.write("p.json", text), 2, 8)
            self.assertEqual((got, f), (row, fmt))

    def test_placement_errors_name_the_problem(self):
        cases = [
            ("num_slots: 8\n", "YAML"),
            ("{not json", "not JSON"),
            (json.dumps({"phy2log": [[0, 1, 2]]}), "do not divide"),
            (json.dumps({"phy2log": [[0, 1, 2, 9]]}), "outside 0..7"),
            (json.dumps({"phy2log": [[0, 1, 2, 3]]}), "have no slot"),
            (json.dumps({"format": "moe-route.placement/v1", "numGpus": 4, "phy2log": [list(range(8))]}), "4 GPUs"),
            (json.dumps({"hello": 1}), "not a placement file"),
        ]
        for text, msg in cases:
            with self.assertRaises(EP.InputError) as cm:
                EP.read_placement(self.write("p.json", text), 2, 8)
            self.assertIn(msg, str(cm.exception))

    def test_trace_reads_one_layer_and_checks_records(self):
        p = os.path.join(self.d, "t.jsonl.gz")
        experts = write_trace(p, 12, 8, 2, seed=1)
        ids, w, layer, missing = EP.read_trace(p, 8, 2, 1)
        self.assertEqual(layer, 4)  # the first record's layer
        ids, w, layer, missing = EP.read_trace(p, 8, 2, 12, layer=3)
        self.assertEqual(ids.tolist(), experts)
        self.assertTrue(np.allclose(w.sum(axis=1), 1))
        with self.assertRaises(EP.InputError) as cm:
            EP.read_trace(p, 8, 2, 13, layer=3)
        self.assertIn("12 records of layer 3, 13 needed", str(cm.exception))
        for line, msg in [('{"layer": 0, "token": 0, "experts": [1, 9], "weights": [0.5, 0.5]}', "distinct ids in 0..7"),
                          ('{"layer": 0, "token": 0, "experts": [1], "weights": [1]}', "top-2"),
                          ('{"layer": 0, "token": 0, "experts": [1, 2], "weights": [0.5, "x"]}', "finite numbers"),
                          ('{"layer": "0", "experts": [1, 2]}', "integer \"layer\""),
                          ('[1, 2', "not JSON")]:
            with self.assertRaises(EP.InputError) as cm:
                EP.read_trace(self.write("bad.jsonl", line + "\n"), 8, 2, 1)
            self.assertIn(msg, str(cm.exception))

    def test_decisions_are_checked_against_the_trace(self):
        p = os.path.join(self.d, "t.jsonl")
        experts = write_trace(p, 8, 8, 2, seed=2)
        d = os.path.join(self.d, "d.jsonl")
        write_decisions(d, experts, 4, capacity=1, seed=3)
        dec = EP.read_decisions(d, 2, 4, 8)
        ids = np.array(experts)
        pt, pe, pw = EP.pairs_from_decisions(dec[0], ids[:4], "d.jsonl", 0)
        self.assertLess(len(pt), 8)  # capacity 1 drops pairs
        with self.assertRaises(EP.InputError) as cm:
            EP.pairs_from_decisions(dec[1], ids[:4], "d.jsonl", 1)  # batch 1's decisions against batch 0's tokens
        self.assertIn("differ from the trace", str(cm.exception))
        with self.assertRaises(EP.InputError) as cm:
            EP.read_decisions(d, 3, 4, 8)
        self.assertIn("2 decision lines, 3 batches", str(cm.exception))
        with self.assertRaises(EP.InputError) as cm:
            EP.read_decisions(d, 1, 5, 8)
        self.assertIn("4 tokens, the batch has 5", str(cm.exception))
        with self.assertRaises(EP.InputError) as cm:
            EP.read_decisions(self.write("x.jsonl", '{"tokens": [{"kept": [[8, 0.5]], "dropped": []}]}\n'), 1, 1, 8)
        self.assertIn("kept[0] must be [expert in 0..7", str(cm.exception))


def reference_layer(torch, shape, trace_ids, trace_w, decisions, b, T, weight_seed, x_seed):
    """out[t] = sum over kept (e, w) of w * expert_e(x[t]), float64, one token at a time."""
    F = torch.nn.functional
    H, I = shape["hidden"], shape["intermediate"]
    x = EP.batch_hidden(torch, b, T, H, x_seed, torch.device("cpu"), torch.float64)
    W = {}
    out = torch.zeros((T, H), dtype=torch.float64)
    for t in range(T):
        if decisions is None:
            pairs = list(zip(trace_ids[b * T + t], trace_w[b * T + t]))
        else:
            pairs = decisions[b]["kept"][t]
        for e, w in pairs:
            if e not in W:
                W[e] = [a.to(torch.float64) for a in EP.expert_weights(torch, int(e), shape, weight_seed, torch.device("cpu"), torch.float64)]
            w13, w2 = W[e]
            h = x[t] @ w13.t()
            out[t] += float(w) * ((F.silu(h[:I]) * h[I:]) @ w2.t())
    return out


@unittest.skipUnless(HAVE_TORCH, "torch is not importable here")
class LayerOnCpu(unittest.TestCase):
    """The layer on gloo ranks equals the single-process reference; its JSON validates."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        cls.shape = dict(EP.SHAPES["tiny-mixtral"])
        cls.T, cls.B = 13, 2
        cls.experts = write_trace(os.path.join(d, "trace.jsonl.gz"), cls.T * cls.B, 8, 2, seed=5, skew=6)
        write_decisions(os.path.join(d, "drop.jsonl"), cls.experts, cls.T, capacity=3, seed=6)
        # EPLB-like: expert 6 (hot) and 7 replicated, 5 slots per device
        with open(os.path.join(d, "eplb.json"), "w") as f:
            json.dump({"phy2log": [[5, 7, 6, 2, 1, 4, 3, 7, 6, 0]]}, f)
        with open(os.path.join(d, "contiguous.json"), "w") as f:
            json.dump({"format": "moe-route.placement/v1", "numGpus": 2, "numExperts": 8, "phy2log": [list(range(8))]}, f)
        with open(os.path.join(d, "one.json"), "w") as f:
            json.dump({"phy2log": [list(range(8))]}, f)
        variants = [dict(name="none", decisions=None), dict(name="drop", decisions="drop.jsonl", capacityFactor=1.0)]

        def manifest(name, devices, placements):
            m = dict(schema=EP.MANIFEST_SCHEMA, devices=devices, configs=[
                dict(name=f"tiny/{p}", shape="tiny-mixtral", trace="trace.jsonl.gz", layer=3, placement=f"{p}.json",
                     placementName=p, tokensPerBatch=cls.T, batches=cls.B, variants=variants) for p in placements])
            path = os.path.join(d, name)
            with open(path, "w") as f:
                json.dump(m, f)
            return path

        cls.runs = {}
        for label, devices, placements, extra in [("n2", 2, ["eplb", "contiguous"], []), ("n2pair", 2, ["eplb"], ["--dispatch", "pair"]),
                                                   ("n1", 1, ["one"], [])]:
            out = os.path.join(d, f"{label}.json")
            outs = os.path.join(d, f"{label}-outputs")
            cmd = [sys.executable, os.path.join(HERE, "ep_layer.py"), "--nproc", str(devices), "--device", "cpu", "--dtype", "fp64",
                   "--manifest", manifest(f"m-{label}.json", devices, placements), "--out", out, "--save-outputs", outs,
                   "--warmup", "0", "--repeats", "2", *extra]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            cls.runs[label] = (p, out, outs, devices)
        ids, w, _, _ = EP.read_trace(os.path.join(d, "trace.jsonl.gz"), 8, 2, cls.T * cls.B, layer=3)
        cls.ids, cls.w = ids.tolist(), w.tolist()
        cls.decisions = EP.read_decisions(os.path.join(d, "drop.jsonl"), cls.B, cls.T, 8)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def doc(self, label):
        p, out, outs, devices = self.runs[label]
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(out) as f:
            return json.load(f), outs, devices

    def test_outputs_equal_the_single_process_reference(self):
        for label in ("n2", "n2pair", "n1"):
            doc, outs, N = self.doc(label)
            for i, run in enumerate(doc["runs"]):
                dec = self.decisions if run["variant"] == "drop" else None
                for b in range(self.B):
                    parts = [torch.load(os.path.join(outs, f"run{i}-b{b}-r{r}.pt")) for r in range(N)]
                    got = torch.cat(parts)
                    want = reference_layer(torch, self.shape, self.ids, self.w, dec, b, self.T, 1, 2)
                    self.assertEqual(tuple(got.shape), (self.T, self.shape["hidden"]))
                    err = float((got - want).abs().max())
                    self.assertLess(err, 1e-12 * float(want.abs().max()), (label, run["config"], run["variant"], b, err))
                    self.assertLess(run["batches"][b]["check"]["relL2"], 1e-12)

    def test_drop_variant_computes_only_the_kept_pairs(self):
        doc, _, _ = self.doc("n2")
        by = {(r["config"], r["variant"]): r for r in doc["runs"]}
        for cfg in ("tiny/eplb", "tiny/contiguous"):
            none, drop = by[(cfg, "none")], by[(cfg, "drop")]
            for b in range(self.B):
                kept = sum(len(t) for t in self.decisions[b]["kept"])
                self.assertEqual(drop["batches"][b]["pairsKept"], kept)
                self.assertEqual(sum(drop["batches"][b]["deviceRows"]), kept)
                self.assertEqual(none["batches"][b]["pairsKept"], self.T * 2)
                self.assertLess(kept, self.T * 2)  # expert 6 is over capacity in every batch
            self.assertGreater(drop["summary"]["droppedFraction"], 0)
        # the replicated placement splits the hot expert over both devices
        eplb = by[("tiny/eplb", "none")]["batches"][0]["slotRows"]
        self.assertGreater(eplb[0][2], 0)
        self.assertGreater(eplb[1][3], 0)

    def test_pair_mode_moves_at_least_the_deduplicated_bytes(self):
        dd, _, _ = self.doc("n2")
        pp, _, _ = self.doc("n2pair")
        a = next(r for r in dd["runs"] if r["config"] == "tiny/eplb" and r["variant"] == "none")
        b = next(r for r in pp["runs"] if r["variant"] == "none")
        for x, y in zip(a["batches"], b["batches"]):
            self.assertGreaterEqual(sum(y["dispatchBytes"]["sent"]), sum(x["dispatchBytes"]["sent"]))
            self.assertEqual(x["deviceRows"], y["deviceRows"])
        self.assertEqual(pp["meta"]["dispatch"], "pair")

    def test_one_rank_moves_no_bytes(self):
        doc, _, _ = self.doc("n1")
        for run in doc["runs"]:
            for b in run["batches"]:
                self.assertEqual(b["dispatchBytes"], {"sent": [0], "recv": [0]})
                self.assertEqual(len(b["perDevice"]), 1)

    def test_json_has_the_documented_shape(self):
        with open(os.path.join(HERE, "ep-layer.schema.json")) as f:
            schema = json.load(f)
        for label in self.runs:
            doc, _, N = self.doc(label)
            self.assertEqual(doc["schema"], EP.SCHEMA)
            self.assertTrue(doc["complete"])
            self.assertEqual(doc["meta"]["devices"], N)
            self.assertEqual(doc["meta"]["env"], {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"})
            self.assertEqual(doc["meta"]["activationBytes"], 8)
            for run in doc["runs"]:
                for b in run["batches"]:
                    self.assertEqual(len(b["layerMsRepeats"]), 2)
                    self.assertGreaterEqual(b["layerMs"], max(d["expertsMs"] for d in b["perDevice"]))
                    self.assertEqual(len(b["perDevice"]), N)
            if HAVE_JSONSCHEMA:
                jsonschema.validate(doc, schema)
                bad = json.loads(json.dumps(doc))
                bad["runs"][0]["batches"][0]["layerMs"] = -1
                with self.assertRaises(jsonschema.ValidationError):
                    jsonschema.validate(bad, schema)

    def test_bad_input_exits_2_with_the_reason(self):
        p = subprocess.run([sys.executable, os.path.join(HERE, "ep_layer.py"), "--nproc", "1", "--device", "cpu", "--shape", "tiny-mixtral",
                            "--trace", os.path.join(self.d, "trace.jsonl.gz"), "--placement", os.path.join(self.d, "contiguous.json"),
                            "--tokens-per-batch", "13", "--batches", "2", "--out", os.path.join(self.d, "bad.json")],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("placed on 2 GPUs, this run has 1 devices", p.stderr)

    @unittest.skipUnless(HAVE_JSONSCHEMA, "jsonschema is not importable here")
    def test_the_committed_cpu_results_validate(self):
        results = os.path.join(HERE, "results", "ep-cpu")
        with open(os.path.join(HERE, "ep-layer.schema.json")) as f:
            schema = json.load(f)
        files = [f for f in sorted(os.listdir(results)) if f.startswith("ep-layer-") and f.endswith(".json")] if os.path.isdir(results) else []
        self.assertTrue(files, "bench/results/ep-cpu has no ep-layer-*.json")
        for name in files:
            with open(os.path.join(results, name)) as f:
                jsonschema.validate(json.load(f), schema)


if __name__ == "__main__":
    unittest.main()
