"""The pure-NumPy reference (lenet_fast.nn.reference) against finite differences.

Everything is float64 with fixed seeds. Layer backwards are checked coordinate-wise with 4th-order central
differences of ``loss = sum(forward(...) * G)`` (so backward gets ``dout = G``); the whole network is checked
with directional derivatives over all trainable parameters and a few single coordinates per tensor. The
conventions that self-consistency cannot pin are checked by hand in test_conventions.py.
"""
import numpy as np
import pytest

from lenet_fast.nn import reference as R
from lenet_fast.nn.constants import C3_TABLE, RBF_CENTERS

H = 1e-4
RTOL = 1e-6
ATOL = 1e-8


# --- finite-difference helpers -----------------------------------------------------------------------

def numerical_gradient(f, x, h=H, n_coords=50, seed=0):
    """4th-order central differences of the scalar f at (up to) n_coords random coordinates of x.

    Returns (flat indices, estimates). x is copied; f receives the perturbed copy.
    """
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(-1)                                 # a view into the private copy
    rng = np.random.default_rng(seed)
    idx = rng.choice(flat.size, size=min(n_coords, flat.size), replace=False)
    est = np.empty(len(idx))
    for k, i in enumerate(idx):
        orig = flat[i]
        vals = []
        for step in (2.0, 1.0, -1.0, -2.0):
            flat[i] = orig + step * h
            vals.append(float(f(x)))
        flat[i] = orig
        est[k] = (-vals[0] + 8.0 * vals[1] - 8.0 * vals[2] + vals[3]) / (12.0 * h)
    return idx, est


def assert_gradient(f, x, analytic, h=H, n_coords=50, seed=0, rtol=RTOL, atol=ATOL):
    """analytic (full array) matches the numerical gradient of f at random coordinates of x."""
    analytic = np.asarray(analytic)
    assert analytic.shape == np.shape(x)
    assert analytic.dtype == np.float64
    idx, est = numerical_gradient(f, x, h, n_coords, seed)
    # guard against a vacuous check: the sampled gradient must be well above the absolute tolerance
    assert np.max(np.abs(est)) > 1e3 * atol
    np.testing.assert_allclose(analytic.reshape(-1)[idx], est, rtol=rtol, atol=atol)


def _distinct(rng, shape, gap=0.01):
    """Random values that are pairwise at least `gap` apart (so max-pooling is differentiable)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap + rng.uniform(0, gap / 4, n)).reshape(shape) - n * gap / 2


# --- layer backwards against finite differences ------------------------------------------------------

def _random_table(rng, c, k):
    table = (rng.uniform(size=(c, k)) < 0.6).astype(np.uint8)
    table[0, 0], table[-1, -1] = 0, 1                    # at least one unconnected and one connected pair
    return table


@pytest.mark.parametrize("kind", ["none", "random", "c3"])
def test_conv2d_backward_matches_finite_differences(kind):
    """conv2d_backward's dx, dweight, dbias are the gradients of conv2d_forward (table None/random/C3)."""
    rng = np.random.default_rng(1)
    if kind == "c3":
        x, w, table = rng.normal(size=(2, 6, 14, 14)), rng.normal(size=(16, 6, 5, 5)), C3_TABLE
    else:
        x, w = rng.normal(size=(2, 3, 7, 8)), rng.normal(size=(5, 3, 3, 2))   # non-square on purpose
        table = None if kind == "none" else _random_table(rng, 3, 5)
    b = rng.normal(size=w.shape[0])
    out = R.conv2d_forward(x, w, b, table)
    n, _, hi, wi = x.shape
    assert out.shape == (n, w.shape[0], hi - w.shape[2] + 1, wi - w.shape[3] + 1)
    G = rng.normal(size=out.shape)
    dx, dw, db = R.conv2d_backward(G, x, w, table)
    assert_gradient(lambda v: np.sum(R.conv2d_forward(v, w, b, table) * G), x, dx, seed=1)
    assert_gradient(lambda v: np.sum(R.conv2d_forward(x, v, b, table) * G), w, dw, seed=2)
    assert_gradient(lambda v: np.sum(R.conv2d_forward(x, w, v, table) * G), b, db, seed=3)
    if table is not None:
        unconnected = np.asarray(table).T == 0           # (K, C) mask over weight[k, c]
        assert unconnected.any() and not unconnected.all()
        assert np.all(dw[unconnected] == 0.0)
        assert np.all(np.abs(dw[~unconnected]).sum(axis=-1).sum(axis=-1) > 0)
        # the forward ignores unconnected weights entirely
        w2 = w.copy()
        w2[unconnected] += 100.0
        assert np.array_equal(R.conv2d_forward(x, w2, b, table), out)


