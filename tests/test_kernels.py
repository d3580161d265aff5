"""Every compiled kernel (through lenet_fast.ops) against the NumPy reference.

Grid: float32/float64 x 1/2 threads x batch 1, 3, 8; the C3 table on and off. float64 must agree to
~1e-10 relative, float32 to ~1e-4.
"""
import numpy as np
import pytest

from lenet_fast.nn import layer_kernels as ops
from lenet_fast.nn import reference as ref
from lenet_fast._testing import assert_close
from lenet_fast.nn.constants import C3_TABLE, RBF_CENTERS

DTYPES = [np.float32, np.float64]
THREADS = [1, 2]
BATCHES = [1, 3, 8]
grid = pytest.mark.parametrize("dtype", DTYPES)
threads = pytest.mark.parametrize("n_threads", THREADS)
batches = pytest.mark.parametrize("n", BATCHES)


def _rand(rng, shape, dtype, scale=1.0):
    return (scale * rng.uniform(-1, 1, size=shape)).astype(dtype)


def _check_all(actual, desired, dtype, names):
    assert len(actual) == len(desired)
    for a, d, name in zip(actual, desired, names):
        assert a.dtype == dtype, name
        assert_close(a, d, dtype, name)


CONV_CASES = {
    # name: (x shape without batch, weight shape, table)
    "c1": ((1, 32, 32), (6, 1, 5, 5), None),
    "c3_table": ((6, 14, 14), (16, 6, 5, 5), C3_TABLE),
    "c3_dense": ((6, 14, 14), (16, 6, 5, 5), None),
    "c5": ((16, 5, 5), (120, 16, 5, 5), None),
    "odd": ((3, 9, 7), (4, 3, 3, 2), None),
}


@grid
@threads
@batches
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d(case, n, n_threads, dtype, rng):
    xs, ws, table = CONV_CASES[case]
    x, w, b = _rand(rng, (n,) + xs, dtype), _rand(rng, ws, dtype, 0.2), _rand(rng, ws[:1], dtype)
    out = ops.conv2d_forward(x, w, b, table, n_threads=n_threads)
    assert_close(out, ref.conv2d_forward(x, w, b, table), dtype, "out")
    dout = _rand(rng, out.shape, dtype)
    grads = ops.conv2d_backward(dout, x, w, table, n_threads=n_threads)
    _check_all(grads, ref.conv2d_backward(dout, x, w, table), dtype, ["dx", "dweight", "dbias"])
    if table is not None:
        assert np.all(grads[1][table.T == 0] == 0), "unconnected C3 pairs must get exactly zero gradient"


@grid
@threads
@batches
@pytest.mark.parametrize("shape", [(6, 28, 28), (16, 10, 10), (2, 4, 6)])
def test_subsample(shape, n, n_threads, dtype, rng):
    x = _rand(rng, (n,) + shape, dtype, 1.7)
    coef, bias = _rand(rng, shape[:1], dtype, 0.6), _rand(rng, shape[:1], dtype)
    out = ops.subsample_forward(x, coef, bias, n_threads=n_threads)
    assert_close(out, ref.subsample_forward(x, coef, bias), dtype, "out")
    dout = _rand(rng, out.shape, dtype)
    _check_all(ops.subsample_backward(dout, x, coef, n_threads=n_threads),
               ref.subsample_backward(dout, x, coef), dtype, ["dx", "dcoef", "dbias"])


@grid
@threads
@batches
@pytest.mark.parametrize("shape", [(6, 28, 28), (16, 10, 10)])
def test_maxpool(shape, n, n_threads, dtype, rng):
    x = _rand(rng, (n,) + shape, dtype, 1.7)
    x[..., ::3, ::2] = 0.5   # ties: the gradient goes to the first maximal element
    out = ops.maxpool_forward(x, n_threads=n_threads)
    assert_close(out, ref.maxpool_forward(x), dtype, "out")
    dout = _rand(rng, out.shape, dtype)
    dx = ops.maxpool_backward(dout, x, out, n_threads=n_threads)
    assert_close(dx, ref.maxpool_backward(dout, x, out), dtype, "dx")


@grid
@threads
@batches
@pytest.mark.parametrize("features", [(400, 120), (120, 84), (84, 10), (7, 3)])
def test_dense(features, n, n_threads, dtype, rng):
    f, k = features
    x, w, b = _rand(rng, (n, f), dtype), _rand(rng, (k, f), dtype, 0.1), _rand(rng, (k,), dtype)
    out = ops.dense_forward(x, w, b, n_threads=n_threads)
    assert_close(out, ref.dense_forward(x, w, b), dtype, "out")
    dout = _rand(rng, out.shape, dtype)
    _check_all(ops.dense_backward(dout, x, w, n_threads=n_threads), ref.dense_backward(dout, x, w), dtype,
               ["dx", "dweight", "dbias"])


@grid
@threads
@pytest.mark.parametrize("name", ["squash", "relu"])
def test_activations(name, n_threads, dtype, rng):
    a = _rand(rng, (8, 6, 28, 28), dtype, 3.0)
    y = getattr(ops, f"{name}_forward")(a, n_threads=n_threads)
    assert_close(y, getattr(ref, f"{name}_forward")(a), dtype, "y")
    dy = _rand(rng, y.shape, dtype)
    da = getattr(ops, f"{name}_backward")(dy, y, n_threads=n_threads)
    assert_close(da, getattr(ref, f"{name}_backward")(dy, y), dtype, "da")


@grid
@threads
@batches
def test_rbf(n, n_threads, dtype, rng):
    x, centers = _rand(rng, (n, 84), dtype, 1.7), RBF_CENTERS.astype(dtype)
    out = ops.rbf_forward(x, centers, n_threads=n_threads)
    assert_close(out, ref.rbf_forward(x, centers), dtype, "out")
    dout = _rand(rng, out.shape, dtype)
    assert_close(ops.rbf_backward(dout, x, centers, n_threads=n_threads), ref.rbf_backward(dout, x, centers),
                 dtype, "dx")


LOSSES = [("mse", ()), ("map", (1.0,)), ("map", (0.25,)), ("cross_entropy", ())]


@grid
@threads
@batches
@pytest.mark.parametrize("loss,extra", LOSSES)
def test_losses(loss, extra, n, n_threads, dtype, rng):
    scores = rng.uniform(0, 60, size=(n, 10)).astype(dtype)
    labels = rng.integers(0, 10, size=n)
    values = getattr(ops, f"{loss}_loss")(scores, labels, *extra, n_threads=n_threads)
    assert_close(values, getattr(ref, f"{loss}_loss")(scores, labels, *extra), dtype, "loss")
    grad = getattr(ops, f"{loss}_loss_backward")(scores, labels, *extra, n_threads=n_threads)
    assert_close(grad, getattr(ref, f"{loss}_loss_backward")(scores, labels, *extra), dtype, "dscores")


def test_map_loss_is_stable_for_large_penalties():
    scores = np.full((2, 10), 1e4)
    scores[0, 3] = 2e4
    labels = np.array([3, 0])
    values = ops.map_loss(scores, labels, 1.0)
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, ref.map_loss(scores, labels, 1.0), rtol=1e-12)
    assert np.all(np.isfinite(ops.map_loss_backward(scores, labels, 1.0)))
