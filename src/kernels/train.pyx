"""Fused whole-network kernels: many LeNet-5 training steps (forward, loss, backward, update) in one call
(``train_steps``), and the forward pass of a whole batch (``network_forward``, for inference).

Design:
- Each sample's activations and gradients are kept in a small contiguous work row. The layers are the
  per-sample helpers of ``_layers.pxd`` (the same code as the per-layer kernels), except where the
  compiler's vectorisation of those general loops falls short: C1, C3 and the dense layers come from
  ``fused_simd.h`` (C with vector extensions; C3 is vectorised across its 16 output maps).
- A thread takes its samples in groups of up to LENET_GROUP (4) consecutive ones: each goes through the
  convolutions alone, the group goes through the dense layers together, so that C5's 48,000 weights
  (and their gradients) stream through the cache once per group, not once per sample.
- The parameters are the model's flat array (``layout`` gives the offsets); each presented sample adds
  ``d(loss)/d(params) / B`` (B = its batch's size) into a gradient row, then the batch's update runs:
  ``w -= step * (g + decay * w)``, or with momentum ``v = momentum * v + (g + decay * w); w -= step * v``.
  C1's and C3's gradients are first kept in the layouts their code wants (16 partial sums per C1
  weight; C3's transposed) and folded into the gradient row once per batch.
- Batch size 1 runs serially, with no OpenMP region, and updates the dense layers within their backward
  pass (``_dense_layer_backward``), which saves streaming their gradient row. Larger batches spread
  their groups over the threads with a static ``prange``, each thread summing into its own gradient
  row; the rows are added in row order (``add_thread_rows``), so results are bit-identical for a given
  thread count.
- The update runs over ``segments``: [start, stop) ranges of the trainable parameters, which leave out
  the C3 weights outside the connection table (they stay exactly as they are: zero).
- Kernels trust their callers: ``lenet_fast.ops.train_steps`` checks everything first.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from _common cimport add_thread_rows
cdef extern from "fused_simd.h" nogil:
    # C1 vectorised along rows for its 6 maps at once; C3 across its 16 output maps, on weights
    # transposed to (6, 5, 5, 16); the dense layers' backward pass (see the header)
    void lenet_c1_forward_f(float* out, const float* x, const float* w, const float* b)
    void lenet_c1_forward_d(double* out, const double* x, const double* w, const double* b)
    void lenet_c1_backward_weights_f(float* lanes, const float* dout, const float* x)
    void lenet_c1_backward_weights_d(double* lanes, const double* dout, const double* x)
    void lenet_c1_fold_f(float* dw, float* db, float* lanes)
    void lenet_c1_fold_d(double* dw, double* db, double* lanes)
    void lenet_c3_transpose_weights_f(float* wt, const float* w, const unsigned char* table)
    void lenet_c3_transpose_weights_d(double* wt, const double* w, const unsigned char* table)
    void lenet_c3_forward_f(float* out, const float* x, const float* wt, const float* b)
    void lenet_c3_forward_d(double* out, const double* x, const double* wt, const double* b)
    void lenet_c3_backward_f(float* dx, float* part, const float* dout, const float* x, const float* w,
                             const unsigned char* table, float* scratch)
    void lenet_c3_backward_d(double* dx, double* part, const double* dout, const double* x, const double* w,
                             const unsigned char* table, double* scratch)
    void lenet_c3_fold_f(float* dw, float* db, float* part, const unsigned char* table)
    void lenet_c3_fold_d(double* dw, double* db, double* part, const unsigned char* table)
    void lenet_dense_forward_f(float* out, const float* x, const float* w, const float* b, int F, int K,
                               Py_ssize_t stride, int n)
    void lenet_dense_forward_d(double* out, const double* x, const double* w, const double* b, int F, int K,
                               Py_ssize_t stride, int n)
    void lenet_dense_backward_f(float* dx, float* dw, float* db, const float* dout, const float* x,
                                const float* w, int F, int K, Py_ssize_t stride, int n)
    void lenet_dense_backward_d(double* dx, double* dw, double* db, const double* dout, const double* x,
                                const double* w, int F, int K, Py_ssize_t stride, int n)
    void lenet_dense_backward_step_f(float* dx, float* w, float* b, float* vw, float* vb, const float* step_w,
                                     const float* step_b, const float* dout, const float* x, int F, int K,
                                     float momentum, float decay)
    void lenet_dense_backward_step_d(double* dx, double* w, double* b, double* vw, double* vb,
                                     const double* step_w, const double* step_b, const double* dout,
                                     const double* x, int F, int K, double momentum, double decay)
    enum: LENET_GROUP   # samples through the dense layers together

from _layers cimport (_loss_backward_one, _loss_one, _maxpool_backward_one,
                      _maxpool_forward_one, _rbf_backward_one, _rbf_forward_one, _relu, _relu_backward,
                      _squash, _squash_derivative, _subsample_backward_one, _subsample_forward_one)

# a work row: one sample's activations (C1 6x28x28, S2 6x14x14, C3 16x10x10, S4 16x5x5, C5 120, F6 84,
# output 10), then their gradients in the same order (at G + the activation's offset), then the
# scratch of C3's backward pass
cdef enum:
    C1 = 0
    S2 = C1 + 4704
    C3 = S2 + 1176
    S4 = C3 + 1600
    C5 = S4 + 400
    F6 = C5 + 120
    OUT = F6 + 84
    G = OUT + 10
    C3_SCRATCH = 2 * G
    WORK = C3_SCRATCH + 1600 + 16 * 10 * 20     # lenet_c3_backward's scratch
    C3_WEIGHTS = 2400       # C3's weights (16, 6, 5, 5), also transposed (6, 5, 5, 16)
    # a thread's partial gradients, kept in the convolutions' own layouts over a batch (_fold_partial
    # adds them to its gradient row): C3's weights transposed and its biases, then C1's 156 rows of 16 lanes
    PART_C1 = C3_WEIGHTS + 16
    PARTIAL = PART_C1 + 156 * 16
    SEGMENT = 1024          # the longest piece of the parameter update (a thread's unit of work)


cdef struct Layout:
    # offsets of the parameter tensors in the flat array (-1: not in this variant) and its size
    Py_ssize_t c1w, c1b, s2c, s2b, c3w, c3b, s4c, s4b, c5w, c5b, f6w, f6b, ow, ob, size


cdef Layout _layout(bint paper) noexcept:
    # the order of LeNet5's parameters (model._layer_specs)
    cdef Layout L
    cdef Py_ssize_t o = 0
    L.s2c = L.s2b = L.s4c = L.s4b = L.ow = L.ob = -1
    L.c1w = o; o += 150
    L.c1b = o; o += 6
    if paper:
        L.s2c = o; o += 6
        L.s2b = o; o += 6
    L.c3w = o; o += 2400
    L.c3b = o; o += 16
    if paper:
        L.s4c = o; o += 16
        L.s4b = o; o += 16
    L.c5w = o; o += 48000
    L.c5b = o; o += 120
    L.f6w = o; o += 10080
    L.f6b = o; o += 84
    if not paper:
        L.ow = o; o += 840
        L.ob = o; o += 10
    L.size = o
    return L


def layout(bint paper):
    """Offsets of the parameter tensors in the flat array ("c1w": c1.weight, "c1b": c1.bias, "s2c": s2.coef,
    ..., "ow": output.weight; those of the variant) and "size": the array's length."""
    return {name: offset for name, offset in _layout(paper).items() if offset >= 0}


