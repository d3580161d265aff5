"""Fully connected kernels: C5 (on the flattened 16x5x5 S4 output), F6, and the modern output layer.

Design:
- ``out[n, k] = bias[k] + sum_f weight[k, f] * x[n, f]``.
- One sample at a time in the per-sample helpers of ``*_one.pxd`` (shared with the fused kernels of ``network/``);
  static ``prange`` over the batch.
- Forward overwrites ``out``; backward overwrites ``dx`` and accumulates (+=) into ``dweight``/``dbias``
  through per-thread rows of ``scratch`` (n_threads, K*F + K) summed in row order (deterministic).
- ``squared=True`` is the SDLM second-derivative pass: the same loops with squared weights and inputs.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset

from thread_rows cimport add_thread_rows
from dense_one cimport _dense_backward_one, _dense_forward_one


def dense_forward(floating[:, ::1] out,                    # OUT (N, K)
                  const floating[:, ::1] x,                # IN  (N, F)
                  const floating[:, ::1] weight,           # IN  (K, F)
                  const floating[::1] bias,                # IN  (K,)
                  int n_threads):
    cdef Py_ssize_t N = x.shape[0], F = x.shape[1], K = weight.shape[0], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _dense_forward_one(&out[n, 0], &x[n, 0], &weight[0, 0], &bias[0], F, K)


def dense_backward(floating[:, ::1] dx,                    # OUT (N, F), overwritten
                   floating[:, ::1] dweight,               # OUT (K, F), accumulated
                   floating[::1] dbias,                    # OUT (K,), accumulated
                   floating[:, ::1] scratch,               # TMP (n_threads, K*F + K)
                   const floating[:, ::1] dout,            # IN  (N, K)
                   const floating[:, ::1] x,               # IN  (N, F)
                   const floating[:, ::1] weight,          # IN  (K, F)
                   int n_threads,
                   bint squared=False):                    # True: the SDLM second-derivative pass
    cdef Py_ssize_t N = x.shape[0], F = x.shape[1], K = weight.shape[0], n_w = K * F, n
    cdef int tid
    if N == 0:
        return
    with nogil:
        memset(&scratch[0, 0], 0, scratch.shape[0] * scratch.shape[1] * sizeof(floating))
        for n in prange(N, schedule="static", num_threads=n_threads):
            tid = threadid()
            _dense_backward_one(&dx[n, 0], &scratch[tid, 0], &scratch[tid, n_w], &dout[n, 0],
                                &x[n, 0], &weight[0, 0], F, K, squared)
        add_thread_rows(&dweight[0, 0], scratch, 0, n_w)
        add_thread_rows(&dbias[0], scratch, n_w, K)
