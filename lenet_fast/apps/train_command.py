"""What ``lenet-fast train`` does: pick the images, build (or resume) the Trainer, fit, save, test.

Ctrl-C during training writes the checkpoint and exits 130; a run that diverges is a `UserError`.
"""
import os
import sys
import time
from typing import NamedTuple, Optional

import numpy as np

from .._checks import finite_number, integer
from ..data.datasets import DATASETS
from ..model import LeNet5
from ..train import Trainer, TrainingDivergedError, json_log
from .commands import UserError, hold_out, load_data

# The data options a run starts with, kept in its checkpoints so that --resume trains on the same images.
_RUN_DATA = ("dataset", "data", "val_split", "test_split")
_SPLIT_DEFAULTS = {"val_split": 0.0, "test_split": 0.2}    # (None in the parser: given or not, for --resume)


class _TrainingSets(NamedTuple):
    """The images of a run; validation and test are (x, y) or None, test_note says where the test set is from."""
    x: np.ndarray
    y: np.ndarray
    validation: Optional[tuple]
    test: Optional[tuple]
    test_note: str


def run_train(args):
    """Train, save the model to --out (default lenet5.npz; a resumed run: its own) and print its test error."""
    _check_numbers(args)
    callbacks = [json_log(args.log_json)] if args.log_json else []
    trainer = _resumed_trainer(args, callbacks) if args.resume else None
    for key, default in _SPLIT_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    out = args.out or "lenet5.npz"
    checkpoint = trainer.checkpoint if trainer is not None else args.checkpoint or _checkpoint_next_to(out)
    _check_output("--out", out)               # before training, not after it
    _check_output("--checkpoint", checkpoint)
    data, description = load_data(args)
    sets = _training_sets(data, args)
    if trainer is None:
        trainer = _new_trainer(args, callbacks, checkpoint=checkpoint)
    trainer.metadata["out"] = os.path.abspath(out)          # where --resume saves the model
    _describe_run(args, trainer, description, sets)
    started = time.perf_counter()
    try:
        trainer.fit(sets.x, sets.y, validation_data=sets.validation)
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint written to {trainer.checkpoint}; continue with "
              f"lenet-fast train --resume {trainer.checkpoint}", file=sys.stderr)
        return 130
    except TrainingDivergedError as exc:
        raise UserError(str(exc)) from None
    trainer.net.save(out)
    _finish(args, trainer, out, started, sets.test)
    return 0


# --- the trainer ------------------------------------------------------------------------------------

def _resumed_trainer(args, callbacks):
    """The Trainer of the --resume checkpoint; `args` takes the data options and seed the run started with."""
    trainer = Trainer.resume(args.resume, epochs=args.epochs, n_threads=args.threads, verbose=_verbosity(args),
                             callbacks=callbacks, checkpoint=args.checkpoint or args.resume, model_class=LeNet5)
    run = trainer.metadata
    _check_run(args.resume, run)
    for key in ("dataset", "val_split", "test_split"):       # given again: they must be the run's
        given = getattr(args, key)
        if key in run and given is not None and given != run[key]:
            raise UserError(f"--{key.replace('_', '-')} {given} differs from the run's ({run[key]}, kept in "
                            f"{args.resume}): a resumed run trains on its own images; leave the option out")
        if given is None:
            setattr(args, key, run.get(key))
    if args.data is None:    # an explicit --data wins (the files may have moved; fit checks they are the same)
        args.data = run.get("data")
    if args.out is None:
        args.out = run.get("out") or _out_next_to(args.resume)
    args.seed = trainer.seed
    return trainer


def _check_run(path, run):
    """The command line's entries in a checkpoint (read from a file): a UserError naming a wrong one."""
    for key in ("dataset", "data", "out", "val_split", "test_split"):
        value = run.get(key)
        if key.endswith("split"):
            ok = value is None or (type(value) in (int, float) and 0 <= value < 1)
        else:
            ok = value is None or (isinstance(value, str) and (key != "dataset" or value in DATASETS))
        if not ok:
            raise UserError(f"{path}: invalid checkpoint (its run's {key} is {value!r})")


def _out_next_to(checkpoint):
    """The model file of a run whose checkpoint predates the "out" entry: X.npz for X.checkpoint.npz."""
    root, ext = os.path.splitext(checkpoint)
    if not root.endswith(".checkpoint"):
        raise UserError(f"{checkpoint} does not say where its run saves the model: give --out FILE")
    return root[:-len(".checkpoint")] + ext


