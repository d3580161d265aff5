/* The backward pass for a block of samples in the lanes, the layout of fused_lanes_template.h:
 * (C, H, W, BL), each value's BL samples side by side. Included by fused_simd.h after it, once per type.
 *
 * The convolutional layers' parameter gradients stay per lane over a whole batch ("partials": a vector
 * BV per parameter, each lane one sample's share), added across the lanes once per batch
 * (lenet_lanes_fold): no horizontal sum per sample. Like the forward pass, C3 goes through the
 * connected pairs only. The dense layers: at the end. */

static inline void FN(lenet_lanes_fold)(T* restrict g, T* restrict partials, int n)
{
    /* g[t] += the sum of partial t's lanes (added pairwise, halves first: a fixed order), for t < n;
     * the partials are zeroed. BL partials at a time, transposed as they are added: each level adds
     * lane l and lane l + half of every partial (a level's half of two vectors in one), the additions
     * one partial alone would make, so the sums are the same */
    enum { LEVELS = BL >= 16 ? 4 : BL >= 8 ? 3 : BL >= 4 ? 2 : 1 };
    BV* part = (BV*)partials;
    BVI lower[LEVELS], upper[LEVELS];
    for (int level = 0; level < LEVELS; level++) {
        const int half = BL >> (level + 1), pieces = 1 << level;    /* a vector holds `pieces` partials */
        for (int l = 0; l < BL; l++) {
            const int piece = l / half, at = l % half;
            lower[level][l] = piece < pieces ? piece * 2 * half + at : BL + (piece - pieces) * 2 * half + at;
            upper[level][l] = lower[level][l] + half;
        }
    }
    int t = 0;
    for (; t + BL <= n; t += BL) {
        BV v[BL];
        for (int q = 0; q < BL; q++) {
            v[q] = part[t + q];
            part[t + q] = (BV){0};
        }
        for (int level = 0, count = BL; level < LEVELS; level++, count /= 2)
            for (int q = 0; q < count / 2; q++)
                v[q] = LANES_PERMUTE2(v[2 * q], v[2 * q + 1], lower[level])
                       + LANES_PERMUTE2(v[2 * q], v[2 * q + 1], upper[level]);
        *(BV*)(g + t) += v[0];
    }
    for (; t < n; t++) {
        T v[BL];
        memcpy(v, &part[t], sizeof(v));
        for (int half = BL / 2; half >= 1; half /= 2)
            for (int l = 0; l < half; l++)
                v[l] += v[l + half];
        g[t] += v[0];
        part[t] = (BV){0};
    }
}

static inline void FN(lenet_lanes_pool_backward)(T* x, T* restrict coef_partials, T* restrict bias_partials,
                                                 const T* restrict dout, const T* restrict out,
                                                 const T* restrict coef, int C, int H)
{
    /* x (C, H, H, BL): the pool's input, the activated outputs of the layer before, replaced by the
     * gradient of their pre-activations (in place, so that a block's gradients need no memory of their
     * own); dout (C, H/2, H/2, BL): the gradient of the pool's outputs: the backward pass of the pool
     * and of the activations on either side, in one pass. With coef, the paper: through the squash at
     * the outputs `out` (NULL: dout is already the gradient of their pre-activations), the subsampling
     * (as _subsample_backward_one: coef[c] dout at each of a block's four inputs, the partials
     * dcoef[c] += dout (the block's sum), dbias[c] += dout), the squash at x. Else (coef NULL, the
     * partials and out unused) the modern variant: max pooling and the ReLU (lenet_max_block_backward:
     * dout at each block's first maximum, 0 at the other three, and 0 where the maximum is 0). */
    BV* dcoef = (BV*)coef_partials;
    BV* dbias = (BV*)bias_partials;
    const int O = H / 2;
    BV* in = (BV*)x;
    const BV* d = (const BV*)dout;
    const BV* y = (const BV*)out;
    for (int c = 0; c < C; c++) {
        BV dc = {0}, ds = {0};
        for (int i = 0; i < O; i++)
            for (int j = 0; j < O; j++) {
                BV* top = in + (c * H + 2 * i) * H + 2 * j;
                BV* bottom = top + H;
                const BV t0 = top[0], t1 = top[1], b0 = bottom[0], b1 = bottom[1];
                const int at = (c * O + i) * O + j;
                if (coef) {
                    BV dv = d[at];
                    if (y)
                        dv *= LENET_SQUASH_DERIVATIVE(T, y[at]);
                    ds = ds + dv;
                    dc = dc + dv * (t0 + t1 + b0 + b1);
                    const BV v = coef[c] * dv;
                    top[0] = v * LENET_SQUASH_DERIVATIVE(T, t0);
                    top[1] = v * LENET_SQUASH_DERIVATIVE(T, t1);
                    bottom[0] = v * LENET_SQUASH_DERIVATIVE(T, b0);
                    bottom[1] = v * LENET_SQUASH_DERIVATIVE(T, b1);
                } else {
                    const BV q[4] = {t0, t1, b0, b1};
                    BV to[4];
                    FN(lenet_max_block_backward)(to, q, d + at, 1);
                    top[0] = to[0];
                    top[1] = to[1];
                    bottom[0] = to[2];
                    bottom[1] = to[3];
                }
            }
        if (coef) {
            dcoef[c] += dc;
            dbias[c] += ds;
        }
    }
}

