"""Fused whole-network kernels: many LeNet-5 training steps (forward, loss, backward, update) in one call
(``train_steps``), and the forward pass of a whole batch (``network_forward``, for inference).

Design:
- Each sample's activations and gradients are kept in a small contiguous work row. The layers are the
  per-sample helpers of ``src/kernels/layers/*_one.pxd`` (the same code as the per-layer kernels), except where the
  compiler's vectorisation of those general loops falls short: C1, C3, the dense layers and the modern
  variant's max-pool backward come from ``fused_simd.h`` (C with vector extensions; C3 is vectorised
  across its 16 output maps).
- A thread takes its samples in groups of up to LENET_GROUP (4) consecutive ones: each goes through the
  convolutions alone, the group goes through the dense layers together, so that C5's 48,000 weights
  (and their gradients) stream through the cache once per group, not once per sample.
- The parameters are the model's flat array (``NetworkLayout`` holds the offsets, from the architecture); each presented sample adds
  ``d(loss)/d(params) / B`` (B = its batch's size) into a gradient row, then the batch's update runs:
  ``w -= step * (g + decay * w)``, or with momentum ``v = momentum * v + (g + decay * w); w -= step * v``.
  C1's and C3's gradients are first kept in the layouts their code wants (16 partial sums per C1
  weight; C3's transposed) and folded into the gradient row once per batch.
- Blocks of samples, one per lane of a vector register (16 floats with AVX-512; ``network_lanes.pxi``,
  ``fused_lanes.pxd``): no lane is wasted on C3's unconnected maps or a row's edge, and nothing needs a
  horizontal sum. Inference (``network_forward``, ``network_forward.pxi``) takes whole blocks through
  all layers, handed to the threads as they come free; the last few samples go through ``_forward``.
  Training batches of at least a block a thread take as many blocks for every thread through all
  layers (``_lanes_step``): the convolutional layers' parameter gradients are summed per lane over the
  batch, then across the lanes; each sample's dense-layer inputs and output gradients are kept in a
  row, and after each chunk of blocks every thread sums its share of the dense layers' rows of weight
  gradients over the chunk's samples, a matrix product
  (``_dense_gradients_share``). The rest of the batch goes in groups as above.
- Batch size 1 runs serially, with no OpenMP region, and updates the dense layers within their backward
  pass (``_dense_layer_backward``), which saves streaming their gradient row. Larger batches spread
  their groups over the threads with a static ``prange``, each thread summing into its own gradient
  row; the rows are added in row order (``add_thread_rows``), so results are bit-identical for a given
  thread count.
- The update: each thread adds up the gradient rows for its share of the parameters and updates them
  (``_finish_share``): the rows of the dense layers whose gradients it summed (still in its cache),
  and its share of the convolutional layers' ``conv_segments``, [start, stop) ranges of the trainable
  parameters that leave out the C3 weights outside the connection table (they stay exactly as they
  are: zero).
- ``train_steps`` (``network_train.pxi``) works in a workspace that the caller keeps from one call to the
  next (``network_kernels`` keeps one per thread): its gradient rows and partial sums come back zero from
  every call, and memory that is already mapped saves a page fault per 4 KB on each call.
- Kernels trust their callers: ``lenet_fast.nn.network_kernels`` checks everything first, but that x
  is finite in inference, which ``network_forward`` checks as each thread reads its images (a
  separate pass over x from memory cost about a tenth of the forward pass at 2 threads).
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from finite cimport _all_finite
from thread_rows cimport add_thread_rows
from activation_one cimport _relu, _relu_backward, _squash, _squash_derivative
from fused_layers cimport (C1, C3, C3_SCRATCH, C3_WEIGHTS, C5, DENSE_D, DENSE_ROW, DENSE_SAMPLES, F6, G,
                           LANES_TRAIN, LANES_WORK, OUT, PART_C1, PARTIAL, S2, S4, LENET_GROUP, SEGMENT, WORK,
                           Layout, Step, _c1_backward_weights, _c1_forward, _c3_backward, _c3_forward, _c3_transpose_weights, _dense_forward,
                           _dense_layer_backward, _fold_partial, _maxpool_backward)
from fused_lanes cimport (LANES_PARTIAL, LANES_WINOGRAD, WINOGRAD_WEIGHTS, LP_C1B, LP_C1W, LP_C3B, LP_C3W, LP_S2B,
                          LP_S2C, LP_S4B, LP_S4C, _dense_weight_grad, _lanes, _lanes_c1, _lanes_c1_backward,
                          _lanes_c1_rows, _lanes_c3, _lanes_c3_backward, _lanes_dense, _lanes_dense_backward,
                          _lanes_fold, _lanes_load, _lanes_pool, _lanes_pool_backward, _lanes_pool_rows,
                          _lanes_rbf_backward, _lanes_store, _lanes_take, _lanes_c3_pool_winograd, _c3_pool_winograd,
                          _winograd_weights)
from output_one cimport _loss_backward_one, _loss_one, _rbf_backward_one, _rbf_forward_one
from pool_one cimport _maxpool_forward_one, _subsample_backward_one, _subsample_forward_one


cdef class NetworkLayout:
    """The flat parameter array as the fused kernels see it, made once per variant by
    ``lenet_fast.nn.network_kernels`` from the architecture: the offset of each tensor (by name, as
    ``offsets`` gives them) and, from ``trainable`` (a bool per parameter), the pieces of the update."""
    cdef Layout L
    cdef readonly object conv_segments    # (S, 2) int64 [start, stop): the trainable pieces before C5

    def __init__(self, dict offsets, trainable):
        get = lambda name: offsets.get(name, -1)
        self.L.c1w, self.L.c1b = get("c1.weight"), get("c1.bias")
        self.L.s2c, self.L.s2b = get("s2.coef"), get("s2.bias")
        self.L.c3w, self.L.c3b = get("c3.weight"), get("c3.bias")
        self.L.s4c, self.L.s4b = get("s4.coef"), get("s4.bias")
        self.L.c5w, self.L.c5b = get("c5.weight"), get("c5.bias")
        self.L.f6w, self.L.f6b = get("f6.weight"), get("f6.bias")
        self.L.ow, self.L.ob = get("output.weight"), get("output.bias")
        self.L.size = len(trainable)
        # the dense layers (updated by their rows, _finish_share) are the end of the layout, all trainable
        dense_end = self.L.ob + 10 if self.L.ow >= 0 else self.L.f6b + 84
        if dense_end != self.L.size or not np.asarray(trainable, dtype=bool)[self.L.c5w:].all():
            raise ValueError("the fused kernels' layout: the trainable dense layers C5, F6 (and the output "
                             "layer) must end the parameters")
        self.conv_segments = _segments(trainable, self.L.c5w)


def _segments(trainable, Py_ssize_t end):
    # [start, stop) of the trainable parameters before `end`, cut into pieces of at most SEGMENT for
    # the parallel update (the C3 weights outside the table are not trainable: they stay zero)
    mask = np.asarray(trainable, dtype=bool).copy()
    mask[end:] = False
    edges = np.flatnonzero(np.diff(mask, prepend=False, append=False))
    return np.array([(lo, min(lo + SEGMENT, stop)) for start, stop in zip(edges[::2], edges[1::2])
                     for lo in range(start, stop, SEGMENT)], dtype=np.int64).reshape(-1, 2)


def activation_offsets():
    """Where each layer's output starts in a sample's work row, and the row's size ("size"): the
    shapes these kernels are compiled for, checked at import against the architecture."""
    return {"c1": C1, "s2": S2, "c3": C3, "s4": S4, "c5": C5, "f6": F6, "output": OUT, "size": G}


# _forward, _backward and _activate are plain functions (not inline), each inlining its layer helpers:
# all of them in one function exceed the compiler's inlining limits, and the innermost helpers (the
# squash, the lane sums) would stay calls inside the hot loops, which then do not vectorise

cdef void _activate(floating* y, Py_ssize_t n, bint paper) noexcept nogil:
    cdef Py_ssize_t i
    if paper:
        for i in range(n):
            y[i] = _squash(y[i])
    else:
        for i in range(n):
            y[i] = _relu(y[i])


cdef void _activate_backward(floating* d, const floating* y, Py_ssize_t n, bint paper) noexcept nogil:
    cdef Py_ssize_t i
    if paper:
        for i in range(n):
            d[i] = d[i] * _squash_derivative(y[i])
    else:
        for i in range(n):
            d[i] = _relu_backward(d[i], y[i])


cdef inline void _pool_forward(floating* out, const floating* x, const floating* w, Py_ssize_t coef,
                               Py_ssize_t bias, Py_ssize_t C, Py_ssize_t H, bint paper) noexcept nogil:
    if paper:
        _subsample_forward_one(out, x, w + coef, w + bias, C, H, H)
        _activate(out, C * (H // 2) * (H // 2), paper)
    else:
        _maxpool_forward_one(out, x, C, H, H)


cdef inline void _pool_backward(floating* dx, floating* dout, const floating* x, const floating* out,
                                floating* g, const floating* w, Py_ssize_t coef, Py_ssize_t bias,
                                Py_ssize_t C, Py_ssize_t H, bint paper) noexcept nogil:
    # dout is overwritten (the gradient through the activation on the way)
    if paper:
        _activate_backward(dout, out, C * (H // 2) * (H // 2), paper)
        _subsample_backward_one(dx, g + coef, g + bias, dout, x, w + coef, C, H, H, False)
    else:
        _maxpool_backward(dx, dout, x, C, H)



cdef inline const floating* _sample(const floating* x, const int64_t* idx, int s) noexcept nogil:
    # sample idx[s] of x (N, 1, 32, 32), or sample s if idx is NULL
    return x + (idx[s] if idx != NULL else s) * 1024


cdef void _forward(floating* a, int n, const floating* w, const floating* x, const int64_t* idx,
                   const floating* c3wt, const floating* c3u, const floating* centers, const Layout* L,
                   bint paper) noexcept nogil:
    # the activations of the n <= LENET_GROUP samples _sample(x, idx, s) into the work rows a + s * WORK;
    # c3wt: C3's weights transposed; c3u: their Winograd transforms for the modern variant's inference
    # (C3 to S4 by _c3_pool_winograd, which leaves C1's to C3's activations as scratch), else NULL
    cdef int s
    cdef floating* r
    for s in range(n):
        r = a + s * WORK
        _c1_forward(r + C1, _sample(x, idx, s), w + L.c1w, w + L.c1b)
        _activate(r + C1, S2 - C1, paper)
        _pool_forward(r + S2, r + C1, w, L.s2c, L.s2b, 6, 28, paper)
        if c3u != NULL:
            _c3_pool_winograd(r + S4, r + S2, c3u, w + L.c3b, r + C1)
            continue
        _c3_forward(r + C3, r + S2, c3wt, w + L.c3b)
        _activate(r + C3, S4 - C3, paper)
        _pool_forward(r + S4, r + C3, w, L.s4c, L.s4b, 16, 10, paper)
    _dense_forward(a + C5, a + S4, w + L.c5w, w + L.c5b, 400, 120, n)     # C5 covers all of S4
    for s in range(n):
        _activate(a + s * WORK + C5, F6 - C5, paper)
    _dense_forward(a + F6, a + C5, w + L.f6w, w + L.f6b, 120, 84, n)
    for s in range(n):
        r = a + s * WORK
        _activate(r + F6, OUT - F6, paper)
        if paper:
            _rbf_forward_one(r + OUT, r + F6, centers, 84, 10)
    if not paper:
        _dense_forward(a + OUT, a + F6, w + L.ow, w + L.ob, 84, 10, n)


cdef void _backward(floating* g, floating* part, floating* a, int n, const floating* w, const floating* x,
                    const int64_t* idx, const unsigned char* table, const floating* centers, const Layout* L,
                    bint paper, const Step* update) noexcept nogil:
    # from the output gradients at a + s * WORK + G + OUT back to C1, adding the parameter gradients
    # into g, but those of C3's weights and of C1 into the partial gradients part; with update (one
    # sample), the dense layers' parameters are updated at once instead
    cdef floating* d = a + G
    cdef floating* r
    cdef int s
    if paper:
        for s in range(n):
            r = a + s * WORK
            _rbf_backward_one(r + G + F6, r + G + OUT, r + F6, centers, 84, 10)
    else:
        _dense_layer_backward(d + F6, g, w, L.ow, L.ob, d + OUT, a + F6, 84, 10, n, update)
    for s in range(n):
        r = a + s * WORK
        _activate_backward(r + G + F6, r + F6, OUT - F6, paper)
    _dense_layer_backward(d + C5, g, w, L.f6w, L.f6b, d + F6, a + C5, 120, 84, n, update)
    for s in range(n):
        r = a + s * WORK
        _activate_backward(r + G + C5, r + C5, F6 - C5, paper)
    _dense_layer_backward(d + S4, g, w, L.c5w, L.c5b, d + C5, a + S4, 400, 120, n, update)
    for s in range(n):
        r = a + s * WORK
        d = r + G
        _pool_backward(d + C3, d + S4, r + C3, r + S4, g, w, L.s4c, L.s4b, 16, 10, paper)
        _activate_backward(d + C3, r + C3, S4 - C3, paper)
        _c3_backward(d + S2, part, d + C3, r + S2, w + L.c3w, table, r + C3_SCRATCH)
        _pool_backward(d + C1, d + S2, r + C1, r + S2, g, w, L.s2c, L.s2b, 6, 28, paper)
        _activate_backward(d + C1, r + C1, S2 - C1, paper)
        _c1_backward_weights(part + PART_C1, d + C1, _sample(x, idx, s))


cdef void _loss_step(floating* a, int n, const int64_t* idx, const int64_t* labels, bint argmin, int kind,
                     double map_j, double scale, double* losses, int64_t* predictions) noexcept nogil:
    # from the scores of the n samples x[idx[s]] in the work rows a: each one's loss and prediction (the
    # argmin of the scores, or their argmax), and scale * d(loss)/d(scores) at a + s * WORK + G + OUT
    cdef const floating* out
    cdef Py_ssize_t i, best
    cdef int s
    for s in range(n):
        out = a + s * WORK + OUT
        losses[s] = _loss_one(out, labels[idx[s]], 10, kind, map_j)
        best = 0
        for i in range(1, 10):
            if (out[i] < out[best]) if argmin else (out[i] > out[best]):
                best = i
        predictions[s] = best
        _loss_backward_one(a + s * WORK + G + OUT, out, labels[idx[s]], 10, kind, map_j, scale)


cdef void _group_step(floating* g, floating* part, floating* a, int n, const floating* w, const floating* x,
                      const int64_t* idx, const int64_t* labels, const unsigned char* table,
                      const floating* c3wt, const floating* centers, const Layout* L, bint paper, bint argmin,
                      int kind, double map_j, double scale, double* losses, int64_t* predictions,
                      const Step* update) noexcept nogil:
    # forward, loss and backward of the n <= LENET_GROUP samples x[idx[s]] with the work rows a: adds
    # scale * d(loss)/d(params) into g (C1's and C3's weights: into the partial gradients part) and
    # writes each sample's loss and prediction; update: see _backward
    _forward(a, n, w, x, idx, c3wt, NULL, centers, L, paper)
    _loss_step(a, n, idx, labels, argmin, kind, map_j, scale, losses, predictions)
    _backward(g, part, a, n, w, x, idx, table, centers, L, paper, update)


cdef inline floating* _aligned(floating* p) noexcept nogil:
    # p moved up to the next 64-byte boundary (at most 64 values on)
    return <floating*>((<size_t>p + 63) // 64 * 64)


include "network_lanes.pxi"
include "network_update.pxi"


include "network_train.pxi"        # train_steps and its workspace
include "network_forward.pxi"      # network_forward, for inference
