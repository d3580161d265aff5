/* The backward pass of the convolutional layers (C1 to S4) for a block of samples in the lanes, the
 * layout of fused_lanes_template.h: (C, H, W, BL), each value's BL samples side by side. Included by
 * fused_simd.h after it, once per type.
 *
 * Parameter gradients stay per lane over a whole batch ("partials": a vector BV per parameter, each
 * lane one sample's share), added across the lanes once per batch (lenet_lanes_fold): no horizontal
 * sum per sample. Like the forward pass, C3 goes through the connected pairs only. */

static inline void FN(lenet_lanes_fold)(T* restrict g, T* restrict partials, int n)
{
    /* g[t] += the sum of partial t's lanes (added pairwise, halves first: a fixed order), for t < n;
     * the partials are zeroed */
    BV* part = (BV*)partials;
    for (int t = 0; t < n; t++) {
        T v[BL];
        memcpy(v, &part[t], sizeof(v));
        for (int half = BL / 2; half >= 1; half /= 2)
            for (int l = 0; l < half; l++)
                v[l] += v[l + half];
        g[t] += v[0];
        part[t] = (BV){0};
    }
}

static inline void FN(lenet_lanes_pool_backward)(T* restrict dx, T* restrict coef_partials,
                                                 T* restrict bias_partials, const T* restrict dout,
                                                 const T* restrict x, const T* restrict coef, int C, int H)
{
    /* x (C, H, H, BL): the pool's input; dout (C, H/2, H/2, BL) -> dx (C, H, H, BL), overwritten.
     * With coef, the paper's subsampling (as _subsample_backward_one): coef[c] dout at each of a block's
     * four inputs, and the partials dcoef[c] += dout (the block's sum), dbias[c] += dout. Else (coef
     * NULL, the partials unused) max pooling: dout at each block's first maximum (the comparisons of
     * _max_block), 0 at the other three. */
    BV* dcoef = (BV*)coef_partials;
    BV* dbias = (BV*)bias_partials;
    const int O = H / 2;
    const BV* in = (const BV*)x;
    const BV* d = (const BV*)dout;
    BV* o = (BV*)dx;
    const BV zero = {0};
    for (int c = 0; c < C; c++) {
        BV dc = {0}, ds = {0};
        for (int i = 0; i < O; i++)
            for (int j = 0; j < O; j++) {
                const BV* top = in + (c * H + 2 * i) * H + 2 * j;
                const BV* bottom = top + H;
                BV* dtop = o + (c * H + 2 * i) * H + 2 * j;
                BV* dbottom = dtop + H;
                const BV dv = d[(c * O + i) * O + j];
                if (coef) {
                    ds = ds + dv;
                    dc = dc + dv * (top[0] + top[1] + bottom[0] + bottom[1]);
                    const BV v = coef[c] * dv;
                    dtop[0] = dtop[1] = dbottom[0] = dbottom[1] = v;
                } else {
                    const BVI g1 = top[1] > top[0];
                    const BV m1 = LANES_SELECT(g1, top[1], top[0]);
                    const BVI g2 = bottom[0] > m1;
                    const BV m2 = LANES_SELECT(g2, bottom[0], m1);
                    const BVI g3 = bottom[1] > m2;
                    const BV to3 = LANES_SELECT(g3, zero, dv);      /* if one of the first three wins */
                    const BV to2 = LANES_SELECT(g2, zero, to3);     /* ... of the first two */
                    dtop[0] = LANES_SELECT(g1, zero, to2);
                    dtop[1] = LANES_SELECT(g1, to2, zero);
                    dbottom[0] = LANES_SELECT(g2, to3, zero);
                    dbottom[1] = LANES_SELECT(g3, dv, zero);
                }
            }
        if (coef) {
            dcoef[c] += dc;
            dbias[c] += ds;
        }
    }
}

static inline __attribute__((always_inline)) void
FN(lenet_lanes_weight_grad)(BV* restrict dw, const BV* restrict d, const BV* restrict x, int H, int O)
{
    /* the partials dw (5, 5) += the sums over the positions (y, p) of d[y, p] x[y + i, p + j], for one
     * map pair: d (O, O), x (H, H); an i's five sums twice over (even and odd p) where 32 registers
     * allow, so that ten sums are independent */
    enum { SPLIT = LENET_SUMS_32 ? 2 : 1 };
    for (int i = 0; i < LENET_K; i++) {
        BV a[SPLIT][LENET_K];
        for (int j = 0; j < LENET_K; j++) {
            a[0][j] = dw[i * LENET_K + j];
            if (SPLIT == 2)
                a[SPLIT - 1][j] = (BV){0};
        }
        for (int y = 0; y < O; y++) {
            const BV* row = x + (y + i) * H;
            for (int p = 0; p < O; p += SPLIT)
                for (int h = 0; h < SPLIT; h++)
                    for (int j = 0; j < LENET_K; j++)
                        a[h][j] += d[y * O + p + h] * row[p + h + j];
        }
        for (int j = 0; j < LENET_K; j++) {
            if (SPLIT == 2)
                a[0][j] += a[SPLIT - 1][j];
            dw[i * LENET_K + j] = a[0][j];
        }
    }
}

