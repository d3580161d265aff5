/* The C3 helpers for one element type T with vector type V (16 lanes); included by c3_simd.h once per
 * type, with FN(name) naming the specialisation. Arrays are one sample's, contiguous, channels first. */

static inline void FN(lenet_c3_transpose_weights)(T* restrict wt, const T* restrict w,
                                                  const unsigned char* restrict table)
{
    /* w (16, 6, 5, 5), table (6, 16) -> wt (6, 5, 5, 16), zero where unconnected */
    const int taps = LENET_C3_K * LENET_C3_K;
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
            for (int i = 0; i < LENET_C3_K; i++) {
                const T* row = x + (c * LENET_C3_H + y + i) * LENET_C3_H;
                const T* w = wt + (c * LENET_C3_K + i) * LENET_C3_K * LENET_C3_OUT;
                for (int j = 0; j < LENET_C3_K; j++) {
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

static inline void FN(lenet_c3_backward_weights)(T* restrict dwt, const T* restrict dout, const T* restrict x,
                                                 T* restrict scratch)
{
    /* dwt (6, 5, 5, 16) += d(loss)/d(wt): sum over positions (y, p) of x[c, y + i, p + j] dout[:, y, p],
     * for dout (16, 10, 10) and x (6, 14, 14); scratch: 1600 values (dout position-major) */
    const int positions = LENET_C3_O * LENET_C3_O;
    for (int q = 0; q < positions; q++)
        for (int k = 0; k < LENET_C3_OUT; k++)
            scratch[q * LENET_C3_OUT + k] = dout[k * positions + q];
    for (int c = 0; c < LENET_C3_IN; c++)
        for (int i = 0; i < LENET_C3_K; i++) {
            V* dw = (V*)(dwt + (c * LENET_C3_K + i) * LENET_C3_K * LENET_C3_OUT);
            V a0 = dw[0], a1 = dw[1], a2 = dw[2], a3 = dw[3], a4 = dw[4];    /* the five taps j */
            for (int y = 0; y < LENET_C3_O; y++) {
                const T* row = x + (c * LENET_C3_H + y + i) * LENET_C3_H;
                for (int p = 0; p < LENET_C3_O; p++) {
                    const V d = *(const V*)(scratch + (y * LENET_C3_O + p) * LENET_C3_OUT);
                    a0 += row[p] * d;
                    a1 += row[p + 1] * d;
                    a2 += row[p + 2] * d;
                    a3 += row[p + 3] * d;
                    a4 += row[p + 4] * d;
                }
            }
            dw[0] = a0; dw[1] = a1; dw[2] = a2; dw[3] = a3; dw[4] = a4;
        }
}

static inline void FN(lenet_c3_fold_weights)(T* restrict dw, T* restrict dwt, const unsigned char* restrict table)
{
    /* dw (16, 6, 5, 5) += dwt transposed back, for the connected pairs only; dwt is zeroed */
    const int taps = LENET_C3_K * LENET_C3_K;
    for (int c = 0; c < LENET_C3_IN; c++)
        for (int t = 0; t < taps; t++)
            for (int k = 0; k < LENET_C3_OUT; k++) {
                if (table[c * LENET_C3_OUT + k])
                    dw[(k * LENET_C3_IN + c) * taps + t] += dwt[(c * taps + t) * LENET_C3_OUT + k];
                dwt[(c * taps + t) * LENET_C3_OUT + k] = 0;
            }
}
