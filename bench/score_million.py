"""Scoring a million images: the client's peak memory and the throughput of ``lenet-fast score`` (with
``--scheduler none`` and ``local``) against plain ``net.predict`` of the whole array in one call.

    python bench/score_million.py [--images 1000000] [--dir DIR] [--json FILE]

Writes a synthetic IDX file of N images (the 5,000 embedded sample digits tiled; 784 bytes each), a model
(one pass on the sample, seed 0), and a 10% file for comparison, then runs each case in a fresh process
and records its wall time and peak RSS (VmHWM; for ``local`` also the largest worker's, polled). The CSV
files of ``none`` and ``local`` must be byte-identical and their digits those of ``net.predict``.
"""
import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from lenet_fast import LeNet5
from lenet_fast.data import load_sample

# Run in a fresh process: the case, then one JSON line with the wall time and the peak RSS (KiB).
_CHILD = textwrap.dedent("""
    import json, re, sys, threading, time
    import numpy as np
    def status(key):
        return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    case, model, source, out = sys.argv[1:5]
    workers = [0]
    def poll():                       # the largest worker process's RSS (KiB), for --scheduler local
        import psutil
        me = psutil.Process()
        while True:
            for child in me.children(recursive=True):
                try:
                    workers[0] = max(workers[0], child.memory_info().rss // 1024)
                except psutil.Error:
                    pass
            time.sleep(0.2)
    threading.Thread(target=poll, daemon=True).start()
    from lenet_fast import LeNet5
    from lenet_fast.apps.cli import main
    from lenet_fast.data import read_idx
    before = status("VmRSS")
    started = time.perf_counter()
    figures = {}
    if case == "predict":             # read the file, then net.predict of the whole array in one call
        images = read_idx(source)
        figures["predict_seconds"] = -time.perf_counter()
        np.save(out, LeNet5.load(model).predict(images))
        figures["predict_seconds"] += time.perf_counter()
    else:
        assert main(["score", model, source, "--out", out, "--scheduler", case]) == 0
    figures.update(seconds=time.perf_counter() - started, rss_before_kib=before, peak_rss_kib=status("VmHWM"),
                   worker_peak_rss_kib=workers[0])
    print(json.dumps(figures))
""")


def write_images(path, n):
    """An IDX file of n uint8 28x28 images: the sample's 5,000 digits, tiled; written a block at a time."""
    digits = load_sample().x_train
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28)))
        for start in range(0, n, len(digits)):
            f.write(digits[:n - start].tobytes())


def run_case(case, model, source, out):
    result = subprocess.run([sys.executable, "-c", _CHILD, case, model, source, out], capture_output=True, text=True,
                            timeout=3600)
    if result.returncode:
        raise SystemExit(f"{case} failed:\n{result.stderr}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["output"] = result.stdout.strip().splitlines()[:-1]
    return figures


def digits_of(csv_path):
    with open(csv_path) as f:
        next(f)
        return np.fromiter((int(line.split(",", 2)[1]) for line in f), np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--dir", help="where to write the files (default: a temporary directory, removed)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        model = os.path.join(root, "model.npz")
        data = load_sample()
        net = LeNet5(seed=0)
        net.fit(data.x_train, data.y_train, epochs=1)
        net.save(model)
        figures = {}
        for n in (args.images // 10, args.images):
            source = os.path.join(root, f"images-{n}-idx3-ubyte")
            write_images(source, n)
            cases = ("none", "local") if n < args.images else ("none", "local", "predict")
            for case in cases:
                out = os.path.join(root, f"{case}-{n}" + (".npy" if case == "predict" else ".csv"))
                figures[f"{case} {n}"] = result = run_case(case, model, source, out)
                result.update(images=n, images_per_second=n / result["seconds"])
                print(f"{case:>8} {n:>10,} images: {result['seconds']:6.1f} s, {n / result['seconds']:>9,.0f} images/s, "
                      f"client peak RSS {result['peak_rss_kib'] / 1024:7.1f} MiB (at start "
                      f"{result['rss_before_kib'] / 1024:.1f})"
                      + (f", largest worker {result['worker_peak_rss_kib'] / 1024:.1f} MiB" if case == "local" else "")
                      + (f"; net.predict alone {result['predict_seconds']:.1f} s" if case == "predict" else ""),
                      flush=True)
                for line in result["output"]:
                    print(f"{'':>9}{line}")
            assert filecmp.cmp(os.path.join(root, f"none-{n}.csv"), os.path.join(root, f"local-{n}.csv"), shallow=False)
            if "predict" in cases:
                same = np.array_equal(digits_of(os.path.join(root, f"none-{n}.csv")),
                                      np.load(os.path.join(root, f"predict-{n}.npy")))
                print(f"none and local wrote the same CSV; its digits are net.predict's: {same}")
                figures["digits_equal_predict"] = same
            os.remove(source)
    figures["cpus"] = len(os.sched_getaffinity(0))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
