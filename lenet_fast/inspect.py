"""See inside LeNet-5: the arrays behind ``lenet-fast show``'s pictures and the demo page's panels.

``filters`` gives a convolution layer's kernels; ``read_digit`` (a 28x28 MNIST-style image),
``read_picture`` (a grey picture of any size) and ``read_file`` (a picture file) run one digit through
the network and keep every layer's activations, the ten scores and the decision; ``confusion_matrix``
and ``confident_mistakes`` describe a labelled set; ``training_curves`` reads a ``--log-json`` file.
Everything is NumPy arrays: plotting is ``lenet_fast.apps.figures``'s business.
"""
import json
import os
from typing import NamedTuple

import numpy as np

from .data.images import load_digits, mnist_style

MAP_LAYERS = ("c1", "s2", "c3", "s4")           # layers whose outputs are pictures (maps)
LAYERS = MAP_LAYERS + ("c5", "f6")              # every hidden layer
EPS_QUANTILES = (0, 5, 50, 95, 100)             # the percentiles of a log's "eps" and "h" entries


class Reading(NamedTuple):
    """What the network does with one digit."""
    picture: np.ndarray     # (28, 28) uint8, MNIST convention: the picture the network was given
    activations: dict       # "x" (32, 32) input, "c1" (6, 28, 28) ... "f6" (84,), "output" (10,)
    scores: np.ndarray      # (10,): the RBF penalties (paper; lower is better) or the logits (modern)
    digit: int              # the decision: argmin of the penalties or argmax of the logits
    score_name: str         # "penalties" or "scores"


class Mistakes(NamedTuple):
    """Misclassified samples, most confident first."""
    index: np.ndarray       # positions in the set
    true: np.ndarray        # their labels
    predicted: np.ndarray   # the network's digits
    margin: np.ndarray      # how far the true class was behind the chosen one (penalty or logit units, > 0)


def score_name(net):
    """"penalties" for the paper variant (argmin decides), "scores" for the modern one (logits, argmax)."""
    return "penalties" if net.architecture.decision == "argmin" else "scores"


# --- the weights -------------------------------------------------------------------------------------

def filters(net, layer="c1"):
    """(weights, connected) of convolution layer "c1" or "c3": weights (maps, inputs, 5, 5) as the model
    holds them (float64 copies) and connected (maps, inputs) bool, False where Table I leaves a C3 map
    unconnected to an S2 map (those weights are zero)."""
    if layer not in ("c1", "c3"):
        raise ValueError(f"layer must be 'c1' or 'c3' (the convolutions with 5x5 pictures), got {layer!r}")
    weights = np.array(net.parameters()[f"{layer}.weight"], dtype=np.float64)
    if layer == "c1":
        return weights, np.ones(weights.shape[:2], dtype=bool)
    return weights, np.asarray(net.architecture.c3_table, dtype=bool).T.copy()


def rbf_centers(net):
    """(10, 84) float64: the fixed Fig. 3 bitmaps F6 is compared with (paper), or None (modern)."""
    centers = net.parameters().get("output.centers")
    return None if centers is None else np.array(centers, dtype=np.float64)


# --- one digit ---------------------------------------------------------------------------------------

