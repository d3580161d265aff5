"""Reliability, part 3: damaged model files and checkpoints are ValueErrors naming the file (one line in
the CLI), and every reader bounds what a small file can cost: IDX (header against data, gzip expansion),
pictures (file size, pixels and decoded bytes before decoding, work size), devices and directories."""
import gzip
import io
import json
import os
import random
import zipfile

import numpy as np
import pytest
from PIL import Image

from lenet_fast import LeNet5
from lenet_fast.apps.cli import main
from lenet_fast.data import datasets, images
from lenet_fast.data.datasets import read_idx
from lenet_fast.io import archive
from lenet_fast.train import Trainer


@pytest.fixture(scope="module")
def saved_files(tmp_path_factory, digits_dir):
    root = tmp_path_factory.mktemp("files")
    LeNet5("paper", seed=0).save(root / "model.npz")
    data = datasets.load_directory(digits_dir)
    net = LeNet5("modern", seed=0)
    Trainer(net, "sgd", epochs=1, checkpoint=root / "run.checkpoint.npz").fit(data.x_train[:200], data.y_train[:200])
    return root


def _mutations(data, seed, count):
    rng = random.Random(seed)
    for _ in range(count):
        b = bytearray(data)
        for _ in range(rng.choice([1, 2, 4, 8, 32])):
            pos, op = rng.randrange(len(b)), rng.random()
            if op < 0.6:
                b[pos] = rng.randrange(256)
            elif op < 0.8:
                del b[pos:pos + rng.randrange(1, 64)]
            else:
                b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        yield bytes(b)


@pytest.mark.parametrize("name,load", [("model.npz", LeNet5.load),
                                       ("run.checkpoint.npz", lambda p: Trainer.resume(p, model_class=LeNet5))])
def test_mutated_files_are_value_errors_naming_the_file(tmp_path, saved_files, name, load):
    original = (saved_files / name).read_bytes()
    path = tmp_path / "mutated.npz"
    others = []
    for i, data in enumerate(_mutations(original, seed=len(name), count=300)):
        path.write_bytes(data)
        try:
            load(path)
        except ValueError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
        except Exception as exc:          # noqa: BLE001 - the point: nothing but ValueError
            others.append(f"{i}: {type(exc).__name__}: {exc}")
    assert not others, others[:5]


VALUES = [None, [], {}, "x", -1, 0, 2.5, float("nan"), float("inf"), True, 2 ** 70, [[[[]]]], {"a": 1}]


@pytest.mark.parametrize("name,load", [("model.npz", LeNet5.load),
                                       ("run.checkpoint.npz", lambda p: Trainer.resume(p, model_class=LeNet5))])
def test_every_header_field_with_a_wrong_type_is_a_value_error(tmp_path, saved_files, name, load):
    with np.load(saved_files / name) as data:
        arrays = {k: data[k] for k in data.files}
    base = json.loads(arrays["__header__"].tobytes())

    def paths(node, prefix=()):
        yield prefix
        if isinstance(node, dict):
            for key, value in node.items():
                yield from paths(value, prefix + (key,))

    others = []
    for where in [p for p in paths(base) if p and p[0] not in ("history", "metadata", "lenet_fast_version")]:
        for value in VALUES:
            header = json.loads(json.dumps(base))
            node = header
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = value
            arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
            np.savez(tmp_path / "bad.npz", **arrays)
            try:
                load(tmp_path / "bad.npz")
            except ValueError:
                pass
            except Exception as exc:      # noqa: BLE001
                others.append(f"{'.'.join(where)} = {value!r}: {type(exc).__name__}: {exc}")
    assert not others, others[:5]


def test_an_entry_declaring_a_huge_array_is_refused_unread(tmp_path, saved_files):
    with zipfile.ZipFile(saved_files / "model.npz") as z:
        entries = {info.filename: z.read(info) for info in z.infolist()}
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    entries["c1.bias.npy"] = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 24
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match="declares a float32 array of shape"):
        LeNet5.load(tmp_path / "huge.npz")


def test_model_file_size_limit_is_named_and_raisable(tmp_path, saved_files, monkeypatch):
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 100_000)
    with pytest.raises(ValueError, match=r"lenet_fast.io.archive.MAX_FILE_BYTES"):
        LeNet5.load(saved_files / "model.npz")
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 10_000_000)
    LeNet5.load(saved_files / "model.npz")


