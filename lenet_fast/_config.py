"""Threads and build configuration: one function decides the thread count, every kernel call uses it."""
import json
import os
import sys

import numpy as np

from . import _platform
from ._checks import integer
from ._version import __version__


def effective_n_threads(n_threads=None):
    """The number of OpenMP threads a kernel call will use.

    None: OpenMP's current limit (``OMP_NUM_THREADS``, or what threadpoolctl set, or all cores).
    A positive int: exactly that many. A negative int counts back from the limit (-1 = all, -2 = all
    but one, never fewer than 1). Without OpenMP the answer is always 1.
    """
    n_threads = integer("n_threads", n_threads, allow_none=True)
    if n_threads == 0:
        raise ValueError("n_threads must not be 0 (use None for all threads, or a positive count)")
    if not _platform.openmp_enabled():
        return 1
    limit = _platform.max_threads()
    if n_threads is None:
        return limit
    if n_threads < 0:
        return max(1, limit + n_threads + 1)
    return n_threads


def _openmp_runtime():
    """The OpenMP runtime library loaded in this process (from /proc/self/maps on Linux)."""
    try:
        with open("/proc/self/maps") as f:
            names = {os.path.basename(line.split()[-1]) for line in f if "omp" in line}
    except OSError:
        return "unknown"
    libs = sorted(n for n in names if n.startswith(("libgomp", "libomp", "libiomp")))
    return ", ".join(libs) or "unknown"


def build_info():
    """How the kernels were compiled (written by setup.py next to the compiled modules)."""
    path = os.path.join(os.path.dirname(__file__), "_build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def show_config(file=None):
    """Print version, OpenMP, threads, instruction set, compiler and flags of this build."""
    info = build_info()
    openmp = _platform.openmp_enabled()
    lines = [
        f"lenet_fast {__version__}",
        f"python     {sys.version.split()[0]}, numpy {np.__version__}",
        f"openmp     {'on (' + _openmp_runtime() + ')' if openmp else 'off (single-threaded build)'}",
        f"threads    {effective_n_threads()} (OpenMP limit; per model: LeNet5(n_threads=...))",
        f"simd       {_platform.compiled_isa()} (LENET_FAST_ARCH={info.get('arch', 'unknown')})",
        f"compiler   {info.get('compiler', 'unknown')}",
        f"flags      {' '.join(info.get('compile_args', [])) or 'unknown'}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
