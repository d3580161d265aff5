"""Pure-NumPy reference of every LeNet-5 layer, and of the whole network.

This module is the definition the compiled kernels are tested against (``lenet_fast.ops`` has the same
function names and signatures), and it is itself tested against finite differences. It favours
plain, obviously-correct NumPy over speed, and computes in float64.

Conventions (shared with ``ops``):

* arrays are NCHW; convolutions are cross-correlations, valid, stride 1:
  ``out[n, k, y, x] = bias[k] + sum_{c, i, j} weight[k, c, i, j] * x[n, c, y + i, x + j]``;
* a connection table ``table[c, k]`` (uint8, shape (C, K)) says whether output map k reads input map c;
  unconnected pairs contribute nothing and get a zero weight gradient (``None`` = fully connected);
* ``*_backward`` returns the input gradient first, then parameter gradients, in parameter order;
* losses return per-sample values; ``*_loss_backward`` returns the gradient of the *mean* over the batch;
* ``squared=True`` turns a backward function into the second-derivative pass of SDLM (the paper's
  Eq. 25 and 27, Gauss-Newton and diagonal): the same computation with squared weights, squared
  inputs and squared f', applied to second derivatives instead of gradients.
"""
import numpy as np

from .constants import C3_TABLE, SQUASH_A, SQUASH_S


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _windows(x, kh, kw):
    # (N, C, H, W) -> (N, C, Ho, Wo, kh, kw) view of every kh x kw patch
    return np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))


def _masked(weight, table):
    if table is None:
        return weight
    return weight * np.asarray(table, dtype=np.float64).T[:, :, None, None]


# --- convolution (C1, C3 through Table I, C5) ------------------------------------------------------

def conv2d_forward(x, weight, bias, table=None):
    x, weight, bias = _f64(x), _f64(weight), _f64(bias)
    w = _masked(weight, table)
    kh, kw = w.shape[2:]
    return np.einsum("ncyxij,kcij->nkyx", _windows(x, kh, kw), w) + bias[None, :, None, None]


def conv2d_backward(dout, x, weight, table=None, squared=False):
    dout, x, weight = _f64(dout), _f64(x), _f64(weight)
    if squared:
        x, weight = x * x, weight * weight
    w = _masked(weight, table)
    kh, kw = w.shape[2:]
    dweight = _masked(np.einsum("nkyx,ncyxij->kcij", dout, _windows(x, kh, kw)), table)
    dbias = dout.sum(axis=(0, 2, 3))
    # dx is the full convolution of dout with the kernel: pad dout and correlate with the flipped kernel
    padded = np.pad(dout, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    dx = np.einsum("nkyxij,kcij->ncyx", _windows(padded, kh, kw), w[:, :, ::-1, ::-1])
    return dx, dweight, dbias


# --- trainable subsampling (S2, S4): coef * (sum of the 2x2 block) + bias ---------------------------

def _block_sums(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5))


def subsample_forward(x, coef, bias):
    x, coef, bias = _f64(x), _f64(coef), _f64(bias)
    return coef[None, :, None, None] * _block_sums(x) + bias[None, :, None, None]


def subsample_backward(dout, x, coef, squared=False):
    dout, x, coef = _f64(dout), _f64(x), _f64(coef)
    if squared:       # h(coef) uses the sum of the squared inputs (the paper's diagonal form)
        x, coef = x * x, coef * coef
    dx = np.repeat(np.repeat(dout * coef[None, :, None, None], 2, axis=2), 2, axis=3)
    dcoef = (dout * _block_sums(x)).sum(axis=(0, 2, 3))
    dbias = dout.sum(axis=(0, 2, 3))
    return dx, dcoef, dbias


# --- 2x2 max pooling (modern variant) ---------------------------------------------------------------

def _blocks(x):
    # (N, C, H, W) -> (N, C, H/2, W/2, 4), block elements in row-major order (0,0) (0,1) (1,0) (1,1)
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)


def maxpool_forward(x):
    return _blocks(_f64(x)).max(axis=-1)


def maxpool_backward(dout, x, out):
    """The gradient goes to the first maximal element of each block, in row-major order."""
    dout, x = _f64(dout), _f64(x)
    n, c, h, w = x.shape
    first = _blocks(x).argmax(axis=-1)
    dblocks = (np.arange(4) == first[..., None]) * dout[..., None]
    return dblocks.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


# --- fully connected (C5 on a flattened 16x5x5 input, F6, the modern output) -------------------------

