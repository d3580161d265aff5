"""Model files: a pickle-free .npz holding each parameter by name and a JSON header.

The header (entry ``__header__``, UTF-8 JSON bytes) carries ``format`` ("lenet_fast-model"),
``format_version``, ``variant``, ``dtype``, ``criterion``, ``map_j`` and the writing version.
Readers accept every format version up to their own, so files load years later; anything that is
not a valid model raises ValueError naming the file and the problem. Writes are atomic: a temporary
file in the same directory, flushed to disk, then renamed over the target.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "lenet_fast-model"
FORMAT_VERSION = 1


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file next to `path`, then rename it to `path`."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_archive(path, file_format, format_version, header, arrays):
    """Atomically write `arrays` (name -> ndarray) and the JSON `header` as a pickle-free .npz."""
    from . import __version__
    header = {"format": file_format, "format_version": format_version, **header,
              "lenet_fast_version": __version__}
    arrays = dict(arrays)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_archive(path, file_format, max_version, what):
    """(header, arrays) of a file written by `write_archive`; ValueError naming the file for anything
    that is not a valid `what` file of `file_format` up to `max_version`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ValueError(f"{path}: not a lenet_fast {what} file (unreadable .npz: {exc})") from None
    if "__header__" not in arrays:
        raise ValueError(f"{path}: not a lenet_fast {what} file (no __header__ entry)")
    try:
        header = json.loads(arrays.pop("__header__").tobytes().decode("utf-8"))
        assert isinstance(header, dict)
    except Exception:
        raise ValueError(f"{path}: not a lenet_fast {what} file (its header is not valid JSON)") from None
    if header.get("format") != file_format:
        raise ValueError(f"{path}: not a lenet_fast {what} file (format {header.get('format')!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: invalid format_version {version!r}")
    if version > max_version:
        raise ValueError(f"{path}: written in {what} format {version} by a newer lenet_fast "
                         f"({header.get('lenet_fast_version')}); this version reads formats up to "
                         f"{max_version}: upgrade lenet_fast")
    return header, arrays


def model_header(net):
    return {"variant": net.variant, "dtype": str(net.dtype), "criterion": net.criterion, "map_j": net.map_j}


def save_model(net, path):
    write_archive(path, FORMAT, FORMAT_VERSION, model_header(net), net.parameters())


def load_model(cls, path, n_threads=None):
    header, arrays = read_archive(path, FORMAT, FORMAT_VERSION, "model")
    return model_from(cls, path, header, arrays, n_threads)


def model_from(cls, path, header, arrays, n_threads=None):
    """A model built from a header (model_header) and its parameter arrays, every one checked."""
    try:
        net = cls(variant=header["variant"], dtype=header["dtype"], n_threads=n_threads,
                  criterion=header["criterion"], map_j=header["map_j"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid model header ({exc})") from None

    params = net.parameters()
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    if missing or extra:
        raise ValueError(f"{path}: parameters do not match a {net.variant} LeNet-5 "
                         f"(missing {missing}, unexpected {extra})")
    for name, target in params.items():
        value = arrays[name]
        if value.shape != target.shape or not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{path}: parameter {name} has shape {value.shape} and dtype {value.dtype}, "
                             f"expected {target.shape} {target.dtype}")
        if not np.isfinite(value).all():
            raise ValueError(f"{path}: parameter {name} contains NaN or infinite values")
        if name == "c3.weight" and np.any(value * (1 - net._table.T[:, :, None, None]) != 0):
            raise ValueError(f"{path}: c3.weight has non-zero weights outside the C3 connection table")
        target[...] = value
    return net
