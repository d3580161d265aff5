# Blocks of samples, one per vector lane (fused_lanes_template.h, fused_lanes_backward_template.h), with
# their float/double dispatch (cimported by network.pyx). A block's arrays are (values, lanes): each
# value's samples side by side. Partials: a vector per parameter of the convolutional layers, each lane
# one sample's share of its gradient over a batch (laid out as below, LANES_PARTIAL vectors a thread).
from cython cimport floating
from libc.stdint cimport int64_t

cdef enum:
    LP_C1W = 0                  # C1's weights (6, 1, 5, 5)
    LP_C1B = LP_C1W + 150
    LP_S2C = LP_C1B + 6         # S2's coefficients and biases (paper)
    LP_S2B = LP_S2C + 6
    LP_C3W = LP_S2B + 6         # C3's weights (16, 6, 5, 5), zero outside the table
    LP_C3B = LP_C3W + 2400
    LP_S4C = LP_C3B + 16
    LP_S4B = LP_S4C + 16
    LANES_PARTIAL = LP_S4B + 16
    LANES_WINOGRAD = 5400       # the scratch of lenet_lanes_c3_pool_winograd (x BL)
    WINOGRAD_WEIGHTS = 3456     # C3's weights' transforms (36, 6, 16)


cdef extern from "fused_simd.h" nogil:
    enum: LENET_LANES_F     # samples in a block: float
    enum: LENET_LANES_D     # double
    int lenet_lanes_load_f(float* a, const float* x, const int64_t* idx)
    int lenet_lanes_load_d(double* a, const double* x, const int64_t* idx)
    void lenet_lanes_store_f(float* rows, const float* a, int K, Py_ssize_t stride, int n)
    void lenet_lanes_store_d(double* rows, const double* a, int K, Py_ssize_t stride, int n)
    void lenet_lanes_take_f(float* a, const float* rows, int K, Py_ssize_t stride, int n)
    void lenet_lanes_take_d(double* a, const double* rows, int K, Py_ssize_t stride, int n)
    void lenet_lanes_c1_f(float* out, const float* x, const float* w, const float* b, int relu)
    void lenet_lanes_c1_rows_f(float* out, const float* x, const float* w, const float* b, int k, int y, int rows,
                               int relu)
    void lenet_lanes_c1_rows_d(double* out, const double* x, const double* w, const double* b, int k, int y,
                               int rows, int relu)
    void lenet_lanes_c1_d(double* out, const double* x, const double* w, const double* b, int relu)
    void lenet_lanes_c3_f(float* out, const float* x, const float* w, const float* b, const unsigned char* table,
                          int relu)
    void lenet_lanes_c3_d(double* out, const double* x, const double* w, const double* b,
                          const unsigned char* table, int relu)
    void lenet_winograd_weights_f(float* u, const float* w)
    void lenet_winograd_weights_d(double* u, const double* w)
    void lenet_lanes_c3_pool_winograd_f(float* out, const float* x, const float* u, const float* b, float* scratch)
    void lenet_lanes_c3_pool_winograd_d(double* out, const double* x, const double* u, const double* b,
                                        double* scratch)
    void lenet_winograd_c3_pool_one_f(float* out, const float* x, const float* u, const float* b, float* scratch)
    void lenet_winograd_c3_pool_one_d(double* out, const double* x, const double* u, const double* b,
                                      double* scratch)
    void lenet_lanes_pool_f(float* out, const float* x, const float* coef, const float* bias, int C, int H)
    void lenet_lanes_pool_rows_f(float* out, const float* x, const float* coef, const float* bias, int c, int rows,
                                 int H)
    void lenet_lanes_pool_rows_d(double* out, const double* x, const double* coef, const double* bias, int c,
                                 int rows, int H)
    void lenet_lanes_pool_d(double* out, const double* x, const double* coef, const double* bias, int C, int H)
    void lenet_lanes_dense_f(float* out, const float* x, const float* w, const float* b, int F, int K)
    void lenet_lanes_dense_d(double* out, const double* x, const double* w, const double* b, int F, int K)
    void lenet_lanes_pool_backward_f(float* x, float* dcoef, float* dbias, const float* dout, const float* out,
                                     const float* coef, int C, int H)
    void lenet_lanes_pool_backward_d(double* x, double* dcoef, double* dbias, const double* dout,
                                     const double* out, const double* coef, int C, int H)
    void lenet_lanes_c1_backward_f(float* dw, float* db, const float* dout, const float* x)
    void lenet_lanes_c1_backward_d(double* dw, double* db, const double* dout, const double* x)
    void lenet_lanes_c3_backward_f(float* x, float* dw, float* db, const float* dout, const float* w,
                                   const unsigned char* table, int squash)
    void lenet_lanes_c3_backward_d(double* x, double* dw, double* db, const double* dout, const double* w,
                                   const unsigned char* table, int squash)
    void lenet_lanes_fold_f(float* g, float* partials, int n)
    void lenet_lanes_fold_d(double* g, double* partials, int n)
    void lenet_lanes_rbf_backward_f(float* dx, const float* dout, const float* x, const float* centers, int F,
                                    int K)
    void lenet_lanes_rbf_backward_d(double* dx, const double* dout, const double* x, const double* centers, int F,
                                    int K)
    void lenet_lanes_dense_backward_f(float* dx, const float* dout, const float* w, int F, int K)
    void lenet_lanes_dense_backward_d(double* dx, const double* dout, const double* w, int F, int K)
    void lenet_dense_weight_grad_f(float* dw, float* db, const float* dout, const float* x, int F, int K,
                                   Py_ssize_t stride, int n)
    void lenet_dense_weight_grad_d(double* dw, double* db, const double* dout, const double* x, int F, int K,
                                   Py_ssize_t stride, int n)