def test_devices_fifos_and_directories_are_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="/dev/zero is a character device, not a model file"):
        LeNet5.load("/dev/zero")
    with pytest.raises(IsADirectoryError, match="is a directory, not a model file"):
        LeNet5.load(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a directory, not a checkpoint file"):
        Trainer.resume(tmp_path)
    os.mkfifo(tmp_path / "fifo")                  # nobody writes: reading would block forever
    with pytest.raises(ValueError, match="is a FIFO"):
        LeNet5.load(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        images.read_image(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        read_idx(tmp_path / "fifo")
    with pytest.raises(ValueError, match="/dev/zero: not a regular file"):
        images.load_digits(["/dev/zero"])
    with pytest.raises(ValueError, match="/dev/zero: not a regular file"):
        read_idx("/dev/zero")
    with pytest.raises(IsADirectoryError, match="is a directory, not a picture"):
        images.read_image(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a directory, not an IDX file"):
        read_idx(tmp_path)


def test_cli_damaged_model_and_devices_are_one_line_errors(tmp_path, saved_files, capsys):
    original = (saved_files / "model.npz").read_bytes()
    for i, data in enumerate(_mutations(original, seed=9, count=20)):
        (tmp_path / f"m{i}.npz").write_bytes(data)
    for argv in ([["evaluate", str(tmp_path / f"m{i}.npz")] for i in range(20)]
                 + [["predict", str(saved_files / "model.npz"), "/dev/zero"], ["evaluate", "/dev/zero"]]):
        status = main(argv)
        err = capsys.readouterr().err
        assert status in (0, 1) and (status == 0 or (err.startswith("lenet-fast: error:")
                                                     and len(err.strip().splitlines()) == 1)), err


# --- IDX --------------------------------------------------------------------------------------------

def _idx_header(shape, code=8):
    return bytes([0, 0, code, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)


def test_a_gzip_bomb_is_refused_before_it_expands(tmp_path):
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(_idx_header((7000, 1000, 1000)))
        f.write(bytes(8 * 2 ** 20))                 # 8 MB of the declared 7 GB: a file of a few KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"7,000,000,000 bytes of data, more than the limit of .*MAX_IDX_BYTES") as e:
        read_idx(bomb)
    assert str(bomb) in str(e.value)


def test_the_idx_limit_is_raisable(tmp_path, monkeypatch):
    path = tmp_path / "x.idx"
    path.write_bytes(_idx_header((4, 1000)) + bytes(4000))
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 1000)
    with pytest.raises(ValueError, match="more than the limit of 1,000"):
        read_idx(path)
    assert read_idx(path, max_bytes=4000).shape == (4, 1000)
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 4000)
    assert read_idx(path).shape == (4, 1000)


@pytest.mark.parametrize("data,match", [
    (_idx_header((2 ** 32 - 1,) * 3), r"shape \(4294967295, 4294967295, 4294967295\)"),
    (bytes([0, 0, 8, 255]) + bytes(4 * 255), "255 dimensions"),
    (_idx_header((10, 10)) + bytes(50), "truncated"),
    (_idx_header((10,)) + bytes(11), "trailing bytes"),
])
def test_absurd_idx_headers_are_errors_naming_the_file(tmp_path, data, match):
    for name, content in (("raw.idx", data), ("packed.idx.gz", gzip.compress(data))):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=match) as error:
            read_idx(path)
        assert str(error.value).startswith(str(path)), error.value


# --- pictures ---------------------------------------------------------------------------------------

def _png(path, array):
    Image.fromarray(array).save(path, optimize=True)
    return path


def test_picture_file_size_and_decoded_size_limits(tmp_path, monkeypatch):
    digit = np.full((40, 40, 4), 255, np.uint8)
    digit[10:30, 18:22, :3] = 0
    path = tmp_path / "rgba.png"
    Image.fromarray(digit, "RGBA").save(path)
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 40 * 40 * 4 - 1)
    with pytest.raises(ValueError, match=r"decode to 6,400 bytes.*lenet_fast.data.images.MAX_DECODED_BYTES"):
        images.read_image(path)
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 40 * 40 * 4)
    assert images.read_image(path).shape == (40, 40)
    monkeypatch.setattr(images, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ValueError, match="file too large.*lenet_fast.data.images.MAX_FILE_BYTES"):
        images.read_image(path)


def test_large_pictures_are_reduced_before_the_digit_is_found(tmp_path, monkeypatch):
    big = np.full((6000, 3000), 255, np.uint8)
    big[1500:4500, 1300:1700] = 0                  # a "1" in a large, small (compressed) PNG
    path = _png(tmp_path / "big.png", big)
    assert path.stat().st_size < 200_000
    seen = []
    original = images.mnist_style
    monkeypatch.setattr(images, "mnist_style", lambda image, *a: seen.append(image.shape) or original(image, *a))
    digit = images.load_digits([path])[0]
    assert max(seen[0]) <= images.WORK_SIDE and digit.shape == (28, 28)
    np.testing.assert_allclose(digit, original(big), rtol=0, atol=16)    # as from the full picture


def test_a_one_pixel_high_picture_is_cheap(tmp_path):
    wide = np.full((1, 1_000_000), 255, np.uint8)
    wide[0, 1000:2000] = 0
    path = _png(tmp_path / "wide.png", wide)
    assert path.stat().st_size < 5_000
    assert images.load_digits([path]).shape == (1, 28, 28)


def test_empty_and_tiny_streams(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        images.read_image(tmp_path / "empty.png")
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    (tmp_path / "one.png").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="no digit found"):
        images.load_digits([tmp_path / "one.png"])


def test_a_pgm_header_claiming_a_huge_picture_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.pgm"
    path.write_bytes(b"P5\n9000 9000\n255\n" + bytes(64))
    with pytest.raises(ValueError, match=r"bomb.pgm: image too large \(9000x9000 = 81,000,000 pixels"):
        images.load_digits([path])
    path.write_bytes(b"P5\n20000 20000\n255\n" + bytes(64))     # (Pillow's own limit is met first)
    with pytest.raises(ValueError, match=r"bomb.pgm: image too large"):
        images.load_digits([path])
