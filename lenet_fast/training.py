"""Training: the paper's SDLM, SGD with momentum, and the Trainer that runs the loop.

The inner loop is compiled: ``LeNet5._train_steps`` runs a chunk of forward/loss/backward/update
steps in one call without the GIL. An optimiser only decides, before each pass, the per-parameter
step sizes (SDLM: eta / (mu + h_kk); SGD: the learning rate), the momentum and the weight decay.

Randomness is a pure function of (seed, pass, chunk): the presentation order, the 500 samples of the
curvature estimate and the distortions. So a run that is stopped and resumed from a checkpoint ends
with weights bit-identical to an uninterrupted run with the same thread count.
"""
import hashlib
import json
import math
import signal
import sys
import threading
import time

import numpy as np

from ._checks import finite_number, integer
from .preprocessing import preprocess
from .serialization import model_from, model_header, read_archive, write_archive

CHECKPOINT_FORMAT = "lenet_fast-checkpoint"
CHECKPOINT_VERSION = 1

# The paper's global learning rate per pass (Sec. III-B): (number of passes, eta); None = thereafter.
PAPER_ETA_SCHEDULE = ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5), (None, 1e-5))
CHUNK = 1024            # samples per compiled call: the granularity of progress, Ctrl-C and resume


class TrainingDivergedError(FloatingPointError):
    """The loss or the weights became NaN or infinite."""


class SDLM:
    """Stochastic Diagonal Levenberg-Marquardt (LeCun et al. 1998, Sec. III-B and Appendix C).

    Before each pass the diagonal Gauss-Newton curvature h_kk is estimated on `hessian_samples`
    training samples (a fresh random subset per pass, drawn from the run's seed; the paper does not
    say which) and kept for the pass; each parameter then moves by ``eps_k = eta / (mu + h_kk)``
    times its gradient, one sample at a time, with the paper's schedule of eta over the passes.

    `learning_rate` is the eta of the first passes; the whole schedule is scaled to it. The default,
    2e-5, is the paper's schedule divided by 25: with the paper's own 5e-4 this implementation's
    curvature estimates are far below mu for most weights, every eps_k is close to eta/mu = 0.025,
    and per-sample training on MNIST digits diverges (README, "Choices"). ``SDLM(learning_rate=5e-4)``
    runs the paper's numbers literally."""

    name = "sdlm"
    momentum = 0.0
    weight_decay = 0.0

    def __init__(self, learning_rate=2e-5, mu=0.02, hessian_samples=500):
        mu = finite_number("mu", mu, above=0)
        learning_rate = finite_number("learning_rate", learning_rate, above=0)
        self.learning_rate = learning_rate
        self.mu = mu
        self.hessian_samples = integer("hessian_samples", hessian_samples, at_least=1)
        self.h = None

    def rate(self, epoch, epochs):
        """The global eta of pass `epoch` (0-based)."""
        passes = 0
        for count, eta in PAPER_ETA_SCHEDULE:
            if count is None or epoch < passes + count:
                break
            passes += count
        return eta * self.learning_rate / PAPER_ETA_SCHEDULE[0][1]

    def step_sizes(self, trainer, epoch, rng):
        net = trainer.net
        if net.variant != "paper":
            raise ValueError("SDLM needs the paper variant (its curvature pass is defined for it); "
                             "use optimizer='sgd' for the modern variant")
        n = trainer.n_samples
        subset = np.sort(rng.choice(n, size=min(self.hessian_samples, n), replace=False))
        self.h = net._hessian_flat(trainer.input_of(subset))
        return (self.rate(epoch, trainer.epochs) / (self.mu + self.h)).astype(net.dtype)

    def config(self):
        return {"name": self.name, "learning_rate": self.learning_rate, "mu": self.mu,
                "hessian_samples": self.hessian_samples}


