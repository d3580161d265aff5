"""Datasets in the IDX format of the MNIST database: MNIST, Fashion-MNIST and the embedded sample.

``load_mnist`` and ``load_fashion_mnist`` look for the files, in this order, in

1. the explicit ``path`` if one is given (then nowhere else);
2. ``$LENET_FAST_DATA/<name>``, then ``$LENET_FAST_DATA`` itself;
3. the per-user cache ``pooch.os_cache("lenet_fast")/<name>``: ``$XDG_CACHE_HOME/lenet_fast/<name>``
   (default ``~/.cache/lenet_fast/<name>``) on Linux, the platform's cache folder elsewhere,

with ``<name>`` "mnist" or "fashion-mnist". A directory holds a dataset when it has the training
files ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (also named
``train-images.idx3-ubyte``, and either gzip-compressed with ``.gz``); the ``t10k-*`` test files are
read when present. When nothing is found and ``download=True``, pooch downloads the files from the
mirrors of ``SOURCES`` (tried in order) into the cache (or into ``path``), each verified against its
published md5 before it is renamed into place.
Local files are not checksummed (they may have been recompressed), only checked to be valid IDX.
"""
import gzip
import logging
import math
import os
import re
import stat
import sys
import zlib
from typing import NamedTuple, Optional

import numpy as np

__all__ = ["DATASETS", "Dataset", "DatasetNotFoundError", "SOURCES", "read_idx", "load_directory",
           "load_mnist", "load_fashion_mnist", "load_sample", "load"]

DATASETS = ("mnist", "fashion-mnist", "sample")


class Dataset(NamedTuple):
    """Images uint8 (N, rows, cols) and labels int64 (N,); the test set is None without t10k files."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    name: str
    source: str        # the directory the files were read from


# name -> (mirrors, tried in order; {file name: md5 of the published file}). MNIST: the md5s of
# torchvision.datasets.MNIST, for its mirror at ossci-datasets and for the CVDF mirror (the one
# tensorflow-datasets uses); Fashion-MNIST: the md5s and the mirror of Zalando's README
# (github.com/zalandoresearch/fashion-mnist), also those of torchvision.datasets.FashionMNIST.
SOURCES = {
    "mnist": (("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/"),
              {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
               "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
               "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
               "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion-mnist": (("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
                      {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                       "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                       "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                       "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
}
DOWNLOAD_TIMEOUT = 60          # seconds without data before a mirror counts as failed
_SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist-5k")

_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# IDX data larger than this (after gzip) are refused before they are read: MNIST's largest file holds 47 MB,
# and a 1.5 MB gzip file can expand to gigabytes. Raise it (lenet_fast.data.datasets.MAX_IDX_BYTES = ...)
# for larger datasets.
MAX_IDX_BYTES = 2 ** 30
MAX_IDX_DIMS = 16
_NDIM = {"images": 3, "labels": 1}
_log = logging.getLogger(__name__)


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are neither on disk nor downloadable."""


def read_idx(path, max_bytes=None):
    """The array stored in the IDX file `path` (gzip-compressed or raw), in native byte order.

    Raises FileNotFoundError for a missing file, IsADirectoryError for a directory and ValueError naming
    the file for anything that is not a complete IDX file: wrong magic, unsupported type, more than
    MAX_IDX_DIMS dimensions, truncated data, trailing bytes, bad gzip, not a regular file. The header's
    size is checked against the data before the data is read, and data of more than `max_bytes` (default
    MAX_IDX_BYTES) are refused unread, however small the gzip file that holds them.
    """
    path = os.fspath(path)
    limit = MAX_IDX_BYTES if max_bytes is None else max_bytes
    try:
        info = os.stat(path)                     # before opening: opening a FIFO would block
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path} is a directory, not an IDX file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file (a device, FIFO or socket), so not an IDX file")
    with open(path, "rb") as raw:
        info = os.fstat(raw.fileno())
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            return _parse_idx(path, stream, None if compressed else info.st_size, limit)
        except (OSError, EOFError, zlib.error) as exc:
            if not compressed:
                raise
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from None


