"""Reliability, fuzzing: every input in fuzz/crashes/<target>/ (what fuzz/fuzz_readers.py found, once fixed)
and a few hand-made nasty files per reader get only the documented errors: a one-line ValueError naming
the file, never another exception, a crash, a hang or unbounded memory."""
import gzip
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from lenet_fast import LeNet5
from lenet_fast.data import load_sample
from lenet_fast.data.datasets import read_idx
from lenet_fast.data.images import load_digits, read_image
from lenet_fast.train import Trainer

CRASHES = Path(__file__).resolve().parents[1] / "fuzz" / "crashes"
READERS = {
    "idx": [read_idx],
    "model": [LeNet5.load],
    "checkpoint": [lambda p: Trainer.resume(p, model_class=LeNet5)],
    "picture": [read_image, lambda p: load_digits([p])],
}


def _check(target, path):
    for reader in READERS[target]:
        try:
            reader(path)
        except ValueError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), str(exc)


def test_inputs_the_fuzzers_found(tmp_path):
    """One test over all of them (an empty folder passes: no parametrisation that CI=true would count as a skip)."""
    found = [(t, p) for t in READERS for p in sorted((CRASHES / t).glob("*"))
             if p.is_file() and not p.name.startswith(".")]
    for target, path in found:
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        try:
            _check(target, copy)
        except Exception as exc:       # noqa: BLE001 - name the input that broke the contract
            raise AssertionError(f"fuzz/crashes/{target}/{path.name}: {type(exc).__name__}: {exc}") from exc


# --- hand-made nasty inputs -------------------------------------------------------------------------

def _idx_header(code, shape):
    return bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


def _png(width, height, idat=b""):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    LeNet5("paper", seed=0).save(root / "model.npz")
    data = load_sample()
    Trainer(LeNet5("modern", seed=0), "sgd", epochs=1, checkpoint=root / "run.npz").fit(data.x_train[:32],
                                                                                        data.y_train[:32])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:       # a 100 MB entry in ~100 KB
        z.writestr("c1.weight.npy", bytes(100_000_000))
    return {"model": (root / "model.npz").read_bytes(), "checkpoint": (root / "run.npz").read_bytes(),
            "bomb": buf.getvalue()}


def _nasty(saved):
    model, checkpoint, bomb = saved["model"], saved["checkpoint"], saved["bomb"]
    gif = bytearray(b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\0\0\0"
                    + b",\0\0\0\0" + struct.pack("<HH", 65535, 65535) + b"\0\x02\x02\x4c\x01\0;")
    return {
        "idx": {"2^40 bytes declared": _idx_header(0x08, [2 ** 20, 2 ** 20]) + bytes(16),
                "2^40 bytes declared, gzip": gzip.compress(_idx_header(0x08, [2 ** 20, 2 ** 20]) + bytes(4096)),
                "255 dimensions": bytes([0, 0, 8, 255]) + bytes(64),
                "a zero beside 2^32-1 dimensions": _idx_header(0x08, [2 ** 32 - 1] * 3 + [0]),
                "truncated gzip": gzip.compress(_idx_header(0x08, [10, 28, 28]) + bytes(7840))[:60],
                "gzip trailing garbage": gzip.compress(_idx_header(0x08, [1]) + b"\1") + b"junk",
                "empty": b""},
        "model": {"truncated npz": model[:len(model) // 2], "zip bomb entry": bomb, "a checkpoint": checkpoint,
                  "only the end": model[-1000:], "empty": b""},
        "checkpoint": {"truncated npz": checkpoint[:len(checkpoint) // 2], "a model": model,
                       "zip bomb entry": bomb, "empty": b""},
        "picture": {"PNG declaring 2^32 x 2^31 pixels": _png(2 ** 32 - 1, 2 ** 31 - 1),
                    "PNG declaring 65536 x 65536 pixels": _png(65536, 65536, zlib.compress(b"\0" * 1000)),
                    "PNG 0 x 0": _png(0, 0), "truncated PNG": _png(28, 28, zlib.compress(bytes(29 * 28)))[:50],
                    "GIF declaring 65535 x 65535": bytes(gif), "empty": b"", "text": b"not a picture\n"},
    }


@pytest.mark.parametrize("target", list(READERS))
def test_hand_made_nasty_inputs(target, saved, tmp_path):
    for name, data in _nasty(saved)[target].items():
        path = tmp_path / "input.bin"
        path.write_bytes(data)
        try:
            _check(target, path)
        except Exception as exc:       # noqa: BLE001 - name the input that broke the contract
            raise AssertionError(f"{target} / {name}: {type(exc).__name__}: {exc}") from exc
