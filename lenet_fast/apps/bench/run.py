"""``run_bench``: the plan of a run, its cases, the interleaved measurements, and the report's figures."""
import dataclasses
import statistics
import sys
import time

import numpy as np

from ... import _platform
from ..._checks import integer
from ...nn.architecture import VARIANTS
from ...nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from .contenders import STEP, TORCH_MODELS, _import_torch, _LenetFast, _Torch
from .flops import flops_per_image, inference_flops_per_image, training_flops_per_image
from .machine import machine_info
from .memory import MEMORY_IMAGES, MEMORY_IMAGES_QUICK, _measure_memory
from .report import CONTENDERS, print_report

TRAIN_BATCHES = (1, 16, 64, 256)
MODERN_TRAIN_BATCH = 64
EPOCH_IMAGES = 60_000           # an MNIST training epoch, for the derived seconds per epoch


def parse_threads(text):
    """'1,2' -> (1, 2): positive thread counts, no repeats. ValueError with a one-line message."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--threads must be a comma-separated list of positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"--threads must be a comma-separated list of positive integers, got {text!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"--threads lists a thread count twice: {text!r}")
    return values


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The sizes of a run: the full ones, or tiny ones with --quick."""
    repeats: int
    threads: tuple
    quick: bool
    train_images: int           # per repetition: one epoch over them per training case
    train_batches: tuple        # paper variant; the modern one trains at MODERN_TRAIN_BATCH
    inference_batch: int
    latency_calls: int          # batch-1 calls per repetition
    probe_seconds: float        # of the FMA peak probe, per thread count and repetition
    memory_images: int

    @classmethod
    def make(cls, repeats, threads, quick):
        if quick:
            return cls(min(repeats, 2), threads, quick, 64, (1, 16), 64, 20, 0.02, MEMORY_IMAGES_QUICK)
        return cls(repeats, threads, quick, 1024, TRAIN_BATCHES, 1024, 200, 0.3, MEMORY_IMAGES)


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """Random inputs (seed 0) in the range of the model's input scaling, and training labels."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_infer: np.ndarray
    x_one: np.ndarray           # a single image, for the latency

    @classmethod
    def make(cls, plan):
        rng = np.random.default_rng(0)

        def images(n):
            return rng.uniform(INPUT_BACKGROUND, INPUT_FOREGROUND, (n, 1, 32, 32)).astype(np.float32)

        x_train = images(plan.train_images)
        y_train = rng.integers(0, 10, plan.train_images)
        x_infer = images(plan.inference_batch)
        return cls(x_train, y_train, x_infer, x_infer[:1].copy())


def run_bench(repeats=5, threads=(1, 2), quick=False, use_torch=True, out=None):
    """Measure, print the table on `out` (default stdout) and return the report as a dict."""
    out = out or sys.stdout
    plan = _Plan.make(integer("repeats", repeats, at_least=1), threads, quick)
    torch = _import_torch() if use_torch else None
    inputs = _Inputs.make(plan)
    torch_threads = torch.get_num_threads() if torch is not None else None
    machine = machine_info(torch)
    try:
        cases = _cases(plan, inputs, torch)
        values, peaks = _measure(plan, cases)
    finally:
        if torch is not None:       # the contender sets torch's thread count for each case
            torch.set_num_threads(torch_threads)
    memory = _measure_memory(plan.memory_images, max(plan.threads), torch is not None)
    peak = {k: statistics.median(v) for k, v in peaks.items()}
    report = {
        "machine": machine,
        "settings": _settings(plan, torch is not None),
        "fma_peak": [{"threads": k, "gflops": peak[k], "values": peaks[k]} for k in plan.threads],
        "flops_per_image": _flops_report(plan),
        "results": [_result(key, values, peak) for keys, _ in cases for key in keys],
        "memory": memory,
    }
    print_report(report, out)
    return report


# --- the cases and their measurement -----------------------------------------------------------------

def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _latencies(run, calls):
    """(p50, p99) in milliseconds of `calls` calls of run()."""
    times = np.array([_seconds(run) for _ in range(calls)]) * 1e3
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def _cases(plan, inputs, torch):
    """Every case: (keys, {contender name: callable returning one figure per key}); a key is
    (variant, case, batch, threads)."""
    cases = []
    for k in plan.threads:
        for variant in VARIANTS:
            contenders = [_LenetFast(variant, k, inputs.x_train, inputs.y_train)]
            if torch is not None:
                contenders.append(_Torch(torch, variant, k, inputs.x_train, inputs.y_train))
            cases += _variant_cases(plan, inputs, variant, k, contenders)
    return cases


def _variant_cases(plan, inputs, variant, k, contenders):
    """A variant's cases at k threads: training at each batch size, inference, and (paper) latency."""
    cases = []
    n_train, n_infer = plan.train_images, plan.inference_batch
    for batch in plan.train_batches if variant == "paper" else (MODERN_TRAIN_BATCH,):
        runs = {c.name: (lambda c=c, b=batch: [n_train / _seconds(lambda: c.train(b))]) for c in contenders}
        cases.append((((variant, "training", batch, k),), runs))
    batch_input = {c.name: c.as_input(inputs.x_infer) for c in contenders}
    one_input = {c.name: c.as_input(inputs.x_one) for c in contenders}
    runs = {c.name: (lambda c=c, x=batch_input[c.name]: [n_infer / _seconds(lambda: c.infer(x))])
            for c in contenders}
    cases.append((((variant, "inference", n_infer, k),), runs))
    if variant == "paper":
        runs = {c.name: (lambda c=c, x=one_input[c.name]: _latencies(lambda: c.infer(x), plan.latency_calls))
                for c in contenders}
        cases.append((((variant, "latency p50", 1, k), (variant, "latency p99", 1, k)), runs))
    return cases


