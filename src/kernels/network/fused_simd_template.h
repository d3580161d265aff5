/* The helpers for one element type T with vector type V (16 lanes); included by fused_simd.h
 * once per type, with FN(name) naming the specialisation. Arrays are one sample's, contiguous, channels
 * first. */

static inline T FN(lenet_sum_lanes)(const V a)
{
    /* the 16 lanes added pairwise in a fixed order (that of _sum_lanes in layers/lanes.pxd) */
    return ((((a[0] + a[8]) + (a[4] + a[12])) + ((a[2] + a[10]) + (a[6] + a[14])))
            + (((a[1] + a[9]) + (a[5] + a[13])) + ((a[3] + a[11]) + (a[7] + a[15]))));
}

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
                    for (int j = 0; j < LENET_K; j++) {
                        xv[j] = *(const V*)(x + (y + i) * LENET_C1_H + p0 + j);
                        IN_REGISTER(xv[j]);     /* loaded once for the three maps */
                    }
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

static inline __attribute__((always_inline)) int
FN(lenet_dense_forward_rows)(T* restrict out, const T* restrict x, const T* restrict w, const T* restrict b,
                             int F, int k, int K, ptrdiff_t stride, const int n, const int rows)
{
    /* the outputs k, k + 1, ... of the n samples, `rows` at a time while a whole block fits below K:
     * rows * n independent sums in registers (one sum alone would wait on each multiply-add's latency);
     * returns the first row not done */
    const int full = F - F % 16;
    for (; k + rows <= K; k += rows) {
        V acc[8][LENET_GROUP];
        for (int r = 0; r < rows; r++)
            for (int s = 0; s < n; s++)
                acc[r][s] = (V){0};
        for (int f = 0; f < full; f += 16) {
            V xv[LENET_GROUP];
            for (int s = 0; s < n; s++) {
                xv[s] = *(const V*)(x + s * stride + f);
                IN_REGISTER(xv[s]);     /* loaded once for all the rows */
            }
            for (int r = 0; r < rows; r++) {
                const V wv = *(const V*)(w + (ptrdiff_t)(k + r) * F + f);
                for (int s = 0; s < n; s++)
                    acc[r][s] += wv * xv[s];
            }
        }
        for (int r = 0; r < rows; r++)
            for (int s = 0; s < n; s++) {
                for (int l = 0; l < F - full; l++)
                    acc[r][s][l] += w[(ptrdiff_t)(k + r) * F + full + l] * x[s * stride + full + l];
                out[s * stride + k + r] = b[k + r] + FN(lenet_sum_lanes)(acc[r][s]);
            }
    }
    return k;
}

static inline __attribute__((always_inline)) void
FN(lenet_dense_forward_n)(T* restrict out, const T* restrict x, const T* restrict w, const T* restrict b,
                          int F, int K, ptrdiff_t stride, const int n)
{
    /* 8 rows at a time for one or two samples, 4 for more, then the rest one by one */
    int k = FN(lenet_dense_forward_rows)(out, x, w, b, F, 0, K, stride, n, n <= 2 ? 8 : 4);
    FN(lenet_dense_forward_rows)(out, x, w, b, F, k, K, stride, n, 1);
}

static inline void FN(lenet_dense_forward)(T* restrict out, const T* restrict x, const T* restrict w,
                                           const T* restrict b, int F, int K, ptrdiff_t stride, int n)
{
    /* for the samples s < n (n <= LENET_GROUP; their arrays stride apart): out_s (K,) = b + w x_s, each
     * sum as _dense_forward_one's (16 partial sums, then lenet_sum_lanes), each weight row read once
     * for all n; a switch on n, so that each case has constant loops (accumulators in registers) */
    switch (n) {
    case 1: FN(lenet_dense_forward_n)(out, x, w, b, F, K, stride, 1); break;
    case 2: FN(lenet_dense_forward_n)(out, x, w, b, F, K, stride, 2); break;
    case 3: FN(lenet_dense_forward_n)(out, x, w, b, F, K, stride, 3); break;
    default: FN(lenet_dense_forward_n)(out, x, w, b, F, K, stride, 4); break;
    }
}

static inline __attribute__((always_inline)) int
FN(lenet_dense_backward_cols)(T* restrict dx, T* restrict dw, const T* restrict dout, const T* restrict x,
                              const T* restrict w, int f, int F, int K, ptrdiff_t stride, const int n,
                              const int width)
{
    /* the inputs f, f + 1, ... `width` vectors at a time while a whole block fits below F: every
     * sample's dx for the block in registers, each weight and gradient vector loaded once for all n
     * samples; returns the first input not done */
    for (; f + 16 * width <= F; f += 16 * width) {
        V acc[LENET_GROUP][2], xv[LENET_GROUP][2];
        for (int s = 0; s < n; s++)
            for (int h = 0; h < width; h++) {
                acc[s][h] = (V){0};
                xv[s][h] = *(const V*)(x + s * stride + f + 16 * h);
            }
        for (int k = 0; k < K; k++) {
            V wv[2], gv[2];
            for (int h = 0; h < width; h++) {
                wv[h] = *(const V*)(w + (ptrdiff_t)k * F + f + 16 * h);
                IN_REGISTER(wv[h]);     /* loaded once for all the samples */
                gv[h] = *(const V*)(dw + (ptrdiff_t)k * F + f + 16 * h);
            }
            for (int s = 0; s < n; s++) {
                const T d = dout[s * stride + k];
                for (int h = 0; h < width; h++) {
                    acc[s][h] += d * wv[h];
                    gv[h] += d * xv[s][h];
                }
            }
            for (int h = 0; h < width; h++)
                *(V*)(dw + (ptrdiff_t)k * F + f + 16 * h) = gv[h];
        }
        for (int s = 0; s < n; s++)
            for (int h = 0; h < width; h++)
                *(V*)(dx + s * stride + f + 16 * h) = acc[s][h];
    }
    return f;
}

