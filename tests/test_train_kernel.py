"""The fused training kernel (network_kernels.train_steps) against the per-layer Python path, determinism, the
workspace it keeps between calls, argument checks, the C3 connection table, the parameter layout, and the float32
squash it shares with the per-layer kernels."""
import threading

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.nn import layer_kernels as ops
from lenet_fast.nn import network_kernels
from lenet_fast.nn.architecture import architecture
from lenet_fast._testing import assert_close
from lenet_fast.nn.constants import C3_TABLE, SQUASH_A, SQUASH_S

CONFIGS = [("paper", "mse"), ("paper", "map"), ("modern", "cross_entropy")]


def _data(rng, n, dtype):
    return rng.uniform(-0.1, 1.175, size=(n, 1, 32, 32)).astype(dtype), rng.integers(0, 10, size=n)


def _setup(rng, variant, criterion, dtype, n_threads=2, n=5, m=7):
    """A model, data, a presentation order (with repeats) and random per-parameter step sizes."""
    net = LeNet5(variant, dtype=dtype, criterion=criterion, map_j=0.5, seed=4, n_threads=n_threads)
    x, y = _data(rng, n, dtype)
    order = rng.integers(0, n, size=m)
    step = (rng.uniform(0.5, 1.5, size=net._flat.size) * (0.01 if variant == "paper" else 0.05)).astype(dtype)
    return net, x, y, order, step


def _unconnected():
    """Mask of the paper's flat parameters that are C3 weights outside Table I."""
    c3 = architecture("paper").layer("c3").params[0]
    mask = np.zeros(architecture("paper").size, dtype=bool)
    mask[c3.offset:c3.offset + c3.size] = np.repeat(C3_TABLE.T.reshape(-1) == 0, 25)
    return mask


def _python_steps(net, x, y, order, step, batch_size, momentum, weight_decay, velocity):
    """The same training steps through the per-layer kernels and NumPy."""
    losses, predictions = [], []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        scores = net._forward(x[idx])["output"]
        losses.append(net._loss_terms(scores, y[idx])[0])
        predictions.append(net.decide(scores))
        _, grad = net._compute_gradients(x[idx], y[idx])
        g = grad + weight_decay * net._flat
        if momentum:
            velocity[...] = momentum * velocity + g
            g = velocity
        net._flat -= step * g
    return np.concatenate(losses), np.concatenate(predictions)


def _kernel_steps(net, x, y, order, step, batch_size, momentum=0.0, weight_decay=0.0, velocity=None,
                  n_threads=None, **buffers):
    """The same steps in one compiled call (buffers: losses=, predictions=)."""
    return network_kernels.train_steps(net._flat, x, y, order, step, variant=net.variant, criterion=net.criterion,
                                       map_j=net.map_j, centers=net._centers, batch_size=batch_size,
                                       momentum=momentum, weight_decay=weight_decay, velocity=velocity,
                                       n_threads=net.n_threads if n_threads is None else n_threads, **buffers)


@pytest.mark.parametrize("variant,criterion", CONFIGS)
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.0, 1e-3), (0.9, 0.0), (0.9, 1e-3)])
def test_matches_the_python_path(variant, criterion, batch_size, momentum, weight_decay, rng):
    net, x, y, order, step = _setup(rng, variant, criterion, np.float64)
    ref = LeNet5(variant, dtype="float64", criterion=criterion, map_j=0.5, seed=4, n_threads=2)
    v = np.full_like(net._flat, 0.01)
    if variant == "paper":          # zero where C3 is unconnected, like the weights
        v[_unconnected()] = 0
    ref_v = v.copy()
    losses, predictions = _kernel_steps(net, x, y, order, step, batch_size, momentum, weight_decay,
                                        v if momentum else None)
    ref_losses, ref_predictions = _python_steps(ref, x, y, order, step, batch_size, momentum, weight_decay, ref_v)
    assert losses.dtype == np.float64 and predictions.dtype == np.int64
    np.testing.assert_array_equal(predictions, ref_predictions)
    assert_close(losses, ref_losses, np.float64, "losses")
    assert_close(net._flat, ref._flat, np.float64, "params")
    if momentum:
        assert_close(v, ref_v, np.float64, "velocity")
    assert not np.array_equal(net._flat, LeNet5(variant, dtype="float64", seed=4)._flat)


