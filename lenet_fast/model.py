"""LeNet5: the network of LeCun et al. (1998) ("paper") and a ReLU/max-pool/softmax one ("modern").

The model owns one flat array of trainable parameters and one of gradients, with a named view per
tensor (so an optimiser is one vectorised line and a checkpoint is one array). Every kernel call goes
through ``lenet_fast.ops``; this module validates user input before any compiled code runs.
"""
import numpy as np

from . import ops
from ._checks import finite_number, integer
from ._config import effective_n_threads
from ._validate import all_finite
from .constants import C3_TABLE, CRITERIA, RBF_CENTERS
from .preprocessing import preprocess

VARIANTS = ("paper", "modern")
DTYPES = ("float32", "float64")


def _layer_specs(variant):
    """The layers in order: (name, kind, output shape, {param: shape}, connections)."""
    paper = variant == "paper"
    table = C3_TABLE if paper else np.ones((6, 16), dtype=np.uint8)
    pool = "subsample" if paper else "maxpool"
    pool_params = (lambda c: {"coef": (c,), "bias": (c,)}) if paper else (lambda c: {})
    pool_conn = 5 if paper else 4       # 4 inputs (+ the bias for trainable subsampling)
    return [
        ("c1", "conv", (6, 28, 28), {"weight": (6, 1, 5, 5), "bias": (6,)}, 6 * (25 + 1) * 28 * 28),
        ("s2", pool, (6, 14, 14), pool_params(6), 6 * 14 * 14 * pool_conn),
        ("c3", "conv", (16, 10, 10), {"weight": (16, 6, 5, 5), "bias": (16,)},
         int(25 * table.sum() + 16) * 10 * 10),
        ("s4", pool, (16, 5, 5), pool_params(16), 16 * 5 * 5 * pool_conn),
        ("c5", "conv", (120, 1, 1), {"weight": (120, 16, 5, 5), "bias": (120,)}, 120 * (400 + 1)),
        ("f6", "dense", (84,), {"weight": (84, 120), "bias": (84,)}, 84 * (120 + 1)),
        ("output", "rbf" if paper else "dense", (10,),
         {} if paper else {"weight": (10, 84), "bias": (10,)}, 10 * 84 if paper else 10 * (84 + 1)),
    ]


