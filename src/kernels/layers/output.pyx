"""Output kernels: the Euclidean RBF layer (Eq. 7) and the three losses on its scores.

Design:
- RBF: ``penalty[n, i] = sum_j (x[n, j] - centers[i, j])^2``; backward ``dx = 2 sum_i dout_i (x - c_i)``
  (overwritten). The centres are fixed (the paper's Fig. 3 bitmaps): no centre gradient.
- Losses, per sample, with ``kind`` from ``LOSS_KINDS``: MSE (Eq. 8: the correct class's penalty), MAP (Eq. 9:
  y_D + log(e^-j + sum_i e^-y_i)), softmax cross-entropy on logits (modern variant).
  ``loss_backward`` writes ``scale`` times the per-sample gradient (scale = 1/N for a batch mean).
  The log-sum-exp terms are computed in double, shifted by their largest exponent.
- One sample at a time in the per-sample helpers of ``*_one.pxd`` (shared with the fused kernels of ``network/``);
  static ``prange`` over the batch; nothing is shared between samples.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from output_one cimport CROSS_ENTROPY, MAP, MSE, _loss_backward_one, _loss_one, _rbf_backward_one, _rbf_forward_one

# the kernels' loss codes (the `kind` arguments here and in the fused kernels), by criterion name
LOSS_KINDS = {"mse": MSE, "map": MAP, "cross_entropy": CROSS_ENTROPY}


def rbf_forward(floating[:, ::1] out,                      # OUT (N, K) penalties
                const floating[:, ::1] x,                  # IN  (N, F)
                const floating[:, ::1] centers,            # IN  (K, F)
                int n_threads):
    cdef Py_ssize_t N = x.shape[0], F = x.shape[1], K = centers.shape[0], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _rbf_forward_one(&out[n, 0], &x[n, 0], &centers[0, 0], F, K)


def rbf_backward(floating[:, ::1] dx,                      # OUT (N, F), overwritten
                 const floating[:, ::1] dout,              # IN  (N, K)
                 const floating[:, ::1] x,                 # IN  (N, F)
                 const floating[:, ::1] centers,           # IN  (K, F)
                 int n_threads):
    cdef Py_ssize_t N = x.shape[0], F = x.shape[1], K = centers.shape[0], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _rbf_backward_one(&dx[n, 0], &dout[n, 0], &x[n, 0], &centers[0, 0], F, K)


def loss_forward(floating[::1] losses,                     # OUT (N,) per-sample loss
                 const floating[:, ::1] scores,            # IN  (N, K) penalties or logits
                 const int64_t[::1] labels,                # IN  (N,) in 0..K-1
                 int kind, double j, int n_threads):
    cdef Py_ssize_t N = scores.shape[0], K = scores.shape[1], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        losses[n] = <floating>_loss_one(&scores[n, 0], labels[n], K, kind, j)


def loss_backward(floating[:, ::1] dscores,                # OUT (N, K), overwritten
                  const floating[:, ::1] scores,           # IN  (N, K)
                  const int64_t[::1] labels,               # IN  (N,)
                  int kind, double j, double scale, int n_threads):
    cdef Py_ssize_t N = scores.shape[0], K = scores.shape[1], n
    if N == 0:
        return
    for n in prange(N, schedule="static", nogil=True, num_threads=n_threads):
        _loss_backward_one(&dscores[n, 0], &scores[n, 0], labels[n], K, kind, j, scale)
