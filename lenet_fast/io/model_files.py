"""Model files (format "lenet_fast-model"): each parameter by name, and a header with ``variant``,
``dtype``, ``criterion`` and ``map_j`` (see ``archive`` for the container). Every array is checked
against the variant's architecture when it is read.
"""
import numpy as np

from ..nn.architecture import architecture
from ..nn.constants import RBF_CENTERS
from .archive import read_archive, write_archive

FORMAT = "lenet_fast-model"
FORMAT_VERSION = 1


def model_header(net):
    """The header of a model file (and of a checkpoint's model part)."""
    return {"variant": net.variant, "dtype": str(net.dtype), "criterion": net.criterion, "map_j": net.map_j}


def save_model(net, path):
    """Write `net` to `path`, after the checks that load_model makes (a file that would not load is not
    written: ValueError naming the problem)."""
    check_parameters(net, net.parameters(), f"cannot save the model to {path}")
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
    check_parameters(net, arrays, path)
    for name, target in params.items():
        if name != "output.centers":         # fixed (Fig. 3): checked equal, never read from the file
            target[...] = arrays[name]
    return net


def check_parameters(net, arrays, where):
    """ValueError starting with `where` unless `arrays` (name -> array) are valid parameters of `net`'s
    variant: each of its shape, floating-point and finite, C3's weights outside Table I zero, the RBF
    centres the bitmaps of Fig. 3."""
    for name, target in net.parameters().items():
        value = arrays[name]
        if value.shape != target.shape or not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{where}: parameter {name} has shape {value.shape} and dtype {value.dtype}, "
                             f"expected {target.shape} {target.dtype}")
        if not np.isfinite(value).all():
            raise ValueError(f"{where}: parameter {name} contains NaN or infinite values")
    if "output.centers" in arrays and not np.array_equal(arrays["output.centers"], RBF_CENTERS):
        raise ValueError(f"{where}: output.centers are not the fixed RBF bitmaps of Fig. 3 (LeCun et al. 1998)")
    spec = architecture(net.variant)
    flat = np.concatenate([np.ravel(arrays[p.name]) for p in spec.params])
    if np.any(flat[~spec.trainable_mask()] != 0):
        raise ValueError(f"{where}: c3.weight has non-zero weights outside the C3 connection table")
