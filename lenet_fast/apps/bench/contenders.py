"""The two contenders of ``lenet-fast bench``: lenet_fast's fused training steps and inference, and
the closest classic LeNet-5 that PyTorch can express. Each trains one epoch over its data at a given
batch size (``train``) and runs a forward pass (``infer`` on an input made by ``as_input``)."""
import numpy as np

from ...model import LeNet5

STEP = 1e-4         # plain SGD, both contenders
TORCH_MODELS = {
    "paper": "conv5x5 1-6, tanh, avgpool2, conv5x5 6-16, tanh, avgpool2, conv5x5 16-120, tanh, "
             "linear 120-84, tanh, linear 84-10; MSE on one-hot, SGD",
    "modern": "conv5x5 1-6, relu, maxpool2, conv5x5 6-16, relu, maxpool2, conv5x5 16-120, relu, "
              "linear 120-84, relu, linear 84-10; cross-entropy, SGD",
}


class _LenetFast:
    name = "lenet_fast"

    def __init__(self, variant, n_threads, x_train, y_train):
        # x_train: float32 (N, 1, 32, 32), y_train: int64 labels (LeNet5.train_steps checks them); used as
        # they are, so the memory runs add no copy of the data
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


class _Torch:
    name = "torch"

    def __init__(self, torch, variant, n_threads, x_train, y_train):
        nn = torch.nn
        self.torch, self.n_threads = torch, n_threads
        torch.manual_seed(0)
        act, pool = (nn.Tanh, nn.AvgPool2d) if variant == "paper" else (nn.ReLU, nn.MaxPool2d)
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5), act(), pool(2),
            nn.Conv2d(6, 16, 5), act(), pool(2),
            nn.Conv2d(16, 120, 5), act(), nn.Flatten(),
            nn.Linear(120, 84), act(), nn.Linear(84, 10))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=STEP)
        self.x = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
        labels = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
        if variant == "paper":
            self.loss, self.t = nn.MSELoss(), nn.functional.one_hot(labels, 10).float()
        else:
            self.loss, self.t = nn.CrossEntropyLoss(), labels

    def train(self, batch):
        self.torch.set_num_threads(self.n_threads)
        model, optimizer, loss, x, t = self.model, self.optimizer, self.loss, self.x, self.t
        for start in range(0, len(x), batch):
            optimizer.zero_grad(set_to_none=True)
            loss(model(x[start:start + batch]), t[start:start + batch]).backward()
            optimizer.step()

    def infer(self, x):
        self.torch.set_num_threads(self.n_threads)
        with self.torch.inference_mode():
            self.model(x)

    def as_input(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _import_torch():
    try:
        import torch    # optional, and slow to import: only when the bench runs
    except Exception:   # not installed, or broken: measure lenet_fast alone
        return None
    return torch