def _parse_idx(path, stream, file_size, limit):
    """read_idx's work on an open stream of the IDX bytes (file_size: the raw file's size, None for gzip)."""
    head = stream.read(4)
    if len(head) < 4 or head[:2] != b"\0\0":
        raise ValueError(f"{path}: not an IDX file (magic bytes {head.hex() or 'missing'}, "
                         "expected 0000 then type and rank)")
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unsupported IDX data type 0x{code:02x}")
    if ndim > MAX_IDX_DIMS:
        raise ValueError(f"{path}: {ndim} dimensions; IDX files here have at most {MAX_IDX_DIMS}")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({4 + len(dims)} bytes for {ndim} dimensions)")
    shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    count = math.prod(shape)            # Python ints: no overflow
    expected = count * dtype.itemsize
    if math.prod(n for n in shape if n) * dtype.itemsize > np.iinfo(np.intp).max:    # empty, but no array
        raise ValueError(f"{path}: its header declares shape {shape}, which no array can have (the product of "
                         "its non-zero dimensions overflows)")
    if file_size is not None and file_size - 4 - 4 * ndim != expected:
        actual = file_size - 4 - 4 * ndim
        problem = "truncated" if actual < expected else "trailing bytes"
        raise ValueError(f"{path}: {problem}: shape {shape} needs {expected:,} bytes of data, the file has {actual:,}")
    if expected > limit:
        raise ValueError(f"{path}: its header declares shape {shape}, {expected:,} bytes of data, more than the "
                         f"limit of {limit:,} (raise lenet_fast.data.datasets.MAX_IDX_BYTES, or read_idx's "
                         "max_bytes, to read it)")
    data = stream.read(expected)
    if len(data) < expected:
        raise ValueError(f"{path}: truncated: shape {shape} needs {expected:,} bytes of data, the file has "
                         f"{len(data):,}")
    if stream.read(1):
        raise ValueError(f"{path}: trailing bytes after the {expected:,} bytes of data of shape {shape}")
    return np.frombuffer(data, dtype, count).astype(dtype.newbyteorder("=")).reshape(shape)


def _file_names(split, kind):
    ext = f"idx{_NDIM[kind]}-ubyte"
    return f"{split}-{kind}-{ext}, {split}-{kind}.{ext}"


def _find(directory, split):
    """{kind: path} of the `split` ("train"/"t10k") image and label files present in `directory`."""
    try:
        names = sorted(os.listdir(directory))      # sorted: the uncompressed file before its .gz
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = {}
    for kind, ndim in _NDIM.items():
        pattern = re.compile(rf"{split}-{kind}[-.]idx{ndim}-ubyte(\.gz)?")
        name = next((n for n in names if pattern.fullmatch(n)), None)
        if name is not None:
            found[kind] = os.path.join(directory, name)
    return found