def dense_forward(x, weight, bias):
    x, weight, bias = _f64(x), _f64(weight), _f64(bias)
    return x @ weight.T + bias


def dense_backward(dout, x, weight, squared=False):
    dout, x, weight = _f64(dout), _f64(x), _f64(weight)
    if squared:
        x, weight = x * x, weight * weight
    return dout @ weight, dout.T @ x, dout.sum(axis=0)


# --- activations: the backward pass needs only the output y ------------------------------------------

def squash_forward(a):
    return SQUASH_A * np.tanh(SQUASH_S * _f64(a))


def squash_backward(dy, y, squared=False):
    # f'(a) = A S (1 - tanh^2) = (S / A) (A^2 - y^2)
    y = _f64(y)
    derivative = (SQUASH_S / SQUASH_A) * (SQUASH_A * SQUASH_A - y * y)
    return _f64(dy) * (derivative * derivative if squared else derivative)


def relu_forward(a):
    return np.maximum(_f64(a), 0.0)


def relu_backward(dy, y, squared=False):
    return _f64(dy) * (_f64(y) > 0)          # f' is 0 or 1: f'^2 = f'


# --- Euclidean RBF output (Eq. 7): penalties y_i = sum_j (x_j - w_ij)^2 ------------------------------

def rbf_forward(x, centers):
    diff = _f64(x)[:, None, :] - _f64(centers)[None, :, :]
    return (diff * diff).sum(axis=2)


def rbf_backward(dout, x, centers):
    diff = _f64(x)[:, None, :] - _f64(centers)[None, :, :]
    return 2.0 * np.einsum("ni,nij->nj", _f64(dout), diff)


# --- losses: per-sample values, and the gradient of the batch mean ----------------------------------

def _onehot(labels, n_classes):
    return (np.asarray(labels)[:, None] == np.arange(n_classes)).astype(np.float64)


def mse_loss(penalties, labels):
    """Eq. 8: the penalty of the correct class."""
    penalties = _f64(penalties)
    return penalties[np.arange(len(penalties)), np.asarray(labels)]


def mse_loss_backward(penalties, labels):
    penalties = _f64(penalties)
    return _onehot(labels, penalties.shape[1]) / max(len(penalties), 1)


def _log_sum_exp_neg(penalties, j):
    # log(exp(-j) + sum_i exp(-y_i)), shifted by the smallest exponent for stability
    m = np.minimum(penalties.min(axis=1), j)
    return -m + np.log(np.exp(m - j) + np.exp(m[:, None] - penalties).sum(axis=1))


def map_loss(penalties, labels, j):
    """Eq. 9: y_D + log(exp(-j) + sum_i exp(-y_i)), with j the "rubbish class" constant."""
    penalties = _f64(penalties)
    return mse_loss(penalties, labels) + _log_sum_exp_neg(penalties, j)


def map_loss_backward(penalties, labels, j):
    penalties = _f64(penalties)
    posterior = np.exp(-penalties - _log_sum_exp_neg(penalties, j)[:, None])
    return (_onehot(labels, penalties.shape[1]) - posterior) / max(len(penalties), 1)


def cross_entropy_loss(logits, labels):
    logits = _f64(logits)
    m = logits.max(axis=1)
    log_z = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    return log_z - logits[np.arange(len(logits)), np.asarray(labels)]


def cross_entropy_loss_backward(logits, labels):
    logits = _f64(logits)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p - _onehot(labels, logits.shape[1])) / max(len(logits), 1)


# --- the whole network ------------------------------------------------------------------------------

