/* The forward pass with a block of samples in the lanes: for one element type T with BV a vector of
 * BL = LENET_VECTOR_BYTES / sizeof(T) values, one register of the target ISA (16 floats or 8 doubles
 * with AVX-512, 8 or 4 with AVX2, 4 or 2 with SSE2 or NEON). A block's activations are stored value by
 * value, each value's BL samples side by side: (C, H, W, BL). Every layer is then the scalar loop of one
 * sample with vectors for scalars: no lane is wasted on C3's unconnected maps or an output row's edge,
 * no horizontal sum is needed, and each weight is one broadcast. Included by fused_simd.h once per type,
 * after fused_dense_template.h, with FN(name) naming the specialisation and BVI the comparison type.
 *
 * Each sample's sums are those of the one-sample kernels, in the same order (the convolutions: bias,
 * then c, i, j ascending; the dense layers: the 16 partial sums of _dense_forward_one, added as
 * lenet_sum_lanes; the RBF likewise), so a sample's outputs do not depend on the samples it is
 * computed with (bit for bit: tests/test_train_kernel.py). C3 skips the pairs outside the
 * table, where the one-sample kernel adds 0 * x: the same sum (at most a zero's sign differs). The
 * modern variant's inference takes C3 to S4 from winograd_template.h instead (its own sums, the same in
 * both layouts). */


static inline int FN(lenet_lanes_load)(T* restrict a, const T* restrict x, const int64_t* restrict idx)
{
    /* the BL images x[idx[s]] (x[s] if idx is NULL) of x (N, 32, 32) -> a (32, 32, BL), a row of the
     * images at a time. Returns whether every value is finite, checked as each row comes from memory
     * (the copy then reads it from the L1 cache): v - v is 0 for a finite v and NaN for NaN or +-inf
     * (four sums, so that each addition need not wait for the one before) */
    const int area = LENET_C1_H * LENET_C1_H;
    const T* image[BL];
    BV check[4] = {{0}, {0}, {0}, {0}};
    for (int s = 0; s < BL; s++)
        image[s] = x + (idx ? idx[s] : s) * area;
    for (int p0 = 0; p0 < area; p0 += LENET_C1_H) {
        for (int s = 0; s < BL; s++)
            for (int q = 0; q < LENET_C1_H; q += BL) {
                const BV v = *(const BV*)(image[s] + p0 + q);
                check[s % 4] += v - v;
            }
        for (int p = p0; p < p0 + LENET_C1_H; p++)
            for (int s = 0; s < BL; s++)
                a[p * BL + s] = image[s][p];
    }
    const BV sum = (check[0] + check[1]) + (check[2] + check[3]);
    for (int s = 0; s < BL; s++)
        if (sum[s] != 0)
            return 0;
    return 1;
}

static inline void FN(lenet_lanes_store)(T* restrict rows, const T* restrict a, int K, ptrdiff_t stride, int n)
{
    /* a (K, BL) -> rows (n, K), stride apart, from the lanes 0 .. n - 1 (a may point at a later lane) */
    for (int s = 0; s < n; s++)
        for (int k = 0; k < K; k++)
            rows[s * stride + k] = a[k * BL + s];
}

static inline void FN(lenet_lanes_take)(T* restrict a, const T* restrict rows, int K, ptrdiff_t stride, int n)
{
    /* rows (n, K), stride apart -> the lanes 0 .. n - 1 of a (K, BL) */
    for (int s = 0; s < n; s++)
        for (int k = 0; k < K; k++)
            a[k * BL + s] = rows[s * stride + k];
}

static inline __attribute__((always_inline)) void
FN(lenet_lanes_conv_row)(BV* restrict out, const BV* restrict x, const T* restrict w, T bias,
                         const unsigned char* restrict connected, int C, int H, const int block, int relu)
{
    /* `block` outputs of one output row of one map: out[p] = bias + sum over the connected c, then i, j
     * of w[c, i, j] x[c, i, p + j] (with relu, then _relu's max(., 0)); x: the row's first input, H x H
     * maps. With 32 registers a kernel row's 5 weights stay in registers while the row's inputs stream
     * past, each loaded once; with 16 the sums and one weight do, and each input is loaded where it is
     * used (kept, they would not fit: gcc would spill the sums) */
    BV acc[16];
    for (int p = 0; p < block; p++)
        acc[p] = (BV){0} + bias;    /* as the one-sample kernels (a bias of -0 gives +0) */
    for (int c = 0; c < C; c++) {
        if (!connected[c])
            continue;
        for (int i = 0; i < LENET_K; i++) {
            const BV* row = x + (c * H + i) * H;
            const T* wi = w + (c * LENET_K + i) * LENET_K;
#if LENET_SUMS_32
            BV wv[LENET_K];
            for (int j = 0; j < LENET_K; j++)
                wv[j] = BVEC(wi[j]);
            for (int p = 0; p < block; p++)
                for (int j = 0; j < LENET_K; j++)
                    acc[p] += wv[j] * row[p + j];
#else
            for (int j = 0; j < LENET_K; j++) {     /* each sum's terms in the same order as above */
                const BV wj = BVEC(wi[j]);
                const BV* shifted = row + j;
                LENET_FRESH_POINTER(shifted);
                for (int p = 0; p < block; p++)
                    acc[p] += wj * shifted[p];
            }
#endif
        }
    }
    for (int p = 0; p < block; p++)
        out[p] = relu ? LANES_SELECT(acc[p] > 0, acc[p], (BV){0}) : acc[p];
}

