"""lenet_fast's files (models, checkpoints): a pickle-free .npz of named arrays and a JSON header.

The header (entry ``__header__``, UTF-8 JSON bytes) carries ``format``, ``format_version`` and the
writing version, then what the format adds. Readers accept every format version up to their own, so
files load years later; anything else raises ValueError naming the file and the problem. Writes are
atomic: a temporary file in the same directory, flushed to disk, then renamed over the target.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from .._version import __version__


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
