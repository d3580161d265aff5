"""Reliability, part 2: `lenet-fast train --resume` continues its own run (its --out, its passes, its data
from any directory, explicit options honoured or refused by name), and checkpoints whose position in the
run is impossible are refused."""
import json
import shutil

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.apps.cli import main
from lenet_fast.train import Trainer


def _header(path):
    with np.load(path) as data:
        return json.loads(data["__header__"].tobytes())


def _rewrite(path, change):
    """Rewrite the checkpoint `path` with change(header) applied to its JSON header."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays["__header__"].tobytes())
    change(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)


def test_resume_saves_to_the_runs_own_out_not_over_lenet5_npz(tmp_path, digits_dir, monkeypatch, capsys):
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    out = run / "model.npz"
    assert main(["train", "--data", str(digits_dir), "--quiet", "--epochs", "1", "--out", str(out)]) == 0
    first = LeNet5.load(out).flat_parameters.copy()
    monkeypatch.chdir(elsewhere)
    (elsewhere / "lenet5.npz").write_bytes(b"someone else's model")
    assert main(["train", "--resume", str(run / "model.checkpoint.npz"), "--epochs", "2", "--quiet"]) == 0
    assert (elsewhere / "lenet5.npz").read_bytes() == b"someone else's model"
    assert not np.array_equal(LeNet5.load(out).flat_parameters, first)     # the run's own --out, trained on
    assert _header(run / "model.checkpoint.npz")["progress"]["epoch"] == 2


def test_the_ctrl_c_hint_continues_the_same_number_of_passes(tmp_path, digits_dir, monkeypatch, capsys):
    out = tmp_path / "m.npz"
    checkpoint = tmp_path / "m.checkpoint.npz"
    save = Trainer.save_checkpoint

    def save_then_interrupt(self, path):          # Ctrl-C right after the first pass's checkpoint
        save(self, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_interrupt)
    assert main(["train", "--data", str(digits_dir), "--quiet", "--epochs", "3", "--out", str(out)]) == 130
    hint = capsys.readouterr().err.strip().splitlines()[-1]
    command = hint.split("continue with ")[1].split()
    assert command == ["lenet-fast", "train", "--resume", str(checkpoint)]
    monkeypatch.setattr(Trainer, "save_checkpoint", save)
    assert main(command[1:] + ["--quiet"]) == 0
    header = _header(checkpoint)
    assert header["trainer"]["epochs"] == 3 and header["progress"]["epoch"] == 3 and len(header["history"]) == 3
    assert out.exists()


def test_a_relative_data_directory_resumes_from_another_directory(tmp_path, digits_dir, monkeypatch, capsys):
    home = tmp_path / "home"
    shutil.copytree(digits_dir, home / "digits")
    monkeypatch.chdir(home)
    assert main(["train", "--data", "digits", "--quiet", "--epochs", "1", "--out", "m.npz"]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", str(home / "m.checkpoint.npz"), "--epochs", "2", "--quiet"]) == 0
    assert _header(home / "m.checkpoint.npz")["progress"]["epoch"] == 2


def test_explicit_data_options_on_resume_are_used_or_refused_by_name(tmp_path, digits_dir, capsys):
    original = tmp_path / "digits"
    shutil.copytree(digits_dir, original)
    out = tmp_path / "m.npz"
    assert main(["train", "--data", str(original), "--quiet", "--epochs", "1", "--out", str(out)]) == 0
    moved = original.rename(tmp_path / "moved")               # the files moved: --data says where
    checkpoint = str(tmp_path / "m.checkpoint.npz")
    assert main(["train", "--resume", checkpoint, "--data", str(moved), "--epochs", "2", "--quiet"]) == 0
    assert main(["train", "--resume", checkpoint, "--data", str(moved), "--test-split", "0.5", "--epochs", "3"]) == 1
    err = capsys.readouterr().err
    assert "--test-split 0.5 differs from the run's" in err and len(err.strip().splitlines()) == 1


def test_out_and_checkpoint_are_checked_before_training(tmp_path, digits_dir, capsys, monkeypatch):
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("trained before checking --out"))
    assert main(["train", "--data", str(digits_dir), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"--out {tmp_path} is a directory" in err and ".tmp" not in err
    assert main(["train", "--data", str(digits_dir), "--out", str(tmp_path / "no" / "m.npz")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--data", str(digits_dir), "--checkpoint", str(tmp_path)]) == 1
    assert f"--checkpoint {tmp_path} is a directory" in capsys.readouterr().err


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory, digits_dir):
    path = tmp_path_factory.mktemp("ckpt") / "run.checkpoint.npz"
    assert main(["train", "--data", str(digits_dir), "--quiet", "--epochs", "1", "--optimizer", "sgd",
                 "--out", str(path.parent / "run.npz")]) == 0
    return path


@pytest.mark.parametrize("field,value,message", [
    ("position", -1, "progress.position must be an integer in [0, 300], got -1"),
    ("position", 10 ** 9, "progress.position must be an integer in [0, 300]"),
    ("position", 100, "progress.position 100 is neither a multiple of the chunk"),
    ("position", 2.5, "progress.position must be an integer"),
    ("epoch", -1, "progress.epoch must be an integer >= 0, got -1"),
    ("errors", -3, "progress.errors must be an integer in [0, 0], got -3"),
    ("loss_sum", float("nan"), "progress.loss_sum must be a finite number"),
    ("seconds", -1.0, "progress.seconds must be a finite number >= 0"),
])
def test_impossible_positions_in_the_run_are_refused(tmp_path, checkpoint_file, field, value, message):
    path = tmp_path / "bad.npz"
    shutil.copy(checkpoint_file, path)
    _rewrite(path, lambda header: header["progress"].__setitem__(field, value))
    with pytest.raises(ValueError, match="invalid checkpoint") as error:
        Trainer.resume(path, model_class=LeNet5)
    assert message in str(error.value) and str(path) in str(error.value)


@pytest.mark.parametrize("change,message", [
    (lambda h: h.__setitem__("data", {"n": 0, "sha256": "0" * 64}), "data.n must be an integer >= 1"),
    (lambda h: h.__setitem__("data", {"n": 300}), "fingerprint"),
    (lambda h: h.__setitem__("history", [1, 2]), ""),
    (lambda h: h.__setitem__("trainer", []), ""),
    (lambda h: h.__setitem__("progress", "x"), ""),
])
def test_malformed_checkpoint_fields_are_value_errors(tmp_path, checkpoint_file, change, message):
    path = tmp_path / "bad.npz"
    shutil.copy(checkpoint_file, path)
    _rewrite(path, change)
    with pytest.raises(ValueError, match="invalid checkpoint") as error:
        Trainer.resume(path, model_class=LeNet5)
    assert message in str(error.value)


def test_non_finite_optimizer_state_is_refused(tmp_path, checkpoint_file):
    path = tmp_path / "bad.npz"
    with np.load(checkpoint_file) as data:
        arrays = {name: data[name] for name in data.files}
    assert "state/velocity" in arrays
    arrays["state/velocity"] = arrays["state/velocity"].copy()
    arrays["state/velocity"][5] = np.nan
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="state/velocity holds NaN"):
        Trainer.resume(path, model_class=LeNet5)


@pytest.mark.parametrize("key,value", [("data", 5), ("dataset", "imagenet"), ("test_split", 7.0), ("out", ["x"])])
def test_the_runs_options_in_a_checkpoint_are_checked(tmp_path, checkpoint_file, key, value, capsys):
    path = tmp_path / "bad.checkpoint.npz"
    shutil.copy(checkpoint_file, path)
    _rewrite(path, lambda header: header["metadata"].__setitem__(key, value))
    assert main(["train", "--resume", str(path), "--quiet"]) == 1
    assert capsys.readouterr().err == f"lenet-fast: error: {path}: invalid checkpoint (its run's {key} is {value!r})\n"
