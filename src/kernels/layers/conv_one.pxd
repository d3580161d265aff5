# One sample's convolution through a connection table, forward and backward (cimported and inlined).
from cython cimport floating
from libc.string cimport memcpy, memset

from lanes cimport LANES, _add_lanes, _dot_lanes, _sq, _sum_lanes

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
