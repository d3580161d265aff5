"""The initial weights of each variant, drawn layer by layer from the architecture.

paper (Appendix A): weights uniform in +-2.4/F_i, F_i the unit's number of inputs (the bias not counted),
biases 0; a subsampling coefficient has F_i = 4. modern (PyTorch's default): weights and biases uniform in
+-1/sqrt(F_i). C3 weights outside Table I are exactly 0.
"""
import numpy as np


def initialize(spec, params, rng):
    """Write the initial values into `params` (name -> array, as the model's views) with the numpy
    Generator `rng`, layer after layer in the architecture's order."""
    paper = spec.variant == "paper"
    for layer in spec.layers:
        if layer.kind in ("conv", "dense"):
            weight, bias = params[f"{layer.name}.weight"], params[f"{layer.name}.bias"]
            unit = rng.uniform(-1.0, 1.0, size=weight.shape)
            if layer.kind == "conv":    # F_i per output map: the kernel's area times its connected input maps
                fan_in = (weight.shape[2] * weight.shape[3] * layer.table.sum(axis=0)).astype(np.float64)
                unit *= layer.table.T[:, :, None, None]
                weight_fan_in = fan_in[:, None, None, None]
            else:
                fan_in = weight_fan_in = float(weight.shape[1])
            if paper:
                weight[...] = unit * (2.4 / weight_fan_in)
                bias[...] = 0
            else:
                weight[...] = unit / np.sqrt(weight_fan_in)
                bias[...] = rng.uniform(-1.0, 1.0, size=bias.shape) / np.sqrt(fan_in)
        elif layer.kind == "subsample":
            coef = params[f"{layer.name}.coef"]
            coef[...] = rng.uniform(-2.4 / 4, 2.4 / 4, size=coef.shape)
            params[f"{layer.name}.bias"][...] = 0