cdef inline Py_ssize_t _lanes(floating* dtype_only) noexcept nogil:
    # the samples of a block for this element type (the argument only selects it)
    return LENET_LANES_F if floating is float else LENET_LANES_D


cdef inline bint _lanes_load(floating* a, const floating* x, const int64_t* idx) noexcept nogil:
    # idx NULL: the first images of x; whether all their values are finite
    if floating is float:
        return lenet_lanes_load_f(a, x, idx)
    else:
        return lenet_lanes_load_d(a, x, idx)


cdef inline void _lanes_store(floating* rows, const floating* a, int K, Py_ssize_t stride, int n) noexcept nogil:
    # lanes -> rows, stride apart
    if floating is float:
        lenet_lanes_store_f(rows, a, K, stride, n)
    else:
        lenet_lanes_store_d(rows, a, K, stride, n)


cdef inline void _lanes_take(floating* a, const floating* rows, int K, Py_ssize_t stride, int n) noexcept nogil:
    # rows, stride apart -> lanes
    if floating is float:
        lenet_lanes_take_f(a, rows, K, stride, n)
    else:
        lenet_lanes_take_d(a, rows, K, stride, n)


cdef inline void _lanes_c1(floating* out, const floating* x, const floating* w, const floating* b,
                           bint relu) noexcept nogil:
    # relu: the outputs through the ReLU
    if floating is float:
        lenet_lanes_c1_f(out, x, w, b, relu)
    else:
        lenet_lanes_c1_d(out, x, w, b, relu)


cdef inline void _lanes_c1_rows(floating* out, const floating* x, const floating* w, const floating* b, int k,
                                int y, int rows, bint relu) noexcept nogil:
    # the rows y .. y + rows - 1 of C1's map k (rows, 28, BL)
    if floating is float:
        lenet_lanes_c1_rows_f(out, x, w, b, k, y, rows, relu)
    else:
        lenet_lanes_c1_rows_d(out, x, w, b, k, y, rows, relu)


cdef inline void _lanes_c3(floating* out, const floating* x, const floating* w, const floating* b,
                           const unsigned char* table, bint relu) noexcept nogil:
    if floating is float:
        lenet_lanes_c3_f(out, x, w, b, table, relu)
    else:
        lenet_lanes_c3_d(out, x, w, b, table, relu)


cdef inline void _winograd_weights(floating* u, const floating* w) noexcept nogil:
    if floating is float:
        lenet_winograd_weights_f(u, w)
    else:
        lenet_winograd_weights_d(u, w)


