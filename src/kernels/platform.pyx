"""What this build is: OpenMP on or off, the thread limit, and the instruction set it was compiled for;
and what this CPU can do: its float32 multiply-add (FMA) rate.

Compiled with the same flags as the kernels, so the ISA macros below describe the kernels' code.
"""
import time

from cython.parallel cimport parallel, threadid
from libc.stdlib cimport free, malloc

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define LENET_FAST_OPENMP 1
    #else
    #define LENET_FAST_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_threads(void) { return 1; }
    #endif
    #if defined(__AVX512F__)
    #define LENET_FAST_ISA "avx512f"
    #elif defined(__AVX2__) && defined(__FMA__)
    #define LENET_FAST_ISA "avx2+fma"
    #elif defined(__AVX__)
    #define LENET_FAST_ISA "avx"
    #elif defined(__SSE2__)
    #define LENET_FAST_ISA "sse2"
    #elif defined(__aarch64__)
    #define LENET_FAST_ISA "neon"
    #else
    #define LENET_FAST_ISA "generic"
    #endif
    """
    int LENET_FAST_OPENMP
    const char* LENET_FAST_ISA
    int omp_get_max_threads() nogil
    int omp_get_num_threads() nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(LENET_FAST_OPENMP)


def max_threads():
    """OpenMP's current thread limit (honours OMP_NUM_THREADS and threadpoolctl); 1 without OpenMP."""
    return omp_get_max_threads()


def compiled_isa():
    """The widest SIMD instruction set the kernels were compiled for."""
    return LENET_FAST_ISA.decode()


# --- the FMA probe ----------------------------------------------------------------------------------

cdef enum:
    CHAINS = 12     # independent accumulators: more than FMA latency x FMA units, so the units never wait
    WIDTH = 16      # floats per accumulator: one AVX-512 register


cdef inline void _fma_lanes(float* acc, float m, float c) noexcept nogil:
    cdef Py_ssize_t l
    for l in range(WIDTH):
        acc[l] = acc[l] * m + c


cdef float _fma_chains(long iterations, float m, float c) noexcept nogil:
    # CHAINS independent chains of WIDTH lanes, acc = acc * m + c (m < 1: the values settle, no overflow);
    # returns the sum of the accumulators, which the caller hands to Python, so the loop cannot be dropped
    cdef float a0[WIDTH]
    cdef float a1[WIDTH]
    cdef float a2[WIDTH]
    cdef float a3[WIDTH]
    cdef float a4[WIDTH]
    cdef float a5[WIDTH]
    cdef float a6[WIDTH]
    cdef float a7[WIDTH]
    cdef float a8[WIDTH]
    cdef float a9[WIDTH]
    cdef float a10[WIDTH]
    cdef float a11[WIDTH]
    cdef long i
    cdef Py_ssize_t l
    cdef float total = 0
    for l in range(WIDTH):
        a0[l] = a1[l] = a2[l] = a3[l] = a4[l] = a5[l] = l
        a6[l] = a7[l] = a8[l] = a9[l] = a10[l] = a11[l] = -l
    for i in range(iterations):
        _fma_lanes(a0, m, c)
        _fma_lanes(a1, m, c)
        _fma_lanes(a2, m, c)
        _fma_lanes(a3, m, c)
        _fma_lanes(a4, m, c)
        _fma_lanes(a5, m, c)
        _fma_lanes(a6, m, c)
        _fma_lanes(a7, m, c)
        _fma_lanes(a8, m, c)
        _fma_lanes(a9, m, c)
        _fma_lanes(a10, m, c)
        _fma_lanes(a11, m, c)
    for l in range(WIDTH):
        total += (a0[l] + a1[l] + a2[l] + a3[l] + a4[l] + a5[l] + a6[l] + a7[l] + a8[l] + a9[l]
                  + a10[l] + a11[l])
    return total


cdef object _fma_run(long iterations, int n_threads):
    # (threads that ran, sum of their accumulators) after `iterations` of _fma_chains on each of
    # n_threads (>= 1) OpenMP threads; the sum goes back to Python, so the compiler has to compute it
    cdef float* sums = <float*>malloc(n_threads * sizeof(float))
    cdef int team = 1
    cdef int* team_size = &team
    cdef double total = 0
    cdef int t
    if sums == NULL:
        raise MemoryError()
    try:
        with nogil, parallel(num_threads=n_threads):
            sums[threadid()] = _fma_chains(iterations, <float>0.999, <float>0.001)
            if threadid() == 0:
                team_size[0] = omp_get_num_threads()
        for t in range(team):
            total += sums[t]
    finally:
        free(sums)
    return team, total


def fma_peak_gflops(double seconds=0.3, int n_threads=1):
    """This CPU's float32 multiply-add rate, GFLOP/s, on `n_threads` OpenMP threads (2 FLOPs per FMA lane).

    Every thread updates CHAINS (12) independent accumulators of WIDTH (16) floats, acc = acc * m + c:
    one 512-bit FMA per accumulator with AVX-512, and enough independent ones to keep every FMA unit
    busy despite its latency. The iteration count is calibrated on one thread (no thread wake-ups in
    the calibration) so that the timed run takes about `seconds` (wall clock, thread start included);
    the FLOPs are those of the threads OpenMP ran.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, got {n_threads}")
    cdef long iterations = 1 << 14
    while True:         # calibration: about 1/8 of the time wanted, growing 4x a step
        start = time.perf_counter()
        _fma_run(iterations, 1)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 8:
            break
        iterations *= 4
    iterations = max(1, <long>(iterations * seconds / elapsed))
    start = time.perf_counter()
    team, _ = _fma_run(iterations, n_threads)
    elapsed = time.perf_counter() - start
    return 2.0 * CHAINS * WIDTH * iterations * team / elapsed / 1e9
