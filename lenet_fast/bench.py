"""``lenet-fast bench``: lenet_fast against PyTorch (CPU) on the same work, in one run.

Every repetition runs each case once for lenet_fast and then once for PyTorch (A B A B ...), so machine
noise spreads over both; the figures are medians over the repetitions. Cases, at each thread count:

* training throughput (images/s), paper variant, float32, at batch 1, 16, 64 and 256: lenet_fast runs
  its fused compiled steps (``LeNet5._train_steps``, plain SGD, step 1e-4) over a fixed random input;
  PyTorch trains the closest classic LeNet-5 it can express (conv 5x5 1->6, tanh, avg-pool 2, conv 5x5
  6->16, tanh, avg-pool 2, conv 5x5 16->120, tanh, linear 120->84, tanh, linear 84->10, MSE loss
  against one-hot targets, torch.optim.SGD) on the same images in the same batches;
* inference throughput at batch 1024 (``LeNet5.forward``; ``model(x)`` under torch.inference_mode());
* single-image latency: p50 and p99 of a series of batch-1 calls (each repetition gives one p50 and
  one p99; the figures are their medians).

PyTorch is optional: without it (or with ``--no-torch``) only lenet_fast is measured.
"""
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from . import LeNet5, __version__, _platform
from ._config import _openmp_runtime, effective_n_threads

TRAIN_BATCHES = (1, 16, 64, 256)
STEP = 1e-4


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


# --- the machine ------------------------------------------------------------------------------------