static inline __attribute__((always_inline)) void
FN(lenet_lanes_weight_grad_rows)(BV* restrict dw, const BV* restrict d, const BV* restrict x, int H, int O,
                                 const int i0, const int rows)
{
    /* the kernel rows i0 .. i0 + rows - 1 of lenet_lanes_weight_grad: rows * 5 sums, each over the
     * positions in order, in registers */
    BV a[LENET_K][LENET_K];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < LENET_K; j++)
            a[r][j] = dw[(i0 + r) * LENET_K + j];
    for (int y = 0; y < O; y++) {
        const BV* dy = d + y * O;
        for (int p = 0; p < O; p += 2) {      /* two positions: each x serves both (O is even) */
            const BV d0 = dy[p], d1 = dy[p + 1];
            for (int r = 0; r < rows; r++) {
                const BV* row = x + (y + i0 + r) * H + p;
                LENET_FRESH_POINTER(row);   /* no x kept from one p to the next: the sums need the registers */
                for (int j = 0; j <= LENET_K; j++) {
                    const BV xv = row[j];
                    if (j < LENET_K)
                        a[r][j] += d0 * xv;
                    if (j > 0)
                        a[r][j - 1] += d1 * xv;     /* after its term of position p, as one at a time */
                }
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < LENET_K; j++)
            dw[(i0 + r) * LENET_K + j] = a[r][j];
}

static inline __attribute__((always_inline)) void
FN(lenet_lanes_weight_grad)(BV* restrict dw, const BV* restrict d, const BV* restrict x, int H, int O)
{
    /* the partials dw (5, 5) += the sums over the positions (y, p) of d[y, p] x[y + i, p + j], for one
     * map pair: d (O, O), x (H, H). All 25 sums at once where 32 registers allow, else two kernel rows
     * at a time: d and x stream past once (C1's are 50 KB and 64 KB a map and block, more than the L1
     * cache holds: once per kernel row, they came from the L2 cache five times) */
    if (LENET_SUMS_32) {
        FN(lenet_lanes_weight_grad_rows)(dw, d, x, H, O, 0, LENET_K);
    } else {
        FN(lenet_lanes_weight_grad_rows)(dw, d, x, H, O, 0, 2);
        FN(lenet_lanes_weight_grad_rows)(dw, d, x, H, O, 2, 2);
        FN(lenet_lanes_weight_grad_rows)(dw, d, x, H, O, 4, 1);
    }
}

static inline void FN(lenet_lanes_bias_grad)(BV* restrict db, const BV* restrict d, int n)
{
    /* the partial *db += d[0] + ... + d[n - 1] (n a multiple of 4), in 4 sums (one would wait on each
     * addition's latency), then added pairwise */
    BV s[4] = {{0}, {0}, {0}, {0}};
    for (int q = 0; q < n; q += 4)
        for (int h = 0; h < 4; h++)
            s[h] += d[q + h];
    *db += (s[0] + s[1]) + (s[2] + s[3]);
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
        FN(lenet_lanes_bias_grad)(db + k, d + k * LENET_C1_O * LENET_C1_O, LENET_C1_O * LENET_C1_O);
        FN(lenet_lanes_weight_grad)(dw + k * LENET_K * LENET_K, d + k * LENET_C1_O * LENET_C1_O, (const BV*)x,
                                    LENET_C1_H, LENET_C1_O);
    }
}

