"""The machine block of the ``lenet-fast bench`` report: CPU, cores, SIMD, versions, thread settings."""
import os
import platform
import sys

import numpy as np

from ..._config import _openmp_runtime, _platform, effective_n_threads
from ..._version import __version__


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


def machine_info(peer_versions=None):
    """The machine block of the report: CPU, cores, SIMD, versions (`peer_versions`: {package: version}
    of the peers measured) and thread settings."""
    model, flags = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    torch = sys.modules.get("torch")        # imported by a torch peer, if one ran
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
        "peers": dict(peer_versions or {}),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability() if torch is not None else None,
    }
