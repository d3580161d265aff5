# The fused kernels' building blocks (cimported by network.pyx): the work row of one sample, the
# layout of the flat parameters, and the C functions of fused_simd.h with their float/double dispatch.
from cython cimport floating

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
    LANES_WORK = G + 1024   # a block of samples in lanes (fused_lanes.pxd): the activations, then the images
    # in training: the activations, their gradients (those of C1 to C3 replace their activations:
    # network_lanes.pxi), then the images
    LANES_TRAIN = 2 * G + 1024
    # a sample's row of the dense layers' values in training (network_lanes.pxi): the activations from
    # S4 on (the layers' inputs), then the gradients from C5 on (their outputs'), rows 64 bytes apart
    DENSE_D = G - S4
    DENSE_ROW = (DENSE_D + G - C5 + 15) & ~15
    DENSE_SAMPLES = 256     # the most such rows at once: a batch's blocks go in chunks of at most this many
    C3_WEIGHTS = 2400       # C3's weights (16, 6, 5, 5), also transposed (6, 5, 5, 16)
    # a thread's partial gradients, kept in the convolutions' own layouts over a batch (_fold_partial
    # adds them to its gradient row): C3's weights transposed and its biases, then C1's 156 rows of 16 lanes
    PART_C1 = C3_WEIGHTS + 16
    PARTIAL = PART_C1 + 156 * 16
    SEGMENT = 1024          # the longest piece of the parameter update (a thread's unit of work)


cdef struct Layout:
    # offsets of the parameter tensors in the flat array (-1: not in this variant) and its size
    Py_ssize_t c1w, c1b, s2c, s2b, c3w, c3b, s4c, s4b, c5w, c5b, f6w, f6b, ow, ob, size


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
    void lenet_maxpool_backward_f(float* dx, const float* dout, const float* x, int C, int H)
    void lenet_maxpool_backward_d(double* dx, const double* dout, const double* x, int C, int H)
    enum: LENET_GROUP   # samples through the dense layers together


cdef inline void _c1_forward(floating* out, const floating* x, const floating* w, const floating* b) noexcept nogil:
    if floating is float:
        lenet_c1_forward_f(out, x, w, b)
    else:
        lenet_c1_forward_d(out, x, w, b)


cdef inline void _c1_backward_weights(floating* lanes, const floating* dout, const floating* x) noexcept nogil:
    if floating is float:
        lenet_c1_backward_weights_f(lanes, dout, x)
    else:
        lenet_c1_backward_weights_d(lanes, dout, x)


cdef inline void _c3_forward(floating* out, const floating* x, const floating* wt, const floating* b) noexcept nogil:
    if floating is float:
        lenet_c3_forward_f(out, x, wt, b)
    else:
        lenet_c3_forward_d(out, x, wt, b)


cdef inline void _c3_backward(floating* dx, floating* part, const floating* dout, const floating* x, const floating* w,
                              const unsigned char* table, floating* scratch) noexcept nogil:
    if floating is float:
        lenet_c3_backward_f(dx, part, dout, x, w, table, scratch)
    else:
        lenet_c3_backward_d(dx, part, dout, x, w, table, scratch)


cdef inline void _maxpool_backward(floating* dx, const floating* dout, const floating* x, int C,
                                   int H) noexcept nogil:
    if floating is float:
        lenet_maxpool_backward_f(dx, dout, x, C, H)
    else:
        lenet_maxpool_backward_d(dx, dout, x, C, H)


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