def _read_split(directory, split, required):
    """(images, labels) of `split` in `directory`; (None, None) when optional and absent."""
    found = _find(directory, split)
    missing = [kind for kind in _NDIM if kind not in found]
    if missing and (required or found):
        raise DatasetNotFoundError(
            f"no {' or '.join(f'{split}-{kind}' for kind in missing)} file in {directory} (looked for "
            f"{', '.join(_file_names(split, kind) for kind in missing)}, each also with .gz)")
    if not found:
        return None, None
    images_path, labels_path = found["images"], found["labels"]
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: an image file must hold uint8 (N, rows, cols), "
                         f"got {images.dtype} {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{labels_path}: a label file must hold integers (N,), got {labels.dtype} "
                         f"{labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                         f"{len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{labels_path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return images, labels.astype(np.int64)


def load_directory(path):
    """The Dataset in the directory `path`, named after the directory.

    Reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (required) and
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (optional), each also accepted as
    ``train-images.idx3-ubyte`` etc. and with ``.gz``.
    """
    directory = os.fspath(path)
    if not os.path.isdir(directory):
        raise DatasetNotFoundError(f"data directory not found: {directory}")
    x_train, y_train = _read_split(directory, "train", required=True)
    x_test, y_test = _read_split(directory, "t10k", required=False)
    return Dataset(x_train, y_train, x_test, y_test, os.path.basename(os.path.abspath(directory)),
                   directory)


def _cache_dir(name):
    """The per-user cache of `name`: pooch's (platformdirs') user cache, ~/.cache/lenet_fast/<name> on
    Linux ($XDG_CACHE_HOME/lenet_fast/<name> when that is set)."""
    import pooch                    # here, not at the top: 0.1 s to import, and few runs need it
    return os.path.join(pooch.os_cache("lenet_fast"), name)


def _search_dirs(name):
    env = os.environ.get("LENET_FAST_DATA")
    return ([os.path.join(env, name), env] if env else []) + [_cache_dir(name)]


def _reason(exc, md5):
    """Why one mirror failed, in one line."""
    text = " ".join(str(exc).split())
    got = re.search(r"but got ([0-9a-f]{32})", text)
    if isinstance(exc, ValueError) and got:    # pooch's hash check
        return f"md5 {got.group(1)}, expected {md5}"
    cause = getattr(exc.args[0], "reason", None) if exc.args else None   # requests wraps urllib3's error
    return " ".join(str(cause).split()) if isinstance(cause, Exception) else text


def _download(name, directory):
    """Download the missing files of `name` into `directory` with pooch (each written to a temporary
    file next to its place, checked against its md5, then renamed); the failures ("url: reason") of
    the first file no mirror could deliver, or [] when every file is there."""
    import pooch
    mirrors, files = SOURCES[name]
    registry = {filename: f"md5:{md5}" for filename, md5 in files.items()}
    stores = [pooch.create(path=directory, base_url=mirror, registry=registry) for mirror in mirrors]
    progress = sys.stderr.isatty() and _log.isEnabledFor(logging.INFO)   # a bar when the CLI talks
    downloader = pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT, progressbar=progress)
    os.makedirs(directory, exist_ok=True)
    pooch_log = pooch.get_logger()              # pooch says what it downloads; we do (or stay quiet)
    level = pooch_log.level
    pooch_log.setLevel(logging.WARNING)
    try:
        for filename, md5 in files.items():
            if os.path.exists(os.path.join(directory, filename)):
                continue
            failures = []
            for store in stores:                # the mirrors in order: pooch has one base URL per store
                url = store.get_url(filename)
                _log.info("downloading %s", url)
                try:
                    store.fetch(filename, downloader=downloader)
                    break
                except (OSError, ValueError) as exc:  # requests' errors are OSErrors; a wrong md5 a ValueError
                    failures.append(f"{url}: {_reason(exc, md5)}")
            else:
                return failures
    finally:
        pooch_log.setLevel(level)
    return []


def _load_known(name, path, download):
    dirs = [os.fspath(path)] if path is not None else _search_dirs(name)
    for directory in dirs:
        if len(_find(directory, "train")) == 2:
            return load_directory(directory)._replace(name=name)
    failures = None
    if download:
        target = dirs[0] if path is not None else _cache_dir(name)
        failures = _download(name, target)
        if not failures:
            return load_directory(target)._replace(name=name)
    mirrors, files = SOURCES[name]
    message = [f"{name} not found. Looked in:", *(f"  {d}" for d in dirs),
               "for the files (gzip-compressed or not):", f"  {', '.join(files)}",
               "Put them in one of these directories, or point `--data DIR` or $LENET_FAST_DATA at the "
               f"directory that holds them ($LENET_FAST_DATA may also hold them in {name}/)."]
    if failures is None:
        message.append("Downloading is disabled (download=False); the mirrors are: " + ", ".join(mirrors))
    else:
        message += ["Download failed from every mirror:", *(f"  {f}" for f in failures)]
    raise DatasetNotFoundError("\n".join(message))


def load_mnist(path=None, download=True):
    """MNIST (60,000 training and 10,000 test digits), from `path`, $LENET_FAST_DATA or the cache
    (see the module docstring), downloaded into the cache (or `path`) when missing and `download`."""
    return _load_known("mnist", path, download)


def load_fashion_mnist(path=None, download=True):
    """Fashion-MNIST (Zalando; 60,000 + 10,000 images), found or downloaded as `load_mnist` does,
    with "fashion-mnist" in place of "mnist" in the directory names."""
    return _load_known("fashion-mnist", path, download)


def load_sample():
    """The 5,000 MNIST training digits shipped in the package (500 per class, stored sorted by
    class: shuffle before use); x_test and y_test are None."""
    return load_directory(_SAMPLE_DIR)._replace(name="sample")


def load(name, path=None, download=True):
    """The dataset `name`, one of DATASETS: "mnist" and "fashion-mnist" are found or downloaded as
    the module docstring says; "sample" is the embedded MNIST subset (it takes no path)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name != "sample":
        return _load_known(name, path, download)
    if path is not None:
        raise ValueError("the sample dataset is embedded in the package and takes no path")
    return load_sample()
