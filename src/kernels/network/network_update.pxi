# Included by network.pyx: the batch's update, each thread its share of the parameters (train_steps).


cdef extern from "sgd.h" nogil:
    float lenet_sgd_plain_f(float w, float step, float g, float decay)
    double lenet_sgd_plain_d(double w, double step, double g, double decay)
    float lenet_sgd_velocity_f(float v, float g, float w, float momentum, float decay)
    double lenet_sgd_velocity_d(double v, double g, double w, double momentum, double decay)
    float lenet_sgd_momentum_f(float w, float step, float v)
    double lenet_sgd_momentum_d(double w, double step, double v)


cdef inline floating _sgd_plain(floating w, floating step, floating g, floating decay) noexcept nogil:
    return lenet_sgd_plain_f(w, step, g, decay) if floating is float else lenet_sgd_plain_d(w, step, g, decay)


cdef inline floating _sgd_velocity(floating v, floating g, floating w, floating momentum,
                                   floating decay) noexcept nogil:
    return (lenet_sgd_velocity_f(v, g, w, momentum, decay) if floating is float else
            lenet_sgd_velocity_d(v, g, w, momentum, decay))


cdef inline floating _sgd_momentum(floating w, floating step, floating v) noexcept nogil:
    return lenet_sgd_momentum_f(w, step, v) if floating is float else lenet_sgd_momentum_d(w, step, v)


cdef inline void _update(floating* w, floating* v, floating* g, const floating* step, Py_ssize_t lo,
                         Py_ssize_t hi, floating momentum, floating decay) noexcept nogil:
    # the update of parameters lo..hi-1 from their gradient g, which is then zeroed for the next batch
    cdef Py_ssize_t p
    _prefetch(w + lo, hi - lo, True)
    if v == NULL:
        for p in range(lo, hi):
            w[p] = _sgd_plain(w[p], step[p], g[p], decay)
            g[p] = 0
    else:
        for p in range(lo, hi):
            v[p] = _sgd_velocity(v[p], g[p], w[p], momentum, decay)
            w[p] = _sgd_momentum(w[p], step[p], v[p])
            g[p] = 0


cdef void _finish(floating* w, floating* v, floating* total, floating[:, ::1] rows, const floating* step,
                  Py_ssize_t lo, Py_ssize_t hi, floating momentum, floating decay, bint with_rows) noexcept nogil:
    # parameters lo..hi-1: their gradient total + the threads' rows (in row order; without with_rows, the
    # rows hold zeros there), the rows zeroed, the update
    cdef Py_ssize_t t
    if with_rows:
        add_thread_rows(&total[lo], rows, lo, hi - lo)
        for t in range(rows.shape[0]):
            memset(&rows[t, lo], 0, (hi - lo) * sizeof(floating))
    _update(w, v, total, step, lo, hi, momentum, decay)


cdef void _finish_share(floating* w, floating* v, floating* total, floating[:, ::1] rows, const floating* step,
                        const int64_t[:, ::1] conv_segments, Py_ssize_t t, Py_ssize_t n_threads, const Layout* L,
                        bint paper, floating momentum, floating decay, bint per_sample) noexcept nogil:
    # thread t's share of the batch's update: its rows of the dense layers (those of _dense_gradients_share:
    # the gradients it summed are still in its cache) and its share of the convolutional layers' pieces.
    # per_sample: some of the batch's samples went through the per-sample path, whose dense layers' gradients
    # are in the threads' rows (else only the convolutional layers' are, folded from the partials)
    cdef Py_ssize_t k0, k1, s
    cdef DenseLayer c
    cdef int layer
    for layer in range(2 if paper else 3):
        c = _dense_layer(L, layer)
        k0, k1 = _share(c.K, t, n_threads), _share(c.K, t + 1, n_threads)
        _finish(w, v, total, rows, step, c.w + k0 * c.F, c.w + k1 * c.F, momentum, decay, per_sample)
        _finish(w, v, total, rows, step, c.b + k0, c.b + k1, momentum, decay, per_sample)
    for s in range(_share(conv_segments.shape[0], t, n_threads), _share(conv_segments.shape[0], t + 1, n_threads)):
        _finish(w, v, total, rows, step, conv_segments[s, 0], conv_segments[s, 1], momentum, decay, True)
