"""Coverage-guided fuzzing (atheris/libFuzzer) of lenet_fast's file readers against their contract: a bad
file raises ValueError naming the file (FileNotFoundError/IsADirectoryError for missing paths), never
another exception, a crash, a hang or unbounded memory.

    pip install atheris
    python fuzz/make_corpus.py                                   # seeds in fuzz/corpus/<target>/
    python fuzz/fuzz_readers.py TARGET [-max_total_time=600] [libFuzzer options] [CORPUS_DIR ...]

TARGET: idx (read_idx), model (LeNet5.load), checkpoint (Trainer.resume), picture (load_digits, i.e.
read_image + mnist_style). With no corpus directory, new inputs go to a temporary directory and the
seeds are read from fuzz/corpus/TARGET/. A crashing input is written to fuzz/crashes/TARGET/ (unless
-artifact_prefix= is given): tests/test_fuzz_regressions.py then replays it through the reader; the
process exits non-zero. Defaults added unless given: -timeout=30 (a hang), -rss_limit_mb=3072.
"""
import os
import sys
import tempfile

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ("idx", "model", "checkpoint", "picture")

with atheris.instrument_imports(include=["lenet_fast", "PIL", "zipfile", "gzip", "numpy.lib"]):
    from lenet_fast import LeNet5
    from lenet_fast.data.datasets import read_idx
    from lenet_fast.data.images import load_digits
    from lenet_fast.train import Trainer

READERS = {
    "idx": read_idx,
    "model": LeNet5.load,
    "checkpoint": lambda path: Trainer.resume(path, model_class=LeNet5),
    "picture": lambda path: load_digits([path]),
}


def check(target, path):
    """Run `target`'s reader on the file `path`: return normally for a valid file or a documented error;
    raise AssertionError (or let the unexpected exception through) for a broken contract."""
    try:
        READERS[target](path)
    except ValueError as exc:
        message = str(exc)
        assert os.fspath(path) in message, f"the ValueError does not name the file: {message!r}"
        assert "\n" not in message, f"the ValueError is not one line: {message!r}"


def main(argv):
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [CORPUS_DIR ...]")
    target = argv[1]
    args = [argv[0]] + argv[2:]
    options = [a for a in args[1:] if a.startswith("-")]
    if not [a for a in args[1:] if not a.startswith("-")]:
        seeds = os.path.join(HERE, "corpus", target)
        if not os.path.isdir(seeds):
            sys.exit(f"no seeds in {seeds}: run python {os.path.join(HERE, 'make_corpus.py')} first")
        args += [tempfile.mkdtemp(prefix=f"fuzz-{target}-"), seeds]   # libFuzzer adds to the first one
    defaults = {"-artifact_prefix": os.path.join(HERE, "crashes", target) + os.sep,
                "-timeout": "30", "-rss_limit_mb": "3072"}
    for name, value in defaults.items():
        if not any(o.startswith(name + "=") for o in options):
            args.insert(1, f"{name}={value}")
    os.makedirs(os.path.join(HERE, "crashes", target), exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=f"fuzz-{target}-", suffix=".bin")
    os.close(fd)

    def test_one_input(data):
        with open(path, "wb") as f:
            f.write(data)
        check(target, path)

    atheris.Setup(args, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main(sys.argv)
