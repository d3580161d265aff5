"""Memory: the peak of one training epoch of each contender, each in a fresh process.

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

from ...nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from .contenders import _LenetFast, _Torch

MEMORY_IMAGES = 60_000          # the memory runs: one epoch of this many images ...
MEMORY_IMAGES_QUICK = 2_000     # ... (with --quick, this many)
MEMORY_BATCH = 64
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
    """Run by _memory_run in a fresh process: n_images random inputs and labels (seed 0), one epoch at
    batch MEMORY_BATCH, plain SGD; prints {"rss_before_mib", "peak_mib"} as JSON."""
    if contender == "torch":
        import torch    # only in the torch run: its import alone takes memory
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
    code = (f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); "
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
