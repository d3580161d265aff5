"""lenet-fast sweep (and reproduce --scheduler): the same runs, bit for bit, in this process, on a LocalCluster
and on a cluster started with Dask's command line, with a worker killed mid-run; the report, the models,
failures, Ctrl-C and the one-line errors."""
import faulthandler
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from lenet_fast.apps import cluster, sweep
from lenet_fast.apps.cli import main

SWEEP = ["--seeds", "0,1", "--grid", "batch_size=1,4", "--epochs", "1"]
RESULT = ("seed", "params", "test_error", "train_error", "epochs", "error")     # what must be the same


@pytest.fixture(autouse=True)
def time_limit():
    faulthandler.dump_traceback_later(240, exit=True)      # a hung cluster ends the run, with tracebacks
    yield
    faulthandler.cancel_dump_traceback_later()


def _sweep(tmp_path, digits_dir, scheduler, *extra, name="sweep"):
    path, models = tmp_path / f"{name}.json", tmp_path / f"{name}-models"
    code = main(["sweep", "--data", str(digits_dir), *(extra or SWEEP), "--scheduler", scheduler,
                 "--json", str(path), "--models", str(models)])
    return code, json.loads(path.read_text())


def _results(report):
    return [{key: run[key] for key in RESULT} for run in report["runs"]]


def _parameters(run):
    with np.load(run["model"]) as archive:
        return {name: archive[name] for name in archive.files if name != "__header__"}


def _assert_same_runs(report, reference):
    assert _results(report) == _results(reference)
    for run, ref in zip(report["runs"], reference["runs"]):       # the weights, bit for bit
        mine, theirs = _parameters(run), _parameters(ref)
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)


@pytest.fixture(scope="module")
def serial(tmp_path_factory, digits_dir):
    """The reference: the sweep with --scheduler none."""
    code, report = _sweep(tmp_path_factory.mktemp("serial"), digits_dir, "none")
    assert code == 0
    return report


# --- the report ----------------------------------------------------------------------------------------

def test_serial_sweep_report(serial, capsys):
    runs = serial["runs"]
    assert [(run["params"], run["seed"]) for run in runs] == [({"batch_size": b}, s) for b in (1, 4) for s in (0, 1)]
    for run in runs:
        assert set(run) == {"seed", "params", "test_error", "train_error", "epochs", "seconds", "model", "worker",
                            "error"}
        assert run["error"] is None and run["epochs"] == 1 and run["worker"] == "local" and run["seconds"] > 0
        assert 0 <= run["test_error"] <= 1 and 0 <= run["train_error"] <= 1
        assert os.path.basename(run["model"]) == f"batch_size={run['params']['batch_size']},seed={run['seed']}.npz"
    first = serial["summary"][0]
    errors = [run["test_error"] for run in runs[:2]]
    assert first["params"] == {"batch_size": 1} and first["runs"] == 2 and first["failed"] == 0
    assert first["mean_test_error"] == pytest.approx(np.mean(errors))
    assert first["std_test_error"] == pytest.approx(np.std(errors, ddof=1))
    assert serial["settings"]["seeds"] == [0, 1] and serial["settings"]["options"]["threads"] == 1


def test_progress_table_and_failed_runs(tmp_path, digits_dir, capsys):
    # SDLM cannot train the modern variant: those runs fail with their error, the others finish
    code, report = _sweep(tmp_path, digits_dir, "none", "--seeds", "1", "--grid", "variant=paper,modern",
                          "--optimizer", "sdlm", "--epochs", "1")
    captured = capsys.readouterr()
    assert code == 1 and "1 of 2 run(s) failed" in captured.err
    ok, failed = report["runs"]
    assert ok["error"] is None and os.path.exists(ok["model"])
    assert failed["error"].startswith("ValueError: SDLM needs the paper variant") and failed["model"] is None
    assert [row["failed"] for row in report["summary"]] == [0, 1]
    assert "[1/2] variant=paper, seed 0: test error" in captured.out and "[2/2] variant=modern, seed 0: FAILED" \
        in captured.out
    assert "test error (mean +- std)" in captured.out and "variant=modern" in captured.out.split("configuration")[1]