def _measure(plan, cases):
    """A warm-up call of every case, then the repetitions: in each, the FMA peak at every thread count
    and every case, lenet_fast then torch (interleaved, so machine noise spreads over both). Returns
    ({key + (contender,): figures}, {threads: FMA peaks in GFLOP/s})."""
    for _, runs in cases:           # warm-up: first calls allocate, load and spin up threads
        for run in runs.values():
            run()
    values = {}
    peaks = {k: [] for k in plan.threads}
    for _ in range(plan.repeats):
        for k in plan.threads:
            peaks[k].append(_platform.fma_peak_gflops(plan.probe_seconds, k))
        for keys, runs in cases:
            for name, run in runs.items():
                for key, figure in zip(keys, run()):
                    values.setdefault(key + (name,), []).append(figure)
    return values, peaks


# --- the report's figures ----------------------------------------------------------------------------

def _result(key, values, peak):
    """One row of the results: each contender's median and figures, the speedup and, for training,
    the FLOPs per image, the percentage of the FMA peak and the derived seconds per epoch."""
    variant, case, batch, k = key
    latency = case.startswith("latency")
    entry = {"variant": variant, "case": case, "batch": batch, "threads": k,
             "unit": "ms" if latency else "images/s", "higher_is_better": not latency}
    for name in CONTENDERS:
        figures = values.get(key + (name,))
        entry[name] = {"median": statistics.median(figures), "values": figures} if figures else None
    entry["speedup"] = None
    if entry["torch"]:
        a, b = entry["lenet_fast"]["median"], entry["torch"]["median"]
        entry["speedup"] = (b / a) if latency else (a / b)
    entry["flops_per_image"] = entry["percent_of_peak"] = entry["epoch_seconds"] = None
    if case == "training":
        rate = entry["lenet_fast"]["median"]
        entry["flops_per_image"] = training_flops_per_image(variant, batch)
        entry["percent_of_peak"] = 100 * entry["flops_per_image"] * rate / (peak[k] * 1e9)
        entry["epoch_seconds"] = {name: EPOCH_IMAGES / entry[name]["median"] if entry[name] else None
                                  for name in CONTENDERS}
    return entry


def _flops_report(plan):
    """Per variant: the FLOPs per image by layer (at batch size 1: "update" is per batch), the update,
    the inference and the training step per image at each batch size the run trains at."""
    trained = {"paper": plan.train_batches, "modern": (MODERN_TRAIN_BATCH,)}
    report = {}
    for variant in VARIANTS:
        by_layer = flops_per_image(variant)
        report[variant] = {
            "by_layer": by_layer, "by_layer_batch_size": 1,
            "update_per_batch": sum(row["update"] for row in by_layer.values()),
            "inference": inference_flops_per_image(variant),
            "training_step": {str(b): training_flops_per_image(variant, b) for b in trained[variant]}}
    return report


def _settings(plan, with_torch):
    return {"repeats": plan.repeats, "threads": list(plan.threads), "quick": plan.quick,
            "variants": list(VARIANTS), "dtype": "float32", "train_images_per_repetition": plan.train_images,
            "train_batches": list(plan.train_batches), "modern_train_batch": MODERN_TRAIN_BATCH,
            "sgd_step": STEP, "inference_batch": plan.inference_batch,
            "latency_calls_per_repetition": plan.latency_calls, "epoch_images": EPOCH_IMAGES,
            "fma_probe_seconds": plan.probe_seconds, "torch": with_torch,
            "torch_models": TORCH_MODELS if with_torch else None}
