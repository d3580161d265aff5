"""Run-time ISA dispatch (lenet_fast._isa, setup.py's LENET_FAST_ARCH=portable): the choice of path, the CPU
check, and, in a portable build, that each path's kernels hold no wider instruction than their path and
agree with each other. .ci/portable builds the portable wheel and runs this file and the kernel tests once
per ISA path (LENET_FAST_ISA); the main test run has a native build, where the portable-build tests skip."""
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _cpu, _isa

PORTABLE = bool(_isa.BUILT_PATHS)
needs_portable = pytest.mark.skipif(not PORTABLE, reason="a native build (portable: LENET_FAST_ARCH=portable, .ci/portable)")
PATHS = ["avx512", "avx2", "baseline"]


def test_choose_the_widest_path_the_cpu_runs():
    assert _isa.choose(PATHS, ["avx2", "baseline"], None) == ("avx2", None)
    assert _isa.choose(PATHS, PATHS, "") == ("avx512", None)
    assert _isa.choose(["baseline"], ["baseline"], None) == ("baseline", None)


def test_a_lower_path_can_be_forced():
    assert _isa.choose(PATHS, PATHS, "baseline") == ("baseline", None)
    assert _isa.choose(PATHS, PATHS, "avx2") == ("avx2", None)


def test_a_path_that_cannot_run_is_refused_with_the_reason():
    path, problem = _isa.choose(PATHS, ["avx2", "baseline"], "avx512")
    assert path == "avx2" and "LENET_FAST_ISA=avx512" in problem and "cannot run" in problem
    path, problem = _isa.choose(PATHS, PATHS, "sse4")
    assert path == "avx512" and "LENET_FAST_ISA=sse4" in problem and "avx512, avx2, baseline" in problem
    path, problem = _isa.choose([], [], "avx2")
    assert path == _isa.NATIVE and "LENET_FAST_ARCH=portable" in problem
    assert _isa.choose([], [], "native") == (_isa.NATIVE, None)
    with pytest.raises(ImportError, match="runs none of"):
        _isa.choose(["avx512"], [], None)


def test_a_forced_path_is_reported_in_a_fresh_process():
    # a bad value: a one-line warning at import, the package still works
    env = {**os.environ, "LENET_FAST_ISA": "no-such-isa"}
    out = subprocess.run([sys.executable, "-c", "import lenet_fast._isa as i; print(i.ISA)"], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    assert "RuntimeWarning" in out.stderr and "LENET_FAST_ISA=no-such-isa" in out.stderr
    assert out.stdout.strip() == (_isa.BUILT_PATHS[0] if PORTABLE else "native")


def _cpu_flags():
    """The x86 CPU's flags from /proc/cpuinfo; None elsewhere (under an emulator such as qemu-user, the file
    describes the host, not the CPU the kernels run on)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith("flags")), None)
    return set(line.split(":", 1)[1].split()) if line else None


def test_the_cpu_check_agrees_with_the_kernel_cpu_flags():
    assert _cpu.can_run("baseline") and not _cpu.can_run("no-such-isa")
    flags = _cpu_flags()
    if flags is None or "sse2" not in flags:         # not Linux on x86: only baseline
        assert not _cpu.can_run("avx2") and not _cpu.can_run("avx512")
        return
    v3 = {"avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"} <= flags
    assert _cpu.can_run("avx2") == v3
    assert _cpu.can_run("avx512") == (v3 and {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags)


def test_show_config_names_the_path_that_runs():
    import io
    out = io.StringIO()
    lenet_fast.show_config(file=out)
    simd = next(line for line in out.getvalue().splitlines() if line.startswith("simd"))
    assert (f"path {_isa.ISA} of" in simd) if PORTABLE else ("LENET_FAST_ARCH=" in simd)


# --- a portable build ---------------------------------------------------------------------------------

WIDER = {"baseline": r"%[yz]mm|\{k[0-7]\}", "avx2": r"%zmm|\{k[0-7]\}", "avx512": None}


@needs_portable
@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not installed")
def test_each_path_holds_no_wider_instruction():
    """The baseline kernels use no AVX register (so they run on any x86-64), the AVX2 kernels no AVX-512."""
    package = Path(lenet_fast.__file__).parent
    for path in _isa.BUILT_PATHS:
        pattern = WIDER.get(path)
        libraries = sorted(package.rglob(f"_*_{path}.*.so"))
        assert libraries, f"no kernel modules of path {path} in {package}"
        for library in libraries if pattern else []:
            text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)], capture_output=True,
                                  text=True, timeout=300, check=True).stdout
            wide = [line for line in text.splitlines() if re.search(pattern, line)]
            assert not wide, f"{library.name}: {len(wide)} instructions beyond {path}, e.g. {wide[0].strip()}"


_TRAIN_ONE_PASS = """
import hashlib, json, lenet_fast, lenet_fast._isa as isa
from lenet_fast.data import load_sample
d = load_sample()
net = lenet_fast.LeNet5(seed=3, n_threads=2)
net.fit(d.x_train[:256], d.y_train[:256], epochs=1, verbose=False)
x = d.x_train[256:320]
print(json.dumps({"isa": isa.ISA, "digest": hashlib.sha256(net.flat_parameters.tobytes()).hexdigest(),
                  "out": net.forward(x).tolist(), "pred": net.predict(x).tolist()}))
"""


def _train_on(path):
    env = {**os.environ, "LENET_FAST_ISA": path}
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", _TRAIN_ONE_PASS], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"LENET_FAST_ISA={path}: {out.stderr}"
    return json.loads(out.stdout)


@needs_portable
def test_every_runnable_path_trains_alike_and_deterministically():
    runs = {path: _train_on(path) for path in _isa.BUILT_PATHS if _cpu.can_run(path)}
    assert all(run["isa"] == path for path, run in runs.items())
    first = runs[_isa.BUILT_PATHS[-1]]           # baseline
    for path, run in runs.items():
        # the same ISA path: bit-identical; another: the same network up to rounding (sums in other orders)
        assert _train_on(path)["digest"] == run["digest"], path
        np.testing.assert_allclose(run["out"], first["out"], rtol=1e-4, atol=1e-3)
        assert np.mean(np.array(run["pred"]) == first["pred"]) >= 0.95