def test_subsample_backward_matches_finite_differences():
    """subsample_backward's dx, dcoef, dbias are the gradients of subsample_forward."""
    rng = np.random.default_rng(2)
    x, coef, bias = rng.normal(size=(2, 3, 6, 8)), rng.normal(size=3), rng.normal(size=3)
    out = R.subsample_forward(x, coef, bias)
    assert out.shape == (2, 3, 3, 4)
    G = rng.normal(size=out.shape)
    dx, dcoef, dbias = R.subsample_backward(G, x, coef)
    assert_gradient(lambda v: np.sum(R.subsample_forward(v, coef, bias) * G), x, dx, seed=1)
    assert_gradient(lambda v: np.sum(R.subsample_forward(x, v, bias) * G), coef, dcoef, seed=2)
    assert_gradient(lambda v: np.sum(R.subsample_forward(x, coef, v) * G), bias, dbias, seed=3)


def test_maxpool_backward_matches_finite_differences():
    """maxpool_backward is the gradient of maxpool_forward (inputs with distinct values)."""
    rng = np.random.default_rng(3)
    x = _distinct(rng, (2, 3, 6, 8))
    out = R.maxpool_forward(x)
    assert out.shape == (2, 3, 3, 4)
    G = rng.normal(size=out.shape)
    dx = R.maxpool_backward(G, x, out)
    assert_gradient(lambda v: np.sum(R.maxpool_forward(v) * G), x, dx, n_coords=100)
    assert np.count_nonzero(dx) == out.size             # exactly one element per block gets the gradient


def test_dense_backward_matches_finite_differences():
    """dense_backward's dx, dweight, dbias are the gradients of dense_forward."""
    rng = np.random.default_rng(4)
    x, w, b = rng.normal(size=(4, 7)), rng.normal(size=(5, 7)), rng.normal(size=5)
    out = R.dense_forward(x, w, b)
    assert out.shape == (4, 5)
    G = rng.normal(size=out.shape)
    dx, dw, db = R.dense_backward(G, x, w)
    assert_gradient(lambda v: np.sum(R.dense_forward(v, w, b) * G), x, dx, seed=1)
    assert_gradient(lambda v: np.sum(R.dense_forward(x, v, b) * G), w, dw, seed=2)
    assert_gradient(lambda v: np.sum(R.dense_forward(x, w, v) * G), b, db, seed=3)


def test_squash_backward_matches_finite_differences():
    """squash_backward(dy, y), given the OUTPUT y, is the gradient of squash_forward."""
    rng = np.random.default_rng(5)
    a = rng.normal(scale=1.5, size=(3, 5, 4))
    G = rng.normal(size=a.shape)
    da = R.squash_backward(G, R.squash_forward(a))
    assert_gradient(lambda v: np.sum(R.squash_forward(v) * G), a, da)


def test_relu_backward_matches_finite_differences():
    """relu_backward(dy, y), given the OUTPUT y, is the gradient of relu_forward (away from 0)."""
    rng = np.random.default_rng(6)
    a = rng.choice([-1.0, 1.0], size=(3, 5, 4)) * rng.uniform(0.1, 2.0, size=(3, 5, 4))
    G = rng.normal(size=a.shape)
    da = R.relu_backward(G, R.relu_forward(a))
    assert_gradient(lambda v: np.sum(R.relu_forward(v) * G), a, da)
    np.testing.assert_array_equal(da, np.where(a > 0, G, 0.0))


@pytest.mark.parametrize("centers_kind", ["fig3", "random"])
def test_rbf_backward_matches_finite_differences(centers_kind):
    """rbf_backward is the gradient of the RBF penalties w.r.t. the F6 state x."""
    rng = np.random.default_rng(7)
    centers = RBF_CENTERS if centers_kind == "fig3" else rng.normal(size=(7, 5))
    x = rng.uniform(-1.7, 1.7, size=(4, centers.shape[1]))
    out = R.rbf_forward(x, centers)
    assert out.shape == (4, centers.shape[0])
    G = rng.normal(size=out.shape)
    dx = R.rbf_backward(G, x, centers)
    assert_gradient(lambda v: np.sum(R.rbf_forward(v, centers) * G), x, dx)


LOSSES = [
    ("mse", None, R.mse_loss, R.mse_loss_backward),
    ("map", 1.0, R.map_loss, R.map_loss_backward),
    ("map", 0.3, R.map_loss, R.map_loss_backward),
    ("cross_entropy", None, R.cross_entropy_loss, R.cross_entropy_loss_backward),
]


def _bind(fn, j):
    return fn if j is None else (lambda p, y: fn(p, y, j))


