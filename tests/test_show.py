"""`lenet-fast show`: every picture it promises is a PNG in --out and its path is printed; without
matplotlib, or with a bad file, one line on stderr and exit status 1."""
import sys

import numpy as np
import pytest
from PIL import Image

from lenet_fast import LeNet5
from lenet_fast.apps import figures, figures_data
from lenet_fast.apps.cli import main
from lenet_fast.apps.demo import DEFAULT_MODEL
from lenet_fast.data import load_sample
from lenet_fast.train import json_log

pytest.importorskip("matplotlib", reason="matplotlib (the [plot] extra, in the test extra) draws the pictures")

PICTURE_FILES = ["c1_filters", "c3_filters", "input", "c1_maps", "s2_maps", "c3_maps", "s4_maps", "c5_f6"]


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    """A picture file of a 7: an MNIST digit enlarged, dark ink on white."""
    data = load_sample()
    digit = data.x_train[np.flatnonzero(data.y_train == 7)[3]]
    path = tmp_path_factory.mktemp("picture") / "seven.png"
    Image.fromarray(np.pad(255 - np.kron(digit, np.ones((4, 4), np.uint8)), 20, constant_values=255)).save(path)
    return path


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    data = load_sample()
    order = np.random.default_rng(0).permutation(5000)[:300]
    path = tmp_path_factory.mktemp("log") / "log.json"
    LeNet5(seed=0).fit(data.x_train[order[:200]], data.y_train[order[:200]], epochs=2,
                       validation_data=(data.x_train[order[200:]], data.y_train[order[200:]]),
                       callbacks=[json_log(str(path))])
    return path


def _run(capsys, *args):
    status = main(["show", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def _is_png(path, min_size=(300, 150)):
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] >= min_size[0] and image.size[1] >= min_size[1]


def test_show_everything(capsys, tmp_path, seven, digits_dir, log):
    out = tmp_path / "pictures"
    status, printed, err = _run(capsys, DEFAULT_MODEL, "--image", seven, "--data", digits_dir, "--log", log,
                                "--out", out)
    assert status == 0, err
    expected = PICTURE_FILES + ["penalties", "confusion", "mistakes", "curves", "eps"]
    assert printed == [str(out / f"{name}.png") for name in expected]
    assert all(_is_png(path) for path in printed)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name in expected)


def test_show_filters_only_and_log_only(capsys, tmp_path, log):
    status, printed, _ = _run(capsys, DEFAULT_MODEL, "--out", tmp_path / "a")
    assert status == 0 and [p.rsplit("/", 1)[1] for p in printed] == ["c1_filters.png", "c3_filters.png"]
    status, printed, _ = _run(capsys, "--log", log, "--out", tmp_path / "b")
    assert status == 0 and [p.rsplit("/", 1)[1] for p in printed] == ["curves.png", "eps.png"]


def test_show_modern_variant_and_sgd_log(capsys, tmp_path, seven):
    data = load_sample()
    net, path = LeNet5("modern", seed=0), tmp_path / "log.json"
    net.fit(data.x_train[::50], data.y_train[::50], epochs=2, callbacks=[json_log(str(path))])
    net.save(tmp_path / "modern.npz")
    status, printed, err = _run(capsys, tmp_path / "modern.npz", "--image", seven, "--log", path,
                                "--out", tmp_path / "out")
    assert status == 0, err
    names = [p.rsplit("/", 1)[1] for p in printed]
    assert names == [f"{n}.png" for n in PICTURE_FILES] + ["scores.png", "curves.png"]   # SGD: no eps


def test_data_without_test_files_is_the_held_out_part(capsys, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(figures_data, "confusion", lambda matrix, title, path: shown.append((matrix, title)) or path)
    status, printed, err = _run(capsys, DEFAULT_MODEL, "--dataset", "sample", "--test-split", "0.1",
                                "--out", tmp_path)
    assert status == 0, err
    (matrix, title), = shown
    assert matrix.sum() == 500 and "10% of the training files" in title    # as lenet-fast train holds them out


def test_colour_scale_is_shared_and_centred():
    assert figures.colour_scale(np.array([-0.5, 2.0])) == (figures.DIVERGING, -2.0, 2.0)
    assert figures.colour_scale(np.array([0.0, 3.0])) == (figures.SEQUENTIAL, 0.0, 3.0)
    assert figures.colour_scale(np.zeros(4))[1:] == (0.0, 1.0)


def test_without_matplotlib_one_line_names_the_extra(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib raises ImportError
    status, printed, err = _run(capsys, DEFAULT_MODEL, "--out", tmp_path)
    assert status == 1 and printed == []
    assert err.count("\n") == 1 and "pip install 'lenet_fast[plot]'" in err


@pytest.mark.parametrize("case", ["image", "model", "log", "nothing", "no model", "out is a file"])
def test_bad_input_is_one_line(capsys, tmp_path, case, seven):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a picture, a model or a log\n")
    args, named = {
        "image": ([DEFAULT_MODEL, "--image", junk], str(junk)),
        "model": ([junk, "--image", seven], str(junk)),
        "log": (["--log", junk], str(junk)),
        "nothing": ([], "nothing to show"),
        "no model": (["--image", seven], "need a MODEL"),
        "out is a file": ([DEFAULT_MODEL], "not a directory"),
    }[case]
    out = junk if case == "out is a file" else tmp_path / "out"
    status, printed, err = _run(capsys, *args, "--out", out)
    assert status == 1 and printed == []
    assert err.count("\n") == 1 and err.startswith("lenet-fast: error: ") and named in err
