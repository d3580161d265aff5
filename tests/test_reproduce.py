"""lenet-fast reproduce: runs per seed, the JSON report, the table and curves, Ctrl-C, the plot."""
import json

import numpy as np
import pytest

from lenet_fast.apps import reproduce
from lenet_fast.apps.cli import main
from lenet_fast.data import load_directory
from lenet_fast.train import Trainer


def _run(tmp_path, digits_dir, *extra):
    path = tmp_path / "report.json"
    code = main(["reproduce", "--data", str(digits_dir), "--seeds", "2", "--epochs", "2", "--threads", "1",
                 "--json", str(path), *extra])
    return code, json.loads(path.read_text())


def test_reproduce_writes_the_report(tmp_path, digits_dir, capsys):
    code, report = _run(tmp_path, digits_dir)
    assert code == 0
    runs = report["runs"]
    assert [run["seed"] for run in runs] == [0, 1] and all(run["epochs"] == 2 for run in runs)
    for run in runs:
        assert set(run) == {"seed", "test_error", "train_error", "epochs", "seconds", "curve"}
        assert 0 <= run["test_error"] <= 1 and 0 <= run["train_error"] <= 1 and run["seconds"] > 0
        assert [p["epoch"] for p in run["curve"]] == [1, 2]
        assert run["test_error"] == run["curve"][-1]["test_error"]
        assert run["test_error"] * 100 == pytest.approx(round(run["test_error"] * 100))     # of 100 t10k digits
    errors = [run["test_error"] for run in runs]
    assert report["mean_test_error"] == pytest.approx(np.mean(errors))
    assert report["std_test_error"] == pytest.approx(np.std(errors, ddof=1))
    assert report["paper"]["test_error"] == 0.0095 and report["paper"]["train_error"] == 0.0035
    assert report["settings"]["train_images"] == 300 and report["settings"]["test_images"] == 100
    out = capsys.readouterr().out
    assert f"{100 * report['mean_test_error']:.2f}%" in out and "0.95%" in out and "pass   2" in out


def test_a_run_is_the_trainers_run(digits_dir):
    # the same seed gives the same run, and it is the Trainer's run of the paper's recipe
    data = load_directory(digits_dir)
    images = (data.x_train, data.y_train, data.x_test, data.y_test)
    first, again = (reproduce.run_seed(images, 3, 2, False, n_threads=1) for _ in range(2))
    assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in again.items() if k != "seconds"}
    net = reproduce.LeNet5(seed=3, n_threads=1)
    Trainer(net, epochs=2, seed=3, recipe="paper").fit(data.x_train, data.y_train)
    assert first["test_error"] == pytest.approx(1 - net.score(data.x_test, data.y_test))


def test_seed_lists_and_bad_seeds():
    assert reproduce.parse_seeds("3") == [0, 1, 2] and reproduce.parse_seeds("0,5,7") == [0, 5, 7]
    for bad in ("0", "-1,2", "1,1", "x"):
        with pytest.raises(ValueError, match="--seeds"):
            reproduce.parse_seeds(bad)


def test_ctrl_c_keeps_the_finished_runs(tmp_path, digits_dir, monkeypatch):
    run_seed = reproduce.run_seed

    def interrupted_second(images, seed, *args, **kwargs):
        if seed == 1:
            raise KeyboardInterrupt
        return run_seed(images, seed, *args, **kwargs)

    monkeypatch.setattr(reproduce, "run_seed", interrupted_second)
    code, report = _run(tmp_path, digits_dir)
    assert code == 130 and [run["seed"] for run in report["runs"]] == [0]
    assert report["mean_test_error"] == report["runs"][0]["test_error"]


def test_plot(tmp_path, digits_dir, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    code, _ = _run(tmp_path, digits_dir, "--plot", str(plot))
    assert code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {plot}" in capsys.readouterr().out


def test_sample_without_test_split_is_a_clear_error(capsys):
    assert main(["reproduce", "--seeds", "1", "--epochs", "1", "--test-split", "0"]) == 1
    assert "--test-split 0 leaves no test set" in capsys.readouterr().err