static inline void FN(lenet_lanes_c1_backward)(T* restrict weight_partials, T* restrict bias_partials,
                                               const T* restrict dout, const T* restrict x)
{
    /* dout (6, 28, 28, BL), x (32, 32, BL): the images -> the partials dw (6, 5, 5), db (6,) (C1 needs
     * no input gradient) */
    BV* dw = (BV*)weight_partials;
    BV* db = (BV*)bias_partials;
    const BV* d = (const BV*)dout;
    for (int k = 0; k < LENET_C1_OUT; k++) {
        BV s = db[k];
        for (int q = 0; q < LENET_C1_O * LENET_C1_O; q++)
            s += d[k * LENET_C1_O * LENET_C1_O + q];
        db[k] = s;
        FN(lenet_lanes_weight_grad)(dw + k * LENET_K * LENET_K, d + k * LENET_C1_O * LENET_C1_O, (const BV*)x,
                                    LENET_C1_H, LENET_C1_O);
    }
}

static inline void FN(lenet_lanes_c3_backward)(T* restrict dx, T* restrict weight_partials,
                                               T* restrict bias_partials, const T* restrict dout,
                                               const T* restrict x, const T* restrict w,
                                               const unsigned char* restrict table)
{
    /* dout (16, 10, 10, BL), x (6, 14, 14, BL), w (16, 6, 5, 5) -> dx (6, 14, 14, BL) overwritten, and the
     * partials dw (16, 6, 5, 5), db (16,), for the pairs of the table */
    BV* dw = (BV*)weight_partials;
    BV* db = (BV*)bias_partials;
    const BV* d = (const BV*)dout;
    const BV* in = (const BV*)x;
    const int area = LENET_C3_O * LENET_C3_O, taps = LENET_K * LENET_K;
    for (int k = 0; k < LENET_C3_OUT; k++) {
        BV s = db[k];
        for (int q = 0; q < area; q++)
            s += d[k * area + q];
        db[k] = s;
        for (int c = 0; c < LENET_C3_IN; c++)
            if (table[c * LENET_C3_OUT + k])
                FN(lenet_lanes_weight_grad)(dw + (k * LENET_C3_IN + c) * taps, d + k * area,
                                            in + c * LENET_C3_H * LENET_C3_H, LENET_C3_H, LENET_C3_O);
    }
    /* dx[c, r, q] = the sum over the connected k, i, j of w[k, c, i, j] dout[k, r - i, q - j]: a row r
     * of dx in registers (half a row with fewer than 32 registers), each dout row that reaches it
     * loaded once */
    enum { BLOCK = LENET_SUMS_32 ? LENET_C3_H : LENET_C3_H / 2 };
    BV* o = (BV*)dx;
    for (int c = 0; c < LENET_C3_IN; c++)
        for (int r = 0; r < LENET_C3_H; r++)
#pragma GCC unroll 2
            for (int q0 = 0; q0 < LENET_C3_H; q0 += BLOCK) {    /* unrolled: the tests on p + j are constants */
                BV acc[BLOCK];
                for (int q = 0; q < BLOCK; q++)
                    acc[q] = (BV){0};
                for (int k = 0; k < LENET_C3_OUT; k++) {
                    if (!table[c * LENET_C3_OUT + k])
                        continue;
                    for (int i = 0; i < LENET_K; i++) {
                        const int y = r - i;
                        if (y < 0 || y >= LENET_C3_O)
                            continue;
                        const T* wk = w + ((k * LENET_C3_IN + c) * LENET_K + i) * LENET_K;
                        BV wv[LENET_K];
                        for (int j = 0; j < LENET_K; j++)
                            wv[j] = BVEC(wk[j]);
                        const BV* row = d + (k * LENET_C3_O + y) * LENET_C3_O;
#pragma GCC unroll 10
                        for (int p = 0; p < LENET_C3_O; p++)
#pragma GCC unroll 5
                            for (int j = 0; j < LENET_K; j++)
                                if (p + j >= q0 && p + j < q0 + BLOCK)
                                    acc[p + j - q0] += wv[j] * row[p];
                    }
                }
                for (int q = 0; q < BLOCK; q++)
                    o[(c * LENET_C3_H + r) * LENET_C3_H + q0 + q] = acc[q];
            }
}
