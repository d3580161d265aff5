"""Tolerance rules shared by the tests and the benchmarks' correctness gate."""
import numpy as np

# float64 kernels must match the float64 reference tightly; float32 to a few ulps of the magnitude
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-10}


def assert_close(actual, desired, dtype, name=""):
    """Compare a kernel result with the float64 reference; atol scales with the reference's magnitude."""
    desired = np.asarray(desired, dtype=np.float64)
    actual = np.asarray(actual)
    assert actual.shape == desired.shape, f"{name}: shape {actual.shape} != {desired.shape}"
    rtol = RTOL[np.dtype(dtype)]
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual.astype(np.float64), desired, rtol=rtol, atol=rtol * max(scale, 1e-30),
                               err_msg=name)
