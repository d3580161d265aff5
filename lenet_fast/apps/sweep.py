"""``lenet-fast sweep``: many training runs (seeds x a grid of hyper-parameters) on Dask or in this process.

Every combination of a configuration of the grid and a seed is one training run, made the way
``lenet-fast train`` makes it (the same data split, network, Trainer and test, see `run_training`), by
default single-threaded so that the runs fill the cores. A run is a pure function of its data, options and
seed, so it gives the same result (the same weights, bit for bit) whichever worker runs it, for the same
thread count and SIMD build. The tasks carry the data's path (or dataset name), not the images: each worker
process loads the data once. The report (sweep_report.py) holds every run and a summary per
configuration; a run that fails is reported with its error while the others finish; Ctrl-C keeps what
finished.
"""
import argparse
import functools
import itertools
import os
import sys
import tempfile
import time

from ..io.archive import atomic_write
from ..nn.architecture import DTYPES, VARIANTS
from . import cluster, sweep_report, train_command
from .commands import UserError, load_data
from .reproduce import parse_seeds

_BOOLEAN = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
# the train options a grid may vary: key -> (parse a value, the choices or None)
GRID_KEYS = {
    "variant": (str, VARIANTS), "dtype": (str, DTYPES), "criterion": (str, ("mse", "map", "cross_entropy")),
    "optimizer": (str, ("sdlm", "sgd")), "recipe": (str, ("default", "paper")),
    "init": (str, ("paper", "paper_sqrt", "pytorch")), "epochs": (int, None), "batch_size": (int, None),
    "learning_rate": (float, None), "distortions": (_BOOLEAN.__getitem__, None), "val_split": (float, None),
    "test_split": (float, None),
}
TRAIN_OPTIONS = tuple(GRID_KEYS) + ("threads",)
# lenet-fast train's defaults of the options above that have one (the parser leaves them at None: given or not)
DEFAULTS = {"variant": "paper", "dtype": "float32", "recipe": "default", "distortions": False, "val_split": 0.0,
            "test_split": 0.2}


# --- the grid ---------------------------------------------------------------------------------------

def parse_grid(items):
    """["learning_rate=1e-4,5e-5", "batch_size=1,8"] -> {"learning_rate": [1e-4, 5e-5], "batch_size": [1, 8]}
    (keys also with dashes); ValueError with a one-line message for anything else."""
    grid = {}
    for item in items or ():
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not values.strip():
            raise ValueError(f"--grid must be KEY=VALUE1,VALUE2,..., got {item!r}")
        if key not in GRID_KEYS:
            raise ValueError(f"--grid: unknown key {key!r}; the keys are {', '.join(GRID_KEYS)}")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice: give all its values in one --grid {key}=V1,V2")
        grid[key] = [_grid_value(key, text.strip()) for text in values.split(",")]
    return grid


def _grid_value(key, text):
    parse, choices = GRID_KEYS[key]
    try:
        value = parse(text.lower() if key == "distortions" else text)
    except (KeyError, ValueError):
        kind = {int: "an integer", float: "a number"}.get(parse, "true or false")
        raise ValueError(f"--grid {key}: {text!r} is not {kind}") from None
    if choices is not None and value not in choices:
        raise ValueError(f"--grid {key}: {text!r} is not one of {', '.join(choices)}")
    return value


def configurations(grid):
    """Every combination of the grid's values, as dicts in the grid's key order ([{}] for no grid)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def run_name(params, seed):
    """The model file's name of a run: 'learning_rate=0.0001,batch_size=8,seed=0.npz'."""
    name = ",".join(f"{key}={value}" for key, value in {**params, "seed": seed}.items())
    return "".join(c if c.isalnum() or c in "=,._-" else "_" for c in name) + ".npz"


# --- one run (on a worker) --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _dataset(directory, name):
    """The Dataset of --data DIR or --dataset NAME (neither: the embedded sample), read once per process."""
    return load_data(argparse.Namespace(data=directory, dataset=name, quiet=True))


def run_training(data, options, seed, params):
    """One run as ``lenet-fast train`` makes it: the data `data` ({"data": DIR or None, "dataset": NAME or
    None}), the train options `options` overridden by `params`, the seed. Returns {"test_error" (None
    without a test set), "train_error" (the last pass's, measured on the fly), "epochs", "seconds",
    "model_bytes" (the trained model's file)}. It reads nothing but the data, so it is the same run in
    any process."""
    started = time.perf_counter()
    dataset, _ = _dataset(data["data"], data["dataset"])
    args = argparse.Namespace(**data, **{**options, **params}, seed=seed, quiet=True)
    sets = train_command._training_sets(dataset, args)
    trainer = train_command._new_trainer(args, callbacks=[], checkpoint=None)
    history = trainer.fit(sets.x, sets.y, validation_data=sets.validation)
    test_error = None if sets.test is None else trainer.net.evaluate(*sets.test)["error"]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.npz")
        trainer.net.save(path)
        with open(path, "rb") as f:
            model = f.read()
    return {"test_error": test_error, "train_error": history[-1]["train_error"], "epochs": len(history),
            "seconds": time.perf_counter() - started, "model_bytes": model}


# --- the command ------------------------------------------------------------------------------------

