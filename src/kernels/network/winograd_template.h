/* C3 of inference in the modern variant by Winograd's minimal filtering F(2x2, 5x5): each 2x2 block of a
 * map's outputs from a 6x6 block of its inputs, as A^T [U (.) (B^T d B)] A, with U = G g G^T the kernel's
 * transform (lenet_winograd_weights: once per call). 36 multiply-adds per input map and block instead of
 * 100; with the transforms (each block's inputs' shared by the 16 maps, each map's outputs' by the 6
 * input maps) about 134,000 vector operations per block of samples instead of 240,000 (measured alone:
 * 0.66x the time of the direct C3 and S4, AVX-512). The 2x2 blocks are S4's max-pool windows, so the
 * bias, the ReLU and the pooling follow the output transform, and C3 is never stored
 * (relu(max) = max(relu): the same bits).
 *
 * The points are 0, 1, -1, 2, -2 and infinity (B^T as Lavin and Gray's F(4, 3), which has the same six).
 * The sums differ from those of a direct convolution in their last bits (tests/test_train_kernel.py
 * bounds the difference); every sample's sums are the same whichever layout computes them (lanes here,
 * lenet_winograd_c3_pool_one for the samples outside a whole block), bit for bit: each sum starts from
 * zero (with a first product, gcc may fuse either of the first two products into the addition). */

/* (B^T d)[i]: output i of the input transform of six values d[0], d[s], ..., d[5 s] (each type's
 * arithmetic in this one order) */
#define LENET_WINO_BT(i, d, s)                                                                               \
    ((i) == 0 ? ((d)[4 * (s)] + (T)4 * (d)[0]) - (T)5 * (d)[2 * (s)]                                         \
     : (i) == 1 ? ((d)[3 * (s)] + (d)[4 * (s)]) - (T)4 * ((d)[(s)] + (d)[2 * (s)])                           \
     : (i) == 2 ? ((d)[4 * (s)] - (d)[3 * (s)]) + (T)4 * ((d)[(s)] - (d)[2 * (s)])                           \
     : (i) == 3 ? ((d)[4 * (s)] - (d)[2 * (s)]) + (T)2 * ((d)[3 * (s)] - (d)[(s)])                           \
     : (i) == 4 ? ((d)[4 * (s)] - (d)[2 * (s)]) - (T)2 * ((d)[3 * (s)] - (d)[(s)])                           \
     : ((d)[5 * (s)] + (T)4 * (d)[(s)]) - (T)5 * (d)[3 * (s)])

/* all six: o[i * os] = (B^T d)[i] */
#define LENET_WINO_IN(o, os, d, s) do {                                                                      \
    for (int i_ = 0; i_ < 6; i_++)                                                                           \
        (o)[i_ * (os)] = LENET_WINO_BT(i_, d, s);                                                            \
} while (0)

/* A^T m: the output transform of six values m[0], m[s], ..., m[5 s] into y0, y1 */
#define LENET_WINO_OUT(y0, y1, m, s) do {                                                                    \
    const __typeof__((m)[0]) m0_ = (m)[0], m1_ = (m)[(s)], m2_ = (m)[2 * (s)], m3_ = (m)[3 * (s)],            \
                             m4_ = (m)[4 * (s)], m5_ = (m)[5 * (s)];                                         \
    (y0) = (m0_ + (m1_ + m2_)) + (m3_ + m4_);                                                                \
    (y1) = ((m1_ - m2_) + (T)2 * (m3_ - m4_)) + m5_;                                                         \
} while (0)

#define LENET_WINO_TILES 5      /* blocks of 2x2 outputs in a row of C3's 10x10 */
#define LENET_WINO_POS 36       /* values of a 6x6 transform */

