"""The per-layer kernels (src/kernels/layers/): one layer of any batch per call, the one place that calls them.

They serve the model's per-layer path (its loss, gradients and SDLM's second-derivative pass) and are
the tested building blocks of the fused kernels (``network_kernels``). Every function has the name and
signature of its twin in ``lenet_fast.nn.reference`` plus keyword-only
``out``/gradient buffers and ``n_threads``. It checks dtypes, shapes and contiguity (the kernels trust
their callers and run without the GIL), allocates outputs that were not given, and calls the kernel.

* float32 and float64 are supported; all float arguments of a call must share one dtype.
* Forward functions overwrite ``out``. Backward functions return ``(dx, dparam, ...)``: ``dx`` is
  overwritten, parameter gradients are *accumulated* into the given arrays (fresh zeros when not given).
* ``squared=True`` makes a backward function the second-derivative pass of SDLM (see ``reference``).
"""
import numpy as np

from .._config import effective_n_threads
from .._isa import load
from ._arrays import as_input, check_shape, connection_table, dtype_of, grad_buffer, output_buffer

_activation, _conv, _dense, _output, _pool = (load(f"lenet_fast.nn.{name}")
                                              for name in ("_activation", "_conv", "_dense", "_output", "_pool"))
LOSS_KINDS = _output.LOSS_KINDS

# --- convolution ------------------------------------------------------------------------------------

def _conv_args(x, weight, table, dtype):
    x = as_input(x, "x", dtype, 4)
    weight = as_input(weight, "weight", dtype, 4)
    n, c, h, w = x.shape
    k, wc, kh, kw = weight.shape
    if wc != c:
        raise ValueError(f"weight has {wc} input channels but x has {c} (x shape {x.shape})")
    if min(c, k, kh, kw) < 1 or kh > h or kw > w:
        raise ValueError(f"kernel {kh}x{kw} does not fit the {h}x{w} input")
    return x, weight, connection_table(table, c, k), (n, k, h - kh + 1, w - kw + 1)


