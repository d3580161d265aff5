"""lenet-fast score: the CSV equals net.predict and net.forward in this process, on a LocalCluster and with
--scheduler local, for IDX files (raw and gzip) and pictures; the client's memory stays flat; mistakes."""
import csv
import faulthandler
import gzip
import subprocess
import sys

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.apps.cli import main
from lenet_fast.data import load_digits, load_sample, read_idx, write_png


@pytest.fixture(autouse=True)
def time_limit():
    faulthandler.dump_traceback_later(240, exit=True)      # a hung cluster ends the run, with tracebacks
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def model(tmp_path_factory, digits_dir):
    path = tmp_path_factory.mktemp("model") / "model.npz"
    data = read_idx(digits_dir / "train-images-idx3-ubyte.gz"), read_idx(digits_dir / "train-labels-idx1-ubyte.gz")
    net = LeNet5(seed=0, n_threads=1)
    net.fit(*data, epochs=1)
    net.save(path)
    return path


def _write_idx(path, images):
    header = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
        f.write(header + images.tobytes())
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """250 sample digits as a raw and a gzip-compressed IDX file."""
    digits = load_sample().x_train[::20]
    root = tmp_path_factory.mktemp("idx")
    return digits, _write_idx(root / "images-idx3-ubyte", digits), _write_idx(root / "images-idx3-ubyte.gz", digits)


def _score(tmp_path, model, source, scheduler, *extra, name="scores.csv"):
    out = tmp_path / name
    assert main(["score", str(model), str(source), "--out", str(out), "--scheduler", scheduler, *extra]) == 0
    return out


def _check_against_predict(path, model, digits, names=None):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kind = [f"penalty_{d}" for d in range(10)]
    assert rows[0] == ["index", "digit", *kind] + (["file"] if names else [])
    net = LeNet5.load(model)
    assert [int(row[0]) for row in rows[1:]] == list(range(len(digits)))
    np.testing.assert_array_equal([int(row[1]) for row in rows[1:]], net.predict(digits))
    scores = np.array([row[2:12] for row in rows[1:]], np.float32)
    np.testing.assert_array_equal(scores, net.forward(digits))       # the same float32 values, read back
    if names:
        assert [row[12] for row in rows[1:]] == names


def test_serial_scores_are_predict(tmp_path, model, images, capsys):
    digits, raw, compressed = images
    out = _score(tmp_path, model, raw, "none", "--partition", "64")
    _check_against_predict(out, model, digits)
    assert "scored 250 images" in capsys.readouterr().out
    assert _score(tmp_path, model, compressed, "none", "--partition", "100", name="gz.csv").read_bytes() \
        == out.read_bytes()


def test_cluster_scores_are_serial_scores(tmp_path, model, images, dask_cluster):
    digits, raw, compressed = images
    serial = _score(tmp_path, model, raw, "none", name="serial.csv").read_bytes()
    for source in (raw, compressed):         # the workers read the raw file; the client sends the gzip's pixels
        assert _score(tmp_path, model, source, dask_cluster, "--partition", "64").read_bytes() == serial


def test_scheduler_local(tmp_path, model, images):
    pytest.importorskip("distributed")
    digits, raw, _ = images
    _check_against_predict(_score(tmp_path, model, raw, "local", "--partition", "100"), model, digits)


def test_pictures(tmp_path, model, dask_cluster):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    names = [f"digit {i}, grey.png" for i in range(7)]      # (a comma: the name is quoted in the CSV)
    for name, digit in zip(names, load_sample().x_train[::700]):
        write_png(pictures / name, 255 - digit)             # dark ink on white, as on paper
    (pictures / ".hidden").write_text("not a picture")
    digits = load_digits([pictures / name for name in sorted(names)])
    for scheduler in ("none", dask_cluster):
        out = _score(tmp_path, model, pictures, scheduler, "--partition", "3", name=f"{len(scheduler)}.csv")
        _check_against_predict(out, model, digits, names=sorted(names))


def test_the_clients_memory_stays_flat(tmp_path, model):
    # 65,536 images (51 MB; 268 MB as network input) in partitions of 2,048: the client's peak RSS grows by
    # a few partitions' worth, not by the file's size
    images = np.tile(load_sample().x_train[:4096], (16, 1, 1))
    source = _write_idx(tmp_path / "many-idx3-ubyte", images)
    del images
    out = tmp_path / "many.csv"
    code = ("import re, sys\nfrom lenet_fast.apps.cli import main\n"
            "rss = lambda key: int(re.search(key + r':\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
            "before = rss('VmRSS')\n"
            f"assert main(['score', {str(model)!r}, {str(source)!r}, '--out', {str(out)!r}, '--scheduler', 'none', "
            "'--partition', '2048', '--threads', '2']) == 0\n"
            "print(before, rss('VmHWM'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    before, peak = map(int, result.stdout.split()[-2:])          # KiB
    assert peak - before < 64 * 1024, (before, peak)       # all at once: > 300 MiB
    assert sum(1 for _ in open(out)) == 65_537


@pytest.mark.parametrize("content,message", [
    (b"\0\0\x08\x01" + (3).to_bytes(4, "big") + b"abc", "not an IDX file of uint8 images"),
    (b"\0\0\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (1, 20, 20)) + bytes(400), "images of 20x20 pixels"),
    (b"\0\0\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28)) + bytes(784), "but 2 images of 28x28"),
])
def test_bad_inputs(tmp_path, model, content, message, capsys):
    source = tmp_path / "bad-idx"
    source.write_bytes(content)
    assert main(["score", str(model), str(source), "--out", str(tmp_path / "x.csv"), "--scheduler", "none"]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "x.csv").exists()


def test_truncated_gzip(tmp_path, model, images, capsys):
    digits, _, _ = images
    source = _write_idx(tmp_path / "short-idx3-ubyte.gz", digits)
    data = gzip.decompress(source.read_bytes())
    source.write_bytes(gzip.compress(data[:-784]))
    assert main(["score", str(model), str(source), "--out", str(tmp_path / "x.csv"), "--scheduler", "none"]) == 1
    assert "truncated" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


def test_missing_input_and_extra(tmp_path, model, monkeypatch, capsys):
    assert main(["score", str(model), str(tmp_path / "nothing"), "--out", str(tmp_path / "x.csv")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)
    (tmp_path / "empty").mkdir()
    write_png(tmp_path / "empty" / "a.png", np.zeros((28, 28), np.uint8))
    assert main(["score", str(model), str(tmp_path / "empty"), "--out", str(tmp_path / "x.csv")]) == 1
    assert "pip install 'lenet_fast[dask]'" in capsys.readouterr().err