class SGD:
    """Mini-batch SGD with (heavy-ball) momentum and L2 weight decay:
    ``v = momentum * v + g + weight_decay * w;  w -= lr * v``.

    schedule: "constant", "cosine" (lr * (1 + cos(pi * epoch / epochs)) / 2) or "step" (lr divided by
    10 at 50% and again at 75% of the passes)."""

    name = "sgd"
    SCHEDULES = ("constant", "cosine", "step")

    def __init__(self, learning_rate=1e-3, momentum=0.9, weight_decay=0.0, schedule="constant"):
        self.learning_rate = finite_number("learning_rate", learning_rate, above=0)
        self.momentum = finite_number("momentum", momentum, at_least=0, below=1)
        self.weight_decay = finite_number("weight_decay", weight_decay, at_least=0)
        if schedule not in self.SCHEDULES:
            raise ValueError(f"schedule must be one of {self.SCHEDULES}, got {schedule!r}")
        self.schedule = schedule

    def rate(self, epoch, epochs):
        if self.schedule == "cosine":
            return self.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        if self.schedule == "step":
            return self.learning_rate * 0.1 ** ((epoch >= epochs // 2) + (epoch >= (3 * epochs) // 4))
        return self.learning_rate

    def step_sizes(self, trainer, epoch, rng):
        return np.full(trainer.net._flat.size, self.rate(epoch, trainer.epochs), dtype=trainer.net.dtype)

    def config(self):
        return {"name": self.name, "learning_rate": self.learning_rate, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "schedule": self.schedule}


OPTIMIZERS = {"sdlm": SDLM, "sgd": SGD}
# what the modern variant trains with by default (measured on the embedded sample, see README)
MODERN_SGD = {"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine"}


def make_optimizer(optimizer, variant, learning_rate=None, momentum=None, weight_decay=None):
    """An optimiser from a name ("sdlm", "sgd"; None: SDLM for the paper variant, SGD for the modern
    one) and optional hyperparameters, or an optimiser object passed through unchanged."""
    overrides = {k: v for k, v in (("learning_rate", learning_rate), ("momentum", momentum),
                                   ("weight_decay", weight_decay)) if v is not None}
    if isinstance(optimizer, (SDLM, SGD)):
        if overrides:
            raise ValueError(f"pass {sorted(overrides)} to the optimizer object, not alongside it")
        return optimizer
    if optimizer is None:
        optimizer = "sdlm" if variant == "paper" else "sgd"
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)} or an optimizer object, got {optimizer!r}")
    if optimizer == "sdlm":
        if set(overrides) - {"learning_rate"}:
            raise ValueError("SDLM (the paper's method) has no momentum or weight decay; use optimizer='sgd'")
        return SDLM(**overrides)
    defaults = dict(MODERN_SGD) if variant == "modern" else {}
    return SGD(**{**defaults, **overrides})


class History:
    """Per-epoch records of a training run. ``history["val_error"]`` is the column as a list,
    ``history[-1]`` the last record (a dict), ``history.records`` all of them."""

    def __init__(self, records=()):
        self.records = [dict(r) for r in records]

    def __getitem__(self, key):
        if isinstance(key, str):
            return [r.get(key) for r in self.records]
        return self.records[key]

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __repr__(self):
        return f"History({len(self)} epochs)"


