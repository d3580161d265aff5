"""Reliability, part 1: copies and pickles are independent, working models; the thread count is bounded;
the thread-safety contract (concurrent gradients, loss, curvature and predictions on one model; one
training at a time)."""
import copy
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

from lenet_fast import LeNet5, _config
from lenet_fast.apps.cli import main
from lenet_fast.data import load_sample


@pytest.fixture(scope="module")
def digits():
    data = load_sample()
    order = np.random.default_rng(3).permutation(len(data.y_train))
    return data.x_train[order[:640]], data.y_train[order[:640]]


COPIES = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": lambda net: pickle.loads(pickle.dumps(net))}


def _fit(net, x, y):
    if net.variant == "paper":
        net.fit(x, y, epochs=1, learning_rate=2e-3)
    else:
        net.fit(x, y, epochs=3, batch_size=16)


# --- copies ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_a_copy_trains_and_saves_its_own_weights(tmp_path, digits, variant, how):
    x, y = digits
    net = LeNet5(variant, seed=1)
    before = net.flat_parameters.copy()
    twin = COPIES[how](net)
    assert type(twin) is LeNet5 and repr(twin) == repr(net)
    np.testing.assert_array_equal(twin.flat_parameters, before)
    assert not np.shares_memory(twin.flat_parameters, net.flat_parameters)
    for name, view in twin.parameters().items():           # the named views are views of the copy's own array
        if name != "output.centers":
            assert np.shares_memory(view, twin.flat_parameters), name
    _fit(twin, x, y)
    np.testing.assert_array_equal(net.flat_parameters, before)      # the original is untouched
    trained = twin.score(x, y)
    assert trained > 0.5 and trained > net.score(x, y) + 0.2
    twin.save(tmp_path / "twin.npz")
    loaded = LeNet5.load(tmp_path / "twin.npz")
    np.testing.assert_array_equal(loaded.flat_parameters, twin.flat_parameters)
    assert loaded.score(x, y) == trained
    # gradients, curvature and the parameter views of the copy work too
    loss, grads = twin.gradients(x[:8], y[:8])
    assert np.isfinite(loss) and set(grads) <= set(twin.parameters())
    if variant == "paper":
        assert np.isfinite(twin.flat_hessian_diagonal(twin.prepare_input(x[:8]))).all()
    twin.parameters()["f6.bias"][:] = 0.5
    offset = next(p.offset for p in twin.architecture.params if p.name == "f6.bias")
    assert np.all(twin.flat_parameters[offset:offset + 84] == 0.5)


class _Tagged(LeNet5):
    pass


def test_copies_keep_subclass_and_attributes_and_are_independent_of_each_other():
    net = _Tagged("paper", dtype="float64", seed=2, n_threads=1, criterion="map", map_j=0.5)
    net.note = {"run": 7}
    for how, make in COPIES.items():
        twin = make(net)
        assert type(twin) is _Tagged and twin.note == {"run": 7}, how
        assert (twin.dtype, twin.n_threads, twin.criterion, twin.map_j) == (np.float64, 1, "map", 0.5)
        twin.flat_parameters[:] = 0
        assert np.any(net.flat_parameters != 0)
    assert copy.deepcopy(net).note is not net.note


def test_a_foreign_pickle_state_is_a_clear_error():
    net = LeNet5()
    state = net.__getstate__()
    state["_flat"] = state["_flat"][:10]
    clone = LeNet5.__new__(LeNet5)
    with pytest.raises(ValueError, match="not a pickled LeNet5"):
        clone.__setstate__(state)


# --- the number of threads --------------------------------------------------------------------------

@pytest.mark.parametrize("n_threads", [65536, 65535, 40000, 16384])
def test_absurd_thread_counts_are_refused_by_name(n_threads):
    with pytest.raises(ValueError, match=rf"n_threads must be at most {_config.MAX_THREADS}.*LENET_FAST_MAX_THREADS"):
        LeNet5(n_threads=n_threads)
    net = LeNet5()
    net.n_threads = n_threads                   # set later: refused at the next call, before any kernel runs
    with pytest.raises(ValueError, match="n_threads must be at most"):
        net.gradients(np.zeros((1, 28, 28), np.uint8), [0])


def test_the_limit_is_generous_and_configurable(monkeypatch):
    assert _config.MAX_THREADS >= 64
    assert LeNet5(n_threads=_config.MAX_THREADS).n_threads == _config.MAX_THREADS
    monkeypatch.setattr(_config, "MAX_THREADS", 3)
    assert _config.effective_n_threads(None) <= 3          # OpenMP's own limit is lowered to it
    with pytest.raises(ValueError, match="at most 3"):
        _config.effective_n_threads(4)
    code = "import lenet_fast._config as c; print(c.MAX_THREADS)"
    run = subprocess.run([sys.executable, "-c", code], env={"LENET_FAST_MAX_THREADS": "5000", "PATH": ""},
                         capture_output=True, text=True, check=True, cwd="/")
    assert run.stdout.strip() == "5000"


