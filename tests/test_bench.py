"""lenet-fast bench: the quick run, its JSON report and its option errors; the best peer and the ratios
(with fake peers) and the targets; the FLOP count and the FMA probe behind its "% of peak". Its
contenders and memory runs: tests/test_bench_peers.py."""
import io
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast._config import _platform
from lenet_fast.apps.bench.contenders import Contender, _LenetFast
from lenet_fast.apps.bench.flops import flops_per_image, inference_flops_per_image, training_flops_per_image
from lenet_fast.apps.bench.peers import PEER_NAMES, PeerSpec, parse_peers, resolve_peers
from lenet_fast.apps.bench.report import write_json
from lenet_fast.apps.bench.run import parse_threads, run_bench
from lenet_fast.apps.bench.targets import target_lines
from lenet_fast.apps.cli import main


def test_quick_bench_writes_table_and_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--peers", "none", "--threads", "1,2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lenet_fast only (no peer)" in out and "cpu " in out and "compiled for" in out
    assert "training" in out and "inference" in out and "latency p99" in out
    assert "fma peak" in out and "GFLOP/s at 2 threads" in out and "% peak" in out
    assert "FLOPs per image" in out and "epoch s*" in out and "derived, not measured" in out
    assert "best peer" not in out and "targets     not checked: no peer was measured" in out
    report = json.loads(path.read_text())
    assert not [p for p in tmp_path.iterdir() if p.name != "bench.json"]   # no temporary file left
    machine = report["machine"]
    for key in ("cpu", "logical_cores", "avx2", "avx512f", "lenet_fast", "compiled_isa", "numpy"):
        assert key in machine
    assert machine["peers"] == {} and report["settings"]["contenders"] == ["lenet_fast"]
    results = report["results"]
    cases = {(r["variant"], r["case"], r["threads"]) for r in results}
    for threads in (1, 2):
        for case in ("training", "inference", "latency p50", "latency p99"):
            assert ("paper", case, threads) in cases
        for case in ("training", "inference"):
            assert ("modern", case, threads) in cases
    peaks = {p["threads"]: p["gflops"] for p in report["fma_peak"]}
    assert set(peaks) == {1, 2} and min(peaks.values()) > 0
    for r in results:
        ours = r["figures"]["lenet_fast"]
        assert ours["median"] > 0 and all(v > 0 for v in ours["values"])
        assert list(r["figures"]) == ["lenet_fast"] and r["best_peer"] is r["ratio"] is None and r["ratios"] == {}
        if r["case"] == "training":
            assert r["flops_per_image"] == training_flops_per_image(r["variant"], r["batch"])
            rate, peak = ours["median"], peaks[r["threads"]] * 1e9
            assert r["percent_of_peak"] == pytest.approx(100 * r["flops_per_image"] * rate / peak)
            assert r["epoch_seconds"] == {"lenet_fast": pytest.approx(60_000 / rate)}
        else:
            assert r["flops_per_image"] is r["percent_of_peak"] is r["epoch_seconds"] is None
    flops = report["flops_per_image"]
    assert flops["paper"]["by_layer"] == flops_per_image("paper")
    assert flops["modern"]["training_step"] == {"64": training_flops_per_image("modern", 64)}
    memory = report["memory"]
    assert (memory is None) == (not os.path.exists("/proc/self/status"))     # measured on Linux only
    if memory is None:
        return
    assert "memory: one training epoch of 2,000 random images" in out and "[--quick: 2,000 images" in out
    assert "holds uint8 (N, 28, 28)" in out
    assert memory["images"] == 2_000 and memory["batch"] == 64 and memory["threads"] == 2
    assert list(memory["runs"]) == ["lenet_fast"] and memory["lenet_fast_over"] == {}
    lenet_fast = memory["runs"]["lenet_fast"]
    assert 0 < lenet_fast["rss_before_mib"] <= lenet_fast["peak_mib"]
    assert lenet_fast["increase_mib"] == pytest.approx(lenet_fast["peak_mib"] - lenet_fast["rss_before_mib"])


# --- the best peer, with fake peers (no framework needed) --------------------------------------------

class _Twice(Contender):
    """A peer doing lenet_fast's work twice: slower than lenet_fast, at every kind of case."""
    name = "twice"

    def __init__(self, variant, n_threads, x_train, y_train):
        self.inner = _LenetFast(variant, n_threads, x_train, y_train)

    def train(self, batch):
        self.inner.train(batch)
        self.inner.train(batch)

    def infer(self, x):
        self.inner.infer(x)
        self.inner.infer(x)


