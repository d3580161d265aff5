"""Two or more installs of lenet_fast (e.g. the native build and the portable wheel), interleaved.

    python bench/compare_builds.py NAME=PYTHON NAME=PYTHON ... [--rounds 5] [--per-run 3] [--variant paper|modern]
                                   [--env NAME:VAR=VALUE]

Each round runs bench/model_throughput.py once under every interpreter in turn, in the opposite order every
other round (--per-run timed rounds in that process, their best: on a noisy machine the median of a few
in-process rounds still drifts with the neighbours, the best much less); the table gives the median over rounds of each case per install and each
install's ratio to the first. --env sets an environment variable for one install only (for example
portable-avx2:LENET_FAST_ISA=avx2, with the same interpreter under two names).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("installs", nargs="+", help="NAME=PYTHON: a name and the python of an install")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-run", type=int, default=3)
    parser.add_argument("--variant", default="paper", choices=("paper", "modern"))
    parser.add_argument("--env", action="append", default=[], help="NAME:VAR=VALUE")
    args = parser.parse_args()
    installs = dict(item.split("=", 1) for item in args.installs)
    envs = {name: dict(os.environ, PYTHONSAFEPATH="1") for name in installs}
    for item in args.env:
        name, assignment = item.split(":", 1)
        var, value = assignment.split("=", 1)
        envs[name][var] = value
    results = {name: {} for name in installs}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.json")
        for r in range(args.rounds):
            order = list(installs) if r % 2 == 0 else list(installs)[::-1]    # no install always goes first
            for name in order:
                python = installs[name]
                subprocess.run([python, os.path.join(HERE, "model_throughput.py"), "--rounds", str(args.per_run),
                                "--variant", args.variant, "--best", "--json", out], env=envs[name], check=True, stdout=subprocess.DEVNULL, cwd=tmp)
                with open(out) as f:
                    for case, rate in json.load(f).items():
                        results[name].setdefault(case, []).append(rate)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    names = list(installs)
    print(f"{'case (images/s, median of ' + str(args.rounds) + ' rounds)':<44}"
          + "".join(f"{n:>16}" for n in names) + "".join(f"{n + '/' + names[0]:>24}" for n in names[1:]))
    for case in results[names[0]]:
        medians = [statistics.median(results[n][case]) for n in names]
        print(f"{case:<44}" + "".join(f"{m:>16,.0f}" for m in medians)
              + "".join(f"{m / medians[0]:>24.3f}" for m in medians[1:]))


if __name__ == "__main__":
    main()