static inline void FN(lenet_lanes_c3_backward)(T* x, T* restrict weight_partials, T* restrict bias_partials,
                                               const T* restrict dout, const T* restrict w,
                                               const unsigned char* restrict table, int squash)
{
    /* dout (16, 10, 10, BL), x (6, 14, 14, BL): C3's input, w (16, 6, 5, 5) -> the partials dw (16, 6, 5, 5),
     * db (16,), for the pairs of the table; then x is replaced by its gradient (in place), with squash
     * (the paper: x is S2's squashed outputs) the gradient of its pre-activations */
    BV* dw = (BV*)weight_partials;
    BV* db = (BV*)bias_partials;
    const BV* d = (const BV*)dout;
    BV* in = (BV*)x;
    const int area = LENET_C3_O * LENET_C3_O, taps = LENET_K * LENET_K;
    for (int k = 0; k < LENET_C3_OUT; k++) {
        FN(lenet_lanes_bias_grad)(db + k, d + k * area, area);
        for (int c = 0; c < LENET_C3_IN; c++)
            if (table[c * LENET_C3_OUT + k])
                FN(lenet_lanes_weight_grad)(dw + (k * LENET_C3_IN + c) * taps, d + k * area,
                                            in + c * LENET_C3_H * LENET_C3_H, LENET_C3_H, LENET_C3_O);
    }
    /* dx[c, r, q] = the sum over the connected k, i, j of w[k, c, i, j] dout[k, r - i, q - j]: a row r
     * of dx in registers (half a row with fewer than 32 registers), each dout row that reaches it
     * loaded once; stored over x[c, r, q] once the weight gradients above are done with x */
    enum { BLOCK = LENET_SUMS_32 ? LENET_C3_H : LENET_C3_H / 2 };
    BV* o = in;
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
                BV* dst = o + (c * LENET_C3_H + r) * LENET_C3_H + q0;     /* over x there */
                for (int q = 0; q < BLOCK; q++) {
                    if (squash)
                        acc[q] *= LENET_SQUASH_DERIVATIVE(T, dst[q]);
                    dst[q] = acc[q];
                }
            }
}

/* The dense layers' backward pass (C5, F6, the modern variant's output layer, the paper's RBF): the
 * input gradients in the lanes, block by block; the weight gradients once per batch (or chunk of one),
 * from the block's values stored sample by sample (lenet_lanes_store), as a matrix product over the
 * samples. */

static inline void FN(lenet_lanes_rbf_backward)(T* restrict dx, const T* restrict dout, const T* restrict x,
                                                const T* restrict centers, int F, int K)
{
    /* dout (K, BL), x (F, BL), centers (K, F) -> dx (F, BL) = the sum over i ascending of
     * 2 dout[i] (x - centers[i]): _rbf_backward_one's sums */
    const BV* d = (const BV*)dout;
    const BV* in = (const BV*)x;
    BV* o = (BV*)dx;
    for (int j = 0; j < F; j++) {
        BV acc = {0};
        for (int i = 0; i < K; i++)
            acc += (2 * d[i]) * (in[j] - centers[i * F + j]);
        o[j] = acc;
    }
}

static inline __attribute__((always_inline)) int
FN(lenet_lanes_dense_backward_tile)(BV* restrict dx, const BV* restrict d, const T* restrict w, int F, int K,
                                    int f, const int tile)
{
    /* the inputs f, f + 1, ... of lenet_lanes_dense_backward, `tile` at a time while a whole tile fits below
     * F: their sums in registers, each d[k] loaded once for all; returns the first input not done */
    for (; f + tile <= F; f += tile) {
        BV acc[16];
        for (int j = 0; j < tile; j++)
            acc[j] = (BV){0};
        for (int k = 0; k < K; k++) {
            const BV dv = d[k];
            const T* wk = w + (ptrdiff_t)k * F + f;
            for (int j = 0; j < tile; j++)
                acc[j] += BVEC(wk[j]) * dv;
        }
        for (int j = 0; j < tile; j++)
            dx[f + j] = acc[j];
    }
    return f;
}

static inline void FN(lenet_lanes_dense_backward)(T* restrict dx, const T* restrict dout, const T* restrict w,
                                                  int F, int K)
{
    /* dout (K, BL), w (K, F) -> dx (F, BL) = w^T dout, each sum over k ascending: 16 inputs at a time
     * (8 with fewer than 32 registers), then 8, 4 and one by one */
    enum { TILE = LENET_SUMS_32 ? 16 : 8 };
    int f = FN(lenet_lanes_dense_backward_tile)((BV*)dx, (const BV*)dout, w, F, K, 0, TILE);
    f = FN(lenet_lanes_dense_backward_tile)((BV*)dx, (const BV*)dout, w, F, K, f, 8);
    f = FN(lenet_lanes_dense_backward_tile)((BV*)dx, (const BV*)dout, w, F, K, f, 4);
    FN(lenet_lanes_dense_backward_tile)((BV*)dx, (const BV*)dout, w, F, K, f, 1);
}