cdef inline void _c3_transpose_weights(floating* wt, const floating* w, const unsigned char* table) noexcept nogil:
    if floating is float:
        lenet_c3_transpose_weights_f(wt, w, table)
    else:
        lenet_c3_transpose_weights_d(wt, w, table)


cdef inline void _fold_partial(floating* g, floating* part, const unsigned char* table, const Layout* L) noexcept nogil:
    # the partial gradients into the gradient row g, and zeroed
    if floating is float:
        lenet_c3_fold_f(g + L.c3w, g + L.c3b, part, table)
        lenet_c1_fold_f(g + L.c1w, g + L.c1b, part + PART_C1)
    else:
        lenet_c3_fold_d(g + L.c3w, g + L.c3b, part, table)
        lenet_c1_fold_d(g + L.c1w, g + L.c1b, part + PART_C1)


cdef inline void _dense_forward(floating* out, const floating* x, const floating* w, const floating* b, int F,
                                int K, int n) noexcept nogil:
    # n samples' layers, each in its work row (WORK apart)
    if floating is float:
        lenet_dense_forward_f(out, x, w, b, F, K, WORK, n)
    else:
        lenet_dense_forward_d(out, x, w, b, F, K, WORK, n)


cdef inline void _dense_backward(floating* dx, floating* dw, floating* db, const floating* dout,
                                 const floating* x, const floating* w, int F, int K, int n) noexcept nogil:
    if floating is float:
        lenet_dense_backward_f(dx, dw, db, dout, x, w, F, K, WORK, n)
    else:
        lenet_dense_backward_d(dx, dw, db, dout, x, w, F, K, WORK, n)


