"""Datasets: IDX reading and its errors, directory loading, the search order, downloads (against a
local HTTP server, never the network) and the embedded MNIST sample."""
import gzip
import hashlib
import http.server
import os
import re
import socket
import threading

import numpy as np
import pytest

from lenet_fast.data import datasets
from lenet_fast.data.datasets import DatasetNotFoundError, load_directory, read_idx

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array, code=0x08):
    array = np.asarray(array)
    header = bytes([0, 0, code, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, compress=None, code=0x08):
    data = idx_bytes(array, code)
    path.write_bytes(gzip.compress(data) if compress or (compress is None and path.suffix == ".gz")
                     else data)
    return path


def make_dataset(directory, n=12, n_test=5, seed=0, names=FILES):
    """Synthetic IDX files in `directory` (no test files when n_test is 0); returns the arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = [rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, n_test, dtype=np.uint8)]
    for name, array in zip(names[:4 if n_test else 2], arrays):
        write_idx(directory / name, array)
    return arrays


# ---------------------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
def test_read_idx_round_trip(tmp_path, name, rng):
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / name, images))
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, images)


def test_read_idx_detects_gzip_by_magic_not_name(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "labels", labels, compress=True)), labels)


def test_read_idx_other_types_in_native_order(tmp_path):
    values = np.array([[-2, 70000], [3, -1]], dtype=np.int32)
    out = read_idx(write_idx(tmp_path / "x", values, code=0x0C))
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("data,match", [
    (b"\x89PNG\r\n\x1a\n", "not an IDX file"),
    (b"", "not an IDX file"),
    (bytes([0, 0, 0x07, 1]) + (3).to_bytes(4, "big") + b"abc", "unsupported IDX data type 0x07"),
    (bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big"), "truncated IDX header"),
    (idx_bytes(np.zeros((4, 3, 3), np.uint8))[:-1], "truncated"),
    (idx_bytes(np.zeros((4, 3, 3), np.uint8)) + b"\0", "trailing bytes"),
    (gzip.compress(idx_bytes(np.zeros(9, np.uint8)))[:-6], "corrupt gzip"),
    (b"\x1f\x8b" + b"garbage" * 5, "corrupt gzip"),
])
def test_read_idx_errors_name_the_file(tmp_path, data, match):
    path = tmp_path / "bad-file-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope-idx1-ubyte"):
        read_idx(tmp_path / "nope-idx1-ubyte")


# ---------------------------------------------------------------------------- load_directory

def test_load_directory_with_test_files(tmp_path):
    arrays = make_dataset(tmp_path / "digits")
    data = load_directory(tmp_path / "digits")
    for got, want in zip(data[:4], arrays):
        np.testing.assert_array_equal(got, want)
    assert data.y_train.dtype == data.y_test.dtype == np.int64 and data.x_train.dtype == np.uint8
    assert data.name == "digits" and data.source == str(tmp_path / "digits")


def test_load_directory_without_test_files_and_dotted_names(tmp_path):
    names = ("train-images.idx3-ubyte", "train-labels.idx1-ubyte.gz")
    arrays = make_dataset(tmp_path, n_test=0, names=names)
    data = load_directory(tmp_path)
    np.testing.assert_array_equal(data.x_train, arrays[0])
    np.testing.assert_array_equal(data.y_train, arrays[1])
    assert data.x_test is None and data.y_test is None


@pytest.mark.parametrize("present,missing", [((), "train-images or train-labels"),
                                             (FILES[:1], "train-labels"),
                                             (FILES[:3], "t10k-labels")])
def test_load_directory_missing_files(tmp_path, present, missing):
    make_dataset(tmp_path)
    for name in set(FILES) - set(present):
        (tmp_path / name).unlink()
    with pytest.raises(DatasetNotFoundError, match=re.escape(f"no {missing} file in {tmp_path}")) as info:
        load_directory(tmp_path)
    assert "idx1-ubyte" in str(info.value)           # the names looked for


def test_load_directory_not_a_directory(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="data directory not found"):
        load_directory(tmp_path / "absent")


@pytest.mark.parametrize("bad,array,match", [
    (1, np.arange(11, dtype=np.uint8) % 10, "holds 12 images but .* holds 11 labels"),
    (1, np.array([0, 1, 10] * 4, np.uint8), "labels must be 0..9, found 0..10"),
    (1, np.zeros((12, 2), np.uint8), "must hold integers \\(N,\\)"),
    (0, np.zeros((12, 784), np.uint8), "must hold uint8 \\(N, rows, cols\\)"),
])
def test_load_directory_inconsistent_files(tmp_path, bad, array, match):
    make_dataset(tmp_path, n_test=0)
    write_idx(tmp_path / FILES[bad], array)
    with pytest.raises(ValueError, match=match) as info:
        load_directory(tmp_path)
    assert FILES[bad] in str(info.value)


# ------------------------------------------------------------------------------ search order

@pytest.fixture
def env(tmp_path, monkeypatch):
    """No $LENET_FAST_DATA, the cache in tmp_path/cache, and no download unless a test allows it."""
    monkeypatch.delenv("LENET_FAST_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(datasets.SOURCES, "mnist", (("http://127.0.0.1:9/",), {}))
    return monkeypatch


def test_search_order(tmp_path, env):
    for seed, where in enumerate(["explicit", "env/mnist", "env", "cache/lenet_fast/mnist"]):
        make_dataset(tmp_path / where, seed=seed)
    env.setenv("LENET_FAST_DATA", str(tmp_path / "env"))
    data = datasets.load_mnist(tmp_path / "explicit", download=False)
    assert data.name == "mnist" and os.path.relpath(data.source, tmp_path) == "explicit"
    for where in ["env/mnist", "env", "cache/lenet_fast/mnist"]:
        data = datasets.load_mnist(download=False)
        assert os.path.relpath(data.source, tmp_path) == where
        for name in FILES:
            (tmp_path / where / name).unlink()
    with pytest.raises(DatasetNotFoundError):
        datasets.load_mnist(download=False)


def test_cache_defaults_to_home(tmp_path, env):
    env.delenv("XDG_CACHE_HOME")
    env.setenv("HOME", str(tmp_path / "home"))
    make_dataset(tmp_path / "home/.cache/lenet_fast/mnist")
    assert datasets.load("mnist", download=False).source == str(tmp_path / "home/.cache/lenet_fast/mnist")


def test_explicit_path_is_the_only_place_searched(tmp_path, env):
    make_dataset(tmp_path / "cache/lenet_fast/mnist")
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_mnist(tmp_path / "empty", download=False)
    assert str(tmp_path / "empty") in str(info.value) and "cache" not in str(info.value)


# --------------------------------------------------------------------------------- downloads

@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, list of requested paths)."""
    for name in ("no_proxy", "NO_PROXY"):           # straight to 127.0.0.1, even where a proxy is set
        monkeypatch.setenv(name, "127.0.0.1")
    root = tmp_path / "www"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    httpd.shutdown()
    httpd.server_close()


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def publish(tmp_path, env, mirrors, md5s=None):
    """Synthetic MNIST files in tmp_path/www/mirror; SOURCES["mnist"] points at `mirrors`."""
    arrays = make_dataset(tmp_path / "www/mirror")
    if md5s is None:
        md5s = [hashlib.md5((tmp_path / "www/mirror" / name).read_bytes()).hexdigest() for name in FILES]
    env.setitem(datasets.SOURCES, "mnist", (tuple(mirrors), dict(zip(FILES, md5s))))
    return arrays


def test_download_into_the_cache(tmp_path, env, server):
    url, requests = server
    arrays = publish(tmp_path, env, [url + "mirror/"])
    data = datasets.load_mnist()
    cache = tmp_path / "cache/lenet_fast/mnist"
    assert data.source == str(cache) and sorted(os.listdir(cache)) == sorted(FILES)
    for got, want in zip(data[:4], arrays):
        np.testing.assert_array_equal(got, want)
    datasets.load_mnist()                               # now found in the cache: no new request
    assert requests == [f"/mirror/{name}" for name in FILES]


def test_download_fetches_only_the_missing_files(tmp_path, env, server):
    url, requests = server
    arrays = publish(tmp_path, env, [url + "mirror/"])
    cache = tmp_path / "cache/lenet_fast/mnist"
    make_dataset(cache, n_test=0, seed=5)          # training files there (not the published ones): kept
    (cache / FILES[1]).unlink()
    data = datasets.load_mnist()
    assert requests == [f"/mirror/{name}" for name in FILES[1:]] and sorted(os.listdir(cache)) == sorted(FILES)
    np.testing.assert_array_equal(data.x_train, make_dataset(tmp_path / "again", n_test=0, seed=5)[0])
    np.testing.assert_array_equal(data.x_test, arrays[2])


def test_download_into_explicit_path_after_failed_mirrors(tmp_path, env, server):
    url, requests = server
    publish(tmp_path, env, [closed_port_url(), url + "missing/", url + "mirror/"])
    data = datasets.load_mnist(tmp_path / "mine")
    assert data.source == str(tmp_path / "mine") and sorted(os.listdir(tmp_path / "mine")) == sorted(FILES)
    assert requests == [p for name in FILES for p in (f"/missing/{name}", f"/mirror/{name}")]


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, env, server):
    url, _ = server
    publish(tmp_path, env, [url + "mirror/"], md5s=["0" * 32] * 4)
    with pytest.raises(DatasetNotFoundError, match="md5 [0-9a-f]{32}, expected 0{32}"):
        datasets.load_mnist()
    assert os.listdir(tmp_path / "cache/lenet_fast/mnist") == []


