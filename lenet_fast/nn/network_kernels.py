"""The fused whole-network kernels (src/kernels/network/): the forward pass of a batch, and a whole run of
training steps (forward, loss, backward, update), each in one compiled call; the one place that calls them.

They are the production path: ``LeNet5.forward``/``predict``/``evaluate`` run ``network_forward`` and the
Trainer runs ``train_steps``. Both work on the model's flat parameter array, whose layout (and the shapes
the kernels are compiled for) comes from ``architecture``; this module checks the arguments first.
"""
import threading

import numpy as np

from .._checks import finite_number, integer
from .._config import effective_n_threads
from .._isa import load
from ._arrays import as_input, check_shape, dtype_of, integers, output_buffer
from .architecture import VARIANTS, architecture

_network = load("lenet_fast.nn._network")
LOSS_KINDS = load("lenet_fast.nn._output").LOSS_KINDS


def _check_compiled_shapes():
    """The kernels are compiled for LeNet-5's shapes: their row of activations must be the architecture's."""
    for variant in VARIANTS:
        spec = architecture(variant)
        expected = {layer.name: layer.activation_offset for layer in spec.layers}
        expected["size"] = spec.activation_size
        if _network.activation_offsets() != expected:
            raise ImportError(f"lenet_fast.nn._network was compiled for other layer shapes than "
                              f"lenet_fast.nn.architecture ({_network.activation_offsets()} != {expected}): "
                              "rebuild the package")


_check_compiled_shapes()
# the parameter layout of each variant as the kernels take it: offsets and the trainable pieces
_LAYOUTS = {v: _network.NetworkLayout(architecture(v).offsets(), architecture(v).trainable_mask()) for v in VARIANTS}
# the float32 and float64 specialisations, picked by dtype here: Cython's own dispatch, which inspects
# every argument's buffer, adds microseconds to each call, which shows in single-image latency
_NETWORK_FORWARD = {np.dtype(np.float32): _network.network_forward["float"],
                    np.dtype(np.float64): _network.network_forward["double"]}


