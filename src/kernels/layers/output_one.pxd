# One sample's Euclidean RBF output and the losses on its scores (cimported and inlined).
from cython cimport floating
from libc.math cimport exp, log
from libc.stdint cimport int64_t
from libc.string cimport memset

from lanes cimport LANES, _sum_lanes

# --- Euclidean RBF output (Eq. 7) and the losses on the scores --------------------------------------

cdef enum:
    MSE = 0             # Eq. 8: the penalty of the correct class
    MAP = 1             # Eq. 9: y_D + log(e^-j + sum_i e^-y_i)
    CROSS_ENTROPY = 2   # softmax cross-entropy on logits (modern variant)


cdef inline void _rbf_forward_one(floating* out, const floating* x, const floating* centers, Py_ssize_t F,
                                  Py_ssize_t K) noexcept nogil:
    # out[i] = sum_j (x[j] - centers[i, j])^2 as LANES partial sums added in a fixed order, like a dense
    # layer's (fused_lanes_template.h matches it); a plain running sum would be vectorised as an in-order
    # reduction, whose products are not fused, unlike the scalar rest: rounding that depends on the ISA
    cdef Py_ssize_t i, j, l, full = F - F % LANES
    cdef floating acc[LANES]
    cdef floating d
    for i in range(K):
        memset(acc, 0, sizeof(acc))
        for j in range(F // LANES):
            for l in range(LANES):
                d = x[j * LANES + l] - centers[i * F + j * LANES + l]
                acc[l] += d * d
        for l in range(F - full):
            d = x[full + l] - centers[i * F + full + l]
            acc[l] += d * d
        out[i] = _sum_lanes(acc)


cdef inline void _rbf_backward_one(floating* dx, const floating* dout, const floating* x,
                                   const floating* centers, Py_ssize_t F, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating g
    for j in range(F):
        dx[j] = 0
    for i in range(K):
        g = 2 * dout[i]
        for j in range(F):
            dx[j] += g * (x[j] - centers[i * F + j])


cdef inline double _log_partition(const floating* s, Py_ssize_t K, int kind, double j) noexcept nogil:
    # MAP: log(e^-j + sum_i e^-s_i); cross-entropy: log(sum_i e^s_i); in double, shifted by the largest
    # exponent
    cdef Py_ssize_t i
    cdef double m, acc = 0
    if kind == MAP:
        m = j
        for i in range(K):
            if s[i] < m:
                m = s[i]
        acc = exp(m - j)
        for i in range(K):
            acc += exp(m - s[i])
        return -m + log(acc)
    m = s[0]
    for i in range(1, K):
        if s[i] > m:
            m = s[i]
    for i in range(K):
        acc += exp(s[i] - m)
    return m + log(acc)


cdef inline double _loss_one(const floating* s, int64_t label, Py_ssize_t K, int kind, double j) noexcept nogil:
    if kind == MSE:
        return s[label]
    if kind == MAP:
        return s[label] + _log_partition(s, K, kind, j)
    return _log_partition(s, K, kind, j) - s[label]


cdef inline void _loss_backward_one(floating* ds, const floating* s, int64_t label, Py_ssize_t K, int kind,
                                    double j, double scale) noexcept nogil:
    # ds = scale * d(loss)/d(scores) (scale = 1/N for a batch mean), overwritten
    cdef Py_ssize_t i
    cdef double z
    if kind == MSE:
        for i in range(K):
            ds[i] = 0
    else:
        z = _log_partition(s, K, kind, j)
        for i in range(K):
            if kind == MAP:
                ds[i] = <floating>(-scale * exp(-s[i] - z))     # minus the posterior of class i
            else:
                ds[i] = <floating>(scale * exp(s[i] - z))       # softmax
    if kind == CROSS_ENTROPY:
        ds[label] -= <floating>scale
    else:
        ds[label] += <floating>scale
