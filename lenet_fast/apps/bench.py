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
  one p99; the figures are their medians);
* the modern variant (ReLU, 2x2 max-pool, dense 84->10 output, softmax cross-entropy): training at
  batch 64 and inference at batch 1024, against the same network in PyTorch (ReLU, MaxPool2d,
  CrossEntropyLoss, SGD).

Derived from those: the FLOPs per image lenet_fast performs (``flops_per_image``), its training
throughput as a percentage of this CPU's float32 FMA peak (``_platform.fma_peak_gflops``, measured at
each thread count in every repetition, so it shares the machine's noise), and the seconds an epoch of
60,000 images would take. Last, the peak memory of one training epoch (60,000 images, batch 64) of each
contender, each in a fresh process (at the largest thread count).

PyTorch is optional: without it (or with ``--no-torch``) only lenet_fast is measured.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from .. import _platform
from .._checks import integer
from .._config import _openmp_runtime, effective_n_threads
from .._version import __version__
from ..io.archive import atomic_write
from ..model import LeNet5
from ..nn.architecture import VARIANTS
from ..nn.constants import C3_TABLE, INPUT_BACKGROUND, INPUT_FOREGROUND

TRAIN_BATCHES = (1, 16, 64, 256)
MODERN_TRAIN_BATCH = 64
STEP = 1e-4
EPOCH_IMAGES = 60_000           # an MNIST training epoch, for the derived seconds per epoch
MEMORY_IMAGES = 60_000          # the memory runs: one epoch of this many images ...
MEMORY_IMAGES_QUICK = 2_000     # ... (with --quick, this many)
MEMORY_BATCH = 64
TORCH_MODELS = {
    "paper": "conv5x5 1-6, tanh, avgpool2, conv5x5 6-16, tanh, avgpool2, conv5x5 16-120, tanh, "
             "linear 120-84, tanh, linear 84-10; MSE on one-hot, SGD",
    "modern": "conv5x5 1-6, relu, maxpool2, conv5x5 6-16, relu, maxpool2, conv5x5 16-120, relu, "
              "linear 120-84, relu, linear 84-10; cross-entropy, SGD",
}


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


# --- FLOPs ------------------------------------------------------------------------------------------