static inline void FN(lenet_lanes_c1_rows)(T* restrict out, const T* restrict x, const T* restrict w,
                                           const T* restrict b, int k, int y, int rows, int relu)
{
    /* x (32, 32, BL), w (6, 1, 5, 5), b (6,) -> out (rows, 28, BL): the rows y .. y + rows - 1 of C1's
     * map k, with relu (the modern variant) through the ReLU; half a row at a time */
    enum { BLOCK = LENET_C1_O / 2 };
    static const unsigned char one = 1;
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < LENET_C1_O; p += BLOCK)
            FN(lenet_lanes_conv_row)((BV*)out + r * LENET_C1_O + p, (const BV*)x + (y + r) * LENET_C1_H + p,
                                     w + k * LENET_K * LENET_K, b[k], &one, 1, LENET_C1_H, BLOCK, relu);
}

static inline void FN(lenet_lanes_c1)(T* restrict out, const T* restrict x, const T* restrict w,
                                      const T* restrict b, int relu)
{
    /* x (32, 32, BL) -> out (6, 28, 28, BL): all of C1 */
    for (int k = 0; k < LENET_C1_OUT; k++)
        FN(lenet_lanes_c1_rows)(out + k * LENET_C1_O * LENET_C1_O * BL, x, w, b, k, 0, LENET_C1_O, relu);
}

static inline void FN(lenet_lanes_c3)(T* restrict out, const T* restrict x, const T* restrict w,
                                      const T* restrict b, const unsigned char* restrict table, int relu)
{
    /* x (6, 14, 14, BL), w (16, 6, 5, 5), b (16,), table (6, 16) -> out (16, 10, 10, BL), with relu
     * through the ReLU; a whole row at a time */
    enum { BLOCK = LENET_C3_O };
    for (int k = 0; k < LENET_C3_OUT; k++) {
        unsigned char connected[LENET_C3_IN];
        for (int c = 0; c < LENET_C3_IN; c++)
            connected[c] = table[c * LENET_C3_OUT + k];
        for (int y = 0; y < LENET_C3_O; y++)
            for (int p = 0; p < LENET_C3_O; p += BLOCK)
                FN(lenet_lanes_conv_row)((BV*)out + (k * LENET_C3_O + y) * LENET_C3_O + p,
                                         (const BV*)x + y * LENET_C3_H + p,
                                         w + k * LENET_C3_IN * LENET_K * LENET_K, b[k], connected,
                                         LENET_C3_IN, LENET_C3_H, BLOCK, relu);
    }
}

static inline void FN(lenet_lanes_pool_rows)(T* restrict out, const T* restrict x, const T* restrict coef,
                                             const T* restrict bias, int c, int rows, int H)
{
    /* x (2 rows, H, BL), rows of map c -> out (rows, H/2, BL): with coef, the paper's subsampling, as
     * _subsample_forward_one (coef[c] (sum of the 2x2 block) + bias[c]); else (coef NULL) the maximum
     * of the block, as _max_block */
    const int O = H / 2;
    const BV* in = (const BV*)x;
    BV* o = (BV*)out;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < O; j++) {
            const BV* top = in + 2 * i * H + 2 * j;
            const BV* bottom = top + H;
            BV r;
            if (coef) {
                r = BVEC(coef[c]) * (top[0] + top[1] + bottom[0] + bottom[1]) + bias[c];
            } else {
                r = top[0];
                r = LANES_SELECT(top[1] > r, top[1], r);
                r = LANES_SELECT(bottom[0] > r, bottom[0], r);
                r = LANES_SELECT(bottom[1] > r, bottom[1], r);
            }
            o[i * O + j] = r;
        }
}

