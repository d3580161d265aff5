"""The rules every ops function keeps: inputs untouched, `out` written in place, parameter gradients
accumulated, clear errors for mismatched arguments, determinism for a fixed thread count."""
import numpy as np
import pytest

from lenet_fast.nn import layer_kernels as ops
from lenet_fast.nn.constants import C3_TABLE


def _conv_args(rng, n=4, dtype=np.float64):
    x = rng.standard_normal((n, 6, 14, 14)).astype(dtype)
    w = (0.1 * rng.standard_normal((16, 6, 5, 5))).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    return x, w, b


def test_inputs_are_not_modified(rng):
    x, w, b = _conv_args(rng)
    dout = rng.standard_normal((4, 16, 10, 10))
    copies = [a.copy() for a in (x, w, b, dout)]
    ops.conv2d_forward(x, w, b, C3_TABLE)
    ops.conv2d_backward(dout, x, w, C3_TABLE)
    for original, copy in zip((x, w, b, dout), copies):
        np.testing.assert_array_equal(original, copy)


def test_out_is_written_in_place(rng):
    x, w, b = _conv_args(rng)
    out = np.empty((4, 16, 10, 10))
    result = ops.conv2d_forward(x, w, b, C3_TABLE, out=out)
    assert np.shares_memory(result, out)
    np.testing.assert_array_equal(out, ops.conv2d_forward(x, w, b, C3_TABLE))
    y = ops.squash_forward(out, out=out)          # in place on its own input
    assert np.shares_memory(y, out)


def test_parameter_gradients_accumulate(rng):
    x, w, b = _conv_args(rng)
    dout = rng.standard_normal((4, 16, 10, 10))
    dx1, dw1, db1 = ops.conv2d_backward(dout, x, w, C3_TABLE)
    dx2, dw2, db2 = ops.conv2d_backward(dout, x, w, C3_TABLE, dweight=dw1.copy(), dbias=db1.copy())
    np.testing.assert_allclose(dw2, 2 * dw1, rtol=1e-12)
    np.testing.assert_allclose(db2, 2 * db1, rtol=1e-12)
    np.testing.assert_array_equal(dx2, dx1)       # dx is overwritten, not accumulated


def test_non_contiguous_and_read_only_inputs_are_accepted(rng):
    x, w, b = _conv_args(rng)
    expected = ops.conv2d_forward(x, w, b, C3_TABLE)
    x_strided = np.repeat(x, 2, axis=3)[..., ::2]
    assert not x_strided.flags.c_contiguous
    w.setflags(write=False)
    np.testing.assert_array_equal(ops.conv2d_forward(x_strided, w, b, C3_TABLE), expected)


def test_mixed_dtypes_raise_naming_the_argument(rng):
    x, w, b = _conv_args(rng)
    with pytest.raises(TypeError, match="weight"):
        ops.conv2d_forward(x, w.astype(np.float32), b, C3_TABLE)
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        ops.conv2d_forward(x.astype(np.int32), w, b)


@pytest.mark.parametrize("call,match", [
    (lambda x, w, b: ops.conv2d_forward(x[:, :3], w, b), "input channels"),
    (lambda x, w, b: ops.conv2d_forward(x, w, b[:3]), "bias"),
    (lambda x, w, b: ops.conv2d_forward(x, w, b, np.ones((16, 6))), "table"),
    (lambda x, w, b: ops.conv2d_forward(x[0], w, b), "4 dimensions"),
    (lambda x, w, b: ops.subsample_forward(x[..., :13], b[:6], b[:6]), "even"),
    (lambda x, w, b: ops.conv2d_forward(x, w, b, out=np.empty((4, 16, 10, 9))), "out"),
])
def test_shape_errors(call, match, rng):
    with pytest.raises(ValueError, match=match):
        call(*_conv_args(rng))


def test_label_errors():
    scores = np.zeros((3, 10))
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        ops.mse_loss(scores, [0, 1, 10])
    with pytest.raises(ValueError, match="labels must be 3 integers"):
        ops.mse_loss(scores, [0, 1])


def test_empty_batch_gives_empty_results(rng):
    x, w, b = _conv_args(rng, n=0)
    assert ops.conv2d_forward(x, w, b, C3_TABLE).shape == (0, 16, 10, 10)
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 16, 10, 10)), x, w, C3_TABLE)
    assert dx.shape == x.shape and not dw.any() and not db.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deterministic_for_a_given_thread_count(dtype, rng):
    x, w, b = _conv_args(rng, n=9, dtype=dtype)
    dout = rng.standard_normal((9, 16, 10, 10)).astype(dtype)
    for n_threads in (1, 2):
        runs = [ops.conv2d_backward(dout, x, w, C3_TABLE, n_threads=n_threads) for _ in range(3)]
        for run in runs[1:]:
            for a, b_ in zip(runs[0], run):
                np.testing.assert_array_equal(a, b_)
    one = ops.conv2d_backward(dout, x, w, C3_TABLE, n_threads=1)
    two = ops.conv2d_backward(dout, x, w, C3_TABLE, n_threads=2)
    for a, b_ in zip(one, two):                    # different summation order, same result to rounding
        np.testing.assert_allclose(a, b_, rtol=1e-4 if dtype == np.float32 else 1e-12,
                                   atol=1e-4 if dtype == np.float32 else 1e-12)


def test_n_threads_validation():
    with pytest.raises(ValueError, match="n_threads"):
        ops.effective_n_threads(0)
    with pytest.raises(TypeError, match="n_threads"):
        ops.effective_n_threads(1.5)
    assert ops.effective_n_threads(-1) >= 1
