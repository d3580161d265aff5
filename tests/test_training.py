"""Training: the SDLM and SGD rules against plain NumPy loops, the paper's schedule, determinism,
checkpoints (resume bit-identical, Ctrl-C, divergence), History, fit/score, and a real learning run."""
import os
import signal

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.train import trainer as training
from lenet_fast.train import SDLM, SGD, Trainer, TrainingDivergedError


def _data(rng, n, dtype="float64"):
    x = rng.uniform(-0.1, 1.175, size=(n, 1, 32, 32)).astype(dtype)
    return x, rng.integers(0, 10, n)


def _images(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.fixture
def small_chunks(monkeypatch):
    """Several compiled calls per pass even on tiny data (chunk boundaries are where runs stop)."""
    monkeypatch.setattr(training, "CHUNK", 8)


# --- optimisers ---------------------------------------------------------------------------------------

def test_sdlm_follows_the_papers_eta_schedule():
    sdlm = SDLM(learning_rate=5e-4)
    etas = [sdlm.rate(epoch, 20) for epoch in range(20)]
    assert etas == pytest.approx([5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 8, rel=1e-12)
    assert SDLM().rate(3, 20) == pytest.approx(2e-4)        # the default: the paper's schedule
    assert SDLM().mu == 0.02 and SDLM().hessian_samples == 500


def test_sgd_schedules():
    assert SGD(0.1, schedule="constant").rate(7, 10) == 0.1
    assert SGD(0.1, schedule="cosine").rate(0, 10) == pytest.approx(0.1)
    assert SGD(0.1, schedule="cosine").rate(5, 10) == pytest.approx(0.05)
    assert [SGD(1.0, schedule="step").rate(e, 8) for e in range(8)] == pytest.approx([1] * 4 + [0.1] * 2 + [0.01] * 2)


def _reference_run(net, x, y, epochs, seed, sdlm=None, sgd=None, batch=1):
    """The training rules written out plainly with LeNet5.gradients / hessian_diagonal."""
    n = len(y)
    velocity = {k: np.zeros_like(v) for k, v in net._params.items()}
    order = np.random.default_rng([seed, 0]).permutation(n)
    for epoch in range(epochs):
        if sdlm is not None:
            rng = np.random.default_rng([seed, 2, epoch])
            subset = np.sort(rng.choice(n, size=min(sdlm.hessian_samples, n), replace=False))
            h = net.hessian_diagonal(x[subset])
            step = {k: sdlm.rate(epoch, epochs) / (sdlm.mu + h[k]) for k in h}
        else:
            step = {k: sgd.rate(epoch, epochs) for k in net._params}
            order = np.random.default_rng([seed, 1, epoch]).permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            _, grads = net.gradients(x[idx], y[idx])
            for k, w in net._params.items():
                g = grads[k]
                if sgd is not None:
                    g = g + sgd.weight_decay * w
                    if sgd.momentum:
                        velocity[k] = sgd.momentum * velocity[k] + g
                        g = velocity[k]
                w -= step[k] * g


def test_sdlm_trainer_matches_the_plain_rule(rng, small_chunks):
    # Two passes: the second re-estimates h_kk on a new subset. (Over more passes on random labels,
    # rounding differences of 1e-17 between the fused and the layer-wise path grow chaotically.)
    x, y = _data(rng, 20)
    net = LeNet5(dtype="float64", seed=3)
    reference = LeNet5(dtype="float64", seed=3)
    history = net.fit(x, y, epochs=2, optimizer=SDLM(hessian_samples=12), seed=5)
    _reference_run(reference, x, y, 2, 5, sdlm=SDLM(hessian_samples=12))
    np.testing.assert_allclose(net._flat, reference._flat, rtol=0, atol=1e-9)
    assert len(history) == 2 and history["epoch"] == [1, 2]
    assert history["learning_rate"] == pytest.approx([5e-4, 5e-4])


@pytest.mark.parametrize("momentum,weight_decay,batch", [(0.0, 0.0, 1), (0.9, 1e-3, 4), (0.5, 0.0, 7)])
def test_sgd_trainer_matches_the_plain_rule(rng, small_chunks, momentum, weight_decay, batch):
    x, y = _data(rng, 30)
    for variant in ("paper", "modern"):
        net, reference = LeNet5(variant, dtype="float64", seed=2), LeNet5(variant, dtype="float64", seed=2)
        # (steps small enough that the two paths' rounding differences do not grow chaotically)
        lr = 1e-3 if variant == "paper" else 1e-2
        opt = dict(learning_rate=lr, momentum=momentum, weight_decay=weight_decay, schedule="cosine")
        net.fit(x, y, epochs=2, batch_size=batch, optimizer=SGD(**opt), seed=9)
        _reference_run(reference, x, y, 2, 9, sgd=SGD(**opt), batch=batch)
        np.testing.assert_allclose(net._flat, reference._flat, rtol=1e-9, atol=1e-12)


def test_history_records_what_happened(rng):
    x, y = _data(rng, 20, "float32")
    xv, yv = _data(rng, 10, "float32")
    net = LeNet5(seed=1)
    history = net.fit(x, y, epochs=2, validation_data=(xv, yv), seed=0)
    last = history[-1]
    assert set(last) == {"epoch", "loss", "train_error", "val_loss", "val_error", "seconds",
                         "images_per_second", "learning_rate", "eps", "h"}
    assert last["val_error"] == pytest.approx(1 - net.score(xv, yv))
    assert last["val_loss"] == pytest.approx(net.loss(xv, yv), rel=1e-5)
    assert 0 <= last["train_error"] <= 1 and last["images_per_second"] > 0


def test_sdlm_records_the_curvature_of_each_pass(rng):
    # eps_k = eta / (mu + h_kk) of the pass, per layer and over all trainable parameters: [min, 5%, 50%, 95%, max]
    x, y = _data(rng, 20, "float32")
    net = LeNet5(seed=1)
    sdlm = SDLM(hessian_samples=8)
    trainer = Trainer(net, sdlm, epochs=1, seed=0)
    trainer.fit(x, y)
    record = trainer.history[-1]
    assert set(record["eps"]) == set(record["h"]) == {"c1", "s2", "c3", "s4", "c5", "f6", "all"}
    eps = 5e-4 / (0.02 + sdlm.h[net.architecture.trainable_mask()].astype(np.float64))
    assert record["eps"]["all"][0] == pytest.approx(eps.min(), rel=1e-6)
    assert record["eps"]["all"][-1] == pytest.approx(eps.max(), rel=1e-6)
    assert record["eps"]["all"][2] == pytest.approx(np.median(eps), rel=1e-6)
    c5 = net.architecture.layer("c5").params[0]
    assert record["h"]["c5"][-1] == pytest.approx(sdlm.h[c5.offset:c5.offset + c5.size].max(), rel=1e-6)
    for quantiles in [*record["eps"].values(), *record["h"].values()]:
        assert quantiles == sorted(quantiles) and len(quantiles) == 5
    assert "eps " in training.format_record(record, 1)
    assert "eps" not in Trainer(LeNet5(seed=1), "sgd", epochs=1).fit(x, y)[-1]


def test_training_is_deterministic_and_seeded(rng):
    x, y = _images(rng, 40)
    runs = []
    for seed in (0, 0, 1):
        net = LeNet5(seed=0, n_threads=2)
        net.fit(x, y, epochs=2, seed=seed, distortions=True)
        runs.append(net._flat.copy())
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_uint8_images_train_like_their_preprocessed_input(rng):
    from lenet_fast import preprocess
    images, y = _images(rng, 16)
    a, b = LeNet5(seed=4), LeNet5(seed=4)
    a.fit(images, y, epochs=1)
    b.fit(preprocess(images), y, epochs=1)
    assert np.array_equal(a._flat, b._flat)


def test_callbacks_see_every_pass_and_can_stop(rng):
    x, y = _data(rng, 10, "float32")
    seen = []

    def stop_after_two(trainer, record):
        seen.append(record["epoch"])
        return record["epoch"] < 2

    history = LeNet5().fit(x, y, epochs=5, callbacks=[stop_after_two])
    assert seen == [1, 2] and len(history) == 2


# --- checkpoints and faults ---------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sdlm", "sgd"])
def test_resume_from_a_pass_boundary_is_bit_identical(tmp_path, rng, small_chunks, optimizer):
    x, y = _images(rng, 30)
    full = LeNet5(seed=1)
    Trainer(full, optimizer, epochs=3, seed=2, distortions=True).fit(x, y)
    ckpt = tmp_path / "run.ckpt.npz"
    Trainer(LeNet5(seed=1), optimizer, epochs=1, seed=2, distortions=True, checkpoint=ckpt).fit(x, y)
    resumed = Trainer.resume(ckpt, epochs=3)
    history = resumed.fit(x, y)
    assert np.array_equal(resumed.net._flat, full._flat)
    assert len(history) == 3


def test_ctrl_c_writes_a_checkpoint_and_resume_is_bit_identical(tmp_path, rng, small_chunks, monkeypatch):
    x, y = _images(rng, 40)
    full = LeNet5(seed=1)
    Trainer(full, epochs=2, seed=3).fit(x, y)

    ckpt = tmp_path / "ckpt.npz"
    trainer = Trainer(LeNet5(seed=1), epochs=2, seed=3, checkpoint=ckpt)
    run_chunk, calls = Trainer._run_chunk, []

    def interrupted(self, order):
        run_chunk(self, order)
        calls.append(1)
        if len(calls) == 7:             # in the middle of the second pass
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Trainer, "_run_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x, y)
    monkeypatch.setattr(Trainer, "_run_chunk", run_chunk)
    assert trainer.epoch == 1 and 0 < trainer.position < 40
    resumed = Trainer.resume(ckpt)
    assert (resumed.epoch, resumed.position) == (trainer.epoch, trainer.position)
    resumed.fit(x, y)
    assert np.array_equal(resumed.net._flat, full._flat)
    # the interrupted trainer itself continues too
    trainer.fit(x, y)
    assert np.array_equal(trainer.net._flat, full._flat)


def test_resume_with_other_data_is_refused(tmp_path, rng):
    x, y = _data(rng, 10, "float32")
    ckpt = tmp_path / "c.npz"
    Trainer(LeNet5(), epochs=1, checkpoint=ckpt).fit(x, y)
    with pytest.raises(ValueError, match="training data differ"):
        Trainer.resume(ckpt, epochs=2).fit(x[::-1], y)


def test_divergence_stops_with_a_clear_error_and_keeps_the_last_good_state(tmp_path, rng):
    x, y = _data(rng, 64, "float32")
    ckpt = tmp_path / "c.npz"
    net = LeNet5("modern", seed=0)
    trainer = Trainer(net, SGD(learning_rate=1e30, momentum=0.0), epochs=1, batch_size=1, checkpoint=ckpt)
    before = net._flat.copy()
    with pytest.raises(TrainingDivergedError, match="diverged in pass 1"):
        trainer.fit(x, y)
    assert np.array_equal(net._flat, before)
    assert not ckpt.exists()
    assert (trainer.epoch, trainer.position) == (0, 0)        # a later fit() redoes the pass


def test_checkpoint_files_are_validated(tmp_path, rng):
    path = tmp_path / "model.npz"
    LeNet5().save(path)
    with pytest.raises(ValueError, match="not a lenet_fast checkpoint"):
        Trainer.resume(path)
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        Trainer.resume(tmp_path / "missing.npz")


# --- arguments ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(optimizer="adam"), "optimizer must be one of"),
    (dict(optimizer="sdlm", momentum=0.9), "SDLM .* has no momentum"),
    (dict(optimizer="sgd", learning_rate=-1.0), "learning_rate must be a finite number > 0"),
    (dict(optimizer="sgd", momentum=1.0), r"momentum must be a finite number in \[0, 1\), got 1.0"),
    (dict(verbose=3), "verbose must be"),
    (dict(seed=-1), "seed must be"),
    (dict(shuffle="never"), "shuffle must be"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Trainer(LeNet5(), **kwargs)


@pytest.mark.parametrize("make", [lambda: Trainer(LeNet5(), epochs=3.0), lambda: Trainer(LeNet5(), batch_size=True),
                                  lambda: Trainer(LeNet5(), seed="0"), lambda: SDLM(hessian_samples=500.0)])
def test_integer_arguments_of_another_type_are_a_type_error(make):
    with pytest.raises(TypeError, match=r"must be an integer >= \d, got "):
        make()


def test_sdlm_needs_the_paper_variant():
    with pytest.raises(ValueError, match="SDLM needs the paper variant"):
        Trainer(LeNet5("modern"), "sdlm")


def test_bad_training_data_is_named(rng):
    net = LeNet5()
    with pytest.raises(ValueError, match="1-D array of 3 labels"):
        net.fit(np.zeros((3, 28, 28), np.uint8), [1, 2])
    with pytest.raises(ValueError, match="nothing to train on"):
        net.fit(np.zeros((0, 28, 28), np.uint8), [])
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        net.fit(np.zeros((3, 28, 28), np.uint8), [1, 2, 3], validation_data=np.zeros(3))


# --- it learns ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_learns_the_embedded_digits(variant):
    from lenet_fast.data.datasets import load_sample
    data = load_sample()
    order = np.random.default_rng(0).permutation(len(data.y_train))
    train, test = order[:2000], order[4000:]
    net = LeNet5(variant, seed=0)
    net.fit(data.x_train[train], data.y_train[train], epochs=3, seed=0)
    assert net.score(data.x_train[test], data.y_train[test]) > 0.9


def test_recipes_set_the_passes_and_sdlm():
    net = LeNet5(seed=0)
    assert Trainer(net).epochs == 20 and Trainer(net, distortions=True).epochs == 60
    assert Trainer(net, distortions=True, recipe="paper").epochs == 20
    assert Trainer(net, distortions=True, epochs=7).epochs == 7
    sdlm = Trainer(net).optimizer
    assert (sdlm.learning_rate, sdlm.mu) == (2.5e-4, 0.02) and Trainer(net, learning_rate=1e-4).optimizer.learning_rate == 1e-4
    assert Trainer(net, recipe="paper").optimizer.learning_rate == 5e-4
    assert Trainer(net).config()["recipe"] == "default"
    with pytest.raises(ValueError, match="recipe must be one of"):
        Trainer(net, recipe="fast")
