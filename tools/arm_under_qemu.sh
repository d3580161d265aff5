#!/usr/bin/env bash
# Build lenet_fast's kernels for ARM64 (aarch64) with a cross compiler and run the kernel tests under
# qemu-user, with Debian's arm64 Python 3.11, numpy and Pillow unpacked into a directory (no ARM machine
# needed). Debian/Ubuntu, as root; about 5 minutes. The Cython-generated C files must exist (build the
# package in place first: pip install -e . or python setup.py build_ext -i).
#
#   bash tools/arm_under_qemu.sh [WORKDIR]        # default /tmp/lenet_fast_arm64
#
# The one test that starts a second Python (tests/test_isa.py::test_a_forced_path_is_reported_in_a_fresh_process)
# is left out: qemu-user without binfmt_misc cannot execute an ARM binary from a subprocess.
set -euo pipefail
checkout="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/lenet_fast_arm64}"
root="$work/root" pkg="$work/pkg" pure="$work/pure"
dpkg --add-architecture arm64
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc-aarch64-linux-gnu qemu-user
# Python, numpy and Pillow for arm64, with the libraries they load
mkdir -p "$work/debs" "$root" && cd "$work/debs"
apt-get download python3.11-minimal:arm64 libpython3.11-minimal:arm64 libpython3.11-stdlib:arm64 \
    libpython3.11-dev:arm64 libc6:arm64 libexpat1:arm64 zlib1g:arm64 libffi8:arm64 libgomp1:arm64 libgcc-s1:arm64 \
    libstdc++6:arm64 python3-numpy:arm64 libblas3:arm64 liblapack3:arm64 libgfortran5:arm64 libssl3:arm64 \
    libbz2-1.0:arm64 liblzma5:arm64 libsqlite3-0:arm64 libncursesw6:arm64 libtinfo6:arm64 libuuid1:arm64 \
    libcrypt1:arm64 libnsl2:arm64 libtirpc3:arm64 python3-pil:arm64 libjpeg62-turbo:arm64 libpng16-16:arm64 \
    libtiff6:arm64 libwebp7:arm64 libwebpmux3:arm64 libwebpdemux2:arm64 libfreetype6:arm64 liblcms2-2:arm64 \
    libopenjp2-7:arm64 libxcb1:arm64 libimagequant0:arm64 libraqm0:arm64 libzstd1:arm64 libdeflate0:arm64 \
    libjbig0:arm64 liblerc4:arm64 libbrotli1:arm64 libxau6:arm64 libxdmcp6:arm64 libbsd0:arm64 libmd0:arm64 \
    libharfbuzz0b:arm64 libfribidi0:arm64 libglib2.0-0:arm64 libgraphite2-3:arm64 libpcre2-8-0:arm64
for deb in ./*.deb; do dpkg -x "$deb" "$root"; done
ln -sf blas/libblas.so.3 "$root/usr/lib/aarch64-linux-gnu/libblas.so.3"     # what update-alternatives would do
ln -sf lapack/liblapack.so.3 "$root/usr/lib/aarch64-linux-gnu/liblapack.so.3"
# the package: its Python files, and each kernel module compiled for aarch64 (setup.py's KERNELS and CPU_MODULE)
rm -rf "$pkg" && mkdir -p "$pkg"
tar -C "$checkout" -cf - --exclude='*.so' --exclude=__pycache__ --exclude=_build_info.json lenet_fast | tar -C "$pkg" -xf -
echo '{"compiler": "aarch64-linux-gnu-gcc (cross)", "compile_args": ["-O3", "-fno-math-errno", "-fno-trapping-math",
 "-fopenmp"], "link_args": ["-fopenmp"], "openmp": true, "arch": "native", "isa_paths": {}, "arch_flags": []}' \
    > "$pkg/lenet_fast/_build_info.json"
cd "$checkout"
python3 - "$pkg" "$root" <<'EOF'
import ast, subprocess, sys
pkg, root = sys.argv[1:]
tree = ast.parse(open("setup.py").read())
values = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
          for t in n.targets if isinstance(t, ast.Name) and t.id in ("KERNELS", "CPU_MODULE", "KERNEL_DIRS")}
modules = {**values["KERNELS"], values["CPU_MODULE"][0]: values["CPU_MODULE"][1]}
for name, source in modules.items():
    out = f"{pkg}/{name.replace('.', '/')}.cpython-311-aarch64-linux-gnu.so"
    subprocess.run(["aarch64-linux-gnu-gcc", "-shared", "-fPIC", "-O3", "-fno-math-errno", "-fno-trapping-math",
                    "-fopenmp", "-Werror=implicit-function-declaration", f"-I{root}/usr/include/python3.11",
                    "-idirafter", f"{root}/usr/include", f"-I{root}/usr/lib/python3/dist-packages/numpy/core/include",
                    *[f"-I{d}" for d in values["KERNEL_DIRS"]], source.replace(".pyx", ".c"), "-o", out], check=True)
    print("built", out)
EOF
# pytest and its pure-Python dependencies, from the Python that runs this script
rm -rf "$pure" && mkdir -p "$pure"
python3 -m pip install -q --target "$pure" --no-deps pytest pluggy iniconfig packaging pygments threadpoolctl
qemu-aarch64 -L "$root" "$root/usr/bin/python3.11" -c "
import sys; sys.path[:0] = ['$pkg', '$pure']
import pytest
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_isa.py', 'tests/test_kernels.py', 'tests/test_contracts.py',
                      'tests/test_train_kernel.py', 'tests/test_network_vs_reference.py', 'tests/test_model.py',
                      '--deselect', 'tests/test_isa.py::test_a_forced_path_is_reported_in_a_fresh_process']))"
