"""Build of lenet_fast's Cython kernels (the table KERNELS: compiled module <- source).

Environment switches (all optional):
  LENET_FAST_ARCH=native|portable|<gcc -march value>
      native (default): compile for this machine's widest SIMD (e.g. AVX-512); a source build is fast
      out of the box. portable: for wheels that run on any x86-64: every kernel module is built once per
      ISA path of ISA_PATHS (module name + "_" + path) and lenet_fast._isa picks, at import, the widest
      path the CPU runs (LENET_FAST_ISA forces a lower one); elsewhere (e.g. ARM) one "baseline" path.
      A -march value (x86-64, haswell, ...): one set of kernels for that ISA.
  LENET_FAST_OPENMP=1|0   1 (default): use OpenMP when the compiler supports it, else warn and build
      serial. 0: build serial.
  LENET_FAST_CYTHON_DEBUG=1   turn Cython's bounds and wraparound checks back on.
  LENET_FAST_SANITIZE=address,undefined   build with these sanitizers (the comma list goes to -fsanitize=,
      with -g -O2 -fno-omit-frame-pointer; with "undefined", -fno-sanitize-recover=undefined so that undefined
      behaviour aborts). Python is not built with them: run with LD_PRELOAD of the runtimes (.ci/sanitize).
"""
import filecmp
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Each compiled module sits next to the one Python module that calls it. Two kernel paths:
# src/kernels/layers/ (one layer per call, any shape; lenet_fast.nn.layer_kernels) and
# src/kernels/network/ (the whole network per call; lenet_fast.nn.network_kernels).
KERNELS = {
    "lenet_fast.nn._conv": "src/kernels/layers/conv.pyx",
    "lenet_fast.nn._pool": "src/kernels/layers/pool.pyx",
    "lenet_fast.nn._dense": "src/kernels/layers/dense.pyx",
    "lenet_fast.nn._activation": "src/kernels/layers/activation.pyx",
    "lenet_fast.nn._output": "src/kernels/layers/output.pyx",
    "lenet_fast.nn._network": "src/kernels/network/network.pyx",
    "lenet_fast.nn._validate": "src/kernels/validate.pyx",
    "lenet_fast.train._distort": "src/kernels/distort.pyx",
    "lenet_fast._platform": "src/kernels/platform.pyx",
}
KERNEL_DIRS = ["src/kernels", "src/kernels/layers", "src/kernels/network"]
# What a kernel runs on is chosen at import (lenet_fast._isa), by this module: always baseline ISA.
CPU_MODULE = ("lenet_fast._cpu", "src/kernels/cpu.pyx")
# LENET_FAST_ARCH=portable on x86-64: the ISA paths, widest first, and their flags. lenet_fast._cpu knows
# which CPUs run each name. x86-64-v4: AVX-512 F/BW/CD/DQ/VL; x86-64-v3: AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE.
# -mprfchw: PREFETCHW, which every AVX-512 CPU has (Intel since Broadwell, AMD since long before), for the
# parameter update's prefetches for writing (network_update.pxi; -march=native has it on those CPUs).
ISA_PATHS = {
    "avx512": ["-march=x86-64-v4", "-mprefer-vector-width=512", "-mprfchw"],
    "avx2": ["-march=x86-64-v3"],
    "baseline": [],
}
ARCH = os.environ.get("LENET_FAST_ARCH", "native")


