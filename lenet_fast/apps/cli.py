"""The ``lenet-fast`` command line (also ``python -m lenet_fast``).

User mistakes (a missing file, a bad option, a file of the wrong format) end with one line on stderr
and exit status 1 (2 for command-line syntax, from argparse); Ctrl-C during training writes the
checkpoint and exits 130.
"""
import argparse
import logging
import os
import sys
import time

import numpy as np

from .. import data as datasets
from .._checks import finite_number, integer
from .._config import show_config
from ..data.images import load_digits
from ..model import LeNet5
from ..nn.architecture import DTYPES, VARIANTS
from ..train import Trainer, TrainingDivergedError, json_log
from . import bench


class UserError(Exception):
    """A mistake in the command line or its files: reported in one line, no traceback."""


# --- data -------------------------------------------------------------------------------------------

def _load_data(args):
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


def _split(x, y, fraction, seed, what):
    """(x_rest, y_rest, x_held, y_held): a seeded random `fraction` held out."""
    finite_number(f"--{what}", fraction, at_least=0, below=1)
    n_held = int(round(fraction * len(y)))
    if n_held == 0:
        return x, y, None, None
    order = np.random.default_rng([seed, 7]).permutation(len(y))
    held, rest = np.sort(order[:n_held]), np.sort(order[n_held:])
    return x[rest], y[rest], x[held], y[held]


# --- train ------------------------------------------------------------------------------------------

def _train(args):
    out = args.out or "lenet5.npz"
    checkpoint = args.checkpoint or _checkpoint_next_to(out)
    callbacks = [json_log(args.log_json)] if args.log_json else []
    verbose = 2 if not args.quiet else 0

    if args.resume:
        trainer = Trainer.resume(args.resume, epochs=args.epochs, n_threads=args.threads, verbose=verbose,
                                 callbacks=callbacks, checkpoint=args.checkpoint or args.resume,
                                 model_class=LeNet5)
        meta = trainer.metadata
        for key in ("dataset", "data", "val_split", "test_split"):   # the data the run started with
            setattr(args, key, meta.get(key, getattr(args, key)))
        args.seed = trainer.seed
    data, description = _load_data(args)
    x, y, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    test_note = "the t10k files"
    if x_test is None:
        x, y, x_test, y_test = _split(x, y, args.test_split, args.seed, "test-split")
        test_note = f"a held-out {args.test_split:.0%} of the training files"
    x, y, x_val, y_val = _split(x, y, args.val_split, args.seed + 1, "val-split")

    if not args.resume:
        net = LeNet5(args.variant, dtype=args.dtype, seed=args.seed, n_threads=args.threads,
                     criterion=args.criterion)
        trainer = Trainer(net, args.optimizer, epochs=args.epochs, batch_size=args.batch_size,
                          learning_rate=args.learning_rate, distortions=args.distortions, seed=args.seed,
                          callbacks=callbacks, verbose=verbose, checkpoint=checkpoint)
        trainer.metadata = {"dataset": args.dataset, "data": args.data, "val_split": args.val_split,
                            "test_split": args.test_split}
    net = trainer.net
    _say(args, f"training on {description}: {len(y):,} images"
               + (f", {len(y_val):,} for validation" if y_val is not None else "")
               + (f", test set {len(y_test):,} images ({test_note})" if y_test is not None else ", no test set"))
    _say(args, f"{net.variant} LeNet-5, {net.dtype}, {net.criterion} loss, {trainer.optimizer.name.upper()}, batch {trainer.batch_size}, "
               f"{trainer.epochs} passes" + (", distortions" if trainer.distortions is not None else "")
               + (f", resuming after pass {trainer.epoch}" if args.resume else ""))
    started = time.perf_counter()
    try:
        trainer.fit(x, y, validation_data=None if y_val is None else (x_val, y_val))
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint written to {trainer.checkpoint}; continue with "
              f"lenet-fast train --resume {trainer.checkpoint}", file=sys.stderr)
        return 130
    except TrainingDivergedError as exc:
        raise UserError(str(exc)) from None
    net.save(out)
    summary = {"event": "end", "seconds": time.perf_counter() - started, "model": out}
    if y_test is not None:
        result = net.evaluate(x_test, y_test)
        wrong = int(np.count_nonzero(result["predictions"] != y_test))
        summary.update(test_error=result["error"], test_loss=result["loss"], test_images=len(y_test))
        print(f"test error {100 * result['error']:.2f}% ({wrong} of {len(y_test):,} misclassified)")
    _say(args, f"saved the model to {out} (checkpoint: {trainer.checkpoint}); "
               f"{summary['seconds']:.1f} s in all")
    if args.log_json:
        json_log(args.log_json)(trainer, summary)
    return 0


def _checkpoint_next_to(out):
    root, ext = os.path.splitext(out)
    return f"{root}.checkpoint{ext or '.npz'}"


def _say(args, line):
    if not args.quiet:
        print(line, flush=True)


# --- evaluate and predict ---------------------------------------------------------------------------

def _evaluate(args):
    net = LeNet5.load(args.model, n_threads=args.threads)
    data, description = _load_data(args)
    x, y, which = data.x_test, data.y_test, "test set (t10k files)"
    if x is None:
        x, y, which = data.x_train, data.y_train, "training files (no t10k files)"
    result = net.evaluate(x, y)
    predictions = result["predictions"]
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y, predictions), 1)
    print(f"{description}, {which}: {len(y):,} images")
    print(f"error rate {100 * result['error']:.2f}% ({int(confusion.sum() - np.trace(confusion))} misclassified), "
          f"mean loss {result['loss']:.4f}")
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
    return 0


