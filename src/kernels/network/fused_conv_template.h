/* The convolution helpers (C1, C3) and lenet_sum_lanes for one element type T with vector type V (16 lanes);
 * included by fused_simd.h once per type, with FN(name) naming the specialisation. Arrays are one
 * sample's, contiguous, channels first. */

static inline T FN(lenet_sum_lanes)(const V a)
{
    /* the 16 lanes added pairwise in a fixed order */
    return LENET_SUM16(a);
}

static inline void FN(lenet_c1_forward)(T* restrict out, const T* restrict x, const T* restrict w,
                                        const T* restrict b)
{
    /* x (32, 32), w (6, 5, 5), b (6,) -> out (6, 28, 28); an output row as the 16 positions 0-15 and
     * 12-27 (h = 0, 1), each H registers of the target's width (each position's sum is its own lane:
     * the width does not change the results), with 32 registers both at once: 12 independent sums,
     * each weight broadcast once for both; else one after the other (6 H sums) */
    enum { H = 16 / BL, HALVES = LENET_SUMS_32 ? 2 : 1 };
    for (int y = 0; y < LENET_C1_O; y++)
        for (int h0 = 0; h0 < 2; h0 += HALVES) {   /* 0-15 first: 12-15 are then written again, alike */
            BV acc[HALVES][LENET_C1_OUT][H];
            for (int h = 0; h < HALVES; h++)
                for (int k = 0; k < LENET_C1_OUT; k++)
                    for (int q = 0; q < H; q++)
                        acc[h][k][q] = BVEC(b[k]) + (BV){0};
            for (int i = 0; i < LENET_K; i++)
                for (int j = 0; j < LENET_K; j++) {
                    BV xv[HALVES][H];
                    for (int h = 0; h < HALVES; h++)
                        for (int q = 0; q < H; q++)
                            xv[h][q] = *(const BV*)(x + (y + i) * LENET_C1_H + (h0 + h) * (LENET_C1_O - 16) + j + q * BL);
                    for (int k = 0; k < LENET_C1_OUT; k++) {
                        const BV wk = BVEC(w[(k * LENET_K + i) * LENET_K + j]);
                        for (int h = 0; h < HALVES; h++)
                            for (int q = 0; q < H; q++)
                                acc[h][k][q] += wk * xv[h][q];
                    }
                }
            for (int h = 0; h < HALVES; h++)
                for (int k = 0; k < LENET_C1_OUT; k++)
                    for (int q = 0; q < H; q++)
                        *(BV*)(out + (k * LENET_C1_O + y) * LENET_C1_O + (h0 + h) * (LENET_C1_O - 16) + q * BL) =
                            acc[h][k][q];
        }
}