def _cpuinfo():
    """(CPU model name, set of flags) from /proc/cpuinfo; ("unknown", set()) where it is missing."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or "unknown", flags


def machine_info(torch=None):
    """The machine block of the report: CPU, cores, SIMD, versions and thread settings."""
    model, flags = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "python": sys.version.split()[0],
        "lenet_fast": __version__,
        "compiled_isa": _platform.compiled_isa(),
        "openmp": _openmp_runtime() if _platform.openmp_enabled() else None,
        "openmp_thread_limit": effective_n_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "torch_default_threads": torch.get_num_threads() if torch is not None else None,
    }


# --- the two contenders -----------------------------------------------------------------------------

class _LenetFast:
    name = "lenet_fast"

    def __init__(self, n_threads, x_train, y_train):
        self.net = LeNet5("paper", dtype="float32", seed=0, n_threads=n_threads)
        self.x = self.net._as_input(x_train)
        self.y = self.net._as_labels(y_train, len(x_train))
        self.order = np.arange(len(self.y))
        self.step = np.full(self.net._flat.size, STEP, dtype=np.float32)

    def train(self, batch):
        self.net._train_steps(self.x, self.y, self.order, self.step, batch)

    def infer(self, x):
        self.net.forward(x)

    def as_input(self, x):
        return x


class _Torch:
    name = "torch"

    def __init__(self, torch, n_threads, x_train, y_train):
        nn = torch.nn
        self.torch, self.n_threads = torch, n_threads
        torch.manual_seed(0)
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
            nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=STEP)
        self.loss = nn.MSELoss()
        self.x = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
        self.t = nn.functional.one_hot(torch.from_numpy(np.asarray(y_train, dtype=np.int64)), 10).float()

    def train(self, batch):
        self.torch.set_num_threads(self.n_threads)
        model, optimizer, loss, x, t = self.model, self.optimizer, self.loss, self.x, self.t
        for start in range(0, len(x), batch):
            optimizer.zero_grad(set_to_none=True)
            loss(model(x[start:start + batch]), t[start:start + batch]).backward()
            optimizer.step()

    def infer(self, x):
        self.torch.set_num_threads(self.n_threads)
        with self.torch.inference_mode():
            self.model(x)

    def as_input(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _import_torch():
    try:
        import torch
    except Exception:   # not installed, or broken: measure lenet_fast alone
        return None
    return torch


# --- measuring --------------------------------------------------------------------------------------

def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _latencies(run, calls):
    """(p50, p99) in milliseconds of `calls` calls of run()."""
    times = np.array([_seconds(run) for _ in range(calls)]) * 1e3
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def run_bench(repeats=5, threads=(1, 2), quick=False, use_torch=True, out=None):
    """Measure, print the table on `out` (default stdout) and return the report as a dict."""
    out = out or sys.stdout
    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {repeats}")
    torch = _import_torch() if use_torch else None
    n_train, batches, n_infer, calls = (64, (1, 16), 64, 20) if quick else (1024, TRAIN_BATCHES, 1024, 200)
    if quick:
        repeats = min(repeats, 2)
    rng = np.random.default_rng(0)
    x_train = rng.uniform(-0.1, 1.175, (n_train, 1, 32, 32)).astype(np.float32)
    y_train = rng.integers(0, 10, n_train)
    x_infer = rng.uniform(-0.1, 1.175, (n_infer, 1, 32, 32)).astype(np.float32)
    x_one = x_infer[:1].copy()
    torch_threads = torch.get_num_threads() if torch is not None else None
    machine = machine_info(torch)

    # Each case: (key, unit, higher_is_better, {contender name: callable returning {metric: value}}).
    cases = []
    try:
        for k in threads:
            contenders = [_LenetFast(k, x_train, y_train)]
            if torch is not None:
                contenders.append(_Torch(torch, k, x_train, y_train))
            for batch in batches:
                runs = {c.name: (lambda c=c, b=batch: {"train": n_train / _seconds(lambda: c.train(b))})
                        for c in contenders}
                cases.append(((("training", batch, k),), runs))
            inputs = {c.name: (c.as_input(x_infer), c.as_input(x_one)) for c in contenders}
            runs = {c.name: (lambda c=c, x=inputs[c.name][0]: {"infer": n_infer / _seconds(lambda: c.infer(x))})
                    for c in contenders}
            cases.append(((("inference", n_infer, k),), runs))
            runs = {c.name: (lambda c=c, x=inputs[c.name][1]: dict(zip(("p50", "p99"),
                                                                        _latencies(lambda: c.infer(x), calls))))
                    for c in contenders}
            cases.append(((("latency p50", 1, k), ("latency p99", 1, k)), runs))

        for _, runs in cases:           # warm-up: first calls allocate, load and spin up threads
            for run in runs.values():
                run()
        values = {}                     # (case, batch, threads, contender) -> list of figures
        for _ in range(repeats):
            for keys, runs in cases:
                for name, run in runs.items():      # lenet_fast, then torch: interleaved
                    figures = list(run().values())
                    for key, figure in zip(keys, figures):
                        values.setdefault(key + (name,), []).append(figure)
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)

    results = []
    for keys, runs in cases:
        for case, batch, k in keys:
            latency = case.startswith("latency")
            entry = {"case": case, "batch": batch, "threads": k, "unit": "ms" if latency else "images/s",
                     "higher_is_better": not latency}
            for name in ("lenet_fast", "torch"):
                figures = values.get((case, batch, k, name))
                entry[name] = {"median": statistics.median(figures), "values": figures} if figures else None
            entry["speedup"] = None
            if entry["torch"]:
                a, b = entry["lenet_fast"]["median"], entry["torch"]["median"]
                entry["speedup"] = (b / a) if latency else (a / b)
            results.append(entry)
    report = {
        "machine": machine,
        "settings": {"repeats": repeats, "threads": list(threads), "quick": quick, "variant": "paper",
                     "dtype": "float32", "train_images_per_repetition": n_train, "train_batches": list(batches),
                     "sgd_step": STEP, "inference_batch": n_infer, "latency_calls_per_repetition": calls,
                     "torch": torch is not None,
                     "torch_model": "conv5x5 1-6, tanh, avgpool2, conv5x5 6-16, tanh, avgpool2, conv5x5 "
                                    "16-120, tanh, linear 120-84, tanh, linear 84-10; MSE on one-hot, SGD"
                                    if torch is not None else None},
        "results": results,
    }
    print_report(report, out)
    return report


def _figure(value, unit):
    if value is None:
        return "-"
    return f"{value:,.3f} ms" if unit == "ms" else f"{value:,.0f}/s"


def print_report(report, out=None):
    out = out or sys.stdout
    m, s = report["machine"], report["settings"]
    yes = {True: "yes", False: "no"}
    lines = [
        f"lenet-fast bench: medians of {s['repeats']} interleaved repetitions"
        + (", lenet_fast vs PyTorch (CPU)" if s["torch"] else ", lenet_fast only (no PyTorch)")
        + (" [--quick]" if s["quick"] else ""),
        f"cpu         {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"avx2 {yes[m['avx2']]}, avx512f {yes[m['avx512f']]}",
        f"lenet_fast  {m['lenet_fast']}, compiled ISA {m['compiled_isa']}, OpenMP {m['openmp'] or 'off'}",
        f"versions    python {m['python']}, numpy {m['numpy']}, torch {m['torch'] or 'not used'}",
        f"threads     cases at {', '.join(map(str, s['threads']))}; OpenMP limit {m['openmp_thread_limit']}, "
        f"OMP_NUM_THREADS={m['OMP_NUM_THREADS'] or 'unset'}"
        + (f", torch default {m['torch_default_threads']}" if s["torch"] else ""),
        f"work        paper LeNet-5, float32; training: {s['train_images_per_repetition']:,} random images "
        f"per repetition, plain SGD (step {s['sgd_step']:g}); inference batch {s['inference_batch']:,}; "
        f"latency: {s['latency_calls_per_repetition']} batch-1 calls per repetition",
    ]
    if s["torch"]:
        lines.append(f"torch model {s['torch_model']}")
    lines.append("")
    header = f"{'case':<12}{'batch':>6}{'threads':>8}{'lenet_fast':>16}"
    if s["torch"]:
        header += f"{'torch':>16}{'speedup':>9}"
    lines.append(header)
    lines.append("-" * len(header))
    for r in report["results"]:
        row = (f"{r['case']:<12}{r['batch']:>6}{r['threads']:>8}"
               f"{_figure(r['lenet_fast']['median'], r['unit']):>16}")
        if s["torch"]:
            t = r["torch"]["median"] if r["torch"] else None
            sp = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"
            row += f"{_figure(t, r['unit']):>16}{sp:>9}"
        lines.append(row)
    if s["torch"]:
        lines.append("speedup: lenet_fast over torch in this run (images/s ratio; for latency, torch ms / "
                     "lenet_fast ms); > 1 means lenet_fast is faster")
    print("\n".join(lines), file=out, flush=True)


def write_json(report, path):
    from .serialization import atomic_write
    data = (json.dumps(report, indent=2) + "\n").encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