static inline __attribute__((always_inline)) void
FN(lenet_dense_backward_n)(T* restrict dx, T* restrict dw, T* restrict db, const T* restrict dout,
                           const T* restrict x, const T* restrict w, int F, int K, ptrdiff_t stride, const int n)
{
    /* 32 inputs at a time, then 16, then the rest one by one */
    int f = FN(lenet_dense_backward_cols)(dx, dw, dout, x, w, 0, F, K, stride, n, 2);
    f = FN(lenet_dense_backward_cols)(dx, dw, dout, x, w, f, F, K, stride, n, 1);
    for (; f < F; f++)
        for (int s = 0; s < n; s++) {
            T acc = 0;
            for (int k = 0; k < K; k++) {
                acc += dout[s * stride + k] * w[(ptrdiff_t)k * F + f];
                dw[(ptrdiff_t)k * F + f] += dout[s * stride + k] * x[s * stride + f];
            }
            dx[s * stride + f] = acc;
        }
    for (int k = 0; k < K; k++)
        for (int s = 0; s < n; s++)
            db[k] += dout[s * stride + k];
}

static inline void FN(lenet_dense_backward)(T* restrict dx, T* restrict dw, T* restrict db, const T* restrict dout,
                                            const T* restrict x, const T* restrict w, int F, int K, ptrdiff_t stride,
                                            int n)
{
    /* for the samples s < n (n <= LENET_GROUP; their arrays stride apart), dout_s (K,), x_s (F,), w (K, F)
     * -> dx_s (F,) overwritten (the sum over k ascending); dw (K, F) and db (K,) accumulated, the samples
     * in order. Each weight row and gradient row streams past once for all n samples. */
    switch (n) {
    case 1: FN(lenet_dense_backward_n)(dx, dw, db, dout, x, w, F, K, stride, 1); break;
    case 2: FN(lenet_dense_backward_n)(dx, dw, db, dout, x, w, F, K, stride, 2); break;
    case 3: FN(lenet_dense_backward_n)(dx, dw, db, dout, x, w, F, K, stride, 3); break;
    default: FN(lenet_dense_backward_n)(dx, dw, db, dout, x, w, F, K, stride, 4); break;
    }
}

static inline void FN(lenet_dense_backward_step)(T* restrict dx, T* restrict w, T* restrict b, T* restrict vw,
                                                 T* restrict vb, const T* restrict step_w,
                                                 const T* restrict step_b, const T* restrict dout,
                                                 const T* restrict x, int F, int K, T momentum, T decay)
{
    /* One sample's dense backward with its update folded in (batch size 1), so that the weights and their
     * step sizes stream past once, with no gradient row: dx (F,) overwritten (through the weights before
     * their update, the sum over k ascending), then w (K, F) and b (K,) updated with the gradient
     * dout x^T and dout as train.pyx's _update does (vw, vb: the velocities; NULL without momentum). */
    int f = 0;
    for (; f + 16 <= F; f += 16) {
        V acc = {0};
        const V xv = *(const V*)(x + f);
        for (int k = 0; k < K; k++) {
            const ptrdiff_t at = (ptrdiff_t)k * F + f;
            const V wv = *(const V*)(w + at), st = *(const V*)(step_w + at);
            const V g = dout[k] * xv;
            acc += dout[k] * wv;
            if (vw) {
                const V v = momentum * *(const V*)(vw + at) + (g + decay * wv);
                *(V*)(vw + at) = v;
                *(V*)(w + at) = wv - st * v;
            } else {
                *(V*)(w + at) = wv - st * (g + decay * wv);
            }
        }
        *(V*)(dx + f) = acc;
    }
    for (; f < F; f++) {
        T acc = 0;
        for (int k = 0; k < K; k++) {
            const ptrdiff_t at = (ptrdiff_t)k * F + f;
            const T wv = w[at], g = dout[k] * x[f];
            acc += dout[k] * wv;
            if (vw) {
                vw[at] = momentum * vw[at] + (g + decay * wv);
                w[at] = wv - step_w[at] * vw[at];
            } else {
                w[at] = wv - step_w[at] * (g + decay * wv);
            }
        }
        dx[f] = acc;
    }
    for (int k = 0; k < K; k++) {
        if (vb) {
            vb[k] = momentum * vb[k] + (dout[k] + decay * b[k]);
            b[k] -= step_b[k] * vb[k];
        } else {
            b[k] -= step_b[k] * (dout[k] + decay * b[k]);
        }
    }
}