def _compiles(compiler, source, flags):
    """Whether `compiler` compiles and links a C `source` with `flags`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    int main(void) { int n = 0;
    #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1; }
""")


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def _arch_flags(self, unix):
        """{ISA path: its compiler flags}: the portable paths this compiler builds, or the one native path ""."""
        if not unix:        # MSVC: no -march; a portable build is its baseline path
            return {"baseline": []} if ARCH == "portable" else {"": []}
        if ARCH == "portable":
            paths = {}
            for path, flags in _portable_paths().items():
                if _compiles(self.compiler, "int main(void){return 0;}", flags):
                    paths[path] = flags
                else:
                    self.warn(f"the compiler does not accept {' '.join(flags)}: no {path} kernels in this build")
            return paths
        march = ["-march=" + ARCH]
        if not _compiles(self.compiler, "int main(void){return 0;}", march):
            self.warn(f"the compiler does not accept -march={ARCH}; building for the baseline ISA")
            return {"": []}
        # gcc's default tuning often caps vectors at 256 bits on AVX-512 machines
        if _compiles(self.compiler, "#ifndef __AVX512F__\n#error\n#endif\nint main(void){return 0;}", march):
            march.append("-mprefer-vector-width=512")
        return {"": march}

    def build_extensions(self):
        unix = self.compiler.compiler_type in ("unix", "cygwin", "mingw32")
        # never -ffast-math; a C helper called undeclared is an error, not a guess at its signature.
        # -fno-trapping-math: no code here reads the floating-point exception flags, and with them gcc keeps
        # the branch of the tanh's clamp (a select before a division), so that loop vectorises only with
        # AVX-512's masks; the values computed are the same (checked bit for bit against the flag's absence)
        compile_args = (["-O3", "-fno-math-errno", "-fno-trapping-math", "-Werror=implicit-function-declaration"]
                        if unix else ["/O2"])
        link_args = []
        arch_flags = self._arch_flags(unix)

        openmp = os.environ.get("LENET_FAST_OPENMP", "1") != "0"
        omp_flag = ["-fopenmp"] if unix else ["/openmp"]
        if not openmp:
            self.warn("*** LENET_FAST_OPENMP=0: building without OpenMP; lenet_fast will run single-threaded ***")
        elif not _compiles(self.compiler, OPENMP_PROBE, omp_flag):
            openmp = False
            self.warn("*** OpenMP is not available with this compiler: lenet_fast will run single-threaded ***")
        if openmp:
            compile_args += omp_flag
            link_args += omp_flag if unix else []

        sanitize = [name for name in os.environ.get("LENET_FAST_SANITIZE", "").split(",") if name.strip()]
        if sanitize and unix:
            flags = ["-fsanitize=" + ",".join(name.strip() for name in sanitize)]
            if "undefined" in flags[0]:
                flags.append("-fno-sanitize-recover=undefined")
            compile_args += flags + ["-g", "-O2", "-fno-omit-frame-pointer"]
            link_args += flags
        elif sanitize:
            self.warn("LENET_FAST_SANITIZE is only supported with gcc/clang; ignored")

        # each kernel module's ISA path is the suffix of its name (none in a native build); _cpu has no path
        self.extensions = [ext for ext in self.extensions if ext.name == CPU_MODULE[0] or _path_of(ext) in arch_flags]
        for ext in self.extensions:
            isa = [] if ext.name == CPU_MODULE[0] else arch_flags[_path_of(ext)]
            ext.extra_compile_args = compile_args + isa
            ext.extra_link_args = link_args
        super().build_extensions()
        portable = ARCH == "portable"
        # isa_paths: {path: its flags} of a portable build (lenet_fast._isa reads it), {} for one set of kernels
        self._build_info = {"compiler": self._compiler_version(), "compile_args": compile_args,
                            "link_args": link_args, "openmp": openmp, "arch": ARCH,
                            "isa_paths": arch_flags if portable else {},
                            "arch_flags": [] if portable else arch_flags[""]}

    def run(self):
        super().run()
        # next to the compiled modules (the build tree, or the source tree for in-place builds),
        # for lenet_fast.show_config()
        if getattr(self, "_build_info", None):
            package_dir = os.path.dirname(self.get_ext_fullpath(CPU_MODULE[0]))
            with open(os.path.join(package_dir, "_build_info.json"), "w") as f:
                json.dump(self._build_info, f, indent=1)

    def _compiler_version(self):
        command = getattr(self.compiler, "compiler_so", None) or ["cc"]
        try:
            out = subprocess.run([command[0], "--version"], capture_output=True, text=True, timeout=30)
            return out.stdout.splitlines()[0].strip()
        except Exception:
            return command[0]


def _portable_paths():
    """ISA_PATHS on x86-64; elsewhere one path of the compiler's default flags (NEON is baseline on ARM64)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
    return ISA_PATHS if x86 else {"baseline": []}


def _path_of(ext):
    """The ISA path a kernel extension is built for: its name's suffix in a portable build, else ""."""
    suffix = ext.name.rsplit("_", 1)[-1]
    return suffix if ARCH == "portable" and suffix in ISA_PATHS else ""


def _path_source(source, path):
    """A copy of `source` under build/portable/<path>/: Cython writes each module's C file next to its
    source, and each path's module has its own name. The copy keeps the source's time stamp, so that an
    unchanged source is not translated again."""
    copy = os.path.join("build", "portable", path, os.path.basename(source))
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    if not os.path.exists(copy) or not filecmp.cmp(source, copy, shallow=False):
        shutil.copy2(source, copy)
    return copy


def _kernel_modules():
    """{module name: source} of this build: KERNELS, once per ISA path when portable; and the CPU check."""
    if ARCH == "portable":
        modules = {f"{name}_{path}": _path_source(source, path)
                   for path in _portable_paths() for name, source in KERNELS.items()}
    else:
        modules = dict(KERNELS)
    return {**modules, CPU_MODULE[0]: CPU_MODULE[1]}


debug = os.environ.get("LENET_FAST_CYTHON_DEBUG", "0") == "1"
# the shared Cython declarations and C headers: a change to any of them rebuilds every module
shared_sources = sorted(path for d in KERNEL_DIRS for path in glob.glob(f"{d}/*.pxd") + glob.glob(f"{d}/*.pxi")
                        + glob.glob(f"{d}/*.h"))
extensions = [
    Extension(name, [source], depends=shared_sources, include_dirs=["src/kernels/layers", "src/kernels/network"],
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")])
    for name, source in _kernel_modules().items()
]
setup(
    ext_modules=cythonize(
        extensions,
        include_path=KERNEL_DIRS,
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": debug,
            "initializedcheck": debug,
            "nonecheck": False,
            "cdivision": True,
        },
        quiet=True,
    ),
    cmdclass={"build_ext": BuildExt},
)