def _check_numbers(args):
    """The number options, checked by their command-line names before anything is read or trained."""
    integer("--seed", args.seed, at_least=0)
    for option in ("epochs", "batch_size"):
        if getattr(args, option) is not None:
            integer(f"--{option.replace('_', '-')}", getattr(args, option), at_least=1)
    if args.learning_rate is not None:
        finite_number("--learning-rate", args.learning_rate, above=0)
    for option in ("val_split", "test_split"):
        if getattr(args, option) is not None:
            finite_number(f"--{option.replace('_', '-')}", getattr(args, option), at_least=0, below=1)


def _check_output(option, path):
    """A UserError naming `option` unless `path` can be written: not a directory, in an existing directory."""
    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a directory: give a file name, such as "
                        f"{os.path.join(path, 'lenet5.npz')}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"{option} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UserError(f"{option} {path}: the directory {directory} is not writable")


def _new_trainer(args, callbacks, checkpoint):
    net = LeNet5(args.variant, dtype=args.dtype, seed=args.seed, n_threads=args.threads, criterion=args.criterion,
                 init=args.init)
    trainer = Trainer(net, args.optimizer, epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, distortions=args.distortions, seed=args.seed,
                      callbacks=callbacks, verbose=_verbosity(args), checkpoint=checkpoint, recipe=args.recipe)
    trainer.metadata = {key: getattr(args, key) for key in _RUN_DATA}
    if args.data:     # absolute, so that --resume finds it from any directory
        trainer.metadata["data"] = os.path.abspath(args.data)
    return trainer


def _verbosity(args):
    return 0 if args.quiet else 2


def _checkpoint_next_to(out):
    root, ext = os.path.splitext(out)
    return f"{root}.checkpoint{ext or '.npz'}"


# --- the images -------------------------------------------------------------------------------------

def _training_sets(data, args):
    """Hold out the test set (when there are no t10k files), then the validation set, both seeded by --seed."""
    x, y, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    test_note = "the t10k files"
    if x_test is None:
        x, y, x_test, y_test = hold_out(x, y, args.test_split, args.seed, "test-split")
        test_note = f"a held-out {args.test_split:.0%} of the training files"
    x, y, x_val, y_val = hold_out(x, y, args.val_split, args.seed + 1, "val-split")
    return _TrainingSets(x, y, validation=None if y_val is None else (x_val, y_val),
                         test=None if y_test is None else (x_test, y_test), test_note=test_note)


# --- what the run prints ----------------------------------------------------------------------------

def _describe_run(args, trainer, description, sets):
    """Two lines before training (none with --quiet): the images, then the network and the recipe."""
    images = f"training on {description}: {len(sets.y):,} images"
    if sets.validation is not None:
        images += f", {len(sets.validation[1]):,} for validation"
    if sets.test is not None:
        images += f", test set {len(sets.test[1]):,} images ({sets.test_note})"
    else:
        images += ", no test set"
    _say(args, images)
    net = trainer.net
    recipe = (f"{net.variant} LeNet-5, {net.dtype}, {net.init} init, {net.criterion} loss, "
              f"{trainer.recipe.name} recipe, {trainer.optimizer.name.upper()}, "
              f"batch {trainer.batch_size}, {trainer.epochs} passes")
    if trainer.distortions is not None:
        recipe += ", distortions"
    if args.resume:
        recipe += f", resuming after pass {trainer.epoch}"
    _say(args, recipe)


def _finish(args, trainer, out, started, test):
    """After saving: the test error (when there is a test set), the closing line, the --log-json "end" record."""
    summary = {"event": "end", "seconds": time.perf_counter() - started, "model": out}
    if test is not None:
        x_test, y_test = test
        result = trainer.net.evaluate(x_test, y_test)
        wrong = int(np.count_nonzero(result["predictions"] != y_test))
        summary.update(test_error=result["error"], test_loss=result["loss"], test_images=len(y_test))
        print(f"test error {100 * result['error']:.2f}% ({wrong} of {len(y_test):,} misclassified)")
    _say(args, f"saved the model to {out} (checkpoint: {trainer.checkpoint}); "
               f"{summary['seconds']:.1f} s in all")
    if args.log_json:
        json_log(args.log_json)(trainer, summary)


def _say(args, line):
    if not args.quiet:
        print(line, flush=True)
