"""Model files: exact round trip, atomic writes, and a clear ValueError for anything that is not a
valid model (truncated, corrupted, foreign, from a newer format)."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.io import archive


@pytest.mark.parametrize("variant,dtype,criterion", [("paper", "float32", "mse"), ("paper", "float64", "map"),
                                                     ("modern", "float32", None)])
def test_round_trip_is_exact(tmp_path, variant, dtype, criterion, rng):
    net = LeNet5(variant, dtype=dtype, seed=7, criterion=criterion, map_j=0.5)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = LeNet5.load(path)
    assert (loaded.variant, loaded.dtype, loaded.criterion, loaded.map_j) == \
           (net.variant, net.dtype, net.criterion, net.map_j)
    for name, value in net.parameters().items():
        np.testing.assert_array_equal(loaded.parameters()[name], value)
        assert loaded.parameters()[name].dtype == value.dtype
    x = rng.uniform(-0.1, 1.175, size=(3, 1, 32, 32))
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_file_is_pickle_free_with_a_json_header(tmp_path):
    path = tmp_path / "m.npz"
    LeNet5().save(path)
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(data["__header__"].tobytes())
    assert header["format"] == "lenet_fast-model" and header["format_version"] == 1
    assert header["variant"] == "paper" and header["dtype"] == "float32"


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    LeNet5(seed=1).save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(archive.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        LeNet5(seed=2).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]           # no temporary file left behind


def _saved(tmp_path, **changes):
    """A model file with some entries replaced (None removes one)."""
    buf = io.BytesIO()
    LeNet5().save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as data:
        arrays = {k: data[k] for k in data.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    path = tmp_path / "bad.npz"
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def _header(**fields):
    header = {"format": "lenet_fast-model", "format_version": 1, "variant": "paper", "dtype": "float32",
              "criterion": "mse", "map_j": 1.0}
    header.update(fields)
    return np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


def test_truncated_file(tmp_path):
    LeNet5().save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t.npz"):
        LeNet5.load(tmp_path / "t.npz")


def test_garbage_and_foreign_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match="not a lenet_fast model"):
        LeNet5.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="no __header__"):
        LeNet5.load(tmp_path / "other.npz")
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:
        z.writestr("__header__.npy", b"\x93NUMPY garbage")
    with pytest.raises(ValueError):
        LeNet5.load(tmp_path / "pickled.npz")


def test_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        LeNet5.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("changes,match", [
    ({"__header__": np.frombuffer(b"{not json", dtype=np.uint8)}, "not valid JSON"),
    ({"__header__": _header(format="something-else")}, "format"),
    ({"__header__": _header(format_version=99)}, "newer lenet_fast"),
    ({"__header__": _header(variant="resnet")}, "invalid model header"),
    ({"c5.weight": None}, "missing"),
    ({"c5.weight": np.zeros((120, 400), np.float32)}, "c5.weight has shape"),
    ({"f6.bias": np.full(84, np.nan, np.float32)}, "NaN"),
    ({"c3.weight": np.ones((16, 6, 5, 5), np.float32)}, "outside the C3 connection table"),
])
def test_invalid_contents(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        LeNet5.load(_saved(tmp_path, **changes))
