"""Memory: the peak of one training epoch (paper variant, batch MEMORY_BATCH, plain SGD) of lenet_fast and
of PyTorch eager, each in a fresh process. What each holds (MEMORY_RUNS):

* ``lenet_fast``: what ``lenet-fast train`` does: the Trainer (``lenet_fast.train.Trainer``, SGD) given
  uint8 images (N, 28, 28), which it keeps as they are and prepares 1,024 at a time;
* ``torch``: the float32 network input (N, 1, 32, 32) in one tensor, as its speed contender trains on
  (and as a PyTorch script that loads MNIST into a tensor does);
* ``torch-uint8``: the same uint8 images (N, 28, 28) as lenet_fast, padded and scaled a batch at a time.

The peak is the process's VmHWM, not getrusage's ru_maxrss: on Linux a process keeps the maxrss of the
address space it replaced at exec, so a child spawned by this (large) process would report at least
this process's peak.
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

from ...model import LeNet5
from ...nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from ...train.trainer import Trainer
from .contenders import STEP
from .peers_torch import TorchEager

MEMORY_IMAGES = 60_000          # the memory runs: one epoch of this many images ...
MEMORY_IMAGES_QUICK = 2_000     # ... (with --quick, this many)
MEMORY_BATCH = 64
MEMORY_RUNS = {
    "lenet_fast": "Trainer, SGD; holds uint8 (N, 28, 28), prepares 1,024 images at a time",
    "torch": "eager, torch.optim.SGD; holds float32 (N, 1, 32, 32) in a tensor",
    "torch-uint8": "eager, torch.optim.SGD; holds uint8 (N, 28, 28), pads and scales each batch",
}
# the directory that holds the lenet_fast folder (this file is lenet_fast/apps/bench/memory.py), put
# first on the child's sys.path so that it measures this lenet_fast, whatever the cwd
PACKAGE_ROOT = str(pathlib.Path(os.path.abspath(__file__)).parents[3])


def _status_mib(field):
    """A memory figure of this process from /proc/self/status (e.g. VmRSS, VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024      # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _train_for_memory(contender, n_images, n_threads):
    """Run by _memory_run in a fresh process: n_images random images and labels (seed 0), one epoch at
    batch MEMORY_BATCH, plain SGD; prints {"rss_before_mib", "peak_mib"} as JSON."""
    if contender not in MEMORY_RUNS:
        raise ValueError(f"no memory run {contender!r}")
    rng = np.random.default_rng(0)
    if contender == "torch":
        x = rng.random((n_images, 1, 32, 32), dtype=np.float32)     # scaled in place: no temporary copy
        x *= INPUT_FOREGROUND - INPUT_BACKGROUND
        x += INPUT_BACKGROUND
    else:
        x = rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n_images)
    if contender == "lenet_fast":
        net = LeNet5("paper", dtype="float32", seed=0, n_threads=n_threads)
        trainer = Trainer(net, "sgd", epochs=1, batch_size=MEMORY_BATCH, learning_rate=STEP, momentum=0.0,
                          weight_decay=0.0, seed=0)
        before = _status_mib("VmRSS")
        trainer.fit(x, y)
    else:
        model = TorchEager("paper", n_threads, x, y)        # imports torch: only in the torch runs
        before = _status_mib("VmRSS")
        model.train(MEMORY_BATCH)
    print(json.dumps({"rss_before_mib": before, "peak_mib": _status_mib("VmHWM")}))


def _memory_run(contender, n_images, n_threads):
    """{"rss_before_mib", "peak_mib", "increase_mib"} of _train_for_memory in a fresh Python."""
    code = (f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); "
            f"from lenet_fast.apps.bench.memory import _train_for_memory; "
            f"_train_for_memory({contender!r}, {n_images}, {n_threads})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"the {contender} memory run failed: {last}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["increase_mib"] = figures["peak_mib"] - figures["rss_before_mib"]
    return figures


def _measure_memory(n_images, n_threads, with_torch):
    """The memory block of the report (None off Linux: it reads /proc/self/status): each run's figures,
    and lenet_fast's peak and increase over each torch run's."""
    if not os.path.exists("/proc/self/status"):
        return None
    names = [name for name in MEMORY_RUNS if with_torch or not name.startswith("torch")]
    runs = {name: _memory_run(name, n_images, n_threads) for name in names}
    a = runs["lenet_fast"]
    ratios = {name: {"peak": a["peak_mib"] / b["peak_mib"],
                     "increase": a["increase_mib"] / b["increase_mib"] if b["increase_mib"] > 0 else None}
              for name, b in runs.items() if name != "lenet_fast"}
    return {"images": n_images, "batch": MEMORY_BATCH, "threads": n_threads, "runs": runs,
            "holds": {name: MEMORY_RUNS[name] for name in names}, "lenet_fast_over": ratios}