@pytest.mark.parametrize("variant", ["paper", "modern"])
@pytest.mark.parametrize("batch_size,n_threads", [(4, 1), (7, 1), (7, 2), (16, 2)])
def test_every_group_size_matches_the_python_path(variant, batch_size, n_threads, rng):
    # a thread takes its samples through the dense layers in groups of 1 to 4 (separate code for each
    # size): batch 4 on one thread is one group of 4, batch 7 groups of 4 and 3, on two threads 4 | 3,
    # batch 16 on two threads 4 + 4 | 4 + 4; with momentum and weight decay, over several batches
    criterion = "mse" if variant == "paper" else "cross_entropy"
    net, x, y, order, step = _setup(rng, variant, criterion, np.float64, n=20, m=2 * batch_size + 3)
    ref = LeNet5(variant, dtype="float64", criterion=criterion, map_j=0.5, seed=4, n_threads=2)
    v, ref_v = np.zeros_like(net._flat), np.zeros_like(net._flat)
    losses, predictions = _kernel_steps(net, x, y, order, step, batch_size, 0.9, 1e-3, v, n_threads=n_threads)
    ref_losses, ref_predictions = _python_steps(ref, x, y, order, step, batch_size, 0.9, 1e-3, ref_v)
    np.testing.assert_array_equal(predictions, ref_predictions)
    assert_close(losses, ref_losses, np.float64, "losses")
    assert_close(net._flat, ref._flat, np.float64, "params")
    assert_close(v, ref_v, np.float64, "velocity")


