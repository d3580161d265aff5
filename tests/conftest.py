import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast.data import load_sample

# Pythons that the tests start (the CLI, servers, Dask workers) must import the installed package, not
# the source tree in the working directory (Python >= 3.11; on older ones run pytest from elsewhere)
os.environ["PYTHONSAFEPATH"] = "1"

# The shared data folder lives beside the checkout; on a user's machine it is absent and the tests
# that need it skip.
SHARED = Path(os.environ.get("LENET_FAST_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def pytest_report_header(config):
    from lenet_fast._config import _platform
    return (f"lenet_fast {lenet_fast.__version__} from {Path(lenet_fast.__file__).parent}; "
            f"openmp={_platform.openmp_enabled()}, simd={_platform.compiled_isa()}")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """300 training and 100 test digits of the embedded sample, as a directory of IDX files."""
    data = load_sample()
    order = np.random.default_rng(0).permutation(len(data.y_train))
    root = tmp_path_factory.mktemp("digits")
    for split, idx in (("train", order[:300]), ("t10k", order[300:400])):
        _write_idx(root / f"{split}-images-idx3-ubyte.gz", data.x_train[idx])
        _write_idx(root / f"{split}-labels-idx1-ubyte.gz", data.y_train[idx])
    return root



# Under CI=true (.ci/run) every test must run: a skip is turned into a failure, except for these tests,
# each with the reason CI may legitimately not run it.
CI_MAY_SKIP = {
    "tests/test_bench_peers.py::test_torch_modern_model":
        "PyTorch (~200 MB) is not in the test extra; lenet-fast bench compares with it only when installed",
    "tests/test_bench_peers.py::test_torch_uint8_batches_are_lenet_fast_s_input":
        "PyTorch is a peer of lenet-fast bench (the bench extra), not in the test extra",
    "tests/test_bench_peers.py::test_torch_compiled_step_trains":
        "PyTorch (torch.compile) is a peer of lenet-fast bench (the bench extra), not in the test extra",
    "tests/test_bench_peers.py::test_jax_peer_is_the_torch_peer_s_network":
        "JAX and PyTorch are peers of lenet-fast bench (the bench extra, ~1 GB with them), not in the test extra",
    "tests/test_bench_peers.py::test_jax_peers_train_alike":
        "JAX is a peer of lenet-fast bench (the bench extra), not in the test extra",
    "tests/test_bench.py::test_fma_probe_is_compiled_to_zmm_fmas":
        "reads the AVX-512 machine code: runs only where the build targets AVX-512",
    "tests/test_isa.py::test_each_path_holds_no_wider_instruction":
        "needs the portable build (LENET_FAST_ARCH=portable); .ci/portable runs it on the portable wheel",
    "tests/test_isa.py::test_every_runnable_path_trains_alike_and_deterministically":
        "needs the portable build (LENET_FAST_ARCH=portable); .ci/portable runs it on the portable wheel",
    "tests/test_sklearn.py::test_sklearn_array_api_check":
        "scikit-learn's check_array_api_input runs only with SCIPY_ARRAY_API=1 set before SciPy is imported, "
        "and skips otherwise (LeNet5Classifier takes NumPy arrays)",
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    expected_failure = hasattr(report, "wasxfail")      # pytest reports an xfail as a skip
    if (os.environ.get("CI") == "true" and report.skipped and not expected_failure
            and item.nodeid.split("[")[0] not in CI_MAY_SKIP):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run (conftest.CI_MAY_SKIP): {report.longrepr}"


# --- Dask clusters (tests/test_sweep.py, tests/test_score.py): 127.0.0.1 only, free ports, always stopped ---

@pytest.fixture(scope="module")
def dask_cluster():
    """The address of a Dask LocalCluster of 2 single-threaded worker processes, closed after the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def dask_cli_cluster(tmp_path_factory):
    """The address of a scheduler and 2 single-threaded workers started as separate processes with Dask's own
    command line (`dask scheduler --port 0`: a free port; `dask worker`), stopped after the module."""
    distributed = pytest.importorskip("distributed")
    root = tmp_path_factory.mktemp("dask")
    scheduler_file, processes = root / "scheduler.json", []

    def start(*args):
        log = open(root / f"{args[0]}.log", "wb")
        processes.append(subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT,
                                          cwd=root, start_new_session=True))
        log.close()

    try:
        web = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")      # (its HTTP server: /health, ...)
        start("scheduler", "--host", "127.0.0.1", "--port", "0", *web, "--scheduler-file", str(scheduler_file))
        address = _wait_for_address(scheduler_file, processes[0], timeout=60)
        start("worker", address, "--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1", *web)
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):     # the workers, then the scheduler
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)        # its own session: the processes it started
                process.wait(timeout=10)


def _wait_for_address(scheduler_file, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with status {process.returncode}")
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    raise TimeoutError(f"dask scheduler wrote no {scheduler_file} within {timeout} s")
