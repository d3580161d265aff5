# The finiteness check of the input: one definition for the Python layer's all_finite (validate.pyx) and
# the forward kernel, which checks each block of images as it reads it (network_forward.pxi).
from cython cimport floating


cdef inline bint _all_finite(const floating* a, Py_ssize_t n) noexcept nogil:
    # v - v is 0 for a finite v and NaN for NaN or +-inf; the sum of those is 0 exactly when all are
    # finite (a NaN anywhere stays NaN). Blocks of 64 lanes, so that the loop vectorises into several
    # independent sums (with one vector of sums, each addition waits for the one before: 4x slower)
    cdef floating acc[64]
    cdef Py_ssize_t i, l
    for l in range(64):
        acc[l] = 0
    for i in range(n // 64):
        for l in range(64):
            acc[l] += a[i * 64 + l] - a[i * 64 + l]
    for i in range(n - n % 64, n):
        acc[0] += a[i] - a[i]
    for l in range(1, 64):
        acc[0] += acc[l]
    return acc[0] == 0
