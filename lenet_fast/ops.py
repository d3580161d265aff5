"""The functional API over the compiled kernels: the one place that calls them.

Every function has the name and signature of its twin in ``lenet_fast.reference`` plus keyword-only
``out``/gradient buffers and ``n_threads``. It checks dtypes, shapes and contiguity (the kernels trust
their callers and run without the GIL), allocates outputs that were not given, and calls the kernel.

* float32 and float64 are supported; all float arguments of a call must share one dtype.
* Forward functions overwrite ``out``. Backward functions return ``(dx, dparam, ...)``: ``dx`` is
  overwritten, parameter gradients are *accumulated* into the given arrays (fresh zeros when not given).
* ``squared=True`` makes a backward function the second-derivative pass of SDLM (see ``reference``).
"""
import numpy as np

from . import _activation, _conv, _dense, _output, _pool
from ._checks import finite_number, integer
from ._config import effective_n_threads

_FLOATS = (np.float32, np.float64)
_LOSS_KINDS = {"mse": 0, "map": 1, "cross_entropy": 2}


def _dtype_of(x, name):
    x = np.asarray(x)
    if x.dtype.type not in _FLOATS:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {x.dtype}")
    return x.dtype


def _input(a, name, dtype, ndim):
    """A C-contiguous array of `dtype` with `ndim` dimensions (copied only if needed)."""
    a = np.asarray(a)
    if a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, but the other arguments are {dtype}: "
                        f"convert it with .astype(np.{dtype})")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _output_buffer(buf, name, shape, dtype):
    if buf is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(buf, np.ndarray) or buf.shape != tuple(shape) or buf.dtype != dtype:
        raise ValueError(f"{name} must be an ndarray of shape {tuple(shape)} and dtype {dtype}")
    if not (buf.flags.c_contiguous and buf.flags.writeable):
        raise ValueError(f"{name} must be C-contiguous and writeable")
    return buf


def _grad_buffer(buf, name, shape, dtype):
    return np.zeros(shape, dtype=dtype) if buf is None else _output_buffer(buf, name, shape, dtype)


