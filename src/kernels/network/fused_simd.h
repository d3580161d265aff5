/* The layers of the fused kernels (network.pyx) where the compiler's own vectorisation of the general
 * loops in the layer helpers (src/kernels/layers/, the *_one.pxd files) falls short: LeNet-5's two convolutions and
 * the dense layers.
 * The per-layer kernels keep the general loops.
 *
 * C1 (1 map of 32x32 -> 6 maps of 28x28, 5x5 kernels): a vector holds 16 positions of an output row,
 * for all 6 maps at once, so each loaded input vector serves 6 maps. An output row is two vectors,
 * positions 0-15 and 12-27, summed together where 32 registers allow (LENET_SUMS_32): 12 independent
 * sums, enough to keep two FMA units busy through their latency (4 cycles x 2 units needs at least 8). The weight gradient is kept as 16
 * partial sums per weight ("lanes") over a whole batch, and summed once per batch, not once per sample.
 *
 * C3 (6 maps of 14x14 -> 16 maps of 10x10, 5x5 kernels, through the connection table): a vector holds
 * the 16 maps of one output position, so each loaded weight vector serves a row of positions and the
 * weight gradient needs no horizontal sums (it is summed for two input maps at a time: 10 independent
 * sums, where 32 registers allow). The weights come transposed, wt (6, 5, 5, 16) = w[k, c, i, j] at [c, i, j, k], with zeros for
 * the unconnected (c, k) pairs.
 *
 * Max-pool backward (the modern variant): the general loop compiles to branches; here, selects.
 *
 * Blocks of samples, a sample per lane (fused_lanes_template.h): inference through every layer; the
 * backward pass in training (fused_lanes_backward_template.h), with the dense layers' weight gradients
 * as a matrix product over the samples of a chunk of blocks.
 *
 * The modern variant's inference: C3, its ReLU and S4 in one step by Winograd's F(2x2, 5x5), in lanes
 * and per sample (winograd_template.h).
 *
 * Dense layers (C5, F6, the modern variant's output layer) one sample at a time, for a group of up to
 * LENET_GROUP samples at once: each weight row (and in backward its gradient row) streams past once for
 * the whole group, and backward holds two registers' inputs of every sample's dx in registers (AVX-512;
 * else one register's).
 *
 * Both convolutions' forward passes sum in the order of _conv_forward_one (bias, then c, i, j ascending, one fused
 * multiply-add each), so their results are those of the general loops (a C3 pair outside the table adds
 * w * x = 0 exactly: x is finite).
 *
 * GCC/Clang vector extensions, with no intrinsics: V is 16 lanes (one AVX-512 register of floats), BV
 * one register of the target ISA (BL lanes). The per-sample layers hold their 16 lanes as 16 / BL
 * registers of type BV, and the dense layers' inputs go a register's width at a time: a V wider than the
 * target's registers is lowered piece by piece, and gcc then keeps the sums on the stack between loop
 * iterations (measured: the avx2 path's per-sample layers ran 3x to 7x slower than the avx512 path's,
 * training at batch 1 3.3x faster with BV). Each lane's sums are the same either way. Only the fold of
 * C1's per-sample weight gradients (once per batch) still sums a V.
 * The file defines lenet_*_f (float) and lenet_*_d (double) from the templates it includes. */
#ifndef LENET_FUSED_SIMD_H
#define LENET_FUSED_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sgd.h"
#include "squash.h"

#define LENET_C1_H 32      /* C1: input height and width */
#define LENET_C1_OUT 6     /* output maps */
#define LENET_C1_O 28      /* output height and width */
#define LENET_C1_LANES (LENET_C1_OUT * LENET_K * LENET_K + LENET_C1_OUT)    /* rows of lanes: 150 weights, 6 biases */
#define LENET_C3_IN 6      /* C3: input maps */
#define LENET_C3_OUT 16    /* output maps: the lanes of a vector */
#define LENET_C3_H 14      /* input height and width */
#define LENET_C3_O 10      /* output height and width */
#define LENET_C3_PAD 20    /* row length of C3's padded output gradient: 4 + 10 + 4, and 2 more read */
#define LENET_GROUP 4      /* samples through the dense layers together (8 measured no faster) */
#if LENET_GROUP != 4
#error "lenet_dense_forward and lenet_dense_backward switch over groups of 1 to 4 samples"
#endif
#define LENET_K 5          /* kernel height and width, both layers */
#if LENET_C3_IN % 2
#error "lenet_c3_backward sums the weight gradients of two input maps at a time"
#endif
#if (LENET_C1_O * LENET_C1_O) % 4 || (LENET_C3_O * LENET_C3_O) % 4
#error "lenet_lanes_bias_grad sums 4 values at a time"
#endif
#if LENET_C1_O % 2 || LENET_C3_O % 2
#error "lenet_lanes_weight_grad_rows takes two positions of an output row at a time"
#endif