class _InferOnceOneThread(_Twice):
    """Inference only, lenet_fast's own, and only at 1 thread (as JAX at its one thread count)."""
    name = "once"
    kinds = frozenset({"inference", "latency"})

    @classmethod
    def not_at(cls, n_threads):
        return None if n_threads == 1 else "one thread only"

    def infer(self, x):
        self.inner.infer(x)


class _FailsToCompile(_Twice):
    name = "uncompilable"

    def train(self, batch):
        raise RuntimeError("no C++ compiler\nsecond line")


class _FailsToBuild(_Twice):
    name = "unbuildable"

    def __init__(self, variant, n_threads, x_train, y_train):
        raise ImportError("broken install")


def _fake(cls, modules=()):
    return PeerSpec(cls.name, modules, f"pip install {cls.name}", cls, f"fake peer {cls.name}")


def test_best_peer_and_ratios_with_fake_peers(tmp_path):
    out = io.StringIO()
    peers = [_fake(_Twice), _fake(_InferOnceOneThread), _fake(_FailsToCompile), _fake(_FailsToBuild),
             _fake(_Twice, modules=("lenet_fast_no_such_module",))]
    report = run_bench(repeats=2, threads=(1, 2), quick=True, peers=peers, out=out)
    text = out.getvalue()
    settings = report["settings"]
    assert settings["contenders"] == ["lenet_fast", "twice", "once"]
    assert settings["skipped"] == ["skipped: twice (not installed: pip install twice)",
                                   "skipped: unbuildable (failed: ImportError: broken install)",
                                   "skipped: uncompilable (failed in its warm-up: RuntimeError: no C++ compiler)"]
    assert settings["notes"] == ["once: one thread only"]
    for line in settings["skipped"] + ["note: once: one thread only", "best peer", "its figure",
                                       "every contender", "twice", "targets (at 2 threads"]:
        assert line in text
    assert set(settings["warmup_seconds"]) == {"lenet_fast", "twice", "once"}
    for r in report["results"]:
        figures, latency = r["figures"], r["case"].startswith("latency")
        peers_here = {n: f["median"] for n, f in figures.items() if f and n != "lenet_fast"}
        expected = {"twice"} | ({"once"} if r["case"] != "training" and r["threads"] == 1 else set())
        assert set(peers_here) == expected and "uncompilable" not in figures
        best = (min if latency else max)(peers_here, key=peers_here.get)
        ours = figures["lenet_fast"]["median"]
        assert r["best_peer"] == best
        assert r["ratio"] == pytest.approx(peers_here[best] / ours if latency else ours / peers_here[best])
        assert r["ratios"]["twice"] == pytest.approx(figures["twice"]["median"] / ours if latency
                                                     else ours / figures["twice"]["median"])
        if r["case"] == "training":
            assert r["epoch_seconds"]["twice"] == pytest.approx(60_000 / figures["twice"]["median"])
            assert r["epoch_seconds"]["once"] is None
    path = tmp_path / "bench.json"
    write_json(report, path)
    assert json.loads(path.read_text())["results"][0]["best_peer"] == "twice"
    assert "lenet_fast / " not in text          # no torch: the memory block has lenet_fast alone


class _Counted(_Twice):
    """Counts its calls of each case (class-wide: the bench makes one per variant and thread count)."""
    name = "counted"
    calls = {}

    def train(self, batch):
        _Counted.calls[("training", batch)] = _Counted.calls.get(("training", batch), 0) + 1

    def infer(self, x):
        _Counted.calls[("inference", len(x))] = _Counted.calls.get(("inference", len(x)), 0) + 1


def test_every_timed_run_follows_an_untimed_one():
    # the first call of every case is the warm-up; in each repetition the case runs untimed, then timed
    _Counted.calls = {}
    report = run_bench(repeats=2, threads=(1,), quick=True, peers=[_fake(_Counted)], out=io.StringIO())
    s = report["settings"]
    runs = {}           # (case, size): the runs of each case, warm-up included, over both variants
    for batch in s["train_batches"] + [s["modern_train_batch"]]:
        runs[("training", batch)] = runs.get(("training", batch), 0) + 1
    runs[("inference", s["inference_batch"])] = 2
    runs[("inference", 1)] = s["latency_calls_per_repetition"]     # latency: paper only, single images
    assert _Counted.calls == {key: n * (1 + 2 * 2) for key, n in runs.items()}