def flops_per_image(variant, batch_size=1):
    """FLOPs per image of lenet_fast's training step (``LeNet5._train_steps``, plain SGD), by layer.

    Returns {row: {"forward": F, "backward": B, "update": U}} for the rows "c1", "s2", "c3", "s4",
    "c5", "f6", "output" (each layer's own arithmetic), "activations" (every squash, or ReLU, of the
    network) and "loss" (the variant's default loss, which the bench trains with: MSE on the RBF
    penalties for "paper", softmax cross-entropy for "modern"). U is the SGD update of the row's
    trainable parameters divided by `batch_size`, as it runs once per batch. Inference
    (``LeNet5.forward``) is the "forward" of every row but "loss" (``inference_flops_per_image``); a
    training step is the sum of everything (``training_flops_per_image``).

    Counted is what the per-sample kernels (src/kernels/_layers.pxd) compute:

    * convolution: 25 multiply-adds per connected (input map, output map) pair and output position
      forward; backward as many again for the weight gradient and, except in C1 (the input needs no
      gradient), for the input gradient, plus one add per output for the bias gradient. C3 connects
      the 60 pairs of Table I (paper) or all 96 (modern). C5 and F6 run as dense layers.
    * dense (C5 400->120, F6 120->84, the modern output 84->10): F * K multiply-adds forward;
      backward 2 F K (input and weight gradients) + K (bias gradient).
    * subsampling (paper): coef * (sum of the 2x2 block) + bias, 5 per output; backward 7 per output
      (the block's sum again, a multiply-add into the coefficient's gradient, an add into the bias's,
      coef * gradient for the inputs). Max-pooling (modern) only compares: 0.
    * RBF output (paper): a subtraction and a multiply-add per centre coordinate (10 x 84) forward;
      backward the 10 incoming gradients doubled, then the same 840 subtractions and multiply-adds.
    * squash 1.7159 tanh(2a/3): 3 forward, 4 backward (its derivative from the output, times the
      gradient); ReLU: 0.
    * loss: MSE 0 forward (the correct class's penalty), 1 backward; cross-entropy 33 forward
      (log-sum-exp over 10 logits), 63 backward (log-sum-exp again, the softmax, minus 1 at the label).
    * update: w -= step * (g + decay * w), 4 per trainable parameter per batch (the kernel evaluates
      the decay term even when it is 0); C3's unconnected weights are skipped, as in the kernel.

    Conventions: a multiply-add is 2 FLOPs (also when the product goes into an accumulator; a weighted
    sum of n terms plus a bias is n multiply-adds); any other add, subtract, multiply or divide is 1; tanh, exp and log are 1 each; comparisons are 0. Not
    counted: what the convolutions compute in the spare columns of their "wide" rows (C1 computes 892
    positions per map for 784 outputs, C3 136 for 100) and on the zero padding of the backward pass;
    the sum of the per-thread gradient rows once per batch; and the true cost of a float32 tanh, which
    the kernels evaluate with about 50 double-precision operations.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    batch_size = integer("batch_size", batch_size, at_least=1)
    paper = variant == "paper"

    def row(forward, backward, params=0):
        return {"forward": forward, "backward": backward, "update": 4 * params / batch_size}

    def conv(pairs, maps, positions, input_gradient):
        macs = pairs * 25 * positions
        return row(2 * macs, (4 if input_gradient else 2) * macs + maps * positions, pairs * 25 + maps)

    def dense(n_in, n_out):
        return row(2 * n_in * n_out, 4 * n_in * n_out + n_out, n_in * n_out + n_out)

    def pool(maps, outputs):
        return row(5 * outputs, 7 * outputs, 2 * maps) if paper else row(0, 0)

    log_sum_exp = 3 * 10 + 2        # per logit a subtraction, an exp and an add; a log and an add
    squashed = 6 * 28 * 28 + 6 * 14 * 14 + 16 * 10 * 10 + 16 * 5 * 5 + 120 + 84 if paper else 0
    return {
        "c1": conv(6, 6, 28 * 28, input_gradient=False),
        "s2": pool(6, 6 * 14 * 14),
        "c3": conv(int(C3_TABLE.sum()) if paper else 6 * 16, 16, 10 * 10, input_gradient=True),
        "s4": pool(16, 16 * 5 * 5),
        "c5": dense(400, 120),
        "f6": dense(120, 84),
        "output": row(3 * 840, 10 + 3 * 840) if paper else dense(84, 10),
        "activations": row(3 * squashed, 4 * squashed),
        "loss": row(0, 1) if paper else row(log_sum_exp + 1, log_sum_exp + 3 * 10 + 1),
    }


def training_flops_per_image(variant, batch_size):
    """FLOPs per trained image: forward, loss, backward and the batch's update shared over its images."""
    return sum(sum(row.values()) for row in flops_per_image(variant, batch_size).values())


def inference_flops_per_image(variant):
    """FLOPs per image of the forward pass alone (no loss)."""
    return sum(row["forward"] for name, row in flops_per_image(variant).items() if name != "loss")


# --- the two contenders -----------------------------------------------------------------------------

class _LenetFast:
    name = "lenet_fast"

    def __init__(self, variant, n_threads, x_train, y_train):
        # x_train: float32 (N, 1, 32, 32), y_train: int64 labels (ops.train_steps checks them); used as
        # they are, so the memory runs add no copy of the data
        self.net = LeNet5(variant, dtype="float32", seed=0, n_threads=n_threads)
        self.x, self.y = x_train, y_train
        self.order = np.arange(len(y_train))
        self.step = np.full(self.net.flat_parameters.size, STEP, dtype=np.float32)

    def train(self, batch):
        self.net.train_steps(self.x, self.y, self.order, self.step, batch)

    def infer(self, x):
        self.net.forward(x)

    def as_input(self, x):
        return x


