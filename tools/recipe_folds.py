"""The held-out measurements behind the default recipe (README, "How the recipe was chosen").

    python tools/recipe_folds.py --fold 0 [--eta 2.5e-4] [--mu 0.02] [--epochs 20] [--distortions]
                                 [--criterion mse] [--init paper_sqrt] [--train 4000]
    python tools/recipe_folds.py --fashion DIR [--eta ...]      # Fashion-MNIST: 50,000 / the last 10,000

Sample: the 5,000 embedded digits in a fixed random order (seed 1234) cut into five folds of 1,000; fold k
is held out and (the first --train of) the other 4,000 train the paper variant with SDLM, seed 0. Prints
one JSON line: the settings, the held-out accuracy (%) and its curve per pass.
"""
import argparse
import json

import numpy as np

from lenet_fast import LeNet5
from lenet_fast.data import load_directory, load_sample
from lenet_fast.train import SDLM


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, default=0, choices=range(5))
    parser.add_argument("--fashion", metavar="DIR", help="Fashion-MNIST IDX files instead of the sample")
    parser.add_argument("--train", type=int, default=4000, help="training digits of the sample (default 4000)")
    parser.add_argument("--eta", type=float, default=2.5e-4)
    parser.add_argument("--mu", type=float, default=0.02)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--distortions", action="store_true")
    parser.add_argument("--criterion", default="mse", choices=("mse", "map"))
    parser.add_argument("--init", default="paper_sqrt", choices=("paper", "paper_sqrt"))
    args = parser.parse_args()
    if args.fashion:
        data = load_directory(args.fashion)
        x, y, x_held, y_held = data.x_train[:50000], data.y_train[:50000], data.x_train[50000:], data.y_train[50000:]
    else:
        data = load_sample()
        order = np.random.default_rng(1234).permutation(len(data.y_train))
        held = order[1000 * args.fold:1000 * (args.fold + 1)]
        train = order[~np.isin(order, held)][:args.train]
        x, y, x_held, y_held = data.x_train[train], data.y_train[train], data.x_train[held], data.y_train[held]
    net = LeNet5(seed=0, criterion=args.criterion, init=args.init)
    history = net.fit(x, y, epochs=args.epochs, optimizer=SDLM(learning_rate=args.eta, mu=args.mu), seed=0,
                      distortions=args.distortions, validation_data=(x_held, y_held))
    print(json.dumps({**vars(args), "accuracy": round(100 * net.score(x_held, y_held), 2),
                      "curve": [round(100 * (1 - e), 2) for e in history["val_error"]]}))


if __name__ == "__main__":
    main()
