/* The dense-layer helpers for one element type T with the vector type BV (a register of the target, BL
 * lanes); included by fused_simd.h once per type, with FN(name) naming the specialisation. */

static inline __attribute__((always_inline)) int
FN(lenet_dense_forward_rows)(T* restrict out, const T* restrict x, const T* restrict w, const T* restrict b,
                             int F, int k, int K, ptrdiff_t stride, const int n, const int rows)
{
    /* the outputs k, k + 1, ... of the n samples, `rows` at a time while a whole block fits below K:
     * rows * n independent sums in registers (one sum alone would wait on each multiply-add's latency),
     * each its 16 partial sums as H registers of the target's width; returns the first row not done */
    enum { H = 16 / BL };
    const int full = F - F % 16;
    for (; k + rows <= K; k += rows) {
        BV acc[8][LENET_GROUP][H];
        for (int r = 0; r < rows; r++)
            for (int s = 0; s < n; s++)
                for (int h = 0; h < H; h++)
                    acc[r][s][h] = (BV){0};
        for (int f = 0; f < full; f += 16) {
            BV xv[LENET_GROUP][H];
            for (int s = 0; s < n; s++)
                for (int h = 0; h < H; h++) {
                    xv[s][h] = *(const BV*)(x + s * stride + f + h * BL);
                    IN_REGISTER(xv[s][h]);      /* loaded once for all the rows */
                }
            for (int r = 0; r < rows; r++)
                for (int h = 0; h < H; h++) {
                    const BV wv = *(const BV*)(w + (ptrdiff_t)(k + r) * F + f + h * BL);
                    for (int s = 0; s < n; s++)
                        acc[r][s][h] += wv * xv[s][h];
                }
        }
        for (int r = 0; r < rows; r++)
            for (int s = 0; s < n; s++) {
                T part[16];
                memcpy(part, acc[r][s], sizeof part);
                for (int l = 0; l < F - full; l++)
                    part[l] += w[(ptrdiff_t)(k + r) * F + full + l] * x[s * stride + full + l];
                out[s * stride + k + r] = b[k + r] + LENET_SUM16(part);
            }
    }
    return k;
}

static inline __attribute__((always_inline)) void
FN(lenet_dense_forward_n)(T* restrict out, const T* restrict x, const T* restrict w, const T* restrict b,
                          int F, int K, ptrdiff_t stride, const int n)
{
    /* as many rows at a time as keep about half the registers for sums (at most 8 rows; 16 / BL
     * registers a sum), then the rest one by one */
    enum { SUMS = LENET_SUMS_32 ? 16 : 8 };
    const int fit = SUMS / (n * (16 / BL)), rows = fit > 8 ? 8 : fit < 1 ? 1 : fit;
    int k = FN(lenet_dense_forward_rows)(out, x, w, b, F, 0, K, stride, n, rows);
    FN(lenet_dense_forward_rows)(out, x, w, b, F, k, K, stride, n, 1);
}

static inline void FN(lenet_dense_forward)(T* restrict out, const T* restrict x, const T* restrict w,
                                           const T* restrict b, int F, int K, ptrdiff_t stride, int n)
{
    /* for the samples s < n (n <= LENET_GROUP; their arrays stride apart): out_s (K,) = b + w x_s, each
     * sum as _dense_forward_one's (16 partial sums, then LENET_SUM16), each weight row read once
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
    /* the inputs f, f + 1, ... `width` registers (BL inputs each) at a time while they fit below F: every
     * sample's dx for them in registers, each weight and gradient register loaded once for all n
     * samples (each input's sums are its own: the width does not change the results); returns the
     * first input not done */
    for (; f + BL * width <= F; f += BL * width) {
        BV acc[LENET_GROUP][2], xv[LENET_GROUP][2];
        for (int s = 0; s < n; s++)
            for (int h = 0; h < width; h++) {
                acc[s][h] = (BV){0};
                xv[s][h] = *(const BV*)(x + s * stride + f + BL * h);
            }
        for (int k = 0; k < K; k++) {
            BV wv[2], gv[2];
            for (int h = 0; h < width; h++) {
                wv[h] = *(const BV*)(w + (ptrdiff_t)k * F + f + BL * h);
                IN_REGISTER(wv[h]);     /* loaded once for all the samples */
                gv[h] = *(const BV*)(dw + (ptrdiff_t)k * F + f + BL * h);
            }
            for (int s = 0; s < n; s++) {
                const BV d = BVEC(dout[s * stride + k]);
                for (int h = 0; h < width; h++) {
                    acc[s][h] += d * wv[h];
                    gv[h] += d * xv[s][h];
                }
            }
            for (int h = 0; h < width; h++)
                *(BV*)(dw + (ptrdiff_t)k * F + f + BL * h) = gv[h];
        }
        for (int s = 0; s < n; s++)
            for (int h = 0; h < width; h++)
                *(BV*)(dx + s * stride + f + BL * h) = acc[s][h];
    }
    return f;
}

static inline __attribute__((always_inline)) void
FN(lenet_dense_backward_n)(T* restrict dx, T* restrict dw, T* restrict db, const T* restrict dout,
                           const T* restrict x, const T* restrict w, int F, int K, ptrdiff_t stride, const int n)
{
    /* two registers' inputs at a time (with fewer than 32 registers: one), then one, then the rest one
     * by one */
    int f = FN(lenet_dense_backward_cols)(dx, dw, dout, x, w, 0, F, K, stride, n, LENET_SUMS_32 ? 2 : 1);
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
     * dout x^T and dout as the batch's update does (sgd.h; vw, vb: the velocities; NULL without
     * momentum). */
    /* a register's width of inputs at a time (every input's sum is its own: the width does not change
     * the results) */
    int f = 0;
    for (; f + BL <= F; f += BL) {
        BV acc = {0};
        const BV xv = *(const BV*)(x + f);
        for (int k = 0; k < K; k++) {
            const ptrdiff_t at = (ptrdiff_t)k * F + f;
            const BV wv = *(const BV*)(w + at), st = *(const BV*)(step_w + at), d = BVEC(dout[k]);
            const BV g = d * xv;
            acc += d * wv;
            if (vw) {
                const BV v = LENET_SGD_VELOCITY(*(const BV*)(vw + at), g, wv, momentum, decay);
                *(BV*)(vw + at) = v;
                *(BV*)(w + at) = LENET_SGD_MOMENTUM(wv, st, v);
            } else {
                *(BV*)(w + at) = LENET_SGD_PLAIN(wv, st, g, decay);
            }
        }
        *(BV*)(dx + f) = acc;
    }
    for (; f < F; f++) {
        T acc = 0;
        for (int k = 0; k < K; k++) {
            const ptrdiff_t at = (ptrdiff_t)k * F + f;
            const T wv = w[at], g = dout[k] * x[f];
            acc += dout[k] * wv;
            if (vw) {
                vw[at] = LENET_SGD_VELOCITY(vw[at], g, wv, momentum, decay);
                w[at] = LENET_SGD_MOMENTUM(wv, step_w[at], vw[at]);
            } else {
                w[at] = LENET_SGD_PLAIN(wv, step_w[at], g, decay);
            }
        }
        dx[f] = acc;
    }
    for (int k = 0; k < K; k++) {
        if (vb) {
            vb[k] = LENET_SGD_VELOCITY(vb[k], dout[k], b[k], momentum, decay);
            b[k] = LENET_SGD_MOMENTUM(b[k], step_b[k], vb[k]);
        } else {
            b[k] = LENET_SGD_PLAIN(b[k], step_b[k], dout[k], decay);
        }
    }
}
