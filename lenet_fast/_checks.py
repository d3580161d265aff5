"""Validation of number arguments, shared by the public API and the command line."""
import math
import numbers


def finite_number(name, value, *, above=None, at_least=None, below=None, at_most=None):
    """`value` as a float if it is a finite real number (not a bool) ``> above``, ``>= at_least``,
    ``< below`` and ``<= at_most`` (bounds left as None are not checked); otherwise a ValueError
    naming the argument, the bad value and the allowed range."""
    low, low_open = (above, True) if above is not None else (at_least, False)
    high, high_open = (below, True) if below is not None else (at_most, False)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
            and (low is None or (value > low if low_open else value >= low)) \
            and (high is None or (value < high if high_open else value <= high)):
        return float(value)
    if low is not None and high is not None:
        allowed = f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f" {'>' if low_open else '>='} {low}"
    elif high is not None:
        allowed = f" {'<' if high_open else '<='} {high}"
    else:
        allowed = ""
    raise ValueError(f"{name} must be a finite number{allowed}, got {value!r}")
