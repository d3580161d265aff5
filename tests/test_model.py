"""LeNet5 as a whole: the paper's structure and counts, agreement with ReferenceLeNet5 tensor by tensor
and over 10 SGD steps, input handling and errors."""
import numpy as np
import pytest

import lenet_fast
from lenet_fast import LeNet5, preprocess
from lenet_fast._testing import assert_close
from lenet_fast.nn.constants import C3_TABLE, RBF_CENTERS
from lenet_fast.nn.reference import ReferenceLeNet5

PAPER_SHAPES = {
    "c1.weight": (6, 1, 5, 5), "c1.bias": (6,), "s2.coef": (6,), "s2.bias": (6,),
    "c3.weight": (16, 6, 5, 5), "c3.bias": (16,), "s4.coef": (16,), "s4.bias": (16,),
    "c5.weight": (120, 16, 5, 5), "c5.bias": (120,), "f6.weight": (84, 120), "f6.bias": (84,),
    "output.centers": (10, 84),
}
MODERN_SHAPES = {k: v for k, v in PAPER_SHAPES.items() if not k.startswith(("s2", "s4", "output"))}
MODERN_SHAPES.update({"output.weight": (10, 84), "output.bias": (10,)})
CONFIGS = [("paper", "mse"), ("paper", "map"), ("modern", "cross_entropy")]


def _inputs(rng, n, dtype=np.float64):
    return rng.uniform(-0.1, 1.175, size=(n, 1, 32, 32)).astype(dtype), rng.integers(0, 10, size=n)


def _perturb(net, rng):
    """Non-zero biases and coefficients, so that every parameter matters in the comparisons."""
    for name, p in net.parameters().items():
        if name != "output.centers":
            p += (0.05 * rng.standard_normal(p.shape)).astype(p.dtype) * (p != 0 if name == "c3.weight" else 1)


@pytest.mark.parametrize("variant,shapes,count", [("paper", PAPER_SHAPES, 60000), ("modern", MODERN_SHAPES, 61706)])
def test_parameters_names_shapes_and_count(variant, shapes, count):
    net = LeNet5(variant)
    params = net.parameters()
    assert {k: v.shape for k, v in params.items()} == shapes
    assert net.num_parameters == count
    params["c1.bias"][0] = 3.0                       # live views
    assert net.parameters()["c1.bias"][0] == 3.0


@pytest.mark.parametrize("init,bound", [("paper", lambda f: 2.4 / f), ("paper_sqrt", lambda f: 2.4 / np.sqrt(f)),
                                        (None, lambda f: 2.4 / np.sqrt(f))])
def test_paper_structure(init, bound):
    net = LeNet5(dtype="float64", init=init)
    p = net.parameters()
    assert np.all(p["c3.weight"][C3_TABLE.T == 0] == 0) and np.all(p["c3.weight"][C3_TABLE.T == 1] != 0)
    np.testing.assert_array_equal(p["output.centers"], RBF_CENTERS)
    # Appendix A: uniform in +-2.4 / F_i (or its square root); biases start at zero
    for name, fan_in in [("c1.weight", 25), ("c5.weight", 400), ("f6.weight", 120), ("s2.coef", 4)]:
        assert np.abs(p[name]).max() <= bound(fan_in)
        assert np.abs(p[name]).max() > 0.8 * bound(fan_in)
    for k, fan_in in [(0, 75), (6, 100), (15, 150)]:
        assert np.abs(p["c3.weight"][k]).max() <= bound(fan_in)
        assert np.abs(p["c3.weight"][k]).max() > 0.5 * bound(fan_in)
    assert not any(p[n].any() for n in ("c1.bias", "s2.bias", "c3.bias", "s4.bias", "c5.bias", "f6.bias"))
    assert net.init == (init or "paper_sqrt")


def test_modern_init_is_pytorchs():
    net = LeNet5("modern", dtype="float64")
    p = net.parameters()
    assert net.init == "pytorch"
    for name, fan_in in [("c1", 25), ("c5", 400), ("f6", 120), ("output", 84)]:
        for kind in ("weight", "bias"):
            assert 0.8 / np.sqrt(fan_in) < np.abs(p[f"{name}.{kind}"]).max() <= 1 / np.sqrt(fan_in)
    with pytest.raises(ValueError, match="init must be one of"):
        LeNet5(init="xavier")


