"""lenet_fast.sklearn.LeNet5Classifier: scikit-learn's own estimator checks (with the expected failures
and their reasons), the accepted input, labels, probabilities, early stopping, partial_fit, pickle, and
use in Pipeline, cross_val_score, GridSearchCV and clone. Small data: a few hundred sample digits."""
import copy
import pickle
import subprocess
import sys
from functools import partial
from unittest import SkipTest   # what scikit-learn's checks raise to skip

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6")   # estimator_checks_generator, __sklearn_tags__

from scipy import sparse  # noqa: E402  (scikit-learn's dependency)
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator  # noqa: E402

from lenet_fast import LeNet5  # noqa: E402
from lenet_fast.data import load_sample  # noqa: E402
from lenet_fast.sklearn import ACCEPTED, LeNet5Classifier  # noqa: E402

FAST = dict(epochs=1, n_threads=1)


# --- scikit-learn's estimator checks --------------------------------------------------------------------

def _few(data, tested_by=None):
    """The reason of an expected failure: the check trains on `data`, which is not images."""
    return f"trains on {data}, not images of 784 or 1024 pixels" + (f"; see {tested_by}" if tested_by else "")


# Every check that fails, and why: all of them train on generated data of 2 to 10 features, which an image
# classifier cannot take. Each is asserted to fail, and for that reason (a check that passes must not be
# listed). These are asserted, not marked xfail: under CI=true (tests/conftest.py) an xfail is a skip.
EXPECTED_FAILED_CHECKS = {
    "check_fit_score_takes_y": _few("random data of 3 features"),
    "check_estimators_overwrite_params": _few("make_blobs (2 features)"),
    "check_dont_overwrite_parameters": _few("random data of 3 features"),
    "check_estimators_fit_returns_self": _few("make_blobs (2 features)", "test_fit_predict_and_probabilities"),
    "check_readonly_memmap_input": _few("make_blobs (2 features)"),
    "check_n_features_in_after_fitting": _few("random data of 4 features", "test_n_features_in"),
    "check_positive_only_tag_during_fit": _few("iris (4 features)", "test_bad_values"),
    "check_estimators_dtypes": _few("random data of 5 features", "test_input_forms_give_the_same_network"),
    "check_dtype_object": _few("random data of 10 features", "test_bad_values"),
    "check_pipeline_consistency": _few("make_blobs (2 features)", "test_pipeline_and_cross_val_score"),
    "check_estimators_nan_inf": _few("random data of 3 features", "test_bad_values"),
    "check_estimators_pickle": _few("make_blobs (2 features)", "test_pickle_round_trip"),
    "check_f_contiguous_array_estimator": _few("random data of 3 features"),
    "check_classifier_data_not_an_array": _few("a list of 2-feature rows", "test_pipeline_and_cross_val_score"),
    "check_classifiers_one_label": _few("random data of 3 features", "test_labels"),
    "check_classifiers_classes": _few("make_blobs (2 features)", "test_labels"),
    "check_estimators_partial_fit_n_features": _few("make_blobs (2 features)", "test_n_features_in"),
    "check_classifiers_train": _few("make_blobs (2 features)", "test_fit_predict_and_probabilities"),
    "check_supervised_y_2d": _few("random data of 3 features"),
    "check_decision_proba_consistency": _few("make_blobs (4 features)", "test_fit_predict_and_probabilities"),
    "check_methods_sample_order_invariance": _few("random data of 3 features", "test_fit_predict_and_probabilities"),
    "check_methods_subset_invariance": _few("random data of 3 features", "test_fit_predict_and_probabilities"),
    "check_fit2d_1sample": _few("1 sample of 10 features (the error names the features, the check wants the "
                                "sample count)"),
    "check_dict_unchanged": _few("random data of 3 features"),
    "check_fit_idempotent": _few("random data of 2 features", "test_partial_fit_continues_fit"),
    "check_fit_check_is_fitted": _few("random data of 2 features"),
    "check_n_features_in": _few("random data of 2 features", "test_n_features_in"),
    "check_fit2d_predict1d": _few("random data of 3 features", "test_bad_shapes"),
    "check_array_api_input": _few("make_classification (10 features); it runs only with SCIPY_ARRAY_API=1"),
}


