"""lenet_fast.inspect: the arrays behind the pictures, on their numbers: filters are the model's weights,
feature maps are the network's own activations (and the NumPy reference's), the confusion matrix counts
every image once, the mistakes are mistakes, and a --log-json file reads back as its passes."""
import json

import numpy as np
import pytest
from PIL import Image

from lenet_fast import LeNet5, inspect
from lenet_fast.apps.demo import DEFAULT_MODEL
from lenet_fast.data import load_sample
from lenet_fast.data.images import mnist_style
from lenet_fast.nn.reference import ReferenceLeNet5
from lenet_fast.train import json_log

SHAPES = {"x": (32, 32), "c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5),
          "c5": (120,), "f6": (84,), "output": (10,)}


@pytest.fixture(scope="module")
def net():
    return LeNet5.load(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def digits():
    data = load_sample()
    order = np.random.default_rng(3).permutation(len(data.y_train))[:600]
    return data.x_train[order], data.y_train[order]


def test_filters_are_the_weights(net):
    weights, connected = inspect.filters(net, "c1")
    np.testing.assert_array_equal(weights, net.parameters()["c1.weight"])
    assert weights.shape == (6, 1, 5, 5) and connected.all()
    weights, connected = inspect.filters(net, "c3")
    np.testing.assert_array_equal(weights, net.parameters()["c3.weight"])
    np.testing.assert_array_equal(connected, net.architecture.c3_table.T.astype(bool))
    assert connected.sum() == 60 and np.all(weights[~connected] == 0) and np.all(weights[connected].any(axis=(1, 2)))
    with pytest.raises(ValueError, match="'c1' or 'c3'"):
        inspect.filters(net, "c5")
    assert inspect.rbf_centers(net).shape == (10, 84) and inspect.rbf_centers(LeNet5("modern")) is None


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_feature_maps_are_the_network_activations(variant, net, digits):
    model = net if variant == "paper" else LeNet5("modern", seed=1)
    picture = digits[0][5]
    reading = inspect.read_digit(model, picture)
    assert {k: v.shape for k, v in reading.activations.items()} == SHAPES
    own = model._forward(model.prepare_input(picture[None]))                 # the model's intermediate values
    for layer, value in reading.activations.items():
        np.testing.assert_array_equal(value, np.asarray(own[layer][0]).reshape(SHAPES[layer]))
    reference = ReferenceLeNet5(model.parameters(), variant)._layers_forward(model.prepare_input(picture[None]))
    for layer in inspect.LAYERS:                                             # and the NumPy reference's
        np.testing.assert_allclose(reading.activations[layer], reference[layer][0], rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(reading.scores, model.forward(picture[None])[0], rtol=1e-5, atol=1e-4)
    assert reading.digit == model.predict(picture[None])[0]
    assert reading.score_name == ("penalties" if variant == "paper" else "scores")
    np.testing.assert_array_equal(reading.picture, picture)


def test_reading_pictures_and_files(net, digits, tmp_path):
    picture = digits[0][7]
    big = 255 - np.kron(picture, np.ones((5, 5), np.uint8))              # dark ink on white, 140x140
    reading = inspect.read_picture(net, big)
    np.testing.assert_array_equal(reading.picture, mnist_style(big))
    path = tmp_path / "digit.png"
    Image.fromarray(big).save(path)
    from_file = inspect.read_file(net, path)
    np.testing.assert_array_equal(from_file.picture, reading.picture)
    assert from_file.digit == reading.digit == digits[1][7]
    with pytest.raises(ValueError, match="no digit found"):
        inspect.read_picture(net, np.full((50, 50), 255))
    with pytest.raises(ValueError, match=r"\(28, 28\) uint8"):
        inspect.read_digit(net, picture.astype(np.float32))


def test_confusion_matrix_counts_every_image_once(net, digits):
    x, y = digits
    matrix = inspect.confusion_matrix(net, x, y)
    assert matrix.shape == (10, 10) and matrix.dtype == np.int64
    assert matrix.sum() == len(y)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(y, minlength=10))
    predictions = net.predict(x)
    np.testing.assert_array_equal(matrix.sum(axis=0), np.bincount(predictions, minlength=10))
    assert np.trace(matrix) == np.sum(predictions == y)
    assert matrix[y[0], predictions[0]] >= 1


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_confident_mistakes(variant, net, digits):
    model = net if variant == "paper" else LeNet5("modern", seed=2)    # untrained: many mistakes
    x, y = digits
    scores = model.forward(x)
    found = inspect.confident_mistakes(model, x, y, count=10)
    predicted = model.predict(x)
    wrong = np.flatnonzero(predicted != y)
    assert len(found.index) == min(10, len(wrong)) > 0
    assert np.all(predicted[found.index] != y[found.index])
    np.testing.assert_array_equal(found.true, y[found.index])
    np.testing.assert_array_equal(found.predicted, predicted[found.index])
    assert np.all(found.margin >= 0) and np.all(np.diff(found.margin) <= 0)
    rows = found.index
    gap = scores[rows, found.true] - scores[rows, found.predicted]
    np.testing.assert_allclose(found.margin, gap if variant == "paper" else -gap, rtol=1e-6)
    everything = inspect.confident_mistakes(model, x, y, count=len(y))
    assert len(everything.index) == len(wrong) and found.margin[0] == everything.margin.max()


def _log_of_a_run(path, epochs, validation=True):
    data = load_sample()
    order = np.random.default_rng(0).permutation(5000)
    x, y = data.x_train[order[:300]], data.y_train[order[:300]]
    held = (data.x_train[order[300:400]], data.y_train[order[300:400]]) if validation else None
    net = LeNet5(seed=0)
    history = net.fit(x, y, epochs=epochs, validation_data=held, callbacks=[json_log(str(path))])
    with open(path, "a") as f:
        f.write(json.dumps({"event": "end", "test_error": 0.125}) + "\n")
    return history


def test_training_curves_read_a_log(tmp_path):
    path = tmp_path / "log.json"
    _log_of_a_run(path, 1, validation=False)       # an earlier run in the same file: left out
    history = _log_of_a_run(path, 3)
    curves = inspect.training_curves(path)
    np.testing.assert_array_equal(curves["epoch"], [1, 2, 3])
    for key in ("loss", "train_error", "val_error", "val_loss", "learning_rate"):
        np.testing.assert_allclose(curves[key], history[key], rtol=1e-12)
    assert set(curves["eps"]) == {"c1", "s2", "c3", "s4", "c5", "f6", "all"}
    for ranges in curves["eps"].values():
        assert ranges.shape == (3, 5) and np.all(np.diff(ranges, axis=1) >= 0)
    np.testing.assert_allclose(curves["eps"]["c5"][2], history[2]["eps"]["c5"])
    assert curves["test_error"] == 0.125


@pytest.mark.parametrize("text, message", [
    ("", "no training passes"),
    ('{"event": "end"}\n', "no training passes"),
    ("epoch 1 loss 0.5\n", "line 1 is not JSON"),
    ('{"epoch": 1, "loss": 2.0, "train_error": 0.5}\n[1, 2]\n', "line 2 is not a training pass"),
    ('{"epoch": 1, "loss": "x", "train_error": 0.5}\n', "line 1 is not a training pass"),
    ('{"epoch": 1, "loss": 1.0, "train_error": 0.5, "eps": {"c1": [1, 2]}}\n', "line 1 is not a training pass"),
])
def test_training_curves_refuse_other_files(tmp_path, text, message):
    path = tmp_path / "log.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        inspect.training_curves(path)
    assert str(path) in str(error.value)
    with pytest.raises(FileNotFoundError, match="log file not found"):
        inspect.training_curves(tmp_path / "missing.json")
