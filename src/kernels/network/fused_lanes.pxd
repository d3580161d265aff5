# The forward pass of a block of samples, one per vector lane (fused_lanes_template.h), with its
# float/double dispatch (cimported by network.pyx). A block's arrays are (values, lanes): each value's
# samples side by side.
from cython cimport floating


cdef extern from "fused_simd.h" nogil:
    enum: LENET_LANES_F     # samples in a block: float
    enum: LENET_LANES_D     # double
    void lenet_lanes_load_f(float* a, const float* x)
    void lenet_lanes_load_d(double* a, const double* x)
    void lenet_lanes_store_f(float* out, const float* a, int K)
    void lenet_lanes_store_d(double* out, const double* a, int K)
    void lenet_lanes_c1_f(float* out, const float* x, const float* w, const float* b, int relu)
    void lenet_lanes_c1_d(double* out, const double* x, const double* w, const double* b, int relu)
    void lenet_lanes_c3_f(float* out, const float* x, const float* w, const float* b, const unsigned char* table,
                          int relu)
    void lenet_lanes_c3_d(double* out, const double* x, const double* w, const double* b,
                          const unsigned char* table, int relu)
    void lenet_lanes_pool_f(float* out, const float* x, const float* coef, const float* bias, int C, int H)
    void lenet_lanes_pool_d(double* out, const double* x, const double* coef, const double* bias, int C, int H)
    void lenet_lanes_dense_f(float* out, const float* x, const float* w, const float* b, int F, int K)
    void lenet_lanes_dense_d(double* out, const double* x, const double* w, const double* b, int F, int K)


cdef inline Py_ssize_t _lanes(floating* dtype_only) noexcept nogil:
    # the samples of a block for this element type (the argument only selects it)
    return LENET_LANES_F if floating is float else LENET_LANES_D


cdef inline void _lanes_load(floating* a, const floating* x) noexcept nogil:
    if floating is float:
        lenet_lanes_load_f(a, x)
    else:
        lenet_lanes_load_d(a, x)


cdef inline void _lanes_store(floating* out, const floating* a, int K) noexcept nogil:
    if floating is float:
        lenet_lanes_store_f(out, a, K)
    else:
        lenet_lanes_store_d(out, a, K)


cdef inline void _lanes_c1(floating* out, const floating* x, const floating* w, const floating* b,
                           bint relu) noexcept nogil:
    # relu: the outputs through the ReLU
    if floating is float:
        lenet_lanes_c1_f(out, x, w, b, relu)
    else:
        lenet_lanes_c1_d(out, x, w, b, relu)


cdef inline void _lanes_c3(floating* out, const floating* x, const floating* w, const floating* b,
                           const unsigned char* table, bint relu) noexcept nogil:
    if floating is float:
        lenet_lanes_c3_f(out, x, w, b, table, relu)
    else:
        lenet_lanes_c3_d(out, x, w, b, table, relu)


cdef inline void _lanes_pool(floating* out, const floating* x, const floating* coef, const floating* bias, int C,
                             int H) noexcept nogil:
    # coef NULL: max pooling
    if floating is float:
        lenet_lanes_pool_f(out, x, coef, bias, C, H)
    else:
        lenet_lanes_pool_d(out, x, coef, bias, C, H)


cdef inline void _lanes_dense(floating* out, const floating* x, const floating* w, const floating* b, int F,
                              int K) noexcept nogil:
    # b NULL: the RBF layer, with the centres as w
    if floating is float:
        lenet_lanes_dense_f(out, x, w, b, F, K)
    else:
        lenet_lanes_dense_d(out, x, w, b, F, K)
