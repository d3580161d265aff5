/* The helpers for one element type T with vector type V (16 lanes); included by fused_simd.h
 * once per type, with FN(name) naming the specialisation. Arrays are one sample's, contiguous, channels
 * first. */

static inline void FN(lenet_c1_forward)(T* restrict out, const T* restrict x, const T* restrict w,
                                        const T* restrict b)
{
    /* x (32, 32), w (6, 5, 5), b (6,) -> out (6, 28, 28) */
    for (int y = 0; y < LENET_C1_O; y++)
        for (int p0 = 0; p0 <= LENET_C1_O - 16; p0 += LENET_C1_O - 16) {      /* positions 0-15, 12-27 */
            V acc[LENET_C1_OUT];
            for (int k = 0; k < LENET_C1_OUT; k++)
                acc[k] = (V){0} + b[k];
            for (int i = 0; i < LENET_K; i++)
                for (int j = 0; j < LENET_K; j++) {
                    const V xv = *(const V*)(x + (y + i) * LENET_C1_H + p0 + j);
                    for (int k = 0; k < LENET_C1_OUT; k++)
                        acc[k] += w[(k * LENET_K + i) * LENET_K + j] * xv;
                }
            for (int k = 0; k < LENET_C1_OUT; k++)
                *(V*)(out + (k * LENET_C1_O + y) * LENET_C1_O + p0) = acc[k];
        }
}

static inline void FN(lenet_c1_backward_weights)(T* restrict lanes, const T* restrict dout, const T* restrict x)
{
    /* lanes (156, 16) += the partial sums of d(loss)/d(w[k, i, j]) (row (k * 5 + i) * 5 + j) and of
     * d(loss)/d(b[k]) (row 150 + k), for dout (6, 28, 28) and x (32, 32); an output row as the vectors
     * of positions 0-15 and 12-27, the first four lanes of the second one zeroed (counted already) */
    const V second = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    V* dw = (V*)lanes;
    for (int k0 = 0; k0 < LENET_C1_OUT; k0 += 3)       /* three maps at a time: 15 accumulators */
        for (int i = 0; i < LENET_K; i++) {
            V a[3][LENET_K];
            for (int m = 0; m < 3; m++)
                for (int j = 0; j < LENET_K; j++)
                    a[m][j] = dw[((k0 + m) * LENET_K + i) * LENET_K + j];
            for (int y = 0; y < LENET_C1_O; y++)
                for (int p0 = 0; p0 <= LENET_C1_O - 16; p0 += LENET_C1_O - 16) {
                    V xv[LENET_K];
                    for (int j = 0; j < LENET_K; j++)
                        xv[j] = *(const V*)(x + (y + i) * LENET_C1_H + p0 + j);
                    for (int m = 0; m < 3; m++) {
                        V d = *(const V*)(dout + ((k0 + m) * LENET_C1_O + y) * LENET_C1_O + p0);
                        if (p0)
                            d *= second;
                        for (int j = 0; j < LENET_K; j++)
                            a[m][j] += d * xv[j];
                    }
                }
            for (int m = 0; m < 3; m++)
                for (int j = 0; j < LENET_K; j++)
                    dw[((k0 + m) * LENET_K + i) * LENET_K + j] = a[m][j];
        }
    for (int k = 0; k < LENET_C1_OUT; k++) {
        V s = dw[LENET_C1_OUT * LENET_K * LENET_K + k];
        for (int y = 0; y < LENET_C1_O; y++) {
            s += *(const V*)(dout + (k * LENET_C1_O + y) * LENET_C1_O);
            s += *(const V*)(dout + (k * LENET_C1_O + y) * LENET_C1_O + LENET_C1_O - 16) * second;
        }
        dw[LENET_C1_OUT * LENET_K * LENET_K + k] = s;
    }
}