cdef struct Step:
    # batch size 1: the update folded into the dense layers' backward pass (see _dense_backward_step)
    void* params        # floating*: the flat parameters
    void* velocity      # floating*, or NULL without momentum
    const void* step    # const floating*: the step sizes
    double momentum, decay


cdef inline void _dense_layer_backward(floating* dx, floating* g, const floating* w, Py_ssize_t wo, Py_ssize_t bo,
                                       const floating* dout, const floating* x, int F, int K, int n,
                                       const Step* update) noexcept nogil:
    # the backward pass of the dense layer with weights at wo and biases at bo: into the gradient row g,
    # or (update not NULL: one sample) straight into the parameters
    cdef floating* p
    cdef floating* v
    cdef const floating* st
    if update == NULL:
        _dense_backward(dx, g + wo, g + bo, dout, x, w + wo, F, K, n)
        return
    p = <floating*>update.params
    v = <floating*>update.velocity
    st = <const floating*>update.step
    if floating is float:
        lenet_dense_backward_step_f(dx, p + wo, p + bo, v + wo if v != NULL else NULL, v + bo if v != NULL else NULL,
                                    st + wo, st + bo, dout, x, F, K, <float>update.momentum, <float>update.decay)
    else:
        lenet_dense_backward_step_d(dx, p + wo, p + bo, v + wo if v != NULL else NULL, v + bo if v != NULL else NULL,
                                    st + wo, st + bo, dout, x, F, K, update.momentum, update.decay)


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
        _maxpool_backward_one(dx, dout, x, C, H, H)



cdef inline const floating* _sample(const floating* x, const int64_t* idx, int s) noexcept nogil:
    # sample idx[s] of x (N, 1, 32, 32), or sample s if idx is NULL
    return x + (idx[s] if idx != NULL else s) * 1024


cdef void _forward(floating* a, int n, const floating* w, const floating* x, const int64_t* idx,
                   const floating* c3wt, const floating* centers, const Layout* L, bint paper) noexcept nogil:
    # the activations of the n <= LENET_GROUP samples _sample(x, idx, s) into the work rows a + s * WORK;
    # c3wt: C3's weights transposed
    cdef int s
    cdef floating* r
    for s in range(n):
        r = a + s * WORK
        if floating is float:
            lenet_c1_forward_f(r + C1, _sample(x, idx, s), w + L.c1w, w + L.c1b)
        else:
            lenet_c1_forward_d(r + C1, _sample(x, idx, s), w + L.c1w, w + L.c1b)
        _activate(r + C1, S2 - C1, paper)
        _pool_forward(r + S2, r + C1, w, L.s2c, L.s2b, 6, 28, paper)
        if floating is float:
            lenet_c3_forward_f(r + C3, r + S2, c3wt, w + L.c3b)
        else:
            lenet_c3_forward_d(r + C3, r + S2, c3wt, w + L.c3b)
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
        if floating is float:
            lenet_c3_backward_f(d + S2, part, d + C3, r + S2, w + L.c3w, table, r + C3_SCRATCH)
        else:
            lenet_c3_backward_d(d + S2, part, d + C3, r + S2, w + L.c3w, table, r + C3_SCRATCH)
        _pool_backward(d + C1, d + S2, r + C1, r + S2, g, w, L.s2c, L.s2b, 6, 28, paper)
        _activate_backward(d + C1, r + C1, S2 - C1, paper)
        if floating is float:
            lenet_c1_backward_weights_f(part + PART_C1, d + C1, _sample(x, idx, s))
        else:
            lenet_c1_backward_weights_d(part + PART_C1, d + C1, _sample(x, idx, s))


cdef void _group_step(floating* g, floating* part, floating* a, int n, const floating* w, const floating* x,
                      const int64_t* idx, const int64_t* labels, const unsigned char* table,
                      const floating* c3wt, const floating* centers, const Layout* L, bint paper, int kind,
                      double map_j, double scale, double* losses, int64_t* predictions,
                      const Step* update) noexcept nogil:
    # forward, loss and backward of the n <= LENET_GROUP samples x[idx[s]] with the work rows a: adds
    # scale * d(loss)/d(params) into g (C1's and C3's weights: into the partial gradients part) and
    # writes each sample's loss and prediction (the argmin of the penalties, paper, or the argmax of
    # the logits); update: see _backward
    cdef const floating* out
    cdef Py_ssize_t i, best
    cdef int s
    _forward(a, n, w, x, idx, c3wt, centers, L, paper)
    for s in range(n):
        out = a + s * WORK + OUT
        losses[s] = _loss_one(out, labels[idx[s]], 10, kind, map_j)
        best = 0
        for i in range(1, 10):
            if (out[i] < out[best]) if paper else (out[i] > out[best]):
                best = i
        predictions[s] = best
        _loss_backward_one(a + s * WORK + G + OUT, out, labels[idx[s]], 10, kind, map_j, scale)
    _backward(g, part, a, n, w, x, idx, table, centers, L, paper, update)