def network_args(params, variant, centers):
    """The checked arguments of the fused kernels for a model's flat `params` (a model keeps its own)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    spec = architecture(variant)
    if not isinstance(params, np.ndarray):
        raise TypeError(f"params must be the model's flat parameter ndarray, got {type(params).__name__}")
    dtype = dtype_of(params, "params")
    if params.shape != (spec.size,) or not params.flags.c_contiguous:
        raise ValueError(f"params must be a C-contiguous array of shape ({spec.size},) (the {variant} layout), "
                         f"got shape {params.shape}")
    if spec.layers[-1].kind == "rbf":
        if centers is None:
            raise ValueError("centers (10, 84) are required for the paper variant")
        centers = as_input(centers, "centers", dtype, 2)
        check_shape(centers, "centers", (10, 84))
    else:
        centers = np.empty((0, 84), dtype)
    return {"spec": spec, "layout": _LAYOUTS[variant], "params": params, "centers": centers,
            "table": np.ascontiguousarray(spec.c3_table), "paper": variant == "paper"}


def network_forward(params, x, *, variant, centers=None, out=None, n_threads=None):
    """The whole network's output for x (N, 1, 32, 32) in one compiled call: (N, 10) RBF penalties
    (paper) or logits (modern). params: the model's flat parameter array (``architecture(variant)``'s
    layout). Blocks of samples (as many as a vector register has lanes) run through all layers side by
    side, the last few each in a per-thread work row; nothing of size N is allocated but `out`. x must
    be finite (a ValueError otherwise)."""
    network = network_args(params, variant, centers)
    dtype = network["params"].dtype
    x = as_input(x, "x", dtype, 4)
    check_shape(x, "x", (len(x), 1, 32, 32))
    out = output_buffer(out, "out", (len(x), 10), dtype)
    return checked_network_forward(network, x, out, effective_n_threads(n_threads))


def checked_network_forward(network, x, out, n_threads):
    """network_forward on checked arguments: network = network_args(...), x (N, 1, 32, 32) and out
    (N, 10) C-contiguous of its dtype, n_threads >= 1. The kernel checks that x is finite as it reads it
    (cheaper than a separate pass over x): a ValueError if not."""
    params = network["params"]
    if not _NETWORK_FORWARD[params.dtype](params, x, out, network["table"], network["centers"],
                                          network["layout"], network["paper"], n_threads):
        raise ValueError("x contains NaN or infinite values")
    return out


def train_steps(params, x, labels, order, step, *, variant, criterion, map_j=1.0, centers=None,
                batch_size=1, momentum=0.0, weight_decay=0.0, velocity=None, losses=None, predictions=None,
                n_threads=None):
    """Training steps on the samples x[order], in order, in mini-batches of `batch_size` (the last may be
    shorter), all in one compiled call; returns ``(losses, predictions)``.

    params: the model's flat parameter array (``architecture(variant)``'s layout), updated in place after
    each batch, with g the gradient of the batch's mean loss: ``w -= step * (g + weight_decay * w)``, or
    with momentum > 0 ``v = momentum * v + (g + weight_decay * w); w -= step * v`` (``velocity`` (P,) is
    then required and updated in place). C3 weights outside Table I are left untouched.
    x (N, 1, 32, 32), labels (N,) in 0..9, order (M,) in 0..N-1, step (P,) per-parameter step sizes.
    losses (M,) float64 and predictions (M,) int64: each presented sample's loss and predicted class,
    from its forward pass before its batch's update. batch_size 1 runs on one thread; larger batches
    spread their samples over `n_threads` (bit-identical results for a given thread count). The calling
    thread keeps the kernel's work memory for its next call with the same settings (``_train_workspace``).
    """
    network = network_args(params, variant, centers)
    spec = network["spec"]
    if criterion not in spec.criteria:
        raise ValueError(f"criterion must be one of {spec.criteria} for the {variant} variant, got {criterion!r}")
    if not params.flags.writeable:
        raise ValueError("params must be writeable: the training steps update it in place")
    dtype, size = params.dtype, params.size
    x = as_input(x, "x", dtype, 4)
    check_shape(x, "x", (len(x), 1, 32, 32))
    labels = integers(labels, "labels", len(x), 10)
    order = integers(order, "order", None, len(x))
    step = as_input(step, "step", dtype, 1)
    check_shape(step, "step", (size,))
    batch_size = integer("batch_size", batch_size, at_least=1)
    map_j = finite_number("map_j", map_j, above=0)
    momentum = finite_number("momentum", momentum, at_least=0)
    weight_decay = finite_number("weight_decay", weight_decay, at_least=0)
    if momentum > 0:
        if velocity is None:
            raise ValueError("velocity (the momentum buffer, shape of params) is required when momentum > 0")
        velocity = output_buffer(velocity, "velocity", (size,), dtype)
        if np.may_share_memory(velocity, params) or np.may_share_memory(velocity, step):
            raise ValueError("velocity must not overlap params or step")
    else:
        velocity = np.empty(0, dtype)
    losses = output_buffer(losses, "losses", order.shape, np.float64)
    predictions = output_buffer(predictions, "predictions", order.shape, np.int64)
    n_threads = effective_n_threads(n_threads)
    workspace = _train_workspace(network["layout"], dtype, batch_size, n_threads)
    _network.train_steps(params, velocity, step, x, labels, order, losses, predictions, network["table"],
                         network["centers"], workspace, network["layout"], network["paper"],
                         spec.decision == "argmin", LOSS_KINDS[criterion], map_j, batch_size, momentum,
                         weight_decay, n_threads)
    return losses, predictions


# Each thread's last train_steps workspace, kept for its next call with the same settings: fresh memory
# costs a page fault for every 4 KB (a quarter of the time of a one-thread call that trains one batch
# of 64), and the workspace's gradient rows and partial sums come back zero from every call, so that
# only a new one needs zeroing (its size: _network.train_workspace_size). A thread keeps one (replaced
# when it trains with other settings, released when it ends).
_workspaces = threading.local()


def _train_workspace(layout, dtype, batch_size, n_threads):
    key = (layout, dtype, batch_size, n_threads)
    kept = getattr(_workspaces, "kept", None)
    if kept is None or kept[0] != key:
        kept = _workspaces.kept = (key, np.zeros(_network.train_workspace_size(
            layout, batch_size, n_threads, dtype == np.float64), dtype))
    return kept[1]