@pytest.mark.parametrize("variant,criterion", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size,n_threads", [(21, 1), (37, 2), (300, 2)])
def test_blocks_in_lanes_match_the_python_path(variant, criterion, dtype, batch_size, n_threads, rng):
    # a batch of at least a block (the samples of one vector: 2 to 16 by the ISA and dtype) for every
    # thread goes through the network in blocks, one sample per lane, as many blocks for every thread,
    # and the rest in groups; here blocks and a rest in each batch, the last batch shorter. 300: more
    # blocks than a chunk (the dense layers' weight gradients are summed after each 256 samples or so)
    net, x, y, order, step = _setup(rng, variant, criterion, dtype, n=30, m=2 * batch_size + 9)
    ref = LeNet5(variant, dtype=dtype, criterion=criterion, map_j=0.5, seed=4, n_threads=2)
    v, ref_v = np.zeros_like(net._flat), np.zeros_like(net._flat)
    losses, predictions = _kernel_steps(net, x, y, order, step, batch_size, 0.9, 1e-3, v, n_threads=n_threads)
    ref_losses, ref_predictions = _python_steps(ref, x, y, order, step, batch_size, 0.9, 1e-3, ref_v)
    if dtype == np.float64:
        np.testing.assert_array_equal(predictions, ref_predictions)
    assert_close(losses, ref_losses, dtype, "losses")
    assert_close(net._flat, ref._flat, dtype, "params")
    assert_close(v, ref_v, dtype, "velocity")
    if variant == "paper":
        np.testing.assert_array_equal(net._flat[_unconnected()], 0)


@pytest.mark.parametrize("variant,criterion", CONFIGS)
def test_float32_follows_the_python_path(variant, criterion, rng):
    net, x, y, order, step = _setup(rng, variant, criterion, np.float32)
    ref = LeNet5(variant, dtype="float32", criterion=criterion, map_j=0.5, seed=4, n_threads=2)
    v, ref_v = np.zeros_like(net._flat), np.zeros_like(net._flat)
    losses, _ = _kernel_steps(net, x, y, order, step, 3, 0.9, 1e-3, v)
    ref_losses, _ = _python_steps(ref, x, y, order, step, 3, 0.9, 1e-3, ref_v)
    assert net._flat.dtype == np.float32
    assert_close(losses, ref_losses, np.float32, "losses")
    assert_close(net._flat, ref._flat, np.float32, "params")
    assert_close(v, ref_v, np.float32, "velocity")


@pytest.mark.parametrize("batch_size", [1, 4, 40])     # 40: blocks of samples in lanes, then a rest
@pytest.mark.parametrize("n_threads", [1, 2])
def test_bit_identical_from_the_same_state(batch_size, n_threads, rng):
    net, x, y, order, step = _setup(rng, "paper", "mse", np.float32, m=11 if batch_size < 40 else 95)
    start = net._flat.copy()
    runs = []
    for _ in range(2):
        net._flat[...] = start
        v = np.zeros_like(start)
        losses, predictions = _kernel_steps(net, x, y, order, step, batch_size, 0.9, 1e-3, v, n_threads=n_threads)
        runs.append((net._flat.copy(), v, losses, predictions))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_calls_that_reuse_the_workspace_match_one_call(rng):
    # train_steps keeps each thread's work memory for its next call with the same settings: the gradients
    # it leaves there are zero, whatever ran in between (here: another batch size, another thread count)
    net, x, y, order, step = _setup(rng, "paper", "mse", np.float32, m=95)
    start = net._flat.copy()
    one = (*_kernel_steps(net, x, y, order, step, 40, n_threads=2), net._flat.copy())
    other, ox, oy, oorder, ostep = _setup(rng, "paper", "mse", np.float32, m=37)
    net._flat[...] = start
    parts = []
    for lo, hi in ((0, 40), (40, 80), (80, 95)):
        parts.append(_kernel_steps(net, x, y, order[lo:hi], step, 40, n_threads=2))
        _kernel_steps(other, ox, oy, oorder, ostep, 3 if lo else 40, n_threads=2 if lo else 1)
    split = (*map(np.concatenate, zip(*parts)), net._flat.copy())
    for a, b in zip(one, split):
        np.testing.assert_array_equal(a, b)


def test_trainings_in_two_threads_match_one_at_a_time(rng):
    # each thread has its own workspace: two trainings at once, with the same settings, are each as alone
    net, x, y, order, step = _setup(rng, "paper", "mse", np.float32, m=1280)
    start = net._flat.copy()
    alone = (*_kernel_steps(net, x, y, order, step, 64, n_threads=1), net._flat.copy())
    nets = [LeNet5("paper", dtype=np.float32, criterion="mse", map_j=0.5, seed=4, n_threads=1) for _ in range(2)]
    results = [None, None]

    def train(i):
        nets[i]._flat[...] = start
        results[i] = (*_kernel_steps(nets[i], x, y, order, step, 64, n_threads=1), nets[i]._flat.copy())

    threads = [threading.Thread(target=train, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in results:
        for a, b in zip(alone, result):
            np.testing.assert_array_equal(a, b)


def test_batch_size_one_does_not_depend_on_threads(rng):
    net, x, y, order, step = _setup(rng, "modern", "cross_entropy", np.float32, m=9)
    start = net._flat.copy()
    results = []
    for n_threads in (1, 2):
        net._flat[...] = start
        results.append((*_kernel_steps(net, x, y, order, step, 1, n_threads=n_threads), net._flat.copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_unconnected_c3_weights_stay_zero(rng):
    net, x, y, order, step = _setup(rng, "paper", "map", np.float64, m=12)
    unconnected = _unconnected()
    assert np.all(net._flat[unconnected] == 0)
    v = np.zeros_like(net._flat)
    v[unconnected] = 1.0            # left untouched, so not even a stray velocity moves those weights
    before = net._flat.copy()
    _kernel_steps(net, x, y, order, step, 4, 0.9, 1e-2, v)
    assert np.all(net._flat[unconnected] == 0) and np.all(v[unconnected] == 1.0)
    assert np.all(net._flat[~unconnected] != before[~unconnected])


def test_the_kernels_layout_is_the_architectures():
    # the offsets reach the kernels from the architecture; their compiled activation layout is checked
    # at import: a kernel built for other shapes must not import
    from lenet_fast.nn.network_kernels import _network
    for variant in ("paper", "modern"):
        spec = architecture(variant)
        expected = {layer.name: layer.activation_offset for layer in spec.layers}
        assert _network.activation_offsets() == {**expected, "size": spec.activation_size}
        assert LeNet5(variant).flat_parameters.size == spec.size


def test_outputs_and_empty_order(rng):
    net, x, y, order, step = _setup(rng, "paper", "mse", np.float32)
    losses, predictions = np.empty(len(order)), np.empty(len(order), np.int64)
    out = _kernel_steps(net, x, y, order, step, 2, losses=losses, predictions=predictions)
    assert out[0] is losses and out[1] is predictions
    assert np.all(np.isfinite(losses)) and np.all((predictions >= 0) & (predictions < 10))
    before = net._flat.copy()
    losses, predictions = _kernel_steps(net, x, y, np.array([], np.int64), step, 1)
    assert losses.shape == predictions.shape == (0,)
    np.testing.assert_array_equal(net._flat, before)


BAD_ARGUMENTS = [
    (dict(x="float64"), TypeError, "x has dtype float64"),
    (dict(step="float64"), TypeError, "step has dtype float64"),
    (dict(params="short"), ValueError, "params must be"),
    (dict(order=[0, 5]), ValueError, "order must lie in 0..4"),
    (dict(order=[-1]), ValueError, "order must lie"),
    (dict(labels=[0, 1, 2, 3, 10]), ValueError, "labels must lie in 0..9"),
    (dict(labels=[0, 1]), ValueError, "labels must be a 1-D array of 5"),
    (dict(momentum=0.9), ValueError, "velocity .* is required"),
    (dict(momentum=0.9, velocity="short"), ValueError, "velocity must be"),
    (dict(batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    (dict(batch_size=2.0), TypeError, "batch_size must be an integer >= 1, got 2.0"),
    (dict(momentum=-0.5), ValueError, "momentum must be"),
    (dict(weight_decay=np.nan), ValueError, "weight_decay must be"),
    (dict(criterion="cross_entropy"), ValueError, "criterion must be one of"),
    (dict(variant="lenet1"), ValueError, "variant must be one of"),
    (dict(centers=None), ValueError, "centers"),
    (dict(losses="float32"), ValueError, "losses must be"),
]


@pytest.mark.parametrize("bad,error,message", BAD_ARGUMENTS)
def test_bad_arguments_are_named(bad, error, message, rng):
    net, x, y, _, step = _setup(rng, "paper", "mse", np.float32)
    before = net._flat.copy()
    args = dict(params=net._flat, x=x, labels=y, order=np.arange(5), step=step, variant="paper", criterion="mse",
                centers=net._centers)
    for name, value in bad.items():
        if value == "float64":
            value = args[name].astype(np.float64)
        elif value == "short":
            value = np.zeros(100, np.float32)
        elif value == "float32":
            value = np.zeros(5, np.float32)
        args[name] = value
    with pytest.raises(error, match=message):
        network_kernels.train_steps(args.pop("params"), args.pop("x"), args.pop("labels"), args.pop("order"),
                                    args.pop("step"), **args)
    np.testing.assert_array_equal(net._flat, before)


# --- the fused forward pass (inference) ---------------------------------------------------------------

@pytest.mark.parametrize("variant", ["paper", "modern"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n", [0, 1, 7, 37])
def test_network_forward_matches_the_layer_path(variant, dtype, n_threads, n, rng):
    """37: whole blocks of samples in vector lanes (2 to 18 of them, by the ISA and dtype), then the rest
    in work rows. The paper variant: every sample's outputs are those of the layer path, bit for bit.
    The modern variant's C3 is by Winograd's F(2x2, 5x5): other sums, within a few rounding errors of
    the layer path's; and each sample's outputs are the same bits in a block or alone."""
    net = LeNet5(variant, dtype=dtype, seed=3)
    net._flat[:] += rng.normal(0, 0.05, net._flat.size).astype(dtype) * (net._flat != 0)
    x, _ = _data(rng, n, dtype)
    out = network_kernels.network_forward(net._flat, x, variant=variant, centers=net._centers, n_threads=n_threads)
    assert out.shape == (n, 10) and out.dtype == dtype
    if not n:
        return
    layers = net._forward(x)["output"]
    if variant == "paper":      # the same layer code as the per-layer kernels: the same bits
        np.testing.assert_array_equal(out, layers)
        return
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(out, layers, rtol=0, atol=64 * eps * (1 + np.abs(layers).max()))
    alone = [network_kernels.network_forward(net._flat, x[i:i + 1], variant=variant, n_threads=n_threads)
             for i in range(n)]
    np.testing.assert_array_equal(out, np.concatenate(alone))


def test_network_forward_threads_agree_and_out_is_filled(rng):
    net = LeNet5(seed=2)
    x, _ = _data(rng, 9, np.float32)
    out = np.full((9, 10), np.nan, np.float32)
    assert network_kernels.network_forward(net._flat, x, variant="paper", centers=net._centers, out=out,
                                           n_threads=2) is out
    one = network_kernels.network_forward(net._flat, x, variant="paper", centers=net._centers, n_threads=1)
    np.testing.assert_array_equal(out, one)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_network_forward_finds_any_value_not_finite(dtype, n_threads, rng):
    """The kernel checks x as it reads it: a NaN or infinity in any sample, in a block of lanes or in
    the rest, is an error (not outputs computed from it), through the model's methods too."""
    net = LeNet5("modern", dtype=dtype, seed=1, n_threads=n_threads)
    x, y = _data(rng, 37, dtype)
    assert np.isfinite(network_kernels.network_forward(net._flat, x, variant="modern", n_threads=n_threads)).all()
    for sample, pixel, bad in [(0, 0, np.nan), (17, 511, np.inf), (31, 1023, -np.inf), (36, 40, np.nan)]:
        broken = x.copy()
        broken.reshape(37, -1)[sample, pixel] = bad
        with pytest.raises(ValueError, match="^x contains NaN or infinite values"):
            network_kernels.network_forward(net._flat, broken, variant="modern", n_threads=n_threads)
        for method in (net.forward, net.predict, lambda v: net.evaluate(v, y)):
            with pytest.raises(ValueError, match="^x contains NaN or infinite values"):
                method(broken)


@pytest.mark.parametrize("bad,error,message", [
    (lambda a: dict(x=a["x"].astype(np.float64)), TypeError, "x has dtype float64"),
    (lambda a: dict(x=a["x"][:, 0]), ValueError, "x must have 4 dimensions"),
    (lambda a: dict(params=np.zeros(100, np.float32)), ValueError, "params must be"),
    (lambda a: dict(out=np.zeros(5, np.float32)), ValueError, "out must be"),
    (lambda a: dict(centers=None), ValueError, "centers"),
    (lambda a: dict(variant="lenet1"), ValueError, "variant must be one of"),
])
def test_network_forward_bad_arguments_are_named(bad, error, message, rng):
    net = LeNet5()
    x, _ = _data(rng, 5, np.float32)
    args = dict(params=net._flat, x=x, variant="paper", centers=net._centers)
    args.update(bad(args))
    with pytest.raises(error, match=message):
        network_kernels.network_forward(args.pop("params"), args.pop("x"), **args)


def _ulps(a, b):
    """Distance in float32 steps between finite float32 arrays of one sign."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def test_float32_squash_is_within_a_few_ulp():
    """The float32 squash (shared by the per-layer and the fused kernels) computes tanh itself."""
    positive = np.arange(np.float32(2 ** -30).view(np.int32), np.float32(20).view(np.int32), 61,
                         dtype=np.int32).view(np.float32)
    positive = np.append(positive, np.float32(1e-45))      # every 61st float from 1e-9 to 20, and the denormal 1e-45
    a = np.concatenate([positive, -positive])
    y = ops.squash_forward(a, n_threads=1)
    tanh = np.tanh((np.float32(SQUASH_S) * a).astype(np.float64)).astype(np.float32)   # correctly rounded
    ref = np.float32(SQUASH_A) * tanh
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ref))
    assert _ulps(y, ref).max() <= 7, f"{_ulps(y, ref).max()} ulp at a = {a[_ulps(y, ref).argmax()]}"
    special = np.float32([0.0, -0.0, 3e38, -3e38, np.inf, -np.inf, np.nan])
    y = ops.squash_forward(special, n_threads=1)
    np.testing.assert_array_equal(y[:6], np.float32([0.0, -0.0] + [SQUASH_A, -SQUASH_A] * 2))
    np.testing.assert_array_equal(np.signbit(y[:2]), [False, True])
    assert np.isnan(y[6])