static inline void FN(lenet_lanes_pool)(T* restrict out, const T* restrict x, const T* restrict coef,
                                        const T* restrict bias, int C, int H)
{
    /* x (C, H, H, BL) -> out (C, H/2, H/2, BL), each map as lenet_lanes_pool_rows */
    const int O = H / 2;
    for (int c = 0; c < C; c++)
        FN(lenet_lanes_pool_rows)(out + c * O * O * BL, x + c * H * H * BL, coef, bias, c, O, H);
}

static inline __attribute__((always_inline)) void
FN(lenet_lanes_partial_sums)(BV (*restrict part)[16], const BV* restrict x, const T* restrict w, const int F,
                             const int outs, const int width, const int rbf)
{
    /* the 16 partial sums of _dense_forward_one (with rbf, of _rbf_forward_one) of `outs` outputs, whose
     * weight rows w (outs, F) are: part[o][l] = the sum over f = l (mod 16), f ascending, of w[o, f] x[f]
     * (with rbf, of (x[f] - w[o, f])^2); `width` of them at a time, so that outs x width sums are in
     * registers and each loaded x[f] serves `outs` of them */
    const int full = F - F % 16;
    /* the weight and input of output o at f + l, from pointers that advance by 16 (so that every
     * offset is a constant, not an index register) */
#define TERM(o, l) (rbf ? (xf[l] - wf[(o) * F + (l)]) * (xf[l] - wf[(o) * F + (l)]) : BVEC(wf[(o) * F + (l)]) * xf[l])
    for (int l0 = 0; l0 < 16; l0 += width) {
        BV acc[4][16];
        for (int o = 0; o < outs; o++)
            for (int l = 0; l < width; l++)
                acc[o][l] = (BV){0};
        const T* wf = w + l0;
        const BV* xf = x + l0;
        for (int f = 0; f < full; f += 16, wf += 16, xf += 16)
            for (int o = 0; o < outs; o++)
                for (int l = 0; l < width; l++)
                    acc[o][l] += TERM(o, l);
        for (int o = 0; o < outs; o++)
            for (int l = 0; l < width; l++) {
                if (l0 + l < F - full)
                    acc[o][l] += TERM(o, l);
                part[o][l0 + l] = acc[o][l];
            }
    }
#undef TERM
}

static inline __attribute__((always_inline)) void
FN(lenet_lanes_dense_rows)(T* restrict out, const T* restrict x, const T* restrict w, const T* restrict b,
                           const int F, int first, int end, const int outs, const int width)
{
    /* the outputs first .. end - 1 of lenet_lanes_dense (end - first a multiple of outs), `outs` at a
     * time */
    for (int k = first; k < end; k += outs) {
        BV a[4][16];
        if (b)
            FN(lenet_lanes_partial_sums)(a, (const BV*)x, w + (ptrdiff_t)k * F, F, outs, width, 0);
        else
            FN(lenet_lanes_partial_sums)(a, (const BV*)x, w + (ptrdiff_t)k * F, F, outs, width, 1);
        for (int o = 0; o < outs; o++) {
            const BV sum = LENET_SUM16(a[o]);
            if (b)
                ((BV*)out)[k + o] = b[k + o] + sum;
            else
                ((BV*)out)[k + o] = sum;
        }
    }
}

static inline __attribute__((always_inline)) void
FN(lenet_lanes_dense_f)(T* restrict out, const T* restrict x, const T* restrict w, const T* restrict b,
                        const int F, int K)
{
    /* 4 outputs x 4 partial sums at a time (with fewer than 32 registers, 2 x 4), then the outputs
     * left one by one */
    enum { OUTS = LENET_SUMS_32 ? 4 : 2 };
    const int grouped = K - K % OUTS;
    FN(lenet_lanes_dense_rows)(out, x, w, b, F, 0, grouped, OUTS, 4);
    FN(lenet_lanes_dense_rows)(out, x, w, b, F, grouped, K, 1, LENET_SUMS_32 ? 16 : 8);
}

static inline void FN(lenet_lanes_dense)(T* restrict out, const T* restrict x, const T* restrict w,
                                         const T* restrict b, int F, int K)
{
    /* x (F, BL), w (K, F), b (K,) -> out (K, BL) = b + w x: each output's 16 partial sums, added as
     * lenet_sum_lanes; b NULL: the RBF, out[k] = |x - w[k]|^2. A case for each layer's F, so that every
     * weight's offset in the loops is a constant (with F a variable, the 16 offsets do not fit in
     * registers) */
    switch (F) {
    case 400: FN(lenet_lanes_dense_f)(out, x, w, b, 400, K); break;
    case 120: FN(lenet_lanes_dense_f)(out, x, w, b, 120, K); break;
    case 84: FN(lenet_lanes_dense_f)(out, x, w, b, 84, K); break;
    default: FN(lenet_lanes_dense_f)(out, x, w, b, F, K); break;
    }
}
