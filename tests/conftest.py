import os
from pathlib import Path

import numpy as np
import pytest

import lenet_fast

# The shared data folder lives beside the checkout; on a user's machine it is absent and the tests
# that need it skip.
SHARED = Path(os.environ.get("LENET_FAST_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def pytest_report_header(config):
    from lenet_fast import _platform
    return (f"lenet_fast {lenet_fast.__version__} from {Path(lenet_fast.__file__).parent}; "
            f"openmp={_platform.openmp_enabled()}, simd={_platform.compiled_isa()}")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED
