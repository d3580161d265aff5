"""Random planar affine distortions of the input, for the paper's "0.8% with distortions" (Sec. III-B).

LeNet-5 reached 0.8% test error when trained on the 60,000 MNIST originals plus 540,000 distorted
instances: random combinations of horizontal and vertical translation, scaling, squeezing (horizontal
compression with vertical elongation, or the reverse) and horizontal shearing. Fig. 7 of the paper
shows examples; the ranges are not given (LENET5_SPEC §9, §11.6). The defaults of `Distortions`:

==============  ============  =============================================================
argument        default       forward map of the digit (centred coordinates, y points down)
==============  ============  =============================================================
translate       2.0           x += tx, y += ty with tx, ty uniform in [-2, 2] pixels
scale           (0.9, 1.1)    x, y *= s, s uniform in the range (isotropic)
squeeze         (0.85, 1.15)  x *= q, y /= q, q uniform (q < 1: narrower and taller)
shear           0.15          x += h * y, h uniform in [-0.15, 0.15] (a slant of up to 8.5°)
keep_original   0.1           fraction of samples left undistorted (identity map)
==============  ============  =============================================================

Why: an MNIST digit fits a 20x20 box centred (by its centre of mass) in 28x28, padded to 32x32, so it
has about 6 background pixels on each side. The largest scale and squeeze (1.1 x 1.15) make a 20 px
tall digit ~25 px tall, and with 2 px of translation it nearly always stays inside the 32x32 frame: on
the embedded 5,000-digit sample, 1 distorted digit in 300 loses more than 1% of its ink to the frame
(at most 5%). The changes are of the size of those in Fig. 7 and the digits stay readable
(docs/distortions.png, drawn by tools/distortion_grid.py). keep_original=0.1 mirrors the paper's
60,000 originals among its 600,000 training patterns.

The parameters compose as shear, then squeeze, then scale, about the image centre, then translation:
``p' = A p + t`` with ``A = s [[q, 0], [0, 1/q]] [[1, h], [0, 1]]``. The warp kernel
(`affine_warp`) takes the inverse maps ``[A^-1 | -A^-1 t]`` and samples bilinearly,
with the input's background level (-0.1) outside the image.
"""
import dataclasses
import math
import numbers
import operator

import numpy as np

from .._checks import finite_number
from .._config import effective_n_threads
from .._isa import load
from ..nn._arrays import as_input, check_shape, dtype_of, output_buffer
from ..nn.constants import INPUT_BACKGROUND

_distort = load("lenet_fast.train._distort")


def affine_matrices(translate_x, translate_y, scale, squeeze, shear):
    """The (..., 2, 3) inverse maps for `affine_warp` of distortions given by parameter arrays
    (broadcast together; scalars give one (2, 3) map).

    The digit is sheared (x += shear * y), squeezed (x *= squeeze, y /= squeeze), scaled by `scale`
    about the image centre and moved by (translate_x, translate_y) pixels (right, down).
    """
    tx, ty, s, q, h = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                            for a in (translate_x, translate_y, scale, squeeze, shear)))
    m = np.empty(tx.shape + (2, 3))
    # [A^-1 | -A^-1 t] with A^-1 = (1/s) [[1/q, -q h], [0, q]]
    m[..., 0, 0] = 1.0 / (s * q)
    m[..., 0, 1] = -q * h / s
    m[..., 1, 0] = 0.0
    m[..., 1, 1] = q / s
    m[..., 0, 2] = -(m[..., 0, 0] * tx + m[..., 0, 1] * ty)
    m[..., 1, 2] = -m[..., 1, 1] * ty
    return m


def _range(name, value):
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, numbers.Real) for v in value)):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    low, high = map(float, value)
    if not 0.0 < low <= high < math.inf:
        raise ValueError(f"{name} must be a pair (low, high) with 0 < low <= high < inf, got {value!r}")
    return low, high