def _predict(args):
    net = LeNet5.load(args.model, n_threads=args.threads)
    scores = net.forward(load_digits(args.files))
    labels = net.decide(scores)
    kind = "penalties (lower = more likely)" if net.variant == "paper" else "scores (logits)"
    width = max(len(f) for f in args.files)
    print(f"{'file':<{width}}  digit  {kind} for 0..9")
    for path, label, row in zip(args.files, labels, scores):
        print(f"{path:<{width}}  {label:>5}  " + " ".join(f"{v:7.2f}" for v in row))
    return 0


# --- the parser -------------------------------------------------------------------------------------

def _summary(args):
    print(LeNet5(args.variant).summary())
    return 0


def _config(args):
    show_config()
    return 0


def _bench(args):
    threads = bench.parse_threads(args.threads)
    integer("--repeats", args.repeats, at_least=1)
    report = bench.run_bench(repeats=args.repeats, threads=threads, quick=args.quick, use_torch=not args.no_torch)
    if args.json:
        bench.write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0


def _threads(text):
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0")
    return value


def _add_data_options(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", choices=("mnist", "fashion-mnist", "sample"),
                       help="a known dataset (found locally or downloaded; sample = the 5,000 embedded MNIST "
                            "digits, the default when no --data is given)")
    group.add_argument("--data", metavar="DIR",
                       help="a directory of IDX files: train-*, and t10k-* when present")


def build_parser():
    parser = argparse.ArgumentParser(prog="lenet-fast",
                                     description="LeNet-5 exactly as LeCun et al. (1998), fast on CPUs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train LeNet-5 (the paper's recipe by default)",
                                description="Train LeNet-5; with no options, the paper's recipe (SDLM, 20 passes) "
                                            "on the 5,000 MNIST digits embedded in the package.")
    _add_data_options(train)
    train.add_argument("--variant", choices=VARIANTS, default="paper")
    train.add_argument("--dtype", choices=DTYPES, default="float32")
    train.add_argument("--criterion", choices=("mse", "map", "cross_entropy"),
                       help="the loss: mse (Eq. 8, the paper's default) or map (Eq. 9) for the paper variant; "
                            "cross_entropy for the modern one")
    train.add_argument("--optimizer", choices=("sdlm", "sgd"),
                       help="default: sdlm for the paper variant, sgd for the modern one")
    train.add_argument("--epochs", type=int, default=20, help="total passes over the training data (default 20)")
    train.add_argument("--batch-size", type=int, help="default: 1 for sdlm, 64 for sgd")
    train.add_argument("--learning-rate", type=float,
                       help="sgd: the learning rate; sdlm: the eta of the first passes (the paper's schedule "
                            "is scaled to it; default 2e-05, the paper's 5e-4 / 25: see README)")
    train.add_argument("--threads", type=_threads, help="OpenMP threads (default: all cores)")
    train.add_argument("--distortions", action="store_true", help="random affine distortions of every sample")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--val-split", type=float, default=0.0,
                       help="fraction of the training images held out for per-pass validation (default 0)")
    train.add_argument("--test-split", type=float, default=0.2,
                       help="without t10k files: the fraction held out as the test set (default 0.2)")
    train.add_argument("--out", metavar="FILE", help="where to save the model (default lenet5.npz)")
    train.add_argument("--checkpoint", metavar="FILE",
                       help="checkpoint written after every pass (default: next to --out)")
    train.add_argument("--resume", metavar="FILE", help="continue the run in this checkpoint up to --epochs passes")
    train.add_argument("--log-json", metavar="FILE", help="append one JSON line per pass to FILE")
    train.add_argument("--quiet", action="store_true", help="print only the test error")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="error rate, per-class accuracy and confusion matrix")
    evaluate.add_argument("model", metavar="MODEL")
    _add_data_options(evaluate)
    evaluate.add_argument("--threads", type=_threads)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser("predict", help="recognise the digit in image files (PNG, PGM)")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("files", metavar="FILE", nargs="+")
    predict.add_argument("--threads", type=_threads)
    predict.set_defaults(run=_predict)

    summary = commands.add_parser("summary", help="print the per-layer table of the network")
    summary.add_argument("--variant", choices=VARIANTS, default="paper")
    summary.set_defaults(run=_summary)
    config = commands.add_parser("config", help="print version, OpenMP, threads, SIMD and build flags")
    config.set_defaults(run=_config)

    bench = commands.add_parser("bench", help="speed and memory against PyTorch (CPU), same run",
                                description="Training and inference throughput, single-image latency, the "
                                            "fraction of this CPU's FMA peak, and the peak memory of a "
                                            "60,000-image training epoch, of lenet_fast and, when importable, "
                                            "PyTorch (CPU) on the same work, interleaved; medians of "
                                            "repetitions.")
    bench.add_argument("--repeats", type=int, default=5, help="timed repetitions per case (default 5)")
    bench.add_argument("--quick", action="store_true", help="tiny sizes and at most 2 repetitions (for tests)")
    bench.add_argument("--threads", default="1,2", metavar="LIST",
                       help="comma-separated thread counts to measure (default 1,2)")
    bench.add_argument("--no-torch", action="store_true", help="measure lenet_fast alone")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    bench.set_defaults(run=_bench)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:          # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except (UserError, OSError, ValueError, TypeError) as exc:
        print(f"lenet-fast: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:        # outside training (which handles it itself): nothing to save
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
