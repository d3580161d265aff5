"""Pooling kernels: the paper's trainable subsampling (S2, S4) and 2x2 max pooling (modern variant).

Design:
- Subsampling: ``out[n, c, i, j] = coef[c] * (sum of the 2x2 block at (2i, 2j)) + bias[c]``
  (the *sum* of Sec. II-B, not the average). Max pooling: the largest of the 2x2 block; its gradient
  goes to the first maximal element in row-major order, recomputed from x and out (nothing is stored).
- One sample at a time in ``noexcept nogil`` helpers; static ``prange`` over the batch.
- Forward overwrites ``out``; backward overwrites ``dx`` and accumulates (+=) into ``dcoef``/``dbias``
  through per-thread rows of ``scratch`` (n_threads, 2*C) summed in row order (deterministic).
- ``squared=True`` is the SDLM second-derivative pass of subsampling: d2x = coef^2 d2out and
  h(coef) = sum d2out * (sum of the squared block inputs), the paper's diagonal form.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset

from _common cimport add_thread_rows


cdef void _subsample_forward_one(floating* out, const floating* x, const floating* coef,
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


cdef void _subsample_backward_one(floating* dx, floating* dcoef, floating* dbias, const floating* dout,
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


cdef inline Py_ssize_t _argmax_block(const floating* top, const floating* bottom, Py_ssize_t j) noexcept nogil:
    # index 0..3 of the first maximal element of a 2x2 block, row-major
    cdef Py_ssize_t best = 0
    cdef floating m = top[2 * j]
    if top[2 * j + 1] > m:
        m = top[2 * j + 1]
        best = 1
    if bottom[2 * j] > m:
        m = bottom[2 * j]
        best = 2
    if bottom[2 * j + 1] > m:
        best = 3
    return best


cdef void _maxpool_forward_one(floating* out, const floating* x, Py_ssize_t C, Py_ssize_t H,
                               Py_ssize_t W) noexcept nogil:
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j, best
    cdef const floating* top
    cdef const floating* bottom
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            for j in range(Wo):
                best = _argmax_block(top, bottom, j)
                out[(c * Ho + i) * Wo + j] = (top if best < 2 else bottom)[2 * j + (best & 1)]


cdef void _maxpool_backward_one(floating* dx, const floating* dout, const floating* x, Py_ssize_t C,
                                Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j, best
    cdef const floating* top
    cdef const floating* bottom
    memset(dx, 0, C * H * W * sizeof(floating))
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            for j in range(Wo):
                best = _argmax_block(top, bottom, j)
                dx[(c * H + 2 * i + (best >> 1)) * W + 2 * j + (best & 1)] = dout[(c * Ho + i) * Wo + j]


def subsample_forward(floating[:, :, :, ::1] out,          # OUT (N, C, H/2, W/2)
                      const floating[:, :, :, ::1] x,      # IN  (N, C, H, W), H and W even
                      const floating[::1] coef,            # IN  (C,)
                      const floating[::1] bias,            # IN  (C,)
                      int n_threads):
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _subsample_forward_one(&out[n, 0, 0, 0], &x[n, 0, 0, 0], &coef[0], &bias[0], C, H, W)


def subsample_backward(floating[:, :, :, ::1] dx,          # OUT (N, C, H, W), overwritten
                       floating[::1] dcoef,                # OUT (C,), accumulated
                       floating[::1] dbias,                # OUT (C,), accumulated
                       floating[:, ::1] scratch,           # TMP (n_threads, 2*C)
                       const floating[:, :, :, ::1] dout,  # IN  (N, C, H/2, W/2)
                       const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                       const floating[::1] coef,           # IN  (C,)
                       int n_threads,
                       bint squared=False):                # True: the SDLM second-derivative pass
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], n
    cdef int tid
    if N == 0:
        return
    with nogil:
        memset(&scratch[0, 0], 0, scratch.shape[0] * scratch.shape[1] * sizeof(floating))
        for n in prange(N, schedule="static", num_threads=n_threads):
            tid = threadid()
            _subsample_backward_one(&dx[n, 0, 0, 0], &scratch[tid, 0], &scratch[tid, C], &dout[n, 0, 0, 0],
                                    &x[n, 0, 0, 0], &coef[0], C, H, W, squared)
        add_thread_rows(&dcoef[0], scratch, 0, C)
        add_thread_rows(&dbias[0], scratch, C, C)


def maxpool_forward(floating[:, :, :, ::1] out,            # OUT (N, C, H/2, W/2)
                    const floating[:, :, :, ::1] x,        # IN  (N, C, H, W), H and W even
                    int n_threads):
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _maxpool_forward_one(&out[n, 0, 0, 0], &x[n, 0, 0, 0], C, H, W)


def maxpool_backward(floating[:, :, :, ::1] dx,            # OUT (N, C, H, W), overwritten
                     const floating[:, :, :, ::1] dout,    # IN  (N, C, H/2, W/2)
                     const floating[:, :, :, ::1] x,       # IN  (N, C, H, W)
                     int n_threads):
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _maxpool_backward_one(&dx[n, 0, 0, 0], &dout[n, 0, 0, 0], &x[n, 0, 0, 0], C, H, W)