def _check_name(check):
    """(name of the check function, its keyword arguments) through functools.partial layers."""
    keywords = {}
    while isinstance(check, partial):
        keywords.update(check.keywords)
        check = check.func
    return check.__name__, keywords


def _check_params(estimator, array_api):
    """pytest params of scikit-learn's checks of `estimator` (those of ARRAY_API, or all the others), as
    parametrize_with_checks makes them; the id says which are expected to fail."""
    params = []
    for est, check in estimator_checks_generator(estimator, legacy=True, mark=None):
        name, keywords = _check_name(check)
        if (name in ARRAY_API) == array_api:
            label = name + "".join(f"-{k}={v}" for k, v in sorted(keywords.items()))
            label += "-expected-failure" if name in EXPECTED_FAILED_CHECKS else ""
            params.append(pytest.param(est, check, id=label))
    return params


def _run_check(estimator, check):
    """Run a check; an expected failure must fail, with LeNet5Classifier's ValueError about the shape of X
    somewhere in the chain of exceptions (raised by fit or predict, or wrapped by the check)."""
    name = _check_name(check)[0]
    if name not in EXPECTED_FAILED_CHECKS:
        check(estimator)
        return
    try:
        check(estimator)
    except SkipTest:
        raise
    except Exception as exc:
        failure = exc
    else:
        pytest.fail(f"{name} passes: take it out of EXPECTED_FAILED_CHECKS")
    error = failure
    while error is not None and not (isinstance(error, ValueError) and str(error).startswith(ACCEPTED)):
        error = error.__cause__ or error.__context__
    assert error is not None, f"{name} failed for another reason than its expected one: {failure!r}"
    assert "feature(s) per sample" in str(error)


# scikit-learn runs this check only with SCIPY_ARRAY_API=1 set before SciPy is imported, and skips it
# otherwise; it has its own test function so that CI may let it skip (conftest.CI_MAY_SKIP).
ARRAY_API = {"check_array_api_input"}
CHECKED = LeNet5Classifier(epochs=1, n_threads=1)


@pytest.mark.parametrize("estimator, check", _check_params(CHECKED, array_api=False))
def test_sklearn_estimator_checks(estimator, check):
    _run_check(estimator, check)


@pytest.mark.parametrize("estimator, check", _check_params(CHECKED, array_api=True))
def test_sklearn_array_api_check(estimator, check):
    _run_check(estimator, check)


def test_expected_failures_name_real_checks():
    names = {_check_name(check)[0] for _, check in estimator_checks_generator(CHECKED, mark=None)}
    assert set(EXPECTED_FAILED_CHECKS) <= names


# --- data ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    """The sample shuffled: 500 training and 300 test digits, uint8 (n, 28, 28)."""
    data = load_sample()
    order = np.random.default_rng(0).permutation(len(data.y_train))
    train, test = order[:500], order[4000:4300]
    return data.x_train[train], data.y_train[train], data.x_train[test], data.y_train[test]


@pytest.fixture(scope="module")
def fitted(digits):
    x, y, _, _ = digits
    return LeNet5Classifier(epochs=2, n_threads=1).fit(x.reshape(len(x), 784), y)


# --- fit, predict, probabilities -------------------------------------------------------------------------