@pytest.mark.parametrize("name, j, loss, backward", LOSSES, ids=[f"{n}-{j}" for n, j, _, _ in LOSSES])
def test_loss_backward_is_gradient_of_batch_mean(name, j, loss, backward):
    """*_loss returns per-sample values; *_loss_backward is the gradient of their MEAN over the batch."""
    rng = np.random.default_rng(8)
    n = 5
    p = rng.uniform(0.0, 4.0, size=(n, 10)) if name != "cross_entropy" else rng.normal(scale=2.0, size=(n, 10))
    labels = rng.integers(0, 10, size=n)
    loss, backward = _bind(loss, j), _bind(backward, j)
    per_sample = loss(p, labels)
    assert per_sample.shape == (n,)
    for i in range(n):                                  # per-sample values do not depend on the batch
        np.testing.assert_allclose(loss(p[i:i + 1], labels[i:i + 1]), per_sample[i:i + 1], rtol=1e-14)
    grad = backward(p, labels)
    assert grad.shape == p.shape
    assert_gradient(lambda v: np.mean(loss(v, labels)), p, grad)


# --- the whole network ----------------------------------------------------------------------------

def _uniform(rng, shape, bound):
    return rng.uniform(-bound, bound, size=shape)


def _coef(rng, n):
    return rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.2, 0.6, size=n)


def make_params(variant, seed=0):
    """A parameter dict for ReferenceLeNet5.

    Weights are uniform +-2.4/sqrt(fan_in) rather than the paper's +-2.4/fan_in so that activations stay
    O(1) through all layers and every tensor gets a gradient well above the test tolerances (paper F6:
    see below); subsampling coefficients are +-[0.2, 0.6], biases nonzero.
    """
    rng = np.random.default_rng(seed)
    paper = variant == "paper"
    p = {}
    p["c1.weight"] = _uniform(rng, (6, 1, 5, 5), 2.4 / np.sqrt(25))
    p["c1.bias"] = _uniform(rng, 6, 0.3)
    if paper:
        p["s2.coef"], p["s2.bias"] = _coef(rng, 6), _uniform(rng, 6, 0.3)
        fan_in = 25 * C3_TABLE.sum(axis=0)                                    # 75 / 100 / 150 per C3 map
        w = _uniform(rng, (16, 6, 5, 5), 1.0) * (2.4 / np.sqrt(fan_in))[:, None, None, None]
        p["c3.weight"] = w * C3_TABLE.T[:, :, None, None]                     # zero outside Table I
    else:
        p["c3.weight"] = _uniform(rng, (16, 6, 5, 5), 2.4 / np.sqrt(150))
    p["c3.bias"] = _uniform(rng, 16, 0.3)
    if paper:
        p["s4.coef"], p["s4.bias"] = _coef(rng, 16), _uniform(rng, 16, 0.3)
    p["c5.weight"] = _uniform(rng, (120, 16, 5, 5), 2.4 / np.sqrt(400))
    p["c5.bias"] = _uniform(rng, 120, 0.3)
    if paper:
        # F6 sits near digit 3's code (f(+-1) = +-1), so some penalties are small and the MAP
        # log-sum-exp term (e^-y_i against e^-j) really contributes to the loss and its gradient
        p["f6.weight"] = _uniform(rng, (84, 120), 0.24 / np.sqrt(120))
        p["f6.bias"] = RBF_CENTERS[3] + _uniform(rng, 84, 0.3)
    else:
        p["f6.weight"] = _uniform(rng, (84, 120), 2.4 / np.sqrt(120))
        p["f6.bias"] = _uniform(rng, 84, 0.3)
    if paper:
        p["output.centers"] = np.array(RBF_CENTERS)
    else:
        p["output.weight"] = _uniform(rng, (10, 84), 2.4 / np.sqrt(84))
        p["output.bias"] = _uniform(rng, 10, 0.3)
    return p


def _trainable(variant):
    names = ["c1.weight", "c1.bias", "s2.coef", "s2.bias", "c3.weight", "c3.bias", "s4.coef", "s4.bias",
             "c5.weight", "c5.bias", "f6.weight", "f6.bias"]
    if variant == "paper":
        return names
    return [n for n in names if not n.startswith(("s2.", "s4."))] + ["output.weight", "output.bias"]


def _batch(seed=0, n=3):
    rng = np.random.default_rng(seed + 100)
    return rng.uniform(-0.1, 1.175, size=(n, 1, 32, 32)), np.array([3, 5, 8, 0, 9])[:n]


