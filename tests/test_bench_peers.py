"""lenet-fast bench's contenders and memory runs: the memory runs measure the child's own peak; the
Trainer keeps uint8 images and prepares them a chunk at a time (what the lenet_fast memory run does);
lenet_fast's contender trains; the real peers (each only where its framework is installed) train, and
run the same network as each other (JAX and PyTorch) or as lenet_fast (ONNX Runtime)."""
import os
import tracemalloc

import numpy as np
import pytest

import lenet_fast
from lenet_fast import LeNet5, preprocess
from lenet_fast.apps.bench.contenders import STEP, _LenetFast, classic_parameters
from lenet_fast.apps.bench.memory import PACKAGE_ROOT, _memory_run, _status_mib
from lenet_fast.apps.bench.peers_jax import JaxScan, JaxStep
from lenet_fast.apps.bench.peers_onnx import OnnxRuntime
from lenet_fast.apps.bench.peers_torch import TorchCompiledStep, TorchEager
from lenet_fast.nn.architecture import architecture
from lenet_fast.train.trainer import Trainer


# --- memory --------------------------------------------------------------------------------------

def test_memory_run_puts_this_lenet_fast_first_on_the_path():
    assert os.path.samefile(os.path.join(PACKAGE_ROOT, "lenet_fast"), os.path.dirname(lenet_fast.__file__))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the memory runs read /proc (Linux)")
def test_memory_run_reports_the_child_s_own_peak():
    # getrusage's ru_maxrss would report at least this process's peak (Linux keeps it across exec)
    ballast = np.ones(256 * 2**20 // 8)         # 256 MiB, touched
    figures = _memory_run("lenet_fast", 256, 1)
    assert 0 < figures["rss_before_mib"] <= figures["peak_mib"] < _status_mib("VmRSS") - 128
    assert ballast[-1] == 1


def _random_batch(n=32):
    rng = np.random.default_rng(0)
    return rng.uniform(-0.1, 1.175, (n, 1, 32, 32)).astype(np.float32), rng.integers(0, 10, n)


def _assert_one_epoch_trains(contender, parameters, batch):
    """contender.train(batch) (one epoch) moves every parameter tensor (parameters(): float64 copies)
    by small SGD steps (step STEP, gradients far below 50 here) and leaves them finite."""
    before = parameters()
    contender.train(batch)
    after = parameters()
    for old, new in zip(before, after):
        assert np.isfinite(new).all()
        assert not np.array_equal(old, new)
        assert np.abs(new - old).max() < 100 * STEP


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_lenet_fast_contender_trains(variant):
    x, y = _random_batch()
    contender = _LenetFast(variant, 1, x, y)
    trained = [p.name for p in architecture(variant).params]      # not the paper's fixed RBF centres

    def parameters():
        return [np.array(contender.net.parameters()[name], np.float64) for name in trained]

    _assert_one_epoch_trains(contender, parameters, 16)


# --- the Trainer holds uint8 images and prepares them a chunk at a time (the memory run's lenet_fast) ----

@pytest.mark.parametrize("optimizer, batch", [("sgd", 64), ("sdlm", 1)])
def test_trainer_keeps_uint8_images_and_never_copies_them_to_float(optimizer, batch):
    # the Python-side peak of an epoch does not grow with the number of images: the Trainer keeps the
    # uint8 array it was given and prepares 1,024 images at a time (SDLM's curvature: 500)
    peaks = []
    for n in (1_024, 4_096):
        rng = np.random.default_rng(0)
        x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
        trainer = Trainer(LeNet5("paper", n_threads=1), optimizer, epochs=1, batch_size=batch, seed=0)
        tracemalloc.start()
        try:
            trainer.fit(x, y)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert trainer._x is x
    float_copy_growth = 3_072 * 32 * 32 * 4         # 12 MiB: what a float32 copy of the set would add
    assert peaks[1] - peaks[0] < float_copy_growth / 4


# --- the real peers (each skips without its framework) --------------------------------------------------

def test_torch_modern_model():
    torch = pytest.importorskip("torch")
    x, y = _random_batch()
    model = TorchEager("modern", 1, x, y)
    kinds = [type(layer).__name__ for layer in model.model]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
                     "Flatten", "Linear", "ReLU", "Linear"]
    assert isinstance(model.loss, torch.nn.CrossEntropyLoss)

    def parameters():
        return [p.detach().numpy().astype(np.float64) for p in model.model.parameters()]

    _assert_one_epoch_trains(model, parameters, 16)


def test_torch_uint8_batches_are_lenet_fast_s_input():
    pytest.importorskip("torch")
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    model = TorchEager("paper", 1, images, np.zeros(10, np.int64))
    assert model.x.dtype.itemsize == 1 and tuple(model.x.shape) == (10, 28, 28)        # held as given
    np.testing.assert_allclose(model.batch(2, 7).numpy(), preprocess(images[2:7]), atol=1e-6)


def test_torch_compiled_step_trains():
    pytest.importorskip("torch")
    x, y = _random_batch(8)
    model = TorchCompiledStep("paper", 1, x, y)

    def parameters():
        return [p.detach().numpy().astype(np.float64) for p in model.params.values()]

    _assert_one_epoch_trains(model, parameters, 8)
    assert model.mode == "compiled fullgraph"       # forward, gradients and update in one graph


def _torch_with(torch, params, variant):
    model = TorchEager(variant, 1, *_random_batch(1)).model
    with torch.no_grad():
        for index, name in zip((0, 3, 6, 9, 11), ("c1", "c3", "c5", "f6", "output")):
            model[index].weight.copy_(torch.from_numpy(params[name][0]))
            model[index].bias.copy_(torch.from_numpy(params[name][1]))
    return model


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_jax_peer_is_the_torch_peer_s_network(variant):
    torch = pytest.importorskip("torch")
    pytest.importorskip("jax")
    x, y = _random_batch(8)
    jax_peer = JaxStep(variant, 1, x, y)
    expected = _torch_with(torch, classic_parameters(0), variant)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(jax_peer._infer(jax_peer.params, jax_peer.as_input(x))), expected,
                               rtol=1e-4, atol=1e-5)


def test_jax_peers_train_alike():
    pytest.importorskip("jax")
    x, y = _random_batch(32)
    step, scan = JaxStep("paper", 1, x, y), JaxScan("paper", 1, x, y)

    def parameters(peer):
        return lambda: [np.asarray(a, np.float64) for pair in peer.params.values() for a in pair]

    _assert_one_epoch_trains(step, parameters(step), 12)        # 2 batches of 12, then one of 8
    scan.train(12)
    for a, b in zip(parameters(step)(), parameters(scan)()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_onnxruntime_peer_runs_lenet_fast_s_model(variant):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    x, y = _random_batch(8)
    peer = OnnxRuntime(variant, 1, x, y)
    out = peer.session.run(None, {peer.input_name: peer.as_input(x)})[0]
    expected = LeNet5(variant, dtype="float32", seed=0).forward(x)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
