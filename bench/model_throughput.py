"""Whole-model throughput of LeNet5 (float32; the paper variant unless --variant): medians of interleaved runs.

    python bench/model_throughput.py [--rounds 7] [--variant paper|modern] [--best] [--json FILE]

Cases: training (the fused compiled steps the Trainer runs: forward, loss, backward and update, 1,024
samples per call) at batch 1, 64 and 256; a layer-by-layer gradient step (LeNet5.gradients) at batch 1
and 64; inference at batch 1024; each at 1 and 2 threads. Every round runs each case once, so machine noise
spreads over all of them.
"""
import argparse
import json
import statistics
import time

import numpy as np

from lenet_fast import LeNet5


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--variant", default="paper", choices=("paper", "modern"))
    parser.add_argument("--best", action="store_true",
                        help="report each case's best round, not the median (what the code can do: noise only slows)")
    parser.add_argument("--json", help="also write {case: images/s} to this file")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = []
    for n_threads in (1, 2):
        net = LeNet5(args.variant, n_threads=n_threads)
        images = rng.uniform(-0.1, 1.175, (1024, 1, 32, 32)).astype(np.float32)
        labels = rng.integers(0, 10, 1024)
        step = np.full(net.flat_parameters.size, 1e-4, dtype=np.float32)
        for batch in (1, 64, 256):
            run = (lambda net=net, batch=batch, images=images, labels=labels, step=step:
                   net.train_steps(images, labels, np.arange(1024), step, batch))
            cases.append((("training", batch, n_threads), run, 1024))
        for batch, kind in ((1, "gradient step"), (64, "gradient step"), (1024, "inference")):
            x = rng.uniform(-0.1, 1.175, (batch, 1, 32, 32)).astype(np.float32)
            y = rng.integers(0, 10, batch)
            run = (lambda net=net, x=x, y=y: net.gradients(x, y)) if kind == "gradient step" \
                else (lambda net=net, x=x: net.forward(x))
            cases.append(((kind, batch, n_threads), run, batch))
    rates = {key: [] for key, _, _ in cases}
    for _ in range(args.rounds):
        for key, run, batch in cases:
            start = time.perf_counter()
            run()
            rates[key].append(batch / (time.perf_counter() - start))
    pick = max if args.best else statistics.median
    print(f"{'case':<16}{'batch':>6}{'threads':>8}{'images/s (' + pick.__name__ + ')':>20}")
    for (kind, batch, n_threads), values in rates.items():
        print(f"{kind:<16}{batch:>6}{n_threads:>8}{pick(values):>20,.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{kind} b{batch} t{n}": pick(v) for (kind, batch, n), v in rates.items()}, f)


if __name__ == "__main__":
    main()