/* 16 lanes; aligned to the element only (loads and stores may be unaligned), may alias T */
typedef float lenet_vf __attribute__((vector_size(16 * sizeof(float)), aligned(sizeof(float)), may_alias));
typedef double lenet_vd __attribute__((vector_size(16 * sizeof(double)), aligned(sizeof(double)), may_alias));
/* one register of the target ISA: a block of samples side by side (fused_lanes_template.h) */
#if defined(__AVX512F__)
#define LENET_VECTOR_BYTES 64
#elif defined(__AVX__)
#define LENET_VECTOR_BYTES 32
#else
#define LENET_VECTOR_BYTES 16
#endif
#define LENET_LANES_F (LENET_VECTOR_BYTES / 4)     /* samples in a block: float */
#define LENET_LANES_D (LENET_VECTOR_BYTES / 8)     /* double */
typedef float lenet_bvf __attribute__((vector_size(LENET_VECTOR_BYTES), aligned(sizeof(float)), may_alias));
typedef double lenet_bvd __attribute__((vector_size(LENET_VECTOR_BYTES), aligned(sizeof(double)), may_alias));
typedef int lenet_bvfi __attribute__((vector_size(LENET_VECTOR_BYTES)));
typedef long long lenet_bvdi __attribute__((vector_size(LENET_VECTOR_BYTES)));
/* a short loop unrolled in full, where its index must become a constant (offsets, shuffle masks) */
#ifndef LENET_UNROLL
#define LENET_UNROLL _Pragma("GCC unroll 16")
#endif
/* LANES_SELECT(mask, yes, no): lane l is yes[l] where mask[l] (a comparison's result) is all ones, else
 * no[l] (a macro: a function taking vectors by value gets a note on their ABI from gcc) */
#define LANES_SELECT(mask, yes, no) ((BV)(((mask) & (BVI)(yes)) | (~(mask) & (BVI)(no))))
/* BVEC(s): the scalar s in every lane of a BV (s - 0 is s, -0 included, so this is a broadcast alone;
 * 0 + s would be an addition) */
#define BVEC(s) ((s) - (BV){0})
/* LENET_SUM16(a): a[0] + ... + a[15] added pairwise in a fixed order (that of _sum_lanes in
 * layers/lanes.pxd): the lanes of a vector, or 16 vectors of partial sums lane by lane */
#define LENET_SUM16(a) ((((((a)[0] + (a)[8]) + ((a)[4] + (a)[12])) + (((a)[2] + (a)[10]) + ((a)[6] + (a)[14]))) \
                         + ((((a)[1] + (a)[9]) + ((a)[5] + (a)[13])) + (((a)[3] + (a)[11]) + ((a)[7] + (a)[15])))))

/* LANES_PERMUTE(v, mask): the BV of v[mask[0]], v[mask[1]], ...; LANES_PERMUTE2(a, b, mask): likewise
 * from the 2 BL lanes of a then b (mask a BVI; clang has no shuffle by a mask vector: lane by lane there) */
#if defined(__clang__)
#define LANES_PERMUTE(v, mask) ({ BV r_; for (int l_ = 0; l_ < BL; l_++) r_[l_] = (v)[(mask)[l_]]; r_; })
#define LANES_PERMUTE2(a, b, mask) ({ BV r_; for (int l_ = 0; l_ < BL; l_++) \
                                       r_[l_] = (mask)[l_] < BL ? (a)[(mask)[l_]] : (b)[(mask)[l_] - BL]; r_; })
#else
#define LANES_PERMUTE(v, mask) __builtin_shuffle(v, mask)
#define LANES_PERMUTE2(a, b, mask) __builtin_shuffle(a, b, mask)
#endif

/* IN_REGISTER(v): keep vector v in a register. Where one loaded vector feeds several multiply-adds, gcc
 * may fold the load into each of them instead (a memory operand per instruction), and the loop is then
 * bound by loads, not by multiply-adds. An empty asm statement that takes and returns v in an AVX-512
 * register stops that; it emits no instruction. Only with AVX-512 (zmm registers). */
#if defined(__AVX512F__) && (defined(__GNUC__) || defined(__clang__))
#define IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define IN_REGISTER(v) ((void)0)
#endif

/* LENET_SUMS_32: the kernels keep as many independent sums as 32 registers allow (AVX-512), else as
 * many as 16 allow (the same sums in the same order, so the results are the same). */
#if defined(__AVX512F__)
#define LENET_SUMS_32 1
#else
#define LENET_SUMS_32 0
#endif
/* LENET_FRESH_POINTER(p): gcc must not take loads through p for those through the same pointer before
 * (each is loaded where it is used, not kept in a register) */
#if defined(__GNUC__)
#define LENET_FRESH_POINTER(p) __asm__("" : "+r"(p))
#else
#define LENET_FRESH_POINTER(p) ((void)0)
#endif

#define T float
#define V lenet_vf
#define BV lenet_bvf
#define BVI lenet_bvfi
#define BL LENET_LANES_F
#define FN(name) name##_f
#include "fused_conv_template.h"
#include "fused_dense_template.h"
#include "fused_lanes_template.h"
#include "fused_lanes_backward_template.h"
#include "winograd_template.h"
#undef T
#undef V
#undef BV
#undef BVI
#undef BL
#undef FN

#define T double
#define V lenet_vd
#define BV lenet_bvd
#define BVI lenet_bvdi
#define BL LENET_LANES_D
#define FN(name) name##_d
#include "fused_conv_template.h"
#include "fused_dense_template.h"
#include "fused_lanes_template.h"
#include "fused_lanes_backward_template.h"
#include "winograd_template.h"
#undef T
#undef V
#undef BV
#undef BVI
#undef BL
#undef FN
#undef IN_REGISTER

#endif
