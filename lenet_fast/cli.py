"""The ``lenet-fast`` command line (also ``python -m lenet_fast``)."""
import argparse
import sys

from . import LeNet5, show_config
from .model import VARIANTS


def _summary(args):
    print(LeNet5(args.variant).summary())


def _config(args):
    show_config()


def build_parser():
    parser = argparse.ArgumentParser(prog="lenet-fast",
                                     description="LeNet-5 exactly as LeCun et al. (1998), fast on CPUs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    summary = commands.add_parser("summary", help="print the per-layer table of the network")
    summary.add_argument("--variant", choices=VARIANTS, default="paper")
    summary.set_defaults(run=_summary)
    config = commands.add_parser("config", help="print version, OpenMP, threads, SIMD and build flags")
    config.set_defaults(run=_config)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except BrokenPipeError:          # output piped into `head` and the like
        sys.stderr.close()
    return 0


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
