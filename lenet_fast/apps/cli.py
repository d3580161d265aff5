"""The ``lenet-fast`` command line (also ``python -m lenet_fast``).

User mistakes (a missing file, a bad option, a file of the wrong format) end with one line on stderr
and exit status 1 (2 for command-line syntax, from argparse); Ctrl-C during training writes the
checkpoint and exits 130.

This module holds the parser and `main`; what the commands do is in train_command.py (train) and
commands.py (the others).
"""
import argparse
import sys

from .._config import MAX_THREADS
from ..nn.architecture import DTYPES, VARIANTS
from .commands import UserError, run_bench, run_config, run_evaluate, run_export, run_predict, run_summary
from .cluster import add_scheduler_option
from .reproduce import run_reproduce
from .score import add_parser as _add_score
from .serve import add_parser as _add_serve
from .show import add_parser as _add_show
from .sweep import add_parser as _add_sweep
from .train_command import run_train


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


# --- the parser -------------------------------------------------------------------------------------

def build_parser():
    parser = argparse.ArgumentParser(prog="lenet-fast",
                                     description="LeNet-5 exactly as LeCun et al. (1998), fast on CPUs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_reproduce(commands)
    _add_sweep(commands)
    _add_evaluate_and_predict(commands)
    _add_score(commands)
    _add_export(commands)
    _add_summary_and_config(commands)
    _add_bench(commands)
    _add_show(commands)
    _add_serve(commands)
    return parser


def _add_train(commands):
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
    train.add_argument("--recipe", choices=("default", "paper"), default="default",
                       help="default: the paper's SDLM schedule at half its eta, mu 0.02, 20 passes (60 with "
                            "--distortions); "
                            "paper: exactly the paper's, 20 passes also with distortions (see README)")
    train.add_argument("--init", choices=("paper", "paper_sqrt", "pytorch"),
                       help="initial weights: paper = +-2.4/F_i as Appendix A reads, paper_sqrt = +-2.4/sqrt(F_i) "
                            "(the paper variant's default, see README), pytorch (the modern variant's default)")
    train.add_argument("--epochs", type=int,
                       help="total passes over the training data (default: the recipe's, see --recipe)")
    train.add_argument("--batch-size", type=int, help="default: 1 for sdlm, 64 for sgd")
    train.add_argument("--learning-rate", type=float,
                       help="sgd: the learning rate; sdlm: the eta of the first passes (the paper's schedule "
                            "is scaled to it; default: the recipe's, 2.5e-4, or the paper's 5e-4 with "
                            "--recipe paper)")
    train.add_argument("--threads", type=_threads, help="OpenMP threads (default: all cores)")
    train.add_argument("--distortions", action="store_true", help="random affine distortions of every sample")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--val-split", type=float,
                       help="fraction of the training images held out for per-pass validation (default 0)")
    train.add_argument("--test-split", type=float,
                       help="without t10k files: the fraction held out as the test set (default 0.2)")
    train.add_argument("--out", metavar="FILE",
                       help="where to save the model (default lenet5.npz; with --resume, the run's own)")
    train.add_argument("--checkpoint", metavar="FILE",
                       help="checkpoint written after every pass (default: next to --out)")
    train.add_argument("--resume", metavar="FILE",
                       help="continue the run in this checkpoint (its data, --out and passes unless given)")
    train.add_argument("--log-json", metavar="FILE", help="append one JSON line per pass to FILE")
    train.add_argument("--quiet", action="store_true", help="print only the test error")
    train.set_defaults(run=run_train)


def _add_reproduce(commands):
    reproduce = commands.add_parser(
        "reproduce", help="the paper's experiment over several seeds, beside the paper's figures",
        description="Train the paper's recipe once per seed, score the test set after every pass (the curves "
                    "of Fig. 5), and print the mean and spread of the test error beside the paper's 0.95% "
                    "(0.8% with distortions) and training error 0.35% (those are for the full MNIST: "
                    "--dataset mnist).")
    _add_data_options(reproduce)
    reproduce.add_argument("--seeds", default="3", metavar="K|LIST",
                           help="K: seeds 0..K-1; or a comma-separated list of seeds (default 3)")
    reproduce.add_argument("--recipe", choices=("paper", "default"), default="paper",
                           help="paper (the default here): the paper's 20 passes, also with distortions; "
                                "default: lenet-fast train's (60 passes with distortions)")
    reproduce.add_argument("--epochs", type=int, help="passes per run (default: the recipe's)")
    reproduce.add_argument("--distortions", action="store_true", help="random affine distortions of every sample")
    reproduce.add_argument("--test-split", type=float, default=0.2,
                           help="without t10k files: the fraction held out as the test set, the same for "
                                "every seed (default 0.2)")
    reproduce.add_argument("--threads", type=_threads, help="OpenMP threads (default: all cores; 1 per run with "
                                                            "--scheduler)")
    add_scheduler_option(reproduce, default=None, what="the seeds' training runs")
    reproduce.add_argument("--json", metavar="FILE", help="write the runs, their mean and spread and the paper's "
                                                          "figures as JSON (errors as fractions)")
    reproduce.add_argument("--plot", metavar="FILE", help="a PNG of the per-pass curves (needs matplotlib)")
    reproduce.set_defaults(run=run_reproduce)


