"""Benchmarks of every LeNet-5 kernel in ``lenet_fast.nn.layer_kernels``, at the shapes of the paper's network.

Each case first checks the float32 kernel against the float64 NumPy reference, then times it with
pytest-benchmark. Run (see bench/README.md):

    pip install ".[bench]" && pytest bench/bench_kernels.py -q --benchmark-min-rounds=5
"""
import functools
import itertools
import statistics
import time

import numpy as np
import pytest

from lenet_fast.nn import layer_kernels as ops
from lenet_fast.nn import reference
from lenet_fast.nn.constants import C3_TABLE, RBF_CENTERS, SQUASH_A

pytest.importorskip("pytest_benchmark")

SEED = 1998
DTYPE = np.float32
RTOL = 1e-4
ATOL = 1e-4          # times the largest magnitude of the reference array
MAP_J = 1.0


# --- inputs -----------------------------------------------------------------------------------------

def _uniform(rng, shape, scale):
    return rng.uniform(-scale, scale, size=shape).astype(DTYPE)


def _act(rng, shape):
    """An activation of a squashing layer: within +-1.7159."""
    return _uniform(rng, shape, SQUASH_A)


def _image(rng, shape):
    """Network input, normalised as in the paper: background -0.1 .. ink 1.175."""
    return rng.uniform(-0.1, 1.175, size=shape).astype(DTYPE)


def _fan_in_weight(rng, shape, fan_in):
    """Paper initialisation (Appendix A): uniform in +-2.4 / fan_in."""
    return _uniform(rng, shape, 2.4 / fan_in)


# --- one builder per kernel kind: (ops function, reference function, inputs, output buffers) ---------
# Backward buffers of parameter gradients start at zero for the correctness check; the kernels
# accumulate into them, so during timing they keep growing (harmless, it does not change the work).

def _conv(rng, n, direction, c, size, k, table=None):
    x = (_image if c == 1 else _act)(rng, (n, c, size, size))
    fan_in = 25 * (c if table is None else int(table.sum(axis=0).max()))
    weight = _fan_in_weight(rng, (k, c, 5, 5), fan_in)
    out_shape = (n, k, size - 4, size - 4)
    if direction == "forward":
        args = (x, weight, _uniform(rng, (k,), 0.1), table)
        return ops.conv2d_forward, reference.conv2d_forward, args, {"out": np.empty(out_shape, DTYPE)}
    args = (_uniform(rng, out_shape, 1.0), x, weight, table)
    bufs = {"dx": np.empty_like(x), "dweight": np.zeros_like(weight), "dbias": np.zeros(k, DTYPE)}
    return ops.conv2d_backward, reference.conv2d_backward, args, bufs