static inline void FN(lenet_c1_backward_weights)(T* restrict lanes, const T* restrict dout, const T* restrict x)
{
    /* lanes (156, 16) += the partial sums of d(loss)/d(w[k, i, j]) (row (k * 5 + i) * 5 + j) and of
     * d(loss)/d(b[k]) (row 150 + k), for dout (6, 28, 28) and x (32, 32); an output row as the 16
     * positions 0-15 and 12-27, the first four lanes of the second zeroed (counted already); 16 lanes
     * as H registers of the target's width (the same sums) */
    enum { H = 16 / BL, MAPS = LENET_SUMS_32 ? 3 : 1 };    /* maps at a time: 15 H (or 5 H) accumulators */
    static const T second_lanes[16] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    BV second[H];
    for (int q = 0; q < H; q++)
        second[q] = *(const BV*)(second_lanes + q * BL);
    for (int k0 = 0; k0 < LENET_C1_OUT; k0 += MAPS)
        for (int i = 0; i < LENET_K; i++) {
            BV a[MAPS][LENET_K][H];
            for (int m = 0; m < MAPS; m++)
                for (int j = 0; j < LENET_K; j++)
                    for (int q = 0; q < H; q++)
                        a[m][j][q] = *(const BV*)(lanes + (((k0 + m) * LENET_K + i) * LENET_K + j) * 16 + q * BL);
            for (int y = 0; y < LENET_C1_O; y++)
                for (int p0 = 0; p0 <= LENET_C1_O - 16; p0 += LENET_C1_O - 16) {
                    BV xv[LENET_K][H];
                    for (int j = 0; j < LENET_K; j++)
                        for (int q = 0; q < H; q++) {
                            xv[j][q] = *(const BV*)(x + (y + i) * LENET_C1_H + p0 + j + q * BL);
                            IN_REGISTER(xv[j][q]);     /* loaded once for the three maps */
                        }
                    for (int m = 0; m < MAPS; m++)
                        for (int q = 0; q < H; q++) {
                            BV d = *(const BV*)(dout + ((k0 + m) * LENET_C1_O + y) * LENET_C1_O + p0 + q * BL);
                            if (p0)
                                d *= second[q];
                            for (int j = 0; j < LENET_K; j++)
                                a[m][j][q] += d * xv[j][q];
                        }
                }
            for (int m = 0; m < MAPS; m++)
                for (int j = 0; j < LENET_K; j++)
                    for (int q = 0; q < H; q++)
                        *(BV*)(lanes + (((k0 + m) * LENET_K + i) * LENET_K + j) * 16 + q * BL) = a[m][j][q];
        }
    for (int k = 0; k < LENET_C1_OUT; k++)
        for (int q = 0; q < H; q++) {
            BV* bias = (BV*)(lanes + (LENET_C1_OUT * LENET_K * LENET_K + k) * 16 + q * BL);
            BV s = *bias;
            for (int y = 0; y < LENET_C1_O; y++) {
                const T* row = dout + (k * LENET_C1_O + y) * LENET_C1_O + q * BL;
                s += *(const BV*)row;
                s += *(const BV*)(row + LENET_C1_O - 16) * second[q];
            }
            *bias = s;
        }
}

static inline void FN(lenet_c1_fold)(T* restrict dw, T* restrict db, T* restrict lanes)
{
    /* dw (6, 5, 5) and db (6,) += the sums of their lanes; lanes is zeroed */
    for (int r = 0; r < LENET_C1_LANES; r++) {
        T* a = lanes + r * 16;
        const T s = FN(lenet_sum_lanes)(*(const V*)a);
        if (r < LENET_C1_OUT * LENET_K * LENET_K)
            dw[r] += s;
        else
            db[r - LENET_C1_OUT * LENET_K * LENET_K] += s;
        for (int l = 0; l < 16; l++)
            a[l] = 0;
    }
}

static inline void FN(lenet_c3_transpose_weights)(T* restrict wt, const T* restrict w,
                                                  const unsigned char* restrict table)
{
    /* w (16, 6, 5, 5), table (6, 16) -> wt (6, 5, 5, 16), zero where unconnected */
    const int taps = LENET_K * LENET_K;
    memset(wt, 0, LENET_C3_IN * taps * LENET_C3_OUT * sizeof(T));
    for (int k = 0; k < LENET_C3_OUT; k++)
        for (int c = 0; c < LENET_C3_IN; c++)
            if (table[c * LENET_C3_OUT + k])
                for (int t = 0; t < taps; t++)
                    wt[(c * taps + t) * LENET_C3_OUT + k] = w[(k * LENET_C3_IN + c) * taps + t];
}

static inline void FN(lenet_c3_forward)(T* restrict out, const T* restrict x, const T* restrict wt,
                                        const T* restrict b)
{
    /* x (6, 14, 14), wt (6, 5, 5, 16), b (16,) -> out (16, 10, 10): an output row's 10 positions in
     * 10 accumulators, each weight vector loaded once per row; the 16 maps as H registers of the
     * target's width (each map's sum is its own lane, so the width does not change the results) */
    enum { H = 16 / BL, BLOCK = LENET_SUMS_32 ? LENET_C3_O : LENET_C3_O / 2 };  /* positions summed together */
    for (int y = 0; y < LENET_C3_O; y++)
        for (int p0 = 0; p0 < LENET_C3_O; p0 += BLOCK) {
            BV acc[BLOCK][H];
            for (int p = 0; p < BLOCK; p++)
                for (int h = 0; h < H; h++)
                    acc[p][h] = *(const BV*)(b + h * BL);
            for (int c = 0; c < LENET_C3_IN; c++)
                for (int i = 0; i < LENET_K; i++) {
                    const T* row = x + (c * LENET_C3_H + y + i) * LENET_C3_H + p0;
                    const T* w = wt + (c * LENET_K + i) * LENET_K * LENET_C3_OUT;
                    for (int j = 0; j < LENET_K; j++)
                        for (int h = 0; h < H; h++) {
                            const BV wv = *(const BV*)(w + j * LENET_C3_OUT + h * BL);
                            for (int p = 0; p < BLOCK; p++)
                                acc[p][h] += BVEC(row[p + j]) * wv;
                        }
                }
            for (int p = 0; p < BLOCK; p++)
                for (int k = 0; k < LENET_C3_OUT; k++)
                    out[(k * LENET_C3_O + y) * LENET_C3_O + p0 + p] = acc[p][k / BL][k % BL];
        }
}

