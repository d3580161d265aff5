"""``lenet-fast score MODEL INPUT --out FILE.csv``: the digit and the ten penalties (or logits) of every image
of an IDX file or of a directory of pictures, as CSV, on Dask or in this process.

The images go through the workers in partitions (65,536 images of an IDX file, 1,024 pictures by
default), and the client keeps only a few partitions in flight, so its memory stays flat however large
the input. A task carries the partition's place in the file, not its pixels: the worker reads them itself
(an uncompressed IDX file at the same path on every worker, or the pictures); a gzip-compressed IDX file
is decompressed by the client, one partition at a time, and its pixels are sent. Each worker process
loads the model once (the file's bytes are sent to every worker once). The rows come back as CSV text
and are written in order to a temporary file that is renamed to --out at the end.

The CSV: a header, then one row per image: ``index,digit,penalty_0,...,penalty_9`` (the paper variant;
``logit_0..9`` for the modern one), plus ``file`` (the picture's file name) for a directory. The digit is
what ``net.predict`` gives and the scores are ``net.forward``'s, written with enough digits to read back
the same float32 (float64) values.
"""
import csv
import gzip
import hashlib
import io
import os
import sys
import tempfile
import time
import zlib

import numpy as np

from ..data.images import load_digits
from ..io.archive import atomic_write
from ..model import LeNet5
from . import cluster
from .commands import UserError

PARTITION = 65_536          # images of an IDX file per task
PICTURE_PARTITION = 1_024   # pictures per task
BLOCK = 4_096               # images per call of the network within a task
_HEADER = 16                # bytes of the header of an IDX file of images: magic, N, rows, cols
_MODELS = {}                # (digest, threads) -> the model, loaded once per process


# --- on the workers ---------------------------------------------------------------------------------

def _model(digest, blob, threads):
    """The model whose file's bytes are `blob` (sha256 `digest`), loaded once per process."""
    key = (digest, threads)
    if key not in _MODELS:
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.npz")
            with open(path, "wb") as f:
                f.write(blob)
            model = LeNet5.load(path, n_threads=threads)
        _MODELS.clear()
        _MODELS[key] = model
    return _MODELS[key]


def csv_rows(net, images, start, names=None):
    """(count, CSV text of the rows of `images`, numbered from `start`). The network reads BLOCK images at a
    time: the input of the whole partition (and its float64 intermediates) would be ~11 kB per image."""
    texts = [_block_rows(net, images[i:i + BLOCK], start + i, None if names is None else names[i:i + BLOCK])
             for i in range(0, len(images), BLOCK)]
    return len(images), "".join(texts).encode("utf-8")


