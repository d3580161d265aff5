"""``lenet-fast reproduce``: the paper's experiment (Sec. III-B, Fig. 5) over several seeds, beside the
paper's figures.

Each seed is one training run of the paper's recipe (the same code path as ``lenet-fast train``),
scored after every pass on the test set for the curves of Fig. 5; the training error is measured on the
fly during each pass, as the paper's is. On data without t10k files the test set is a held-out fraction
of the training files, the same for every seed (split seed 0), so that the runs differ only by their
own seed. The report is a table, the per-pass curves as numbers, a JSON file (``--json``) and a PNG of
the curves (``--plot``, when matplotlib is installed). Ctrl-C keeps the runs that finished.
"""
import json
import statistics
import sys
import time

from ..io.archive import atomic_write
from ..model import LeNet5
from ..train import Trainer, recipes
from . import cluster
from .commands import UserError, hold_out, load_data

# The paper's results on MNIST (60,000 training images, the 10,000 test images), Sec. III-B and Fig. 5,
# errors as fractions; fig5: (pass, test error, training error) read from the figure (LENET5_SPEC.md §9).
PAPER = {
    "test_error": 0.0095, "test_error_distortions": 0.008, "train_error": 0.0035, "passes": 20,
    "fig5": [(1, .0267, .0489), (2, .0224, .0306), (3, .0147, .0176), (4, .0142, .0147), (5, .0142, .0121),
             (6, .0108, .0090), (7, .0103, .0077), (8, .0105, .0069), (9, .0097, .0056), (10, .0095, .0049),
             (11, .0095, .0046), (12, .0097, .0044), (13, .0095, .0041), (14, .0095, .0038),
             (15, .0095, .0038), (16, .0095, .0038), (17, .0095, .0038), (18, .0095, .0036),
             (19, .0095, .0036), (20, .0095, .0036)],
}


def parse_seeds(text):
    """'3' -> seeds 0, 1, 2; '0,5,7' -> those seeds. ValueError with a one-line message."""
    try:
        seeds = [int(part) for part in text.split(",")] if "," in text else list(range(int(text)))
    except ValueError:
        raise ValueError(f"--seeds must be a count (3: seeds 0, 1, 2) or a list (0,5,7), got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must give at least one seed, none negative or repeated, got {text!r}")
    return seeds


def run_seed(images, seed, epochs=None, distortions=False, n_threads=None, recipe="paper"):
    """One run of a recipe (epochs None: the recipe's): {"seed", "test_error", "train_error", "epochs",
    "seconds", "curve"}."""
    x, y, x_test, y_test = images
    started = time.perf_counter()
    trainer = Trainer(LeNet5(seed=seed, n_threads=n_threads), epochs=epochs, distortions=distortions, seed=seed,
                      recipe=recipe)
    history = trainer.fit(x, y, validation_data=(x_test, y_test))
    curve = [{"epoch": r["epoch"], "test_error": r["val_error"], "train_error": r["train_error"]} for r in history]
    return {"seed": seed, "test_error": curve[-1]["test_error"], "train_error": curve[-1]["train_error"],
            "epochs": len(history), "seconds": time.perf_counter() - started, "curve": curve}


def summarize(runs, settings):
    """The report: the runs, the mean and standard deviation of their test errors, the paper's figures."""
    errors = [run["test_error"] for run in runs]
    return {"runs": runs,
            "mean_test_error": statistics.fmean(errors) if errors else None,
            "std_test_error": statistics.stdev(errors) if len(errors) > 1 else 0.0 if errors else None,
            "mean_train_error": statistics.fmean(r["train_error"] for r in runs) if runs else None,
            "paper": PAPER, "settings": settings}


def run_reproduce(args):
    """The command: every seed in turn, the table and curves, then the JSON file and the plot."""
    seeds = parse_seeds(args.seeds)
    data, description = load_data(args)
    x, y, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    test_note = "the t10k files"
    if x_test is None:
        x, y, x_test, y_test = hold_out(x, y, args.test_split, 0, "test-split")
        if x_test is None:
            raise UserError("--test-split 0 leaves no test set (the data have no t10k files)")
        test_note = f"a held-out {args.test_split:.0%} of the training files"
    epochs = args.epochs or recipes.recipe(args.recipe).passes(args.distortions)
    settings = {"data": description, "name": args.data or args.dataset or "sample", "train_images": len(y), "test_images": len(y_test), "test_set": test_note,
                "seeds": seeds, "recipe": args.recipe, "epochs": epochs, "distortions": args.distortions}
    print(f"reproducing the paper on {description}: {len(y):,} training images, {len(y_test):,} test images "
          f"({test_note}); {len(seeds)} seed(s), the {args.recipe} recipe, {epochs} passes"
          + (", distortions" if args.distortions else ""),
          flush=True)
    runs, status = [], 0
    try:
        for run in _seed_runs(args, (x, y, x_test, y_test), seeds, epochs):
            runs.append(run)
            print(f"seed {run['seed']}: test error {100 * run['test_error']:.2f}%, training error "
                  f"{100 * run['train_error']:.2f}%, {run['seconds']:.1f} s", flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted: keeping the {len(runs)} finished run(s)", file=sys.stderr)
        status = 130
    runs.sort(key=lambda run: seeds.index(run["seed"]))      # (with --scheduler, in the order they finished)
    report = summarize(runs, settings)
    print_report(report)
    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(report, indent=1).encode("utf-8")))
        print(f"wrote {args.json}")
    if args.plot and runs:
        print(plot_curves(report, args.plot))
    return status