def test_fit_predict_and_probabilities(fitted, digits):
    _, _, xt, yt = digits
    clf = fitted
    assert clf.n_iter_ == len(clf.history_) == len(clf.loss_curve_) == 2
    assert clf.loss_curve_ == clf.history_["loss"] and clf.validation_scores_ is None
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert isinstance(clf.model_, LeNet5)
    predictions = clf.predict(xt)
    assert clf.score(xt, yt) == np.mean(predictions == yt) > 0.7
    penalties = clf.model_.forward(xt).astype(np.float64)
    np.testing.assert_allclose(clf.decision_function(xt), -penalties)
    softmax = np.exp(-penalties - (-penalties).max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    proba = clf.predict_proba(xt)
    np.testing.assert_allclose(proba, softmax, rtol=1e-12, atol=1e-300)   # Eq. 9 without the rubbish class
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(xt)), proba)
    np.testing.assert_array_equal(predictions, penalties.argmin(axis=1))
    np.testing.assert_array_equal(predictions, proba.argmax(axis=1))
    # a sample's result does not depend on the others in the batch, nor on their order
    np.testing.assert_array_equal(clf.decision_function(xt[::-1])[::-1], clf.decision_function(xt))
    np.testing.assert_array_equal(clf.decision_function(xt[7:9]), clf.decision_function(xt)[7:9])


def test_modern_variant_softmax_of_logits(digits):
    x, y, xt, _ = digits
    clf = LeNet5Classifier(variant="modern", **FAST).fit(x, y)
    logits = clf.model_.forward(xt).astype(np.float64)
    np.testing.assert_allclose(clf.decision_function(xt), logits)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(xt), expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(xt), logits.argmax(axis=1))


def test_unfitted_raises_not_fitted(digits):
    with pytest.raises(NotFittedError):
        LeNet5Classifier().predict(digits[2])


# --- input -----------------------------------------------------------------------------------------------

def test_input_forms_give_the_same_network(digits):
    """uint8 (n, 28, 28), (n, 784), int64 grey levels, padded (n, 32, 32) / (n, 1024) all train the
    same weights; float pixels X / 255 give the same scores to rounding."""
    x, y = digits[0][:64], digits[1][:64]
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    forms = [x, x.reshape(64, 784), x.astype(np.int64), padded, padded.reshape(64, 1024)]
    weights = [LeNet5Classifier(**FAST).fit(form, y).model_.flat_parameters for form in forms]
    for w in weights[1:]:
        np.testing.assert_array_equal(w, weights[0])
    clf = LeNet5Classifier(**FAST).fit(x, y)
    for scale in (np.float64, np.float32):
        np.testing.assert_allclose(clf.decision_function(x.astype(scale) / scale(255)), clf.decision_function(x),
                                   rtol=1e-4, atol=1e-3)


def test_n_features_in(fitted, digits):
    assert fitted.n_features_in_ == 784
    padded = np.pad(digits[2], ((0, 0), (2, 2), (2, 2)))
    with pytest.raises(ValueError, match="X has 1024 features, but LeNet5Classifier is expecting 784"):
        fitted.predict(padded)
    clf = LeNet5Classifier(**FAST).partial_fit(padded[:20], digits[3][:20], classes=np.arange(10))
    assert clf.n_features_in_ == 1024
    with pytest.raises(ValueError, match="expecting 1024"):
        clf.partial_fit(digits[2][:20], digits[3][:20])


@pytest.mark.parametrize("shape", [(5,), (5, 10), (5, 783), (5, 1), (5, 28, 32), (5, 1, 28, 28), (5, 1, 32, 32),
                                   (5, 784, 1)])
def test_bad_shapes(fitted, shape):
    x = np.zeros(shape, np.uint8)
    for call in (lambda: LeNet5Classifier(**FAST).fit(x, np.arange(5)), lambda: fitted.predict(x)):
        with pytest.raises(ValueError, match=r"\(n_samples, 784\) or \(n_samples, 28, 28\).*"
                                             r"\(n_samples, 1024\) or \(n_samples, 32, 32\)") as info:
            call()
        assert f"got shape {shape}" in str(info.value)