def test_many_threads_within_the_limit_train_and_infer(digits):
    x, y = digits
    net = LeNet5("modern", n_threads=64)
    net.fit(x[:128], y[:128], epochs=1, batch_size=64)
    assert net.predict(x[:100]).shape == (100,)
    net.gradients(x[:70], y[:70])


def test_cli_threads_over_the_limit_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--threads", "65535", "--data", "/nonexistent"])     # (a usage error before any work)
    assert stop.value.code == 2
    assert "argument --threads: must be at most" in capsys.readouterr().err


# --- the thread-safety contract ---------------------------------------------------------------------

def _in_threads(fn, n, count):
    """Call fn(i) for i in range(count) from n threads at once; the results by i."""
    results, errors, start = {}, [], threading.Barrier(n)

    def work(k):
        start.wait()
        try:
            for i in range(k, count, n):
                results[i] = fn(i)
        except BaseException as exc:          # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_concurrent_gradients_loss_curvature_and_predictions_are_right(digits, variant):
    x, y = digits
    net = LeNet5(variant, seed=4, n_threads=2)
    batches = [(x[i * 5:(i + 1) * 5], y[i * 5:(i + 1) * 5]) for i in range(48)]
    expected = [net.gradients(*b) for b in batches]
    got = _in_threads(lambda i: net.gradients(*batches[i]), 8, len(batches))
    wrong = sum(not (got[i][0] == expected[i][0] and all(np.array_equal(got[i][1][k], expected[i][1][k])
                                                          for k in expected[i][1])) for i in range(len(batches)))
    assert wrong == 0, f"{wrong} of {len(batches)} concurrent gradients differ"
    losses = _in_threads(lambda i: net.loss(*batches[i]), 8, len(batches))
    assert [losses[i] for i in range(len(batches))] == [e[0] for e in expected]
    predictions = _in_threads(lambda i: net.predict(batches[i][0]), 8, len(batches))
    assert all(np.array_equal(predictions[i], net.predict(batches[i][0])) for i in range(len(batches)))
    if variant == "paper":
        h = [net.hessian_diagonal(b[0]) for b in batches[:16]]
        got_h = _in_threads(lambda i: net.hessian_diagonal(batches[i][0]), 8, 16)
        assert all(np.array_equal(got_h[i][k], h[i][k]) for i in range(16) for k in h[i])


def test_gradients_returns_the_callers_own_arrays(digits):
    x, y = digits
    net = LeNet5(seed=0)
    _, first = net.gradients(x[:4], y[:4])
    kept = {k: v.copy() for k, v in first.items()}
    net.gradients(x[4:8], y[4:8])
    assert all(np.array_equal(first[k], kept[k]) for k in kept)


def test_one_training_at_a_time(digits):
    x, y = digits
    net = LeNet5("modern", seed=0)
    outcome = []

    def train():
        try:
            net.fit(x[:64], y[:64], epochs=1)
            outcome.append("trained")
        except RuntimeError as exc:
            outcome.append(str(exc))

    with net.training_guard():         # as if another thread were training this model
        thread = threading.Thread(target=train)
        thread.start()
        thread.join()
    assert "being trained in another thread" in outcome[0]
    step = np.zeros_like(net.flat_parameters)
    with net.training_guard():
        errors = []
        thread = threading.Thread(target=lambda: errors.append(pytest.raises(
            RuntimeError, net.train_steps, net.prepare_input(x[:4]), y[:4], np.arange(4), step)))
        thread.start()
        thread.join()
    assert errors
    net.fit(x[:64], y[:64], epochs=1)                    # free again; the same thread may nest
    with net.training_guard():
        net.train_steps(net.prepare_input(x[:4]), y[:4], np.arange(4), step)


def test_predictions_while_training_neither_crash_nor_block(digits):
    """The documented behaviour: a model may be read while fit runs in another thread; the reads see
    some state of the weights between updates (no error, no crash)."""
    x, y = digits
    net = LeNet5("modern", seed=0)
    done = threading.Event()
    trainer = threading.Thread(target=lambda: (net.fit(x, y, epochs=2, batch_size=16), done.set()))
    trainer.start()
    seen = 0
    while not done.is_set() and seen < 2000:
        assert net.predict(x[:16]).shape == (16,)
        seen += 1
    trainer.join()
    assert done.is_set() and seen > 0
