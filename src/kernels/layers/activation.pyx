"""Elementwise activations: the paper's squash f(a) = A tanh(S a) and ReLU (modern variant).

Design: flat 1-D views; forward may run in place (out is a); backward needs only the output y:
squash' = (S / A)(A^2 - y^2), relu' = [y > 0]. Backward overwrites ``da`` (it may alias ``dy``).
With ``squared=True`` backward multiplies by f'^2: the SDLM second-derivative pass (Eq. 27).
The elementwise functions are in ``activation_one.pxd`` (shared with the fused kernels of ``network/``); float32 tanh
is computed there (a rational fit within 6 ulp, vectorisable) instead of by the C library's tanhf.
"""
from cython cimport floating
from cython.parallel cimport prange

from activation_one cimport _relu, _relu_backward, _squash, _squash_derivative


def squash_forward(floating[::1] out, const floating[::1] a, int n_threads):
    cdef Py_ssize_t i
    for i in prange(a.shape[0], schedule="static", nogil=True, num_threads=n_threads):
        out[i] = _squash(a[i])


def squash_backward(floating[::1] da, const floating[::1] dy, const floating[::1] y, int n_threads,
                    bint squared=False):
    cdef Py_ssize_t i
    cdef floating f_prime
    for i in prange(y.shape[0], schedule="static", nogil=True, num_threads=n_threads):
        f_prime = _squash_derivative(y[i])
        da[i] = dy[i] * (f_prime * f_prime if squared else f_prime)


def relu_forward(floating[::1] out, const floating[::1] a, int n_threads):
    cdef Py_ssize_t i
    for i in prange(a.shape[0], schedule="static", nogil=True, num_threads=n_threads):
        out[i] = _relu(a[i])


def relu_backward(floating[::1] da, const floating[::1] dy, const floating[::1] y, int n_threads):
    cdef Py_ssize_t i
    for i in prange(y.shape[0], schedule="static", nogil=True, num_threads=n_threads):
        da[i] = _relu_backward(dy[i], y[i])