def conv2d_forward(x, weight, bias, table=None, *, out=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, weight, table, out_shape = _conv_args(x, weight, table, dtype)
    bias = as_input(bias, "bias", dtype, 1)
    check_shape(bias, "bias", (weight.shape[0],))
    out = output_buffer(out, "out", out_shape, dtype)
    _conv.conv2d_forward(out, x, weight, bias, table, effective_n_threads(n_threads))
    return out


def conv2d_backward(dout, x, weight, table=None, squared=False, *, dx=None, dweight=None, dbias=None,
                    n_threads=None):
    dtype = dtype_of(x, "x")
    x, weight, table, out_shape = _conv_args(x, weight, table, dtype)
    dout = as_input(dout, "dout", dtype, 4)
    check_shape(dout, "dout", out_shape)
    dx = output_buffer(dx, "dx", x.shape, dtype)
    dweight = grad_buffer(dweight, "dweight", weight.shape, dtype)
    dbias = grad_buffer(dbias, "dbias", (weight.shape[0],), dtype)
    n_threads = effective_n_threads(n_threads)
    scratch = np.empty((n_threads, weight.size + weight.shape[0]), dtype=dtype)
    _conv.conv2d_backward(dx, dweight, dbias, scratch, dout, x, weight, table, n_threads, bool(squared))
    return dx, dweight, dbias


# --- pooling ----------------------------------------------------------------------------------------

def _pool_input(x, dtype):
    x = as_input(x, "x", dtype, 4)
    n, c, h, w = x.shape
    if h % 2 or w % 2 or min(c, h, w) < 1:
        raise ValueError(f"2x2 pooling needs non-empty maps of even height and width, got x shape {x.shape}")
    return x, (n, c, h // 2, w // 2)


def _per_map(a, name, dtype, n_maps):
    a = as_input(a, name, dtype, 1)
    check_shape(a, name, (n_maps,))
    return a


def subsample_forward(x, coef, bias, *, out=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    coef = _per_map(coef, "coef", dtype, x.shape[1])
    bias = _per_map(bias, "bias", dtype, x.shape[1])
    out = output_buffer(out, "out", out_shape, dtype)
    _pool.subsample_forward(out, x, coef, bias, effective_n_threads(n_threads))
    return out


def subsample_backward(dout, x, coef, squared=False, *, dx=None, dcoef=None, dbias=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    coef = _per_map(coef, "coef", dtype, x.shape[1])
    dout = as_input(dout, "dout", dtype, 4)
    check_shape(dout, "dout", out_shape)
    dx = output_buffer(dx, "dx", x.shape, dtype)
    dcoef = grad_buffer(dcoef, "dcoef", coef.shape, dtype)
    dbias = grad_buffer(dbias, "dbias", coef.shape, dtype)
    n_threads = effective_n_threads(n_threads)
    scratch = np.empty((n_threads, 2 * x.shape[1]), dtype=dtype)
    _pool.subsample_backward(dx, dcoef, dbias, scratch, dout, x, coef, n_threads, bool(squared))
    return dx, dcoef, dbias


def maxpool_forward(x, *, out=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    out = output_buffer(out, "out", out_shape, dtype)
    _pool.maxpool_forward(out, x, effective_n_threads(n_threads))
    return out


def maxpool_backward(dout, x, out, *, dx=None, n_threads=None):
    """``out`` (the forward result) is accepted for symmetry with the reference; the kernel recomputes
    the argmax from ``x`` so that nothing but activations is stored."""
    dtype = dtype_of(x, "x")
    x, out_shape = _pool_input(x, dtype)
    dout = as_input(dout, "dout", dtype, 4)
    check_shape(dout, "dout", out_shape)
    dx = output_buffer(dx, "dx", x.shape, dtype)
    _pool.maxpool_backward(dx, dout, x, effective_n_threads(n_threads))
    return dx


# --- fully connected --------------------------------------------------------------------------------

def _dense_args(x, weight, dtype):
    x = as_input(x, "x", dtype, 2)
    weight = as_input(weight, "weight", dtype, 2)
    if weight.shape[1] != x.shape[1] or min(weight.shape) < 1:
        raise ValueError(f"weight shape {weight.shape} does not match x with {x.shape[1]} features")
    return x, weight


def dense_forward(x, weight, bias, *, out=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, weight = _dense_args(x, weight, dtype)
    bias = _per_map(bias, "bias", dtype, weight.shape[0])
    out = output_buffer(out, "out", (x.shape[0], weight.shape[0]), dtype)
    _dense.dense_forward(out, x, weight, bias, effective_n_threads(n_threads))
    return out


def dense_backward(dout, x, weight, squared=False, *, dx=None, dweight=None, dbias=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, weight = _dense_args(x, weight, dtype)
    dout = as_input(dout, "dout", dtype, 2)
    check_shape(dout, "dout", (x.shape[0], weight.shape[0]))
    dx = output_buffer(dx, "dx", x.shape, dtype)
    dweight = grad_buffer(dweight, "dweight", weight.shape, dtype)
    dbias = grad_buffer(dbias, "dbias", (weight.shape[0],), dtype)
    n_threads = effective_n_threads(n_threads)
    scratch = np.empty((n_threads, weight.size + weight.shape[0]), dtype=dtype)
    _dense.dense_backward(dx, dweight, dbias, scratch, dout, x, weight, n_threads, bool(squared))
    return dx, dweight, dbias


# --- activations (elementwise; out may be the input itself) -----------------------------------------

def _elementwise(kernel, inputs, out, n_threads, *flags):
    names = [name for name, _ in inputs]
    arrays = [np.asarray(a) for _, a in inputs]
    dtype = dtype_of(arrays[0], names[0])
    for name, a in zip(names, arrays):
        if a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, but the other arguments are {dtype}")
        if a.shape != arrays[0].shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {arrays[0].shape}")
    out = output_buffer(out, "out", arrays[0].shape, dtype)
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    kernel(out.reshape(-1), *flat, effective_n_threads(n_threads), *flags)
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
    x = as_input(x, "x", dtype, 2)
    centers = as_input(centers, "centers", dtype, 2)
    if centers.shape[1] != x.shape[1]:
        raise ValueError(f"centers shape {centers.shape} does not match x with {x.shape[1]} features")
    return x, centers


def rbf_forward(x, centers, *, out=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, centers = _rbf_args(x, centers, dtype)
    out = output_buffer(out, "out", (x.shape[0], centers.shape[0]), dtype)
    _output.rbf_forward(out, x, centers, effective_n_threads(n_threads))
    return out


def rbf_backward(dout, x, centers, *, dx=None, n_threads=None):
    dtype = dtype_of(x, "x")
    x, centers = _rbf_args(x, centers, dtype)
    dout = as_input(dout, "dout", dtype, 2)
    check_shape(dout, "dout", (x.shape[0], centers.shape[0]))
    dx = output_buffer(dx, "dx", x.shape, dtype)
    _output.rbf_backward(dx, dout, x, centers, effective_n_threads(n_threads))
    return dx


def _loss_args(scores, labels):
    dtype = dtype_of(scores, "scores")
    scores = as_input(scores, "scores", dtype, 2)
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
    out = output_buffer(out, "out", (scores.shape[0],), dtype)
    _output.loss_forward(out, scores, labels, LOSS_KINDS[kind], float(j), effective_n_threads(n_threads))
    return out


def _loss_backward(kind, scores, labels, j, out, n_threads):
    dtype, scores, labels = _loss_args(scores, labels)
    out = output_buffer(out, "out", scores.shape, dtype)
    scale = 1.0 / max(scores.shape[0], 1)
    _output.loss_backward(out, scores, labels, LOSS_KINDS[kind], float(j), scale, effective_n_threads(n_threads))
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


