"""What ``lenet-fast evaluate``, ``predict``, ``export``, ``summary``, ``config`` and ``bench`` do, and what
every command shares: the data options and `UserError`.

Each ``run_*`` function takes the parsed arguments and returns the exit status; ``train`` is in
train_command.py, the parser and ``main`` in cli.py.
"""
import logging

import numpy as np

from .. import data as datasets
from .._checks import finite_number, integer
from .._config import show_config
from ..data.images import load_digits
from ..io.onnx_export import OPSET, OUTPUT_NAMES, export_onnx
from ..model import LeNet5
from . import bench


class UserError(Exception):
    """A mistake in the command line or its files: reported in one line, no traceback."""


def load_data(args):
    """(Dataset, description). --data DIR beats --dataset NAME; neither: the embedded sample."""
    if not getattr(args, "quiet", False):     # say which mirror a download comes from
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.data:
        return datasets.load_directory(args.data), f"IDX files in {args.data}"
    name = args.dataset or "sample"
    data = datasets.load(name)
    if name == "sample":
        note = "" if args.dataset else " (no --data or --dataset given; --dataset mnist trains on all of MNIST)"
        return data, f"the 5,000 MNIST digits embedded in lenet_fast{note}"
    return data, f"{name} from {data.source}"


def hold_out(x, y, fraction, seed, what):
    """(x_rest, y_rest, x_held, y_held): a seeded random `fraction` held out."""
    finite_number(f"--{what}", fraction, at_least=0, below=1)
    n_held = int(round(fraction * len(y)))
    if n_held == 0:
        return x, y, None, None
    order = np.random.default_rng([seed, 7]).permutation(len(y))
    held, rest = np.sort(order[:n_held]), np.sort(order[n_held:])
    return x[rest], y[rest], x[held], y[held]


# --- evaluate and predict ---------------------------------------------------------------------------

def run_evaluate(args):
    """Error rate and mean loss on the test set: the t10k files, else the part of the training files that
    train holds out (--test-split, --seed); per-class accuracy, confusion."""
    net = LeNet5.load(args.model, n_threads=args.threads)
    integer("--seed", args.seed, at_least=0)
    data, description = load_data(args)
    x, y, which = data.x_test, data.y_test, "test set (t10k files)"
    if x is None:
        _, _, x, y = hold_out(data.x_train, data.y_train, args.test_split, args.seed, "test-split")
        which = (f"test set (no t10k files: the {args.test_split:.0%} of the training files that train holds out "
                 f"with --test-split {args.test_split} --seed {args.seed})")
        if y is None:
            x, y, which = data.x_train, data.y_train, "training files (no t10k files, --test-split 0)"
    result = net.evaluate(x, y)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y, result["predictions"]), 1)
    print(f"{description}, {which}: {len(y):,} images")
    print(f"error rate {100 * result['error']:.2f}% ({int(confusion.sum() - np.trace(confusion))} misclassified), "
          f"mean loss {result['loss']:.4f}")
    _print_confusion(confusion)
    return 0


def _print_confusion(confusion):
    """The per-class accuracy and the confusion matrix (rows: true class) of a (10, 10) count table."""
    print("\nper-class accuracy")
    for digit in range(10):
        total = confusion[digit].sum()
        accuracy = f"{100 * confusion[digit, digit] / total:6.2f}%" if total else "     -"
        print(f"  {digit}: {accuracy}  ({total:,} images)")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    width = max(4, len(str(confusion.max())) + 1)
    print("    " + "".join(f"{d:>{width}}" for d in range(10)))
    for digit in range(10):
        print(f"  {digit} " + "".join(f"{v:>{width}}" for v in confusion[digit]))


def run_predict(args):
    """One line per image file: the digit and the ten penalties (paper) or logits (modern)."""
    net = LeNet5.load(args.model, n_threads=args.threads)
    scores = net.forward(load_digits(args.files))
    labels = net.decide(scores)
    kind = "penalties (lower = more likely)" if net.variant == "paper" else "scores (logits)"
    width = max(len(f) for f in args.files)
    print(f"{'file':<{width}}  digit  {kind} for 0..9")
    for path, label, row in zip(args.files, labels, scores):
        print(f"{path:<{width}}  {label:>5}  " + " ".join(f"{v:7.2f}" for v in row))
    return 0


def run_export(args):
    """Write the model as an ONNX graph (lenet_fast.io.onnx_export) and say what its input and output are."""
    net = LeNet5.load(args.model)
    try:
        export_onnx(net, args.onnx, raw_digits=args.raw_digits)
    except ImportError as exc:       # onnx is an optional extra
        raise UserError(str(exc)) from None
    source = "digits uint8 (N, 28, 28)" if args.raw_digits else "input float32 (N, 1, 32, 32), preprocessed"
    output = OUTPUT_NAMES[net.architecture.decision]
    note = " (float64 weights rounded to float32)" if net.dtype == np.float64 else ""
    print(f"wrote {args.onnx}: {net.variant} variant, opset {OPSET}, {source} -> {output} float32 (N, 10){note}")
    return 0


# --- summary, config, bench -------------------------------------------------------------------------

def run_summary(args):
    print(LeNet5(args.variant).summary())
    return 0


def run_config(args):
    show_config()
    return 0


def run_bench(args):
    """Measure and print the table (bench.run_bench); --json also writes the figures to a file."""
    threads = bench.parse_threads(args.threads)
    integer("--repeats", args.repeats, at_least=1)
    peers = () if args.no_torch else (None if args.peers is None else bench.parse_peers(args.peers))
    report = bench.run_bench(repeats=args.repeats, threads=threads, quick=args.quick, peers=peers)
    if args.json:
        bench.write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0
