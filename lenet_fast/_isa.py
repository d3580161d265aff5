"""Which compiled kernels this process runs: the ISA path, chosen once, at import.

A native build (setup.py's default, LENET_FAST_ARCH=native) has one set of kernel modules, compiled for the
machine that built it: ``lenet_fast.nn._network`` and the rest; its path is "native". A portable build
(LENET_FAST_ARCH=portable, for wheels) has one set per ISA path, each module named with its path as a
suffix (``lenet_fast.nn._network_avx2``), and the list of paths, widest first, in _build_info.json. Here the
widest path this CPU runs is chosen (``lenet_fast._cpu`` asks the CPU), or the path named by the
environment variable LENET_FAST_ISA, read once at import (e.g. LENET_FAST_ISA=avx2 to run or test the AVX2
kernels on an AVX-512 machine). A path the build lacks or the CPU cannot run is not used: a RuntimeWarning
names the problem and the widest runnable path runs instead. Every kernel module comes from ``load``.
"""
import importlib
import json
import os
import warnings

from . import _cpu

ENV = "LENET_FAST_ISA"
NATIVE = "native"


def build_info():
    """How the kernels were compiled (written by setup.py next to the compiled modules); {} if unknown."""
    path = os.path.join(os.path.dirname(__file__), "_build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def choose(built, runnable, requested):
    """(path, problem): the ISA path to run and why `requested` is not it (None when it is, or when
    nothing was requested). `built`: the build's paths, widest first ([] for a native build);
    `runnable`: the ones this CPU runs; `requested`: $LENET_FAST_ISA, None or "" when unset."""
    if not built:
        if requested and requested != NATIVE:
            return NATIVE, (f"{ENV}={requested} is ignored: this build has one set of kernels, compiled for the "
                            "machine that built it (LENET_FAST_ARCH=native); build with LENET_FAST_ARCH=portable to "
                            "choose among ISA paths")
        return NATIVE, None
    best = next((path for path in built if path in runnable), None)
    if best is None:
        raise ImportError(f"this CPU runs none of lenet_fast's kernel paths ({', '.join(built)}): reinstall "
                          "lenet_fast from source (pip install --no-binary lenet_fast lenet_fast)")
    if not requested or requested == best:
        return best, None
    if requested not in built:
        return best, f"{ENV}={requested} is not an ISA path of this build ({', '.join(built)}); running {best}"
    if requested not in runnable:
        return best, f"{ENV}={requested}: this CPU cannot run the {requested} kernels; running {best}"
    return requested, None


BUILT_PATHS = list(build_info().get("isa_paths", {}))
REQUESTED = os.environ.get(ENV, "").strip()
ISA, PROBLEM = choose(BUILT_PATHS, [p for p in BUILT_PATHS if _cpu.can_run(p)], REQUESTED)
if PROBLEM:
    warnings.warn(PROBLEM, RuntimeWarning, stacklevel=2)


def load(module):
    """The compiled kernel module `module` (e.g. "lenet_fast.nn._network") of the chosen ISA path."""
    return importlib.import_module(module if ISA == NATIVE else f"{module}_{ISA}")
