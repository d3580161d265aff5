# Sourced by .ci/portable and .ci/sanitize: the ISA paths of a portable build (LENET_FAST_ARCH=portable)
# installed in the Python $1, run from a directory where `import lenet_fast` finds that install.

# The paths the build has and this machine runs, widest first, on one line (fails on a native build).
runnable_isa_paths() {
    "$1" -P -c 'import lenet_fast._isa as i, lenet_fast._cpu as c
assert i.BUILT_PATHS, "not a portable build"
print(" ".join(p for p in i.BUILT_PATHS if c.can_run(p)))'
}

# Fails unless LENET_FAST_ISA=$2 runs the path $2, with no warning; prints show_config().
check_isa_runs() {
    LENET_FAST_ISA=$2 "$1" -P -W error::RuntimeWarning -c "import lenet_fast, lenet_fast._isa as i
assert i.ISA == '$2', i.ISA
lenet_fast.show_config()"
}
