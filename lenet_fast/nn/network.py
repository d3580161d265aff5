"""Network: LeNet-5's parameters and computations (``lenet_fast.LeNet5`` adds training and files).

The network owns one flat array of parameters, laid out by ``architecture``, with a named view per tensor
(so an optimiser is one vectorised line and a checkpoint is one array); gradients and curvature go into
arrays of the same layout made by each call (so calls from several threads do not interfere). Two paths
compute it: the fused kernels (``network_kernels``: forward, predict, evaluate, and the training steps)
and the per-layer kernels (``layer_kernels``: loss, gradients and SDLM's second-derivative pass, walked
layer by layer below). User input is validated here before any compiled code runs.
"""
import contextlib
import threading

import numpy as np

from .._checks import finite_number, integer
from .._config import effective_n_threads
from .._isa import load
from ..io.model_files import load_model, save_model
from . import layer_kernels as ops
from . import network_kernels
from .architecture import DTYPES, VARIANTS, architecture
from .constants import RBF_CENTERS
from .init import DEFAULT_INIT, initialize
from .preprocessing import preprocess

all_finite = load("lenet_fast.nn._validate").all_finite


# attributes that refer to the flat parameter array, rebuilt (never copied) by __setstate__
_DERIVED = frozenset({"architecture", "_flat", "_params", "_centers", "_network", "_training"})
_STATE_VERSION = 1


