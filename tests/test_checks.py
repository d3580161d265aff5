"""finite_number and integer, the validators of number arguments: what they accept and what their errors say."""
import fractions
import math
import re

import numpy as np
import pytest

from lenet_fast._checks import finite_number, integer


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


# --- integer ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [3, -3, 0, np.int64(3), np.int32(-3), np.uint8(3), 2**70])
def test_python_and_numpy_integers_come_back_as_ints(value):
    result = integer("n", value)
    assert type(result) is int and result == value


@pytest.mark.parametrize("value", [True, False, np.True_, 3.0, np.float64(3.0), fractions.Fraction(3),
                                   "3", None, [3], np.array(3), 3 + 0j])
def test_bools_floats_strings_and_others_are_a_type_error(value):
    with pytest.raises(TypeError, match=rf"^n must be an integer, got {re.escape(repr(value))}$"):
        integer("n", value)


@pytest.mark.parametrize("bounds, inside, outside, allowed", [
    (dict(at_least=1), [1, 5], [0, -1], ">= 1"),
    (dict(at_most=9), [9, -5], [10, 100], "<= 9"),
    (dict(at_least=0, at_most=9), [0, 9], [-1, 10], r"in \[0, 9\]"),
])
def test_bounds_are_inclusive_and_out_of_range_is_a_value_error(bounds, inside, outside, allowed):
    for value in inside:
        assert integer("epochs", value, **bounds) == value
    for value in outside + [np.int64(outside[0])]:
        with pytest.raises(ValueError, match=rf"^epochs must be an integer {allowed}, got {re.escape(repr(value))}$"):
            integer("epochs", value, **bounds)


def test_integer_names_the_range_when_the_type_is_wrong():
    with pytest.raises(TypeError, match=r"^batch_size must be an integer >= 1, got 3.0$"):
        integer("batch_size", 3.0, at_least=1)


def test_none_only_where_allowed_and_then_named_in_the_message():
    assert integer("seed", None, at_least=0, allow_none=True) is None
    with pytest.raises(TypeError, match=r"^seed must be an integer >= 0 or None, got 'a'$"):
        integer("seed", "a", at_least=0, allow_none=True)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0 or None, got -1$"):
        integer("seed", -1, at_least=0, allow_none=True)
