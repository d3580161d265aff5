"""The Trainer: passes over the data in chunks of compiled training steps, with the optimiser's per-pass
preparation (SDLM's curvature), distortions, validation, callbacks and checkpoints.

The inner loop is compiled: ``Network.train_steps`` runs a chunk of forward/loss/backward/update steps in
one call without the GIL. Randomness is a pure function of (seed, pass, chunk): the presentation order,
the 500 samples of the curvature estimate and the distortions. So a run that is stopped and resumed from
a checkpoint ends with weights bit-identical to an uninterrupted run with the same thread count.
"""
import hashlib
import math
import sys
import time

import numpy as np

from .._checks import integer
from ..nn.network import Network
from ..nn.preprocessing import preprocess
from .checkpoints import load_checkpoint, save_checkpoint
from .distortions import Distortions
from . import recipes
from .optimizers import make_optimizer
from .progress import History, ProgressBar, StopOnInterrupt, format_record

CHUNK = 1024            # samples per compiled call: the granularity of progress, Ctrl-C and resume


class TrainingDivergedError(FloatingPointError):
    """The loss or the weights became NaN or infinite."""


class Trainer:
    """The training loop of a LeNet-5 (a ``lenet_fast.nn.network.Network``, e.g. a LeNet5): passes over the data in chunks of compiled steps, the per-pass
    optimiser preparation (SDLM's curvature), distortions, validation, callbacks, checkpoints.

    Parameters
    ----------
    net : lenet_fast.LeNet5 (or any lenet_fast.nn.network.Network)
    optimizer : "sdlm", "sgd", an SDLM/SGD object, or None (SDLM for "paper", SGD for "modern")
    epochs : int or None
        Total passes over the training data; None: the recipe's (20; 60 with distortions in "default").
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
    recipe : "default" or "paper"
        Where the settings left at None come from (``lenet_fast.train.recipes``): SDLM's eta and mu, and
        the number of passes.
    """

    def __init__(self, net, optimizer=None, *, epochs=None, batch_size=None, learning_rate=None, momentum=None,
                 weight_decay=None, distortions=False, seed=0, shuffle=None, callbacks=(), verbose=0,
                 checkpoint=None, recipe="default"):
        self.net = net
        self.recipe = recipes.recipe(recipe)
        self.optimizer = make_optimizer(optimizer, net.variant, learning_rate, momentum, weight_decay, self.recipe)
        if self.optimizer.name == "sdlm" and net.variant != "paper":
            raise ValueError("SDLM needs the paper variant; use optimizer='sgd' for the modern variant")
        self.distortions = _distortions(distortions)
        if epochs is None:
            epochs = self.recipe.passes(self.distortions is not None)
        self.epochs = integer("epochs", epochs, at_least=1)
        if batch_size is None:
            batch_size = 1 if self.optimizer.name == "sdlm" else 64
        self.batch_size = integer("batch_size", batch_size, at_least=1)
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
        self._velocity = np.zeros_like(net.flat_parameters) if self.optimizer.momentum else None
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
            x = self.net.prepare_input(x)
        y = self.net.prepare_labels(y, len(x))
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
            xv = self.net.prepare_input(validation_data[0], "validation_data[0]")
            validation_data = (xv, self.net.prepare_labels(validation_data[1], len(xv), "validation_data[1]"))
        bar = ProgressBar() if self.verbose == 2 and sys.stderr.isatty() else None
        with StopOnInterrupt() as stop:
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
        self._epoch_start = self.net.flat_parameters.copy()

    def _run_chunk(self, order):
        tick = time.perf_counter()
        start = self.position
        indices = order[start:start + self.chunk]
        x = self.input_of(indices)
        if self.distortions is not None:
            x = self.distortions.apply(x, self._rng(3, self.epoch, start // self.chunk),
                                       out=x, n_threads=self.net.n_threads)
        losses, predictions = self.net.train_steps(
            x, self._y[indices], np.arange(len(indices)), self._step, self.batch_size,
            self.optimizer.momentum, self.optimizer.weight_decay, self._velocity)
        seconds = time.perf_counter() - tick
        loss_sum = float(losses.sum(dtype=np.float64))
        if not (math.isfinite(loss_sum) and np.isfinite(self.net.flat_parameters).all()):
            # back to the start of the pass, so that a later fit() redoes it from a consistent state
            self.net.flat_parameters[...] = self._epoch_start
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
        if hasattr(self.optimizer, "curvature_summary"):       # SDLM: the pass's eps_k and h_kk
            record.update(self.optimizer.curvature_summary(self.net.architecture, self._step))
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
        return {"optimizer": self.optimizer.config(), "recipe": self.recipe.name, "epochs": self.epochs,
                "batch_size": self.batch_size,
                "seed": self.seed, "shuffle": self.shuffle, "chunk": self.chunk,
                "distortions": None if self.distortions is None else self.distortions.config()}

    def save_checkpoint(self, path):
        """Write the whole state (model, optimiser, position in the run, history) atomically."""
        save_checkpoint(self, path)

    @classmethod
    def resume(cls, path, epochs=None, n_threads=None, verbose=0, callbacks=(), checkpoint=None, model_class=Network):
        """A Trainer (and its model, ``trainer.net``, a `model_class`) in the state saved in the checkpoint
        `path`. `epochs` may raise the total number of passes; call ``fit`` with the same data to continue."""
        return load_checkpoint(cls, path, model_class, epochs=epochs, n_threads=n_threads, verbose=verbose,
                               callbacks=callbacks, checkpoint=checkpoint)


def _distortions(distortions):
    if distortions is None or distortions is False:
        return None
    if distortions is True:
        return Distortions()
    if isinstance(distortions, Distortions):
        return distortions
    raise TypeError(f"distortions must be a bool or a Distortions object, got {distortions!r}")