cdef inline void _update(floating* w, floating* v, floating* g, const floating* step, Py_ssize_t lo,
                         Py_ssize_t hi, floating momentum, floating decay) noexcept nogil:
    # the update of parameters lo..hi-1 from their gradient g, which is then zeroed for the next batch
    cdef Py_ssize_t p
    if v == NULL:
        for p in range(lo, hi):
            w[p] -= step[p] * (g[p] + decay * w[p])
            g[p] = 0
    else:
        for p in range(lo, hi):
            v[p] = momentum * v[p] + (g[p] + decay * w[p])
            w[p] -= step[p] * v[p]
            g[p] = 0


cdef object _segments(const Layout* L, const unsigned char[:, ::1] table, Py_ssize_t end):
    # [start, stop) of the trainable parameters before `end`: all but the C3 weights of pairs outside
    # the table, cut into pieces of at most SEGMENT for the parallel update
    trainable = np.zeros(L.size, dtype=bool)
    trainable[:end] = True
    trainable[L.c3w:L.c3w + 2400] = np.repeat(np.asarray(table).T.reshape(-1) != 0, 25)
    edges = np.flatnonzero(np.diff(trainable, prepend=False, append=False))
    return np.array([(lo, min(lo + SEGMENT, stop)) for start, stop in zip(edges[::2], edges[1::2])
                     for lo in range(start, stop, SEGMENT)], dtype=np.int64).reshape(-1, 2)


