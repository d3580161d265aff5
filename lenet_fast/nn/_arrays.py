"""Argument checks of the kernel wrappers (``layer_kernels``, ``network_kernels``): the kernels trust
their callers and run without the GIL, so dtypes, shapes, contiguity and ranges are checked here first."""
import numpy as np

_FLOATS = (np.float32, np.float64)


def dtype_of(x, name):
    x = np.asarray(x)
    if x.dtype.type not in _FLOATS:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {x.dtype}")
    return x.dtype


def as_input(a, name, dtype, ndim):
    """A C-contiguous array of `dtype` with `ndim` dimensions (copied only if needed)."""
    a = np.asarray(a)
    if a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, but the other arguments are {dtype}: "
                        f"convert it with .astype(np.{dtype})")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return np.ascontiguousarray(a)


def output_buffer(buf, name, shape, dtype):
    if buf is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(buf, np.ndarray) or buf.shape != tuple(shape) or buf.dtype != dtype:
        raise ValueError(f"{name} must be an ndarray of shape {tuple(shape)} and dtype {dtype}")
    if not (buf.flags.c_contiguous and buf.flags.writeable):
        raise ValueError(f"{name} must be C-contiguous and writeable")
    return buf


def grad_buffer(buf, name, shape, dtype):
    return np.zeros(shape, dtype=dtype) if buf is None else output_buffer(buf, name, shape, dtype)


def check_shape(a, name, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")


def connection_table(table, n_in, n_out):
    if table is None:
        return np.ones((n_in, n_out), dtype=np.uint8)
    table = np.ascontiguousarray(table, dtype=np.uint8)
    check_shape(table, "table", (n_in, n_out))
    return table


def integers(a, name, n, high):
    """`a` as n int64 values in 0..high-1 (any integer dtype; n=None: any length)."""
    a = np.asarray(a)
    if a.ndim != 1 or (n is not None and len(a) != n):
        raise ValueError(f"{name} must be a 1-D array of {n if n is not None else 'any number of'} integers, "
                         f"got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= high):
        raise ValueError(f"{name} must lie in 0..{high - 1}, got values {a.min()}..{a.max()}")
    return np.ascontiguousarray(a, dtype=np.int64)
