/* LeNet-5's C3 (6 maps of 14x14 -> 16 maps of 10x10, 5x5 kernels, through the connection table)
 * vectorised across its 16 output maps: one vector holds the 16 maps of one output position, so each
 * loaded weight vector serves a whole row of positions and the weight gradient needs no horizontal sums.
 * Used by the fused kernels (train.pyx); the per-layer kernels keep the general loops of _layers.pxd.
 *
 * The weights come transposed, wt (6, 5, 5, 16) = w[k, c, i, j] at [c, i, j, k], with zeros for the
 * unconnected (c, k) pairs. The forward sum runs in the order of _conv_forward_one (bias, then c, i, j
 * ascending, one fused multiply-add each), so its result is that of the general loops: an unconnected
 * pair adds w * x = 0 exactly (x is finite).
 *
 * GCC/Clang vector extensions: the compiler emits the widest vectors of the target ISA (one AVX-512
 * register per float vector, two per double one; narrower ISAs split them) and no intrinsics are needed.
 * The file defines lenet_c3_*_f (float) and lenet_c3_*_d (double) from c3_simd_template.h. */
#ifndef LENET_C3_SIMD_H
#define LENET_C3_SIMD_H

#define LENET_C3_IN 6      /* input maps */
#define LENET_C3_OUT 16    /* output maps: the lanes of a vector */
#define LENET_C3_H 14      /* input height and width */
#define LENET_C3_O 10      /* output height and width */
#define LENET_C3_K 5       /* kernel height and width */

/* 16 lanes; aligned to the element only (loads and stores may be unaligned), may alias T */
typedef float lenet_vf __attribute__((vector_size(16 * sizeof(float)), aligned(sizeof(float)), may_alias));
typedef double lenet_vd __attribute__((vector_size(16 * sizeof(double)), aligned(sizeof(double)), may_alias));

#define T float
#define V lenet_vf
#define FN(name) name##_f
#include "c3_simd_template.h"
#undef T
#undef V
#undef FN

#define T double
#define V lenet_vd
#define FN(name) name##_d
#include "c3_simd_template.h"
#undef T
#undef V
#undef FN

#endif
