"""SDLM's second-derivative pass (paper Eq. 23-25 and 27): kernels against the reference, the
reference against brute-force loops over the connections, and the model against ReferenceLeNet5."""
import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.nn import layer_kernels as ops
from lenet_fast.nn import reference as ref
from lenet_fast._testing import assert_close
from lenet_fast.nn.constants import C3_TABLE, SQUASH_A, SQUASH_S
from lenet_fast.nn.reference import ReferenceLeNet5


def _rand(rng, shape, dtype=np.float64, scale=1.0):
    return (scale * rng.uniform(-1, 1, size=shape)).astype(dtype)


# --- kernels against the reference ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n", [1, 3])
def test_kernels_match_reference(n, n_threads, dtype, rng):
    d2 = lambda shape: rng.uniform(0, 1, size=shape).astype(dtype)     # second derivatives are >= 0
    x, w = _rand(rng, (n, 6, 14, 14), dtype), _rand(rng, (16, 6, 5, 5), dtype, 0.3)
    dout = d2((n, 16, 10, 10))
    for a, b, name in zip(ops.conv2d_backward(dout, x, w, C3_TABLE, True, n_threads=n_threads),
                          ref.conv2d_backward(dout, x, w, C3_TABLE, squared=True), ["d2x", "hw", "hb"]):
        assert_close(a, b, dtype, "conv " + name)
    x, coef = _rand(rng, (n, 6, 28, 28), dtype, 1.7), _rand(rng, (6,), dtype, 0.6)
    dout = d2((n, 6, 14, 14))
    for a, b, name in zip(ops.subsample_backward(dout, x, coef, True, n_threads=n_threads),
                          ref.subsample_backward(dout, x, coef, squared=True), ["d2x", "hc", "hb"]):
        assert_close(a, b, dtype, "subsample " + name)
    x, w, dout = _rand(rng, (n, 120), dtype), _rand(rng, (84, 120), dtype, 0.1), d2((n, 84))
    for a, b, name in zip(ops.dense_backward(dout, x, w, True, n_threads=n_threads),
                          ref.dense_backward(dout, x, w, squared=True), ["d2x", "hw", "hb"]):
        assert_close(a, b, dtype, "dense " + name)
    y, dy = _rand(rng, (n, 84), dtype, 1.7), d2((n, 84))
    assert_close(ops.squash_backward(dy, y, True, n_threads=n_threads), ref.squash_backward(dy, y, squared=True),
                 dtype, "squash")


# --- the reference against brute-force loops over connections (Eq. 25, 27) ---------------------------

def test_conv_against_connection_loops(rng):
    n, c_in, k_out, size, kh = 2, 3, 2, 5, 3
    table = np.array([[1, 0], [1, 1], [0, 1]], dtype=np.uint8)
    x, w = _rand(rng, (n, c_in, size, size)), _rand(rng, (k_out, c_in, kh, kh))
    d2a = rng.uniform(0, 1, size=(n, k_out, size - kh + 1, size - kh + 1))
    d2x, hw, hb = ref.conv2d_backward(d2a, x, w, table, squared=True)
    e_d2x, e_hw, e_hb = np.zeros_like(x), np.zeros_like(w), np.zeros(k_out)
    for s in range(n):
        for k in range(k_out):
            for y in range(size - kh + 1):
                for xx in range(size - kh + 1):
                    e_hb[k] += d2a[s, k, y, xx]
                    for c in range(c_in):
                        if not table[c, k]:
                            continue
                        for i in range(kh):
                            for j in range(kh):          # one connection (input unit -> output unit)
                                e_hw[k, c, i, j] += d2a[s, k, y, xx] * x[s, c, y + i, xx + j] ** 2
                                e_d2x[s, c, y + i, xx + j] += w[k, c, i, j] ** 2 * d2a[s, k, y, xx]
    np.testing.assert_allclose(hw, e_hw, rtol=1e-12)
    np.testing.assert_allclose(hb, e_hb, rtol=1e-12)
    np.testing.assert_allclose(d2x, e_d2x, rtol=1e-12)