def _pattern(net, x):
    """ReLU on/off masks and max-pool winners of the modern net (its piecewise-linear 'region')."""
    c = net._layers_forward(x)

    def winners(a):
        n, ch, h, w = a.shape
        blocks = a.reshape(n, ch, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        return blocks.reshape(n, ch, h // 2, w // 2, 4).argmax(-1)

    return [c[k] > 0 for k in ("c1", "c3", "c5", "f6")] + [winners(c["c1"]), winners(c["c3"])]


def _loss_fn(variant, criterion, map_j, x, labels):
    """params -> mean loss; for the modern net it also asserts no ReLU/max-pool kink was crossed."""
    base = None
    if variant == "modern":
        base = _pattern(R.ReferenceLeNet5(make_params(variant), variant, criterion, map_j), x)

    def f(params):
        net = R.ReferenceLeNet5(params, variant, criterion, map_j)
        if base is not None:
            assert all(np.array_equal(a, b) for a, b in zip(_pattern(net, x), base)), "kink crossed; change h"
        return net.loss(x, labels)

    return f


NETS = [("paper", "mse", 1.0), ("paper", "map", 1.0), ("paper", "map", 0.3), ("modern", "cross_entropy", 1.0)]
nets = pytest.mark.parametrize("variant, criterion, map_j", NETS, ids=[f"{v}-{c}-{j}" for v, c, j in NETS])


@nets
def test_network_gradient_keys_and_shapes(variant, criterion, map_j):
    """gradients() covers exactly the trainable parameters (not the fixed RBF centres), with their shapes;
    C3 weights outside Table I get zero gradient."""
    params = make_params(variant)
    x, labels = _batch()
    net = R.ReferenceLeNet5(params, variant, criterion, map_j)
    loss, g = net.gradients(x, labels)
    assert sorted(g) == sorted(_trainable(variant))
    for name, grad in g.items():
        assert grad.shape == params[name].shape, name
        assert np.all(np.isfinite(grad)) and np.any(grad != 0), name
    assert net.forward(x).shape == (3, 10)
    assert loss == pytest.approx(net.loss(x, labels), rel=1e-14)
    if variant == "paper":
        assert np.all(g["c3.weight"][C3_TABLE.T == 0] == 0.0)
    if criterion == "map":                               # the MAP term is not negligible at these params
        g_mse = R.ReferenceLeNet5(params, variant, "mse").gradients(x, labels)[1]["f6.bias"]
        assert np.max(np.abs(g["f6.bias"] - g_mse)) > 0.01 * np.max(np.abs(g_mse))


@nets
def test_network_directional_derivatives(variant, criterion, map_j):
    """sum(g * v) equals the 4th-order difference of the mean loss along 3 random directions v."""
    params = make_params(variant)
    x, labels = _batch()
    loss, g = R.ReferenceLeNet5(params, variant, criterion, map_j).gradients(x, labels)
    f = _loss_fn(variant, criterion, map_j, x, labels)
    assert f(params) == pytest.approx(loss, rel=1e-14)
    rng = np.random.default_rng(11)
    h = 1e-3 if variant == "paper" else 1e-5
    for _ in range(3):
        v = {k: rng.normal(size=params[k].shape) for k in g}
        norm = np.sqrt(sum(np.sum(a * a) for a in v.values()))
        v = {k: a / norm for k, a in v.items()}

        def at(t):
            moved = dict(params)
            moved.update({k: params[k] + t * v[k] for k in v})
            return f(moved)

        fd = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)
        analytic = sum(np.sum(g[k] * v[k]) for k in g)
        assert abs(analytic) > 1e-4
        assert analytic == pytest.approx(fd, rel=1e-6, abs=1e-9)


@nets
def test_network_coordinate_gradients(variant, criterion, map_j):
    """A handful of single coordinates of every gradient tensor match finite differences."""
    params = make_params(variant)
    x, labels = _batch()
    _, g = R.ReferenceLeNet5(params, variant, criterion, map_j).gradients(x, labels)
    f = _loss_fn(variant, criterion, map_j, x, labels)
    h = 1e-4 if variant == "paper" else 1e-5
    for seed, name in enumerate(sorted(g)):
        def at(value, name=name):
            return f({**params, name: value})

        idx, est = numerical_gradient(at, params[name], h=h, n_coords=4, seed=seed)
        np.testing.assert_allclose(g[name].reshape(-1)[idx], est, rtol=1e-6, atol=1e-9, err_msg=name)


@nets
def test_network_loss_and_gradients_are_batch_means(variant, criterion, map_j):
    """The loss (and its gradient) of a batch is the mean of the single-sample losses (gradients)."""
    params = make_params(variant)
    x, labels = _batch(n=3)
    net = R.ReferenceLeNet5(params, variant, criterion, map_j)
    loss, g = net.gradients(x, labels)
    singles = [net.gradients(x[i:i + 1], labels[i:i + 1]) for i in range(3)]
    assert len({round(s[0], 9) for s in singles}) == 3    # the samples really differ
    assert loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-13)
    assert net.loss(x, labels) == pytest.approx(np.mean([net.loss(x[i:i + 1], labels[i:i + 1]) for i in range(3)]),
                                                rel=1e-13)
    for name in g:
        np.testing.assert_allclose(g[name], np.mean([s[1][name] for s in singles], axis=0),
                                   rtol=1e-10, atol=1e-14, err_msg=name)