def test_bad_values(fitted):
    x = np.zeros((3, 784))
    cases = [(x + 2, "float pixels .* in \\[0, 1\\]"), (np.where(x == 0, np.nan, x), "NaN"),
             (np.full((3, 784), np.inf), "infinity"), (x.astype(np.int64) - 1, "Negative values in data"),
             (x.astype(np.int64) + 256, "grey levels 0..255"), (x.astype(np.complex128), "Complex data"),
             (x.astype(str), "dtype <U"), (sparse.csr_matrix(x), "sparse X is not supported"),
             (np.zeros((0, 784)), "0 sample"), (np.zeros((3, 0)), "0 feature")]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            fitted.predict(bad)
        with pytest.raises(ValueError, match=message):
            LeNet5Classifier(**FAST).fit(bad, np.arange(bad.shape[0]))
    objects = np.zeros((3, 784)).astype(object)
    np.testing.assert_array_equal(fitted.predict(objects), fitted.predict(np.zeros((3, 784))))
    objects[0, 0] = {"a": 1}
    with pytest.raises(TypeError):
        fitted.predict(objects)


# --- labels ----------------------------------------------------------------------------------------------

def test_labels(digits):
    x, y, xt, yt = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = LeNet5Classifier(**FAST).fit(x, names[y])
    np.testing.assert_array_equal(clf.classes_, np.sort(names))
    assert set(clf.predict(xt)) <= set(names) and clf.score(xt, names[yt]) > 0.5
    # three classes (labels not 0..9): outputs 0..2 are used, the others ignored
    keep = np.isin(y, [3, 5, 8])
    clf = LeNet5Classifier(**FAST).fit(x[keep], y[keep] * 100)
    assert clf.predict_proba(xt).shape == clf.decision_function(xt).shape == (len(xt), 3)
    assert set(clf.predict(xt)) <= {300, 500, 800}
    # two classes: decision_function is 1-D, > 0 for classes_[1], and rises with its probability
    keep = np.isin(y, [0, 1])
    clf = LeNet5Classifier(**FAST).fit(x[keep], np.where(y[keep] == 1, "b", "a"))
    scores, proba = clf.decision_function(xt), clf.predict_proba(xt)
    assert scores.shape == (len(xt),)
    np.testing.assert_array_equal(clf.predict(xt), np.where(scores > 0, "b", "a"))
    assert np.all(np.diff(proba[np.argsort(scores), 1]) >= 0)
    # one class: trained and predicted
    assert set(LeNet5Classifier(**FAST).fit(x[:20], ["7"] * 20).predict(xt)) == {"7"}
    with pytest.raises(ValueError, match="at most 10 classes"):
        LeNet5Classifier(**FAST).fit(x[:11], np.arange(11))
    with pytest.raises(ValueError, match="Unknown label type"):
        LeNet5Classifier(**FAST).fit(x[:10], np.linspace(0, 1, 10))


# --- training: early stopping, partial_fit ---------------------------------------------------------------

def test_early_stopping_stops_and_keeps_the_best_pass(digits):
    x, y, _, _ = digits
    # with a learning rate too small to change a float32 weight, the validation error never improves
    still = LeNet5Classifier(epochs=20, learning_rate=1e-12, validation_fraction=0.2, n_iter_no_change=2,
                             n_threads=1).fit(x, y)
    assert still.n_iter_ == len(still.history_) == 3 < still.epochs
    assert len(still.validation_scores_) == 3 and still.best_validation_score_ == still.validation_scores_[0]
    assert "val_error" in still.history_[-1]
    # a real run: the kept weights are those of the best pass (the same as a run stopped there)
    clf = LeNet5Classifier(epochs=6, validation_fraction=0.3, n_iter_no_change=1, n_threads=1).fit(x, y)
    best = int(np.argmax(clf.validation_scores_)) + 1
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    short = LeNet5Classifier(epochs=best, validation_fraction=0.3, n_iter_no_change=100, n_threads=1).fit(x, y)
    np.testing.assert_array_equal(clf.model_.flat_parameters, short.model_.flat_parameters)
    with pytest.raises(ValueError, match="validation_fraction"):
        LeNet5Classifier(validation_fraction=1.5).fit(x, y)