class _Torch:
    name = "torch"

    def __init__(self, torch, variant, n_threads, x_train, y_train):
        nn = torch.nn
        self.torch, self.n_threads = torch, n_threads
        torch.manual_seed(0)
        act, pool = (nn.Tanh, nn.AvgPool2d) if variant == "paper" else (nn.ReLU, nn.MaxPool2d)
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5), act(), pool(2),
            nn.Conv2d(6, 16, 5), act(), pool(2),
            nn.Conv2d(16, 120, 5), act(), nn.Flatten(),
            nn.Linear(120, 84), act(), nn.Linear(84, 10))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=STEP)
        self.x = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
        labels = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
        if variant == "paper":
            self.loss, self.t = nn.MSELoss(), nn.functional.one_hot(labels, 10).float()
        else:
            self.loss, self.t = nn.CrossEntropyLoss(), labels

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


# --- memory: one training epoch in a fresh process ------------------------------------------------
# The peak is the process's VmHWM, not getrusage's ru_maxrss: on Linux a process keeps the maxrss of
# the address space it replaced at exec, so a child spawned by this (large) process would report at
# least this process's peak.

def _status_mib(field):
    """A memory figure of this process from /proc/self/status (e.g. VmRSS, VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024      # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _train_for_memory(contender, n_images, n_threads):
    """Run by _memory_run in a fresh process: n_images random inputs and labels (seed 0), one epoch at
    batch MEMORY_BATCH, plain SGD; prints {"rss_before_mib", "peak_mib"} as JSON."""
    if contender == "torch":
        import torch
    rng = np.random.default_rng(0)
    x = rng.random((n_images, 1, 32, 32), dtype=np.float32)     # scaled in place: no temporary copy
    x *= INPUT_FOREGROUND - INPUT_BACKGROUND
    x += INPUT_BACKGROUND
    y = rng.integers(0, 10, n_images)
    if contender == "torch":
        model = _Torch(torch, "paper", n_threads, x, y)
    else:
        model = _LenetFast("paper", n_threads, x, y)
    before = _status_mib("VmRSS")
    model.train(MEMORY_BATCH)
    print(json.dumps({"rss_before_mib": before, "peak_mib": _status_mib("VmHWM")}))


def _memory_run(contender, n_images, n_threads):
    """{"rss_before_mib", "peak_mib", "increase_mib"} of _train_for_memory in a fresh Python."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; sys.path.insert(0, {package_root!r}); "     # this lenet_fast, whatever the cwd
            f"from lenet_fast.apps.bench import _train_for_memory; _train_for_memory({contender!r}, {n_images}, "
            f"{n_threads})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"the {contender} memory run failed: {last}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["increase_mib"] = figures["peak_mib"] - figures["rss_before_mib"]
    return figures


def _measure_memory(n_images, n_threads, with_torch):
    """The memory block of the report (None off Linux: it reads /proc/self/status)."""
    if not os.path.exists("/proc/self/status"):
        return None
    memory = {"images": n_images, "batch": MEMORY_BATCH, "threads": n_threads,
              "lenet_fast": _memory_run("lenet_fast", n_images, n_threads),
              "torch": _memory_run("torch", n_images, n_threads) if with_torch else None}
    ratios = None
    if memory["torch"]:
        a, b = memory["lenet_fast"], memory["torch"]
        ratios = {"peak": a["peak_mib"] / b["peak_mib"], "increase": a["increase_mib"] / b["increase_mib"]}
    memory["lenet_fast_over_torch"] = ratios
    return memory


# --- the run ----------------------------------------------------------------------------------------

