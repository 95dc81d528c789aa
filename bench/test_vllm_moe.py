"""Tests of the vLLM fused-MoE port that run without a GPU.

  python3 bench/test_vllm_moe.py          # config selection (pure Python) always; the launcher,
                                          # the alignment and the kernel's indexing (emulated on
                                          # the CPU) when torch is importable, skipped otherwise
  python3 bench/test_vllm_moe.py -v

The Triton kernels themselves only run on the GPU host (bench/peer_mixtral.py checks the helpers
against the torch pieces tested here, and every output against an fp32 reference).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import vllm_moe_configs as C  # noqa: E402

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except Exception:  # noqa: BLE001
    HAVE_TORCH = False


class ConfigSelection(unittest.TestCase):
    def test_device_names(self):
        self.assertEqual(C.device_name_as_file_name("NVIDIA H100 80GB HBM3"), "NVIDIA_H100_80GB_HBM3")
        self.assertEqual(C.device_name_as_file_name("NVIDIA H200"), "NVIDIA_H200")
        self.assertEqual(C.device_name_as_file_name("NVIDIA H200 NVL"), "NVIDIA_H200")  # H200 family
        self.assertEqual(C.device_name_as_file_name("NVIDIA H100 PCIe"), "NVIDIA_H100_PCIe")
        self.assertEqual(C.device_name_as_file_name("NVIDIA A100-SXM4-80GB"), "NVIDIA_A100-SXM4-80GB")
        self.assertEqual(C.device_name_as_file_name("Some GPU/Model  X"), "Some_GPU_Model_X")
        with self.assertRaises(ValueError):
            C.device_name_as_file_name("")

    def test_nearest_m_is_vllms_rule(self):
        table = C.SHIPPED_TABLES[("NVIDIA_H200", 8, 14336)]
        for M, want in [(1, 1), (3, 2), (8, 8), (20, 16), (28, 24), (32, 32), (128, 128), (200, 256),
                        (512, 512), (1280, 1024), (2048, 2048), (2560, 2048), (3000, 3072), (4096, 4096),
                        (100000, 4096)]:
            self.assertEqual(C.nearest_m(table, M), want, M)
            # the exact expression of vLLM's try_get_optimal_moe_config
            self.assertEqual(min(table.keys(), key=lambda x: abs(x - M)), want)

    def test_default_config_matches_vllm_branches(self):
        self.assertEqual(C.get_default_config(1, 8, 14336, 4096, 2), {
            "BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 1,
            "num_warps": 4, "num_stages": 4})
        self.assertEqual(C.get_default_config(64, 8, 14336, 4096, 2), {
            "BLOCK_SIZE_M": 32, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 1,
            "num_warps": 4, "num_stages": 3})
        self.assertEqual(C.get_default_config(128, 8, 14336, 4096, 2), {
            "BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 1,
            "num_warps": 4, "num_stages": 3})
        # tokens per expert > 128 turns grouping on; M > 512 takes 128-row tiles
        self.assertEqual(C.get_default_config(4096, 8, 14336, 4096, 2), {
            "BLOCK_SIZE_M": 128, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 16,
            "num_warps": 8, "num_stages": 3})
        self.assertEqual(C.get_default_config(4096, 64, 1024, 2048, 8)["GROUP_SIZE_M"], 1)

    def test_vllm_config_uses_the_shipped_table_only_where_it_ships(self):
        cfg, src = C.vllm_config("NVIDIA_H200", 8, 14336, 4096, 2, 32)
        self.assertEqual(C.config_key(cfg), (16, 128, 128, 16, 8, 3))
        self.assertIn("E=8,N=14336,device_name=NVIDIA_H200.json", src)
        cfg, src = C.vllm_config("NVIDIA_H100_80GB_HBM3", 8, 14336, 4096, 2, 32)
        self.assertEqual(cfg, C.get_default_config(32, 8, 14336, 4096, 2))
        self.assertTrue(src.startswith("vllm-default"))
        cfg, src = C.vllm_config("NVIDIA_H200", 64, 1024, 2048, 8, 8)  # OLMoE ships nowhere
        self.assertTrue(src.startswith("vllm-default"))

    def test_sweep_candidates(self):
        c = C.sweep_candidates("NVIDIA_H100_80GB_HBM3", 8, 14336, 4096, 2, 1)
        labels = [label for label, _ in c]
        self.assertTrue(labels[0].startswith("vllm-default"))  # what vLLM itself runs comes first
        self.assertTrue(any(label.startswith("fork-tuned") for label in labels))
        self.assertTrue(any("N=7168,device_name=NVIDIA_H100_80GB_HBM3" in label for label in labels))
        self.assertTrue(any("N=14336,device_name=NVIDIA_H200" in label and "other GPU" in label for label in labels))
        keys = [C.config_key(cfg) for _, cfg in c]
        self.assertEqual(len(keys), len(set(keys)))  # de-duplicated
        c = C.sweep_candidates("NVIDIA_H200", 64, 1024, 2048, 8, 128)
        labels = [label for label, _ in c]
        self.assertTrue(labels[0].startswith("vllm-default"))
        self.assertTrue(all("NVIDIA_H200" in label for label in labels[1:]))
        self.assertEqual(len(C.sweep_candidates("NVIDIA_H200", 64, 1024, 2048, 8, 128, limit=2)), 2)
        c = C.sweep_candidates("NVIDIA_H200", 8, 14336, 4096, 2, 4096)
        self.assertIn("E=8,N=14336,device_name=NVIDIA_H200.json", c[0][0])  # shipped first
        c = C.sweep_candidates("Some_GPU", 8, 14336, 4096, 2, 8)
        self.assertEqual(len(c), 1)  # unknown GPU: vLLM's default only

    def test_every_entry_is_a_valid_tile(self):
        for tables in (C.SHIPPED_TABLES, C.FORK_TABLES):
            for key, table in tables.items():
                self.assertEqual(sorted(table), list(table), key)  # ascending, as vLLM's JSON
                for m, entry in table.items():
                    cfg = C.as_config(entry)
                    for k in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K"):
                        v = cfg[k]
                        self.assertTrue(v >= 16 and v & (v - 1) == 0, (key, m, k, v))
                    self.assertIn(cfg["num_warps"], (4, 8))
                    self.assertIn(cfg["num_stages"], (2, 3, 4, 5))
        with self.assertRaises(ValueError):
            C.as_config((16, 64, 128, 1, 4))


def align_by_loops(flat, block_size, num_experts):
    """moe_align_block_size written out with Python lists (the oracle of the oracle)."""
    numel = len(flat)
    max_padded = numel + num_experts * (block_size - 1)
    if numel < num_experts:
        max_padded = min(numel * block_size, max_padded)
    sorted_ids = [numel] * max_padded
    expert_ids = [0] * (-(-max_padded // block_size))
    pos = 0
    for e in range(num_experts):
        mine = [i for i, x in enumerate(flat) if x == e]
        for j, i in enumerate(mine):
            sorted_ids[pos + j] = i
        padded = -(-len(mine) // block_size) * block_size
        for b in range(pos // block_size, (pos + padded) // block_size):
            expert_ids[b] = e
        pos += padded
    return sorted_ids, expert_ids, pos


@unittest.skipUnless(HAVE_TORCH, "torch is not importable here")
class TorchPieces(unittest.TestCase):
    def setUp(self):
        import vllm_fused_moe as V

        self.V = V
        torch.manual_seed(0)

    def test_align_matches_vllms_docstring_example(self):
        topk_ids = torch.tensor([[2, 3, 4], [1, 2, 4], [1, 3, 4], [1, 2, 3]], dtype=torch.int32)
        s, e, n = self.V.moe_align_block_size_torch(topk_ids, 4, 5)
        self.assertEqual(s[:16].tolist(), [3, 6, 9, 12, 0, 4, 10, 12, 1, 7, 11, 12, 2, 5, 8, 12])
        self.assertEqual(s.numel(), 12 + 5 * 3)
        self.assertTrue(all(v == 12 for v in s[16:].tolist()))
        self.assertEqual(e[:4].tolist(), [1, 2, 3, 4])
        self.assertEqual(n.tolist(), [16])
        self.assertEqual((s.dtype, e.dtype, n.dtype), (torch.int32,) * 3)

    def test_align_random_against_loops(self):
        rng = random.Random(1)
        for _ in range(200):
            E = rng.choice([2, 3, 8, 16, 64])
            k = rng.randint(1, min(E, 8))
            T = rng.choice([1, 2, 3, 5, 16, 40, 129])
            bs = rng.choice([1, 4, 16, 32, 64, 128])
            ids = torch.stack([torch.randperm(E)[:k] for _ in range(T)]).to(torch.int32)
            s, e, n = self.V.moe_align_block_size_torch(ids, bs, E)
            ws, we, wn = align_by_loops(ids.reshape(-1).tolist(), bs, E)
            self.assertEqual(s.tolist(), ws)
            self.assertEqual(e.tolist(), we)
            self.assertEqual(n.tolist(), [wn])

    def test_topk_ties_go_to_the_lower_index_and_renormalise(self):
        logits = torch.tensor([[0.0, 1.0, 1.0, 0.5], [2.0, -1.0, 2.0, 2.0]])
        w, ids = self.V.fused_topk_torch(logits, 2, False)
        self.assertEqual(ids.tolist(), [[1, 2], [0, 2]])
        self.assertEqual(ids.dtype, torch.int32)
        self.assertEqual(w.dtype, torch.float32)
        w, _ = self.V.fused_topk_torch(logits, 2, True)
        self.assertTrue(torch.allclose(w.sum(1), torch.ones(2)))
        self.assertTrue(torch.allclose(w, torch.full((2, 2), 0.5)))

    def _layer_case(self, T, E, k, H, I, config, renormalize, dtype=None, seed=0):
        dtype = dtype or torch.float32
        g = torch.Generator().manual_seed(seed)
        x = (torch.randn(T, H, generator=g)).to(dtype)
        gate = (torch.randn(E, H, generator=g) * 0.5).to(dtype)
        w13 = (torch.randn(E, 2 * I, H, generator=g) * 0.2).to(dtype)
        w2 = (torch.randn(E, H, I, generator=g) * 0.2).to(dtype)
        layer = self.V.FusedMoELayer(gate, w13, w2, k, renormalize, lambda M: config, self.V.TorchOps())
        out = layer(x)
        ref = self.V.dense_reference(x, gate, w13, w2, k, renormalize)
        err = float((out.float() - ref).norm() / ref.norm())
        return out, ref, err

    def test_launcher_and_kernel_indexing_against_dense(self):
        """Every path of the launcher (naive one-block-per-slot, the small-batch EM bound, full
        alignment), tiles not dividing N or K, grouped program order: the emulated kernel gives
        the dense MoE layer."""
        cases = [
            # T, E, k, H, I, (BM, BN, BK, GM)
            (1, 8, 2, 48, 40, (16, 32, 16, 16)),     # naive: 1*2*4 <= 8 (Mixtral at T=1)
            (1, 64, 8, 32, 24, (16, 16, 16, 1)),     # naive (OLMoE at T=1)
            (2, 64, 8, 32, 24, (16, 64, 32, 32)),    # naive at the bound: 2*8*4 = 64
            (3, 8, 2, 48, 40, (16, 32, 32, 1)),      # aligned, EM bounded (3 < BM)
            (5, 64, 8, 32, 24, (16, 32, 16, 16)),    # aligned, EM bounded, most experts empty
            (17, 8, 2, 40, 56, (16, 16, 16, 4)),     # aligned, A rows >= BM for GEMM2
            (40, 8, 2, 64, 48, (32, 64, 32, 16)),    # grouped order over several M blocks
            (33, 16, 4, 48, 20, (64, 32, 16, 1)),    # BM > tokens per expert
        ]
        for T, E, k, H, I, (BM, BN, BK, GM) in cases:
            cfg = {"BLOCK_SIZE_M": BM, "BLOCK_SIZE_N": BN, "BLOCK_SIZE_K": BK, "GROUP_SIZE_M": GM,
                   "num_warps": 4, "num_stages": 3}
            for renorm in (True, False):
                with self.subTest(T=T, E=E, k=k, cfg=(BM, BN, BK, GM), renorm=renorm):
                    _, _, err = self._layer_case(T, E, k, H, I, cfg, renorm)
                    self.assertLess(err, 1e-5)

    def test_every_shipped_tile_on_a_small_problem(self):
        """The tiles of the benchmark's candidates drive the same launcher correctly (the kernel
        is emulated; BLOCK_SIZE_K larger than K exercises the K mask)."""
        seen = set()
        for table in list(C.SHIPPED_TABLES.values()) + list(C.FORK_TABLES.values()):
            for entry in table.values():
                if entry[:4] in seen:
                    continue
                seen.add(entry[:4])
                cfg = C.as_config(entry)
                with self.subTest(tile=entry):
                    _, _, err = self._layer_case(6, 8, 2, 40, 36, cfg, True)
                    self.assertLess(err, 1e-5)

    def test_em_bound(self):
        cfg = {"BLOCK_SIZE_M": 16}
        sorted_ids = torch.zeros(200, dtype=torch.int32)
        self.assertEqual(self.V.gemm_em(3, 2, cfg, sorted_ids), 3 * 2 * 16)
        self.assertEqual(self.V.gemm_em(16, 2, cfg, sorted_ids), 200)
        self.assertEqual(self.V.gemm_em(3, 2, cfg, None), 3 * 2 * 16)
        self.assertEqual(self.V.max_num_tokens_padded(2, 8, 16), 32)  # numel < E: numel * block
        self.assertEqual(self.V.max_num_tokens_padded(16, 8, 16), 16 + 8 * 15)
        self.assertTrue(self.V.use_naive_block_assignment(1, 2, 8))
        self.assertFalse(self.V.use_naive_block_assignment(2, 2, 8))
        self.assertTrue(self.V.use_naive_block_assignment(2, 8, 64))
        self.assertFalse(self.V.use_naive_block_assignment(3, 8, 64))

    def test_bf16_layer_close_to_fp32(self):
        cfg = C.as_config((16, 32, 32, 1, 4, 3))
        _, _, err = self._layer_case(9, 8, 2, 64, 48, cfg, True, dtype=torch.bfloat16)
        self.assertLess(err, 2e-2)


def load_port_with_numpy_triton():
    """bench/vllm_fused_moe.py imported afresh with triton_numpy_stub standing in for triton, so
    that TritonOps launches the port's real kernel source (program by program, numpy)."""
    import importlib.util

    import triton_numpy_stub

    saved = {k: sys.modules.get(k) for k in ("triton", "triton.language")}
    try:
        triton_numpy_stub.install()
        spec = importlib.util.spec_from_file_location("vllm_fused_moe_stubbed", os.path.join(HERE, "vllm_fused_moe.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    assert mod.HAVE_TRITON
    return mod


try:
    import numpy  # noqa: F401

    HAVE_NUMPY = True
except Exception:  # noqa: BLE001
    HAVE_NUMPY = False


@unittest.skipUnless(HAVE_TORCH and HAVE_NUMPY, "torch and numpy are needed")
class TritonKernelsOnNumpy(unittest.TestCase):
    """The Triton kernels' own source, run by triton_numpy_stub: every unmasked access in bounds,
    and the results equal to the torch pieces (align, top-k) or the dense layer (fused_moe_kernel)."""

    @classmethod
    def setUpClass(cls):
        cls.V = load_port_with_numpy_triton()
        cls.ops = cls.V.TritonOps()

    def test_align_both_paths_equal_the_torch_reference(self):
        rng = random.Random(2)
        V = self.V
        cases = [(8, 2, 1), (8, 2, 3), (8, 2, 40), (8, 2, 600), (64, 8, 2), (64, 8, 5), (64, 8, 40), (64, 8, 200),
                 (16, 4, 300), (3, 1, 7)]
        for E, k, T in cases:
            for bs in (16, 64, 128):
                ids = torch.stack([torch.randperm(E, generator=torch.Generator().manual_seed(rng.randrange(1 << 30)))[:k]
                                   for _ in range(T)]).to(torch.int32)
                numel = ids.numel()
                e_pad = max(2, V.next_power_of_2(E))
                path = "one program" if numel <= 1024 and max(16, V.next_power_of_2(numel)) * e_pad <= 16384 else "three programs"
                with self.subTest(E=E, k=k, T=T, block=bs, path=path):
                    got = self.ops.align(ids, bs, E)
                    want = V.moe_align_block_size_torch(ids, bs, E)
                    for name, g, w in zip(("sorted_token_ids", "expert_ids", "num_tokens_post_padded"), got, want):
                        self.assertTrue(torch.equal(g, w), f"{name}: {g.tolist()[:40]} vs {w.tolist()[:40]}")

    def test_topk_softmax_equals_torch(self):
        V = self.V
        g = torch.Generator().manual_seed(3)
        for E, k, T, renorm in [(8, 2, 1, True), (8, 2, 37, True), (64, 8, 5, False), (64, 8, 33, True), (6, 3, 17, False)]:
            logits = torch.randn(T, E, generator=g)
            logits[0, :2] = 0.25  # a tie, broken towards the lower index by both
            w, ids = self.ops.topk(logits, k, renorm)
            rw, rids = V.fused_topk_torch(logits, k, renorm)
            with self.subTest(E=E, k=k, T=T, renorm=renorm):
                self.assertTrue(torch.equal(ids, rids))
                self.assertTrue(torch.allclose(w, rw, rtol=1e-6, atol=1e-7))

    def test_silu_and_mul_equals_torch(self):
        x = torch.randn(7, 2 * 1100)
        out = torch.empty(7, 1100)
        ref = torch.empty(7, 1100)
        self.ops.silu_and_mul(out, x)
        self.V.silu_and_mul_torch(ref, x)
        self.assertTrue(torch.allclose(out, ref, rtol=1e-5, atol=1e-6))

    def test_layer_through_the_kernels_equals_dense(self):
        V = self.V
        cases = [
            (1, 8, 2, 48, 40, (16, 32, 16, 16)),
            (1, 64, 8, 32, 24, (16, 16, 16, 1)),
            (2, 64, 8, 32, 24, (16, 64, 32, 32)),
            (3, 8, 2, 48, 40, (16, 32, 32, 1)),
            (5, 64, 8, 32, 24, (16, 32, 16, 16)),
            (17, 8, 2, 40, 56, (16, 16, 16, 4)),
            (40, 8, 2, 64, 48, (32, 64, 32, 16)),
            (600, 8, 2, 32, 16, (64, 32, 32, 16)),  # the three-program align
            (40, 64, 8, 32, 16, (16, 16, 32, 1)),   # likewise, many experts
        ]
        for T, E, k, H, I, (BM, BN, BK, GM) in cases:
            cfg = {"BLOCK_SIZE_M": BM, "BLOCK_SIZE_N": BN, "BLOCK_SIZE_K": BK, "GROUP_SIZE_M": GM,
                   "num_warps": 4, "num_stages": 3}
            g = torch.Generator().manual_seed(T * 131 + E)
            x = torch.randn(T, H, generator=g)
            gate = torch.randn(E, H, generator=g) * 0.5
            w13 = torch.randn(E, 2 * I, H, generator=g) * 0.2
            w2 = torch.randn(E, H, I, generator=g) * 0.2
            for renorm in (True, False):
                with self.subTest(T=T, E=E, k=k, cfg=(BM, BN, BK, GM), renorm=renorm):
                    layer = V.FusedMoELayer(gate, w13, w2, k, renorm, lambda M: cfg, self.ops)
                    out = layer(x)
                    ref = V.dense_reference(x, gate, w13, w2, k, renorm)
                    self.assertLess(float((out - ref).norm() / ref.norm()), 1e-5)


class BenchPlumbing(unittest.TestCase):
    """bench/peer_mixtral.py's pure parts: planning, --out, best peer per T, and a run whose
    benchmark processes cannot start (no GPU here) still writes a complete JSON."""

    def setUp(self):
        import peer_mixtral as P

        self.P = P

    def test_plan_and_out(self):
        args = self.P.parse_args(["--quick"])
        items = self.P.plan(args)
        self.assertEqual({s for s, _, _ in items}, {"mixtral-8x7b"})
        self.assertEqual(sorted({t for _, t, _ in items}), [1, 32])
        args = self.P.parse_args(["--shapes", "olmoe-1b-7b", "--tokens", "8,1", "--peers", "vllm_fused_moe"])
        self.assertEqual(self.P.plan(args), [("olmoe-1b-7b", 1, "vllm_fused_moe"), ("olmoe-1b-7b", 8, "vllm_fused_moe")])
        self.assertEqual(self.P.resolve_out("x/y"), os.path.join("x/y", "peer-mixtral.json"))
        self.assertEqual(self.P.resolve_out("x/run.json"), "x/run.json")
        import contextlib
        import io

        for bad in (["--shapes", "nope"], ["--tokens", "0"], ["--tokens", "a"], ["--peers", "x"], ["--modes", "fast"]):
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                self.P.parse_args(bad)

    def test_best(self):
        rows = [
            dict(shape="s", T=1, impl="grouped_mm", ms=1.0, graphMs=0.4),
            dict(shape="s", T=1, impl="vllm_fused_moe", ms=0.9, graphMs=0.3, relL2Flag=True),
            dict(shape="s", T=1, impl="eager", ms=0.8, graphMs=None),
            dict(shape="s", T=8, impl="eager", error="boom"),
        ]
        best = self.P.best_per_t(rows)
        self.assertEqual(len(best), 1)
        self.assertEqual((best[0]["impl"], best[0]["mode"], best[0]["ms"]), ("grouped_mm", "graph", 0.4))

    def test_run_without_gpu_writes_complete_json(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "peers.json")
            env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
            p = subprocess.run([sys.executable, os.path.join(HERE, "peer_mixtral.py"), "--quick", "--out", out,
                                "--budget-s", "120", "--max-restarts", "0"],
                               capture_output=True, text=True, timeout=300, env=env)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)  # nothing measured
            with open(out) as f:
                doc = json.load(f)
            self.assertEqual(doc["schema"], self.P.SCHEMA)
            items = self.P.plan(self.P.parse_args(["--quick"]))
            self.assertEqual(len(doc["rows"]), len(items))
            for r in doc["rows"]:
                self.assertTrue(r.get("error") or r.get("skipped"), r)
                self.assertIsNone(r.get("ms"))
            self.assertEqual(doc["best"], [])


if __name__ == "__main__":
    unittest.main()