class Trainer:
    """The training loop of a LeNet5: passes over the data in chunks of compiled steps, the per-pass
    optimiser preparation (SDLM's curvature), distortions, validation, callbacks, checkpoints.

    Parameters
    ----------
    net : LeNet5
    optimizer : "sdlm", "sgd", an SDLM/SGD object, or None (SDLM for "paper", SGD for "modern")
    epochs : int
        Total passes over the training data (the paper: 20).
    batch_size : int or None
        Samples per update; None: 1 for SDLM (the paper), 64 for SGD.
    learning_rate, momentum, weight_decay : float or None
        Hyperparameters of the named optimiser (None: its default).
    distortions : bool or lenet_fast.distortions.Distortions
        True: the default random affine distortions, drawn afresh for every presented sample.
    seed : int
        Seeds the presentation order, the curvature subsets and the distortions.
    shuffle : "once" or "every_epoch" or None
        "once": one random order kept for every pass (the paper's "constant random order"; the
        default for SDLM); "every_epoch": a new order per pass (the default for SGD).
    callbacks : sequence of callables ``callback(trainer, record)``, called after every pass with its
        record; one that returns False stops the training.
    verbose : 0, 1 or 2
        1: a line per pass on stdout; 2: also a progress bar on stderr when it is a terminal.
    checkpoint : path or None
        Written atomically after every pass and when Ctrl-C stops the training.
    """

    def __init__(self, net, optimizer=None, *, epochs=20, batch_size=None, learning_rate=None, momentum=None,
                 weight_decay=None, distortions=False, seed=0, shuffle=None, callbacks=(), verbose=0,
                 checkpoint=None):
        self.net = net
        self.optimizer = make_optimizer(optimizer, net.variant, learning_rate, momentum, weight_decay)
        if self.optimizer.name == "sdlm" and net.variant != "paper":
            raise ValueError("SDLM needs the paper variant; use optimizer='sgd' for the modern variant")
        self.epochs = integer("epochs", epochs, at_least=1)
        if batch_size is None:
            batch_size = 1 if self.optimizer.name == "sdlm" else 64
        self.batch_size = integer("batch_size", batch_size, at_least=1)
        self.distortions = _distortions(distortions)
        self.seed = integer("seed", seed, at_least=0)
        shuffle = shuffle or ("once" if self.optimizer.name == "sdlm" else "every_epoch")
        if shuffle not in ("once", "every_epoch"):
            raise ValueError(f"shuffle must be 'once' or 'every_epoch', got {shuffle!r}")
        self.shuffle = shuffle
        self.callbacks = list(callbacks)
        if any(not callable(cb) for cb in self.callbacks):
            raise TypeError("callbacks must be callables callback(trainer, record)")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.checkpoint = checkpoint
        # the chunk is a whole number of batches, so resuming at a chunk boundary keeps the batches
        self.chunk = self.batch_size * max(1, CHUNK // self.batch_size)
        self.history = History()
        self.epoch = 0                   # passes completed
        self.position = 0                # samples of the current pass done
        self._partial = {"loss_sum": 0.0, "errors": 0, "seconds": 0.0}
        self._step = None                # per-parameter step sizes of the current pass
        self._epoch_start = None         # the weights at its start: where a diverged pass falls back to
        self._velocity = np.zeros_like(net._flat) if self.optimizer.momentum else None
        self._fingerprint = None
        self._x = self._y = None
        self.metadata = {}               # free-form JSON kept in checkpoints (the CLI's data options)

    # --- data ---------------------------------------------------------------------------------------

    @property
    def n_samples(self):
        return len(self._y)

    def input_of(self, indices):
        """Network input of the training samples `indices` (undistorted)."""
        x = self._x[indices]
        return preprocess(x, dtype=self.net.dtype) if x.dtype == np.uint8 else x

    def _set_data(self, x, y):
        x = np.asarray(x)
        if x.dtype == np.uint8:
            if x.ndim != 3 or x.shape[1:] not in ((28, 28), (32, 32)):
                raise ValueError(f"x: uint8 images must have shape (N, 28, 28) or (N, 32, 32), got {x.shape}")
        else:
            x = self.net._as_input(x)
        y = self.net._as_labels(y, len(x))
        if not len(x):
            raise ValueError("x is empty: there is nothing to train on")
        digest = hashlib.sha256(np.ascontiguousarray(x).data)
        digest.update(y.data)
        fingerprint = {"n": int(len(x)), "sha256": digest.hexdigest()}
        if self._fingerprint is not None and fingerprint != self._fingerprint:
            raise ValueError("the training data differ from the data this run started with "
                             f"({self._fingerprint['n']} samples, sha256 {self._fingerprint['sha256'][:12]}...)")
        self._fingerprint, self._x, self._y = fingerprint, x, y

    # --- the loop -----------------------------------------------------------------------------------

    def fit(self, x, y, validation_data=None):
        """Train until `epochs` passes are done (continuing a resumed or stopped run); returns the
        History. Ctrl-C stops at the next chunk boundary, writes the checkpoint (if any) and raises
        KeyboardInterrupt; calling fit again continues from there."""
        self._set_data(x, y)
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            xv = self.net._as_input(validation_data[0], "validation_data[0]")
            validation_data = (xv, self.net._as_labels(validation_data[1], len(xv), "validation_data[1]"))
        bar = _ProgressBar() if self.verbose == 2 and sys.stderr.isatty() else None
        with _StopOnInterrupt() as stop:
            while self.epoch < self.epochs:
                if self._step is None:
                    self._begin_epoch()
                order = self._order()
                while self.position < self.n_samples:
                    self._run_chunk(order)
                    if bar:
                        bar.update(self.epoch, self.epochs, self.position, self.n_samples, self._partial["seconds"])
                    if stop.requested:
                        if bar:
                            bar.clear()
                        if self.checkpoint is not None:
                            self.save_checkpoint(self.checkpoint)
                        raise KeyboardInterrupt
                if bar:
                    bar.clear()
                if not self._end_epoch(validation_data):
                    break
        return self.history

    def _rng(self, *stream):
        return np.random.default_rng([self.seed, *stream])

    def _order(self):
        if self.shuffle == "once":
            return self._rng(0).permutation(self.n_samples)
        return self._rng(1, self.epoch).permutation(self.n_samples)

    def _begin_epoch(self):
        self._step = self.optimizer.step_sizes(self, self.epoch, self._rng(2, self.epoch))
        self._epoch_start = self.net._flat.copy()

    def _run_chunk(self, order):
        tick = time.perf_counter()
        start = self.position
        indices = order[start:start + self.chunk]
        x = self.input_of(indices)
        if self.distortions is not None:
            x = self.distortions.apply(x, self._rng(3, self.epoch, start // self.chunk),
                                       out=x, n_threads=self.net.n_threads)
        losses, predictions = self.net._train_steps(
            x, self._y[indices], np.arange(len(indices)), self._step, self.batch_size,
            self.optimizer.momentum, self.optimizer.weight_decay, self._velocity)
        seconds = time.perf_counter() - tick
        loss_sum = float(losses.sum(dtype=np.float64))
        if not (math.isfinite(loss_sum) and np.isfinite(self.net._flat).all()):
            # back to the start of the pass, so that a later fit() redoes it from a consistent state
            self.net._flat[...] = self._epoch_start
            self.position, self._step = 0, None
            self._partial = {"loss_sum": 0.0, "errors": 0, "seconds": 0.0}
            if self._velocity is not None:
                self._velocity[...] = 0
            where = f"the last good checkpoint is {self.checkpoint}" if self.checkpoint else "no checkpoint was kept"
            raise TrainingDivergedError(
                f"training diverged in pass {self.epoch + 1} (samples {start}..{start + len(indices) - 1}): "
                f"the loss became {loss_sum}; the model is back at the start of the pass and {where}. "
                f"Try a smaller learning rate.")
        self._partial["loss_sum"] += loss_sum
        self._partial["errors"] += int(np.count_nonzero(predictions != self._y[indices]))
        self._partial["seconds"] += seconds
        self.position = start + len(indices)

    def _end_epoch(self, validation_data):
        n, p = self.n_samples, self._partial
        record = {"epoch": self.epoch + 1, "loss": p["loss_sum"] / n, "train_error": p["errors"] / n,
                  "seconds": p["seconds"], "images_per_second": n / max(p["seconds"], 1e-9),
                  "learning_rate": self.optimizer.rate(self.epoch, self.epochs)}
        if validation_data is not None:
            result = self.net.evaluate(*validation_data)
            record["val_loss"], record["val_error"] = result["loss"], result["error"]
        self.history.records.append(record)
        self.epoch, self.position, self._step, self._epoch_start = self.epoch + 1, 0, None, None
        self._partial = {"loss_sum": 0.0, "errors": 0, "seconds": 0.0}
        if self.checkpoint is not None:
            self.save_checkpoint(self.checkpoint)
        if self.verbose:
            print(format_record(record, self.epochs), flush=True)
        keep_going = True
        for callback in self.callbacks:
            if callback(self, record) is False:
                keep_going = False
        return keep_going

    # --- checkpoints --------------------------------------------------------------------------------

    def config(self):
        return {"optimizer": self.optimizer.config(), "epochs": self.epochs, "batch_size": self.batch_size,
                "seed": self.seed, "shuffle": self.shuffle, "chunk": self.chunk,
                "distortions": None if self.distortions is None else self.distortions.config()}

    def save_checkpoint(self, path):
        """Write the whole state (model, optimiser, position in the run, history) atomically."""
        header = {"model": model_header(self.net), "trainer": self.config(),
                  "progress": {"epoch": self.epoch, "position": self.position, **self._partial},
                  "history": self.history.records, "data": self._fingerprint, "metadata": self.metadata}
        arrays = {f"model/{name}": value for name, value in self.net.parameters().items()}
        for name, value in (("step", self._step), ("velocity", self._velocity),
                            ("epoch_start", self._epoch_start),
                            ("sdlm_h", getattr(self.optimizer, "h", None))):
            if value is not None:
                arrays[f"state/{name}"] = value
        write_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, header, arrays)

    @classmethod
    def resume(cls, path, epochs=None, n_threads=None, verbose=0, callbacks=(), checkpoint=None):
        """A Trainer (and its LeNet5, ``trainer.net``) in the state saved in the checkpoint `path`.
        `epochs` may raise the total number of passes; call ``fit`` with the same data to continue."""
        from .model import LeNet5
        header, arrays = read_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "checkpoint")
        try:
            config, progress = header["trainer"], header["progress"]
            net = model_from(LeNet5, path, header["model"],
                             {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}, n_threads)
            opt = dict(config["optimizer"])
            optimizer = OPTIMIZERS[opt.pop("name")](**opt)
            distortions = config["distortions"]
            if distortions is not None:
                from .distortions import Distortions
                distortions = Distortions(**distortions)
            trainer = cls(net, optimizer, epochs=config["epochs"] if epochs is None else epochs,
                          batch_size=config["batch_size"], distortions=distortions, seed=config["seed"],
                          shuffle=config["shuffle"], callbacks=callbacks, verbose=verbose,
                          checkpoint=path if checkpoint is None else checkpoint)
            if trainer.chunk != config["chunk"]:
                raise ValueError(f"chunk size {config['chunk']} differs from this version's {trainer.chunk}")
            trainer.history = History(header["history"])
            trainer.epoch, trainer.position = int(progress["epoch"]), int(progress["position"])
            trainer._partial = {k: progress[k] for k in ("loss_sum", "errors", "seconds")}
            trainer._fingerprint = header["data"]
            trainer.metadata = dict(header.get("metadata") or {})
            state = {k[6:]: v for k, v in arrays.items() if k.startswith("state/")}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: invalid checkpoint ({exc})") from None
        if trainer.epoch > trainer.epochs:
            raise ValueError(f"{path}: the run has already done {trainer.epoch} passes, more than epochs={trainer.epochs}")
        size, dtype = net._flat.size, net.dtype
        for name in state:
            if state[name].shape != (size,) or state[name].dtype != dtype:
                raise ValueError(f"{path}: invalid checkpoint (state/{name} has shape {state[name].shape})")
        if trainer._velocity is not None and "velocity" in state:
            trainer._velocity[...] = state["velocity"]
        if trainer.position:
            if "step" not in state or "epoch_start" not in state:
                raise ValueError(f"{path}: invalid checkpoint (a pass is half done but its step sizes are missing)")
            trainer._step, trainer._epoch_start = state["step"].copy(), state["epoch_start"].copy()
        if "sdlm_h" in state:
            trainer.optimizer.h = state["sdlm_h"].copy()
        return trainer


