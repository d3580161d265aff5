# The activations of one sample's values: the scaled tanh and ReLU (cimported and inlined).
from cython cimport floating
from libc.math cimport copysignf, fabsf, tanh

# --- activations: f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (constants.SQUASH_A/S), and ReLU -------
# Backward needs only the output y: squash' = (S / A)(A^2 - y^2), relu' = [y > 0].

cdef inline float _tanh_float(float a) noexcept nogil:
    # tanh for float32 as x R(x^2), R = P/Q a rational fit of tanh(x)/x on [0, 9] (relative error 2e-8;
    # tools/tanh_fit.py derives it), with x clamped to 9, where the fit is exactly 1 as tanh rounds to 1
    # from there on (a select of 1 after the division made the loops 15% slower). Within 6 ulp of the
    # correctly rounded tanh, and exactly 1 for large x, on every ISA path (tests/test_train_kernel.py).
    # Branch-free float arithmetic, so the loops around it vectorise over 16 lanes (the C library's tanhf
    # is a call per element); NaN stays NaN.
    # (float constants and selects of computed values only: with a float operation inside a branch, gcc
    # keeps the branch, under -ftrapping-math, and the loop does not vectorise)
    cdef float x = fabsf(a), s, p, q, t
    x = <float>9 if x > 9 else x
    s = x * x
    p = <float>1.3354746710220007e-08
    p = p * s + <float>2.0609148566457637e-05
    p = p * s + <float>3.4955923341803944e-03
    p = p * s + <float>1.3381029230364119e-01
    p = p * s + <float>9.9999997944686347e-01
    q = <float>7.7765946171614486e-07
    q = q * s + <float>3.2856415771671230e-04
    q = q * s + <float>2.5876998362629498e-02
    q = q * s + <float>4.6714344823798870e-01
    q = q * s + 1
    t = x * p / q
    return copysignf(t, a)


cdef inline floating _squash(floating a) noexcept nogil:
    if floating is float:
        return <float>1.7159 * _tanh_float(<float>(2.0 / 3.0) * a)
    else:
        return 1.7159 * tanh((2.0 / 3.0) * a)


cdef extern from "squash.h" nogil:
    float lenet_squash_derivative_f(float y)
    double lenet_squash_derivative_d(double y)


cdef inline floating _squash_derivative(floating y) noexcept nogil:
    if floating is float:
        return lenet_squash_derivative_f(y)
    else:
        return lenet_squash_derivative_d(y)


cdef inline floating _relu(floating a) noexcept nogil:
    return a if a > 0 else 0


cdef inline floating _relu_backward(floating dy, floating y) noexcept nogil:
    return dy if y > 0 else 0
