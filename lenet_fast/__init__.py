"""lenet_fast: LeNet-5 exactly as LeCun, Bottou, Bengio & Haffner (1998), with fast CPU kernels.

Layout (imports run down this list, never up): ``nn`` (the architecture, the kernels, the NumPy reference,
the network), ``io`` (files), ``data`` (IDX, datasets, pictures), ``train`` (optimisers, Trainer,
checkpoints, distortions), ``model`` (LeNet5 = the network with ``fit``), ``apps`` (CLI, bench).
"""
import sys

from ._version import __version__

try:
    from . import _isa  # noqa: F401  (the compiled kernels: which ISA path runs them)
except ImportError as exc:  # pragma: no cover - only on a broken or source-tree import
    raise ImportError(
        f"lenet_fast's compiled kernels could not be imported ({exc}). If you are in the source "
        "tree, install the package first (`pip install .`, or `pip install -e .` for development) "
        "and run Python from another directory."
    ) from exc

from . import data, train
from ._config import effective_n_threads, show_config
from .io.onnx_export import export_onnx
from .model import LeNet5
from .nn import constants, layer_kernels, reference
from .nn.preprocessing import preprocess
from .train import distortions

# The module paths of lenet_fast 0.1, kept importable (README, "Changes"): each name is now the module
# or package that holds what the old module held.
MOVED_MODULES = {"training": train, "datasets": data, "ops": layer_kernels, "reference": reference,
                 "distortions": distortions, "images": data.images, "constants": constants}
sys.modules.update({f"{__name__}.{old}": module for old, module in MOVED_MODULES.items()})

__all__ = ["LeNet5", "preprocess", "export_onnx", "show_config", "effective_n_threads", "__version__"]
