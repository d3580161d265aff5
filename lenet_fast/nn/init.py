"""The initial weights, drawn layer by layer from the architecture, by one of three named rules.

- ``"paper"``: Appendix A read literally: weights uniform in +-2.4/F_i, F_i the unit's number of inputs
  (the bias not counted; a subsampling coefficient has F_i = 4), biases 0.
- ``"paper_sqrt"``: the same with +-2.4/sqrt(F_i) (the coefficients +-1.2), biases 0. This is how a
  well-known reproduction of LeCun's 1989 network reads the sentence, and the sigma = F^-1/2 of LeCun's
  "Efficient BackProp"; with it the paper's own SDLM learning rates train (README, "Initialisation"):
  the default of the paper variant.
- ``"pytorch"``: PyTorch's default, weights and biases uniform in +-1/sqrt(F_i): the modern variant's
  default.

C3 weights outside Table I are exactly 0 under every rule.
"""
import numpy as np

INITS = ("paper", "paper_sqrt", "pytorch")
DEFAULT_INIT = {"paper": "paper_sqrt", "modern": "pytorch"}


def _weight_bound(rule, fan_in):
    return {"paper": 2.4 / fan_in, "paper_sqrt": 2.4 / np.sqrt(fan_in), "pytorch": 1.0 / np.sqrt(fan_in)}[rule]


def initialize(spec, params, rng, rule):
    """Write the initial values into `params` (name -> array, as the model's views) by `rule` (one of
    INITS) with the numpy Generator `rng`, layer after layer in the architecture's order."""
    if rule not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {rule!r}")
    for layer in spec.layers:
        if layer.kind in ("conv", "dense"):
            weight, bias = params[f"{layer.name}.weight"], params[f"{layer.name}.bias"]
            unit = rng.uniform(-1.0, 1.0, size=weight.shape)
            if layer.kind == "conv":    # F_i per output map: the kernel's area times its connected input maps
                fan_in = (weight.shape[2] * weight.shape[3] * layer.table.sum(axis=0)).astype(np.float64)
                unit *= layer.table.T[:, :, None, None]
                weight[...] = unit * _weight_bound(rule, fan_in)[:, None, None, None]
            else:
                fan_in = float(weight.shape[1])
                weight[...] = unit * _weight_bound(rule, fan_in)
            if rule == "pytorch":
                bias[...] = rng.uniform(-1.0, 1.0, size=bias.shape) * _weight_bound(rule, fan_in)
            else:
                bias[...] = 0
        elif layer.kind == "subsample":     # F_i = 4 (PyTorch has no such layer: the paper's rule then)
            coef = params[f"{layer.name}.coef"]
            bound = _weight_bound(rule if rule != "pytorch" else "paper", 4.0)
            coef[...] = rng.uniform(-1.0, 1.0, size=coef.shape) * bound
            params[f"{layer.name}.bias"][...] = 0
