"""Model files (format "lenet_fast-model"): each parameter by name, and a header with ``variant``,
``dtype``, ``criterion`` and ``map_j`` (see ``archive`` for the container). Every array is checked
against the variant's architecture when it is read.
"""
import numpy as np

from ..nn.architecture import architecture
from .archive import read_archive, write_archive

FORMAT = "lenet_fast-model"
FORMAT_VERSION = 1


def model_header(net):
    """The header of a model file (and of a checkpoint's model part)."""
    return {"variant": net.variant, "dtype": str(net.dtype), "criterion": net.criterion, "map_j": net.map_j}


def save_model(net, path):
    write_archive(path, FORMAT, FORMAT_VERSION, model_header(net), net.parameters())


def load_model(cls, path, n_threads=None):
    """A `cls` model (lenet_fast.nn.network.Network or a subclass) from the model file `path`."""
    header, arrays = read_archive(path, FORMAT, FORMAT_VERSION, "model")
    return model_from(cls, path, header, arrays, n_threads)


def model_from(cls, path, header, arrays, n_threads=None):
    """A model built from a header (model_header) and its parameter arrays, every one checked."""
    try:
        net = cls(variant=header["variant"], dtype=header["dtype"], n_threads=n_threads,
                  criterion=header["criterion"], map_j=header["map_j"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid model header ({exc})") from None

    params = net.parameters()
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    if missing or extra:
        raise ValueError(f"{path}: parameters do not match a {net.variant} LeNet-5 "
                         f"(missing {missing}, unexpected {extra})")
    for name, target in params.items():
        value = arrays[name]
        if value.shape != target.shape or not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{path}: parameter {name} has shape {value.shape} and dtype {value.dtype}, "
                             f"expected {target.shape} {target.dtype}")
        if not np.isfinite(value).all():
            raise ValueError(f"{path}: parameter {name} contains NaN or infinite values")
        target[...] = value
    if np.any(net.flat_parameters[~architecture(net.variant).trainable_mask()] != 0):
        raise ValueError(f"{path}: c3.weight has non-zero weights outside the C3 connection table")
    return net
