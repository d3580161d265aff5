"""What ``lenet-fast show`` does: pictures of what a model learned and does, as PNG files in --out.

- MODEL: the C1 and C3 filters;
- MODEL --image FILE: the picture as the network sees it, the feature maps of C1, S2, C3 and S4, C5
  and F6, and the ten penalties (or scores);
- MODEL --data DIR (or --dataset NAME): the confusion matrix and the most confident mistakes on the test
  set (the t10k files, else the digits train holds out, as ``lenet-fast evaluate`` takes them);
- --log FILE: the training curves of a ``--log-json`` file (and SDLM's step sizes when logged).

The arrays come from ``lenet_fast.inspect``, the drawing from ``figures`` and ``figures_data``.
"""
import os

from .. import inspect
from ..data.images import read_image
from ..model import LeNet5
from . import figures, figures_data
from .commands import UserError, hold_out, load_data

MISTAKES = 16        # pictures in the gallery of mistakes


def run_show(args):
    """Draw what the arguments ask for into args.out and print each file's path."""
    wants_data = bool(args.data or args.dataset)
    if (args.image or wants_data) and not args.model:
        raise UserError("--image and --data need a MODEL")
    if not (args.model or args.log):
        raise UserError("nothing to show: give a MODEL (with --image FILE or --data DIR) or --log FILE")
    try:
        figures.pyplot()
    except ImportError as exc:
        raise UserError(str(exc)) from None
    curves = inspect.training_curves(args.log) if args.log else None    # read every input before drawing
    net = LeNet5.load(args.model) if args.model else None
    picture = (read_image(args.image), inspect.read_file(net, args.image)) if args.image else None
    _make_directory(args.out)
    paths = []
    if net is not None:
        paths += show_filters(net, args.out)
    if picture is not None:
        paths += show_picture(net, *picture, args.out)
    if wants_data:
        paths += show_data(net, args, args.out)
    if curves is not None:
        paths += show_log(curves, args.out)
    for path in paths:
        print(path)
    return 0


def _make_directory(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {path}: exists and is not a directory")
    os.makedirs(path, exist_ok=True)


def _out(directory, name):
    return os.path.join(directory, f"{name}.png")


def show_filters(net, out):
    """c1_filters.png and c3_filters.png (the paper variant's C3 laid out as Table I)."""
    return [figures.c1_filters(net, _out(out, "c1_filters")), figures.c3_filters(net, _out(out, "c3_filters"))]


def show_picture(net, original, reading, out):
    """input.png, c1_maps.png ... s4_maps.png, c5_f6.png and penalties.png (scores.png, modern) for one
    picture file: `original` as read_image read it, `reading` (inspect.read_file) what the network did."""
    paths = [figures.prepared_input(original, reading, _out(out, "input"))]
    paths += [figures.feature_maps(reading, layer, _out(out, f"{layer}_maps")) for layer in inspect.MAP_LAYERS]
    paths.append(figures.dense_layers(net, reading, _out(out, "c5_f6")))
    paths.append(figures.scores(reading, _out(out, reading.score_name)))
    return paths


def show_data(net, args, out):
    """confusion.png and mistakes.png on the test set: the t10k files, else the part of the training files
    that train holds out (--test-split, --seed), as lenet-fast evaluate does."""
    data, _ = load_data(args)
    x, y, which = data.x_test, data.y_test, "test set (t10k files)"
    if x is None:
        _, _, x, y = hold_out(data.x_train, data.y_train, args.test_split, args.seed, "test-split")
        which = f"the {args.test_split:.0%} of the training files train holds out"
        if y is None:
            x, y, which = data.x_train, data.y_train, "training files"
    scores = net.forward(x)
    matrix = inspect.confusion_matrix(net, x, y, scores=scores)
    found = inspect.confident_mistakes(net, x, y, count=MISTAKES, scores=scores)
    title = f"Confusion matrix: {data.name}, {which}"
    return [figures_data.confusion(matrix, title, _out(out, "confusion")),
            figures_data.mistakes(x, found, inspect.score_name(net), _out(out, "mistakes"))]


def show_log(curves, out):
    """curves.png, and eps.png when the log has SDLM's step sizes."""
    paths = [figures_data.curves(curves, _out(out, "curves"))]
    if curves["eps"]:
        paths.append(figures_data.step_sizes(curves, _out(out, "eps")))
    return paths


def add_parser(commands):
    """The ``show`` subcommand's parser (cli.py calls it)."""
    show = commands.add_parser(
        "show", help="pictures of what a model learned and does (PNG files; needs lenet_fast[plot])",
        description="Draw PNG pictures into --out: with MODEL the C1 and C3 filters; with --image the picture "
                    "as the network sees it, the feature maps of every layer and the ten penalties; with "
                    "--data the confusion matrix and the most confident mistakes; with --log the training "
                    "curves of a --log-json file. Needs matplotlib: pip install 'lenet_fast[plot]'.")
    show.add_argument("model", metavar="MODEL", nargs="?", help="a model file (lenet-fast train's --out)")
    show.add_argument("--image", metavar="FILE", help="a picture of one digit (any format Pillow reads)")
    show.add_argument("--data", metavar="DIR", help="a directory of IDX files: its t10k-* files are shown, else "
                                                    "the part of train-* that train holds out")
    show.add_argument("--dataset", choices=("mnist", "fashion-mnist", "sample"), help="a known dataset instead")
    show.add_argument("--test-split", type=float, default=0.2,
                      help="without t10k files: the fraction train held out, with --seed (default 0.2; 0: all)")
    show.add_argument("--seed", type=int, default=0, help="the --seed the model was trained with (default 0)")
    show.add_argument("--log", metavar="FILE", help="a --log-json file of lenet-fast train")
    show.add_argument("--out", metavar="DIR", required=True, help="the directory to write the PNG files to")
    show.set_defaults(run=run_show, quiet=False)
    return show