static inline void FN(lenet_winograd_weights)(T* restrict u, const T* restrict w)
{
    /* w (16, 6, 5, 5) -> u (36, 6, 16): u[p, c, k] = (G w[k, c] G^T) at p, in double (the 16 maps in
     * DH registers), rounded once */
    static const double g[6][LENET_K] = {
        {1. / 4, 0, 0, 0, 0}, {-1. / 6, -1. / 6, -1. / 6, -1. / 6, -1. / 6},
        {-1. / 6, 1. / 6, -1. / 6, 1. / 6, -1. / 6}, {1. / 24, 2. / 24, 4. / 24, 8. / 24, 16. / 24},
        {1. / 24, -2. / 24, 4. / 24, -8. / 24, 16. / 24}, {0, 0, 0, 0, 1}};
    typedef lenet_bvd DV;
    enum { K = LENET_C3_OUT, DL = LENET_LANES_D, DH = K / DL, TAPS = LENET_K * LENET_K };
    for (int c = 0; c < LENET_C3_IN; c++) {
        double wc[TAPS][K];
        DV gw[6][LENET_K][DH];
        for (int k = 0; k < K; k++)
            for (int t = 0; t < TAPS; t++)
                wc[t][k] = w[(k * LENET_C3_IN + c) * TAPS + t];
        for (int a = 0; a < 6; a++)
            for (int j = 0; j < LENET_K; j++)
                for (int h = 0; h < DH; h++) {
                    DV s = (DV){0};
                    for (int i = 0; i < LENET_K; i++)
                        s += (g[a][i] - (DV){0}) * *(const DV*)&wc[i * LENET_K + j][h * DL];
                    gw[a][j][h] = s;
                }
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++)
                for (int h = 0; h < DH; h++) {
                    DV s = (DV){0};
                    for (int j = 0; j < LENET_K; j++)
                        s += gw[a][j][h] * (g[b][j] - (DV){0});
                    for (int l = 0; l < DL; l++)
                        u[((a * 6 + b) * LENET_C3_IN + c) * K + h * DL + l] = (T)s[l];
                }
    }
}

#define LENET_WINO_MAX(a, b) LANES_SELECT((b) > (a), (b), (a))

static inline __attribute__((always_inline)) void
FN(lenet_lanes_wino_maps)(BV* restrict out, const BV* restrict v, const T* restrict u, const T* restrict bias,
                          const int t0, const int tiles)
{
    /* the outputs of `tiles` (at most 2) blocks t0, t0 + 1 of every map from their inputs' transforms v
     * (25 blocks, 6 c, 36): a column of each product at a time, in two halves (rows 0-2, 3-5) of 4 maps x
     * 2 blocks x 3 rows of sums (2 maps with 16 registers), folded into the output transform's first
     * step z as it goes (the same operations as LENET_WINO_OUT's) */
    enum { KB = LENET_SUMS_32 ? 4 : 2, POS = LENET_WINO_POS };
    for (int k0 = 0; k0 < LENET_C3_OUT; k0 += KB) {
        BV z[KB][2][12];
        for (int j = 0; j < 6; j++)
            for (int h = 0; h < 2; h++) {
                BV acc[KB][2][3];
                const T* up = u + ((3 * h) * 6 + j) * LENET_C3_IN * LENET_C3_OUT + k0;
                const BV* vp = v + t0 * LENET_C3_IN * POS + (3 * h) * 6 + j;
                LENET_UNROLL
                for (int kk = 0; kk < KB; kk++)
                    LENET_UNROLL
                    for (int t = 0; t < tiles; t++)
                        LENET_UNROLL
                        for (int i = 0; i < 3; i++)
                            acc[kk][t][i] = (BV){0};
                for (int c = 0; c < LENET_C3_IN; c++)
                    LENET_UNROLL
                    for (int i = 0; i < 3; i++)
                        LENET_UNROLL
                        for (int t = 0; t < tiles; t++) {
                            const BV vv = vp[(t * LENET_C3_IN + c) * POS + i * 6];
                            LENET_UNROLL
                            for (int kk = 0; kk < KB; kk++)
                                acc[kk][t][i] += BVEC(up[(i * 6 * LENET_C3_IN + c) * LENET_C3_OUT + kk]) * vv;
                        }
                for (int kk = 0; kk < KB; kk++)
                    for (int t = 0; t < tiles; t++) {
                        const BV* m = acc[kk][t];
                        if (h == 0) {
                            z[kk][t][j] = m[0] + (m[1] + m[2]);
                            z[kk][t][6 + j] = m[1] - m[2];
                        } else {
                            z[kk][t][j] = z[kk][t][j] + (m[0] + m[1]);
                            z[kk][t][6 + j] = (z[kk][t][6 + j] + (T)2 * (m[0] - m[1])) + m[2];
                        }
                    }
            }
        for (int kk = 0; kk < KB; kk++)
            for (int t = 0; t < tiles; t++) {
                BV y[4];
                LENET_WINO_OUT(y[0], y[1], z[kk][t], 1);
                LENET_WINO_OUT(y[2], y[3], z[kk][t] + 6, 1);
                const BV b = BVEC(bias[k0 + kk]);
                BV r = LENET_WINO_MAX(LENET_WINO_MAX(y[0] + b, y[1] + b), LENET_WINO_MAX(y[2] + b, y[3] + b));
                out[(k0 + kk) * 25 + t0 + t] = LANES_SELECT(r > 0, r, (BV){0});
            }
    }
}

