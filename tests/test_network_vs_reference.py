"""The fused whole-network kernels (lenet_fast.nn.network_kernels) straight against the NumPy reference
network (ReferenceLeNet5), in float64: the forward pass, and several training steps - the updated weights,
each presented sample's loss and prediction - with SGD (momentum, weight decay) and with SDLM's
per-parameter steps eta / (mu + h_kk), both variants, batch 1 and larger batches."""
import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast._testing import assert_close
from lenet_fast.nn import network_kernels
from lenet_fast.nn.architecture import architecture
from lenet_fast.nn.reference import ReferenceLeNet5

CONFIGS = [("paper", "mse"), ("paper", "map"), ("modern", "cross_entropy")]


def _setup(rng, variant, criterion, n=6):
    net = LeNet5(variant, dtype="float64", criterion=criterion, map_j=0.5, seed=5, n_threads=2)
    x = rng.uniform(-0.1, 1.175, size=(n, 1, 32, 32))
    y = rng.integers(0, 10, size=n)
    ref = ReferenceLeNet5(net.parameters(), variant, criterion, map_j=0.5)
    return net, ref, x, y


def _as_flat(spec, params):
    """A parameter dict in the architecture's flat layout."""
    flat = np.zeros(spec.size)
    for p in spec.params:
        flat[p.offset:p.offset + p.size] = np.ravel(params[p.name])
    return flat


def _as_dict(spec, flat):
    return {p.name: flat[p.offset:p.offset + p.size].reshape(p.shape) for p in spec.params}


def _reference_steps(ref, spec, x, y, order, step, batch_size, momentum, weight_decay):
    """The training steps of network_kernels.train_steps, in NumPy from the reference's gradients."""
    steps, velocity = _as_dict(spec, step), {p.name: np.zeros(p.shape) for p in spec.params}
    losses, predictions = [], []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        scores = ref.forward(x[idx])
        losses += [ref.loss(x[i:i + 1], y[i:i + 1]) for i in idx]
        predictions += list(scores.argmin(axis=1) if spec.decision == "argmin" else scores.argmax(axis=1))
        _, grads = ref.gradients(x[idx], y[idx])
        for name, g in grads.items():
            update = g + weight_decay * ref.params[name]
            if momentum:
                velocity[name] = momentum * velocity[name] + update
                update = velocity[name]
            ref.params[name] -= steps[name] * update
    return np.array(losses), np.array(predictions)


@pytest.mark.parametrize("variant,criterion", CONFIGS)
@pytest.mark.parametrize("n", [6, 19])     # 19: blocks of samples in vector lanes, then the rest
def test_forward_equals_the_reference(variant, criterion, n, rng):
    net, ref, x, _ = _setup(rng, variant, criterion, n)
    out = network_kernels.network_forward(net.flat_parameters, x, variant=variant,
                                          centers=net.parameters().get("output.centers"), n_threads=2)
    assert_close(out, ref.forward(x), np.float64, "scores")


@pytest.mark.parametrize("variant,criterion", CONFIGS)
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.9, 1e-3)])
def test_sgd_steps_equal_the_reference(variant, criterion, batch_size, momentum, weight_decay, rng):
    net, ref, x, y = _setup(rng, variant, criterion)
    spec = architecture(variant)
    order = rng.integers(0, len(x), size=8)
    step = np.full(spec.size, 0.02 if variant == "paper" else 0.05)
    velocity = np.zeros(spec.size) if momentum else None
    losses, predictions = net.train_steps(x, y, order, step, batch_size, momentum, weight_decay, velocity)
    ref_losses, ref_predictions = _reference_steps(ref, spec, x, y, order, step, batch_size, momentum,
                                                   weight_decay)
    assert_close(losses, ref_losses, np.float64, "losses")
    np.testing.assert_array_equal(predictions, ref_predictions)
    assert_close(net.flat_parameters, _as_flat(spec, ref.params), np.float64, "updated parameters")
    assert not np.array_equal(net.flat_parameters, LeNet5(variant, dtype="float64", seed=5).flat_parameters)


@pytest.mark.parametrize("criterion", ["mse", "map"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_sdlm_steps_equal_the_reference(criterion, batch_size, rng):
    # SDLM: the curvature of a subset gives each parameter its step eta / (mu + h_kk); then plain steps
    net, ref, x, y = _setup(rng, "paper", criterion)
    spec = architecture("paper")
    h = net.flat_hessian_diagonal(net.prepare_input(x[:4]))
    assert_close(h, _as_flat(spec, ref.hessian_diagonal(x[:4])), np.float64, "h_kk")
    step = 5e-4 / (0.02 + h)
    order = rng.permutation(len(x))
    losses, predictions = net.train_steps(x, y, order, step, batch_size)
    ref_losses, ref_predictions = _reference_steps(ref, spec, x, y, order, step, batch_size, 0.0, 0.0)
    assert_close(losses, ref_losses, np.float64, "losses")
    np.testing.assert_array_equal(predictions, ref_predictions)
    assert_close(net.flat_parameters, _as_flat(spec, ref.params), np.float64, "updated parameters")
