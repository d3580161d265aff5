"""Draw examples of the random input distortions, like Fig. 7 of the paper.

    python tools/distortion_grid.py [--out docs/distortions.png] [--seed 0]

Rows are the digits 0-9 (the first of each class in the embedded MNIST sample, or in the shared
5k-digit files when the package has no sample yet); column 0 is the original 32x32 network input,
columns 1-8 random distortions with the default ranges of `lenet_fast.train.Distortions`
(every one distorted: keep_original=0). Cells are upscaled 3x (nearest) with grey 2 px separators and
drawn as in the paper, dark ink on white.
"""
import argparse
import gzip
from pathlib import Path

import numpy as np

from lenet_fast import preprocess
from lenet_fast.nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from lenet_fast.train.distortions import Distortions
from lenet_fast.data.images import write_png

SHARED_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-5k"
COLUMNS, ZOOM, GAP, GAP_GREY = 8, 3, 2, 128


def _read_idx_gz(path, header_bytes):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read()[header_bytes:], dtype=np.uint8)


def first_of_each_class():
    """uint8 (10, 28, 28): the first image of each digit 0-9."""
    try:
        from lenet_fast.data.datasets import load_sample
    except ImportError:
        images = _read_idx_gz(SHARED_SAMPLE / "train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = _read_idx_gz(SHARED_SAMPLE / "train-labels-idx1-ubyte.gz", 8)
    else:
        images, labels = load_sample()[:2]
    return images[[np.flatnonzero(labels == digit)[0] for digit in range(10)]]


def to_uint8(x):
    """Network input back to MNIST grey levels (0 = background, 255 = ink): preprocess's map inverted."""
    p = (x - INPUT_BACKGROUND) * 255.0 / (INPUT_FOREGROUND - INPUT_BACKGROUND)
    return np.clip(np.rint(p), 0, 255).astype(np.uint8)


def tile(cells):
    """uint8 (rows, cols, h, w) cells to one image, each upscaled ZOOM times, GAP px separators."""
    rows, cols, h, w = cells.shape
    cells = cells.repeat(ZOOM, axis=2).repeat(ZOOM, axis=3)
    step_y, step_x = h * ZOOM + GAP, w * ZOOM + GAP
    canvas = np.full((rows * step_y + GAP, cols * step_x + GAP), GAP_GREY, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            canvas[GAP + r * step_y:(r + 1) * step_y, GAP + c * step_x:(c + 1) * step_x] = cells[r, c]
    return canvas


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/distortions.png", help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random distortions")
    args = parser.parse_args(argv)

    x = preprocess(first_of_each_class(), dtype="float64")                    # (10, 1, 32, 32)
    distorted = Distortions(keep_original=0.0).apply(np.repeat(x, COLUMNS, axis=0),
                                                     np.random.default_rng(args.seed))
    cells = np.concatenate([x, distorted.reshape(10, COLUMNS, 32, 32)], axis=1)  # (10, 1 + COLUMNS, ...)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_png(args.out, tile(255 - to_uint8(cells)))                           # dark ink on white
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
