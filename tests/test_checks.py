"""finite_number, the one validator of number arguments: what it accepts and what its errors say."""
import fractions
import math

import numpy as np
import pytest

from lenet_fast._checks import finite_number


@pytest.mark.parametrize("value", [2, 2.5, np.int64(2), np.float32(2.5), fractions.Fraction(5, 2)])
def test_real_numbers_come_back_as_floats(value):
    result = finite_number("x", value)
    assert type(result) is float and result == float(value)


@pytest.mark.parametrize("value", [True, False, np.True_, "2", None, [2.0], np.array(2.0), 1j,
                                   math.nan, math.inf, -math.inf, np.float32("nan")])
def test_bools_non_numbers_nan_and_inf_are_rejected(value):
    with pytest.raises(ValueError, match=r"^x must be a finite number, got "):
        finite_number("x", value)


@pytest.mark.parametrize("bounds, inside, outside, allowed", [
    (dict(above=0), [1e-9, 5], [0, -1], "> 0"),
    (dict(at_least=0), [0, 5], [-1e-9, -1], ">= 0"),
    (dict(below=1), [0.999, -5], [1, 2], "< 1"),
    (dict(at_most=1), [1, -5], [1.001, 2], "<= 1"),
    (dict(at_least=0, below=1), [0, 0.5], [-0.1, 1], r"in \[0, 1\)"),
    (dict(above=0, at_most=1), [1, 0.5], [0, 1.5], r"in \(0, 1\]"),
])
def test_bounds_open_and_closed(bounds, inside, outside, allowed):
    for value in inside:
        assert finite_number("rate", value, **bounds) == value
    for value in outside:
        with pytest.raises(ValueError, match=rf"^rate must be a finite number {allowed}, got {value!r}$"):
            finite_number("rate", value, **bounds)


def test_the_range_is_named_when_the_type_is_wrong():
    with pytest.raises(ValueError, match=r"^momentum must be a finite number in \[0, 1\), got 'high'$"):
        finite_number("momentum", "high", at_least=0, below=1)
