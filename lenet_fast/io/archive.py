"""lenet_fast's files (models, checkpoints): a pickle-free .npz of named arrays and a JSON header.

The header (entry ``__header__``, UTF-8 JSON bytes) carries ``format``, ``format_version`` and the
writing version, then what the format adds. Readers accept every format version up to their own, so
files load years later; anything else raises ValueError naming the file and the problem. Writes are
atomic: a temporary file in the same directory, flushed to disk, then renamed over the target.
"""
import io
import json
import os
import stat
import tempfile
import zipfile

import numpy as np

from .._version import __version__

# Readers refuse larger files, and archives whose arrays would take more memory, before reading them (a
# model file is 0.2-0.5 MB, a checkpoint 1-2.5 MB). Raise it (lenet_fast.io.archive.MAX_FILE_BYTES = ...)
# to read larger files.
MAX_FILE_BYTES = 64 * 2 ** 20


def _umask():
    """The process's umask, read without changing it (/proc on Linux; os.umask elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)      # (briefly changes the umask: only where /proc has no Umask line)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file next to `path`, then rename it to `path`: the file is
    either the old one or the complete new one, flushed to disk (the file and its directory entry), with
    the permissions a new file gets from the umask (0644 under the usual umask 022)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory: give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())         # mkstemp makes it 0600
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
    try:                                         # the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_archive(path, file_format, format_version, header, arrays):
    """Atomically write `arrays` (name -> ndarray) and the JSON `header` as a pickle-free .npz."""
    header = {"format": file_format, "format_version": format_version, **header,
              "lenet_fast_version": __version__}
    arrays = dict(arrays)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_limited(path, what, limit, limit_name):
    """The bytes of the regular file `path`: FileNotFoundError / IsADirectoryError naming it, ValueError for
    a device, FIFO or socket and for a file of more than `limit` bytes (naming `limit_name`, the setting that
    raises it); all checked before anything is read."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))     # a FIFO must not block the open
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, not a {what} file") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a directory, not a {what} file")
        if not stat.S_ISREG(mode):
            kind = "character device" if stat.S_ISCHR(mode) else "block device" if stat.S_ISBLK(mode) else \
                "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "special file"
            raise ValueError(f"{path} is a {kind}, not a {what} file")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: larger than {limit:,} bytes, the limit for a {what} file (raise {limit_name} "
                         "to read it)")
    return data


def _npz_arrays(data, limit):
    """The arrays of an .npz archive held in `data`, their declared sizes checked against `limit` first."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if sum(info.file_size for info in infos) > limit:
            raise ValueError(f"its entries expand to more than {limit:,} bytes (MAX_FILE_BYTES)")
        arrays = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"unexpected entry {info.filename!r}")
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"entry {info.filename!r}: unsupported .npy version {version}")
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(f)
                if dtype.hasobject or dtype.itemsize * int(np.prod(shape, dtype=object)) > info.file_size:
                    raise ValueError(f"entry {info.filename!r} declares a {dtype} array of shape {shape}, "
                                     f"more than its {info.file_size} bytes hold")
            with archive.open(info) as f:
                arrays[info.filename[:-4]] = np.lib.format.read_array(f, allow_pickle=False)
    return arrays


_SIGNATURES = ((b"\x89PNG", "a PNG picture"), (b"\xff\xd8\xff", "a JPEG picture"), (b"GIF8", "a GIF picture"),
               (b"BM", "a BMP picture"), (b"II*\0", "a TIFF picture"), (b"MM\0*", "a TIFF picture"),
               (b"P5", "a PGM picture"), (b"P2", "a PGM picture"), (b"\x1f\x8b", "gzip-compressed data"),
               (b"\x93NUMPY", "a single .npy array"), (b"\0\0\x08", "an IDX file of images or labels"))


def _what_it_is(data):
    """What a file that is not a zip archive seems to be, for the error message."""
    if not data:
        return "the file is empty"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "it is a WebP picture"
    kind = next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
    return f"it is {kind}, not an .npz archive" if kind else "not an .npz archive"


def read_archive(path, file_format, max_version, what):
    """(header, arrays) of a file written by `write_archive`; ValueError naming the file for anything
    that is not a valid `what` file of `file_format` up to `max_version` (FileNotFoundError for a missing
    file, IsADirectoryError for a directory; files over MAX_FILE_BYTES are refused unread)."""
    path = os.fspath(path)
    data = read_limited(path, what, MAX_FILE_BYTES, "lenet_fast.io.archive.MAX_FILE_BYTES")
    if not data.startswith(b"PK"):
        raise ValueError(f"{path}: not a lenet_fast {what} file ({_what_it_is(data)})")
    try:
        arrays = _npz_arrays(data, MAX_FILE_BYTES)
    except Exception as exc:     # zipfile and numpy raise many kinds for damaged files (OSError, SyntaxError, ...)
        reason = " ".join(str(exc).split())[:200]
        raise ValueError(f"{path}: not a lenet_fast {what} file (unreadable .npz: {type(exc).__name__}: "
                         f"{reason})") from None
    if "__header__" not in arrays:
        raise ValueError(f"{path}: not a lenet_fast {what} file (no __header__ entry)")
    try:
        header = json.loads(arrays.pop("__header__").tobytes().decode("utf-8"))
    except Exception:            # (UnicodeDecodeError, JSONDecodeError, RecursionError for deep nesting)
        raise ValueError(f"{path}: not a lenet_fast {what} file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a lenet_fast {what} file (its header is not a JSON object)")
    if header.get("format") != file_format:
        raise ValueError(f"{path}: not a lenet_fast {what} file (format {header.get('format')!r})")
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(f"{path}: invalid format_version {version!r}")
    if version > max_version:
        raise ValueError(f"{path}: written in {what} format {version} by a newer lenet_fast "
                         f"({header.get('lenet_fast_version')}); this version reads formats up to "
                         f"{max_version}: upgrade lenet_fast")
    return header, arrays
