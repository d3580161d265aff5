"""The PyTorch peers of ``lenet-fast bench``, each the classic LeNet-5 (``contenders.CLASSIC_MODELS``):

* ``torch``: eager; a training step is ``zero_grad``, the loss of ``model(x)``, ``backward`` and
  ``torch.optim.SGD.step``; inference is ``model(x)`` under ``torch.inference_mode()``;
* ``torch-compile``: the same, with ``torch.compile(model)`` in place of the model (the step stays in
  eager autograd around the compiled forward and backward graphs);
* ``torch-compile-step``: training only; the whole step (forward, loss, gradients by
  ``torch.func.grad``, the SGD update) is one function compiled with ``torch.compile(fullgraph=True)``.
  If that does not compile, it falls back to compiling the eager step (backward and optimiser, with
  graph breaks); ``mode`` says which ran.

torch.compile runs with its defaults (inductor; a second batch size makes the batch dimension
dynamic). Every contender sets torch's thread count before each call.
"""
import numpy as np

from ...nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND
from .contenders import STEP, Contender

RECOMPILE_LIMIT = 64        # graphs per code object: every variant, thread count and batch size compiles


def classic_torch_model(torch, variant):
    nn = torch.nn
    act, pool = (nn.Tanh, nn.AvgPool2d) if variant == "paper" else (nn.ReLU, nn.MaxPool2d)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), act(), pool(2),
        nn.Conv2d(6, 16, 5), act(), pool(2),
        nn.Conv2d(16, 120, 5), act(), nn.Flatten(),
        nn.Linear(120, 84), act(), nn.Linear(84, 10))


class TorchEager(Contender):
    """x_train: float32 network input (N, 1, 32, 32), held as it is (a tensor sharing its memory), or
    uint8 images (N, 28, 28), held as they are and padded and scaled a batch at a time (the memory runs)."""
    name = "torch"

    def __init__(self, variant, n_threads, x_train, y_train):
        import torch        # optional and slow to import: only when this peer runs
        nn = torch.nn
        self.torch, self.n_threads = torch, n_threads
        torch.manual_seed(0)
        self.model = classic_torch_model(torch, variant)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=STEP)
        x_train = np.asarray(x_train)
        self.x = torch.from_numpy(np.ascontiguousarray(
            x_train, dtype=np.uint8 if x_train.dtype == np.uint8 else np.float32))
        labels = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
        if variant == "paper":
            self.loss, self.t = nn.MSELoss(), nn.functional.one_hot(labels, 10).float()
        else:
            self.loss, self.t = nn.CrossEntropyLoss(), labels
        self.forward = self.model           # what training and inference call

    def batch(self, start, stop):
        x = self.x[start:stop]
        if x.dtype != self.torch.uint8:
            return x
        scale = (INPUT_FOREGROUND - INPUT_BACKGROUND) / 255.0
        x = x.float().mul_(scale).add_(INPUT_BACKGROUND)
        pad = (32 - x.shape[-1]) // 2
        return self.torch.nn.functional.pad(x, (pad,) * 4, value=INPUT_BACKGROUND).unsqueeze(1)

    def train(self, batch):
        self.torch.set_num_threads(self.n_threads)
        forward, optimizer, loss, t = self.forward, self.optimizer, self.loss, self.t
        for start in range(0, len(self.x), batch):
            optimizer.zero_grad(set_to_none=True)
            loss(forward(self.batch(start, start + batch)), t[start:start + batch]).backward()
            optimizer.step()

    def infer(self, x):
        self.torch.set_num_threads(self.n_threads)
        with self.torch.inference_mode():
            self.forward(x)

    def as_input(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _allow_recompiles(torch):
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):        # the name changed across versions
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))


class TorchCompiledModel(TorchEager):
    name = "torch-compile"

    def __init__(self, variant, n_threads, x_train, y_train):
        super().__init__(variant, n_threads, x_train, y_train)
        _allow_recompiles(self.torch)
        self.forward = self.torch.compile(self.model)


class TorchCompiledStep(TorchEager):
    name = "torch-compile-step"
    kinds = frozenset({"training"})

    def __init__(self, variant, n_threads, x_train, y_train):
        super().__init__(variant, n_threads, x_train, y_train)
        torch = self.torch
        _allow_recompiles(torch)
        from torch.func import functional_call, grad
        model, loss = self.model, self.loss

        def loss_of(params, x, t):
            return loss(functional_call(model, params, (x,)), t)

        gradients = grad(loss_of)

        def step(params, x, t):
            g = gradients(params, x, t)
            return {name: p - STEP * g[name] for name, p in params.items()}

        self.mode = "compiled fullgraph"            # until it fails to compile
        self.step = torch.compile(step, fullgraph=True)
        self.params = {name: p.detach().clone() for name, p in model.named_parameters()}

    def _eager_step(self, params, x, t):
        """The fallback: the eager step (backward, torch.optim.SGD), compiled with graph breaks."""
        self.optimizer.zero_grad(set_to_none=True)
        self.loss(self.model(x), t).backward()
        self.optimizer.step()
        return params

    def train(self, batch):
        self.torch.set_num_threads(self.n_threads)
        params, t = self.params, self.t
        for start in range(0, len(self.x), batch):
            x = self.batch(start, start + batch)
            try:
                params = self.step(params, x, t[start:start + batch])
            except Exception:
                if self.mode != "compiled fullgraph":
                    raise
                self.mode = "fullgraph failed: compiled the eager step, with graph breaks"    # once
                self.step = self.torch.compile(self._eager_step)
                params = self.step(params, x, t[start:start + batch])
        self.params = params