class ReferenceLeNet5:
    """LeNet-5 in plain NumPy float64, from a parameter dict (as ``LeNet5.parameters()`` gives).

    ``variant`` is "paper" or "modern"; ``criterion`` is "mse" or "map" (paper) or "cross_entropy"
    (modern); ``map_j`` is the constant j of Eq. 9. ``table`` is the C3 connection table (paper).
    """

    def __init__(self, params, variant="paper", criterion=None, map_j=1.0, table=None):
        self.params = {name: _f64(value).copy() for name, value in params.items()}
        self.variant = variant
        self.criterion = criterion or ("mse" if variant == "paper" else "cross_entropy")
        self.map_j = float(map_j)
        self.table = (C3_TABLE if table is None else table) if variant == "paper" else None

    def _layers_forward(self, x):
        p, paper = self.params, self.variant == "paper"
        act = squash_forward if paper else relu_forward
        cache = {"x": _f64(x)}
        cache["c1"] = act(conv2d_forward(cache["x"], p["c1.weight"], p["c1.bias"]))
        if paper:
            cache["s2"] = act(subsample_forward(cache["c1"], p["s2.coef"], p["s2.bias"]))
        else:
            cache["s2"] = maxpool_forward(cache["c1"])
        cache["c3"] = act(conv2d_forward(cache["s2"], p["c3.weight"], p["c3.bias"], self.table))
        if paper:
            cache["s4"] = act(subsample_forward(cache["c3"], p["s4.coef"], p["s4.bias"]))
        else:
            cache["s4"] = maxpool_forward(cache["c3"])
        cache["c5"] = act(conv2d_forward(cache["s4"], p["c5.weight"], p["c5.bias"]))[:, :, 0, 0]
        cache["f6"] = act(dense_forward(cache["c5"], p["f6.weight"], p["f6.bias"]))
        if paper:
            cache["out"] = rbf_forward(cache["f6"], p["output.centers"])
        else:
            cache["out"] = dense_forward(cache["f6"], p["output.weight"], p["output.bias"])
        return cache

    def forward(self, x):
        return self._layers_forward(x)["out"]

    def _loss_and_dout(self, out, labels):
        if self.criterion == "mse":
            return mse_loss(out, labels), mse_loss_backward(out, labels)
        if self.criterion == "map":
            return map_loss(out, labels, self.map_j), map_loss_backward(out, labels, self.map_j)
        return cross_entropy_loss(out, labels), cross_entropy_loss_backward(out, labels)

    def loss(self, x, labels):
        losses, _ = self._loss_and_dout(self.forward(x), labels)
        return float(losses.mean()) if len(losses) else 0.0

    def _backward(self, c, d, g, squared=False):
        """Back-propagate d(loss)/d(F6 output) `d` (or, with squared=True, second derivatives) through
        F6 ... C1, writing the parameter terms into the dict `g`."""
        p, paper = self.params, self.variant == "paper"
        act_backward = squash_backward if paper else relu_backward
        d = act_backward(d, c["f6"], squared)
        d, g["f6.weight"], g["f6.bias"] = dense_backward(d, c["c5"], p["f6.weight"], squared)
        d = act_backward(d, c["c5"], squared)[:, :, None, None]
        d, g["c5.weight"], g["c5.bias"] = conv2d_backward(d, c["s4"], p["c5.weight"], None, squared)
        if paper:
            d = act_backward(d, c["s4"], squared)
            d, g["s4.coef"], g["s4.bias"] = subsample_backward(d, c["c3"], p["s4.coef"], squared)
        else:
            d = maxpool_backward(d, c["c3"], c["s4"])
        d = act_backward(d, c["c3"], squared)
        d, g["c3.weight"], g["c3.bias"] = conv2d_backward(d, c["s2"], p["c3.weight"], self.table, squared)
        if paper:
            d = act_backward(d, c["s2"], squared)
            d, g["s2.coef"], g["s2.bias"] = subsample_backward(d, c["c1"], p["s2.coef"], squared)
        else:
            d = maxpool_backward(d, c["c1"], c["s2"])
        d = act_backward(d, c["c1"], squared)
        _, g["c1.weight"], g["c1.bias"] = conv2d_backward(d, c["x"], p["c1.weight"], None, squared)
        return g

    def gradients(self, x, labels):
        """(mean loss, dict of gradients of the mean loss for every trainable parameter)."""
        c = self._layers_forward(x)
        losses, dout = self._loss_and_dout(c["out"], labels)
        g = {}
        if self.variant == "paper":
            d = rbf_backward(dout, c["f6"], self.params["output.centers"])
        else:
            d, g["output.weight"], g["output.bias"] = dense_backward(dout, c["f6"], self.params["output.weight"])
        return (float(losses.mean()) if len(losses) else 0.0), self._backward(c, d, g)

    def hessian_diagonal(self, x):
        """SDLM's curvature estimates (Eq. 23-25, 27): for every trainable parameter, the Gauss-Newton
        diagonal second derivative of the per-sample loss, summed over the connections that share the
        parameter and averaged over the samples of `x`. Paper variant only. The output seed is
        d2E/dx_j^2 = 2 for every F6 unit: exact for the MSE criterion (the RBF is quadratic); for MAP it
        is the curvature of its y_D term (the log-partition term is left out: it can be negative)."""
        if self.variant != "paper":
            raise ValueError("the SDLM second-derivative pass is defined for the paper variant")
        c = self._layers_forward(x)
        seed = np.full_like(c["f6"], 2.0 / max(len(c["f6"]), 1))
        return self._backward(c, seed, {}, squared=True)
