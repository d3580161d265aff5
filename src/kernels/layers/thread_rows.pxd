# Helpers shared by the kernel modules (cimported; inlined into each).
from cython cimport floating


cdef inline void add_thread_rows(floating* dst, floating[:, ::1] scratch, Py_ssize_t start,
                                 Py_ssize_t count) noexcept nogil:
    # dst[p] += scratch[t, start + p] for every thread row t, in row order: the fixed-order reduction
    # that makes weight gradients bit-identical run after run for a given thread count
    cdef Py_ssize_t t, p
    for t in range(scratch.shape[0]):
        for p in range(count):
            dst[p] += scratch[t, start + p]