class LeNet5:
    """LeNet-5.

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
    """

    def __init__(self, variant="paper", dtype="float32", seed=0, n_threads=None, criterion=None, map_j=1.0):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if _dtype_name(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        criterion = CRITERIA[variant][0] if criterion is None else criterion
        if criterion not in CRITERIA[variant]:
            raise ValueError(f"criterion must be one of {CRITERIA[variant]} for the {variant} variant, "
                             f"got {criterion!r}")
        map_j = finite_number("map_j", map_j, above=0)
        seed = integer("seed", seed, at_least=0, allow_none=True)
        effective_n_threads(n_threads)  # validates n_threads
        self.variant = variant
        self.dtype = np.dtype(dtype)
        self.n_threads = n_threads
        self.criterion = criterion
        self.map_j = map_j
        self._layers = _layer_specs(variant)
        self._table = C3_TABLE if variant == "paper" else np.ones((6, 16), dtype=np.uint8)
        self._ones_c1 = np.ones((1, 6), dtype=np.uint8)

        names_shapes = [(f"{layer}.{p}", shape) for layer, _, _, params, _ in self._layers
                        for p, shape in params.items()]
        sizes = [int(np.prod(shape)) for _, shape in names_shapes]
        self._flat = np.zeros(sum(sizes), dtype=self.dtype)
        self._grad_flat = np.zeros_like(self._flat)
        self._params, self._grads, offset = {}, {}, 0
        for (name, shape), size in zip(names_shapes, sizes):
            self._params[name] = self._flat[offset:offset + size].reshape(shape)
            self._grads[name] = self._grad_flat[offset:offset + size].reshape(shape)
            offset += size
        self._centers = np.array(RBF_CENTERS, dtype=self.dtype) if variant == "paper" else None
        # the fused kernels' arguments, checked once (the arrays are only ever changed in place)
        self._network = ops._network_args(self._flat, variant, self._table, self._centers)
        self._initialize(np.random.default_rng(seed))

    # --- parameters ---------------------------------------------------------------------------------

    def _initialize(self, rng):
        """Paper (Appendix A): weights uniform in +-2.4/F_i, F_i the unit's number of inputs (the bias
        not counted), biases 0; subsampling coefficients have F_i = 4. Modern: PyTorch's default,
        weights and biases uniform in +-1/sqrt(F_i)."""
        p = self._params
        for layer, kind, _, params, _ in self._layers:
            if kind == "conv":
                k, c, kh, kw = params["weight"]
                table = self._table if layer == "c3" else np.ones((c, k), dtype=np.uint8)
                fan_in = (kh * kw * table.sum(axis=0)).astype(np.float64)       # per output map
                w = rng.uniform(-1.0, 1.0, size=params["weight"]) * table.T[:, :, None, None]
                self._init_weight_bias(rng, layer, w, fan_in[:, None, None, None], fan_in)
            elif kind == "dense":
                fan_in = float(params["weight"][1])
                self._init_weight_bias(rng, layer, rng.uniform(-1.0, 1.0, size=params["weight"]),
                                       fan_in, fan_in)
            elif kind == "subsample":
                p[f"{layer}.coef"][...] = rng.uniform(-2.4 / 4, 2.4 / 4, size=params["coef"])
                p[f"{layer}.bias"][...] = 0

    def _init_weight_bias(self, rng, layer, unit_weight, fan_in_w, fan_in_b):
        p = self._params
        if self.variant == "paper":
            p[f"{layer}.weight"][...] = unit_weight * (2.4 / fan_in_w)
            p[f"{layer}.bias"][...] = 0
        else:
            p[f"{layer}.weight"][...] = unit_weight / np.sqrt(fan_in_w)
            bias_shape = p[f"{layer}.bias"].shape
            p[f"{layer}.bias"][...] = rng.uniform(-1.0, 1.0, size=bias_shape) / np.sqrt(fan_in_b)

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
        unconnected = 25 * int((self._table == 0).sum())
        return int(self._flat.size) - unconnected

    # --- input checks -------------------------------------------------------------------------------

    def _as_input(self, x, name="x"):
        """Network input (N, 1, 32, 32) of the model's dtype, C-contiguous, finite."""
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
        if not all_finite(x.reshape(-1)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    def _as_labels(self, y, n, name="y"):
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"{name} must be a 1-D array of {n} labels (one per sample), got shape {y.shape}")
        if y.size and not (np.issubdtype(y.dtype, np.integer) and y.dtype != np.bool_):
            raise TypeError(f"{name} must hold integer labels 0..9, got dtype {y.dtype}")
        if n and (y.min() < 0 or y.max() > 9):
            raise ValueError(f"{name} must hold labels in 0..9, got values from {y.min()} to {y.max()}")
        return np.ascontiguousarray(y, dtype=np.int64)

    # --- forward and backward, side by side ---------------------------------------------------------

    def _forward(self, x):
        """All activations of a validated batch, keyed by layer name ("x" = the input)."""
        p, nt, paper = self._params, effective_n_threads(self.n_threads), self.variant == "paper"
        act = ops.squash_forward if paper else ops.relu_forward
        a = {"x": x}
        a["c1"] = act(ops.conv2d_forward(x, p["c1.weight"], p["c1.bias"], self._ones_c1, n_threads=nt),
                      n_threads=nt)
        a["s2"] = self._pool_forward("s2", a["c1"], nt)
        a["c3"] = act(ops.conv2d_forward(a["s2"], p["c3.weight"], p["c3.bias"], self._table, n_threads=nt),
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
        d, _, _ = ops.conv2d_backward(d, a["s2"], p["c3.weight"], self._table, dweight=into["c3.weight"],
                                      dbias=into["c3.bias"], **kw)
        d = self._pool_backward("s2", d, a["c1"], a["s2"], into, kw)
        d = act_backward(d, a["c1"], out=d, **kw)
        ops.conv2d_backward(d, a["x"], p["c1.weight"], self._ones_c1, dweight=into["c1.weight"],
                            dbias=into["c1.bias"], **kw)

    def _pool_backward(self, layer, dout, x, out, into, kw):
        if self.variant == "paper":
            dout = ops.squash_backward(dout, out, out=dout, **kw)
            dx, _, _ = ops.subsample_backward(dout, x, self._params[f"{layer}.coef"],
                                              dcoef=into[f"{layer}.coef"], dbias=into[f"{layer}.bias"], **kw)
            return dx
        return ops.maxpool_backward(dout, x, out, n_threads=kw["n_threads"])

    def _output_backward(self, a, dout):
        """d(loss)/d(F6 output) from d(loss)/d(scores); the modern output layer's gradients too."""
        nt = effective_n_threads(self.n_threads)
        if self.variant == "paper":
            return ops.rbf_backward(dout, a["f6"], self._centers, n_threads=nt)
        d, _, _ = ops.dense_backward(dout, a["f6"], self._params["output.weight"],
                                     dweight=self._grads["output.weight"], dbias=self._grads["output.bias"],
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
        return self._scores(self._as_input(x))

    def loss(self, x, y):
        """The mean loss over the batch (0.0 for an empty batch)."""
        x = self._as_input(x)
        y = self._as_labels(y, len(x))
        losses, _ = self._loss_terms(self._forward(x)["output"], y)
        return float(losses.mean(dtype=np.float64)) if len(losses) else 0.0

    def gradients(self, x, y):
        """(mean loss, dict name -> gradient of the mean loss) for every trainable parameter.

        The returned arrays are copies. C3 entries outside Table I have gradient exactly 0."""
        loss = self._compute_gradients(self._as_input(x), y)
        return loss, {name: g.copy() for name, g in self._grads.items()}

    def _compute_gradients(self, x, y):
        """Mean loss of a validated batch; leaves its gradient in the flat gradient array."""
        y = self._as_labels(y, len(x))
        self._grad_flat.fill(0)
        a = self._forward(x)
        losses, dout = self._loss_terms(a["output"], y)
        if len(x):
            self._backward(a, self._output_backward(a, dout), self._grads)
        return float(losses.mean(dtype=np.float64)) if len(losses) else 0.0

    def hessian_diagonal(self, x):
        """SDLM's curvature estimates h_kk (Eq. 23-25, 27 of the paper), averaged over the samples of x.

        Returns dict name -> array shaped like the parameter (the trainable ones). Gauss-Newton and
        diagonal: second derivatives are back-propagated with squared weights, inputs and f'; shared
        weights sum over their connections. The output seed is d2E/dx^2 = 2 for every F6 unit (exact
        for MSE; for MAP, the curvature of its y_D term). Paper variant only."""
        flat = self._hessian_flat(self._as_input(x))
        return {name: flat[offset:offset + g.size].reshape(g.shape) for name, g, offset in self._layout()}

    def _hessian_flat(self, x):
        """hessian_diagonal of a validated batch, in the layout of the flat parameter array."""
        if self.variant != "paper":
            raise ValueError("hessian_diagonal (SDLM) is defined for the paper variant only")
        flat = np.zeros_like(self._flat)
        if len(x):
            views = {name: flat[offset:offset + g.size].reshape(g.shape) for name, g, offset in self._layout()}
            a = self._forward(x)
            seed = np.full_like(a["f6"], 2.0 / len(x))
            self._backward(a, seed, views, squared=True)
        return flat

    def _layout(self):
        """(name, gradient view, offset in the flat arrays) for every parameter tensor, in order."""
        base = self._grad_flat.__array_interface__["data"][0]
        return [(name, g, (g.__array_interface__["data"][0] - base) // g.itemsize)
                for name, g in self._grads.items()]

    def _train_steps(self, x, y, order, step, batch_size=1, momentum=0.0, weight_decay=0.0, velocity=None):
        """Training steps on validated input: the samples x[order] in order, in mini-batches of
        `batch_size`, each followed by the update (see ops.train_steps). Returns (losses, predictions)
        of every presented sample, computed before its batch's update."""
        return ops.train_steps(self._flat, x, y, order, step, variant=self.variant, criterion=self.criterion,
                               map_j=self.map_j, table=self._table, centers=self._centers,
                               batch_size=batch_size, momentum=momentum, weight_decay=weight_decay,
                               velocity=velocity, n_threads=effective_n_threads(self.n_threads))

    def predict(self, x):
        """(N,) int64 digits: argmin of the penalties (paper) or argmax of the logits (modern)."""
        return self._decide(self._scores(self._as_input(x)))

    def _decide(self, scores):
        return (scores.argmin(axis=1) if self.variant == "paper" else scores.argmax(axis=1)).astype(np.int64)

    def _scores(self, x):
        """Outputs of a validated batch: the fused forward kernel (the same layer code as _forward)."""
        return ops._network_forward(self._network, x, np.empty((len(x), 10), self.dtype),
                                    effective_n_threads(self.n_threads))

    def evaluate(self, x, y):
        """dict with the mean ``loss``, the ``error`` rate and the ``predictions`` over (x, y).

        x: uint8 images (N, 28, 28) / (N, 32, 32) or network input (N, 1, 32, 32); y: N labels 0..9."""
        x = self._as_input(x)
        y = self._as_labels(y, len(x))
        if not len(x):
            raise ValueError("x is empty: there is nothing to evaluate")
        scores = self._scores(x)
        losses, _ = self._loss_terms(scores, y)
        predictions = self._decide(scores)
        return {"loss": float(losses.mean(dtype=np.float64)),
                "error": float(np.mean(predictions != y)), "predictions": predictions}

    def score(self, x, y):
        """Accuracy (the fraction of correctly recognised samples) on (x, y)."""
        return 1.0 - self.evaluate(x, y)["error"]

    def fit(self, x, y, epochs=20, batch_size=None, optimizer=None, learning_rate=None, momentum=None,
            weight_decay=None, validation_data=None, distortions=False, seed=0, callbacks=(), verbose=0,
            checkpoint=None):
        """Train on (x, y) and return the History (per epoch: loss, training error measured on the
        fly, validation loss and error, seconds, images/s).

        The defaults reproduce the paper for the paper variant: SDLM, one sample at a time in a
        constant random order, 20 passes, the paper's eta schedule. The modern variant defaults to
        SGD with momentum on mini-batches of 64. See ``lenet_fast.training.Trainer`` for every option;
        this is a thin convenience over it."""
        from .training import Trainer
        trainer = Trainer(self, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
                          distortions=distortions, seed=seed, callbacks=callbacks, verbose=verbose,
                          checkpoint=checkpoint)
        return trainer.fit(x, y, validation_data=validation_data)

    def summary(self):
        """A per-layer table: output shape, trainable parameters, connections, and the totals."""
        rows = [("layer", "type", "output", "params", "connections"), ("input", "", "1x32x32", "", "")]
        total_p = total_c = 0
        for layer, kind, shape, params, connections in self._layers:
            n = sum(int(np.prod(s)) for s in params.values())
            if layer == "c3":
                n -= 25 * int((self._table == 0).sum())
            total_p, total_c = total_p + n, total_c + connections
            kind = {"conv": "convolution", "subsample": "subsampling", "maxpool": "max-pool 2x2",
                    "dense": "full", "rbf": "Euclidean RBF (fixed)"}[kind]
            rows.append((layer.upper() if layer != "output" else "OUTPUT", kind,
                         "x".join(map(str, shape)), f"{n:,}", f"{connections:,}"))
        rows.append(("total", "", "", f"{total_p:,}", f"{total_c:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"LeNet-5 ({self.variant} variant, {self.dtype}, criterion {self.criterion})"]
        for i, r in enumerate(rows):
            if i in (1, len(rows) - 1):
                lines.append("  ".join("-" * w for w in widths))
            lines.append("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        return "\n".join(lines)

    def __repr__(self):
        return (f"LeNet5(variant={self.variant!r}, dtype={str(self.dtype)!r}, n_threads={self.n_threads!r}, "
                f"criterion={self.criterion!r})")

    # --- files --------------------------------------------------------------------------------------

    def save(self, path):
        """Write the model to `path` (.npz with a JSON header; no pickle), atomically."""
        from .serialization import save_model
        save_model(self, path)

    @classmethod
    def load(cls, path, n_threads=None):
        """Read a model written by `save`. Raises ValueError for files that are not valid models."""
        from .serialization import load_model
        return load_model(cls, path, n_threads=n_threads)


def _dtype_name(dtype):
    if dtype is None:      # np.dtype(None) would silently mean float64
        return "None"
    try:
        return str(np.dtype(dtype))
    except TypeError:
        return repr(dtype)