static inline void FN(lenet_lanes_c3_pool_winograd)(T* restrict out, const T* restrict x, const T* restrict u,
                                             const T* restrict bias, T* restrict scratch)
{
    /* x (6, 14, 14, BL), u (36, 6, 16) -> out (16, 5, 5, BL) = S4 of the ReLU of C3; scratch: 5,400 x BL
     * values. The inputs' transforms of all 25 blocks (a row of blocks at a time: a row of the columns'
     * transforms, then each block's transform of it), then the maps two blocks at a time */
    enum { TILES = LENET_WINO_TILES, POS = LENET_WINO_POS };
    const BV* in = (const BV*)x;
    BV* v = (BV*)scratch;                                   /* (25 blocks, 6 c, 36) */
    for (int ty = 0; ty < TILES; ty++)
        for (int c = 0; c < LENET_C3_IN; c++) {
            const BV* rows = in + (c * LENET_C3_H + 2 * ty) * LENET_C3_H;
            LENET_UNROLL
            for (int i = 0; i < 6; i++) {
                BV r[LENET_C3_H];       /* row i of the columns' transforms, in registers */
                LENET_UNROLL
                for (int j = 0; j < LENET_C3_H; j++)
                    r[j] = LENET_WINO_BT(i, rows + j, LENET_C3_H);
                LENET_UNROLL
                for (int tx = 0; tx < TILES; tx++)
                    LENET_WINO_IN(v + ((ty * TILES + tx) * LENET_C3_IN + c) * POS + i * 6, 1, r + 2 * tx, 1);
            }
        }
    for (int t0 = 0; t0 + 1 < TILES * TILES; t0 += 2)
        FN(lenet_lanes_wino_maps)((BV*)out, v, u, bias, t0, 2);
    FN(lenet_lanes_wino_maps)((BV*)out, v, u, bias, TILES * TILES - 1, 1);
}

static inline __attribute__((always_inline)) void
FN(lenet_wino_maps_one)(T* restrict out, const T* restrict vs, const T* restrict u, const T* restrict bias,
                        const int t0, const int tiles)
{
    /* the blocks t0 .. t0 + tiles - 1 of a row of one sample, as lenet_lanes_wino_maps (the 16 maps in
     * a vector; vs: the inputs' transforms, (6 c, 36, TV x BL blocks)); out (16, 5, 5) at the row's
     * first */
    enum { H = 16 / BL, TB = H == 1 ? 5 : (H == 2 ? 2 : 1), POS = LENET_WINO_POS,
           STRIDE = (LENET_WINO_TILES + BL - 1) / BL * BL };
    BV z[TB][12][H];
    for (int j = 0; j < 6; j++)
        for (int h = 0; h < 2; h++) {
            BV acc[TB][3][H];
            LENET_UNROLL
            for (int t = 0; t < tiles; t++)
                LENET_UNROLL
                for (int i = 0; i < 3; i++)
                    LENET_UNROLL
                    for (int hh = 0; hh < H; hh++)
                        acc[t][i][hh] = (BV){0};
            for (int c = 0; c < LENET_C3_IN; c++)
                LENET_UNROLL
                for (int i = 0; i < 3; i++) {
                    const int p = (3 * h + i) * 6 + j;
                    LENET_UNROLL
                    for (int t = 0; t < tiles; t++)
                        LENET_UNROLL
                        for (int hh = 0; hh < H; hh++)
                            acc[t][i][hh] += BVEC(vs[(c * POS + p) * STRIDE + t0 + t])
                                             * *(const BV*)(u + (p * LENET_C3_IN + c) * 16 + hh * BL);
                }
            for (int t = 0; t < tiles; t++)
                for (int hh = 0; hh < H; hh++) {
                    const BV m0 = acc[t][0][hh], m1 = acc[t][1][hh], m2 = acc[t][2][hh];
                    if (h == 0) {
                        z[t][j][hh] = m0 + (m1 + m2);
                        z[t][6 + j][hh] = m1 - m2;
                    } else {
                        z[t][j][hh] = z[t][j][hh] + (m0 + m1);
                        z[t][6 + j][hh] = (z[t][6 + j][hh] + (T)2 * (m0 - m1)) + m2;
                    }
                }
        }
    for (int t = 0; t < tiles; t++)
        for (int hh = 0; hh < H; hh++) {
            BV zz[12], y[4];
            for (int q = 0; q < 12; q++)
                zz[q] = z[t][q][hh];
            LENET_WINO_OUT(y[0], y[1], zz, 1);
            LENET_WINO_OUT(y[2], y[3], zz + 6, 1);
            const BV b = *(const BV*)(bias + hh * BL);
            BV r = LENET_WINO_MAX(LENET_WINO_MAX(y[0] + b, y[1] + b), LENET_WINO_MAX(y[2] + b, y[3] + b));
            r = LANES_SELECT(r > 0, r, (BV){0});
            for (int l = 0; l < BL; l++)
                out[(hh * BL + l) * 25 + t0 + t] = r[l];
        }
}

