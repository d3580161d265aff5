"""Convolution kernels: C1, C3 (through a connection table) and any other valid 2-D cross-correlation.

Design:
- ``out[n, k, y, x] = bias[k] + sum_{c: table[c, k]} sum_{i, j} weight[k, c, i, j] * x[n, c, y + i, x + j]``.
- One sample at a time in a ``noexcept nogil`` helper on raw pointers; the batch is split over threads
  with a static ``prange``. Unconnected (c, k) pairs are skipped in both directions.
- Forward overwrites ``out``. Backward overwrites ``dx`` and accumulates (+=) into ``dweight``/``dbias``.
- Weight gradients go to per-thread rows of ``scratch`` (n_threads, K*C*kh*kw + K), summed in row order
  after the parallel loop: the result is bit-identical run after run for a given thread count.
- ``squared=True`` turns backward into the second-derivative pass of SDLM (Eq. 25, 27 of the paper):
  the same loops with squared weights and squared inputs, so that d2x = full convolution of d2out with
  w^2 and h(w) = correlation of d2out with x^2 (Gauss-Newton, diagonal).
- Kernels trust their callers: ``lenet_fast.ops`` checks shapes, dtypes and contiguity first.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset

from _common cimport add_thread_rows


cdef void _conv_forward_one(floating* out, const floating* x, const floating* w, const floating* b,
                            const unsigned char* table, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t K, Py_ssize_t kh, Py_ssize_t kw) noexcept nogil:
    # x (C, H, W), w (K, C, kh, kw), b (K,), table (C, K) -> out (K, Ho, Wo)
    cdef Py_ssize_t Ho = H - kh + 1, Wo = W - kw + 1
    cdef Py_ssize_t k, c, i, j, y, u
    cdef floating wv
    cdef floating* o
    cdef const floating* row
    for k in range(K):
        o = out + k * Ho * Wo
        for u in range(Ho * Wo):
            o[u] = b[k]
        for c in range(C):
            if not table[c * K + k]:
                continue
            for i in range(kh):
                for j in range(kw):
                    wv = w[((k * C + c) * kh + i) * kw + j]
                    # one tap of the kernel over the whole output map: the inner loop vectorises along x
                    for y in range(Ho):
                        row = x + (c * H + y + i) * W + j
                        for u in range(Wo):
                            o[y * Wo + u] += wv * row[u]


cdef void _conv_backward_one(floating* dx, floating* dw, floating* db, const floating* dout,
                             const floating* x, const floating* w, const unsigned char* table,
                             Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                             Py_ssize_t K, Py_ssize_t kh, Py_ssize_t kw, bint squared) noexcept nogil:
    # dout (K, Ho, Wo), x (C, H, W) -> dx (C, H, W) overwritten; dw (K, C, kh, kw), db (K,) accumulated
    cdef Py_ssize_t Ho = H - kh + 1, Wo = W - kw + 1
    cdef Py_ssize_t k, c, i, j, y, u
    cdef floating wv, s
    cdef const floating* d
    cdef const floating* row
    cdef floating* drow
    memset(dx, 0, C * H * W * sizeof(floating))
    for k in range(K):
        d = dout + k * Ho * Wo
        s = 0
        for u in range(Ho * Wo):
            s = s + d[u]
        db[k] += s
        for c in range(C):
            if not table[c * K + k]:
                continue
            for i in range(kh):
                for j in range(kw):
                    wv = w[((k * C + c) * kh + i) * kw + j]
                    if squared:
                        wv = wv * wv
                    s = 0
                    for y in range(Ho):
                        row = x + (c * H + y + i) * W + j
                        drow = dx + (c * H + y + i) * W + j
                        for u in range(Wo):
                            s = s + d[y * Wo + u] * (row[u] * row[u] if squared else row[u])
                            drow[u] += wv * d[y * Wo + u]
                    dw[((k * C + c) * kh + i) * kw + j] += s


def conv2d_forward(floating[:, :, :, ::1] out,             # OUT (N, K, Ho, Wo)
                   const floating[:, :, :, ::1] x,         # IN  (N, C, H, W)
                   const floating[:, :, :, ::1] weight,    # IN  (K, C, kh, kw)
                   const floating[::1] bias,               # IN  (K,)
                   const unsigned char[:, ::1] table,      # IN  (C, K), nonzero = connected
                   int n_threads):
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
    cdef Py_ssize_t n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _conv_forward_one(&out[n, 0, 0, 0], &x[n, 0, 0, 0], &weight[0, 0, 0, 0], &bias[0],
                          &table[0, 0], C, H, W, K, kh, kw)


def conv2d_backward(floating[:, :, :, ::1] dx,             # OUT (N, C, H, W), overwritten
                    floating[:, :, :, ::1] dweight,        # OUT (K, C, kh, kw), accumulated
                    floating[::1] dbias,                   # OUT (K,), accumulated
                    floating[:, ::1] scratch,              # TMP (n_threads, K*C*kh*kw + K)
                    const floating[:, :, :, ::1] dout,     # IN  (N, K, Ho, Wo)
                    const floating[:, :, :, ::1] x,        # IN  (N, C, H, W)
                    const floating[:, :, :, ::1] weight,   # IN  (K, C, kh, kw)
                    const unsigned char[:, ::1] table,     # IN  (C, K)
                    int n_threads,
                    bint squared=False):                   # True: the SDLM second-derivative pass
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
    cdef Py_ssize_t n_w = K * C * kh * kw, n
    cdef int tid
    if N == 0:
        return
    with nogil:
        memset(&scratch[0, 0], 0, scratch.shape[0] * scratch.shape[1] * sizeof(floating))
        for n in prange(N, schedule="static", num_threads=n_threads):
            tid = threadid()
            _conv_backward_one(&dx[n, 0, 0, 0], &scratch[tid, 0], &scratch[tid, n_w], &dout[n, 0, 0, 0],
                               &x[n, 0, 0, 0], &weight[0, 0, 0, 0], &table[0, 0], C, H, W, K, kh, kw, squared)
        add_thread_rows(&dweight[0, 0, 0, 0], scratch, 0, n_w)
        add_thread_rows(&dbias[0], scratch, n_w, K)
