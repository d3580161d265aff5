# Included by network.pyx (it uses _activate, _activate_backward and _loss_step): blocks of BL samples, one
# per vector lane, through the network (fused_lanes.pxd). A block's values sit at BL times their offsets
# in a work row: activations from a, their gradients from a + G * BL (training: those of S4 on; C1's to
# C3's replace their activations, _conv_backward_lanes), then the images. In training, the dense layers'
# weight gradients come from rows of `dense`, a sample each (_dense_gradients_share).


cdef extern from * nogil:
    void __builtin_prefetch(const void* p, int rw, int locality)


cdef inline void _prefetch(const floating* p, Py_ssize_t n, bint write) noexcept nogil:
    # the cache lines of p[0 .. n-1], asked for ahead of their use, all at once: where another core
    # holds them (the parameters, which every thread reads and one updates; the rows of `dense` that
    # another thread wrote), each first load or store would otherwise wait for its line in turn (the
    # loops that use them go through them in an order the hardware prefetchers do not follow)
    cdef Py_ssize_t i, line = 64 // sizeof(floating)
    for i in range((n + line - 1) // line):
        if write:
            __builtin_prefetch(p + i * line, 1, 3)
        else:
            __builtin_prefetch(p + i * line, 0, 2)


cdef bint _conv_forward_lanes(floating* a, floating* images, const floating* w, const floating* x,
                              const int64_t* idx, const unsigned char* table, const floating* c3u,
                              floating* scratch, const Layout* L, bint paper, bint inference) noexcept nogil:
    # C1 to S4 of the block of samples _sample(x, idx, s), s < BL, loaded into `images`; returns whether
    # the images are finite (else the activations are not meaningful). With inference,
    # C1's activations are not stored: each pair of its rows goes through S2 while it is in the L1
    # cache (the C1 area holds the pair). c3u: C3's Winograd weights (the modern variant's inference:
    # C3 to S4 in one step, in scratch's LANES_WINOGRAD x BL values; C3's activations are not stored),
    # else NULL (training, the paper variant)
    cdef Py_ssize_t BL = _lanes(a)
    cdef int k, i
    cdef const floating* no_coef = NULL     # max pooling (the modern variant has no S2/S4 parameters)
    cdef const floating* s2c = w + L.s2c if paper else no_coef
    cdef const floating* s2b = w + L.s2b if paper else no_coef
    cdef bint finite = _lanes_load(images, x, idx)
    # the modern variant's ReLU comes with the convolutions, the paper's squash after them
    if inference:
        for k in range(6):
            for i in range(14):
                _lanes_c1_rows(a + C1 * BL, images, w + L.c1w, w + L.c1b, k, 2 * i, 2, not paper)
                if paper:
                    _activate(a + C1 * BL, 2 * 28 * BL, paper)
                _lanes_pool_rows(a + (S2 + (k * 14 + i) * 14) * BL, a + C1 * BL, s2c, s2b, k, 1, 28)
    else:
        _lanes_c1(a + C1 * BL, images, w + L.c1w, w + L.c1b, not paper)
        if paper:
            _activate(a + C1 * BL, (S2 - C1) * BL, paper)
        _lanes_pool(a + S2 * BL, a + C1 * BL, s2c, s2b, 6, 28)
    if paper:
        _activate(a + S2 * BL, (C3 - S2) * BL, paper)
    if c3u != NULL:
        _lanes_c3_pool_winograd(a + S4 * BL, a + S2 * BL, c3u, w + L.c3b, scratch)
        return finite
    _lanes_c3(a + C3 * BL, a + S2 * BL, w + L.c3w, w + L.c3b, table, not paper)
    if paper:
        _activate(a + C3 * BL, (S4 - C3) * BL, paper)
    _lanes_pool(a + S4 * BL, a + C3 * BL, w + L.s4c if paper else no_coef, w + L.s4b if paper else no_coef,
                16, 10)
    if paper:
        _activate(a + S4 * BL, (C5 - S4) * BL, paper)
    return finite


cdef bint _forward_lanes(floating* a, floating* images, const floating* w, const floating* x, const int64_t* idx,
                         const unsigned char* table, const floating* c3u, floating* scratch,
                         const floating* centers, const Layout* L, bint paper, bint inference) noexcept nogil:
    # the block of samples _sample(x, idx, s), s < BL, loaded into `images`, through all layers into a
    # (inference: see _conv_forward_lanes); whether the images are finite
    cdef Py_ssize_t BL = _lanes(a)
    cdef bint finite = _conv_forward_lanes(a, images, w, x, idx, table, c3u, scratch, L, paper, inference)
    _lanes_dense(a + C5 * BL, a + S4 * BL, w + L.c5w, w + L.c5b, 400, 120)
    _activate(a + C5 * BL, (F6 - C5) * BL, paper)
    _lanes_dense(a + F6 * BL, a + C5 * BL, w + L.f6w, w + L.f6b, 120, 84)
    _activate(a + F6 * BL, (OUT - F6) * BL, paper)
    if paper:
        _lanes_dense(a + OUT * BL, a + F6 * BL, centers, NULL, 84, 10)
    else:
        _lanes_dense(a + OUT * BL, a + F6 * BL, w + L.ow, w + L.ob, 84, 10)
    return finite


cdef void _conv_backward_lanes(floating* lp, floating* a, const floating* w, const unsigned char* table,
                               const Layout* L, bint paper) noexcept nogil:
    # from the gradients of S4's outputs (at a + (G + S4) * BL) back to C1, as _backward's per-sample loop
    # (each pool's backward pass with the activations' on either side); the parameters' gradients into
    # the partials lp (LANES_PARTIAL x BL). The gradients of C3, S2 and C1 replace their activations
    # (each layer's backward pass reads its activations, then writes its gradients over them): a block
    # touches 0.5 MB less memory, which keeps its work in the L2 cache.
    cdef Py_ssize_t BL = _lanes(a)
    cdef floating* none = NULL      # max pooling: no coefficients
    _lanes_pool_backward(a + C3 * BL, lp + LP_S4C * BL, lp + LP_S4B * BL, a + (G + S4) * BL, a + S4 * BL,
                         w + L.s4c if paper else none, 16, 10)
    _lanes_c3_backward(a + S2 * BL, lp + LP_C3W * BL, lp + LP_C3B * BL, a + C3 * BL, w + L.c3w, table, paper)
    _lanes_pool_backward(a + C1 * BL, lp + LP_S2C * BL, lp + LP_S2B * BL, a + S2 * BL, none,
                         w + L.s2c if paper else none, 6, 28)
    _lanes_c1_backward(lp + LP_C1W * BL, lp + LP_C1B * BL, a + C1 * BL, a + 2 * G * BL)


cdef void _dense_backward_lanes(floating* a, const floating* w, const floating* centers, const Layout* L,
                                bint paper) noexcept nogil:
    # from the gradients of the outputs back to those of S4's outputs, as _backward's per-sample loop:
    # the input gradients only (the weight gradients: _dense_gradients_share)
    cdef Py_ssize_t BL = _lanes(a)
    cdef floating* d = a + G * BL
    if paper:
        _lanes_rbf_backward(d + F6 * BL, d + OUT * BL, a + F6 * BL, centers, 84, 10)
    else:
        _lanes_dense_backward(d + F6 * BL, d + OUT * BL, w + L.ow, 84, 10)
    _activate_backward(d + F6 * BL, a + F6 * BL, (OUT - F6) * BL, paper)
    _lanes_dense_backward(d + C5 * BL, d + F6 * BL, w + L.f6w, 120, 84)
    _activate_backward(d + C5 * BL, a + C5 * BL, (F6 - C5) * BL, paper)
    _lanes_dense_backward(d + S4 * BL, d + C5 * BL, w + L.c5w, 400, 120)


cdef void _lanes_step(floating* lp, floating* a, floating* rows, floating* dense, const floating* w,
                      const floating* x, const int64_t* idx, const int64_t* labels, const unsigned char* table,
                      const floating* centers, const Layout* L, bint paper, bint argmin, int kind, double map_j,
                      double scale, double* losses, int64_t* predictions) noexcept nogil:
    # the block of samples x[idx[s]], s < BL, through the forward and backward passes in lanes (a:
    # LANES_TRAIN values x BL): the convolutional layers' parameter gradients into the partials lp, and
    # each sample's dense layers' inputs and output gradients into its row of `dense` (DENSE_ROW values,
    # see _dense_gradients_share). The loss goes LENET_GROUP samples at a time through the work rows
    # `rows`.
    cdef Py_ssize_t BL = _lanes(a), s, n, k
    cdef floating* d = a + G * BL
    _forward_lanes(a, a + 2 * G * BL, w, x, idx, table, NULL, NULL, centers, L, paper, False)
    for k in range((BL + LENET_GROUP - 1) // LENET_GROUP):
        s = k * LENET_GROUP
        n = min(LENET_GROUP, BL - s)
        _lanes_store(rows + OUT, a + OUT * BL + s, G - OUT, WORK, n)      # the scores
        _loss_step(rows, n, idx + s, labels, argmin, kind, map_j, scale, losses + s, predictions + s)
        _lanes_take(d + OUT * BL + s, rows + G + OUT, G - OUT, WORK, n)
    _dense_backward_lanes(a, w, centers, L, paper)
    _lanes_store(dense, a + S4 * BL, G - S4, DENSE_ROW, BL)
    _lanes_store(dense + DENSE_D, d + C5 * BL, G - C5, DENSE_ROW, BL)
    _conv_backward_lanes(lp, a, w, table, L, paper)


cdef inline Py_ssize_t _share(Py_ssize_t count, Py_ssize_t t, Py_ssize_t n_threads) noexcept nogil:
    # where thread t's share of `count` items starts (it takes those up to _share(count, t + 1, n_threads))
    return count * t // n_threads


cdef struct DenseLayer:
    Py_ssize_t w, b             # the offsets of its weights (K, F) and biases (K,) in the parameters
    int F, K                    # inputs and outputs
    Py_ssize_t inputs, outputs  # where its inputs' values and its outputs' gradients are in a row of `dense`


cdef inline DenseLayer _dense_layer(const Layout* L, int layer) noexcept nogil:
    # the dense layers with parameters: C5, F6, and the modern variant's output layer (2)
    cdef DenseLayer c
    if layer == 0:
        c.w, c.b, c.F, c.K, c.inputs, c.outputs = L.c5w, L.c5b, 400, 120, 0, DENSE_D
    elif layer == 1:
        c.w, c.b, c.F, c.K, c.inputs, c.outputs = L.f6w, L.f6b, 120, 84, C5 - S4, DENSE_D + F6 - C5
    else:
        c.w, c.b, c.F, c.K, c.inputs, c.outputs = L.ow, L.ob, 84, 10, F6 - S4, DENSE_D + OUT - C5
    return c


cdef void _dense_gradients_share(floating* g, const floating* dense, Py_ssize_t n, Py_ssize_t t,
                                 Py_ssize_t n_threads, const Layout* L, bint paper) noexcept nogil:
    # thread t's share of the dense layers' weight and bias gradients (its _share of each layer's rows)
    # from the n samples' rows of `dense` (_lanes_step), added into g
    cdef Py_ssize_t k0, k1
    cdef DenseLayer c
    cdef int layer
    _prefetch(dense, n * DENSE_ROW, False)
    for layer in range(2 if paper else 3):
        c = _dense_layer(L, layer)
        k0, k1 = _share(c.K, t, n_threads), _share(c.K, t + 1, n_threads)
        _dense_weight_grad(g + c.w + k0 * c.F, g + c.b + k0, dense + c.outputs + k0, dense + c.inputs, c.F,
                           <int>(k1 - k0), DENSE_ROW, <int>n)


cdef void _lanes_fold_all(floating* g, floating* lp, const Layout* L, bint paper) noexcept nogil:
    # the partials lp into the gradient row g, and zeroed (C3's all at once: those outside the table are
    # zero, and their gradients are not used)
    cdef Py_ssize_t BL = _lanes(lp)
    _lanes_fold(g + L.c1w, lp + LP_C1W * BL, 150)
    _lanes_fold(g + L.c1b, lp + LP_C1B * BL, 6)
    _lanes_fold(g + L.c3w, lp + LP_C3W * BL, 2400)
    _lanes_fold(g + L.c3b, lp + LP_C3B * BL, 16)
    if paper:
        _lanes_fold(g + L.s2c, lp + LP_S2C * BL, 6)
        _lanes_fold(g + L.s2b, lp + LP_S2B * BL, 6)
        _lanes_fold(g + L.s4c, lp + LP_S4C * BL, 16)
        _lanes_fold(g + L.s4b, lp + LP_S4B * BL, 16)