static inline void FN(lenet_winograd_c3_pool_one)(T* restrict out, const T* restrict x, const T* restrict u,
                                                  const T* restrict bias, T* restrict scratch)
{
    /* one sample: x (6, 14, 14), u (36, 6, 16) -> out (16, 5, 5), the sums of
     * lenet_lanes_c3_pool_winograd in the same order. The input maps' columns reordered, the even ones
     * then the odd ones (8 lanes each), so that the values each block's row transform needs are a
     * vector's lanes at a constant offset. Then a row of blocks at a time: the columns' transforms
     * (vectors over the columns), each block's transforms of their rows (vectors over the 5 blocks) into
     * scratch (6 c, 36, TV x BL blocks: at most 3,456 values), then the products with the 16 maps in a
     * vector (H registers of the target's width) */
    enum { H = 16 / BL, TB = H == 1 ? 5 : (H == 2 ? 2 : 1), TILES = LENET_WINO_TILES, POS = LENET_WINO_POS,
           HALF = 8, CV = 2 * HALF / BL, TV = (TILES + BL - 1) / BL };
    T xs[LENET_C3_IN][LENET_C3_H][2 * HALF];        /* x, the columns 0, 2, .., 12, then 1, 3, .., 13 */
    for (int c = 0; c < LENET_C3_IN; c++)
        for (int y = 0; y < LENET_C3_H; y++)
            for (int l = 0; l < HALF; l++) {
                xs[c][y][l] = l < LENET_C3_H / 2 ? x[(c * LENET_C3_H + y) * LENET_C3_H + 2 * l] : 0;
                xs[c][y][HALF + l] = l < LENET_C3_H / 2 ? x[(c * LENET_C3_H + y) * LENET_C3_H + 2 * l + 1] : 0;
            }
    BV* vs = (BV*)scratch;
    T col[6][4 * HALF] = {{0}};     /* the columns' transforms, then zeros to read past them */
    for (int ty = 0; ty < TILES; ty++) {
        for (int c = 0; c < LENET_C3_IN; c++) {
            for (int h = 0; h < CV; h++) {
                BV d[6], o[6];
                for (int i = 0; i < 6; i++)
                    d[i] = *(const BV*)(xs[c][2 * ty + i] + h * BL);
                LENET_WINO_IN(o, 1, d, 1);
                for (int i = 0; i < 6; i++)
                    *(BV*)(col[i] + h * BL) = o[i];
            }
            for (int i = 0; i < 6; i++)
                for (int h = 0; h < TV; h++) {
                    /* column 2 tx + j of the block tx in lane tx: an even column's at tx + j / 2, an odd's
                     * at HALF + tx + j / 2 */
                    BV d[6], o[6];
                    for (int j = 0; j < 6; j++)
                        d[j] = *(const BV*)(col[i] + (j % 2) * HALF + j / 2 + h * BL);
                    LENET_WINO_IN(o, 1, d, 1);
                    for (int j = 0; j < 6; j++)
                        vs[(c * POS + i * 6 + j) * TV + h] = o[j];
                }
        }
        for (int t0 = 0; t0 < TILES; t0 += TB)
            FN(lenet_wino_maps_one)(out + ty * TILES, (const T*)vs, u, bias, t0, t0 + TB <= TILES ? TB : TILES - t0);
    }
}

#undef LENET_WINO_MAX
