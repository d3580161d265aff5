"""``run_bench``: the plan of a run, its cases, the interleaved measurements of lenet_fast and its peers,
and the report's figures."""
import dataclasses
import statistics
import sys
import time

import numpy as np

from ..._config import _platform
from ..._checks import integer
from ...nn.architecture import VARIANTS
from ...nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from .contenders import CLASSIC_MODELS, STEP, _LenetFast
from .flops import flops_per_image, inference_flops_per_image, training_flops_per_image
from .machine import machine_info
from .memory import MEMORY_IMAGES, MEMORY_IMAGES_QUICK, _measure_memory
from .peers import peer_versions, resolve_peers
from .report import print_report

TRAIN_BATCHES = (1, 16, 64, 256)
MODERN_TRAIN_BATCH = 64
EPOCH_IMAGES = 60_000           # an MNIST training epoch, for the derived seconds per epoch
# Seconds between two contenders' runs in a repetition (not timed), so that each starts on a quiet machine:
# ONNX Runtime's threads spin on after its calls. After the pause, every contender runs its case once
# untimed, then timed: the first milliseconds after an idle pause run slower. What was measured for both
# choices, and what the timed run then measures: bench/README.md.
PAUSE = 0.1


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


def run_bench(repeats=5, threads=(1, 2), quick=False, peers=None, out=None):
    """Measure, print the table on `out` (default stdout) and return the report as a dict. `peers`: None
    (every installed peer), or a sequence of peer names (``peers.PEER_NAMES``) and PeerSpecs."""
    out = out or sys.stdout
    plan = _Plan.make(integer("repeats", repeats, at_least=1), threads, quick)
    specs, skipped = resolve_peers(peers)
    inputs = _Inputs.make(plan)
    run = _Run(failed={}, notes=[], warmup={})
    cases = _cases(plan, inputs, specs, run)
    torch = sys.modules.get("torch")        # the torch contenders set its thread count for each case
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        values, peaks = _measure(plan, cases, run)
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)
    skipped += [f"skipped: {name} ({reason})" for name, reason in run.failed.items()]
    run.note_modes()
    ran = [s for s in specs if s.name not in run.failed and any(s.name in runs for _, runs in cases)]
    with_torch = any(s.name == "torch" for s in ran)
    memory = _measure_memory(plan.memory_images, max(plan.threads), with_torch)
    peak = {k: statistics.median(v) for k, v in peaks.items()}
    names = [_LenetFast.name] + [s.name for s in ran]
    report = {
        "machine": machine_info(peer_versions(ran)),
        "settings": _settings(plan, ran, skipped, run),
        "fma_peak": [{"threads": k, "gflops": peak[k], "values": peaks[k]} for k in plan.threads],
        "flops_per_image": _flops_report(plan),
        "results": [_result(key, values, peak, names) for keys, _ in cases for key in keys],
        "memory": memory,
    }
    print_report(report, out)
    return report


@dataclasses.dataclass
class _Run:
    """What happened to the peers: {name: why it failed}, notes, {name: warm-up seconds}, the peers made."""
    failed: dict
    notes: list
    warmup: dict
    built: list = dataclasses.field(default_factory=list)

    def note_modes(self):
        """A note per peer that says how it ran (``mode``: torch-compile-step's fullgraph or fallback)."""
        modes = {}
        for c in self.built:
            if hasattr(c, "mode") and c.name not in self.failed:
                modes.setdefault(c.name, set()).add(c.mode)
        self.notes += [f"{name}: {', '.join(sorted(m))}" for name, m in modes.items()]


# --- the cases and their measurement -----------------------------------------------------------------

def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _latencies(run, calls):
    """(p50, p99) in milliseconds of `calls` calls of run()."""
    times = np.array([_seconds(run) for _ in range(calls)]) * 1e3
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def _cases(plan, inputs, specs, run):
    """Every case: (keys, {contender name: callable returning one figure per key}); a key is
    (variant, case, batch, threads). A peer that cannot be made is recorded in run.failed."""
    cases = []
    for k in plan.threads:
        for variant in VARIANTS:
            contenders = [_LenetFast(variant, k, inputs.x_train, inputs.y_train)]
            for spec in specs:
                if spec.name in run.failed:
                    continue
                why_not = spec.cls.not_at(k)
                if why_not:
                    note = f"{spec.name}: {why_not}"
                    if note not in run.notes:
                        run.notes.append(note)
                    continue
                try:
                    contenders.append(spec.cls(variant, k, inputs.x_train, inputs.y_train))
                    run.built.append(contenders[-1])
                except Exception as exc:        # a broken install: measure the others
                    run.failed[spec.name] = f"failed: {_one_line(exc)}"
            cases += _variant_cases(plan, inputs, variant, k, contenders)
    return cases


