/* The squash's derivative from its output y = f(a) = A tanh(S a), A = 1.7159, S = 2/3:
 * f'(a) = (S / A)(A^2 - y^2). One expression, with T the element type, for a scalar (activation_one.pxd's
 * _squash_derivative) and for a vector of them (the fused kernels' lanes, fused_lanes_backward_template.h). */
#ifndef LENET_SQUASH_H
#define LENET_SQUASH_H

#define LENET_SQUASH_DERIVATIVE(T, y) ((T)((2.0 / 3.0) / 1.7159) * ((T)(1.7159 * 1.7159) - (y) * (y)))

static inline float lenet_squash_derivative_f(float y) { return LENET_SQUASH_DERIVATIVE(float, y); }
static inline double lenet_squash_derivative_d(double y) { return LENET_SQUASH_DERIVATIVE(double, y); }

#endif