def test_subsample_against_connection_loops(rng):
    x, coef = _rand(rng, (2, 3, 4, 6)), _rand(rng, (3,))
    d2a = rng.uniform(0, 1, size=(2, 3, 2, 3))
    d2x, hc, hb = ref.subsample_backward(d2a, x, coef, squared=True)
    e_d2x, e_hc, e_hb = np.zeros_like(x), np.zeros(3), np.zeros(3)
    for s in range(2):
        for m in range(3):
            for i in range(2):
                for j in range(3):
                    e_hb[m] += d2a[s, m, i, j]
                    for di in range(2):
                        for dj in range(2):      # the paper's diagonal form: sum of x^2, not (sum x)^2
                            e_hc[m] += d2a[s, m, i, j] * x[s, m, 2 * i + di, 2 * j + dj] ** 2
                            e_d2x[s, m, 2 * i + di, 2 * j + dj] = coef[m] ** 2 * d2a[s, m, i, j]
    np.testing.assert_allclose(hc, e_hc, rtol=1e-12)
    np.testing.assert_allclose(hb, e_hb, rtol=1e-12)
    np.testing.assert_allclose(d2x, e_d2x, rtol=1e-12)


def test_squash_factor_is_f_prime_squared(rng):
    a = _rand(rng, (50,), scale=3.0)
    y = SQUASH_A * np.tanh(SQUASH_S * a)
    f_prime = SQUASH_A * SQUASH_S / np.cosh(SQUASH_S * a) ** 2
    np.testing.assert_allclose(ref.squash_backward(np.ones(50), y, squared=True), f_prime ** 2, rtol=1e-12)


def test_exact_where_gauss_newton_is_exact(rng):
    """One dense layer into E = sum_k a_k^2: every weight has one connection and the map is linear, so
    the pass must give the true second derivative 2 x_j^2 (checked by finite differences)."""
    x, w, b = _rand(rng, (1, 5)), _rand(rng, (3, 5)), _rand(rng, (3,))
    _, hw, hb = ref.dense_backward(np.full((1, 3), 2.0), x, w, squared=True)
    energy = lambda w_: float((ref.dense_forward(x, w_, b) ** 2).sum())
    h = 1e-3
    for k, j in [(0, 0), (1, 3), (2, 4)]:
        e = np.zeros_like(w)
        e[k, j] = h
        fd = (energy(w + e) - 2 * energy(w) + energy(w - e)) / h ** 2
        assert hw[k, j] == pytest.approx(fd, rel=1e-6)
    np.testing.assert_allclose(hb, 2.0)


# --- the whole network ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_model_matches_reference(dtype, n_threads, rng):
    net = LeNet5(dtype=dtype, n_threads=n_threads, seed=4)
    for name, p in net.parameters().items():
        if name.endswith("bias"):
            p += (0.05 * rng.standard_normal(p.shape)).astype(p.dtype)
    x = rng.uniform(-0.1, 1.175, size=(6, 1, 32, 32))
    h = net.hessian_diagonal(x)
    expected = ReferenceLeNet5(net.parameters()).hessian_diagonal(x)
    assert set(h) == set(expected) == set(net.parameters()) - {"output.centers"}
    for name in h:
        assert h[name].dtype == net.dtype and np.all(h[name] >= 0), name
        assert_close(h[name], expected[name], net.dtype, name)
    assert np.all(h["c3.weight"][C3_TABLE.T == 0] == 0)
    assert np.all(h["c3.weight"][C3_TABLE.T == 1] > 0)


def test_average_over_samples(rng):
    net = LeNet5(dtype="float64")
    x = rng.uniform(-0.1, 1.175, size=(4, 1, 32, 32))
    whole = net.hessian_diagonal(x)
    singles = [net.hessian_diagonal(x[i:i + 1]) for i in range(4)]
    for name in whole:
        np.testing.assert_allclose(whole[name], np.mean([s[name] for s in singles], axis=0), rtol=1e-12)


def test_modern_variant_is_refused():
    with pytest.raises(ValueError, match="paper variant"):
        LeNet5("modern").hessian_diagonal(np.zeros((1, 1, 32, 32)))
