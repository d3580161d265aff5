"""What this build is: OpenMP on or off, the thread limit, and the instruction set it was compiled for.

Compiled with the same flags as the kernels, so the ISA macros below describe the kernels' code.
"""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define LENET_FAST_OPENMP 1
    #else
    #define LENET_FAST_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
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


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(LENET_FAST_OPENMP)


def max_threads():
    """OpenMP's current thread limit (honours OMP_NUM_THREADS and threadpoolctl); 1 without OpenMP."""
    return omp_get_max_threads()


def compiled_isa():
    """The widest SIMD instruction set the kernels were compiled for."""
    return LENET_FAST_ISA.decode()
