"""Make the README's pictures of `lenet-fast show` (docs/show_*.png).

    python tools/show_pictures.py [--docs docs]

Runs, in a temporary directory,

    lenet-fast train --val-split 0.1 --log-json log.json --out lenet5.npz --quiet
    lenet-fast show lenet5.npz --image three.png --dataset sample --log log.json --out show

that is: the paper's network trained with the default recipe on the embedded sample (1,000 digits held
out as the test set, 10% of the rest for per-pass validation, seed 0), then every picture of it: a held-out
3 (enlarged to 112x112 and drawn dark on white, as a scan would be), the confusion matrix and mistakes on
the 1,000 held-out digits, and the training curves. The pictures the README shows are copied into docs/
with a ``show_`` prefix.
"""
import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from lenet_fast.apps.cli import main as lenet_fast
from lenet_fast.apps.commands import hold_out
from lenet_fast.data import load_sample

SHOWN = ("input", "c1_filters", "c3_filters", "c1_maps", "c5_f6", "penalties", "confusion", "mistakes",
         "curves", "eps")


def held_out_three(path):
    """Write the first 3 of the digits `lenet-fast train` holds out (--test-split 0.2, --seed 0)."""
    data = load_sample()
    _, _, x_test, y_test = hold_out(data.x_train, data.y_train, 0.2, 0, "test-split")
    three = x_test[np.flatnonzero(y_test == 3)[0]]
    Image.fromarray(np.pad(255 - np.kron(three, np.ones((4, 4), np.uint8)), 16, constant_values=255)).save(path)


def run(*argv):
    print("lenet-fast " + " ".join(argv))
    status = lenet_fast(list(argv))
    if status:
        raise SystemExit(status)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", default="docs", help="where to copy the pictures (default docs)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, log, picture, out = (str(work / name) for name in ("lenet5.npz", "log.json", "three.png", "show"))
        held_out_three(picture)
        run("train", "--val-split", "0.1", "--log-json", log, "--out", model, "--quiet")
        run("show", model, "--image", picture, "--dataset", "sample", "--log", log, "--out", out)
        for name in SHOWN:
            target = Path(args.docs) / f"show_{name}.png"
            shutil.copyfile(Path(out) / f"{name}.png", target)
            print(f"wrote {target}")


if __name__ == "__main__":
    main()
