"""The pictures of ``lenet-fast show`` about a data set and a training run (matplotlib, ``[plot]``):
the confusion matrix, a gallery of the most confident mistakes, the training curves of a
``--log-json`` file and SDLM's step sizes per layer. Each function writes one PNG and returns its path.
"""
import numpy as np

from .figures import GREY, pyplot, save

LAYER_COLOURS = {"c1": "tab:blue", "s2": "tab:cyan", "c3": "tab:orange", "s4": "tab:olive",
                 "c5": "tab:red", "f6": "tab:purple"}


def confusion(matrix, title, path):
    """The (10, 10) count table as a heat map with the counts written in (rows: the true digit)."""
    plt = pyplot()
    from matplotlib.colors import PowerNorm
    figure, ax = plt.subplots(figsize=(6.8, 5.8))
    image = ax.imshow(matrix, cmap="Blues", norm=PowerNorm(0.4, vmin=0, vmax=max(int(matrix.max()), 1)))
    strong = 0.35 * matrix.max()
    for (true, predicted), count in np.ndenumerate(matrix):
        if count:
            ax.text(predicted, true, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > strong else "black")
    errors = int(matrix.sum() - np.trace(matrix))
    ax.set_title(f"{title}\n{matrix.sum():,} images, {errors:,} misclassified "
                 f"({100 * errors / max(matrix.sum(), 1):.2f}%)", fontsize=11)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("digit read by the network")
    ax.set_ylabel("true digit")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04).set_label("images")
    figure.tight_layout()
    return save(figure, path)


def mistakes(images, found, score_name, path):
    """A gallery of misclassified digits (``inspect.Mistakes``), most confident first."""
    plt = pyplot()
    count = max(len(found.index), 1)
    cols = min(count, 8)
    rows = -(-count // cols)
    figure, axes = plt.subplots(rows, cols, figsize=(1.55 * cols + 0.4, 1.9 * rows + 0.9), squeeze=False)
    unit = "penalty" if score_name == "penalties" else "logit"
    figure.suptitle(f"The {len(found.index)} most confident mistakes (margin: how far the true digit's "
                    f"{unit} was behind)", fontsize=11)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for ax, index, true, predicted, margin in zip(axes.flat, *found):
        ax.imshow(images[index], cmap=GREY, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"true {true} → read {predicted}", fontsize=9)
        ax.set_xlabel(f"#{index}, margin {margin:.1f}", fontsize=8)
    if not len(found.index):
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center", transform=axes[0, 0].transAxes)
    figure.tight_layout()
    return save(figure, path)


def curves(log, path):
    """Error (%) and loss per pass of a training run (``inspect.training_curves``)."""
    plt = pyplot()
    figure, (errors, losses) = plt.subplots(1, 2, figsize=(11, 4.2))
    epochs = log["epoch"]
    figure.suptitle(f"Training: {len(epochs)} passes", fontsize=13)
    errors.plot(epochs, 100 * log["train_error"], "o-", color="tab:orange", label="training (during the pass)")
    losses.plot(epochs, log["loss"], "o-", color="tab:orange", label="training")
    if "val_error" in log:
        errors.plot(epochs, 100 * log["val_error"], "s-", color="tab:blue", label="validation")
    if "val_loss" in log:
        losses.plot(epochs, log["val_loss"], "s-", color="tab:blue", label="validation")
    if "test_error" in log:
        errors.plot([epochs[-1]], [100 * log["test_error"]], "D", color="tab:red", markersize=8,
                    label=f"test, at the end ({100 * log['test_error']:.2f}%)")
    for ax, what in ((errors, "error (%)"), (losses, "loss (mean per sample)")):
        ax.set_xlabel("pass (epoch)")
        ax.set_ylabel(what)
        ax.set_title(what.split(" (")[0].capitalize() + " per pass", fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
        _integer_ticks(ax)
    errors.set_ylim(bottom=0)
    figure.tight_layout()
    return save(figure, path)


def step_sizes(log, path):
    """SDLM's per-parameter step sizes eps_k per layer and pass: the median, the 5%-95% band and the
    range, one panel per layer on a shared logarithmic scale."""
    plt = pyplot()
    layers = [name for name in log["eps"] if name != "all"]
    cols = min(len(layers), 3)
    rows = -(-len(layers) // cols)
    figure, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 0.6, 2.8 * rows + 0.8), sharex=True,
                                sharey=True, squeeze=False, layout="constrained")
    figure.suptitle("SDLM's step sizes ε_k = η / (μ + h_kk) per layer: median, 5%–95% (dark band), "
                    "range (light band)", fontsize=11)
    epochs = log["epoch"]
    for ax, layer in zip(axes.flat, layers):
        ranges, colour = log["eps"][layer], LAYER_COLOURS.get(layer, "tab:gray")
        ax.fill_between(epochs, ranges[:, 0], ranges[:, 4], color=colour, alpha=0.12, linewidth=0)
        ax.fill_between(epochs, ranges[:, 1], ranges[:, 3], color=colour, alpha=0.3, linewidth=0)
        ax.plot(epochs, ranges[:, 2], "o-", color=colour, markersize=3)
        ax.set_title(layer.upper(), fontsize=10)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        _integer_ticks(ax)
    for ax in axes.flat[len(layers):]:
        ax.set_visible(False)
    figure.supxlabel("pass (epoch)")
    figure.supylabel("step size ε_k")
    return save(figure, path)


def _integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