def _seed_runs(args, images, seeds, epochs):
    """The runs of the seeds as they finish: one after another here, or with --scheduler through
    lenet_fast.apps.cluster (the images sent to each worker once; one thread per run unless --threads)."""
    if args.scheduler is None:
        return (run_seed(images, seed, epochs, args.distortions, args.threads, args.recipe) for seed in seeds)
    return cluster.map_seeds(args.scheduler, run_seed, images, seeds, epochs, args.distortions, args.threads or 1,
                             args.recipe)


def print_report(report, out=None):
    """The table against the paper, then the mean per-pass curves beside Fig. 5's."""
    out = out or sys.stdout
    runs, paper = report["runs"], report["paper"]
    if not runs:
        print("no run finished", file=out)
        return
    distortions = report["settings"]["distortions"]
    paper_test = paper["test_error_distortions" if distortions else "test_error"]
    spread = f" +- {100 * report['std_test_error']:.2f}%" if len(runs) > 1 else ""
    print(f"\n{'':24}{'these runs':>22}{'the paper (full MNIST)':>26}", file=out)
    print(f"{'test error':24}{100 * report['mean_test_error']:>13.2f}%{spread:>8}{100 * paper_test:>25.2f}%", file=out)
    print(f"{'training error':24}{100 * report['mean_train_error']:>13.2f}%{'':>8}{100 * paper['train_error']:>25.2f}%",
          file=out)
    print(f"{'runs':24}{len(runs):>14}", file=out)
    print("\nper pass, mean over the runs (test / training error, %), and Fig. 5 (no distortions)", file=out)
    paper_curve = {epoch: (test, train) for epoch, test, train in paper["fig5"]}
    for i in range(min(len(r["curve"]) for r in runs)):
        test = statistics.fmean(r["curve"][i]["test_error"] for r in runs)
        train = statistics.fmean(r["curve"][i]["train_error"] for r in runs)
        epoch = runs[0]["curve"][i]["epoch"]
        fig5 = paper_curve.get(epoch)
        fig5 = f"{100 * fig5[0]:6.2f} / {100 * fig5[1]:5.2f}" if fig5 else ""
        print(f"  pass {epoch:>3}  {100 * test:6.2f} / {100 * train:5.2f}    {fig5}", file=out)


def plot_curves(report, path):
    """A PNG of the per-pass errors of every run beside Fig. 5's; returns the line to print."""
    try:
        import matplotlib
    except ImportError:
        return "no plot: matplotlib is not installed (pip install 'lenet_fast[plot]')"
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=120)
    for i, run in enumerate(report["runs"]):
        epochs = [p["epoch"] for p in run["curve"]]
        axes.plot(epochs, [100 * p["test_error"] for p in run["curve"]], color="tab:blue", alpha=0.7,
                  label="test (these runs)" if i == 0 else None)
        axes.plot(epochs, [100 * p["train_error"] for p in run["curve"]], color="tab:orange", alpha=0.7,
                  label="training, on the fly (these runs)" if i == 0 else None)
    fig5 = report["paper"]["fig5"]
    axes.plot([e for e, _, _ in fig5], [100 * t for _, t, _ in fig5], "b--", label="test, paper Fig. 5")
    axes.plot([e for e, _, _ in fig5], [100 * t for _, _, t in fig5], "--", color="tab:orange",
              label="training, paper Fig. 5")
    settings = report["settings"]
    axes.set(xlabel="training pass", ylabel="error (%)", yscale="log",
             title=f"LeNet-5, {settings['name']}: {settings['train_images']:,} training images, "
                   f"{len(report['runs'])} run(s)" + (", distortions" if settings["distortions"] else ""))
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    atomic_write(path, lambda f: figure.savefig(f, format="png"))
    pyplot.close(figure)
    return f"wrote {path}"