def _block_rows(net, images, start, names):
    scores = net.forward(images)
    digits, rows = net.decide(scores).tolist(), scores.tolist()
    number = "%.9g" if scores.dtype == np.float32 else "%.17g"       # enough digits to read back the same value
    if names is None:
        line = "%d,%d," + ",".join([number] * scores.shape[1]) + "\n"
        return "".join(line % (start + i, digit, *row) for i, (digit, row) in enumerate(zip(digits, rows)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for i, (digit, row, name) in enumerate(zip(digits, rows, names)):
        writer.writerow([start + i, digit, *(number % value for value in row), name])
    return out.getvalue()


def score_idx(digest, blob, threads, path, start, count, shape):
    """The rows of images start .. start+count-1 of the uncompressed IDX file `path`, read from the file."""
    rows, cols = shape
    images = np.fromfile(path, np.uint8, count * rows * cols, offset=_HEADER + start * rows * cols)
    if images.size != count * rows * cols:
        raise ValueError(f"{path}: truncated: images {start}..{start + count - 1} are not all in the file")
    return csv_rows(_model(digest, blob, threads), images.reshape(count, rows, cols), start)


def score_images(digest, blob, threads, start, images):
    """The rows of `images` (uint8 (N, rows, cols)), numbered from `start`."""
    return csv_rows(_model(digest, blob, threads), images, start)


def score_pictures(digest, blob, threads, start, paths, names):
    """The rows of the picture files `paths`, prepared as MNIST was (lenet_fast.data.images)."""
    return csv_rows(_model(digest, blob, threads), load_digits(paths), start, names)


# --- the input --------------------------------------------------------------------------------------

def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def idx_shape(path):
    """(N, rows, cols) of an IDX file of uint8 images (raw or gzip), from its header; ValueError naming the
    file for anything else (and, uncompressed, for a file of the wrong size)."""
    compressed = _is_gzip(path)
    try:
        with (gzip.open if compressed else open)(path, "rb") as f:
            head = f.read(_HEADER)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({exc})") from None
    if len(head) < _HEADER or head[:4] != b"\0\0\x08\x03":
        raise ValueError(f"{path}: not an IDX file of uint8 images (N, rows, cols): it starts with "
                         f"{head[:4].hex() or 'nothing'}, expected 00000803")
    n, rows, cols = (int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    if (rows, cols) not in ((28, 28), (32, 32)):
        raise ValueError(f"{path}: images of {rows}x{cols} pixels; LeNet-5 reads 28x28 or 32x32")
    if not compressed and os.path.getsize(path) != _HEADER + n * rows * cols:
        raise ValueError(f"{path}: {os.path.getsize(path) - _HEADER:,} bytes of data, but {n:,} images of "
                         f"{rows}x{cols} need {n * rows * cols:,}")
    return n, rows, cols


def _gzip_partitions(path, n, shape, size):
    """(start, images) of the gzip-compressed IDX file, read one partition at a time."""
    pixels = shape[0] * shape[1]
    try:
        with gzip.open(path, "rb") as f:
            f.read(_HEADER)
            for start in range(0, n, size):
                count = min(size, n - start)
                data = f.read(count * pixels)
                if len(data) != count * pixels:
                    raise ValueError(f"{path}: truncated: the header says {n:,} images, the data end in image "
                                     f"{start + len(data) // pixels:,}")
                yield start, np.frombuffer(data, np.uint8).reshape(count, *shape)
            if f.read(1):
                raise ValueError(f"{path}: trailing bytes after the {n:,} images of its header")
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({exc})") from None


def _pictures(directory):
    names = sorted(name for name in os.listdir(directory)
                   if not name.startswith(".") and os.path.isfile(os.path.join(directory, name)))
    if not names:
        raise UserError(f"{directory}: no picture files in the directory")
    return names


def _tasks(pool, source, model, threads, size):
    """(the function, an iterator of its arguments per partition, the number of images)."""
    if os.path.isdir(source):
        names = _pictures(source)
        size = size or PICTURE_PARTITION
        parts = ((*model, threads, start, [os.path.join(os.path.abspath(source), name) for name in chunk], chunk)
                 for start in range(0, len(names), size) for chunk in [names[start:start + size]])
        return score_pictures, parts, len(names)
    n, rows, cols = idx_shape(source)
    size = size or PARTITION
    if _is_gzip(source):
        parts = ((*model, threads, start, pool.share(images, broadcast=False))
                 for start, images in _gzip_partitions(source, n, (rows, cols), size))
        return score_images, parts, n
    parts = ((*model, threads, os.path.abspath(source), start, min(size, n - start), (rows, cols))
             for start in range(0, n, size))
    return score_idx, parts, n


# --- the command ------------------------------------------------------------------------------------

def run_score(args):
    """Score INPUT into --out; print the count, the time and the rate."""
    net = LeNet5.load(args.model)
    with open(args.model, "rb") as f:
        blob = f.read()
    if not os.path.exists(args.input):
        raise UserError(f"{args.input}: no such file or directory")
    directory = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out) or not os.path.isdir(directory):
        raise UserError(f"--out {args.out}: give a file in an existing directory")
    kind = "penalty" if net.architecture.decision == "argmin" else "logit"
    header = ",".join(["index", "digit"] + [f"{kind}_{d}" for d in range(10)]
                      + (["file"] if os.path.isdir(args.input) else [])) + "\n"
    threads = args.threads or (None if args.scheduler == "none" else 1)
    started = time.perf_counter()
    with cluster.executor(args.scheduler) as pool:
        setup, started = time.perf_counter() - started, time.perf_counter()
        model = (hashlib.sha256(blob).hexdigest(), pool.share(blob))
        fn, parts, n = _tasks(pool, args.input, model, threads, args.partition)
        rows = pool.in_order(fn, parts)
        atomic_write(args.out, lambda f: _write(f, header, rows, n))
        seconds = time.perf_counter() - started
        where = pool.description + (f", started in {setup:.1f} s" if args.scheduler == "local" else "")
    print(f"scored {n:,} images in {seconds:.1f} s ({n / seconds:,.0f} images/s) on {where}; wrote {args.out}")
    return 0


def _write(f, header, rows, n):
    """The header and the rows' CSV text in order; progress on stderr when it is a terminal."""
    f.write(header.encode("ascii"))
    done, tty = 0, sys.stderr.isatty()
    for count, text in rows:
        f.write(text)
        done += count
        if tty:
            print(f"\rscored {done:,} of {n:,} images", end="", file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr)


def add_parser(commands):
    """The ``score`` subcommand's parser (cli.py calls it)."""
    score = commands.add_parser(
        "score", help="the digit and ten scores of every image of an IDX file or a directory of pictures, as CSV",
        description="Score every image of INPUT (an IDX file of images, raw or .gz, or a directory of pictures) "
                    "with MODEL and write a CSV file: index, digit, the ten penalties (logits for the modern "
                    "variant) and, for pictures, the file name. The images stream through the workers in "
                    "partitions, so memory stays flat.")
    score.add_argument("model", metavar="MODEL")
    score.add_argument("input", metavar="INPUT", help="an IDX images file (train-images-idx3-ubyte, .gz too) or "
                                                      "a directory of pictures; on a cluster, at the same path "
                                                      "on every worker")
    score.add_argument("--out", metavar="FILE.csv", required=True, help="the CSV file to write")
    cluster.add_scheduler_option(score, what="the partitions")
    score.add_argument("--partition", type=cluster.positive_int, metavar="N",
                       help=f"images per task (default {PARTITION:,} of an IDX file, {PICTURE_PARTITION:,} "
                            "pictures)")
    score.add_argument("--threads", type=cluster.positive_int,
                       help="OpenMP threads per task (default 1 on Dask; all cores with --scheduler none)")
    score.set_defaults(run=run_score)
    return score
