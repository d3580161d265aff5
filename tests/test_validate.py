"""The compiled finiteness check of the Python layer (lenet_fast.nn._validate.all_finite)."""
import numpy as np
import pytest

from lenet_fast.nn.network import all_finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1024, 4099])
def test_all_finite_finds_any_nan_or_inf(dtype, n):
    a = np.linspace(-1, 1, n).astype(dtype)
    assert all_finite(a)
    for bad in (np.nan, np.inf, -np.inf):
        for position in {0, n // 2, n - 1} if n else set():
            b = a.copy()
            b[position] = bad
            assert not all_finite(b), (bad, position)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_extremes_are_finite(dtype):
    info = np.finfo(dtype)
    assert all_finite(np.array([info.max, -info.max, info.tiny, info.smallest_subnormal, -0.0] * 5, dtype))
