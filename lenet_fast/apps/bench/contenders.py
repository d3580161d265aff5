"""The contenders of ``lenet-fast bench``: what every one of them does (``Contender``), and lenet_fast's
own (its fused compiled training steps and its inference). The peers, the frameworks lenet_fast is
measured against, are in ``peers_torch``, ``peers_jax`` and ``peers_onnx``; ``peers`` lists them.

A contender is made for one variant and thread count, over the training data of a repetition
(``x_train`` float32 (N, 1, 32, 32), ``y_train`` int64 labels). ``train(batch)`` runs one epoch over
that data at a batch size (plain SGD, step ``STEP``); ``infer(x)`` runs one forward pass of an input
made by ``as_input`` (outside the timing); both return only when the work is done. ``kinds`` says
which cases it takes part in: "training", "inference" and "latency" (batch-1 inference calls)."""
import numpy as np

from ...model import LeNet5

STEP = 1e-4         # plain SGD, every contender
KINDS = frozenset({"training", "inference", "latency"})
# the classic LeNet-5 the peers run (the same layers and sizes in every framework)
CLASSIC_MODELS = {
    "paper": "conv5x5 1-6, tanh, avgpool2, conv5x5 6-16, tanh, avgpool2, conv5x5 16-120, tanh, "
             "linear 120-84, tanh, linear 84-10; MSE on one-hot, SGD",
    "modern": "conv5x5 1-6, relu, maxpool2, conv5x5 6-16, relu, maxpool2, conv5x5 16-120, relu, "
              "linear 120-84, relu, linear 84-10; cross-entropy, SGD",
}
# (out maps, in maps, 5, 5) convolutions, then (out, in) dense layers: the classic net's weights
CLASSIC_SHAPES = (("c1", (6, 1, 5, 5)), ("c3", (16, 6, 5, 5)), ("c5", (120, 16, 5, 5)),
                  ("f6", (84, 120)), ("output", (10, 84)))


class Contender:
    """What a contender does (see the module's docstring); a subclass sets ``name`` and ``kinds``."""
    name = "contender"
    kinds = KINDS

    @classmethod
    def not_at(cls, n_threads):
        """None if it can run at `n_threads` in this process, else why not (JAX's thread pool is sized
        when it starts)."""
        return None

    def train(self, batch):
        raise NotImplementedError

    def infer(self, x):
        raise NotImplementedError

    def as_input(self, x):
        return np.ascontiguousarray(x, dtype=np.float32)


class _LenetFast(Contender):
    name = "lenet_fast"

    def __init__(self, variant, n_threads, x_train, y_train):
        # x_train: float32 (N, 1, 32, 32), y_train: int64 labels (LeNet5.train_steps checks them); used as
        # they are, with no copy
        self.net = LeNet5(variant, dtype="float32", seed=0, n_threads=n_threads)
        self.x, self.y = x_train, y_train
        self.order = np.arange(len(y_train))
        self.step = np.full(self.net.flat_parameters.size, STEP, dtype=np.float32)

    def train(self, batch):
        self.net.train_steps(self.x, self.y, self.order, self.step, batch)

    def infer(self, x):
        self.net.forward(x)

    def as_input(self, x):
        return x


def classic_parameters(seed=0):
    """{layer: (weight, bias)} of the classic net, float32, uniform in +-1/sqrt(fan-in) (PyTorch's
    default initialisation), for the peers that do not bring their own (JAX)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in CLASSIC_SHAPES:
        bound = 1 / np.sqrt(np.prod(shape[1:]))
        params[name] = (rng.uniform(-bound, bound, shape).astype(np.float32),
                        rng.uniform(-bound, bound, shape[0]).astype(np.float32))
    return params
