"""The pictures of ``lenet-fast show`` inside the network (matplotlib, the optional ``[plot]`` extra).

Each function draws the arrays ``lenet_fast.inspect`` gives into one PNG and returns its path: the
C1 and C3 filters, the picture as prepared, a layer's feature maps, C5 and F6, and the ten scores. The
other pictures (confusion matrix, mistakes, training curves) are in ``figures_data``. Every figure has
a title and labelled axes, and every layer is drawn on one colour scale shared by its maps.
"""
import numpy as np

from ..inspect import filters, rbf_centers
from ..nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND

PLOT_EXTRA = "pip install 'lenet_fast[plot]'"
DIVERGING, SEQUENTIAL, GREY = "RdBu_r", "viridis", "gray_r"
UNCONNECTED = "#d9d9d9"
LAYER_TITLES = {
    "c1": "C1: 6 feature maps, 28×28 (convolution 5×5, then squashing)",
    "s2": "S2: 6 feature maps, 14×14 (trainable 2×2 subsampling)",
    "c3": "C3: 16 feature maps, 10×10 (convolution 5×5 over the S2 maps of Table I)",
    "s4": "S4: 16 feature maps, 5×5 (trainable 2×2 subsampling)",
}


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend; ImportError naming the extra without it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"the pictures need matplotlib: {PLOT_EXTRA}") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    return plt


def save(figure, path):
    """Write `figure` as a PNG at `path`, close it, return the path."""
    figure.savefig(path, dpi=150, bbox_inches="tight", facecolor="white")
    pyplot().close(figure)
    return str(path)


def colour_scale(values):
    """(cmap, vmin, vmax) shared by all of `values`: symmetric around 0 when there are negative values
    (the squashing function's outputs, weights), from 0 otherwise (ReLU outputs)."""
    values = np.asarray(values, dtype=np.float64)
    top = float(np.abs(values).max()) or 1.0
    if values.min() < 0:
        return DIVERGING, -top, top
    return SEQUENTIAL, 0.0, top


def _grid(plt, rows, cols, width, height, title, spacing=None):
    """A figure of rows x cols picture cells; `spacing` (gridspec margins) instead of the slower
    constrained layout, for many cells."""
    layout = None if spacing else "constrained"
    figure, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, layout=layout,
                                gridspec_kw=spacing)
    figure.suptitle(title, fontsize=13)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return figure, axes


def _colourbar(figure, axes, image, label):
    bar = figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, aspect=25)
    bar.set_label(label)


# --- the weights -------------------------------------------------------------------------------------

def c1_filters(net, path):
    """C1's 6 kernels side by side."""
    weights, _ = filters(net, "c1")
    cmap, low, high = colour_scale(weights)
    plt = pyplot()
    figure, axes = _grid(plt, 1, 6, 11, 2.6, "C1: the 6 learned 5×5 filters")
    for k, ax in enumerate(axes[0]):
        image = ax.imshow(weights[k, 0], cmap=cmap, vmin=low, vmax=high)
        ax.set_xlabel(f"filter {k}")
    axes[0, 0].set_ylabel("input: the\n32×32 picture")
    _colourbar(figure, axes, image, "weight")
    return save(figure, path)


def c3_filters(net, path):
    """C3's 16 x 6 kernels laid out as Table I: a row per S2 map read, a column per C3 map."""
    weights, connected = filters(net, "c3")
    cmap, low, high = colour_scale(weights[connected])
    plt = pyplot()
    spacing = dict(left=0.05, right=0.91, bottom=0.09, top=0.88, wspace=0.1, hspace=0.1)
    figure, axes = _grid(plt, 6, 16, 15, 6.4, "C3: the learned 5×5 filters, laid out as Table I "
                                             "(grey: the S2 map is not connected)", spacing)
    for c in range(6):
        for k in range(16):
            ax = axes[c, k]
            if connected[k, c]:
                image = ax.imshow(weights[k, c], cmap=cmap, vmin=low, vmax=high)
            else:                       # an empty 5x5 picture: the cell keeps its square shape
                ax.imshow(np.full((5, 5), np.nan), cmap=cmap, vmin=low, vmax=high)
                ax.set_facecolor(UNCONNECTED)
            if c == 0:
                ax.set_title(str(k), fontsize=9)
            if k == 0:
                ax.set_ylabel(str(c), rotation=0, labelpad=10, va="center")
    figure.supxlabel("C3 feature map (output)", y=0.02)
    figure.supylabel("S2 feature map (input)", x=0.015)
    figure.colorbar(image, cax=figure.add_axes((0.925, 0.12, 0.012, 0.73))).set_label("weight")
    return save(figure, path)


