# One sample's pooling: trainable subsampling and max pooling, forward and backward (cimported and inlined).
from cython cimport floating
from libc.string cimport memset

# --- pooling: trainable subsampling coef * (sum of the 2x2 block) + bias, and 2x2 max pooling -------

cdef inline void _subsample_forward_one(floating* out, const floating* x, const floating* coef,
                                        const floating* bias, Py_ssize_t C, Py_ssize_t H,
                                        Py_ssize_t W) noexcept nogil:
    # x (C, H, W) -> out (C, H/2, W/2)
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j
    cdef const floating* top
    cdef const floating* bottom
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            for j in range(Wo):
                out[(c * Ho + i) * Wo + j] = coef[c] * (top[2 * j] + top[2 * j + 1]
                                                        + bottom[2 * j] + bottom[2 * j + 1]) + bias[c]


cdef inline void _subsample_backward_one(floating* dx, floating* dcoef, floating* dbias, const floating* dout,
                                         const floating* x, const floating* coef, Py_ssize_t C, Py_ssize_t H,
                                         Py_ssize_t W, bint squared) noexcept nogil:
    # dout (C, H/2, W/2) -> dx (C, H, W) overwritten; dcoef, dbias (C,) accumulated
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j
    cdef floating d, dc, dsum, cc
    cdef const floating* top
    cdef const floating* bottom
    cdef floating* dtop
    cdef floating* dbottom
    for c in range(C):
        dc = 0
        dsum = 0
        cc = coef[c] * coef[c] if squared else coef[c]
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            dtop = dx + (c * H + 2 * i) * W
            dbottom = dtop + W
            for j in range(Wo):
                d = dout[(c * Ho + i) * Wo + j]
                dsum = dsum + d
                if squared:
                    dc = dc + d * (top[2 * j] * top[2 * j] + top[2 * j + 1] * top[2 * j + 1]
                                   + bottom[2 * j] * bottom[2 * j] + bottom[2 * j + 1] * bottom[2 * j + 1])
                else:
                    dc = dc + d * (top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1])
                dtop[2 * j] = cc * d
                dtop[2 * j + 1] = cc * d
                dbottom[2 * j] = cc * d
                dbottom[2 * j + 1] = cc * d
        dcoef[c] += dc
        dbias[c] += dsum


cdef inline Py_ssize_t _max_block(const floating* top, const floating* bottom, Py_ssize_t j,
                                  floating* largest) noexcept nogil:
    # index 0..3 (row-major) of the first maximal element of a 2x2 block, its value into largest; a NaN
    # never wins a comparison (a leading NaN is kept). Selects, not branches: the maxima of random data
    # are unpredictable, and the loops around it vectorise.
    cdef floating m = top[2 * j], v
    cdef Py_ssize_t best = 0
    v = top[2 * j + 1]
    best = 1 if v > m else best
    m = v if v > m else m
    v = bottom[2 * j]
    best = 2 if v > m else best
    m = v if v > m else m
    v = bottom[2 * j + 1]
    best = 3 if v > m else best
    m = v if v > m else m
    largest[0] = m
    return best


cdef inline void _maxpool_forward_one(floating* out, const floating* x, Py_ssize_t C, Py_ssize_t H,
                                      Py_ssize_t W) noexcept nogil:
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j
    cdef const floating* top
    cdef const floating* bottom
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            for j in range(Wo):
                _max_block(top, bottom, j, &out[(c * Ho + i) * Wo + j])


cdef inline void _maxpool_backward_one(floating* dx, const floating* dout, const floating* x, Py_ssize_t C,
                                       Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    # each block's gradient goes to its maximum, zeros to the other three (all four written: no
    # scatter, and the loop vectorises); an odd last row or column gets zeros
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j, best
    cdef floating largest, d
    cdef const floating* top
    cdef const floating* bottom
    cdef floating* dtop
    cdef floating* dbottom
    if H % 2 or W % 2:
        memset(dx, 0, C * H * W * sizeof(floating))
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            dtop = dx + (c * H + 2 * i) * W
            dbottom = dtop + W
            for j in range(Wo):
                best = _max_block(top, bottom, j, &largest)
                d = dout[(c * Ho + i) * Wo + j]
                dtop[2 * j] = d if best == 0 else 0
                dtop[2 * j + 1] = d if best == 1 else 0
                dbottom[2 * j] = d if best == 2 else 0
                dbottom[2 * j + 1] = d if best == 3 else 0
