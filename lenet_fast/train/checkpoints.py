"""Checkpoints (format "lenet_fast-checkpoint"): a training run's whole state in one file, written
atomically after every pass: the model, the optimiser's state (SDLM's h_kk, the momentum buffer, the
pass's step sizes), the position in the run, the history and the data's fingerprint."""
import re

import numpy as np

from .._checks import finite_number, integer
from ..io.archive import read_archive, write_archive
from ..io.model_files import model_from, model_header
from .distortions import Distortions
from .optimizers import OPTIMIZERS
from .progress import History

CHECKPOINT_FORMAT = "lenet_fast-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(trainer, path):
    """Write the whole state (model, optimiser, position in the run, history) atomically."""
    header = {"model": model_header(trainer.net), "trainer": trainer.config(),
              "progress": {"epoch": trainer.epoch, "position": trainer.position, **trainer._partial},
              "history": trainer.history.records, "data": trainer._fingerprint, "metadata": trainer.metadata}
    arrays = {f"model/{name}": value for name, value in trainer.net.parameters().items()}
    for name, value in (("step", trainer._step), ("velocity", trainer._velocity),
                        ("epoch_start", trainer._epoch_start),
                        ("sdlm_h", getattr(trainer.optimizer, "h", None))):
        if value is not None:
            arrays[f"state/{name}"] = value
    write_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, header, arrays)


def load_checkpoint(trainer_class, path, model_class, epochs=None, n_threads=None, verbose=0, callbacks=(),
                    checkpoint=None):
    """A `trainer_class` (and its `model_class` model) in the state saved in the checkpoint `path`."""
    header, arrays = read_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "checkpoint")
    try:
        config, progress = header["trainer"], header["progress"]
        net = model_from(model_class, path, header["model"],
                         {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}, n_threads)
        opt = dict(config["optimizer"])
        optimizer = OPTIMIZERS[opt.pop("name")](**opt)
        distortions = config["distortions"]
        if distortions is not None:
            distortions = Distortions(**distortions)
        trainer = trainer_class(net, optimizer, epochs=config["epochs"] if epochs is None else epochs,
                      batch_size=config["batch_size"], distortions=distortions, seed=config["seed"],
                      shuffle=config["shuffle"], callbacks=callbacks, verbose=verbose,
                      checkpoint=path if checkpoint is None else checkpoint,
                      recipe=config.get("recipe", "default"))     # (checkpoints before recipes: "default")
        if trainer.chunk != config["chunk"]:
            raise ValueError(f"chunk size {config['chunk']} differs from this version's {trainer.chunk}")
        trainer.history = History(header["history"])
        trainer.epoch, trainer.position = int(progress["epoch"]), int(progress["position"])
        trainer._partial = {k: progress[k] for k in ("loss_sum", "errors", "seconds")}
        trainer._fingerprint = header["data"]
        trainer.metadata = dict(header.get("metadata") or {})
        _check_progress(trainer, progress)
        state = {k[6:]: v for k, v in arrays.items() if k.startswith("state/")}
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ValueError(f"{path}: invalid checkpoint ({exc})") from None
    if trainer.epoch > trainer.epochs:
        raise ValueError(f"{path}: the run has already done {trainer.epoch} passes, more than epochs={trainer.epochs}")
    size, dtype = net.flat_parameters.size, net.dtype
    for name in state:
        if state[name].shape != (size,) or state[name].dtype != dtype:
            raise ValueError(f"{path}: invalid checkpoint (state/{name} has shape {state[name].shape})")
        if not np.isfinite(state[name]).all() or (name in ("step", "sdlm_h") and state[name].min() < 0):
            raise ValueError(f"{path}: invalid checkpoint (state/{name} holds NaN, infinite or negative values)")
    if trainer._velocity is not None and "velocity" in state:
        trainer._velocity[...] = state["velocity"]
    if trainer.position:
        if "step" not in state or "epoch_start" not in state:
            raise ValueError(f"{path}: invalid checkpoint (a pass is half done but its step sizes are missing)")
        trainer._step, trainer._epoch_start = state["step"].copy(), state["epoch_start"].copy()
    if "sdlm_h" in state:
        trainer.optimizer.h = state["sdlm_h"].copy()
    return trainer


def _check_progress(trainer, progress):
    """ValueError (naming the field) unless the position in the run is one the Trainer can have written:
    0 <= epoch <= epochs, a data fingerprint of n >= 1 samples, 0 <= position <= n at a chunk boundary
    (or at n), 0 <= errors <= position, a finite loss sum and time >= 0, a history of records."""
    fingerprint = trainer._fingerprint
    if not (isinstance(fingerprint, dict) and isinstance(fingerprint.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", fingerprint["sha256"])):
        raise ValueError(f"data must be the training data's fingerprint {{n, sha256}}, got {fingerprint!r}")
    n = integer("data.n", fingerprint.get("n"), at_least=1)
    integer("progress.epoch", progress["epoch"], at_least=0)
    position = integer("progress.position", progress["position"], at_least=0, at_most=n)
    if position % trainer.chunk and position != n:
        raise ValueError(f"progress.position {position} is neither a multiple of the chunk ({trainer.chunk}) "
                         f"nor the end of the data ({n})")
    integer("progress.errors", progress["errors"], at_least=0, at_most=position)
    finite_number("progress.loss_sum", progress["loss_sum"], at_least=0)
    finite_number("progress.seconds", progress["seconds"], at_least=0)
    if not all(isinstance(record, dict) for record in trainer.history.records):
        raise ValueError("history must be a list of records")
    if not isinstance(trainer.metadata, dict):
        raise ValueError("metadata must be a JSON object")