def test_targets_block():
    def row(variant, case, batch, ratio, best="jax", peak=None):
        return {"variant": variant, "case": case, "batch": batch, "threads": 2, "ratio": ratio, "best_peer": best,
                "percent_of_peak": peak}

    results = [row("paper", "training", 1, 12.0), row("paper", "training", 64, 4.9, peak=45.5),
               row("paper", "inference", 1024, 4.0, "onnxruntime"), row("paper", "latency p50", 1, 2.0)]
    memory = {"lenet_fast_over": {"torch": {"peak": 0.2, "increase": 0.1}, "torch-uint8": {"peak": 0.3}}}
    lines = target_lines({"results": results, "memory": memory,
                          "settings": {"contenders": ["lenet_fast", "jax", "onnxruntime"]}})
    text = "\n".join(lines)
    assert "paper training batch 1: 12.00x jax, aim 10x: met" in text
    assert "paper training batch 64: 4.90x jax, aim 5x: MISSED" in text
    assert "paper training batch 256: not measured" in text
    assert "paper inference: 4.00x onnxruntime, aim 4x: met" in text
    assert "paper latency p50 batch 1: 2.00x jax, aim 2.5x: MISSED" in text
    assert "% of the FMA peak: 45.5%, aim 45%: met" in text
    assert "peak memory of the epoch: 0.20x torch's, aim at most 0.25x: met; 0.30x torch-uint8's" in text