def _subsample(rng, n, direction, c, size):
    x = _act(rng, (n, c, size, size))
    coef = _uniform(rng, (c,), 2.4 / 4)
    out_shape = (n, c, size // 2, size // 2)
    if direction == "forward":
        args = (x, coef, _uniform(rng, (c,), 0.1))
        return ops.subsample_forward, reference.subsample_forward, args, {"out": np.empty(out_shape, DTYPE)}
    args = (_uniform(rng, out_shape, 1.0), x, coef)
    bufs = {"dx": np.empty_like(x), "dcoef": np.zeros(c, DTYPE), "dbias": np.zeros(c, DTYPE)}
    return ops.subsample_backward, reference.subsample_backward, args, bufs


def _maxpool(rng, n, direction, c, size):
    x = _act(rng, (n, c, size, size))
    if direction == "forward":
        return ops.maxpool_forward, reference.maxpool_forward, (x,), {"out": np.empty((n, c, size // 2, size // 2), DTYPE)}
    out = reference.maxpool_forward(x).astype(DTYPE)
    args = (_uniform(rng, out.shape, 1.0), x, out)
    return ops.maxpool_backward, reference.maxpool_backward, args, {"dx": np.empty_like(x)}


def _dense(rng, n, direction, n_in, n_out):
    x = _act(rng, (n, n_in))
    weight = _fan_in_weight(rng, (n_out, n_in), n_in)
    if direction == "forward":
        args = (x, weight, _uniform(rng, (n_out,), 0.1))
        return ops.dense_forward, reference.dense_forward, args, {"out": np.empty((n, n_out), DTYPE)}
    args = (_uniform(rng, (n, n_out), 1.0), x, weight)
    bufs = {"dx": np.empty_like(x), "dweight": np.zeros_like(weight), "dbias": np.zeros(n_out, DTYPE)}
    return ops.dense_backward, reference.dense_backward, args, bufs


def _squash(rng, n, direction, c, size):
    shape = (n, c, size, size)
    if direction == "forward":
        args = (_uniform(rng, shape, 2.5),)                   # pre-activations
        return ops.squash_forward, reference.squash_forward, args, {"out": np.empty(shape, DTYPE)}
    args = (_uniform(rng, shape, 1.0), _act(rng, shape))     # dy, y
    return ops.squash_backward, reference.squash_backward, args, {"out": np.empty(shape, DTYPE)}


def _rbf(rng, n, direction):
    x, centers = _act(rng, (n, 84)), RBF_CENTERS.astype(DTYPE)
    if direction == "forward":
        return ops.rbf_forward, reference.rbf_forward, (x, centers), {"out": np.empty((n, 10), DTYPE)}
    args = (_uniform(rng, (n, 10), 1.0), x, centers)
    return ops.rbf_backward, reference.rbf_backward, args, {"dx": np.empty_like(x)}


def _loss(rng, n, direction, kind):
    # realistic penalties: the RBF output of F6 activations
    penalties = reference.rbf_forward(_act(rng, (n, 84)), RBF_CENTERS).astype(DTYPE)
    labels = rng.integers(0, 10, size=n)
    extra = (MAP_J,) if kind == "map" else ()
    name = f"{kind}_loss" + ("" if direction == "forward" else "_backward")
    out_shape = (n,) if direction == "forward" else (n, 10)
    return (getattr(ops, name), getattr(reference, name), (penalties, labels) + extra,
            {"out": np.empty(out_shape, DTYPE)})


# --- the case table ---------------------------------------------------------------------------------

#: family -> (builder, its shape arguments), at the layer shapes of LeNet-5.
FAMILIES = [
    ("conv_C1", _conv, dict(c=1, size=32, k=6)),
    ("conv_C3", _conv, dict(c=6, size=14, k=16, table=C3_TABLE)),
    ("subsample_S2", _subsample, dict(c=6, size=28)),
    ("subsample_S4", _subsample, dict(c=16, size=10)),
    ("maxpool_S2", _maxpool, dict(c=6, size=28)),
    ("dense_C5", _dense, dict(n_in=400, n_out=120)),
    ("dense_F6", _dense, dict(n_in=120, n_out=84)),
    ("squash_C1", _squash, dict(c=6, size=28)),
    ("rbf", _rbf, dict()),
    ("mse_loss", _loss, dict(kind="mse")),
    ("map_loss", _loss, dict(kind="map")),
]
DIRECTIONS = ["forward", "backward", "second"]     # second: SDLM's second-derivative pass
HAS_SECOND_PASS = {"conv_C1", "conv_C3", "subsample_S2", "subsample_S4", "dense_C5", "dense_F6", "squash_C1"}
BATCHES = [1, 64]
THREADS = [1, 2]

_BUILDERS = {name: functools.partial(builder, **shape) for name, builder, shape in FAMILIES}
CASES = [(family, direction, batch)
         for family, direction, batch in itertools.product([name for name, _, _ in FAMILIES], DIRECTIONS, BATCHES)
         if direction != "second" or family in HAS_SECOND_PASS]


def _build(family, batch, direction):
    """The case's (ops function, reference function, inputs, buffers); the second-derivative pass is
    the backward function with squared=True."""
    rng = np.random.default_rng(SEED)
    if direction != "second":
        return _BUILDERS[family](rng, batch, direction)
    op, ref, args, bufs = _BUILDERS[family](rng, batch, "backward")
    return functools.partial(op, squared=True), functools.partial(ref, squared=True), args, bufs


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def _check(got, expected, label):
    got, expected = _as_tuple(got), _as_tuple(expected)
    assert len(got) == len(expected), f"{label}: {len(got)} results, reference has {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == DTYPE and g.shape == e.shape, f"{label}[{i}]: got {g.dtype} {g.shape}, want {e.shape}"
        scale = float(np.abs(e).max()) if e.size else 0.0
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL * max(scale, 1e-30),
                                   err_msg=f"{label}: result {i} disagrees with the reference")


def _median_seconds(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.mark.parametrize("n_threads", THREADS, ids=lambda t: f"t{t}")
@pytest.mark.parametrize("family,direction,batch", CASES, ids=[f"{f}-{d}-n{b}" for f, d, b in CASES])
def test_kernel(benchmark, family, direction, batch, n_threads):
    op, ref, args, bufs = _build(family, batch, direction)
    run = functools.partial(op, *args, **bufs, n_threads=n_threads)
    run_reference = functools.partial(ref, *args)

    # 1. correctness first: a wrong kernel fails here and is never timed
    _check(run(), run_reference(), f"{family} {direction} batch={batch} n_threads={n_threads}")

    # 2. timing
    benchmark.group = f"{family}-{direction}-n{batch}"
    benchmark.extra_info.update(family=family, direction=direction, batch=batch, n_threads=n_threads,
                                dtype=np.dtype(DTYPE).name)
    benchmark(run)
    stats = getattr(benchmark, "stats", None)           # None under --benchmark-disable
    if stats is not None:
        ratio = _median_seconds(run_reference) / stats.stats.median
        benchmark.extra_info["reference_over_ops"] = float(f"{ratio:.3g}")