class Network:
    """LeNet-5, the network: parameters, forward pass, loss, gradients, curvature and training steps.

    Parameters
    ----------
    variant : {"paper", "modern"}
        "paper" (default): LeCun et al. 1998 exactly: Table I C3, trainable subsampling,
        1.7159 tanh(2a/3), fixed 7x12 RBF bitmaps; 60,000 parameters. "modern": ReLU, 2x2 max-pool,
        full C3, a linear 84->10 output with softmax cross-entropy; 61,706 parameters.
    dtype : {"float32", "float64"}
        Precision of parameters and computation. Float input of any precision is converted to it.
    seed : int
        Seed of the initial weights.
    n_threads : int or None
        OpenMP threads for every kernel call; None follows OMP_NUM_THREADS / threadpoolctl / all cores.
    criterion : {"mse", "map", "cross_entropy"} or None
        Training loss. Paper: "mse" (Eq. 8, the default) or "map" (Eq. 9); modern: "cross_entropy".
    map_j : float
        The positive constant j of Eq. 9 (the "rubbish class"); used only with criterion="map".
    init : {"paper", "paper_sqrt", "pytorch"} or None
        How the initial weights are drawn (``lenet_fast.nn.init``): "paper" is Appendix A read literally,
        +-2.4/F_i; "paper_sqrt" +-2.4/sqrt(F_i), the paper variant's default, chosen by measurement (with
        it the paper's own learning rates train; README, "Initialisation"); "pytorch", the modern
        variant's default.
    """

    def __init__(self, variant="paper", dtype="float32", seed=0, n_threads=None, criterion=None, map_j=1.0,
                 init=None):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if _dtype_name(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        spec = architecture(variant)
        criterion = spec.criteria[0] if criterion is None else criterion
        if criterion not in spec.criteria:
            raise ValueError(f"criterion must be one of {spec.criteria} for the {variant} variant, "
                             f"got {criterion!r}")
        map_j = finite_number("map_j", map_j, above=0)
        seed = integer("seed", seed, at_least=0, allow_none=True)
        effective_n_threads(n_threads)  # validates n_threads
        self.variant = variant
        self.dtype = np.dtype(dtype)
        self.n_threads = n_threads
        self.criterion = criterion
        self.map_j = map_j
        self.init = DEFAULT_INIT[variant] if init is None else init
        self._build(np.zeros(spec.size, dtype=self.dtype))
        initialize(spec, self._params, np.random.default_rng(seed), self.init)

    def _build(self, flat):
        """What refers to the model's own flat parameter array: the named views, the fixed RBF centres, the
        fused kernels' arguments; and the training lock. By __init__ and __setstate__ (copies, pickles)."""
        spec = architecture(self.variant)
        self.architecture = spec
        self._flat = flat
        self._params = self._views(flat)
        self._centers = np.array(RBF_CENTERS, dtype=self.dtype) if spec.layers[-1].kind == "rbf" else None
        # the fused kernels' arguments, checked once (the arrays are only ever changed in place)
        self._network = network_kernels.network_args(self._flat, self.variant, self._centers)
        self._training = threading.RLock()        # see training_guard

    def _views(self, flat):
        """dict name -> the view of each parameter tensor in `flat` (parameters, gradients or h_kk)."""
        return {p.name: flat[p.offset:p.offset + p.size].reshape(p.shape) for p in self.architecture.params}

    # --- copies and pickles -------------------------------------------------------------------------

    def __getstate__(self):
        """The model's settings (and any attribute a subclass adds) with a copy of its flat parameters;
        what refers to the flat array is rebuilt by __setstate__. ``copy.copy``, ``copy.deepcopy`` and
        pickle therefore give independent, working models."""
        state = {k: v for k, v in self.__dict__.items() if k not in _DERIVED}
        state["_flat"] = self._flat.copy()
        state["_state_version"] = _STATE_VERSION
        return state

    def __setstate__(self, state):
        state = dict(state)
        version, flat = state.pop("_state_version", None), state.pop("_flat", None)
        self.__dict__.update(state)
        if (version != _STATE_VERSION or getattr(self, "variant", None) not in VARIANTS
                or _dtype_name(getattr(self, "dtype", None)) not in DTYPES or not isinstance(flat, np.ndarray)
                or flat.shape != (architecture(self.variant).size,)):
            raise ValueError(f"not a pickled {type(self).__name__} of this lenet_fast (state version {version!r}; "
                             f"this one reads {_STATE_VERSION}): keep models with .save() and .load()")
        self._build(np.array(flat, dtype=self.dtype, order="C"))

    # --- parameters ---------------------------------------------------------------------------------

    def parameters(self):
        """dict name -> the live ndarray (writing into it changes the model). The paper's fixed RBF
        centres are included as ``output.centers``."""
        params = dict(self._params)
        if self._centers is not None:
            params["output.centers"] = self._centers
        return params

    @property
    def num_parameters(self):
        """Number of trainable parameters: 60,000 (paper) or 61,706 (modern)."""
        return self.architecture.num_parameters

    @property
    def flat_parameters(self):
        """The live flat array of all parameters, in the architecture's layout (the named views of
        ``parameters()`` are slices of it; C3's unconnected weights are zeros in it)."""
        return self._flat

    # --- input checks -------------------------------------------------------------------------------

    def prepare_input(self, x, name="x", *, check_finite=True):
        """x as network input (N, 1, 32, 32) of the model's dtype, C-contiguous and finite: float input
        converted, uint8 images (N, 28, 28) / (N, 32, 32) preprocessed; a clear error naming `name`
        otherwise. What the methods taking ``x`` do first. check_finite=False leaves the finiteness of
        float input to the caller (``_scores``: the forward kernel checks x as it reads it)."""
        x = np.asarray(x)
        if x.dtype == np.uint8:
            try:
                return preprocess(x, dtype=self.dtype)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        if x.dtype.kind != "f":
            raise TypeError(f"{name} must be float network input (N, 1, 32, 32) or uint8 images "
                            f"(N, 28, 28) / (N, 32, 32), got dtype {x.dtype}")
        if x.ndim != 4 or x.shape[1:] != (1, 32, 32):
            hint = ""
            if x.shape[-2:] == (32, 32) and x.ndim == 3:
                hint = "; add the channel axis with x[:, None]"
            elif x.shape[-2:] == (28, 28):
                hint = "; 28x28 images must be padded to 32x32 (lenet_fast.preprocess does it for uint8)"
            raise ValueError(f"{name} must have shape (N, 1, 32, 32), got {x.shape}{hint}")
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if check_finite and not all_finite(x.reshape(-1)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    def prepare_labels(self, y, n, name="y"):
        """y as n int64 labels 0..9, or a clear error naming `name`."""
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"{name} must be a 1-D array of {n} labels (one per sample), got shape {y.shape}")
        if y.size and not (np.issubdtype(y.dtype, np.integer) and y.dtype != np.bool_):
            raise TypeError(f"{name} must hold integer labels 0..9, got dtype {y.dtype}")
        if n and (y.min() < 0 or y.max() > 9):
            raise ValueError(f"{name} must hold labels in 0..9, got values from {y.min()} to {y.max()}")
        return np.ascontiguousarray(y, dtype=np.int64)

    # --- the per-layer path: forward and backward, side by side ---------------------------------------------------------

    def _forward(self, x):
        """All activations of a validated batch, keyed by layer name ("x" = the input)."""
        p, nt, paper = self._params, effective_n_threads(self.n_threads), self.variant == "paper"
        act = ops.squash_forward if paper else ops.relu_forward
        a = {"x": x}
        a["c1"] = act(ops.conv2d_forward(x, p["c1.weight"], p["c1.bias"], n_threads=nt),
                      n_threads=nt)
        a["s2"] = self._pool_forward("s2", a["c1"], nt)
        a["c3"] = act(ops.conv2d_forward(a["s2"], p["c3.weight"], p["c3.bias"], self.architecture.c3_table,
                                        n_threads=nt),
                      n_threads=nt)
        a["s4"] = self._pool_forward("s4", a["c3"], nt)
        flat_s4 = a["s4"].reshape(len(x), 400)          # C5 covers all of S4: a dense layer on 400 inputs
        a["c5"] = act(ops.dense_forward(flat_s4, p["c5.weight"].reshape(120, 400), p["c5.bias"], n_threads=nt),
                      n_threads=nt)
        a["f6"] = act(ops.dense_forward(a["c5"], p["f6.weight"], p["f6.bias"], n_threads=nt), n_threads=nt)
        if paper:
            a["output"] = ops.rbf_forward(a["f6"], self._centers, n_threads=nt)
        else:
            a["output"] = ops.dense_forward(a["f6"], p["output.weight"], p["output.bias"], n_threads=nt)
        return a

    def _pool_forward(self, layer, x, nt):
        if self.variant == "paper":
            p = self._params
            return ops.squash_forward(ops.subsample_forward(x, p[f"{layer}.coef"], p[f"{layer}.bias"],
                                                            n_threads=nt), n_threads=nt)
        return ops.maxpool_forward(x, n_threads=nt)

    def _backward(self, a, d, into, squared=False):
        """Back-propagate d(loss)/d(F6 output) `d` through F6 ... C1, accumulating the parameter
        gradients into the dict of arrays `into`. With squared=True, `d` holds second derivatives and
        this is SDLM's second-derivative pass (squared weights, inputs and f'; see reference.py)."""
        p, nt = self._params, effective_n_threads(self.n_threads)
        act_backward = ops.squash_backward if self.variant == "paper" else ops.relu_backward
        kw = dict(squared=squared, n_threads=nt)
        d = act_backward(d, a["f6"], out=d, **kw)
        d, _, _ = ops.dense_backward(d, a["c5"], p["f6.weight"], dweight=into["f6.weight"],
                                     dbias=into["f6.bias"], **kw)
        d = act_backward(d, a["c5"], out=d, **kw)
        d, _, _ = ops.dense_backward(d, a["s4"].reshape(len(d), 400), p["c5.weight"].reshape(120, 400),
                                     dweight=into["c5.weight"].reshape(120, 400), dbias=into["c5.bias"], **kw)
        d = self._pool_backward("s4", d.reshape(a["s4"].shape), a["c3"], a["s4"], into, kw)
        d = act_backward(d, a["c3"], out=d, **kw)
        d, _, _ = ops.conv2d_backward(d, a["s2"], p["c3.weight"], self.architecture.c3_table, dweight=into["c3.weight"],
                                      dbias=into["c3.bias"], **kw)
        d = self._pool_backward("s2", d, a["c1"], a["s2"], into, kw)
        d = act_backward(d, a["c1"], out=d, **kw)
        ops.conv2d_backward(d, a["x"], p["c1.weight"], dweight=into["c1.weight"],
                            dbias=into["c1.bias"], **kw)

    def _pool_backward(self, layer, dout, x, out, into, kw):
        if self.variant == "paper":
            dout = ops.squash_backward(dout, out, out=dout, **kw)
            dx, _, _ = ops.subsample_backward(dout, x, self._params[f"{layer}.coef"],
                                              dcoef=into[f"{layer}.coef"], dbias=into[f"{layer}.bias"], **kw)
            return dx
        return ops.maxpool_backward(dout, x, out, n_threads=kw["n_threads"])

    def _output_backward(self, a, dout, into):
        """d(loss)/d(F6 output) from d(loss)/d(scores); the modern output layer's gradients too (into the
        dict of arrays `into`)."""
        nt = effective_n_threads(self.n_threads)
        if self.variant == "paper":
            return ops.rbf_backward(dout, a["f6"], self._centers, n_threads=nt)
        d, _, _ = ops.dense_backward(dout, a["f6"], self._params["output.weight"],
                                     dweight=into["output.weight"], dbias=into["output.bias"],
                                     n_threads=nt)
        return d

    def _loss_terms(self, scores, y):
        """(per-sample losses, d(mean loss)/d(scores))."""
        kw = dict(n_threads=effective_n_threads(self.n_threads))
        if self.criterion == "mse":
            return ops.mse_loss(scores, y, **kw), ops.mse_loss_backward(scores, y, **kw)
        if self.criterion == "map":
            return ops.map_loss(scores, y, self.map_j, **kw), ops.map_loss_backward(scores, y, self.map_j, **kw)
        return ops.cross_entropy_loss(scores, y, **kw), ops.cross_entropy_loss_backward(scores, y, **kw)

    # --- public API ---------------------------------------------------------------------------------

    def forward(self, x):
        """(N, 10): the RBF penalties (paper; lower is better) or the logits (modern)."""
        return self._scores(self.prepare_input(x, check_finite=False))

    def loss(self, x, y):
        """The mean loss over the batch (0.0 for an empty batch)."""
        x = self.prepare_input(x)
        y = self.prepare_labels(y, len(x))
        losses, _ = self._loss_terms(self._forward(x)["output"], y)
        return float(losses.mean(dtype=np.float64)) if len(losses) else 0.0

    def gradients(self, x, y):
        """(mean loss, dict name -> gradient of the mean loss) for every trainable parameter.

        The returned arrays are the caller's own (each call computes into new buffers, so calls from
        several threads on one model do not interfere). C3 entries outside Table I have gradient exactly 0."""
        loss, flat = self._compute_gradients(self.prepare_input(x), y)
        return loss, self._views(flat)

    def _compute_gradients(self, x, y):
        """(mean loss, its gradient as a new flat array in the layout of ``flat_parameters``) of a
        validated batch."""
        y = self.prepare_labels(y, len(x))
        flat = np.zeros_like(self._flat)
        a = self._forward(x)
        losses, dout = self._loss_terms(a["output"], y)
        if len(x):
            into = self._views(flat)
            self._backward(a, self._output_backward(a, dout, into), into)
        return (float(losses.mean(dtype=np.float64)) if len(losses) else 0.0), flat

    def hessian_diagonal(self, x):
        """SDLM's curvature estimates h_kk (Eq. 23-25, 27 of the paper), averaged over the samples of x.

        Returns dict name -> array shaped like the parameter (the trainable ones). Gauss-Newton and
        diagonal: second derivatives are back-propagated with squared weights, inputs and f'; shared
        weights sum over their connections. The output seed is d2E/dx^2 = 2 for every F6 unit (exact
        for MSE; for MAP, the curvature of its y_D term). Paper variant only."""
        return self._views(self.flat_hessian_diagonal(self.prepare_input(x)))

    def flat_hessian_diagonal(self, x):
        """hessian_diagonal of a prepared batch, in the layout of ``flat_parameters``."""
        if self.variant != "paper":
            raise ValueError("hessian_diagonal (SDLM) is defined for the paper variant only")
        flat = np.zeros_like(self._flat)
        if len(x):
            a = self._forward(x)
            seed = np.full_like(a["f6"], 2.0 / len(x))
            self._backward(a, seed, self._views(flat), squared=True)
        return flat

    def train_steps(self, x, y, order, step, batch_size=1, momentum=0.0, weight_decay=0.0, velocity=None):
        """Training steps on prepared input (``prepare_input``/``prepare_labels``): the samples x[order]
        in order, in mini-batches of `batch_size`, each followed by the update of ``flat_parameters`` with
        the per-parameter step sizes `step` (see ``network_kernels.train_steps``). Returns (losses,
        predictions) of every presented sample, computed before its batch's update.

        One training at a time per model: while another thread trains this model (``train_steps`` or
        ``LeNet5.fit``), this raises RuntimeError."""
        with self.training_guard():
            return network_kernels.train_steps(
                self._flat, x, y, order, step, variant=self.variant, criterion=self.criterion, map_j=self.map_j,
                centers=self._centers, batch_size=batch_size, momentum=momentum, weight_decay=weight_decay,
                velocity=velocity, n_threads=effective_n_threads(self.n_threads))

    @contextlib.contextmanager
    def training_guard(self):
        """Held while the model trains (``train_steps``, ``LeNet5.fit``), by one thread at a time: another
        thread entering it meanwhile gets a RuntimeError, not two trainings of the same weights."""
        if not self._training.acquire(blocking=False):
            raise RuntimeError(f"this {type(self).__name__} is being trained in another thread: one training "
                               "at a time per model (train a copy, copy.deepcopy(model), to train two)")
        try:
            yield
        finally:
            self._training.release()

    def predict(self, x):
        """(N,) int64 digits: argmin of the penalties (paper) or argmax of the logits (modern)."""
        return self.decide(self._scores(self.prepare_input(x, check_finite=False)))

    def decide(self, scores):
        """(N,) int64 digits from (N, 10) scores, by the architecture's rule (argmin of the penalties or
        argmax of the logits)."""
        best = scores.argmin(axis=1) if self.architecture.decision == "argmin" else scores.argmax(axis=1)
        return best.astype(np.int64)

    def _scores(self, x):
        """Outputs of a batch from prepare_input by the fused forward kernel (the same function as
        _forward's); a ValueError if x is not finite."""
        scores = network_kernels.checked_network_forward(self._network, x, np.empty((len(x), 10), self.dtype),
                                                         effective_n_threads(self.n_threads))
        if not all_finite(scores.reshape(-1)):      # a decision on NaN would be class 0, silently
            bad = [param for param, value in self._params.items() if not np.isfinite(value).all()]
            raise ValueError("the network's outputs are NaN or infinite: " + (
                f"its parameters {', '.join(bad)} hold NaN or infinite values" if bad else
                "its weights are so large that the computation overflows"))
        return scores

    def evaluate(self, x, y):
        """dict with the mean ``loss``, the ``error`` rate and the ``predictions`` over (x, y).

        x: uint8 images (N, 28, 28) / (N, 32, 32) or network input (N, 1, 32, 32); y: N labels 0..9."""
        x = self.prepare_input(x, check_finite=False)
        y = self.prepare_labels(y, len(x))
        if not len(x):
            raise ValueError("x is empty: there is nothing to evaluate")
        scores = self._scores(x)
        losses, _ = self._loss_terms(scores, y)
        predictions = self.decide(scores)
        return {"loss": float(losses.mean(dtype=np.float64)),
                "error": float(np.mean(predictions != y)), "predictions": predictions}

    def score(self, x, y):
        """Accuracy (the fraction of correctly recognised samples) on (x, y)."""
        return 1.0 - self.evaluate(x, y)["error"]

    def summary(self):
        """A per-layer table: output shape, trainable parameters, connections, and the totals."""
        return (f"LeNet-5 ({self.variant} variant, {self.dtype}, criterion {self.criterion})\n"
                + self.architecture.summary_table())

    def __repr__(self):
        return (f"{type(self).__name__}(variant={self.variant!r}, dtype={str(self.dtype)!r}, n_threads={self.n_threads!r}, "
                f"criterion={self.criterion!r}, init={self.init!r})")

    # --- files --------------------------------------------------------------------------------------

    def save(self, path):
        """Write the model to `path` (.npz with a JSON header; no pickle), atomically."""
        save_model(self, path)

    @classmethod
    def load(cls, path, n_threads=None):
        """Read a model written by `save`. Raises ValueError for files that are not valid models."""
        return load_model(cls, path, n_threads=n_threads)


def _dtype_name(dtype):
    if dtype is None:      # np.dtype(None) would silently mean float64
        return "None"
    try:
        return str(np.dtype(dtype))
    except TypeError:
        return repr(dtype)