def run_sweep(args):
    """Run every (configuration, seed), print a line per finished run and the table, write --json/--models."""
    seeds = parse_seeds(args.seeds)
    grid = parse_grid(args.grid)
    options = {key: getattr(args, key) for key in TRAIN_OPTIONS}
    for key in grid:
        if options[key] is not None:
            raise UserError(f"--{key.replace('_', '-')} and --grid {key} are both given: give one of them")
    options.update({key: value for key, value in DEFAULTS.items() if options[key] is None})
    data = {"data": os.path.abspath(args.data) if args.data else None, "dataset": args.dataset}
    _, description = _dataset(data["data"], data["dataset"])        # a mistake in the data: said now
    _prepare_outputs(args)
    calls = [(params, seed) for params in configurations(grid) for seed in seeds]
    settings = {"data": description, "seeds": seeds, "grid": grid, "options": options,
                "scheduler": args.scheduler}
    print(f"sweep on {description}: {len(calls) // len(seeds)} configuration(s) x {len(seeds)} seed(s) = "
          f"{len(calls)} run(s), {args.threads} thread(s) each", flush=True)
    started = time.perf_counter()
    runs, status = {}, 0
    try:
        _run_all(args, data, options, calls, runs)
    except KeyboardInterrupt:
        print(f"\ninterrupted: keeping the {len(runs)} finished run(s)", file=sys.stderr)
        status = 130
    report = sweep_report.report([runs[i] for i in sorted(runs)], settings, time.perf_counter() - started)
    sweep_report.print_table(report)
    if args.json:
        sweep_report.write_json(report, args.json)
        print(f"wrote {args.json}")
    failed = sum(run["error"] is not None for run in report["runs"])
    if failed and not status:
        print(f"lenet-fast: {failed} of {len(calls)} run(s) failed (their errors are above)", file=sys.stderr)
        status = 1
    return status


def _run_all(args, data, options, calls, runs):
    """Run the (params, seed) `calls` on --scheduler; `runs` gets each one's record as it finishes."""
    with cluster.executor(args.scheduler) as pool:
        print(f"running on {pool.description}", flush=True)
        tasks = [(data, options, seed, params) for params, seed in calls]
        for outcome in pool.as_completed(run_training, tasks):
            runs[outcome.index] = _record(args, *calls[outcome.index], outcome)
            print(f"[{len(runs)}/{len(calls)}] " + sweep_report.run_line(runs[outcome.index]), flush=True)


def _record(args, params, seed, outcome):
    """The report's entry of a finished run; its model written to --models."""
    run = {"seed": seed, "params": params, "test_error": None, "train_error": None, "epochs": None,
           "seconds": None, "model": None, "worker": outcome.worker, "error": outcome.error}
    if outcome.error is None:
        model = outcome.value.pop("model_bytes")
        run.update(outcome.value)
        if args.models:
            run["model"] = os.path.join(args.models, run_name(params, seed))
            atomic_write(run["model"], lambda f: f.write(model))
    return run


def _prepare_outputs(args):
    """Make --models; check --json can be written: before the runs, not after them."""
    if args.models:
        if os.path.exists(args.models) and not os.path.isdir(args.models):
            raise UserError(f"--models {args.models}: exists and is not a directory")
        os.makedirs(args.models, exist_ok=True)
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        if os.path.isdir(args.json) or not os.path.isdir(directory):
            raise UserError(f"--json {args.json}: give a file in an existing directory")


def add_parser(commands):
    """The ``sweep`` subcommand's parser (cli.py calls it)."""
    sweep = commands.add_parser(
        "sweep", help="many training runs (seeds x a grid of hyper-parameters), on Dask or in this process",
        description="Train once per seed and configuration of the grid, each run as lenet-fast train makes it "
                    "(single-threaded by default, so that the runs fill the cores); print a line per run and "
                    "a table of the mean and spread per configuration; --json keeps every run.")
    group = sweep.add_argument_group("data")
    group.add_argument("--dataset", choices=("mnist", "fashion-mnist", "sample"),
                       help="a known dataset (default: the embedded sample, when no --data is given)")
    group.add_argument("--data", metavar="DIR", help="a directory of IDX files (train-*, t10k-* when present); "
                                                     "on a cluster, at the same path on every worker")
    sweep.add_argument("--seeds", default="3", metavar="K|LIST",
                       help="K: seeds 0..K-1; or a comma-separated list of seeds (default 3)")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                       help=f"a train option and its values (repeat for more keys; every combination is run); "
                            f"keys: {', '.join(GRID_KEYS)}")
    options = sweep.add_argument_group("train options (as lenet-fast train's; the same for every run)")
    options.add_argument("--variant", choices=VARIANTS, help="default paper")
    options.add_argument("--dtype", choices=DTYPES, help="default float32")
    options.add_argument("--criterion", choices=GRID_KEYS["criterion"][1])
    options.add_argument("--optimizer", choices=GRID_KEYS["optimizer"][1])
    options.add_argument("--recipe", choices=GRID_KEYS["recipe"][1], help="default: default")
    options.add_argument("--init", choices=GRID_KEYS["init"][1])
    options.add_argument("--epochs", type=int, help="passes per run (default: the recipe's)")
    options.add_argument("--batch-size", type=int)
    options.add_argument("--learning-rate", type=float)
    options.add_argument("--distortions", action="store_true", default=None)
    options.add_argument("--val-split", type=float, help="default 0")
    options.add_argument("--test-split", type=float, help="default 0.2 (without t10k files)")
    options.add_argument("--threads", type=cluster.positive_int, default=1,
                         help="OpenMP threads per run (default 1: the runs fill the cores)")
    cluster.add_scheduler_option(sweep)
    sweep.add_argument("--json", metavar="FILE", help="write every run and the summary per configuration")
    sweep.add_argument("--models", metavar="DIR", help="save every run's model here, named by its "
                                                       "configuration and seed")
    sweep.set_defaults(run=run_sweep)
    return sweep