def _add_evaluate_and_predict(commands):
    evaluate = commands.add_parser("evaluate", help="error rate, per-class accuracy and confusion matrix")
    evaluate.add_argument("model", metavar="MODEL")
    _add_data_options(evaluate)
    evaluate.add_argument("--test-split", type=float, default=0.2,
                          help="without t10k files: score the fraction that train held out as its test set, "
                               "with train's --test-split and --seed (default 0.2; 0: all the training files)")
    evaluate.add_argument("--seed", type=int, default=0, help="the --seed the model was trained with (default 0)")
    evaluate.add_argument("--threads", type=_threads)
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="recognise the digit in picture files (JPEG, PNG, BMP, TIFF, WebP, "
                                                  "PGM, ...)")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("files", metavar="FILE", nargs="+")
    predict.add_argument("--threads", type=_threads)
    predict.set_defaults(run=run_predict)


def _add_export(commands):
    export = commands.add_parser("export", help="write the model as an ONNX graph (needs lenet_fast[onnx])",
                                 description="Write a model as an ONNX graph of standard operators (opset 17): "
                                             "input 'input' float32 (N, 1, 32, 32) preprocessed as "
                                             "lenet_fast.preprocess does, output 'penalties' (paper) or "
                                             "'logits' (modern) float32 (N, 10).")
    export.add_argument("model", metavar="MODEL")
    export.add_argument("--onnx", metavar="FILE", required=True, help="the ONNX file to write")
    export.add_argument("--raw-digits", action="store_true",
                        help="the graph's input is 'digits', uint8 (N, 28, 28) MNIST-style images (0 = "
                             "background, 255 = ink), preprocessed in the graph")
    export.set_defaults(run=run_export)


def _add_summary_and_config(commands):
    summary = commands.add_parser("summary", help="print the per-layer table of the network")
    summary.add_argument("--variant", choices=VARIANTS, default="paper")
    summary.set_defaults(run=run_summary)

    config = commands.add_parser("config", help="print version, OpenMP, threads, SIMD and build flags")
    config.set_defaults(run=run_config)


def _add_bench(commands):
    bench = commands.add_parser("bench", help="speed and memory against PyTorch, JAX, ONNX Runtime (CPU), same run",
                                description="Training and inference throughput, single-image latency, the "
                                            "fraction of this CPU's FMA peak, and the peak memory of a "
                                            "60,000-image training epoch, of lenet_fast and of its peers that "
                                            "are installed (PyTorch eager and torch.compile, JAX, ONNX Runtime; "
                                            "pip install 'lenet_fast[bench]') on the same work, interleaved; "
                                            "medians of repetitions; the best peer and lenet_fast's ratio to it "
                                            "per measure.")
    bench.add_argument("--repeats", type=int, default=5, help="timed repetitions per case (default 5)")
    bench.add_argument("--quick", action="store_true", help="tiny sizes and at most 2 repetitions (for tests)")
    bench.add_argument("--threads", default="1,2", metavar="LIST",
                       help="comma-separated thread counts to measure (default 1,2)")
    bench.add_argument("--peers", metavar="LIST",
                       help="comma-separated peers to measure, 'all' or 'none' (default: every installed one): "
                            "torch, torch-compile, torch-compile-step, jax, jax-scan, onnxruntime")
    bench.add_argument("--no-torch", action="store_true", help="measure lenet_fast alone (as --peers none)")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    bench.set_defaults(run=run_bench)


def _add_data_options(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", choices=("mnist", "fashion-mnist", "sample"),
                       help="a known dataset (found locally or downloaded; sample = the 5,000 embedded MNIST "
                            "digits, the default when no --data is given)")
    group.add_argument("--data", metavar="DIR",
                       help="a directory of IDX files: train-*, and t10k-* when present")


def _threads(text):
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0")
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_THREADS}, lenet_fast's thread limit (4 per CPU, "
                                         "at least 64; set LENET_FAST_MAX_THREADS to change it)")
    return value


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