def _distortions(distortions):
    if distortions is None or distortions is False:
        return None
    from .distortions import Distortions
    if distortions is True:
        return Distortions()
    if isinstance(distortions, Distortions):
        return distortions
    raise TypeError(f"distortions must be a bool or a Distortions object, got {distortions!r}")


def format_record(record, epochs):
    """One line per pass: loss, training and validation error, seconds, images/s."""
    width = len(str(epochs))
    line = (f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
            f"train error {100 * record['train_error']:5.2f}%")
    if "val_error" in record:
        line += f"  val error {100 * record['val_error']:5.2f}%"
    return line + f"  {record['seconds']:6.1f} s  {record['images_per_second']:8,.0f} img/s"


class _StopOnInterrupt:
    """While active (main thread only), the first Ctrl-C sets `requested` instead of raising, so the
    loop can stop at a consistent point; a second Ctrl-C interrupts at once."""

    def __enter__(self):
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class _ProgressBar:
    """A one-line progress bar on stderr with the rate and the time left in the pass."""

    def __init__(self, width=30):
        self.width, self._last = width, 0.0

    def update(self, epoch, epochs, done, total, seconds):
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        rate = done / seconds if seconds > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        filled = int(self.width * done / total)
        sys.stderr.write(f"\repoch {epoch + 1}/{epochs} [{'#' * filled}{'.' * (self.width - filled)}] "
                         f"{done:,}/{total:,}  {rate:,.0f} img/s  ETA {int(eta) // 60}:{int(eta) % 60:02d} ")
        sys.stderr.flush()

    def clear(self):
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def json_log(path):
    """A callback that appends each pass's record to `path` as one JSON line."""
    def log(trainer, record):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return log