def _one_line(exc):
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _variant_cases(plan, inputs, variant, k, contenders):
    """A variant's cases at k threads: training at each batch size, inference, and (paper) latency;
    each contender joins the kinds of case it runs."""
    cases = []
    n_train, n_infer = plan.train_images, plan.inference_batch
    trainers = [c for c in contenders if "training" in c.kinds]
    for batch in plan.train_batches if variant == "paper" else (MODERN_TRAIN_BATCH,):
        runs = {c.name: (lambda c=c, b=batch: [n_train / _seconds(lambda: c.train(b))]) for c in trainers}
        cases.append((((variant, "training", batch, k),), runs))
    runs = {}
    for c in (c for c in contenders if "inference" in c.kinds):
        x = c.as_input(inputs.x_infer)
        runs[c.name] = lambda c=c, x=x: [n_infer / _seconds(lambda: c.infer(x))]
    cases.append((((variant, "inference", n_infer, k),), runs))
    if variant == "paper":
        runs = {}
        for c in (c for c in contenders if "latency" in c.kinds):
            x = c.as_input(inputs.x_one)
            runs[c.name] = lambda c=c, x=x: _latencies(lambda: c.infer(x), plan.latency_calls)
        cases.append((((variant, "latency p50", 1, k), (variant, "latency p99", 1, k)), runs))
    return cases


def _warm_up(cases, run):
    """A first call of every case (compilation, allocation, thread start), timed into run.warmup; a peer
    that fails is recorded in run.failed and dropped from every case."""
    for _, runs in cases:
        for name, call in runs.items():
            if name in run.failed:
                continue
            try:
                seconds = _seconds(call)
            except Exception as exc:
                if name == _LenetFast.name:
                    raise
                run.failed[name] = f"failed in its warm-up: {_one_line(exc)}"
                continue
            run.warmup[name] = run.warmup.get(name, 0.0) + seconds
    for _, runs in cases:
        for name in run.failed:
            runs.pop(name, None)


def _measure(plan, cases, run):
    """The warm-up, then the repetitions: in each, the FMA peak at every thread count and every case,
    lenet_fast then each peer (interleaved, so machine noise spreads over all), each after PAUSE and
    an untimed run of the same case. Returns
    ({key + (contender,): figures}, {threads: FMA peaks in GFLOP/s})."""
    _warm_up(cases, run)
    values = {}
    peaks = {k: [] for k in plan.threads}
    for _ in range(plan.repeats):
        for k in plan.threads:
            peaks[k].append(_platform.fma_peak_gflops(plan.probe_seconds, k))
        for keys, runs in cases:
            for name, call in runs.items():
                time.sleep(PAUSE)       # the previous contender's spinning threads stop
                call()                  # untimed: warm again after the pause
                for key, figure in zip(keys, call()):
                    values.setdefault(key + (name,), []).append(figure)
    return values, peaks


# --- the report's figures ----------------------------------------------------------------------------

def _result(key, values, peak, names):
    """One row of the results: each contender's median and figures (None where it did not run), the best
    peer, lenet_fast's ratio to each peer and to the best (> 1: lenet_fast is faster) and, for training, the
    FLOPs per image, the percentage of the FMA peak and the derived seconds per epoch."""
    variant, case, batch, k = key
    latency = case.startswith("latency")
    entry = {"variant": variant, "case": case, "batch": batch, "threads": k,
             "unit": "ms" if latency else "images/s", "higher_is_better": not latency, "figures": {}}
    for name in names:
        figures = values.get(key + (name,))
        entry["figures"][name] = {"median": statistics.median(figures), "values": figures} if figures else None
    ours = entry["figures"][_LenetFast.name]["median"]
    peers = {name: f["median"] for name, f in entry["figures"].items() if f and name != _LenetFast.name}
    entry["ratios"] = {name: (m / ours) if latency else (ours / m) for name, m in peers.items()}
    entry["best_peer"] = (min if latency else max)(peers, key=peers.get) if peers else None
    entry["ratio"] = entry["ratios"][entry["best_peer"]] if peers else None
    entry["flops_per_image"] = entry["percent_of_peak"] = entry["epoch_seconds"] = None
    if case == "training":
        entry["flops_per_image"] = training_flops_per_image(variant, batch)
        entry["percent_of_peak"] = 100 * entry["flops_per_image"] * ours / (peak[k] * 1e9)
        entry["epoch_seconds"] = {name: EPOCH_IMAGES / f["median"] if f else None
                                  for name, f in entry["figures"].items()}
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


def _settings(plan, ran, skipped, run):
    return {"repeats": plan.repeats, "threads": list(plan.threads), "quick": plan.quick,
            "variants": list(VARIANTS), "dtype": "float32", "train_images_per_repetition": plan.train_images,
            "train_batches": list(plan.train_batches), "modern_train_batch": MODERN_TRAIN_BATCH,
            "sgd_step": STEP, "inference_batch": plan.inference_batch,
            "latency_calls_per_repetition": plan.latency_calls, "epoch_images": EPOCH_IMAGES,
            "fma_probe_seconds": plan.probe_seconds,
            "contenders": [_LenetFast.name] + [s.name for s in ran],
            "peers": {s.name: s.description for s in ran}, "classic_models": CLASSIC_MODELS if ran else None,
            "skipped": skipped, "notes": run.notes,
            "warmup_seconds": {name: run.warmup.get(name) for name in [_LenetFast.name] + [s.name for s in ran]}}
