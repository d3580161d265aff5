# One sample's fully connected layer, forward and backward (cimported and inlined).
from cython cimport floating
from libc.string cimport memset

from lanes cimport LANES, _dot_lanes, _sum_lanes

# --- fully connected: out[k] = b[k] + sum_f w[k, f] x[f] ----------------------------------------------

cdef inline void _dense_forward_one(floating* out, const floating* x, const floating* w, const floating* b,
                                    Py_ssize_t F, Py_ssize_t K) noexcept nogil:
    # x (F,), w (K, F), b (K,) -> out (K,)
    cdef Py_ssize_t k
    cdef floating acc[LANES]
    for k in range(K):
        memset(acc, 0, sizeof(acc))
        _dot_lanes(acc, w + k * F, x, F, False)
        out[k] = b[k] + _sum_lanes(acc)


cdef inline void _dense_backward_one(floating* dx, floating* dw, floating* db, const floating* dout,
                                     const floating* x, const floating* w, Py_ssize_t F,
                                     Py_ssize_t K, bint squared) noexcept nogil:
    # dout (K,) -> dx (F,) overwritten; dw (K, F), db (K,) accumulated
    cdef Py_ssize_t k, f
    cdef floating d
    cdef const floating* row
    cdef floating* drow
    memset(dx, 0, F * sizeof(floating))
    for k in range(K):
        d = dout[k]
        row = w + k * F
        drow = dw + k * F
        if squared:
            for f in range(F):
                dx[f] += d * (row[f] * row[f])
                drow[f] += d * (x[f] * x[f])
        else:
            for f in range(F):
                dx[f] += d * row[f]
                drow[f] += d * x[f]
        db[k] += d