def test_summary_totals():
    text = LeNet5().summary()
    assert "60,000" in text and "340,908" in text
    for row in ["122,304", "5,880", "151,600", "2,000", "48,120", "10,164"]:
        assert row in text
    assert "61,706" in LeNet5("modern").summary()


def test_seed_determines_the_weights():
    a, b, c = LeNet5(seed=1), LeNet5(seed=1), LeNet5(seed=2)
    for name in a.parameters():
        np.testing.assert_array_equal(a.parameters()[name], b.parameters()[name])
    assert not np.array_equal(a.parameters()["c5.weight"], c.parameters()["c5.weight"])


@pytest.mark.parametrize("variant,criterion", CONFIGS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_matches_reference(variant, criterion, dtype, n_threads, rng):
    net = LeNet5(variant, dtype=dtype, criterion=criterion, n_threads=n_threads, seed=3)
    _perturb(net, rng)
    ref = ReferenceLeNet5(net.parameters(), variant, criterion, map_j=net.map_j)
    x, y = _inputs(rng, 5)
    assert_close(net.forward(x), ref.forward(x), net.dtype, "forward")
    loss, grads = net.gradients(x, y)
    ref_loss, ref_grads = ref.gradients(x, y)
    assert_close(loss, ref_loss, net.dtype, "loss")
    assert set(grads) == set(ref_grads) == set(net.parameters()) - {"output.centers"}
    for name in grads:
        assert grads[name].dtype == net.dtype
        assert_close(grads[name], ref_grads[name], net.dtype, name)
    if variant == "paper":
        assert np.all(grads["c3.weight"][C3_TABLE.T == 0] == 0)
    np.testing.assert_array_equal(net.predict(x), np.argmin(ref.forward(x), 1) if variant == "paper"
                                  else np.argmax(ref.forward(x), 1))


@pytest.mark.parametrize("variant,criterion", CONFIGS)
def test_ten_sgd_steps_follow_the_reference(variant, criterion, rng):
    net = LeNet5(variant, dtype="float64", criterion=criterion, seed=5)
    ref = ReferenceLeNet5(net.parameters(), variant, criterion)
    x, y = _inputs(rng, 8)
    lr = 0.01 if variant == "paper" else 0.1
    ours, theirs = [], []
    for _ in range(10):
        loss, grads = net.gradients(x, y)
        ref_loss, ref_grads = ref.gradients(x, y)
        ours.append(loss)
        theirs.append(ref_loss)
        for name, g in grads.items():
            net.parameters()[name] -= lr * g
            ref.params[name] -= lr * ref_grads[name]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[-1] < ours[0]


def test_gradients_are_deterministic_per_thread_count(rng):
    x, y = _inputs(rng, 16, np.float32)
    for n_threads in (1, 2):
        runs = [LeNet5(n_threads=n_threads).gradients(x, y)[1] for _ in range(2)]
        for name in runs[0]:
            np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_loss_is_the_batch_mean(rng):
    net = LeNet5(dtype="float64")
    x, y = _inputs(rng, 4)
    singles = [net.loss(x[i:i + 1], y[i:i + 1]) for i in range(4)]
    assert net.loss(x, y) == pytest.approx(np.mean(singles), rel=1e-12)


# --- input conventions --------------------------------------------------------------------------------

def test_preprocess_maps_pixels_and_pads():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[0, 0, 0] = 255
    images[1, 5, 7] = 51
    x = preprocess(images)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32
    assert x[0, 0, 2, 2] == pytest.approx(1.175) and x[0, 0, 0, 0] == pytest.approx(-0.1)
    assert x[1, 0, 7, 9] == pytest.approx(-0.1 + 1.275 * 51 / 255)
    assert np.count_nonzero(x != np.float32(-0.1)) == 2
    full = preprocess(np.full((1, 32, 32), 255, dtype=np.uint8), dtype="float64")
    assert full.dtype == np.float64 and np.all(full == pytest.approx(1.175))


def test_uint8_images_and_float_input_agree(rng):
    net = LeNet5()
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(net.forward(images), net.forward(preprocess(images)))


def test_float_input_is_converted_to_the_model_dtype(rng):
    net = LeNet5(dtype="float64")
    x, _ = _inputs(rng, 2, np.float32)
    out = net.forward(x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, net.forward(x.astype(np.float64)))


def test_non_contiguous_and_read_only_input(rng):
    net = LeNet5()
    x, _ = _inputs(rng, 4, np.float32)
    expected = net.forward(x)
    view = np.asfortranarray(x)
    view.setflags(write=False)
    np.testing.assert_array_equal(net.forward(view), expected)
    np.testing.assert_array_equal(net.forward(np.concatenate([x, x])[::2]), net.forward(np.concatenate([x, x])[::2].copy()))


def test_empty_batch(rng):
    net = LeNet5()
    x = np.zeros((0, 1, 32, 32), dtype=np.float32)
    assert net.forward(x).shape == (0, 10)
    assert net.predict(x).shape == (0,) and net.predict(x).dtype == np.int64
    loss, grads = net.gradients(x, np.zeros(0, dtype=np.int64))
    assert loss == 0.0 and not any(g.any() for g in grads.values())


@pytest.mark.parametrize("x,error,match", [
    (np.zeros((2, 32, 32), np.float32), ValueError, r"\(N, 1, 32, 32\).*channel axis"),
    (np.zeros((2, 3, 32, 32), np.float32), ValueError, r"shape \(N, 1, 32, 32\)"),
    (np.zeros((2, 1, 28, 28), np.float32), ValueError, "padded"),
    (np.zeros((2, 1, 32, 32), np.int32), TypeError, "dtype int32"),
    (np.zeros((2, 27, 27), np.uint8), ValueError, r"x: images must have shape"),
    (np.full((2, 1, 32, 32), np.nan, np.float32), ValueError, "NaN"),
    (np.full((2, 1, 32, 32), np.inf), ValueError, "infinite"),
])
def test_bad_input_errors(x, error, match):
    with pytest.raises(error, match=match):
        LeNet5().forward(x)


@pytest.mark.parametrize("y,error,match", [
    (np.array([0, 1]), ValueError, "3 labels"),
    (np.array([[0, 1, 2]]), ValueError, "1-D"),
    (np.array([0, 1, 10]), ValueError, "0..9"),
    (np.array([0, -1, 2]), ValueError, "0..9"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "integer"),
])
def test_bad_label_errors(y, error, match, rng):
    x, _ = _inputs(rng, 3, np.float32)
    with pytest.raises(error, match=match):
        LeNet5().loss(x, y)
    with pytest.raises(error, match=match):
        LeNet5().gradients(x, y)


@pytest.mark.parametrize("kwargs,match", [
    ({"variant": "lenet"}, "variant"), ({"dtype": "float16"}, "dtype"), ({"dtype": None}, "dtype"),
    ({"criterion": "cross_entropy"}, "criterion"), ({"variant": "modern", "criterion": "mse"}, "criterion"),
    ({"map_j": -1.0}, "map_j"), ({"map_j": True}, "map_j"), ({"n_threads": 0}, "n_threads"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LeNet5(**kwargs)


def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not lenet_fast._config._platform.openmp_enabled():
        pytest.skip("built without OpenMP")
    LeNet5().forward(np.zeros((2, 1, 32, 32), np.float32))     # make sure the runtime is loaded
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert lenet_fast.effective_n_threads() == 1
    assert any(i["user_api"] == "openmp" for i in threadpoolctl.threadpool_info())


def test_show_config_reports_the_build(capsys):
    lenet_fast.show_config()
    out = capsys.readouterr().out
    for key in ("lenet_fast", "openmp", "threads", "simd", "compiler", "flags"):
        assert key in out
    assert lenet_fast._config._platform.compiled_isa() in out
