"""LeNet-5's architecture: the one place for the layers, their shapes and the layout of the parameters.

``architecture(variant)`` gives, for "paper" (LeCun et al. 1998: Table I C3, trainable subsampling, the
scaled tanh, the fixed RBF output) and "modern" (ReLU, max pooling, full C3, a linear output), the layers in
order with their input and output shapes, their parameter tensors (names, shapes, offsets in the model's
flat parameter array), their connection and trainable-parameter counts, and where each layer's output sits
in a sample's row of activations. Everything else takes these facts from here: the model's named views
and its summary, the initialisation, the model-file checks, the FLOP counts of the benchmark, and the
compiled fused kernels (they receive the offsets, and their activation layout is checked against this one
when ``lenet_fast.nn.network_kernels`` is imported).
"""
import dataclasses
import functools

import numpy as np

from .constants import C3_TABLE

VARIANTS = ("paper", "modern")
DTYPES = ("float32", "float64")
# the losses each variant trains with (the first is the default)
CRITERIA = {"paper": ("mse", "map"), "modern": ("cross_entropy",)}
KERNEL = 5          # every convolution's kernel is 5x5
POOL = 2            # both pooling layers take 2x2 blocks


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter tensor: ``name`` ("c1.weight"), ``shape``, and ``offset`` in the flat array."""
    name: str
    shape: tuple
    offset: int

    @property
    def size(self):
        return int(np.prod(self.shape))


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer. ``kind``: conv, subsample (trainable: coef * block sum + bias), maxpool, dense or rbf;
    ``activation``: the squashing function applied to its output ("squash" = 1.7159 tanh(2a/3), "relu",
    or None). ``table`` (convolutions only): (input maps, output maps) uint8, 1 = connected.
    ``activation_offset``: where its output starts in a sample's row of activations."""
    name: str
    kind: str
    activation: str
    input_shape: tuple
    output_shape: tuple
    params: tuple
    table: np.ndarray
    activation_offset: int

    @property
    def output_size(self):
        return int(np.prod(self.output_shape))

    @property
    def connections(self):
        """Connections as the paper counts them (Sec. II-B): every multiply of an input by a weight, and
        every bias; a trainable subsampling unit has 4 inputs and a bias."""
        positions = self.output_size // self.output_shape[0]
        if self.kind == "conv":
            return (KERNEL * KERNEL * int(self.table.sum()) + self.output_shape[0]) * positions
        if self.kind in ("subsample", "maxpool"):
            return self.output_size * (POOL * POOL + (self.kind == "subsample"))
        n_in = int(np.prod(self.input_shape))
        return self.output_size * (n_in + (self.kind == "dense"))

    @property
    def trainable(self):
        """Trainable parameters: all but the C3 weights of pairs outside the connection table."""
        unconnected = int((self.table == 0).sum()) * KERNEL * KERNEL if self.table is not None else 0
        return sum(p.size for p in self.params) - unconnected


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A variant's layers in order, and the facts derived from them."""
    variant: str
    layers: tuple

    @property
    def params(self):
        """Every parameter tensor, in the order of the flat array."""
        return tuple(p for layer in self.layers for p in layer.params)

    @property
    def size(self):
        """Length of the flat parameter array (C3's unconnected weights included, as zeros)."""
        last = self.params[-1]
        return last.offset + last.size

    @property
    def num_parameters(self):
        """Trainable parameters: 60,000 (paper) or 61,706 (modern)."""
        return sum(layer.trainable for layer in self.layers)

    @property
    def connections(self):
        """340,908 for the paper variant (Sec. II-B)."""
        return sum(layer.connections for layer in self.layers)

    def summary_table(self):
        """The per-layer table of ``Network.summary``: output shape, trainable parameters, connections, totals."""
        rows = [("layer", "type", "output", "params", "connections"), ("input", "", "1x32x32", "", "")]
        for layer in self.layers:
            kind = {"conv": "convolution", "subsample": "subsampling", "maxpool": "max-pool 2x2",
                    "dense": "full", "rbf": "Euclidean RBF (fixed)"}[layer.kind]
            rows.append((layer.name.upper(), kind, "x".join(map(str, layer.output_shape)), f"{layer.trainable:,}",
                         f"{layer.connections:,}"))
        rows.append(("total", "", "", f"{self.num_parameters:,}", f"{self.connections:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for i, r in enumerate(rows):
            if i in (1, len(rows) - 1):
                lines.append("  ".join("-" * w for w in widths))
            lines.append("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        return "\n".join(lines)

    @property
    def activation_size(self):
        """Length of a sample's row of activations: every layer's output, in order."""
        last = self.layers[-1]
        return last.activation_offset + last.output_size

    @property
    def c3_table(self):
        return self.layer("c3").table

    @property
    def decision(self):
        """How scores become a digit: "argmin" of the RBF penalties (paper), "argmax" of the logits."""
        return "argmin" if self.layers[-1].kind == "rbf" else "argmax"

    @property
    def criteria(self):
        return CRITERIA[self.variant]

    def layer(self, name):
        return next(layer for layer in self.layers if layer.name == name)

    def offsets(self):
        """dict parameter name -> offset in the flat array."""
        return {p.name: p.offset for p in self.params}

    def trainable_mask(self):
        """(size,) bool: False for the C3 weights outside the connection table (they stay zero)."""
        mask = np.ones(self.size, dtype=bool)
        for layer in self.layers:
            if layer.kind == "conv" and layer.params:
                weight = layer.params[0]
                connected = np.broadcast_to(layer.table.T[:, :, None, None], weight.shape)
                mask[weight.offset:weight.offset + weight.size] = connected.reshape(-1) != 0
        return mask


def _layer_rows(variant):
    """(name, kind, activation, output shape, {param: shape}, table) of every layer, input to output."""
    paper = variant == "paper"
    act = "squash" if paper else "relu"
    c3_table = C3_TABLE if paper else np.ones((6, 16), dtype=np.uint8)
    full = lambda n_in, n_out: np.ones((n_in, n_out), dtype=np.uint8)      # noqa: E731

    def conv(name, n_in, n_out, size):
        table = c3_table if name == "c3" else full(n_in, n_out)
        return (name, "conv", act, (n_out, size, size),
                {"weight": (n_out, n_in, KERNEL, KERNEL), "bias": (n_out,)}, table)

    def pool(name, maps, size):
        if paper:   # Sec. II-B: the sum of a 2x2 block times a trainable coefficient, plus a bias
            return (name, "subsample", act, (maps, size, size), {"coef": (maps,), "bias": (maps,)}, None)
        return (name, "maxpool", None, (maps, size, size), {}, None)

    output = (("output", "rbf", None, (10,), {}, None) if paper   # the RBF centres are fixed, not trained
              else ("output", "dense", None, (10,), {"weight": (10, 84), "bias": (10,)}, None))
    return [conv("c1", 1, 6, 28), pool("s2", 6, 14), conv("c3", 6, 16, 10), pool("s4", 16, 5),
            conv("c5", 16, 120, 1), ("f6", "dense", act, (84,), {"weight": (84, 120), "bias": (84,)}, None),
            output]


@functools.lru_cache(maxsize=None)
def architecture(variant):
    """The Architecture of "paper" or "modern"."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    layers, offset, activation_offset, input_shape = [], 0, 0, (1, 32, 32)
    for name, kind, activation, output_shape, shapes, table in _layer_rows(variant):
        params = []
        for suffix, shape in shapes.items():
            params.append(Param(f"{name}.{suffix}", shape, offset))
            offset += params[-1].size
        if table is not None:
            table = table.copy()
            table.setflags(write=False)
        layers.append(Layer(name, kind, activation, input_shape, output_shape, tuple(params), table,
                            activation_offset))
        activation_offset += layers[-1].output_size
        input_shape = output_shape
    return Architecture(variant, tuple(layers))
