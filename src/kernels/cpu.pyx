"""Which of the portable build's ISA paths this CPU (and its operating system) can run.

Always compiled for the baseline ISA, whatever LENET_FAST_ARCH says: it runs before any kernel is chosen.
The names are setup.py's ISA_PATHS; lenet_fast._isa picks the path.
"""

cdef extern from *:
    """
    #include <string.h>
    static int lenet_can_run(const char* path) {
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();   /* libgcc also checks that the OS saves the AVX/AVX-512 registers (XGETBV) */
    #if __GNUC__ >= 12 && !defined(__clang__)
        if (strcmp(path, "avx512") == 0) return __builtin_cpu_supports("x86-64-v4") != 0;
        if (strcmp(path, "avx2") == 0) return __builtin_cpu_supports("x86-64-v3") != 0;
    #else   /* the features the paths' -march levels rely on, as far as older compilers can ask */
        int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                 && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
        if (strcmp(path, "avx512") == 0)
            return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                   && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
                   && __builtin_cpu_supports("avx512vl");
        if (strcmp(path, "avx2") == 0) return v3;
    #endif
    #endif
        return strcmp(path, "baseline") == 0;
    }
    """
    int lenet_can_run(const char* path)


def can_run(str path):
    """Whether this CPU can run the kernels of ISA path `path` ("avx512", "avx2", "baseline"; any other
    name: False). On other architectures than x86 only "baseline" runs."""
    return bool(lenet_can_run(path.encode()))