static inline void FN(lenet_c3_backward)(T* restrict dx, T* restrict part, const T* restrict dout,
                                         const T* restrict x, const T* restrict w,
                                         const unsigned char* restrict table, T* restrict scratch)
{
    /* dout (16, 10, 10), x (6, 14, 14), w (16, 6, 5, 5) -> dx (6, 14, 14) overwritten; part += the
     * gradient of the transposed weights (6, 5, 5, 16) and then of the biases (16,): sums over the
     * positions (y, p) of x[c, y + i, p + j] dout[:, y, p] and of dout[:, y, p].
     * scratch: 1600 values (dout position-major), then 16 x 10 rows of LENET_C3_PAD (dout's rows with
     * four zeros on either side) */
    const int positions = LENET_C3_O * LENET_C3_O;
    T* dt = scratch;
    T* padded = scratch + positions * LENET_C3_OUT;
    for (int q = 0; q < positions; q++)
        for (int k = 0; k < LENET_C3_OUT; k++)
            dt[q * LENET_C3_OUT + k] = dout[k * positions + q];

    /* weights and biases, vectorised across the 16 maps, as H registers of the target's width (each
     * map's sums are its own lanes: the width does not change the results) */
    enum { H = 16 / BL };
    for (int h = 0; h < H; h++) {
        BV* db = (BV*)(part + LENET_C3_IN * LENET_K * LENET_K * LENET_C3_OUT + h * BL);
        BV bias = *db;
        for (int q = 0; q < positions; q++)
            bias += *(const BV*)(dt + q * LENET_C3_OUT + h * BL);
        *db = bias;
    }
    enum { MAPS = LENET_SUMS_32 ? 2 : 1 };        /* input maps at a time: 10 H (or 5 H) independent sums */
    for (int c0 = 0; c0 < LENET_C3_IN; c0 += MAPS)
        for (int i = 0; i < LENET_K; i++) {
            BV a[MAPS][LENET_K][H];                     /* the five taps j of the maps c0, c0 + 1 */
            T* at = part + ((c0 * LENET_K + i) * LENET_K) * LENET_C3_OUT;
            const ptrdiff_t map = LENET_K * LENET_K * LENET_C3_OUT;
            for (int m = 0; m < MAPS; m++)
                for (int j = 0; j < LENET_K; j++)
                    for (int h = 0; h < H; h++)
                        a[m][j][h] = *(const BV*)(at + m * map + j * LENET_C3_OUT + h * BL);
            for (int y = 0; y < LENET_C3_O; y++) {
                const T* row = x + (c0 * LENET_C3_H + y + i) * LENET_C3_H;
                for (int p = 0; p < LENET_C3_O; p++) {
                    BV d[H];
                    for (int h = 0; h < H; h++) {
                        d[h] = *(const BV*)(dt + (y * LENET_C3_O + p) * LENET_C3_OUT + h * BL);
                        IN_REGISTER(d[h]);     /* loaded once for the ten sums */
                    }
                    for (int m = 0; m < MAPS; m++)
                        for (int j = 0; j < LENET_K; j++)
                            for (int h = 0; h < H; h++)
                                a[m][j][h] += BVEC(row[m * LENET_C3_H * LENET_C3_H + p + j]) * d[h];
                }
            }
            for (int m = 0; m < MAPS; m++)
                for (int j = 0; j < LENET_K; j++)
                    for (int h = 0; h < H; h++)
                        *(BV*)(at + m * map + j * LENET_C3_OUT + h * BL) = a[m][j][h];
        }

    /* dx, the full convolution, vectorised along its rows (16 lanes, 14 used; H registers of the
     * target's width): an input row y of map k shifted by j, loaded once, adds into the rows y + i of
     * dx[c], i < 5, all 14 held in registers */
    memset(padded, 0, LENET_C3_OUT * LENET_C3_O * LENET_C3_PAD * sizeof(T));
    for (int r = 0; r < LENET_C3_OUT * LENET_C3_O; r++)
        memcpy(padded + r * LENET_C3_PAD + LENET_K - 1, dout + r * LENET_C3_O, LENET_C3_O * sizeof(T));
    enum { ROWS = LENET_SUMS_32 ? LENET_C3_H : LENET_C3_H / 2 };      /* rows of dx[c] summed together */
    for (int c = 0; c < LENET_C3_IN; c++)
#pragma GCC unroll 2
        for (int r0 = 0; r0 < LENET_C3_H; r0 += ROWS) {
            BV acc[ROWS][H];
            for (int r = 0; r < ROWS; r++)
                for (int h = 0; h < H; h++)
                    acc[r][h] = (BV){0};
            for (int k = 0; k < LENET_C3_OUT; k++) {
                if (!table[c * LENET_C3_OUT + k])
                    continue;
                const T* wk = w + (k * LENET_C3_IN + c) * LENET_K * LENET_K;
                for (int j = 0; j < LENET_K; j++) {
#pragma GCC unroll 10
                    for (int y = 0; y < LENET_C3_O; y++) {
                        /* lane p: dout[k, y, p - j] (zero outside the row) */
                        const T* v = padded + (k * LENET_C3_O + y) * LENET_C3_PAD + LENET_K - 1 - j;
#pragma GCC unroll 5
                        for (int i = 0; i < LENET_K; i++)
                            if (y + i >= r0 && y + i < r0 + ROWS)
                                for (int h = 0; h < H; h++)
                                    acc[y + i - r0][h] += BVEC(wk[i * LENET_K + j]) * *(const BV*)(v + h * BL);
                    }
                }
            }
            for (int r = 0; r < ROWS; r++)
                for (int p = 0; p < LENET_C3_H; p++)
                    dx[(c * LENET_C3_H + r0 + r) * LENET_C3_H + p] = acc[r][p / BL][p % BL];
        }
}

