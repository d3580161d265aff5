"""The lenet-fast command line."""
import json
import subprocess
import sys

import numpy as np
import pytest

import lenet_fast
from lenet_fast import LeNet5
from lenet_fast._config import _platform
from lenet_fast.apps.cli import main
from lenet_fast.data.datasets import load_sample
from lenet_fast.data.images import load_digits, write_png
from lenet_fast.train import Trainer


def test_summary(capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "60,000" in out and "340,908" in out
    assert main(["summary", "--variant", "modern"]) == 0
    assert "61,706" in capsys.readouterr().out


def test_config(capsys):
    """`lenet-fast config` reports this build: version, Python and NumPy, OpenMP, threads, SIMD, compiler."""
    assert main(["config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    fields = dict(line.split(maxsplit=1) for line in lines)
    assert list(fields) == ["lenet_fast", "python", "openmp", "threads", "simd", "compiler", "flags"]
    assert lines[0] == f"lenet_fast {lenet_fast.__version__}"
    assert fields["python"] == f"{sys.version.split()[0]}, numpy {np.__version__}"
    assert fields["openmp"].startswith("on (" if _platform.openmp_enabled() else "off (")
    assert fields["threads"].split()[0] == str(lenet_fast.effective_n_threads())
    assert fields["simd"].split()[0] == _platform.compiled_isa()


def test_bad_option_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["summary", "--variant", "resnet"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lenet_fast", "summary"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "60,000" in out.stdout


# --- train, evaluate, predict ---------------------------------------------------------------------------

def test_train_evaluate_predict(tmp_path, digits_dir, capsys):
    out, log = tmp_path / "m.npz", tmp_path / "log.jsonl"
    code = main(["train", "--data", str(digits_dir), "--epochs", "2", "--out", str(out), "--log-json", str(log),
                 "--val-split", "0.1", "--threads", "1"])
    text = capsys.readouterr().out
    assert code == 0
    assert "270 images, 30 for validation, test set 100 images (the t10k files)" in text
    assert "epoch 2/2" in text and "val error" in text and "img/s" in text
    assert "test error" in text and out.exists() and (tmp_path / "m.checkpoint.npz").exists()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r.get("epoch") for r in records[:2]] == [1, 2] and records[2]["event"] == "end"
    assert 0 <= records[2]["test_error"] <= 1

    assert main(["evaluate", str(out), "--data", str(digits_dir)]) == 0
    text = capsys.readouterr().out
    assert "test set (t10k files): 100 images" in text and "confusion matrix" in text
    assert f"error rate {100 * records[2]['test_error']:.2f}%" in text

    data = load_sample()
    files = []
    for i in (0, 2500):
        files.append(tmp_path / f"digit{i}.png")
        write_png(files[-1], 255 - np.kron(data.x_train[i], np.ones((3, 3), np.uint8)))   # a dark-on-light photo
    assert main(["predict", str(out)] + [str(f) for f in files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "penalties" in lines[0]
    rows = [line.split() for line in lines[1:]]
    assert all(len(row) == 12 for row in rows)
    # each line: the file, the model's own decision and its ten penalties (printed with 2 decimals)
    net, digits = LeNet5.load(out), load_digits(files)
    assert [row[0] for row in rows] == [str(f) for f in files]
    assert [int(row[1]) for row in rows] == list(net.predict(digits))
    np.testing.assert_allclose([[float(v) for v in row[2:]] for row in rows], net.forward(digits),
                               rtol=0, atol=0.005 + 1e-9)


def test_train_without_data_uses_the_embedded_sample(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--epochs", "1", "--out", str(out), "--optimizer", "sgd", "--batch-size", "64"]) == 0
    text = capsys.readouterr().out
    assert "5,000 MNIST digits embedded in lenet_fast (no --data or --dataset given" in text
    assert "test set 1,000 images (a held-out 20% of the training files)" in text
    assert LeNet5.load(out).variant == "paper"


def test_resume_continues_to_the_same_weights(tmp_path, digits_dir, capsys):
    common = ["train", "--data", str(digits_dir), "--quiet", "--threads", "2"]
    assert main(common + ["--epochs", "2", "--out", str(tmp_path / "direct.npz")]) == 0
    assert main(common + ["--epochs", "1", "--out", str(tmp_path / "first.npz")]) == 0
    assert main(["train", "--resume", str(tmp_path / "first.checkpoint.npz"), "--epochs", "2", "--quiet",
                 "--threads", "2", "--out", str(tmp_path / "resumed.npz")]) == 0
    direct, resumed = LeNet5.load(tmp_path / "direct.npz"), LeNet5.load(tmp_path / "resumed.npz")
    assert np.array_equal(direct._flat, resumed._flat)


def test_ctrl_c_exits_130_with_the_checkpoint_named(tmp_path, digits_dir, capsys, monkeypatch):
    def interrupted(self, x, y, validation_data=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    assert main(["train", "--data", str(digits_dir), "--out", str(tmp_path / "m.npz")]) == 130
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["train", "--data", "/nonexistent/dir"], "nonexistent"),
    (["train", "--resume", "/nonexistent/ckpt.npz"], "checkpoint file not found"),
    (["train", "--epochs", "0"], "epochs must be an integer >= 1, got 0"),
    (["train", "--val-split", "1.5"], "--val-split must be a finite number in [0, 1), got 1.5"),
    (["evaluate", "/nonexistent/model.npz"], "model file not found"),
])
def test_user_mistakes_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("lenet-fast: error:") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_predict_on_a_file_that_is_not_an_image(tmp_path, capsys):
    model, bogus = tmp_path / "m.npz", tmp_path / "notes.png"
    LeNet5().save(model)
    bogus.write_text("hello")
    assert main(["predict", str(model), str(bogus)]) == 1
    assert "notes.png" in capsys.readouterr().err


def test_train_recipe_and_init_options(tmp_path, digits_dir, capsys):
    out = tmp_path / "m.npz"
    code = main(["train", "--data", str(digits_dir), "--recipe", "paper", "--init", "paper", "--distortions",
                 "--epochs", "1", "--out", str(out), "--threads", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "paper init" in text and "paper recipe" in text and "1 passes" in text
    checkpoint = tmp_path / "m.checkpoint.npz"
    assert Trainer.resume(checkpoint).config()["recipe"] == "paper"