def test_all_mirrors_fail(tmp_path, env, server):
    url, _ = server
    dead = closed_port_url()
    publish(tmp_path, env, [dead, url + "missing/"])
    env.setenv("LENET_FAST_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load("mnist")
    message = str(info.value)
    for text in [dead + FILES[0], url + "missing/" + FILES[0], "404", *FILES, "$LENET_FAST_DATA",
                 "--data DIR", str(tmp_path / "env/mnist"), str(tmp_path / "cache/lenet_fast/mnist")]:
        assert text in message
    assert os.listdir(tmp_path / "cache/lenet_fast/mnist") == []


def test_download_false_makes_no_request(tmp_path, env, server):
    url, requests = server
    publish(tmp_path, env, [url + "mirror/"])
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        datasets.load_mnist(download=False)
    assert requests == [] and not (tmp_path / "cache").exists()


def test_local_files_are_not_checksummed(tmp_path, env):
    make_dataset(tmp_path / "mine")
    env.setitem(datasets.SOURCES, "mnist", ((), dict.fromkeys(FILES, "0" * 32)))
    assert len(datasets.load_mnist(tmp_path / "mine", download=False).x_train) == 12


def test_published_tables():
    for mirrors, md5s in datasets.SOURCES.values():
        assert set(md5s) == set(FILES) and all(m.endswith("/") for m in mirrors)
        assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in md5s.values())


# ------------------------------------------------------------------------- sample, dispatcher

def test_load_sample():
    data = datasets.load("sample")
    assert data.x_train.shape == (5000, 28, 28) and data.x_train.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and np.bincount(data.y_train).tolist() == [500] * 10
    assert data.x_test is None and data.y_test is None and data.name == "sample"
    assert data.x_train.max() == 255 and data.x_train.min() == 0


def test_embedded_sample_equals_the_shared_files(shared_dir):
    embedded = datasets.load_sample().source
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        with open(os.path.join(embedded, name), "rb") as f:
            assert f.read() == (shared_dir / "data/mnist-5k" / name).read_bytes()


def test_load_rejects_unknown_names_and_a_path_for_the_sample(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; choose one of mnist, fashion-mnist, sample"):
        datasets.load("cifar")
    with pytest.raises(ValueError, match="takes no path"):
        datasets.load("sample", tmp_path)