static inline __attribute__((always_inline)) void
FN(lenet_dense_weight_grad_tile)(T* restrict dw, const T* restrict d, const T* restrict x, int F, int f,
                                 ptrdiff_t stride, int n, const int rows, const int cols)
{
    /* dw[r, f + c BL + l] += the sum over s < n ascending of d[s stride + r] x[s stride + f + c BL + l],
     * for r < rows, c < cols and the columns below F: rows x cols vectors of sums in registers, each
     * loaded x vector serving `rows` of them. x's last vector may reach past F: the caller's rows
     * continue there (the lanes beyond F are not stored). */
    BV acc[4][6];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            acc[r][c] = (BV){0};
    for (int s = 0; s < n; s++) {
        const BV* xs = (const BV*)(x + s * stride + f);
        BV xv[6];
        for (int c = 0; c < cols; c++) {
            xv[c] = xs[c];
            IN_REGISTER(xv[c]);     /* loaded once for all the rows */
        }
        for (int r = 0; r < rows; r++) {
            const BV dv = BVEC(d[s * stride + r]);
            for (int c = 0; c < cols; c++)
                acc[r][c] += dv * xv[c];
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            T* out = dw + (ptrdiff_t)r * F + f + c * BL;
            const int m = F - f - c * BL;
            if (m >= BL)
                *(BV*)out += acc[r][c];
            else
                for (int l = 0; l < m; l++)
                    out[l] += acc[r][c][l];
        }
}

static inline __attribute__((always_inline)) void
FN(lenet_dense_weight_grad_cols)(T* restrict dw, const T* restrict d, const T* restrict x, int F, int f, int K,
                                 ptrdiff_t stride, int n, const int cols)
{
    /* `cols` vectors of columns from f of lenet_dense_weight_grad's dw, for every row: ROWS rows at a time
     * (2 with fewer than 32 registers), then one by one; the n samples' x for these columns (cols vectors
     * each) stay in the L1 cache from one row to the next */
    enum { ROWS = LENET_SUMS_32 ? 4 : 2 };
    int k = 0;
    for (; k + ROWS <= K; k += ROWS)
        FN(lenet_dense_weight_grad_tile)(dw + (ptrdiff_t)k * F, d + k, x, F, f, stride, n, ROWS, cols);
    for (; k < K; k++)
        FN(lenet_dense_weight_grad_tile)(dw + (ptrdiff_t)k * F, d + k, x, F, f, stride, n, 1, cols);
}

static inline void FN(lenet_dense_weight_grad)(T* restrict dw, T* restrict db, const T* restrict dout,
                                               const T* restrict x, int F, int K, ptrdiff_t stride, int n)
{
    /* for the samples s < n, dout_s = dout + s stride (K,) and x_s = x + s stride (F,), the rows of a
     * sample each: dw (K, F) += the sum over s ascending of dout_s x_s^T, db (K,) += the sum of dout_s.
     * x_s may be read up to a vector past F (see lenet_dense_weight_grad_tile). COLS vectors of columns
     * at a time, then the rest. */
    enum { COLS = LENET_SUMS_32 ? 5 : 4 };
    const int vectors = (F + BL - 1) / BL;
    int v = 0;
    for (; v + COLS <= vectors; v += COLS)
        FN(lenet_dense_weight_grad_cols)(dw, dout, x, F, v * BL, K, stride, n, COLS);
    switch (vectors - v) {
    case 1: FN(lenet_dense_weight_grad_cols)(dw, dout, x, F, v * BL, K, stride, n, 1); break;
    case 2: FN(lenet_dense_weight_grad_cols)(dw, dout, x, F, v * BL, K, stride, n, 2); break;
    case 3: FN(lenet_dense_weight_grad_cols)(dw, dout, x, F, v * BL, K, stride, n, 3); break;
    case 4: FN(lenet_dense_weight_grad_cols)(dw, dout, x, F, v * BL, K, stride, n, 4); break;
    default: break;
    }
    for (int s = 0; s < n; s++)
        for (int k = 0; k < K; k++)
            db[k] += dout[s * stride + k];
}
