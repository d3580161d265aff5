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
    raise ValueError(f"{name} must be a finite number{_allowed(low, low_open, high, high_open)}, got {value!r}")


def integer(name, value, *, at_least=None, at_most=None, allow_none=False):
    """`value` as an int if it is a Python or NumPy integer (not a bool, not a float such as 3.0)
    ``>= at_least`` and ``<= at_most`` (bounds left as None are not checked); None stays None when
    `allow_none`. Otherwise a TypeError (not an integer) or a ValueError (out of range) naming the
    argument, the bad value and the allowed range."""
    if value is None and allow_none:
        return None
    # (type(value) is int first: the ABC check is slow, and n_threads is checked on every kernel call)
    if type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        as_int = int(value)
        if (at_least is None or as_int >= at_least) and (at_most is None or as_int <= at_most):
            return as_int
        error = ValueError
    else:
        error = TypeError
    or_none = " or None" if allow_none else ""
    raise error(f"{name} must be an integer{_allowed(at_least, False, at_most, False)}{or_none}, got {value!r}")


def _allowed(low, low_open, high, high_open):
    """The range of an error message: ' in [low, high)', ' > low', ' <= high', ... ('' without bounds)."""
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""
