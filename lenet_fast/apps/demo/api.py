"""The demo's one API call, ``POST /api/predict``, as plain functions: request body -> picture, and
what the network did with it -> the answer. No HTTP here (``server.py`` has it).

Request (JSON, at most MAX_BODY bytes), exactly one of:
- ``{"image": [[...28 integers 0..255...] x 28]}``: a 28x28 digit in MNIST's convention (0 = background,
  255 = ink), used as it is;
- ``{"canvas": [[...] x H]}``: a larger picture of one digit, H rows of W integers 0..255 with
  CANVAS_SIDES[0] <= H, W <= CANVAS_SIDES[1], either polarity, which is prepared as MNIST was
  (``lenet_fast.data.images.mnist_style``: cropped to the ink, scaled to 20x20, centred by mass). The
  page sends this: the ink (alpha) channel of its 280x280 drawing pad.

Answer: ``{"digit": d, "penalties": [10 numbers]}`` (paper variant; the digit is the lowest, or
``"scores"`` with the logits of the modern variant, the highest), ``"decision"`` ("argmin" or
"argmax"), ``"picture"``: the 28x28 integers 0..255 the network saw, and ``"maps"``: {"c1", "s2", "c3",
"s4"}: each layer's feature maps as nested lists (maps, rows, columns) of numbers.
A request it cannot answer raises BadRequest with the message for the 400 answer.
"""
import json

import numpy as np

from ...data.images import mnist_style
from ...inspect import MAP_LAYERS

MAX_BODY = 1_000_000             # bytes: a larger body is answered 413
CANVAS_SIDES = (28, 400)         # pixels: the smallest and largest side of a "canvas" picture
DECIMALS = 4                     # of the numbers in the answer


class BadRequest(ValueError):
    """A request the API cannot answer: the message says why (the 400 answer's "error")."""


def picture_from_body(body):
    """The (28, 28) uint8 MNIST-style picture a request body asks about, or BadRequest."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the body is not valid JSON ({exc})") from None
    except RecursionError:               # thousands of nested brackets
        raise BadRequest("the body is not valid JSON (nested too deeply)") from None
    keys = [key for key in ("image", "canvas") if isinstance(request, dict) and key in request]
    if len(keys) != 1:
        raise BadRequest('expected a JSON object with one of "image" (28 rows of 28 integers 0..255, '
                         'MNIST convention: 0 = background) or "canvas" (a larger picture of one digit, '
                         f'{CANVAS_SIDES[0]}..{CANVAS_SIDES[1]} rows and columns of integers 0..255)')
    if keys == ["image"]:
        return _grid(request["image"], "image", 28, 28).astype(np.uint8)
    grid = _grid(request["canvas"], "canvas", *CANVAS_SIDES)
    try:
        return mnist_style(grid)
    except ValueError as exc:            # "no digit found": a blank canvas
        raise BadRequest(f"canvas: {exc}") from None


def _grid(value, name, smallest, largest):
    """A JSON list of rows of integers 0..255 as a 2-D int64 array, its sides in smallest..largest."""
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise BadRequest(f"{name} must be a list of rows, each a list of integers 0..255")
    height, width = len(value), len(value[0]) if value else 0
    if any(len(row) != width for row in value):
        raise BadRequest(f"{name}: the rows must all have the same length")
    if not (smallest <= height <= largest and smallest <= width <= largest):
        size = f"{smallest}x{smallest}" if smallest == largest else f"{smallest}..{largest} on each side"
        raise BadRequest(f"{name} must be {size}, got {height}x{width}")
    if any(type(v) is not int or not 0 <= v <= 255 for row in value for v in row):
        raise BadRequest(f"{name} must hold integers 0..255 only")
    return np.array(value, dtype=np.int64)


def answer(reading, decision):
    """The JSON-ready answer for an ``inspect.Reading`` (``decision``: the model's "argmin"/"argmax")."""
    return {"digit": reading.digit,
            reading.score_name: _numbers(reading.scores),
            "decision": decision,
            "picture": reading.picture.tolist(),
            "maps": {layer: _numbers(reading.activations[layer]) for layer in MAP_LAYERS}}


def _numbers(array):
    return np.round(np.asarray(array, dtype=np.float64), DECIMALS).tolist()