def read_digit(net, picture):
    """The Reading of one (28, 28) uint8 image in MNIST's convention (0 = background, 255 = ink).

    The activations come from the network's per-layer path (the same values as its fused forward), one
    array per layer without the batch axis. Not thread-safe: serialise calls on one model."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8 or picture.shape != (28, 28):
        raise ValueError(f"picture must be a (28, 28) uint8 image, got {picture.dtype} {picture.shape}")
    batch = net.prepare_input(picture[None])
    activations = {name: np.array(value[0], dtype=np.float64) for name, value in net._forward(batch).items()}
    activations["x"] = activations["x"][0]
    scores = activations["output"]
    return Reading(picture.copy(), activations, scores, int(net.decide(scores[None])[0]), score_name(net))


def read_picture(net, grey):
    """The Reading of a grey picture of one digit of any size and polarity, prepared as MNIST was
    (``lenet_fast.data.images.mnist_style``: cropped to the ink, scaled to 20x20, centred by mass).
    Raises ValueError "no digit found" for a picture without ink."""
    return read_digit(net, mnist_style(grey))


def read_file(net, path):
    """The Reading of a picture file (what ``lenet-fast predict`` reads: any format Pillow reads)."""
    return read_digit(net, load_digits([path])[0])


# --- a labelled set ----------------------------------------------------------------------------------

def confusion_matrix(net, x, y, scores=None):
    """(10, 10) int64 counts: row = true digit, column = the network's digit; it sums to len(y).
    `scores` (net.forward(x)) may be given to avoid computing them again."""
    y = net.prepare_labels(y, len(x))
    scores = net.forward(x) if scores is None else scores
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y, net.decide(scores)), 1)
    return confusion


def confident_mistakes(net, x, y, count=16, scores=None):
    """The `count` misclassified samples the network was surest of: the largest margin between the
    score of its choice and that of the true digit (penalties: true - chosen; logits: chosen - true)."""
    y = net.prepare_labels(y, len(x))
    scores = net.forward(x) if scores is None else scores
    predicted = net.decide(scores)
    wrong = np.flatnonzero(predicted != y)
    rows = np.arange(len(y))
    margin = scores[rows, y] - scores[rows, predicted]
    if net.architecture.decision != "argmin":
        margin = -margin
    order = wrong[np.argsort(-margin[wrong], kind="stable")][:count]
    return Mistakes(order, y[order], predicted[order], np.asarray(margin[order], dtype=np.float64))


# --- a training log ----------------------------------------------------------------------------------

def training_curves(path):
    """The passes of a ``--log-json`` file as arrays: "epoch", "loss", "train_error", "learning_rate",
    "seconds", and "val_loss" / "val_error" when validated (NaN where a pass lacks them); "eps" (and
    "h"): {layer: (passes, 5) array of the min, 5%, 50%, 95% and max} when SDLM logged them, else {};
    "test_error" (a float) when the run's closing line has it.

    Every run appends to the file: when the epochs start again, only the last run is kept.
    Raises ValueError naming the file (and line) for anything that is not such a log."""
    path = os.fspath(path)
    records, end = _last_run(_read_records(path))
    if not records:
        raise ValueError(f"{path}: no training passes in this --log-json file")
    curves = {"epoch": np.array([r["epoch"] for r in records], dtype=np.int64)}
    for key in ("loss", "train_error", "val_loss", "val_error", "learning_rate", "seconds"):
        if any(key in r for r in records):
            curves[key] = np.array([r.get(key, np.nan) for r in records], dtype=np.float64)
    for key in ("eps", "h"):
        layers = [name for name in records[0].get(key, {}) if all(name in r.get(key, {}) for r in records)]
        curves[key] = {name: np.array([r[key][name] for r in records], dtype=np.float64) for name in layers}
    if isinstance(end.get("test_error"), (int, float)):
        curves["test_error"] = float(end["test_error"])
    return curves


def _read_records(path):
    """Every record of a JSON-lines log, in order: the passes and the {"event": ...} lines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"log file not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not JSON ({exc.msg}): not a --log-json file") from None
        if not (isinstance(record, dict) and "event" in record or _is_pass(record)):
            raise ValueError(f"{path}: line {number} is not a training pass record (epoch, loss, "
                             "train_error): not a --log-json file")
        records.append(record)
    return records


def _is_pass(record):
    if not isinstance(record, dict) or type(record.get("epoch")) is not int:
        return False
    numbers = [record.get(key) for key in ("loss", "train_error")]
    if not all(isinstance(record.get(key, {}), dict) for key in ("eps", "h")):
        return False
    ranges = [v for key in ("eps", "h") for v in record.get(key, {}).values()]
    return (all(isinstance(v, (int, float)) for v in numbers)
            and all(isinstance(r, list) and len(r) == len(EPS_QUANTILES) for r in ranges))


def _last_run(records):
    """(the pass records of the file's last run, the "end" record that closed it or {})."""
    passes, end = [], {}
    for record in records:
        if "event" in record:
            end = record if record.get("event") == "end" else end
            continue
        if passes and record["epoch"] <= passes[-1]["epoch"]:
            passes, end = [], {}
        passes.append(record)
    return passes, end


__all__ = ["MAP_LAYERS", "LAYERS", "Reading", "Mistakes", "score_name", "filters", "rbf_centers",
           "read_digit", "read_picture", "read_file", "confusion_matrix", "confident_mistakes",
           "training_curves"]