def test_partial_fit_continues_fit(digits):
    x, y, xt, yt = digits
    with pytest.raises(ValueError, match="classes must be given"):
        LeNet5Classifier(**FAST).partial_fit(x, y)
    # passes of partial_fit over the same data are fit's passes (SDLM, one constant random order)
    clf = LeNet5Classifier(epochs=2, n_threads=1)
    for _ in range(2):
        clf.partial_fit(x, y, classes=np.arange(10))
    fitted = LeNet5Classifier(epochs=2, n_threads=1).fit(x, y)
    np.testing.assert_array_equal(clf.model_.flat_parameters, fitted.model_.flat_parameters)
    assert clf.n_iter_ == 2 and [r["epoch"] for r in clf.history_] == [1, 2]
    # and after fit, it trains on
    before = fitted.model_.flat_parameters.copy()
    fitted.partial_fit(x[:100], y[:100])
    assert fitted.n_iter_ == len(fitted.loss_curve_) == 3
    assert not np.array_equal(before, fitted.model_.flat_parameters)
    with pytest.raises(ValueError, match="not in classes"):
        LeNet5Classifier(**FAST).partial_fit(x[:10], y[:10], classes=[0, 1])
    # refitting starts afresh: fit twice gives the same weights
    np.testing.assert_array_equal(LeNet5Classifier(**FAST).fit(x, y).model_.flat_parameters,
                                  LeNet5Classifier(**FAST).fit(x, y).fit(x, y).model_.flat_parameters)


# --- scikit-learn's machinery ----------------------------------------------------------------------------

def test_pickle_round_trip(fitted, digits):
    x, y, xt, _ = digits
    pickled, deep = pickle.loads(pickle.dumps(fitted)), copy.deepcopy(fitted)
    for copied in (pickled, deep):
        np.testing.assert_array_equal(copied.predict_proba(xt), fitted.predict_proba(xt))
        assert copied.get_params() == fitted.get_params()
        assert copied.model_.flat_parameters is not fitted.model_.flat_parameters
        for name, value in copied.model_.parameters().items():      # the views are the flat array's again
            assert np.shares_memory(value, copied.model_.flat_parameters) or name == "output.centers"
        copied.partial_fit(x[:100], y[:100])                         # and it trains on
        assert copied.n_iter_ == fitted.n_iter_ + 1
    np.testing.assert_array_equal(pickled.model_.flat_parameters, deep.model_.flat_parameters)
    assert not np.array_equal(pickled.model_.flat_parameters, fitted.model_.flat_parameters)
    assert not hasattr(pickle.loads(pickle.dumps(LeNet5Classifier(epochs=3))), "model_")


def test_clone(fitted):
    copy_ = clone(fitted)
    assert copy_.get_params() == fitted.get_params() and not hasattr(copy_, "model_")


def _to_unit_range(images):
    return np.asarray(images) / 255.0


def test_pipeline_and_cross_val_score(digits):
    x, y, _, _ = digits
    pipe = Pipeline([("scale", FunctionTransformer(_to_unit_range)),
                     ("lenet", LeNet5Classifier(epochs=2, n_threads=1))])
    scores = cross_val_score(pipe, x.reshape(len(x), 784).tolist(), y, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.6
    pipe.fit(x, y)
    assert pipe.score(x, y) > 0.8


def test_grid_search(digits):
    x, y, _, _ = digits
    search = GridSearchCV(LeNet5Classifier(n_threads=1), {"epochs": [1, 2]}, cv=2).fit(x[:300], y[:300])
    assert search.best_params_["epochs"] in (1, 2) and search.best_estimator_.n_iter_ == search.best_params_["epochs"]
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_import_error_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import lenet_fast.sklearn\n"
            "except ImportError as exc:\n    print(exc)\n")
    # from another directory: in the checkout, `import lenet_fast` would find the uncompiled source tree
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert "pip install 'lenet_fast[sklearn]'" in out
