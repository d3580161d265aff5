"""The optimisers: the paper's SDLM and SGD with momentum. An optimiser only decides, before each pass,
the per-parameter step sizes (SDLM: eta / (mu + h_kk); SGD: the learning rate), the momentum and the
weight decay; the compiled training steps apply them."""
import math

import numpy as np

from .._checks import finite_number, integer

# The paper's global learning rate per pass (Sec. III-B): (number of passes, eta); None = thereafter.
PAPER_ETA_SCHEDULE = ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5), (None, 1e-5))
QUANTILES = (0.0, 0.05, 0.5, 0.95, 1.0)     # of the eps_k and h_kk in a pass's record


class SDLM:
    """Stochastic Diagonal Levenberg-Marquardt (LeCun et al. 1998, Sec. III-B and Appendix C).

    Before each pass the diagonal Gauss-Newton curvature h_kk is estimated on `hessian_samples`
    training samples (a fresh random subset per pass, drawn from the run's seed; the paper does not
    say which) and kept for the pass; each parameter then moves by ``eps_k = eta / (mu + h_kk)``
    times its gradient, one sample at a time, with the paper's schedule of eta over the passes.

    `learning_rate` is the eta of the first passes; the whole schedule is scaled to it. The default is
    the paper's: 5e-4, with mu = 0.02. (It trains from the paper variant's default initialisation,
    +-2.4/sqrt(F_i); from the literal +-2.4/F_i the curvature estimates are far below mu, every eps_k
    is close to eta/mu and per-sample training diverges: README, "Initialisation".)

    ``curvature_summary`` gives, per layer, the range and quantiles of the pass's eps_k and h_kk,
    which the Trainer adds to each pass's record (the paper reports eps_k from 7e-5 to 0.016 in pass 1)."""

    name = "sdlm"
    momentum = 0.0
    weight_decay = 0.0

    def __init__(self, learning_rate=5e-4, mu=0.02, hessian_samples=500):
        mu = finite_number("mu", mu, above=0)
        learning_rate = finite_number("learning_rate", learning_rate, above=0)
        self.learning_rate = learning_rate
        self.mu = mu
        self.hessian_samples = integer("hessian_samples", hessian_samples, at_least=1)
        self.h = None

    def rate(self, epoch, epochs):
        """The global eta of pass `epoch` (0-based)."""
        passes = 0
        for count, eta in PAPER_ETA_SCHEDULE:
            if count is None or epoch < passes + count:
                break
            passes += count
        return eta * self.learning_rate / PAPER_ETA_SCHEDULE[0][1]

    def step_sizes(self, trainer, epoch, rng):
        net = trainer.net
        if net.variant != "paper":
            raise ValueError("SDLM needs the paper variant (its curvature pass is defined for it); "
                             "use optimizer='sgd' for the modern variant")
        n = trainer.n_samples
        subset = np.sort(rng.choice(n, size=min(self.hessian_samples, n), replace=False))
        self.h = net.flat_hessian_diagonal(trainer.input_of(subset))
        return (self.rate(epoch, trainer.epochs) / (self.mu + self.h)).astype(net.dtype)

    def curvature_summary(self, spec, step):
        """{"eps": {layer: quantiles}, "h": {layer: quantiles}} of a pass's step sizes `step` (the eps_k)
        and of the h_kk they came from, over each layer's trainable parameters and over all ("all");
        quantiles = [min, 5%, 50%, 95%, max]."""
        trainable = spec.trainable_mask()
        owner = np.empty(spec.size, dtype=object)
        for p in spec.params:
            owner[p.offset:p.offset + p.size] = p.name.split(".")[0]
        summary = {}
        for what, values in (("eps", step), ("h", self.h)):
            values = np.asarray(values, dtype=np.float64)
            groups = {layer.name: trainable & (owner == layer.name) for layer in spec.layers if layer.params}
            groups["all"] = trainable
            summary[what] = {name: [float(q) for q in np.quantile(values[mask], QUANTILES)]
                             for name, mask in groups.items()}
        return summary

    def config(self):
        return {"name": self.name, "learning_rate": self.learning_rate, "mu": self.mu,
                "hessian_samples": self.hessian_samples}


class SGD:
    """Mini-batch SGD with (heavy-ball) momentum and L2 weight decay:
    ``v = momentum * v + g + weight_decay * w;  w -= lr * v``.

    schedule: "constant", "cosine" (lr * (1 + cos(pi * epoch / epochs)) / 2) or "step" (lr divided by
    10 at 50% and again at 75% of the passes)."""

    name = "sgd"
    SCHEDULES = ("constant", "cosine", "step")

    def __init__(self, learning_rate=1e-3, momentum=0.9, weight_decay=0.0, schedule="constant"):
        self.learning_rate = finite_number("learning_rate", learning_rate, above=0)
        self.momentum = finite_number("momentum", momentum, at_least=0, below=1)
        self.weight_decay = finite_number("weight_decay", weight_decay, at_least=0)
        if schedule not in self.SCHEDULES:
            raise ValueError(f"schedule must be one of {self.SCHEDULES}, got {schedule!r}")
        self.schedule = schedule

    def rate(self, epoch, epochs):
        if self.schedule == "cosine":
            return self.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        if self.schedule == "step":
            return self.learning_rate * 0.1 ** ((epoch >= epochs // 2) + (epoch >= (3 * epochs) // 4))
        return self.learning_rate

    def step_sizes(self, trainer, epoch, rng):
        return np.full(trainer.net.flat_parameters.size, self.rate(epoch, trainer.epochs), dtype=trainer.net.dtype)

    def config(self):
        return {"name": self.name, "learning_rate": self.learning_rate, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "schedule": self.schedule}


OPTIMIZERS = {"sdlm": SDLM, "sgd": SGD}
# what the modern variant trains with by default (measured on the embedded sample, see README)
MODERN_SGD = {"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine"}


def make_optimizer(optimizer, variant, learning_rate=None, momentum=None, weight_decay=None, recipe=None):
    """An optimiser from a name ("sdlm", "sgd"; None: SDLM for the paper variant, SGD for the modern
    one) and optional hyperparameters, or an optimiser object passed through unchanged. SDLM's eta and
    mu default to the `recipe`'s (a ``recipes.Recipe``; None: SDLM's own defaults, the paper's)."""
    overrides = {k: v for k, v in (("learning_rate", learning_rate), ("momentum", momentum),
                                   ("weight_decay", weight_decay)) if v is not None}
    if isinstance(optimizer, (SDLM, SGD)):
        if overrides:
            raise ValueError(f"pass {sorted(overrides)} to the optimizer object, not alongside it")
        return optimizer
    if optimizer is None:
        optimizer = "sdlm" if variant == "paper" else "sgd"
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)} or an optimizer object, got {optimizer!r}")
    if optimizer == "sdlm":
        if set(overrides) - {"learning_rate"}:
            raise ValueError("SDLM (the paper's method) has no momentum or weight decay; use optimizer='sgd'")
        settings = {"learning_rate": recipe.learning_rate, "mu": recipe.mu} if recipe is not None else {}
        return SDLM(**{**settings, **overrides})
    defaults = dict(MODERN_SGD) if variant == "modern" else {}
    return SGD(**{**defaults, **overrides})