static inline void FN(lenet_c1_fold)(T* restrict dw, T* restrict db, T* restrict lanes)
{
    /* dw (6, 5, 5) and db (6,) += the sums of their lanes (added pairwise in a fixed order, as
     * _sum_lanes); lanes is zeroed */
    for (int r = 0; r < LENET_C1_LANES; r++) {
        T* a = lanes + r * 16;
        T s = ((((a[0] + a[8]) + (a[4] + a[12])) + ((a[2] + a[10]) + (a[6] + a[14])))
               + (((a[1] + a[9]) + (a[5] + a[13])) + ((a[3] + a[11]) + (a[7] + a[15]))));
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
    for (int c = 0; c < LENET_C3_IN; c++)
        for (int t = 0; t < taps; t++)
            for (int k = 0; k < LENET_C3_OUT; k++)
                wt[(c * taps + t) * LENET_C3_OUT + k] =
                    table[c * LENET_C3_OUT + k] ? w[(k * LENET_C3_IN + c) * taps + t] : (T)0;
}

static inline void FN(lenet_c3_forward)(T* restrict out, const T* restrict x, const T* restrict wt,
                                        const T* restrict b)
{
    /* x (6, 14, 14), wt (6, 5, 5, 16), b (16,) -> out (16, 10, 10): an output row's 10 positions in
     * 10 accumulators, each weight vector loaded once per row */
    const V bias = *(const V*)b;
    for (int y = 0; y < LENET_C3_O; y++) {
        V acc[LENET_C3_O];
        for (int p = 0; p < LENET_C3_O; p++)
            acc[p] = bias;
        for (int c = 0; c < LENET_C3_IN; c++)
            for (int i = 0; i < LENET_K; i++) {
                const T* row = x + (c * LENET_C3_H + y + i) * LENET_C3_H;
                const T* w = wt + (c * LENET_K + i) * LENET_K * LENET_C3_OUT;
                for (int j = 0; j < LENET_K; j++) {
                    const V wv = *(const V*)(w + j * LENET_C3_OUT);
                    for (int p = 0; p < LENET_C3_O; p++)
                        acc[p] += row[p + j] * wv;
                }
            }
        for (int p = 0; p < LENET_C3_O; p++)
            for (int k = 0; k < LENET_C3_OUT; k++)
                out[(k * LENET_C3_O + y) * LENET_C3_O + p] = acc[p][k];
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

    /* weights and biases, vectorised across the 16 maps */
    V* db = (V*)(part + LENET_C3_IN * LENET_K * LENET_K * LENET_C3_OUT);
    V bias = *db;
    for (int q = 0; q < positions; q++)
        bias += *(const V*)(dt + q * LENET_C3_OUT);
    *db = bias;
    for (int c = 0; c < LENET_C3_IN; c++)
        for (int i = 0; i < LENET_K; i++) {
            V* dw = (V*)(part + (c * LENET_K + i) * LENET_K * LENET_C3_OUT);
            V a0 = dw[0], a1 = dw[1], a2 = dw[2], a3 = dw[3], a4 = dw[4];    /* the five taps j */
            for (int y = 0; y < LENET_C3_O; y++) {
                const T* row = x + (c * LENET_C3_H + y + i) * LENET_C3_H;
                for (int p = 0; p < LENET_C3_O; p++) {
                    const V d = *(const V*)(dt + (y * LENET_C3_O + p) * LENET_C3_OUT);
                    a0 += row[p] * d;
                    a1 += row[p + 1] * d;
                    a2 += row[p + 2] * d;
                    a3 += row[p + 3] * d;
                    a4 += row[p + 4] * d;
                }
            }
            dw[0] = a0; dw[1] = a1; dw[2] = a2; dw[3] = a3; dw[4] = a4;
        }

    /* dx, the full convolution, vectorised along its rows (16 lanes, 14 used): an input row y of map k
     * shifted by j, loaded once, adds into the rows y + i of dx[c], i < 5, all 14 held in registers */
    memset(padded, 0, LENET_C3_OUT * LENET_C3_O * LENET_C3_PAD * sizeof(T));
    for (int r = 0; r < LENET_C3_OUT * LENET_C3_O; r++)
        memcpy(padded + r * LENET_C3_PAD + LENET_K - 1, dout + r * LENET_C3_O, LENET_C3_O * sizeof(T));
    for (int c = 0; c < LENET_C3_IN; c++) {
        V acc[LENET_C3_H];
        for (int r = 0; r < LENET_C3_H; r++)
            acc[r] = (V){0};
        for (int k = 0; k < LENET_C3_OUT; k++) {
            if (!table[c * LENET_C3_OUT + k])
                continue;
            const T* wk = w + (k * LENET_C3_IN + c) * LENET_K * LENET_K;
            for (int j = 0; j < LENET_K; j++) {
#pragma GCC unroll 10
                for (int y = 0; y < LENET_C3_O; y++) {
                    /* lane p: dout[k, y, p - j] (zero outside the row) */
                    const V v = *(const V*)(padded + (k * LENET_C3_O + y) * LENET_C3_PAD + LENET_K - 1 - j);
#pragma GCC unroll 5
                    for (int i = 0; i < LENET_K; i++)
                        acc[y + i] += wk[i * LENET_K + j] * v;
                }
            }
        }
        for (int r = 0; r < LENET_C3_H; r++)
            for (int p = 0; p < LENET_C3_H; p++)
                dx[(c * LENET_C3_H + r) * LENET_C3_H + p] = acc[r][p];
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

static inline void FN(lenet_dense_backward)(T* restrict dx, T* restrict dw, T* restrict db, const T* restrict dout,
                                            const T* restrict x, const T* restrict w, int F, int K)
{
    /* dout (K,), x (F,), w (K, F) -> dx (F,) overwritten (the sum over k in ascending order); dw (K, F)
     * and db (K,) accumulated */
    enum { BLOCK = 4 };     /* vectors of dx in registers */
    int f = 0;
    for (; f + BLOCK * 16 <= F; f += BLOCK * 16) {
        V acc[BLOCK], xv[BLOCK];
        for (int b = 0; b < BLOCK; b++) {
            acc[b] = (V){0};
            xv[b] = *(const V*)(x + f + 16 * b);
        }
        for (int k = 0; k < K; k++) {
            const T d = dout[k];
            for (int b = 0; b < BLOCK; b++) {
                acc[b] += d * *(const V*)(w + k * F + f + 16 * b);
                *(V*)(dw + k * F + f + 16 * b) += d * xv[b];
            }
        }
        for (int b = 0; b < BLOCK; b++)
            *(V*)(dx + f + 16 * b) = acc[b];
    }
    for (; f + 16 <= F; f += 16) {
        V acc = {0};
        const V xv = *(const V*)(x + f);
        for (int k = 0; k < K; k++) {
            acc += dout[k] * *(const V*)(w + k * F + f);
            *(V*)(dw + k * F + f) += dout[k] * xv;
        }
        *(V*)(dx + f) = acc;
    }
    for (; f < F; f++) {
        T acc = 0;
        for (int k = 0; k < K; k++) {
            acc += dout[k] * w[k * F + f];
            dw[k * F + f] += dout[k] * x[f];
        }
        dx[f] = acc;
    }
    for (int k = 0; k < K; k++)
        db[k] += dout[k];
}