@dataclasses.dataclass(frozen=True)
class Distortions:
    """Random affine distortions with the ranges of the module docstring (all drawn uniformly).

    ``translate`` (pixels) and ``shear`` are symmetric bounds >= 0; ``scale`` and ``squeeze`` are
    factor ranges (low, high) with 0 < low <= high; ``keep_original`` in [0, 1] is the probability that
    a sample is left as it is. Zero bounds and (1, 1) ranges switch a component off. Bad values raise a
    ValueError naming the argument.
    """
    translate: float = 2.0
    scale: tuple = (0.9, 1.1)
    squeeze: tuple = (0.85, 1.15)
    shear: float = 0.15
    keep_original: float = 0.1

    def __post_init__(self):
        for name, value in [("translate", finite_number("translate", self.translate, at_least=0)),
                            ("scale", _range("scale", self.scale)),
                            ("squeeze", _range("squeeze", self.squeeze)),
                            ("shear", finite_number("shear", self.shear, at_least=0)),
                            ("keep_original", finite_number("keep_original", self.keep_original,
                                                            at_least=0, at_most=1))]:
            object.__setattr__(self, name, value)

    def matrices(self, rng, n):
        """Draw n distortions with the numpy Generator `rng`: (n, 2, 3) inverse maps for `affine_warp`.

        The draws are made in a fixed order for all n samples (undistorted ones included), so the same
        generator state always gives the same matrices.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                            f"got {rng!r}")
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        tx, ty = rng.uniform(-self.translate, self.translate, size=(2, n))
        scale = rng.uniform(*self.scale, size=n)
        squeeze = rng.uniform(*self.squeeze, size=n)
        shear = rng.uniform(-self.shear, self.shear, size=n)
        keep = rng.random(n) < self.keep_original
        m = affine_matrices(tx, ty, scale, squeeze, shear)
        m[keep] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
        return m

    def config(self):
        """The constructor arguments as a JSON-friendly dict: ``Distortions(**d.config()) == d``."""
        return dataclasses.asdict(self)

    def apply(self, x, rng, *, out=None, n_threads=None):
        """Distorted copies of network input x (N, 1, 32, 32), float32 or float64 (see `matrices`).

        ``out`` may be x itself (distort in place). The result depends only on x and the state of
        `rng`, not on `n_threads`; undistorted samples are exact copies.
        """
        x = np.asarray(x)
        if out is not None and np.may_share_memory(out, x):
            x = x.copy()                            # the warp must not read what it writes
        n = x.shape[0] if x.ndim == 4 else 0        # any other shape is rejected by affine_warp
        return affine_warp(x, self.matrices(rng, n), background=INPUT_BACKGROUND, out=out,
                               n_threads=n_threads)


def affine_warp(x, matrices, *, background=INPUT_BACKGROUND, out=None, n_threads=None):
    """Warp each input plane x[n] (N, 1, 32, 32) by the inverse affine map ``matrices[n]`` (N, 2, 3).

    Output pixel (row i, column j), at centred coordinates (u, v) = (j - 15.5, i - 15.5), takes the
    bilinear interpolation of x at (xs, ys) = matrices[n] @ (u, v, 1) (column xs + 15.5, row ys + 15.5);
    pixels outside the image read `background`. ``out`` must not overlap ``x``.
    """
    dtype = dtype_of(x, "x")
    x = as_input(x, "x", dtype, 4)
    check_shape(x, "x", (x.shape[0], 1, 32, 32))
    matrices = np.asarray(matrices)
    if not (np.issubdtype(matrices.dtype, np.floating) or np.issubdtype(matrices.dtype, np.integer)):
        raise TypeError(f"matrices must be a real float or integer array, got dtype {matrices.dtype}")
    matrices = np.ascontiguousarray(matrices, dtype=np.float64)
    check_shape(matrices, "matrices", (x.shape[0], 2, 3))
    if not np.isfinite(matrices).all():
        raise ValueError("matrices must be finite (no NaN or inf)")
    background = finite_number("background", background)
    out = output_buffer(out, "out", x.shape, dtype)
    if np.may_share_memory(out, x):
        raise ValueError("out must not overlap x (the warp reads x while writing out)")
    _distort.affine_warp(out, x, matrices, background, effective_n_threads(n_threads))
    return out
