"""Reliability, part 4: what is saved loads, the fixed RBF centres are checked, NaN parameters are not a
silent class 0, files get the umask's permissions and reach the disk, evaluate scores the held-out
digits; and the messages name the option or the file."""
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from lenet_fast import LeNet5
from lenet_fast.apps.cli import main
from lenet_fast.data import load_sample
from lenet_fast.data.images import write_png
from lenet_fast.io import archive
from lenet_fast.train import Trainer


def _with_entry(tmp_path, name, value):
    path = tmp_path / "m.npz"
    LeNet5().save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[name] = value
    np.savez(tmp_path / "changed.npz", **arrays)
    return tmp_path / "changed.npz"


# --- what save writes, load reads -------------------------------------------------------------------

def test_save_refuses_what_load_would_reject(tmp_path):
    net = LeNet5()
    net.parameters()["c3.weight"][0, 3] = 0.5              # C3 map 0 does not take S2 map 3 (Table I)
    with pytest.raises(ValueError, match="cannot save the model to .*outside the C3 connection table"):
        net.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    net = LeNet5()
    net.parameters()["f6.weight"][1, 2] = np.nan
    with pytest.raises(ValueError, match="f6.weight contains NaN"):
        net.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("centers", [np.zeros((10, 84), np.float32), -np.asarray(LeNet5()._centers)])
def test_rbf_centres_other_than_fig3_are_rejected(tmp_path, centers):
    with pytest.raises(ValueError, match="output.centers are not the fixed RBF bitmaps of Fig. 3"):
        LeNet5.load(_with_entry(tmp_path, "output.centers", centers))


def test_the_centres_are_never_taken_from_the_file(tmp_path):
    net = LeNet5.load(_with_entry(tmp_path, "output.centers", np.asarray(LeNet5()._centers, np.float64)))
    assert net.parameters()["output.centers"].dtype == np.float32


@pytest.mark.parametrize("variant,name,bad", [("paper", "f6.bias", np.nan), ("paper", "c1.weight", np.nan),
                                              ("modern", "output.bias", np.nan), ("modern", "output.weight", np.inf)])
def test_nan_parameters_make_predictions_an_error_not_class_0(variant, name, bad):
    """Outputs that are not finite are an error naming the parameters that hold NaN or inf (a NaN that
    ReLU or tanh's saturation absorbs leaves finite outputs: those predictions stand)."""
    net = LeNet5(variant)
    x = load_sample().x_train[:5]
    net.parameters()[name].reshape(-1)[7] = bad
    for call in (net.predict, net.forward, lambda v: net.evaluate(v, np.zeros(5, int))):
        with pytest.raises(ValueError, match=f"outputs are NaN or infinite: its parameters {name} hold NaN"):
            call(x)


# --- permissions and durability ---------------------------------------------------------------------

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_permissions_of_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        LeNet5().save(tmp_path / "m.npz")
        write_png(tmp_path / "p.png", np.zeros((3, 3), np.uint8))
        data = load_sample()
        Trainer(LeNet5("modern"), "sgd", epochs=1, checkpoint=tmp_path / "c.npz").fit(data.x_train[:64],
                                                                                        data.y_train[:64])
    finally:
        os.umask(old)
    for name in ("m.npz", "p.png", "c.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_writes_are_fsynced_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(archive.os, "fsync", lambda fd: synced.append(os.path.isdir(f"/proc/self/fd/{fd}"))
                        or real(fd))
    LeNet5().save(tmp_path / "m.npz")
    assert synced == [False, True]          # the file, then its directory (the rename)


def test_a_directory_or_missing_directory_as_target_names_it(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"{tmp_path} is a directory"):
        LeNet5().save(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"cannot write {tmp_path}/no/m.npz") as error:
        LeNet5().save(tmp_path / "no" / "m.npz")
    assert ".tmp" not in str(error.value)


# --- evaluate scores the test set train held out ----------------------------------------------------

def test_evaluate_on_the_sample_scores_the_held_out_digits_like_train(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--epochs", "1", "--optimizer", "sgd", "--batch-size", "64", "--out", str(out)]) == 0
    trained = capsys.readouterr().out
    train_error = trained.split("test error ")[1].split("%")[0]
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert ": 1,000 images" in text and "--test-split 0.2 --seed 0" in text
    assert f"error rate {train_error}%" in text
    assert main(["evaluate", str(out), "--test-split", "0"]) == 0
    assert "training files (no t10k files, --test-split 0): 5,000 images" in capsys.readouterr().out


# --- messages ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,message", [
    (["train", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    (["train", "--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    (["train", "--learning-rate", "nan"], "--learning-rate must be a finite number > 0, got nan"),
    (["evaluate", "MODEL", "--seed", "-2"], "--seed must be an integer >= 0, got -2"),
])
def test_number_options_are_named(tmp_path, argv, message, capsys, monkeypatch):
    LeNet5().save(tmp_path / "m.npz")
    argv = [str(tmp_path / "m.npz") if a == "MODEL" else a for a in argv]
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("trained"))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"lenet-fast: error: {message}\n"


def test_a_picture_or_a_directory_given_as_the_model(tmp_path, capsys):
    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, "PNG")
    (tmp_path / "seven.png").write_bytes(buf.getvalue())
    assert main(["evaluate", str(tmp_path / "seven.png")]) == 1
    err = capsys.readouterr().err
    assert "seven.png: not a lenet_fast model file (it is a PNG picture, not an .npz archive)" in err
    assert "pickle" not in err
    assert main(["evaluate", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"lenet-fast: error: {tmp_path} is a directory, not a model file\n"
    assert main(["predict", str(tmp_path), str(tmp_path / "seven.png")]) == 1
    assert "is a directory, not a model file" in capsys.readouterr().err


def test_idx_messages_name_the_file(tmp_path, capsys):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 255]) + bytes(1020))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 3]))
    assert main(["train", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/train-images-idx3-ubyte: 255 dimensions" in err and len(err.splitlines()) == 1


def test_the_header_of_a_saved_file_is_json(tmp_path):
    LeNet5().save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        assert json.loads(data["__header__"].tobytes())["format"] == "lenet_fast-model"
