"""The JAX peers of ``lenet-fast bench``, the classic LeNet-5 (``contenders.CLASSIC_MODELS``) in
jax.numpy and lax (``lax.conv_general_dilated``, ``lax.reduce_window``), float32:

* ``jax``: ``jax.jit`` of the whole training step (forward, loss, ``jax.grad``, the SGD update; the
  batch is sliced from the data inside the step), called once per batch, and of inference;
* ``jax-scan``: training only; ``jax.jit`` of a whole epoch, a ``lax.scan`` of that step over the
  batches (one call per epoch, as lenet_fast's ``train_steps``).

Every call waits for its result (``block_until_ready``). XLA's CPU thread pool is sized when JAX starts
(all usable cores; one with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``): these peers run only at
that thread count (``not_at``).
"""
import functools
import os

import numpy as np

from .contenders import STEP, Contender, classic_parameters


def jax_threads():
    """The thread count XLA's CPU client runs with in this process."""
    if "--xla_cpu_multi_thread_eigen=false" in os.environ.get("XLA_FLAGS", ""):
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _forward(jax, variant, params, x):
    jnp, lax = jax.numpy, jax.lax
    act = jnp.tanh if variant == "paper" else jax.nn.relu

    def conv(x, w, b):
        y = lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + b[None, :, None, None]

    def pool(x):
        window = (1, 1, 2, 2)
        if variant == "paper":
            return lax.reduce_window(x, np.float32(0), lax.add, window, window, "VALID") * np.float32(0.25)
        return lax.reduce_window(x, np.float32(-np.inf), lax.max, window, window, "VALID")

    x = pool(act(conv(x, *params["c1"])))
    x = pool(act(conv(x, *params["c3"])))
    x = act(conv(x, *params["c5"])).reshape(x.shape[0], 120)
    x = act(x @ params["f6"][0].T + params["f6"][1])
    return x @ params["output"][0].T + params["output"][1]


def _loss(jax, variant, params, x, t):
    scores = _forward(jax, variant, params, x)
    jnp = jax.numpy
    if variant == "paper":                  # t: one-hot; the mean over every score, as torch's MSELoss
        return jnp.mean((scores - t) ** 2)
    picked = jnp.take_along_axis(scores, t[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(scores, axis=1) - picked)


class JaxStep(Contender):
    name = "jax"

    @classmethod
    def not_at(cls, n_threads):
        k = jax_threads()
        if n_threads == k:
            return None
        return (f"runs at {k} thread{'s' if k > 1 else ''} only: XLA's CPU thread pool is sized when JAX starts "
                "(all usable cores; 1 with XLA_FLAGS=--xla_cpu_multi_thread_eigen=false)")

    def __init__(self, variant, n_threads, x_train, y_train):
        import jax              # optional and slow to import: only when this peer runs
        self.jax = jax
        jnp = jax.numpy
        self.params = jax.tree_util.tree_map(jnp.asarray, classic_parameters(0))
        self.x = jnp.asarray(np.ascontiguousarray(x_train, dtype=np.float32))
        labels = np.asarray(y_train, dtype=np.int32)
        t = np.eye(10, dtype=np.float32)[labels] if variant == "paper" else labels
        self.t = jnp.asarray(t)
        loss = functools.partial(_loss, jax, variant)
        self.gradients = jax.grad(loss)
        self._infer = jax.jit(functools.partial(_forward, jax, variant))
        self._step = jax.jit(self._slice_step, static_argnames=("batch",), donate_argnums=(0,))

    def _update(self, params, x, t):
        g = self.gradients(params, x, t)
        return self.jax.tree_util.tree_map(lambda p, d: p - STEP * d, params, g)

    def _slice_step(self, params, x, t, start, batch):
        lax = self.jax.lax
        xb = lax.dynamic_slice_in_dim(x, start, batch)
        tb = lax.dynamic_slice_in_dim(t, start, batch)
        return self._update(params, xb, tb)

    def _steps(self, params, start, batch):
        """Steps from sample `start` to the end, one call per batch."""
        n = len(self.t)
        for begin in range(start, n, batch):
            params = self._step(params, self.x, self.t, begin, batch=min(batch, n - begin))
        return params

    def train(self, batch):
        self.params = self.jax.block_until_ready(self._steps(self.params, 0, batch))

    def infer(self, x):
        self.jax.block_until_ready(self._infer(self.params, x))

    def as_input(self, x):
        return self.jax.numpy.asarray(np.ascontiguousarray(x, dtype=np.float32))


class JaxScan(JaxStep):
    name = "jax-scan"
    kinds = frozenset({"training"})

    def __init__(self, variant, n_threads, x_train, y_train):
        super().__init__(variant, n_threads, x_train, y_train)
        self._epoch = self.jax.jit(self._scan, static_argnames=("batch", "n_batches"), donate_argnums=(0,))

    def _scan(self, params, x, t, batch, n_batches):
        used = n_batches * batch
        xs = x[:used].reshape((n_batches, batch) + x.shape[1:])
        ts = t[:used].reshape((n_batches, batch) + t.shape[1:])

        def body(params, xt):
            return self._update(params, *xt), None

        return self.jax.lax.scan(body, params, (xs, ts))[0]

    def train(self, batch):
        n_batches = len(self.t) // batch
        params = self._epoch(self.params, self.x, self.t, batch=batch, n_batches=n_batches)
        self.params = self.jax.block_until_ready(self._steps(params, n_batches * batch, batch))
