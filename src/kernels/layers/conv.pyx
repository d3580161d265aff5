"""Convolution kernels: C1, C3 (through a connection table) and any other valid 2-D cross-correlation.

Design:
- ``out[n, k, y, x] = bias[k] + sum_{c: table[c, k]} sum_{i, j} weight[k, c, i, j] * x[n, c, y + i, x + j]``.
- One sample at a time in the per-sample helpers of ``*_one.pxd`` (shared with the fused kernels of ``network/``), on
  raw pointers; the batch is split over threads with a static ``prange``. Unconnected (c, k) pairs are
  skipped in both directions.
- Forward overwrites ``out``. Backward overwrites ``dx`` and accumulates (+=) into ``dweight``/``dbias``.
- Each thread also has a row of ``wide`` scratch (allocated here) for the helpers' wide output maps.
- Weight gradients go to per-thread rows of ``scratch`` (n_threads, K*C*kh*kw + K), summed in row order
  after the parallel loop: the result is bit-identical run after run for a given thread count.
- ``squared=True`` turns backward into the second-derivative pass of SDLM (Eq. 25, 27 of the paper):
  the same loops with squared weights and squared inputs, so that d2x = full convolution of d2out with
  w^2 and h(w) = correlation of d2out with x^2 (Gauss-Newton, diagonal).
- Kernels trust their callers: ``lenet_fast.ops`` checks shapes, dtypes and contiguity first.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset

from thread_rows cimport add_thread_rows
from conv_one cimport _conv_backward_one, _conv_forward_one, _wide_size


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
    cdef floating[:, ::1] wide = np.empty((n_threads, _wide_size(H, W, kh, kw)), dtype=np.float32 if floating is float else np.float64)
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _conv_forward_one(&out[n, 0, 0, 0], &wide[threadid(), 0], &x[n, 0, 0, 0], &weight[0, 0, 0, 0],
                          &bias[0], &table[0, 0], C, H, W, K, kh, kw)


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
    cdef floating[:, ::1] wide = np.empty((n_threads, _wide_size(H, W, kh, kw)), dtype=np.float32 if floating is float else np.float64)
    with nogil:
        memset(&scratch[0, 0], 0, scratch.shape[0] * scratch.shape[1] * sizeof(floating))
        for n in prange(N, schedule="static", num_threads=n_threads):
            tid = threadid()
            _conv_backward_one(&dx[n, 0, 0, 0], &scratch[tid, 0], &scratch[tid, n_w], &wide[tid, 0],
                               &dout[n, 0, 0, 0], &x[n, 0, 0, 0], &weight[0, 0, 0, 0], &table[0, 0],
                               C, H, W, K, kh, kw, squared)
        add_thread_rows(&dweight[0, 0, 0, 0], scratch, 0, n_w)
        add_thread_rows(&dbias[0], scratch, n_w, K)
