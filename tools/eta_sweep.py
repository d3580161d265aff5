"""The measurements behind SDLM's default eta (README, "Choices"): short runs at several etas.

    python tools/eta_sweep.py [--fashion DIR]

Paper variant, float32, seed 0. The embedded sample: 2,000 digits for training, 3 passes, accuracy on
1,000 others. With --fashion DIR (Fashion-MNIST IDX files): the first 10,000 training images, 5 passes,
accuracy on the first 2,000 test images.
"""
import argparse

import numpy as np

from lenet_fast import LeNet5
from lenet_fast.data.datasets import load_directory, load_sample
from lenet_fast.train import SDLM


def accuracy(x, y, x_test, y_test, epochs, eta):
    net = LeNet5(seed=0)
    net.fit(x, y, epochs=epochs, optimizer=SDLM(learning_rate=eta))
    return net.score(x_test, y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion", metavar="DIR", help="a directory with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    data = load_sample()
    order = np.random.default_rng(0).permutation(len(data.y_train))
    train, test = order[:2000], order[4000:]
    for eta in (5e-4, 1e-4, 5e-5):
        acc = accuracy(data.x_train[train], data.y_train[train], data.x_train[test], data.y_train[test], 3, eta)
        print(f"sample, 2,000 digits, 3 passes, eta {eta:g}: accuracy {100 * acc:.1f}%", flush=True)
    if args.fashion:
        f = load_directory(args.fashion)
        for eta in (5e-5, 2e-5, 1e-5):
            acc = accuracy(f.x_train[:10000], f.y_train[:10000], f.x_test[:2000], f.y_test[:2000], 5, eta)
            print(f"Fashion-MNIST, 10,000 images, 5 passes, eta {eta:g}: accuracy {100 * acc:.1f}%", flush=True)


if __name__ == "__main__":
    main()