def run_bench(repeats=5, threads=(1, 2), quick=False, use_torch=True, out=None):
    """Measure, print the table on `out` (default stdout) and return the report as a dict."""
    out = out or sys.stdout
    repeats = integer("repeats", repeats, at_least=1)
    torch = _import_torch() if use_torch else None
    n_train, batches, n_infer, calls = (64, (1, 16), 64, 20) if quick else (1024, TRAIN_BATCHES, 1024, 200)
    if quick:
        repeats = min(repeats, 2)
    probe_seconds = 0.02 if quick else 0.3
    memory_images = MEMORY_IMAGES_QUICK if quick else MEMORY_IMAGES
    rng = np.random.default_rng(0)
    x_train = rng.uniform(INPUT_BACKGROUND, INPUT_FOREGROUND, (n_train, 1, 32, 32)).astype(np.float32)
    y_train = rng.integers(0, 10, n_train)
    x_infer = rng.uniform(INPUT_BACKGROUND, INPUT_FOREGROUND, (n_infer, 1, 32, 32)).astype(np.float32)
    x_one = x_infer[:1].copy()
    torch_threads = torch.get_num_threads() if torch is not None else None
    machine = machine_info(torch)

    # Each case: (keys, {contender name: callable returning one figure per key}); a key is
    # (variant, case, batch, threads).
    cases = []
    try:
        for k in threads:
            for variant in VARIANTS:
                contenders = [_LenetFast(variant, k, x_train, y_train)]
                if torch is not None:
                    contenders.append(_Torch(torch, variant, k, x_train, y_train))
                for batch in batches if variant == "paper" else (MODERN_TRAIN_BATCH,):
                    runs = {c.name: (lambda c=c, b=batch: [n_train / _seconds(lambda: c.train(b))])
                            for c in contenders}
                    cases.append((((variant, "training", batch, k),), runs))
                inputs = {c.name: (c.as_input(x_infer), c.as_input(x_one)) for c in contenders}
                runs = {c.name: (lambda c=c, x=inputs[c.name][0]: [n_infer / _seconds(lambda: c.infer(x))])
                        for c in contenders}
                cases.append((((variant, "inference", n_infer, k),), runs))
                if variant == "paper":
                    runs = {c.name: (lambda c=c, x=inputs[c.name][1]: _latencies(lambda: c.infer(x), calls))
                            for c in contenders}
                    cases.append((((variant, "latency p50", 1, k), (variant, "latency p99", 1, k)), runs))

        for _, runs in cases:           # warm-up: first calls allocate, load and spin up threads
            for run in runs.values():
                run()
        values = {}                     # key + (contender,) -> list of figures
        peaks = {k: [] for k in threads}  # FMA peak, GFLOP/s
        for _ in range(repeats):
            for k in threads:
                peaks[k].append(_platform.fma_peak_gflops(probe_seconds, k))
            for keys, runs in cases:
                for name, run in runs.items():      # lenet_fast, then torch: interleaved
                    for key, figure in zip(keys, run()):
                        values.setdefault(key + (name,), []).append(figure)
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)
    memory = _measure_memory(memory_images, max(threads), torch is not None)

    peak = {k: statistics.median(v) for k, v in peaks.items()}
    results = []
    for keys, _ in cases:
        for variant, case, batch, k in keys:
            latency = case.startswith("latency")
            entry = {"variant": variant, "case": case, "batch": batch, "threads": k,
                     "unit": "ms" if latency else "images/s", "higher_is_better": not latency}
            for name in ("lenet_fast", "torch"):
                figures = values.get((variant, case, batch, k, name))
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
                                          for name in ("lenet_fast", "torch")}
            results.append(entry)
    trained = {"paper": batches, "modern": (MODERN_TRAIN_BATCH,)}
    flops = {variant: flops_per_image(variant) for variant in VARIANTS}     # batch 1: "update" per batch
    report = {
        "machine": machine,
        "settings": {"repeats": repeats, "threads": list(threads), "quick": quick, "variants": list(VARIANTS),
                     "dtype": "float32", "train_images_per_repetition": n_train, "train_batches": list(batches),
                     "modern_train_batch": MODERN_TRAIN_BATCH, "sgd_step": STEP, "inference_batch": n_infer,
                     "latency_calls_per_repetition": calls, "epoch_images": EPOCH_IMAGES,
                     "fma_probe_seconds": probe_seconds, "torch": torch is not None,
                     "torch_models": TORCH_MODELS if torch is not None else None},
        "fma_peak": [{"threads": k, "gflops": peak[k], "values": peaks[k]} for k in threads],
        "flops_per_image": {
            variant: {"by_layer": flops[variant], "by_layer_batch_size": 1,
                      "update_per_batch": sum(row["update"] for row in flops[variant].values()),
                      "inference": inference_flops_per_image(variant),
                      "training_step": {str(b): training_flops_per_image(variant, b) for b in trained[variant]}}
            for variant in VARIANTS},
        "results": results,
        "memory": memory,
    }
    print_report(report, out)
    return report


