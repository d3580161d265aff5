# Fixed-order reductions shared by the per-sample layer math (cimported and inlined).
from cython cimport floating

cdef enum:
    LANES = 16      # partial sums of a reduction: one float32 AVX-512 vector, two float64 ones


# --- reductions: spread over LANES partial sums added in a fixed order --------------------------------
# Without reassociation (no -ffast-math) a plain `s += a[i] * b[i]` loop is one dependent add after
# another; with lanes the loop is elementwise, so it vectorises (and the order stays fixed).

cdef inline floating _sq(floating v, bint squared) noexcept nogil:
    return v * v if squared else v


cdef inline void _dot_lanes(floating* acc, const floating* a, const floating* b, Py_ssize_t n,
                            bint squared) noexcept nogil:
    # acc[l] += a[i] * b[i] (b[i]^2 if squared) for every i = l (mod LANES)
    cdef Py_ssize_t i, l, full = n - n % LANES
    for i in range(n // LANES):
        for l in range(LANES):
            acc[l] += a[i * LANES + l] * _sq(b[i * LANES + l], squared)
    for l in range(n - full):
        acc[l] += a[full + l] * _sq(b[full + l], squared)


cdef inline void _add_lanes(floating* acc, const floating* a, Py_ssize_t n) noexcept nogil:
    # acc[l] += a[i] for every i = l (mod LANES)
    cdef Py_ssize_t i, l, full = n - n % LANES
    for i in range(n // LANES):
        for l in range(LANES):
            acc[l] += a[i * LANES + l]
    for l in range(n - full):
        acc[l] += a[full + l]


cdef inline floating _sum_lanes(const floating* a) noexcept nogil:
    # the LANES (= 16) partial sums added pairwise in a fixed order: (a[l] + a[l + 8]), then those four
    # apart, then two apart
    return ((((a[0] + a[8]) + (a[4] + a[12])) + ((a[2] + a[10]) + (a[6] + a[14])))
            + (((a[1] + a[9]) + (a[5] + a[13])) + ((a[3] + a[11]) + (a[7] + a[15]))))
