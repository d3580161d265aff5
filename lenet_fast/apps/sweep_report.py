"""The report of ``lenet-fast sweep``: the runs, a summary per configuration (mean +- standard deviation),
the line printed per finished run, the table, the JSON file.

The JSON file::

    {"runs": [{"seed": 0, "params": {"learning_rate": 0.0001}, "test_error": 0.05, "train_error": 0.04,
               "epochs": 2, "seconds": 1.3, "model": "models/learning_rate=0.0001,seed=0.npz",
               "worker": "tcp://127.0.0.1:40121", "error": null}, ...],
     "summary": [{"params": {"learning_rate": 0.0001}, "runs": 3, "failed": 0, "mean_test_error": 0.05,
                  "std_test_error": 0.004, "mean_train_error": 0.04, "std_train_error": 0.003,
                  "mean_seconds": 1.3}, ...],
     "settings": {"data": ..., "seeds": [...], "grid": {...}, "options": {...}, "scheduler": "local"},
     "seconds": 12.5}

Errors are fractions; a failed run has "error": "ValueError: ..." and nulls for its results; the standard
deviation is the sample one (n - 1), 0 for a single run; "worker" is "local" with --scheduler none.
"""
import json
import statistics
import sys

from ..io.archive import atomic_write


def label(params):
    """'learning_rate=0.0001 batch_size=8', or 'the options given' for a sweep without a grid."""
    return " ".join(f"{key}={value}" for key, value in params.items()) or "the options given"


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def run_line(run):
    """The progress line of one finished run."""
    head = f"{label(run['params'])}, seed {run['seed']}: "
    if run["error"] is not None:
        return head + f"FAILED: {run['error']}"
    return head + (f"test error {_percent(run['test_error'])}, training error {_percent(run['train_error'])}, "
                   f"{run['seconds']:.1f} s")


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs):
    """One entry per configuration (in the order of the runs): the count of runs and failures, mean and
    standard deviation of the test and training errors, mean seconds per run."""
    groups = {}
    for run in runs:
        groups.setdefault(json.dumps(run["params"], sort_keys=True), []).append(run)
    summary = []
    for group in groups.values():
        done = [run for run in group if run["error"] is None]
        test, test_std = _mean_std(run["test_error"] for run in done)
        train, train_std = _mean_std(run["train_error"] for run in done)
        seconds, _ = _mean_std(run["seconds"] for run in done)
        summary.append({"params": group[0]["params"], "runs": len(done), "failed": len(group) - len(done),
                        "mean_test_error": test, "std_test_error": test_std, "mean_train_error": train,
                        "std_train_error": train_std, "mean_seconds": seconds})
    return summary


def report(runs, settings, seconds):
    return {"runs": runs, "summary": summarize(runs), "settings": settings, "seconds": seconds}


def print_table(report, out=None):
    """The summary as a table: a row per configuration."""
    out = out or sys.stdout
    rows = report["summary"]
    if not rows:
        print("no run finished", file=out)
        return
    width = max(len("configuration"), *(len(label(row["params"])) for row in rows))
    print(f"\n{'configuration':<{width}}  {'runs':>4}  {'failed':>6}  {'test error (mean +- std)':>24}  "
          f"{'training error':>14}  {'s/run':>6}", file=out)
    for row in rows:
        test = "-" if row["mean_test_error"] is None else \
            f"{100 * row['mean_test_error']:.2f}% +- {100 * row['std_test_error']:.2f}%"
        seconds = "-" if row["mean_seconds"] is None else f"{row['mean_seconds']:.1f}"
        print(f"{label(row['params']):<{width}}  {row['runs']:>4}  {row['failed']:>6}  {test:>24}  "
              f"{_percent(row['mean_train_error']):>14}  {seconds:>6}", file=out)
    print(f"{len(report['runs'])} run(s) in {report['seconds']:.1f} s", file=out)


def write_json(report, path):
    atomic_write(path, lambda f: f.write(json.dumps(report, indent=1).encode("utf-8")))