def _figure(value, unit):
    if value is None:
        return "-"
    return f"{value:,.3f} ms" if unit == "ms" else f"{value:,.0f}/s"


def _mib(value):
    return "-" if value is None else f"{value:,.1f} MiB"


def _threads_text(k):
    return f"{k} thread" + ("s" if k > 1 else "")


def print_report(report, out=None):
    out = out or sys.stdout
    m, s = report["machine"], report["settings"]
    yes = {True: "yes", False: "no"}
    peaks = ", ".join(f"{p['gflops']:,.1f} GFLOP/s at {_threads_text(p['threads'])}" for p in report["fma_peak"])
    lines = [
        f"lenet-fast bench: medians of {s['repeats']} interleaved repetitions"
        + (", lenet_fast vs PyTorch (CPU)" if s["torch"] else ", lenet_fast only (no PyTorch)")
        + (" [--quick]" if s["quick"] else ""),
        f"cpu         {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"avx2 {yes[m['avx2']]}, avx512f {yes[m['avx512f']]}",
        f"fma peak    {peaks} (medians; a {s['fma_probe_seconds']:g} s float32 FMA probe per thread count in "
        "every repetition)",
        f"lenet_fast  {m['lenet_fast']}, compiled ISA {m['compiled_isa']}, OpenMP {m['openmp'] or 'off'}",
        f"versions    python {m['python']}, numpy {m['numpy']}, torch {m['torch'] or 'not used'}",
        f"threads     cases at {', '.join(map(str, s['threads']))}; OpenMP limit {m['openmp_thread_limit']}, "
        f"OMP_NUM_THREADS={m['OMP_NUM_THREADS'] or 'unset'}"
        + (f", torch default {m['torch_default_threads']}" if s["torch"] else ""),
        f"work        float32; training: {s['train_images_per_repetition']:,} random images per repetition, "
        f"plain SGD (step {s['sgd_step']:g}), paper variant at batch "
        f"{', '.join(map(str, s['train_batches']))}, modern at {s['modern_train_batch']}; inference batch "
        f"{s['inference_batch']:,}; latency (paper): {s['latency_calls_per_repetition']} batch-1 calls per "
        "repetition",
    ]
    if s["torch"]:
        for variant, description in s["torch_models"].items():
            lines.append(f"torch {variant:<7}{description}")
    lines.append("")
    header = f"{'variant':<8}{'case':<12}{'batch':>6}{'threads':>8}{'lenet_fast':>14}"
    if s["torch"]:
        header += f"{'torch':>14}{'speedup':>9}"
    header += f"{'% peak':>8}{'epoch s*':>15}"
    lines.append(header)
    lines.append("-" * len(header))
    for r in report["results"]:
        row = (f"{r['variant']:<8}{r['case']:<12}{r['batch']:>6}{r['threads']:>8}"
               f"{_figure(r['lenet_fast']['median'], r['unit']):>14}")
        if s["torch"]:
            t = r["torch"]["median"] if r["torch"] else None
            sp = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"
            row += f"{_figure(t, r['unit']):>14}{sp:>9}"
        if r["case"] == "training":
            epoch = [r["epoch_seconds"][name] for name in ("lenet_fast", "torch")[:2 if s["torch"] else 1]]
            epoch = " / ".join("-" if e is None else f"{e:.1f}" for e in epoch)
            row += f"{r['percent_of_peak']:>7.1f}%{epoch:>15}"
        lines.append(row.rstrip())
    if s["torch"]:
        lines.append("speedup: lenet_fast over torch in this run (images/s ratio; for latency, torch ms / "
                     "lenet_fast ms); > 1 means lenet_fast is faster")
    lines.append("% peak: lenet_fast's FLOPs per trained image (table below) x its images/s / the FMA peak at "
                 "that thread count (batch 1 trains on one thread)")
    lines.append(f"* epoch s: derived, not measured: {s['epoch_images']:,} images / the images/s above"
                 + (" (lenet_fast / torch)" if s["torch"] else ""))
    lines += [""] + _flops_lines(report["flops_per_image"]) + [""] + _memory_lines(report["memory"], s)
    print("\n".join(lines), file=out, flush=True)