cdef inline void _lanes_c3_pool_winograd(floating* out, const floating* x, const floating* u, const floating* b,
                                         floating* scratch) noexcept nogil:
    if floating is float:
        lenet_lanes_c3_pool_winograd_f(out, x, u, b, scratch)
    else:
        lenet_lanes_c3_pool_winograd_d(out, x, u, b, scratch)


cdef inline void _c3_pool_winograd(floating* out, const floating* x, const floating* u, const floating* b,
                                   floating* scratch) noexcept nogil:
    # one sample's C3 to S4 as _lanes_c3_pool_winograd computes each lane's (the same bits)
    if floating is float:
        lenet_winograd_c3_pool_one_f(out, x, u, b, scratch)
    else:
        lenet_winograd_c3_pool_one_d(out, x, u, b, scratch)


cdef inline void _lanes_pool_rows(floating* out, const floating* x, const floating* coef, const floating* bias,
                                  int c, int rows, int H) noexcept nogil:
    # `rows` output rows of map c from 2 x rows input rows of width H
    if floating is float:
        lenet_lanes_pool_rows_f(out, x, coef, bias, c, rows, H)
    else:
        lenet_lanes_pool_rows_d(out, x, coef, bias, c, rows, H)


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


cdef inline void _lanes_pool_backward(floating* x, floating* dcoef, floating* dbias, const floating* dout,
                                      const floating* out, const floating* coef, int C, int H) noexcept nogil:
    # x, the pool's input, replaced by its gradient, with the activations' derivatives on either side;
    # coef NULL: max pooling (dcoef, dbias, out unused)
    if floating is float:
        lenet_lanes_pool_backward_f(x, dcoef, dbias, dout, out, coef, C, H)
    else:
        lenet_lanes_pool_backward_d(x, dcoef, dbias, dout, out, coef, C, H)


cdef inline void _lanes_c1_backward(floating* dw, floating* db, const floating* dout,
                                    const floating* x) noexcept nogil:
    if floating is float:
        lenet_lanes_c1_backward_f(dw, db, dout, x)
    else:
        lenet_lanes_c1_backward_d(dw, db, dout, x)


cdef inline void _lanes_c3_backward(floating* x, floating* dw, floating* db, const floating* dout,
                                    const floating* w, const unsigned char* table, bint squash) noexcept nogil:
    # x, C3's input, replaced by its gradient (squash: through the squash at x)
    if floating is float:
        lenet_lanes_c3_backward_f(x, dw, db, dout, w, table, squash)
    else:
        lenet_lanes_c3_backward_d(x, dw, db, dout, w, table, squash)


cdef inline void _lanes_fold(floating* g, floating* partials, int n) noexcept nogil:
    # g[t] += the sum of partial t's lanes, t < n; the partials are zeroed
    if floating is float:
        lenet_lanes_fold_f(g, partials, n)
    else:
        lenet_lanes_fold_d(g, partials, n)


cdef inline void _lanes_rbf_backward(floating* dx, const floating* dout, const floating* x,
                                     const floating* centers, int F, int K) noexcept nogil:
    if floating is float:
        lenet_lanes_rbf_backward_f(dx, dout, x, centers, F, K)
    else:
        lenet_lanes_rbf_backward_d(dx, dout, x, centers, F, K)


cdef inline void _lanes_dense_backward(floating* dx, const floating* dout, const floating* w, int F,
                                       int K) noexcept nogil:
    # a dense layer's input gradient w^T dout, in lanes
    if floating is float:
        lenet_lanes_dense_backward_f(dx, dout, w, F, K)
    else:
        lenet_lanes_dense_backward_d(dx, dout, w, F, K)


cdef inline void _dense_weight_grad(floating* dw, floating* db, const floating* dout, const floating* x, int F,
                                    int K, Py_ssize_t stride, int n) noexcept nogil:
    # a dense layer's parameter gradients summed over n samples stored a row each, stride apart
    if floating is float:
        lenet_dense_weight_grad_f(dw, db, dout, x, F, K, stride, n)
    else:
        lenet_dense_weight_grad_d(dw, db, dout, x, F, K, stride, n)