def train_steps(floating[::1] params,                 # IN/OUT (P,) the flat parameters, updated
                floating[::1] velocity,               # IN/OUT (P,) with momentum, else empty
                const floating[::1] step,             # IN  (P,) per-parameter step sizes
                const floating[:, :, :, ::1] x,       # IN  (N, 1, 32, 32)
                const int64_t[::1] labels,            # IN  (N,) in 0..9
                const int64_t[::1] order,             # IN  (M,) in 0..N-1: the samples presented
                double[::1] losses,                   # OUT (M,) loss of each presented sample
                int64_t[::1] predictions,             # OUT (M,) its predicted class
                const unsigned char[:, ::1] table,    # IN  (6, 16) C3 connections
                const floating[:, ::1] centers,       # IN  (10, 84) RBF centres (paper), else unused
                bint paper, int kind, double map_j, Py_ssize_t batch_size, double momentum,
                double weight_decay, int n_threads):
    cdef Layout L = _layout(paper)
    cdef Py_ssize_t M = order.shape[0], b, start, B, n, s, t, group, first
    cdef int tid
    cdef double scale
    cdef floating mom = <floating>momentum, decay = <floating>weight_decay
    cdef floating* v = &velocity[0] if momentum != 0 else NULL
    cdef const floating* c = &centers[0, 0] if paper else NULL
    dtype = np.float32 if floating is float else np.float64
    if M == 0:
        return
    n_threads = min(n_threads, batch_size)     # batch size 1: serial, no OpenMP region
    # batch size 1 updates the dense layers (C5 on: the end of the layout) in their backward pass
    cdef const int64_t[:, ::1] segments = _segments(&L, table, L.c5w if batch_size == 1 else L.size)
    cdef Step update
    update.params = &params[0]
    update.velocity = v
    update.step = &step[0]
    update.momentum = momentum
    update.decay = weight_decay
    cdef floating[:, ::1] rows = np.zeros((n_threads, L.size), dtype)    # per-thread gradients
    cdef floating[::1] total = np.zeros(L.size if batch_size > 1 else 1, dtype)
    # samples go through in groups of up to LENET_GROUP consecutive ones, no more than a thread's share
    group = min(LENET_GROUP, (batch_size + n_threads - 1) // n_threads)
    cdef floating[:, ::1] work = np.empty((n_threads, group * WORK), dtype)
    cdef floating[::1] c3wt = np.empty(C3_WEIGHTS, dtype)                  # C3's weights transposed
    cdef floating[:, ::1] partial = np.zeros((n_threads, PARTIAL), dtype)
    with nogil:
        for b in range((M + batch_size - 1) // batch_size):
            start = b * batch_size
            B = min(batch_size, M - start)
            scale = 1.0 / B
            _c3_transpose_weights(&c3wt[0], &params[L.c3w], &table[0, 0])
            if batch_size == 1:
                _group_step(&rows[0, 0], &partial[0, 0], &work[0, 0], 1, &params[0], &x[0, 0, 0, 0],
                            &order[start], &labels[0], &table[0, 0], &c3wt[0], c, &L, paper, kind, map_j,
                            scale, &losses[start], &predictions[start], &update)
                _fold_partial(&rows[0, 0], &partial[0, 0], &table[0, 0], &L)
                for s in range(segments.shape[0]):
                    _update(&params[0], v, &rows[0, 0], &step[0], segments[s, 0], segments[s, 1], mom, decay)
                continue
            group = min(group, (B + n_threads - 1) // n_threads)    # the last batch may be shorter
            for n in prange((B + group - 1) // group, schedule="static", num_threads=n_threads):
                tid = threadid()
                first = start + n * group
                _group_step(&rows[tid, 0], &partial[tid, 0], &work[tid, 0], min(group, start + B - first),
                            &params[0], &x[0, 0, 0, 0], &order[first], &labels[0], &table[0, 0], &c3wt[0], c,
                            &L, paper, kind, map_j, scale, &losses[first], &predictions[first], NULL)
            for t in range(n_threads):
                _fold_partial(&rows[t, 0], &partial[t, 0], &table[0, 0], &L)
            for s in prange(segments.shape[0], schedule="static", num_threads=n_threads):
                add_thread_rows(&total[segments[s, 0]], rows, segments[s, 0], segments[s, 1] - segments[s, 0])
                for t in range(n_threads):
                    memset(&rows[t, segments[s, 0]], 0, (segments[s, 1] - segments[s, 0]) * sizeof(floating))
                _update(&params[0], v, &total[0], &step[0], segments[s, 0], segments[s, 1], mom, decay)


def network_forward(const floating[::1] params,           # IN  (P,) the flat parameters
                    const floating[:, :, :, ::1] x,       # IN  (N, 1, 32, 32)
                    floating[:, ::1] out,                 # OUT (N, 10) penalties (paper) or logits
                    const unsigned char[:, ::1] table,    # IN  (6, 16) C3 connections
                    const floating[:, ::1] centers,       # IN  (10, 84) RBF centres (paper), else unused
                    bint paper, int n_threads):
    """The whole forward pass, a few samples at a time in a thread's work rows (which stay in cache)."""
    cdef Layout L = _layout(paper)
    cdef Py_ssize_t N = x.shape[0], n, s, group, first, count
    cdef int tid
    cdef const floating* c = &centers[0, 0] if paper else NULL
    cdef floating* c3wt
    cdef floating* work
    if N == 0:
        return
    n_threads = min(n_threads, N)      # one sample: no OpenMP region
    group = min(LENET_GROUP, (N + n_threads - 1) // n_threads)
    # C3's weights transposed, then each thread's work rows (malloc: a single image's call stays short)
    c3wt = <floating*>malloc((C3_WEIGHTS + n_threads * group * WORK) * sizeof(floating))
    if c3wt == NULL:
        raise MemoryError("network_forward: no memory for the work rows")
    work = c3wt + C3_WEIGHTS
    with nogil:
        _c3_transpose_weights(c3wt, &params[L.c3w], &table[0, 0])
        if n_threads == 1:
            for n in range((N + group - 1) // group):
                first = n * group
                count = min(group, N - first)
                _forward(work, count, &params[0], &x[first, 0, 0, 0], NULL, c3wt, c, &L, paper)
                for s in range(count):
                    memcpy(&out[first + s, 0], work + s * WORK + OUT, 10 * sizeof(floating))
        else:
            for n in prange((N + group - 1) // group, schedule="static", num_threads=n_threads):
                tid = threadid()
                first = n * group
                count = min(group, N - first)
                _forward(work + tid * group * WORK, count, &params[0], &x[first, 0, 0, 0], NULL, c3wt, c, &L,
                         paper)
                for s in range(count):
                    memcpy(&out[first + s, 0], work + (tid * group + s) * WORK + OUT, 10 * sizeof(floating))
        free(c3wt)
