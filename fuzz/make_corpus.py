"""Write the fuzzers' seed corpora, small valid files made on the fly, to fuzz/corpus/<target>/.

    python fuzz/make_corpus.py [OUT_DIR]          (default: fuzz/corpus beside this script)

idx: tiny IDX files (raw and gzip, 1-D labels and 3-D images); model: saved LeNet5 models (paper and
modern); checkpoint: a checkpoint of a 1-epoch training on a few sample digits; picture: small PNG, GIF,
BMP and JPEG digits. Generated rather than committed (the model and checkpoint files are ~250 KB each).
"""
import gzip
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from lenet_fast import LeNet5
from lenet_fast.data import load_sample
from lenet_fast.train import Trainer


def idx_bytes(array, code):
    array = np.asarray(array)
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def main(out=None):
    out = Path(out or Path(__file__).resolve().parent / "corpus")
    sample = load_sample()
    digits, labels = sample.x_train[:3], sample.y_train[:3]
    files = {
        "idx/labels": idx_bytes(labels.astype(np.uint8), 0x08),
        "idx/images": idx_bytes(digits.astype(np.uint8), 0x08),
        "idx/images.gz": gzip.compress(idx_bytes(digits[:1].astype(np.uint8), 0x08), mtime=0),
        "idx/int32": idx_bytes(np.arange(6, dtype=np.int32).reshape(2, 3), 0x0C),
        "idx/float64": idx_bytes(np.linspace(0, 1, 4), 0x0E),
    }
    for name, fmt in (("png", "PNG"), ("gif", "GIF"), ("bmp", "BMP"), ("jpg", "JPEG")):
        buf = io.BytesIO()
        Image.fromarray(255 - digits[0]).save(buf, fmt)
        files[f"picture/digit.{name}"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(np.stack([255 - digits[1]] * 3 + [np.full((28, 28), 200, np.uint8)], -1), "RGBA").save(buf, "PNG")
    files["picture/rgba.png"] = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        LeNet5("paper", seed=0).save(tmp / "paper.npz")
        LeNet5("modern", seed=0).save(tmp / "modern.npz")
        Trainer(LeNet5("modern", seed=0), "sgd", epochs=1, checkpoint=tmp / "run.npz").fit(
            sample.x_train[:32], sample.y_train[:32])
        for name in ("paper.npz", "modern.npz"):
            files[f"model/{name}"] = (tmp / name).read_bytes()
        files["checkpoint/run.npz"] = (tmp / "run.npz").read_bytes()
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    print(f"wrote {len(files)} seeds under {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
