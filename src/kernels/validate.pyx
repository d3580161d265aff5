"""Checks of the Python layer that numpy makes slow or large: ``all_finite`` reads the array once, with
no temporary (np.isfinite(x).all() builds a boolean array as large as x, and takes microseconds even
for one image)."""
from cython cimport floating

from finite cimport _all_finite


def all_finite(const floating[::1] a):
    """Whether every value of the flat contiguous array a is finite (no NaN, no +-inf)."""
    cdef bint finite = True
    if a.shape[0]:
        with nogil:
            finite = _all_finite(&a[0], a.shape[0])
    return finite