static inline void FN(lenet_c3_fold)(T* restrict dw, T* restrict db, T* restrict part,
                                     const unsigned char* restrict table)
{
    /* dw (16, 6, 5, 5) += part's weight gradient transposed back, for the connected pairs only, and db (16,)
     * += its bias gradient; part is zeroed */
    T* dwt = part;
    T* dbt = part + LENET_C3_IN * LENET_K * LENET_K * LENET_C3_OUT;
    for (int k = 0; k < LENET_C3_OUT; k++) {
        db[k] += dbt[k];
        dbt[k] = 0;
    }
    const int taps = LENET_K * LENET_K;
    for (int c = 0; c < LENET_C3_IN; c++)
        for (int t = 0; t < taps; t++)
            for (int k = 0; k < LENET_C3_OUT; k++) {
                if (table[c * LENET_C3_OUT + k])
                    dw[(k * LENET_C3_IN + c) * taps + t] += dwt[(c * taps + t) * LENET_C3_OUT + k];
                dwt[(c * taps + t) * LENET_C3_OUT + k] = 0;
            }
}

static inline __attribute__((always_inline)) void
FN(lenet_max_block_backward)(BV* restrict to, const BV* restrict q, const BV* restrict d, const int relu)
{
    /* the gradient *d of a 2x2 max pool's outputs to their inputs q (top left, top right, bottom left,
     * bottom right): all of it to the first maximum (the comparisons of _max_block in
     * layers/pool_one.pxd, so a NaN never wins), zeros to the other three, into to (the same order);
     * with relu (the ReLU before the pool), zeros where the maximum is not above 0. By pointer: vectors
     * by value draw gcc's note on their ABI. Used by lenet_maxpool_backward_block (a sample's lanes)
     * and lenet_lanes_pool_backward (a block of samples). */
    const BV zero = {0};
    const BVI g1 = (BVI)(q[1] > q[0]);
    const BV m1 = LANES_SELECT(g1, q[1], q[0]);
    const BVI g2 = (BVI)(q[2] > m1);
    const BV m2 = LANES_SELECT(g2, q[2], m1);
    const BVI g3 = (BVI)(q[3] > m2);
    const BV dv = relu ? LANES_SELECT((BVI)(LANES_SELECT(g3, q[3], m2) > 0), *d, zero) : *d;
    const BV to3 = LANES_SELECT(g3, zero, dv);      /* the gradient if one of the first three wins */
    const BV to2 = LANES_SELECT(g2, zero, to3);     /* ... of the first two */
    to[0] = LANES_SELECT(g1, zero, to2);
    to[1] = LANES_SELECT(g1, to2, zero);
    to[2] = LANES_SELECT(g2, to3, zero);
    to[3] = LANES_SELECT(g3, dv, zero);
}

