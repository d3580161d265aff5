"""lenet-fast bench: the quick run, its JSON report and its option errors; the FLOP count and the FMA
probe behind its "% of peak"; the memory runs."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import lenet_fast
from lenet_fast import LeNet5, _platform
from lenet_fast.apps.bench.contenders import STEP, _LenetFast, _Torch
from lenet_fast.apps.bench.flops import flops_per_image, inference_flops_per_image, training_flops_per_image
from lenet_fast.apps.bench.memory import PACKAGE_ROOT, _memory_run, _status_mib
from lenet_fast.apps.bench.run import parse_threads
from lenet_fast.apps.cli import main
from lenet_fast.nn.architecture import architecture


def test_quick_bench_writes_table_and_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--no-torch", "--threads", "1,2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lenet_fast only" in out and "cpu " in out and "compiled ISA" in out
    assert "training" in out and "inference" in out and "latency p99" in out
    assert "fma peak" in out and "GFLOP/s at 2 threads" in out and "% peak" in out
    assert "FLOPs per image" in out and "epoch s*" in out and "derived, not measured" in out
    report = json.loads(path.read_text())
    assert not [p for p in tmp_path.iterdir() if p.name != "bench.json"]   # no temporary file left
    machine = report["machine"]
    for key in ("cpu", "logical_cores", "avx2", "avx512f", "lenet_fast", "compiled_isa", "numpy"):
        assert key in machine
    assert machine["torch"] is None and report["settings"]["torch"] is False
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
        assert r["lenet_fast"]["median"] > 0 and all(v > 0 for v in r["lenet_fast"]["values"])
        assert r["torch"] is None and r["speedup"] is None
        if r["case"] == "training":
            assert r["flops_per_image"] == training_flops_per_image(r["variant"], r["batch"])
            rate, peak = r["lenet_fast"]["median"], peaks[r["threads"]] * 1e9
            assert r["percent_of_peak"] == pytest.approx(100 * r["flops_per_image"] * rate / peak)
            assert r["epoch_seconds"] == {"lenet_fast": pytest.approx(60_000 / rate), "torch": None}
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
    assert memory["images"] == 2_000 and memory["batch"] == 64 and memory["threads"] == 2
    lenet_fast = memory["lenet_fast"]
    assert 0 < lenet_fast["rss_before_mib"] <= lenet_fast["peak_mib"]
    assert lenet_fast["increase_mib"] == pytest.approx(lenet_fast["peak_mib"] - lenet_fast["rss_before_mib"])
    assert memory["torch"] is None and memory["lenet_fast_over_torch"] is None


@pytest.mark.parametrize("value", ["0", "1,x", "", "-1", "2,2"])
def test_invalid_threads_is_a_one_line_error(value, capsys):
    assert main(["bench", "--quick", "--no-torch", "--threads", value]) == 1
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


# --- memory and PyTorch ------------------------------------------------------------------------------

def test_memory_run_puts_this_lenet_fast_first_on_the_path():
    assert os.path.samefile(os.path.join(PACKAGE_ROOT, "lenet_fast"), os.path.dirname(lenet_fast.__file__))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the memory runs read /proc (Linux)")
def test_memory_run_reports_the_child_s_own_peak():
    # getrusage's ru_maxrss would report at least this process's peak (Linux keeps it across exec)
    ballast = np.ones(256 * 2**20 // 8)         # 256 MiB, touched
    figures = _memory_run("lenet_fast", 256, 1)
    assert 0 < figures["rss_before_mib"] <= figures["peak_mib"] < _status_mib("VmRSS") - 128
    assert ballast[-1] == 1


def _random_batch(n=32):
    rng = np.random.default_rng(0)
    return rng.uniform(-0.1, 1.175, (n, 1, 32, 32)).astype(np.float32), rng.integers(0, 10, n)


def _assert_one_epoch_trains(contender, parameters, batch):
    """contender.train(batch) (one epoch) moves every parameter tensor (parameters(): float64 copies)
    by small SGD steps (step STEP, gradients far below 50 here) and leaves them finite."""
    before = parameters()
    contender.train(batch)
    after = parameters()
    for old, new in zip(before, after):
        assert np.isfinite(new).all()
        assert not np.array_equal(old, new)
        assert np.abs(new - old).max() < 100 * STEP


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_lenet_fast_contender_trains(variant):
    x, y = _random_batch()
    contender = _LenetFast(variant, 1, x, y)
    trained = [p.name for p in architecture(variant).params]      # not the paper's fixed RBF centres

    def parameters():
        return [np.array(contender.net.parameters()[name], np.float64) for name in trained]

    _assert_one_epoch_trains(contender, parameters, 16)


def test_torch_modern_model():
    torch = pytest.importorskip("torch")
    x, y = _random_batch()
    model = _Torch(torch, "modern", 1, x, y)
    kinds = [type(layer).__name__ for layer in model.model]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
                     "Flatten", "Linear", "ReLU", "Linear"]
    assert isinstance(model.loss, torch.nn.CrossEntropyLoss)

    def parameters():
        return [p.detach().numpy().astype(np.float64) for p in model.model.parameters()]

    _assert_one_epoch_trains(model, parameters, 16)