def test_a_run_is_lenet_fast_train(tmp_path, digits_dir, serial, capsys):
    out = tmp_path / "train.npz"
    assert main(["train", "--data", str(digits_dir), "--seed", "1", "--batch-size", "4", "--epochs", "1",
                 "--threads", "1", "--out", str(out), "--quiet"]) == 0
    run = serial["runs"][3]
    assert (run["params"], run["seed"]) == ({"batch_size": 4}, 1)
    assert f"test error {100 * run['test_error']:.2f}%" in capsys.readouterr().out
    _assert_same_runs({"runs": [run]}, {"runs": [dict(run, model=str(out))]})


def test_ctrl_c_keeps_the_finished_runs(tmp_path, digits_dir, monkeypatch):
    run_training = sweep.run_training

    def interrupted_second(data, options, seed, params):
        if params == {"batch_size": 1} and seed == 1:
            raise KeyboardInterrupt
        return run_training(data, options, seed, params)

    monkeypatch.setattr(sweep, "run_training", interrupted_second)
    code, report = _sweep(tmp_path, digits_dir, "none")
    assert code == 130 and [(run["params"], run["seed"]) for run in report["runs"]] == [({"batch_size": 1}, 0)]


def test_ctrl_c_on_a_local_cluster(tmp_path, digits_dir):
    # Ctrl-C on a terminal reaches the whole process group: the client stops and closes the cluster, the
    # workers (which ignore it) print nothing, the finished runs are kept
    pytest.importorskip("distributed")
    path = tmp_path / "sweep.json"
    process = subprocess.Popen([sys.executable, "-m", "lenet_fast", "sweep", "--data", str(digits_dir), "--seeds", "6",
                                "--epochs", "3", "--json", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        lines = iter(process.stdout.readline, "")
        assert any(line.startswith("[1/6]") for line in lines)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    runs = json.loads(path.read_text())["runs"]
    assert process.returncode == 130 and 1 <= len(runs) < 6, (out, err)
    assert f"interrupted: keeping the {len(runs)} finished run(s)" in err and "Traceback" not in err


# --- the same runs on Dask -----------------------------------------------------------------------------

def test_local_cluster_gives_the_serial_runs(tmp_path, digits_dir, serial, dask_cluster, capsys):
    code, report = _sweep(tmp_path, digits_dir, dask_cluster)
    assert code == 0 and f"the Dask cluster at {dask_cluster}" in capsys.readouterr().out
    _assert_same_runs(report, serial)
    assert {run["worker"] for run in report["runs"]} <= set(_workers(dask_cluster))


def test_scheduler_local_gives_the_serial_runs(tmp_path, digits_dir, serial, capsys):
    pytest.importorskip("distributed")
    code, report = _sweep(tmp_path, digits_dir, "local")
    assert code == 0 and f"LocalCluster of {cluster.cores()} single-threaded" in capsys.readouterr().out
    _assert_same_runs(report, serial)


def test_reproduce_on_a_cluster_gives_the_serial_runs(tmp_path, digits_dir, dask_cluster):
    def reproduce(*extra):
        path = tmp_path / "reproduce.json"
        assert main(["reproduce", "--data", str(digits_dir), "--seeds", "2", "--epochs", "1", "--threads", "1",
                     "--json", str(path), *extra]) == 0
        return [{k: v for k, v in run.items() if k != "seconds"} for run in json.loads(path.read_text())["runs"]]

    assert reproduce("--scheduler", dask_cluster) == reproduce()


def _workers(address):
    import distributed
    with distributed.Client(address, timeout=30) as client:
        return client.run(os.getpid)


def test_cli_cluster_with_a_worker_killed_mid_run(tmp_path, digits_dir, dask_cli_cluster):
    # runs long enough (4 passes) to kill a worker process while it trains; the Dask scheduler gives its run
    # to another worker (the nanny restarts the killed one) and the sweep ends with the serial runs
    import distributed
    args = ("--seeds", "0,1", "--epochs", "4")
    _, reference = _sweep(tmp_path, digits_dir, "none", *args, name="reference")
    killed = {}
    with distributed.Client(dask_cli_cluster, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        pids = client.run(os.getpid)
        stop = threading.Event()
        killer = threading.Thread(target=_kill_a_busy_worker, args=(client, pids, killed, stop), daemon=True)
        killer.start()
        try:
            code, report = _sweep(tmp_path, digits_dir, dask_cli_cluster, *args)
        finally:
            stop.set()
            killer.join(timeout=30)
        assert killed, "no worker was seen running a task"
        assert code == 0
        _assert_same_runs(report, reference)
        index = int(killed["key"].rsplit("-", 1)[1])
        assert report["runs"][index]["worker"] != killed["worker"]    # the killed run was run again elsewhere
        client.wait_for_workers(2, timeout=60)                        # (the nanny has restarted the worker)


def _kill_a_busy_worker(client, pids, killed, stop):
    while not stop.is_set():
        for worker, keys in client.processing().items():
            if keys and worker in pids:
                killed.update(worker=worker, key=keys[0])
                os.kill(pids[worker], signal.SIGKILL)
                return
        time.sleep(0.01)


# --- mistakes: one line each ---------------------------------------------------------------------------

def test_grid_values_and_configurations():
    grid = sweep.parse_grid(["learning-rate=1e-4,5e-5", "distortions=true,no", "variant=paper", "batch_size=1,8"])
    assert grid == {"learning_rate": [1e-4, 5e-5], "distortions": [True, False], "variant": ["paper"],
                    "batch_size": [1, 8]}
    assert len(sweep.configurations(grid)) == 8 and sweep.configurations({}) == [{}]
    assert sweep.run_name({"learning_rate": 1e-4}, 2) == "learning_rate=0.0001,seed=2.npz"


@pytest.mark.parametrize("grid,message", [
    ("learning_rate", "--grid must be KEY=VALUE1,VALUE2,..., got 'learning_rate'"),
    ("speed=1,2", "--grid: unknown key 'speed'; the keys are variant, dtype"),
    ("batch_size=1,x", "--grid batch_size: 'x' is not an integer"),
    ("variant=paper,lenet1", "--grid variant: 'lenet1' is not one of paper, modern"),
])
def test_grid_mistakes(grid, message, capsys):
    assert main(["sweep", "--grid", grid, "--scheduler", "none"]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_option_and_grid_key_both_given(capsys):
    assert main(["sweep", "--epochs", "2", "--grid", "epochs=1,2", "--scheduler", "none"]) == 1
    assert "--epochs and --grid epochs are both given" in capsys.readouterr().err


def test_without_dask_the_message_names_the_extra(tmp_path, digits_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)         # import distributed: ImportError
    assert main(["sweep", "--data", str(digits_dir), *SWEEP, "--scheduler", "local"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'lenet_fast[dask]'" in err and len(err.strip().splitlines()) == 1
    code, report = _sweep(tmp_path, digits_dir, "none", "--seeds", "1", "--epochs", "1")     # none needs no Dask
    assert code == 0 and len(report["runs"]) == 1


def test_unreachable_scheduler(digits_dir, monkeypatch, capsys):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2.0)
    with socket.socket() as taken:          # a free port that nothing listens on
        taken.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        started = time.monotonic()
        assert main(["sweep", "--data", str(digits_dir), *SWEEP, "--scheduler", address]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at {address} within 2 s" in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - started < 30


def test_a_cluster_without_workers(digits_dir, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as empty:
        assert main(["sweep", "--data", str(digits_dir), *SWEEP, "--scheduler", empty.scheduler_address]) == 1
    assert f"the Dask scheduler at {empty.scheduler_address} has no worker after 1 s" in capsys.readouterr().err


def test_bad_scheduler_syntax(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--scheduler", "somewhere"])
    assert "must be local, none or a Dask scheduler address" in capsys.readouterr().err
