"""Pooling kernels: the paper's trainable subsampling (S2, S4) and 2x2 max pooling (modern variant).

Design:
- Subsampling: ``out[n, c, i, j] = coef[c] * (sum of the 2x2 block at (2i, 2j)) + bias[c]``
  (the *sum* of Sec. II-B, not the average). Max pooling: the largest of the 2x2 block; its gradient
  goes to the first maximal element in row-major order, recomputed from x and out (nothing is stored).
- One sample at a time in the per-sample helpers of ``*_one.pxd`` (shared with the fused kernels of ``network/``);
  static ``prange`` over the batch.
- Forward overwrites ``out``; backward overwrites ``dx`` and accumulates (+=) into ``dcoef``/``dbias``
  through per-thread rows of ``scratch`` (n_threads, 2*C) summed in row order (deterministic).
- ``squared=True`` is the SDLM second-derivative pass of subsampling: d2x = coef^2 d2out and
  h(coef) = sum d2out * (sum of the squared block inputs), the paper's diagonal form.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset

from thread_rows cimport add_thread_rows
from pool_one cimport (_maxpool_backward_one, _maxpool_forward_one, _subsample_backward_one,
                      _subsample_forward_one)


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