# --- one picture -------------------------------------------------------------------------------------

def prepared_input(original, reading, path):
    """The picture file, the MNIST-style 28x28 image and the 32x32 network input."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    figure.suptitle(f"What LeNet-5 sees (it reads a {reading.digit})", fontsize=13)
    panels = ((original, "the picture file", "gray", 0, 255),
              (reading.picture, "MNIST-style 28×28\n(cropped, 20×20, centred by mass)", GREY, 0, 255),
              (reading.activations["x"], "network input 32×32\n(padded; −0.1 … 1.175)", GREY,
               INPUT_BACKGROUND, INPUT_FOREGROUND))
    for ax, (image, title, cmap, low, high) in zip(axes, panels):
        shown = ax.imshow(image, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    figure.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.04).set_label("input value")
    figure.tight_layout()
    return save(figure, path)


def feature_maps(reading, layer, path):
    """One layer's maps for one picture, on the layer's shared colour scale."""
    maps = reading.activations[layer]
    rows = 1 if len(maps) <= 8 else 2
    cols = len(maps) // rows
    cmap, low, high = colour_scale(maps)
    plt = pyplot()
    figure, axes = _grid(plt, rows, cols, 1.6 * cols + 1.4, 1.8 * rows + 0.9, LAYER_TITLES[layer])
    for k, ax in enumerate(axes.flat):
        image = ax.imshow(maps[k], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_xlabel(f"map {k}", fontsize=9)
    _colourbar(figure, axes, image, "activation")
    return save(figure, path)


def dense_layers(net, reading, path):
    """C5's 120 outputs, F6's 84 drawn as the 7x12 picture they are compared with, and (paper) the
    RBF centre of the digit read."""
    c5, f6 = reading.activations["c5"], reading.activations["f6"]
    centers = rbf_centers(net)
    cmap, low, high = colour_scale(np.concatenate([c5, f6]))
    plt = pyplot()
    panels = 3 if centers is not None else 2
    figure, axes = plt.subplots(1, panels, figsize=(3.3 * panels + 1, 4.2), squeeze=False)
    axes = axes[0]
    figure.suptitle("C5 and F6: the last hidden layers", fontsize=13)
    shown = [(c5.reshape(10, 12), "C5: 120 units (10×12)"), (f6.reshape(12, 7), "F6: 84 units (12×7)")]
    if centers is not None:
        shown.append((centers[reading.digit].reshape(12, 7), f"RBF centre of {reading.digit} (Fig. 3)"))
    for ax, (values, title) in zip(axes, shown):
        image = ax.imshow(values, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
    figure.colorbar(image, ax=list(axes), fraction=0.03, pad=0.03).set_label("activation")
    return save(figure, path)


def scores(reading, path):
    """The ten penalties (or scores) as bars, the digit read highlighted."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(7, 4))
    colours = ["tab:green" if d == reading.digit else "tab:gray" for d in range(10)]
    bars = ax.bar(range(10), reading.scores, color=colours)
    values = ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(10))
    ax.set_xlabel("digit")
    winner = ax.get_xticklabels()[reading.digit]
    winner.set_color("tab:green")
    winner.set_fontweight("bold")
    values[reading.digit].set(color="tab:green", fontweight="bold")
    if reading.score_name == "penalties":
        ax.set_ylabel("RBF penalty (lower = more likely)")
        ax.set_title(f"The 10 RBF penalties: the lowest, {reading.digit}, is the digit read")
    else:
        ax.set_ylabel("score (logit; higher = more likely)")
        ax.set_title(f"The 10 scores: the highest, {reading.digit}, is the digit read")
    ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return save(figure, path)
