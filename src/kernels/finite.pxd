# The finiteness check of the input: one definition for the Python layer's all_finite (validate.pyx) and
# the forward kernel, which checks each block of images as it reads it (network_forward.pxi).
from cython cimport floating


cdef inline bint _all_finite(const floating* a, Py_ssize_t n) noexcept nogil:
    # v - v is 0 for a finite v and NaN for NaN or +-inf; the sum of those is 0 exactly when all are
    # finite (blocks of 16 lanes, so that the loop vectorises; a NaN anywhere stays NaN)
    cdef floating acc[16]
    cdef Py_ssize_t i, l
    for l in range(16):
        acc[l] = 0
    for i in range(n // 16):
        for l in range(16):
            acc[l] += a[i * 16 + l] - a[i * 16 + l]
    for i in range(n - n % 16, n):
        acc[0] += a[i] - a[i]
    for l in range(1, 16):
        acc[0] += acc[l]
    return acc[0] == 0