@pytest.mark.parametrize("value", ["0", "1,x", "", "-1", "2,2"])
def test_invalid_threads_is_a_one_line_error(value, capsys):
    assert main(["bench", "--quick", "--peers", "none", "--threads", value]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("lenet-fast: error: --threads") and "\n" not in err
    assert captured.out == ""


def test_invalid_repeats_is_a_one_line_error(capsys):
    assert main(["bench", "--quick", "--no-torch", "--repeats", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lenet-fast: error: --repeats") and "\n" not in err


def test_parse_threads():
    assert parse_threads("1,2") == (1, 2)
    assert parse_threads("2") == (2,)


def test_parse_peers():
    assert parse_peers("none") == () and parse_peers("all") == PEER_NAMES
    assert parse_peers("jax,torch-compile") == ("jax", "torch-compile")
    assert PEER_NAMES == ("torch", "torch-compile", "torch-compile-step", "jax", "jax-scan", "onnxruntime")


@pytest.mark.parametrize("value", ["tensorflow", "torch,torch", "", "torch,"])
def test_invalid_peers_is_a_one_line_error(value, capsys):
    assert main(["bench", "--quick", "--peers", value]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("lenet-fast: error: --peers") and "\n" not in err and "torch-compile-step" in err
    assert captured.out == ""


def test_missing_peer_is_skipped_with_its_install_line():
    spec = PeerSpec("ghost", ("lenet_fast_no_such_module",), "pip install ghost", Contender, "")
    available, skipped = resolve_peers([spec])
    assert available == [] and skipped == ["skipped: ghost (not installed: pip install ghost)"]
    with pytest.raises(ValueError, match="unknown peer"):
        resolve_peers(["tensorflow"])


# --- FLOPs per image ---------------------------------------------------------------------------------

def _independent_flops(variant):
    """The FLOP count that the docstring of lenet_fast.apps.bench.flops describes, from the model's
    parameters and the activation shapes of a real forward pass (not from the architecture spec's layer
    list, which flops_per_image walks)."""
    net = LeNet5(variant)
    params = net.parameters()
    a = net._forward(np.zeros((1, 1, 32, 32), np.float32))
    paper = variant == "paper"
    counts = {}
    for layer in ("c1", "c3", "c5", "f6") + (() if paper else ("output",)):
        weights = params[f"{layer}.weight"]
        connected = np.count_nonzero(weights)       # C3's unconnected weights are exactly zero
        positions = a[layer][0].size // weights.shape[0]     # output positions per map (1: dense)
        macs = connected * positions
        backward = (2 if layer == "c1" else 4) * macs + a[layer][0].size   # no input gradient in C1
        counts[layer] = {"forward": 2 * macs, "backward": backward,
                         "update": 4 * (connected + params[f"{layer}.bias"].size)}
    for layer in ("s2", "s4"):
        outputs = a[layer][0].size
        counts[layer] = ({"forward": 5 * outputs, "backward": 7 * outputs,
                          "update": 4 * (params[f"{layer}.coef"].size + params[f"{layer}.bias"].size)}
                         if paper else {"forward": 0, "backward": 0, "update": 0})
    if paper:
        centres = params["output.centers"].size
        counts["output"] = {"forward": 3 * centres, "backward": 10 + 3 * centres, "update": 0}
    squashed = sum(a[layer][0].size for layer in ("c1", "s2", "c3", "s4", "c5", "f6")) if paper else 0
    counts["activations"] = {"forward": 3 * squashed, "backward": 4 * squashed, "update": 0}
    return counts, net.num_parameters


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_flops_per_image_matches_an_independent_count(variant):
    expected, n_params = _independent_flops(variant)
    flops = flops_per_image(variant)
    for layer, figures in expected.items():
        assert flops[layer] == figures, layer
    assert sum(row["update"] for row in flops.values()) == 4 * n_params
    # the losses (MSE: the correct class's penalty, then one add; cross-entropy: log-sum-exp and softmax)
    assert flops["loss"] == ({"forward": 0, "backward": 1, "update": 0} if variant == "paper"
                             else {"forward": 33, "backward": 63, "update": 0})
    assert list(flops) == ["c1", "s2", "c3", "s4", "c5", "f6", "output", "activations", "loss"]


def test_flops_forward_multiply_adds_are_the_papers_connections():
    # LeNet-5's connections (LeCun et al. 1998, Sec. II-B) are its multiply-adds plus one bias per
    # output (C1, C3, C5, F6); for S2 and S4 they are the 4 inputs and the bias of each output
    flops = flops_per_image("paper")
    bias_outputs = {"c1": 6 * 28 * 28, "c3": 16 * 10 * 10, "c5": 120, "f6": 84}
    for layer, connections in {"c1": 122_304, "c3": 151_600, "c5": 48_120, "f6": 10_164}.items():
        assert flops[layer]["forward"] // 2 + bias_outputs[layer] == connections
    assert flops["s2"]["forward"] == 5_880 and flops["s4"]["forward"] == 2_000


def test_flops_totals_and_batch_size():
    for variant in ("paper", "modern"):
        one, sixty_four = flops_per_image(variant), flops_per_image(variant, 64)
        for layer in one:
            assert sixty_four[layer]["update"] == pytest.approx(one[layer]["update"] / 64)
            assert sixty_four[layer]["forward"] == one[layer]["forward"]
        assert training_flops_per_image(variant, 64) == pytest.approx(
            sum(r["forward"] + r["backward"] + r["update"] for r in sixty_four.values()))
        forward = sum(r["forward"] for name, r in one.items() if name != "loss")
        assert inference_flops_per_image(variant) == forward
    assert inference_flops_per_image("paper") == 686_012      # the paper's ~340,000 connections, as FLOPs


@pytest.mark.parametrize("variant, forward, backward, update", [("paper", 686_012, 1_119_927, 240_000),
                                                                ("modern", 833_073, 1_437_461, 246_824)])
def test_flops_totals_are_the_hand_counted_ones(variant, forward, backward, update):
    # the totals of the count with LeNet-5's layer sizes written out by hand (forward includes the loss)
    rows = flops_per_image(variant).values()
    assert sum(r["forward"] for r in rows) == forward and sum(r["backward"] for r in rows) == backward
    assert sum(r["update"] for r in rows) == update


@pytest.mark.parametrize("kwargs, error, word", [({"variant": "lenet"}, ValueError, "variant"),
                                                 ({"variant": "paper", "batch_size": 0}, ValueError, "batch_size"),
                                                 ({"variant": "paper", "batch_size": 2.0}, TypeError, "batch_size")])
def test_flops_per_image_errors_name_the_argument(kwargs, error, word):
    with pytest.raises(error, match=word):
        flops_per_image(**kwargs)


# --- the FMA probe -----------------------------------------------------------------------------------

def test_fma_peak_probe_measures_a_plausible_rate():
    rate = _platform.fma_peak_gflops(0.02, 1)
    # at most 2 FMA units of 16 float32 lanes at 6 GHz: far more means the loop was optimised away
    assert 0 < rate < 2 * 2 * 16 * 6
    assert _platform.fma_peak_gflops(0.02, 2) > 0


@pytest.mark.parametrize("args, word", [((0.0, 1), "seconds"), ((float("nan"), 1), "seconds"),
                                        ((0.02, 0), "n_threads")])
def test_fma_peak_probe_errors_name_the_argument(args, word):
    with pytest.raises(ValueError, match=word):
        _platform.fma_peak_gflops(*args)


@pytest.mark.skipif(shutil.which("objdump") is None or _platform.compiled_isa() != "avx512f",
                    reason="needs objdump and an AVX-512 build")
def test_fma_probe_is_compiled_to_zmm_fmas():
    # the probe's loop: 12 independent 512-bit FMAs (the only FMAs of the module)
    disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", _platform.__file__],
                                 capture_output=True, text=True, check=True).stdout
    assert sum("vfmadd" in line and "zmm" in line for line in disassembly.splitlines()) >= 12
