# The per-sample layer math, one implementation of each layer: cimported (and inlined) by the per-layer
# kernel modules (conv, pool, dense, activation, output) and by the fused kernels (train), which take
# their convolutions and dense layers from fused_simd.h instead.
# Raw pointers to one sample's contiguous arrays; the callers check shapes and own the threading.
from cython cimport floating
from libc.math cimport copysignf, exp, fabsf, log, tanh
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

cdef enum:
    LANES = 16      # partial sums of a reduction: one float32 AVX-512 vector, two float64 ones


# --- reductions: spread over LANES partial sums added in a fixed order --------------------------------
# Without reassociation (no -ffast-math) a plain `s += a[i] * b[i]` loop is one dependent add after
# another; with lanes the loop is elementwise, so it vectorises (and the order stays fixed).

cdef inline floating _sq(floating v, bint squared) noexcept nogil:
    return v * v if squared else v


cdef inline void _dot_lanes(floating* acc, const floating* a, const floating* b, Py_ssize_t n,
                            bint squared) noexcept nogil:
    # acc[l] += a[i] * b[i] (b[i]^2 if squared) for every i = l (mod LANES)
    cdef Py_ssize_t i, l, full = n - n % LANES
    for i in range(n // LANES):
        for l in range(LANES):
            acc[l] += a[i * LANES + l] * _sq(b[i * LANES + l], squared)
    for l in range(n - full):
        acc[l] += a[full + l] * _sq(b[full + l], squared)


cdef inline void _add_lanes(floating* acc, const floating* a, Py_ssize_t n) noexcept nogil:
    # acc[l] += a[i] for every i = l (mod LANES)
    cdef Py_ssize_t i, l, full = n - n % LANES
    for i in range(n // LANES):
        for l in range(LANES):
            acc[l] += a[i * LANES + l]
    for l in range(n - full):
        acc[l] += a[full + l]


cdef inline floating _sum_lanes(const floating* a) noexcept nogil:
    # the LANES (= 16) partial sums added pairwise in a fixed order: (a[l] + a[l + 8]), then those four
    # apart, then two apart
    return ((((a[0] + a[8]) + (a[4] + a[12])) + ((a[2] + a[10]) + (a[6] + a[14])))
            + (((a[1] + a[9]) + (a[5] + a[13])) + ((a[3] + a[11]) + (a[7] + a[15]))))


# --- activations: f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (constants.SQUASH_A/S), and ReLU -------
# Backward needs only the output y: squash' = (S / A)(A^2 - y^2), relu' = [y > 0].

cdef inline float _tanh_float(float a) noexcept nogil:
    # tanh for float32 as x R(x^2), R = P/Q a rational fit of tanh(x)/x on [0, 9] (relative error 2e-8;
    # tools/tanh_fit.py derives it), and 1 from |x| = 9 on, where tanh rounds to 1. Within 6 ulp of the
    # correctly rounded tanh (tests/test_train_kernel.py). Branch-free float arithmetic, so the loops
    # around it vectorise over 16 lanes (the C library's tanhf is a call per element); NaN stays NaN.
    # (float constants and selects of computed values only: with a float operation inside a branch, gcc
    # keeps the branch, under -ftrapping-math, and the loop does not vectorise)
    cdef float x = fabsf(a), s, p, q, t
    x = <float>9 if x > 9 else x
    s = x * x
    p = <float>1.3354746710220007e-08
    p = p * s + <float>2.0609148566457637e-05
    p = p * s + <float>3.4955923341803944e-03
    p = p * s + <float>1.3381029230364119e-01
    p = p * s + <float>9.9999997944686347e-01
    q = <float>7.7765946171614486e-07
    q = q * s + <float>3.2856415771671230e-04
    q = q * s + <float>2.5876998362629498e-02
    q = q * s + <float>4.6714344823798870e-01
    q = q * s + 1
    t = x * p / q
    t = 1 if x == 9 else t
    return copysignf(t, a)


cdef inline floating _squash(floating a) noexcept nogil:
    if floating is float:
        return <float>1.7159 * _tanh_float(<float>(2.0 / 3.0) * a)
    else:
        return 1.7159 * tanh((2.0 / 3.0) * a)


cdef inline floating _squash_derivative(floating y) noexcept nogil:
    return <floating>((2.0 / 3.0) / 1.7159) * (<floating>(1.7159 * 1.7159) - y * y)


cdef inline floating _relu(floating a) noexcept nogil:
    return a if a > 0 else 0


cdef inline floating _relu_backward(floating dy, floating y) noexcept nogil:
    return dy if y > 0 else 0


# --- convolution: out[k] = b[k] + sum_{c: table[c, k]} corr(x[c], w[k, c]), valid, stride 1 ---------
# An output map (or its gradient) is handled "wide": with the input's row stride W, Ho rows of Wo
# values and kw - 1 spare columns (none after the last row), L = (Ho - 1) * W + Wo values in all.
# Kernel row (c, i) then pairs the wide map with x[c] (or dx[c]) read contiguously from row i on, so
# its taps are long contiguous loops that vectorise. The spare columns hold junk (forward) or zeros
# (backward, where they add nothing: x is finite); backward also pads the map with kw - 1 zeros on
# both sides, so that dx (the full convolution) is the forward loop with the kernel row reversed.

cdef inline Py_ssize_t _wide_size(Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw) noexcept nogil:
    # L + 2 (kw - 1) + kw: the scratch the convolution helpers need (backward keeps a kernel row there)
    return (H - kh) * W + W + 2 * kw - 1


cdef inline void _row_taps(floating* wide, const floating* wrow, const floating* xs, Py_ssize_t L,
                           Py_ssize_t kw) noexcept nogil:
    # wide[q] += wrow[0] xs[q] + wrow[1] xs[q + 1] + ... (in that order): a kernel row in one pass
    cdef Py_ssize_t q, j
    cdef floating s
    for q in range(L):
        s = wide[q]
        for j in range(kw):
            s = s + wrow[j] * xs[q + j]
        wide[q] = s


cdef inline void _five_taps(floating* a0, floating* a1, floating* a2, floating* a3, floating* a4,
                            const floating* d, const floating* s, Py_ssize_t n, bint squared) noexcept nogil:
    # a_j[l] += d[l] * s[l + j] (s squared if squared) for j < 5, l < n <= LANES
    cdef Py_ssize_t l
    for l in range(n):
        a0[l] += d[l] * _sq(s[l], squared)
        a1[l] += d[l] * _sq(s[l + 1], squared)
        a2[l] += d[l] * _sq(s[l + 2], squared)
        a3[l] += d[l] * _sq(s[l + 3], squared)
        a4[l] += d[l] * _sq(s[l + 4], squared)


cdef inline void _row_taps_dweight(floating* dwrow, const floating* wide, const floating* xs, Py_ssize_t L,
                                   Py_ssize_t kw, bint squared) noexcept nogil:
    # dwrow[j] += sum_q wide[q] * xs[q + j] (xs squared if squared) for j < kw, each through LANES
    # partial sums; a 5-wide row (LeNet-5's kernels) in one pass with five independent accumulators
    cdef Py_ssize_t i, j, full = L - L % LANES
    cdef floating a0[LANES]
    cdef floating a1[LANES]
    cdef floating a2[LANES]
    cdef floating a3[LANES]
    cdef floating a4[LANES]
    if kw != 5:
        for j in range(kw):
            memset(a0, 0, sizeof(a0))
            _dot_lanes(a0, wide, xs + j, L, squared)
            dwrow[j] += _sum_lanes(a0)
        return
    memset(a0, 0, sizeof(a0))
    memset(a1, 0, sizeof(a1))
    memset(a2, 0, sizeof(a2))
    memset(a3, 0, sizeof(a3))
    memset(a4, 0, sizeof(a4))
    # full chunks of exactly LANES (which keeps the accumulators in registers), then the rest; the
    # flag as a constant in each branch, so that the compiler specialises the loop for it
    for i in range(L // LANES):
        if squared:
            _five_taps(a0, a1, a2, a3, a4, wide + i * LANES, xs + i * LANES, LANES, True)
        else:
            _five_taps(a0, a1, a2, a3, a4, wide + i * LANES, xs + i * LANES, LANES, False)
    _five_taps(a0, a1, a2, a3, a4, wide + full, xs + full, L - full, squared)
    dwrow[0] += _sum_lanes(a0)
    dwrow[1] += _sum_lanes(a1)
    dwrow[2] += _sum_lanes(a2)
    dwrow[3] += _sum_lanes(a3)
    dwrow[4] += _sum_lanes(a4)


cdef inline void _conv_forward_one(floating* out, floating* wide, const floating* x, const floating* w,
                                   const floating* b, const unsigned char* table, Py_ssize_t C, Py_ssize_t H,
                                   Py_ssize_t W, Py_ssize_t K, Py_ssize_t kh, Py_ssize_t kw) noexcept nogil:
    # x (C, H, W), w (K, C, kh, kw), b (K,), table (C, K) -> out (K, Ho, Wo); wide: _wide_size scratch
    cdef Py_ssize_t Ho = H - kh + 1, Wo = W - kw + 1, L = (Ho - 1) * W + Wo
    cdef Py_ssize_t k, c, i, y, q
    cdef const floating* wrow
    cdef const floating* xs
    for k in range(K):
        for q in range(L):
            wide[q] = b[k]
        for c in range(C):
            if not table[c * K + k]:
                continue
            for i in range(kh):
                wrow = w + ((k * C + c) * kh + i) * kw
                xs = x + (c * H + i) * W
                if kw == 5:         # LeNet-5's kernels: a constant width lets the compiler unroll the taps
                    _row_taps(wide, wrow, xs, L, 5)
                else:
                    _row_taps(wide, wrow, xs, L, kw)
        for y in range(Ho):
            memcpy(out + (k * Ho + y) * Wo, wide + y * W, Wo * sizeof(floating))


cdef inline void _conv_backward_one(floating* dx, floating* dw, floating* db, floating* wide,
                                    const floating* dout, const floating* x, const floating* w,
                                    const unsigned char* table, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                    Py_ssize_t K, Py_ssize_t kh, Py_ssize_t kw, bint squared) noexcept nogil:
    # dout (K, Ho, Wo), x (C, H, W) -> dx (C, H, W) overwritten; dw (K, C, kh, kw), db (K,) accumulated;
    # wide: _wide_size scratch
    cdef Py_ssize_t Ho = H - kh + 1, Wo = W - kw + 1, L = (Ho - 1) * W + Wo
    cdef Py_ssize_t k, c, i, j, y
    cdef floating acc[LANES]
    cdef floating row5[5]
    cdef const floating* wrow
    cdef floating* map = wide + kw - 1            # the wide map, after its leading zeros
    cdef floating* flipped = map + L + kw - 1     # a kernel row reversed (squared if squared)
    memset(dx, 0, C * H * W * sizeof(floating))
    for k in range(K):
        memset(acc, 0, sizeof(acc))
        _add_lanes(acc, dout + k * Ho * Wo, Ho * Wo)
        db[k] += _sum_lanes(acc)
        memset(wide, 0, (L + 2 * (kw - 1)) * sizeof(floating))
        for y in range(Ho):
            memcpy(map + y * W, dout + (k * Ho + y) * Wo, Wo * sizeof(floating))
        for c in range(C):
            if not table[c * K + k]:
                continue
            for i in range(kh):
                _row_taps_dweight(dw + ((k * C + c) * kh + i) * kw, map, x + (c * H + i) * W, L, kw, squared)
                # dx[c] from row i on: dx[p] += sum_j w[j] map[p - j], map read as zero outside 0..L-1
                wrow = w + ((k * C + c) * kh + i) * kw
                if kw == 5:         # as in the forward pass, with the row where it cannot alias dx
                    for j in range(5):
                        row5[j] = _sq(wrow[4 - j], squared)
                    _row_taps(dx + (c * H + i) * W, row5, wide, L + 4, 5)
                else:
                    for j in range(kw):
                        flipped[j] = _sq(wrow[kw - 1 - j], squared)
                    _row_taps(dx + (c * H + i) * W, flipped, wide, L + kw - 1, kw)


# --- pooling: trainable subsampling coef * (sum of the 2x2 block) + bias, and 2x2 max pooling -------

cdef inline void _subsample_forward_one(floating* out, const floating* x, const floating* coef,
                                        const floating* bias, Py_ssize_t C, Py_ssize_t H,
                                        Py_ssize_t W) noexcept nogil:
    # x (C, H, W) -> out (C, H/2, W/2)
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j
    cdef const floating* top
    cdef const floating* bottom
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            for j in range(Wo):
                out[(c * Ho + i) * Wo + j] = coef[c] * (top[2 * j] + top[2 * j + 1]
                                                        + bottom[2 * j] + bottom[2 * j + 1]) + bias[c]


cdef inline void _subsample_backward_one(floating* dx, floating* dcoef, floating* dbias, const floating* dout,
                                         const floating* x, const floating* coef, Py_ssize_t C, Py_ssize_t H,
                                         Py_ssize_t W, bint squared) noexcept nogil:
    # dout (C, H/2, W/2) -> dx (C, H, W) overwritten; dcoef, dbias (C,) accumulated
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j
    cdef floating d, dc, dsum, cc
    cdef const floating* top
    cdef const floating* bottom
    cdef floating* dtop
    cdef floating* dbottom
    for c in range(C):
        dc = 0
        dsum = 0
        cc = coef[c] * coef[c] if squared else coef[c]
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            dtop = dx + (c * H + 2 * i) * W
            dbottom = dtop + W
            for j in range(Wo):
                d = dout[(c * Ho + i) * Wo + j]
                dsum = dsum + d
                if squared:
                    dc = dc + d * (top[2 * j] * top[2 * j] + top[2 * j + 1] * top[2 * j + 1]
                                   + bottom[2 * j] * bottom[2 * j] + bottom[2 * j + 1] * bottom[2 * j + 1])
                else:
                    dc = dc + d * (top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1])
                dtop[2 * j] = cc * d
                dtop[2 * j + 1] = cc * d
                dbottom[2 * j] = cc * d
                dbottom[2 * j + 1] = cc * d
        dcoef[c] += dc
        dbias[c] += dsum


cdef inline Py_ssize_t _max_block(const floating* top, const floating* bottom, Py_ssize_t j,
                                  floating* largest) noexcept nogil:
    # index 0..3 (row-major) of the first maximal element of a 2x2 block, its value into largest; a NaN
    # never wins a comparison (a leading NaN is kept). Selects, not branches: the maxima of random data
    # are unpredictable, and the loops around it vectorise.
    cdef floating m = top[2 * j], v
    cdef Py_ssize_t best = 0
    v = top[2 * j + 1]
    best = 1 if v > m else best
    m = v if v > m else m
    v = bottom[2 * j]
    best = 2 if v > m else best
    m = v if v > m else m
    v = bottom[2 * j + 1]
    best = 3 if v > m else best
    m = v if v > m else m
    largest[0] = m
    return best


cdef inline void _maxpool_forward_one(floating* out, const floating* x, Py_ssize_t C, Py_ssize_t H,
                                      Py_ssize_t W) noexcept nogil:
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j
    cdef const floating* top
    cdef const floating* bottom
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            for j in range(Wo):
                _max_block(top, bottom, j, &out[(c * Ho + i) * Wo + j])


cdef inline void _maxpool_backward_one(floating* dx, const floating* dout, const floating* x, Py_ssize_t C,
                                       Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    # each block's gradient goes to its maximum, zeros to the other three (all four written: no
    # scatter, and the loop vectorises); an odd last row or column gets zeros
    cdef Py_ssize_t Ho = H // 2, Wo = W // 2, c, i, j, best
    cdef floating largest, d
    cdef const floating* top
    cdef const floating* bottom
    cdef floating* dtop
    cdef floating* dbottom
    if H % 2 or W % 2:
        memset(dx, 0, C * H * W * sizeof(floating))
    for c in range(C):
        for i in range(Ho):
            top = x + (c * H + 2 * i) * W
            bottom = top + W
            dtop = dx + (c * H + 2 * i) * W
            dbottom = dtop + W
            for j in range(Wo):
                best = _max_block(top, bottom, j, &largest)
                d = dout[(c * Ho + i) * Wo + j]
                dtop[2 * j] = d if best == 0 else 0
                dtop[2 * j + 1] = d if best == 1 else 0
                dbottom[2 * j] = d if best == 2 else 0
                dbottom[2 * j + 1] = d if best == 3 else 0


# --- fully connected: out[k] = b[k] + sum_f w[k, f] x[f] ----------------------------------------------

cdef inline void _dense_forward_one(floating* out, const floating* x, const floating* w, const floating* b,
                                    Py_ssize_t F, Py_ssize_t K) noexcept nogil:
    # x (F,), w (K, F), b (K,) -> out (K,)
    cdef Py_ssize_t k
    cdef floating acc[LANES]
    for k in range(K):
        memset(acc, 0, sizeof(acc))
        _dot_lanes(acc, w + k * F, x, F, False)
        out[k] = b[k] + _sum_lanes(acc)


cdef inline void _dense_backward_one(floating* dx, floating* dw, floating* db, const floating* dout,
                                     const floating* x, const floating* w, Py_ssize_t F,
                                     Py_ssize_t K, bint squared) noexcept nogil:
    # dout (K,) -> dx (F,) overwritten; dw (K, F), db (K,) accumulated
    cdef Py_ssize_t k, f
    cdef floating d
    cdef const floating* row
    cdef floating* drow
    memset(dx, 0, F * sizeof(floating))
    for k in range(K):
        d = dout[k]
        row = w + k * F
        drow = dw + k * F
        if squared:
            for f in range(F):
                dx[f] += d * (row[f] * row[f])
                drow[f] += d * (x[f] * x[f])
        else:
            for f in range(F):
                dx[f] += d * row[f]
                drow[f] += d * x[f]
        db[k] += d


# --- Euclidean RBF output (Eq. 7) and the losses on the scores --------------------------------------

cdef enum:
    MSE = 0             # Eq. 8: the penalty of the correct class
    MAP = 1             # Eq. 9: y_D + log(e^-j + sum_i e^-y_i)
    CROSS_ENTROPY = 2   # softmax cross-entropy on logits (modern variant)


cdef inline void _rbf_forward_one(floating* out, const floating* x, const floating* centers, Py_ssize_t F,
                                  Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating s, d
    for i in range(K):
        s = 0
        for j in range(F):
            d = x[j] - centers[i * F + j]
            s = s + d * d
        out[i] = s


cdef inline void _rbf_backward_one(floating* dx, const floating* dout, const floating* x,
                                   const floating* centers, Py_ssize_t F, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating g
    for j in range(F):
        dx[j] = 0
    for i in range(K):
        g = 2 * dout[i]
        for j in range(F):
            dx[j] += g * (x[j] - centers[i * F + j])


cdef inline double _log_partition(const floating* s, Py_ssize_t K, int kind, double j) noexcept nogil:
    # MAP: log(e^-j + sum_i e^-s_i); cross-entropy: log(sum_i e^s_i); in double, shifted by the largest
    # exponent
    cdef Py_ssize_t i
    cdef double m, acc = 0
    if kind == MAP:
        m = j
        for i in range(K):
            if s[i] < m:
                m = s[i]
        acc = exp(m - j)
        for i in range(K):
            acc += exp(m - s[i])
        return -m + log(acc)
    m = s[0]
    for i in range(1, K):
        if s[i] > m:
            m = s[i]
    for i in range(K):
        acc += exp(s[i] - m)
    return m + log(acc)


cdef inline double _loss_one(const floating* s, int64_t label, Py_ssize_t K, int kind, double j) noexcept nogil:
    if kind == MSE:
        return s[label]
    if kind == MAP:
        return s[label] + _log_partition(s, K, kind, j)
    return _log_partition(s, K, kind, j) - s[label]


cdef inline void _loss_backward_one(floating* ds, const floating* s, int64_t label, Py_ssize_t K, int kind,
                                    double j, double scale) noexcept nogil:
    # ds = scale * d(loss)/d(scores) (scale = 1/N for a batch mean), overwritten
    cdef Py_ssize_t i
    cdef double z
    if kind == MSE:
        for i in range(K):
            ds[i] = 0
    else:
        z = _log_partition(s, K, kind, j)
        for i in range(K):
            if kind == MAP:
                ds[i] = <floating>(-scale * exp(-s[i] - z))     # minus the posterior of class i
            else:
                ds[i] = <floating>(scale * exp(s[i] - z))       # softmax
    if kind == CROSS_ENTROPY:
        ds[label] -= <floating>scale
    else:
        ds[label] += <floating>scale