static inline void FN(lenet_maxpool_backward_block)(T* restrict dtop, T* restrict dbottom, const T* restrict top,
                                                    const T* restrict bottom, const T* restrict d, const int count)
{
    /* the BL / 2 blocks of BL positions of a row pair, a lane pair (2j, 2j + 1) holding block j, in
     * vectors of the target's width (as one 16-lane vector, two AVX2 registers, this took 21% of the
     * modern variant's training at batch 1 on the avx2 path in a perf profile); the first `count`
     * positions are stored */
    BVI left, right, block, even;
    LENET_UNROLL
    for (int l = 0; l < BL; l++) {
        left[l] = l - l % 2;
        right[l] = l - l % 2 + 1;
        block[l] = l / 2;
        even[l] = l % 2 ? 0 : -1;
    }
    const BV t = *(const BV*)top, u = *(const BV*)bottom, dv = *(const BV*)d;
    /* each block's four inputs, twice (in its lane pair), and its gradient */
    const BV q[4] = {LANES_PERMUTE(t, left), LANES_PERMUTE(t, right), LANES_PERMUTE(u, left),
                     LANES_PERMUTE(u, right)};
    const BV dj = LANES_PERMUTE(dv, block);
    BV to[4];
    FN(lenet_max_block_backward)(to, q, &dj, 0);
    const BV to_top = LANES_SELECT(even, to[0], to[1]);         /* a pair's even lane: the left input */
    const BV to_bottom = LANES_SELECT(even, to[2], to[3]);
    if (count == BL) {
        *(BV*)dtop = to_top;
        *(BV*)dbottom = to_bottom;
    } else {
        memcpy(dtop, &to_top, count * sizeof(T));
        memcpy(dbottom, &to_bottom, count * sizeof(T));
    }
}

static inline void FN(lenet_maxpool_backward)(T* restrict dx, const T* restrict dout, const T* restrict x,
                                              const int C, const int H)
{
    /* 2x2 max pooling of x (C, H, H), H even: dx (C, H, H) = dout (C, H/2, H/2) at each block's first
     * maximum (top left, top right, bottom left, bottom right: the comparisons of _max_block in
     * layers/pool_one.pxd, so a NaN never wins), zeros at the other three. A row pair goes BL positions
     * at a time, the last vector overlapping the one before (the same values written twice), or, in rows
     * shorter than BL, partly stored; loads read up to BL values past a row, which the work row holds. */
    const int Ho = H / 2;
    for (int r = 0; r < C * Ho; r++) {          /* the row pairs of every map */
        const T* top = x + 2 * r * H;
        T* dtop = dx + 2 * r * H;
        const T* d = dout + r * Ho;
        if (H < BL) {
            FN(lenet_maxpool_backward_block)(dtop, dtop + H, top, top + H, d, H);
            continue;
        }
        for (int q = 0; q < H; q += BL) {
            const int p = q + BL <= H ? q : H - BL;
            FN(lenet_maxpool_backward_block)(dtop + p, dtop + H + p, top + p, top + H + p, d + p / 2, BL);
        }
    }
}
