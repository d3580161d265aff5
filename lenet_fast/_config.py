"""Threads and build configuration: one function decides the thread count, every kernel call uses it."""
import os
import sys

import numpy as np

from . import _isa
from ._checks import integer
from ._version import __version__

_platform = _isa.load("lenet_fast._platform")


def _max_threads():
    """The most threads a kernel call may use: $LENET_FAST_MAX_THREADS when set, else 4 per CPU and at
    least 64. Every thread of a call has its own work buffers (a training call 240 KB, more in float64),
    and far beyond the CPUs OpenMP runtimes run out of memory, abort or crash."""
    text = os.environ.get("LENET_FAST_MAX_THREADS")
    if text is None:
        return max(64, 4 * (os.cpu_count() or 1))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"LENET_FAST_MAX_THREADS must be a positive integer, got {text!r}")
    return value


# The limit of n_threads, read once at import: set $LENET_FAST_MAX_THREADS before importing lenet_fast
# (or assign lenet_fast._config.MAX_THREADS) to raise it. OpenMP's own limit above it is lowered to it.
MAX_THREADS = _max_threads()


def effective_n_threads(n_threads=None):
    """The number of OpenMP threads a kernel call will use.

    None: OpenMP's current limit (``OMP_NUM_THREADS``, or what threadpoolctl set, or all cores), at
    most MAX_THREADS. A positive int: exactly that many, at most MAX_THREADS (4 per CPU and at least
    64, unless $LENET_FAST_MAX_THREADS says otherwise): more is a ValueError naming the limit. A
    negative int counts back from the limit (-1 = all, -2 = all but one, never fewer than 1). Without
    OpenMP the answer is always 1.
    """
    n_threads = integer("n_threads", n_threads, allow_none=True)
    if n_threads == 0:
        raise ValueError("n_threads must not be 0 (use None for all threads, or a positive count)")
    if n_threads is not None and n_threads > MAX_THREADS:
        raise ValueError(f"n_threads must be at most {MAX_THREADS}, lenet_fast's thread limit (MAX_THREADS: 4 per "
                         f"CPU, at least 64; set LENET_FAST_MAX_THREADS to change it), got {n_threads}")
    if not _platform.openmp_enabled():
        return 1
    limit = min(_platform.max_threads(), MAX_THREADS)
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


def _isa_line(info):
    """Which kernels run: a native build's -march, or the path a portable build chose at run time."""
    request = ""
    if _isa.REQUESTED:
        request = f"; {_isa.ENV}={_isa.REQUESTED} {'not used' if _isa.PROBLEM else 'applied'}"
    if _isa.ISA == _isa.NATIVE:
        return f"LENET_FAST_ARCH={info.get('arch', 'unknown')}{request}"
    return f"path {_isa.ISA} of {', '.join(_isa.BUILT_PATHS)}, chosen at run time; LENET_FAST_ARCH=portable{request}"


def _isa_flags(info):
    """The ISA flags of the running kernels."""
    if _isa.ISA == _isa.NATIVE:
        return info.get("arch_flags", [])
    return info.get("isa_paths", {}).get(_isa.ISA, [])


def show_config(file=None):
    """Print version, OpenMP, threads, instruction set, compiler and flags of this build."""
    info = _isa.build_info()
    openmp = _platform.openmp_enabled()
    lines = [
        f"lenet_fast {__version__}",
        f"python     {sys.version.split()[0]}, numpy {np.__version__}",
        f"openmp     {'on (' + _openmp_runtime() + ')' if openmp else 'off (single-threaded build)'}",
        f"threads    {effective_n_threads()} (OpenMP limit; per model: LeNet5(n_threads=...))",
        f"simd       {_platform.compiled_isa()} ({_isa_line(info)})",
        f"compiler   {info.get('compiler', 'unknown')}",
        f"flags      {' '.join(info.get('compile_args', []) + _isa_flags(info)) or 'unknown'}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