def _flops_lines(flops):
    variants = list(flops)
    lines = ["FLOPs per image that lenet_fast performs (bench.flops_per_image: a multiply-add is 2 FLOPs, "
             "tanh, exp and log 1, comparisons 0)",
             f"{'':<14}" + "".join(f"{v + ' forward':>17}{v + ' backward':>17}" for v in variants)]
    rows = {v: flops[v]["by_layer"] for v in variants}
    for name in rows[variants[0]]:
        lines.append(f"{name:<14}" + "".join(f"{rows[v][name]['forward']:>17,}{rows[v][name]['backward']:>17,}"
                                            for v in variants))
    totals = {v: [sum(r[d] for r in rows[v].values()) for d in ("forward", "backward")] for v in variants}
    lines.append(f"{'total':<14}" + "".join(f"{totals[v][0]:>17,}{totals[v][1]:>17,}" for v in variants))
    lines.append("SGD update, once per batch (4 per trainable parameter): "
                 + "; ".join(f"{v} {flops[v]['update_per_batch']:,.0f}" for v in variants))
    lines.append("inference per image (forward, no loss): "
                 + "; ".join(f"{v} {flops[v]['inference']:,}" for v in variants))
    steps = {v: ", ".join(f"{f:,.0f} at batch {b}" for b, f in flops[v]["training_step"].items())
             for v in variants}
    lines.append("training step per image (total + update / batch): "
                 + "; ".join(f"{v} {steps[v]}" for v in variants))
    return lines


def _memory_lines(memory, settings):
    if memory is None:
        return ["memory      not measured (it reads /proc/self/status: Linux only)"]
    quick = f" [--quick: {memory['images']:,} images, not {MEMORY_IMAGES:,}]" if settings["quick"] else ""
    lines = [f"memory: one training epoch of {memory['images']:,} random images (paper, float32, batch "
             f"{memory['batch']}, plain SGD, {_threads_text(memory['threads'])}), "
             f"each in a fresh process{quick}",
             f"{'':<18}{'RSS before':>14}{'peak RSS':>14}{'training adds':>15}"]
    for name in ("lenet_fast", "torch"):
        figures = memory[name] or {}
        lines.append(f"{name:<18}{_mib(figures.get('rss_before_mib')):>14}{_mib(figures.get('peak_mib')):>14}"
                     f"{_mib(figures.get('increase_mib')):>15}")
    ratios = memory["lenet_fast_over_torch"]
    lines.append(f"{'lenet_fast / torch':<18}{'':>14}"
                 + (f"{ratios['peak']:>13.2f}x{ratios['increase']:>14.2f}x" if ratios else f"{'-':>14}{'-':>15}"))
    lines.append("RSS before: after imports, data and model, just before training; peak: the process's VmHWM")
    return lines


def write_json(report, path):
    data = (json.dumps(report, indent=2) + "\n").encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