def _check_shape(a, name, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")


def _table(table, n_in, n_out):
    if table is None:
        return np.ones((n_in, n_out), dtype=np.uint8)
    table = np.ascontiguousarray(table, dtype=np.uint8)
    _check_shape(table, "table", (n_in, n_out))
    return table


def _threads(n_threads):
    return effective_n_threads(n_threads)


# --- convolution ------------------------------------------------------------------------------------

def _conv_args(x, weight, table, dtype):
    x = _input(x, "x", dtype, 4)
    weight = _input(weight, "weight", dtype, 4)
    n, c, h, w = x.shape
    k, wc, kh, kw = weight.shape
    if wc != c:
        raise ValueError(f"weight has {wc} input channels but x has {c} (x shape {x.shape})")
    if min(c, k, kh, kw) < 1 or kh > h or kw > w:
        raise ValueError(f"kernel {kh}x{kw} does not fit the {h}x{w} input")
    return x, weight, _table(table, c, k), (n, k, h - kh + 1, w - kw + 1)


def conv2d_forward(x, weight, bias, table=None, *, out=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, weight, table, out_shape = _conv_args(x, weight, table, dtype)
    bias = _input(bias, "bias", dtype, 1)
    _check_shape(bias, "bias", (weight.shape[0],))
    out = _output_buffer(out, "out", out_shape, dtype)
    _conv.conv2d_forward(out, x, weight, bias, table, _threads(n_threads))
    return out


def conv2d_backward(dout, x, weight, table=None, squared=False, *, dx=None, dweight=None, dbias=None,
                    n_threads=None):
    dtype = _dtype_of(x, "x")
    x, weight, table, out_shape = _conv_args(x, weight, table, dtype)
    dout = _input(dout, "dout", dtype, 4)
    _check_shape(dout, "dout", out_shape)
    dx = _output_buffer(dx, "dx", x.shape, dtype)
    dweight = _grad_buffer(dweight, "dweight", weight.shape, dtype)
    dbias = _grad_buffer(dbias, "dbias", (weight.shape[0],), dtype)
    n_threads = _threads(n_threads)
    scratch = np.empty((n_threads, weight.size + weight.shape[0]), dtype=dtype)
    _conv.conv2d_backward(dx, dweight, dbias, scratch, dout, x, weight, table, n_threads, bool(squared))
    return dx, dweight, dbias


# --- pooling ----------------------------------------------------------------------------------------

def _pool_input(x, dtype):
    x = _input(x, "x", dtype, 4)
    n, c, h, w = x.shape
    if h % 2 or w % 2 or min(c, h, w) < 1:
        raise ValueError(f"2x2 pooling needs non-empty maps of even height and width, got x shape {x.shape}")
    return x, (n, c, h // 2, w // 2)


def _per_map(a, name, dtype, n_maps):
    a = _input(a, name, dtype, 1)
    _check_shape(a, name, (n_maps,))
    return a


def subsample_forward(x, coef, bias, *, out=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    coef = _per_map(coef, "coef", dtype, x.shape[1])
    bias = _per_map(bias, "bias", dtype, x.shape[1])
    out = _output_buffer(out, "out", out_shape, dtype)
    _pool.subsample_forward(out, x, coef, bias, _threads(n_threads))
    return out


def subsample_backward(dout, x, coef, squared=False, *, dx=None, dcoef=None, dbias=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    coef = _per_map(coef, "coef", dtype, x.shape[1])
    dout = _input(dout, "dout", dtype, 4)
    _check_shape(dout, "dout", out_shape)
    dx = _output_buffer(dx, "dx", x.shape, dtype)
    dcoef = _grad_buffer(dcoef, "dcoef", coef.shape, dtype)
    dbias = _grad_buffer(dbias, "dbias", coef.shape, dtype)
    n_threads = _threads(n_threads)
    scratch = np.empty((n_threads, 2 * x.shape[1]), dtype=dtype)
    _pool.subsample_backward(dx, dcoef, dbias, scratch, dout, x, coef, n_threads, bool(squared))
    return dx, dcoef, dbias


def maxpool_forward(x, *, out=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    out = _output_buffer(out, "out", out_shape, dtype)
    _pool.maxpool_forward(out, x, _threads(n_threads))
    return out


def maxpool_backward(dout, x, out, *, dx=None, n_threads=None):
    """``out`` (the forward result) is accepted for symmetry with the reference; the kernel recomputes
    the argmax from ``x`` so that nothing but activations is stored."""
    dtype = _dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    dout = _input(dout, "dout", dtype, 4)
    _check_shape(dout, "dout", out_shape)
    dx = _output_buffer(dx, "dx", x.shape, dtype)
    _pool.maxpool_backward(dx, dout, x, _threads(n_threads))
    return dx


# --- fully connected --------------------------------------------------------------------------------

def _dense_args(x, weight, dtype):
    x = _input(x, "x", dtype, 2)
    weight = _input(weight, "weight", dtype, 2)
    if weight.shape[1] != x.shape[1] or min(weight.shape) < 1:
        raise ValueError(f"weight shape {weight.shape} does not match x with {x.shape[1]} features")
    return x, weight


def dense_forward(x, weight, bias, *, out=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, weight = _dense_args(x, weight, dtype)
    bias = _per_map(bias, "bias", dtype, weight.shape[0])
    out = _output_buffer(out, "out", (x.shape[0], weight.shape[0]), dtype)
    _dense.dense_forward(out, x, weight, bias, _threads(n_threads))
    return out


def dense_backward(dout, x, weight, squared=False, *, dx=None, dweight=None, dbias=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, weight = _dense_args(x, weight, dtype)
    dout = _input(dout, "dout", dtype, 2)
    _check_shape(dout, "dout", (x.shape[0], weight.shape[0]))
    dx = _output_buffer(dx, "dx", x.shape, dtype)
    dweight = _grad_buffer(dweight, "dweight", weight.shape, dtype)
    dbias = _grad_buffer(dbias, "dbias", (weight.shape[0],), dtype)
    n_threads = _threads(n_threads)
    scratch = np.empty((n_threads, weight.size + weight.shape[0]), dtype=dtype)
    _dense.dense_backward(dx, dweight, dbias, scratch, dout, x, weight, n_threads, bool(squared))
    return dx, dweight, dbias


# --- activations (elementwise; out may be the input itself) -----------------------------------------

def _elementwise(kernel, inputs, out, n_threads, *flags):
    names = [name for name, _ in inputs]
    arrays = [np.asarray(a) for _, a in inputs]
    dtype = _dtype_of(arrays[0], names[0])
    for name, a in zip(names, arrays):
        if a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, but the other arguments are {dtype}")
        if a.shape != arrays[0].shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {arrays[0].shape}")
    out = _output_buffer(out, "out", arrays[0].shape, dtype)
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    kernel(out.reshape(-1), *flat, _threads(n_threads), *flags)
    return out


def squash_forward(a, *, out=None, n_threads=None):
    return _elementwise(_activation.squash_forward, [("a", a)], out, n_threads)


def squash_backward(dy, y, squared=False, *, out=None, n_threads=None):
    return _elementwise(_activation.squash_backward, [("dy", dy), ("y", y)], out, n_threads, bool(squared))


def relu_forward(a, *, out=None, n_threads=None):
    return _elementwise(_activation.relu_forward, [("a", a)], out, n_threads)


def relu_backward(dy, y, squared=False, *, out=None, n_threads=None):
    # f' is 0 or 1, so the second-derivative pass (f'^2) is the same computation
    return _elementwise(_activation.relu_backward, [("dy", dy), ("y", y)], out, n_threads)


# --- RBF output and losses --------------------------------------------------------------------------

def _rbf_args(x, centers, dtype):
    x = _input(x, "x", dtype, 2)
    centers = _input(centers, "centers", dtype, 2)
    if centers.shape[1] != x.shape[1]:
        raise ValueError(f"centers shape {centers.shape} does not match x with {x.shape[1]} features")
    return x, centers


def rbf_forward(x, centers, *, out=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, centers = _rbf_args(x, centers, dtype)
    out = _output_buffer(out, "out", (x.shape[0], centers.shape[0]), dtype)
    _output.rbf_forward(out, x, centers, _threads(n_threads))
    return out


def rbf_backward(dout, x, centers, *, dx=None, n_threads=None):
    dtype = _dtype_of(x, "x")
    x, centers = _rbf_args(x, centers, dtype)
    dout = _input(dout, "dout", dtype, 2)
    _check_shape(dout, "dout", (x.shape[0], centers.shape[0]))
    dx = _output_buffer(dx, "dx", x.shape, dtype)
    _output.rbf_backward(dx, dout, x, centers, _threads(n_threads))
    return dx


def _loss_args(scores, labels):
    dtype = _dtype_of(scores, "scores")
    scores = _input(scores, "scores", dtype, 2)
    labels = np.asarray(labels)
    if labels.shape != (scores.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {scores.shape[0]} integers, got shape {labels.shape} "
                         f"and dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in 0..{scores.shape[1] - 1}, got values "
                         f"{labels.min()}..{labels.max()}")
    return dtype, scores, np.ascontiguousarray(labels, dtype=np.int64)


def _loss(kind, scores, labels, j, out, n_threads):
    dtype, scores, labels = _loss_args(scores, labels)
    out = _output_buffer(out, "out", (scores.shape[0],), dtype)
    _output.loss_forward(out, scores, labels, _LOSS_KINDS[kind], float(j), _threads(n_threads))
    return out


def _loss_backward(kind, scores, labels, j, out, n_threads):
    dtype, scores, labels = _loss_args(scores, labels)
    out = _output_buffer(out, "out", scores.shape, dtype)
    scale = 1.0 / max(scores.shape[0], 1)
    _output.loss_backward(out, scores, labels, _LOSS_KINDS[kind], float(j), scale, _threads(n_threads))
    return out


def mse_loss(penalties, labels, *, out=None, n_threads=None):
    return _loss("mse", penalties, labels, 0.0, out, n_threads)


def mse_loss_backward(penalties, labels, *, out=None, n_threads=None):
    return _loss_backward("mse", penalties, labels, 0.0, out, n_threads)


def map_loss(penalties, labels, j, *, out=None, n_threads=None):
    return _loss("map", penalties, labels, j, out, n_threads)


def map_loss_backward(penalties, labels, j, *, out=None, n_threads=None):
    return _loss_backward("map", penalties, labels, j, out, n_threads)


def cross_entropy_loss(logits, labels, *, out=None, n_threads=None):
    return _loss("cross_entropy", logits, labels, 0.0, out, n_threads)


def cross_entropy_loss_backward(logits, labels, *, out=None, n_threads=None):
    return _loss_backward("cross_entropy", logits, labels, 0.0, out, n_threads)


# --- affine distortions of the input (lenet_fast.distortions) ---------------------------------------

from . import _distort  # noqa: E402  (kept with its one caller)
from .constants import INPUT_BACKGROUND  # noqa: E402


def affine_warp(x, matrices, *, background=INPUT_BACKGROUND, out=None, n_threads=None):
    """Warp each input plane x[n] (N, 1, 32, 32) by the inverse affine map ``matrices[n]`` (N, 2, 3).

    Output pixel (row i, column j), at centred coordinates (u, v) = (j - 15.5, i - 15.5), takes the
    bilinear interpolation of x at (xs, ys) = matrices[n] @ (u, v, 1) (column xs + 15.5, row ys + 15.5);
    pixels outside the image read `background`. ``out`` must not overlap ``x``.
    """
    dtype = _dtype_of(x, "x")
    x = _input(x, "x", dtype, 4)
    _check_shape(x, "x", (x.shape[0], 1, 32, 32))
    matrices = np.asarray(matrices)
    if not (np.issubdtype(matrices.dtype, np.floating) or np.issubdtype(matrices.dtype, np.integer)):
        raise TypeError(f"matrices must be a real float or integer array, got dtype {matrices.dtype}")
    matrices = np.ascontiguousarray(matrices, dtype=np.float64)
    _check_shape(matrices, "matrices", (x.shape[0], 2, 3))
    if not np.isfinite(matrices).all():
        raise ValueError("matrices must be finite (no NaN or inf)")
    background = finite_number("background", background)
    out = _output_buffer(out, "out", x.shape, dtype)
    if np.may_share_memory(out, x):
        raise ValueError("out must not overlap x (the warp reads x while writing out)")
    _distort.affine_warp(out, x, matrices, background, _threads(n_threads))
    return out


# --- fused training steps (LeNet5._train_steps, lenet_fast.training) ---------------------------------

from . import _train  # noqa: E402  (kept with its one caller)

from .constants import CRITERIA as _CRITERIA  # noqa: E402

_PARAMS_SIZE = {paper: _train.layout(paper)["size"] for paper in (True, False)}
# the float32 and float64 specialisations, picked by dtype here: Cython's own dispatch, which inspects
# every argument's buffer, adds microseconds to each call, which shows in single-image latency
_NETWORK_FORWARD = {np.dtype(np.float32): _train.network_forward["float"],
                    np.dtype(np.float64): _train.network_forward["double"]}


def _integers(a, name, n, high):
    """`a` as n int64 values in 0..high-1 (any integer dtype; n=None: any length)."""
    a = np.asarray(a)
    if a.ndim != 1 or (n is not None and len(a) != n):
        raise ValueError(f"{name} must be a 1-D array of {n if n is not None else 'any number of'} integers, "
                         f"got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= high):
        raise ValueError(f"{name} must lie in 0..{high - 1}, got values {a.min()}..{a.max()}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _network_args(params, variant, table, centers):
    """(paper, params, table, centers) checked for the whole-network kernels."""
    if variant not in _CRITERIA:
        raise ValueError(f"variant must be one of {tuple(_CRITERIA)}, got {variant!r}")
    paper = variant == "paper"
    if not isinstance(params, np.ndarray):
        raise TypeError(f"params must be the model's flat parameter ndarray, got {type(params).__name__}")
    dtype = _dtype_of(params, "params")
    size = _PARAMS_SIZE[paper]
    if params.shape != (size,) or not params.flags.c_contiguous:
        raise ValueError(f"params must be a C-contiguous array of shape ({size},) (the {variant} layout), "
                         f"got shape {params.shape}")
    table = _table(table, 6, 16)
    if paper:
        if centers is None:
            raise ValueError("centers (10, 84) are required for the paper variant")
        centers = _input(centers, "centers", dtype, 2)
        _check_shape(centers, "centers", (10, 84))
    else:
        centers = np.empty((0, 84), dtype)
    return paper, params, table, centers


def network_forward(params, x, *, variant, table, centers=None, out=None, n_threads=None):
    """The whole network's output for x (N, 1, 32, 32) in one compiled call: (N, 10) RBF penalties
    (paper) or logits (modern). params: the model's flat parameter array (layout ``_train.layout``).
    Each sample runs through all layers in a per-thread work row, so nothing of size N is allocated
    but `out`."""
    network = _network_args(params, variant, table, centers)
    x = _input(x, "x", network[1].dtype, 4)
    _check_shape(x, "x", (len(x), 1, 32, 32))
    out = _output_buffer(out, "out", (len(x), 10), network[1].dtype)
    return _network_forward(network, x, out, _threads(n_threads))


def _network_forward(network, x, out, n_threads):
    """network_forward on checked arguments: network = _network_args(...) (a model keeps its own),
    x (N, 1, 32, 32) and out (N, 10) C-contiguous of its dtype, n_threads >= 1."""
    paper, params, table, centers = network
    _NETWORK_FORWARD[params.dtype](params, x, out, table, centers, paper, n_threads)
    return out


def train_steps(params, x, labels, order, step, *, variant, criterion, map_j=1.0, table, centers=None,
                batch_size=1, momentum=0.0, weight_decay=0.0, velocity=None, losses=None, predictions=None,
                n_threads=None):
    """Training steps on the samples x[order], in order, in mini-batches of `batch_size` (the last may be
    shorter), all in one compiled call; returns ``(losses, predictions)``.

    params: the model's flat parameter array (``LeNet5._flat``, layout ``_train.layout``), updated in
    place after each batch, with g the gradient of the batch's mean loss: ``w -= step * (g + weight_decay
    * w)``, or with momentum > 0 ``v = momentum * v + (g + weight_decay * w); w -= step * v`` (``velocity``
    (P,) is then required and updated in place). C3 weights outside `table` are left untouched.
    x (N, 1, 32, 32), labels (N,) in 0..9, order (M,) in 0..N-1, step (P,) per-parameter step sizes.
    losses (M,) float64 and predictions (M,) int64: each presented sample's loss and predicted class,
    from its forward pass before its batch's update. batch_size 1 runs on one thread; larger batches
    spread their samples over `n_threads` (bit-identical results for a given thread count).
    """
    if variant in _CRITERIA and criterion not in _CRITERIA[variant]:
        raise ValueError(f"criterion must be one of {_CRITERIA[variant]} for the {variant} variant, got {criterion!r}")
    paper, params, table, centers = _network_args(params, variant, table, centers)
    if not params.flags.writeable:
        raise ValueError("params must be writeable: the training steps update it in place")
    dtype = params.dtype
    size = params.size
    x = _input(x, "x", dtype, 4)
    _check_shape(x, "x", (len(x), 1, 32, 32))
    labels = _integers(labels, "labels", len(x), 10)
    order = _integers(order, "order", None, len(x))
    step = _input(step, "step", dtype, 1)
    _check_shape(step, "step", (size,))
    batch_size = integer("batch_size", batch_size, at_least=1)
    map_j = finite_number("map_j", map_j, above=0)
    momentum = finite_number("momentum", momentum, at_least=0)
    weight_decay = finite_number("weight_decay", weight_decay, at_least=0)
    if momentum > 0:
        if velocity is None:
            raise ValueError("velocity (the momentum buffer, shape of params) is required when momentum > 0")
        velocity = _output_buffer(velocity, "velocity", (size,), dtype)
        if np.may_share_memory(velocity, params) or np.may_share_memory(velocity, step):
            raise ValueError("velocity must not overlap params or step")
    else:
        velocity = np.empty(0, dtype)
    losses = _output_buffer(losses, "losses", order.shape, np.float64)
    predictions = _output_buffer(predictions, "predictions", order.shape, np.int64)
    _train.train_steps(params, velocity, step, x, labels, order, losses, predictions, table, centers, paper,
                       _LOSS_KINDS[criterion], map_j, batch_size, momentum, weight_decay, _threads(n_threads))
    return losses, predictions
