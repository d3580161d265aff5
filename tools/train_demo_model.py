"""Train the model `lenet-fast serve` uses when given none, and save it into the package.

    python tools/train_demo_model.py [--out lenet_fast/apps/demo/lenet5_sample.npz] [--epochs N]

The paper variant in float32, seed 0, trained with the default recipe of ``LeNet5.fit`` (SDLM, one
sample at a time, the recipe's 20 passes) on all 5,000 digits of the embedded MNIST sample, on one
thread (so the weights do not depend on the machine's core count). The file is written atomically
(``LeNet5.save``) and made readable by all.
"""
import argparse
import os
import time
from pathlib import Path

from lenet_fast import LeNet5
from lenet_fast.data import load_sample

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "lenet_fast" / "apps" / "demo" / "lenet5_sample.npz"


def train(epochs=None, seed=0):
    """(the demo model, its History, the sample): LeNet5(seed) fitted on the whole embedded sample with
    the default recipe (epochs None: the recipe's number of passes)."""
    data = load_sample()
    net = LeNet5("paper", dtype="float32", seed=seed, n_threads=1)
    history = net.fit(data.x_train, data.y_train, epochs=epochs, seed=seed)
    return net, history, data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the model file to write")
    parser.add_argument("--epochs", type=int, help="passes over the sample (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    net, history, data = train(args.epochs, args.seed)
    net.save(args.out)
    os.chmod(args.out, 0o644)          # package data: readable by all (the atomic write makes it 0600)
    error = 1.0 - net.score(data.x_train, data.y_train)
    print(f"wrote {args.out}: {len(history)} passes over the 5,000 sample digits in "
          f"{time.perf_counter() - started:.1f} s; training error {100 * error:.2f}%")


if __name__ == "__main__":
    main()
