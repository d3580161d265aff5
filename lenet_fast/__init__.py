"""lenet_fast: LeNet-5 exactly as LeCun, Bottou, Bengio & Haffner (1998), with fast CPU kernels."""
__version__ = "0.1.0"

try:
    from . import _platform  # noqa: F401  (the compiled kernels)
except ImportError as exc:  # pragma: no cover - only on a broken or source-tree import
    raise ImportError(
        f"lenet_fast's compiled kernels could not be imported ({exc}). If you are in the source "
        "tree, install the package first (`pip install .`, or `pip install -e .` for development) "
        "and run Python from another directory."
    ) from exc

from ._config import effective_n_threads, show_config
from .model import LeNet5
from .preprocessing import preprocess

__all__ = ["LeNet5", "preprocess", "show_config", "effective_n_threads", "__version__"]
