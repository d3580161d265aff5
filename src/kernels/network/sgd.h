/* The update of a parameter w from its gradient g, with step size `step`, as network_kernels.train_steps
 * documents it: w -= step * (g + decay * w), or with momentum (v its velocity)
 * v = momentum * v + (g + decay * w); w -= step * v. One expression each, for scalars and for vectors of
 * them: the batch's update (network_update.pxi) and the dense layers' update within their backward pass
 * at batch size 1 (fused_dense_template.h), so both give the same bits. */
#ifndef LENET_SGD_H
#define LENET_SGD_H

#define LENET_SGD_PLAIN(w, step, g, decay) ((w) - (step) * ((g) + (decay) * (w)))
#define LENET_SGD_VELOCITY(v, g, w, momentum, decay) ((momentum) * (v) + ((g) + (decay) * (w)))
#define LENET_SGD_MOMENTUM(w, step, v) ((w) - (step) * (v))

#define LENET_SGD_SCALAR(T, name)                                                                       \
    static inline T lenet_sgd_plain_##name(T w, T step, T g, T decay)                                    \
    { return LENET_SGD_PLAIN(w, step, g, decay); }                                                       \
    static inline T lenet_sgd_velocity_##name(T v, T g, T w, T momentum, T decay)                       \
    { return LENET_SGD_VELOCITY(v, g, w, momentum, decay); }                                             \
    static inline T lenet_sgd_momentum_##name(T w, T step, T v) { return LENET_SGD_MOMENTUM(w, step, v); }
LENET_SGD_SCALAR(float, f)
LENET_SGD_SCALAR(double, d)
#undef LENET_SGD_SCALAR

#endif
