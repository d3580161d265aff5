"""The speed and memory targets of the issue "lenet-fast bench against the best peer", checked on a report:
each a ratio of lenet_fast to the best peer in the same run at TARGET_THREADS threads, a fraction of the
FMA peak, or a peak-memory ratio to PyTorch. Printed at the end of the report; nothing asserts on them."""

TARGET_THREADS = 2
# (variant, case, batch or None for the run's inference batch, the lowest ratio to the best peer)
RATIO_TARGETS = (
    ("paper", "training", 1, 10.0),
    ("paper", "training", 64, 5.0),
    ("paper", "training", 256, 5.0),
    ("paper", "inference", None, 4.0),
    ("paper", "latency p50", 1, 2.5),       # the best peer's ms / lenet_fast's
    ("modern", "training", 64, 4.0),
    ("modern", "inference", None, 4.0),
)
PEAK_TARGET = ("paper", "training", 64, 45.0)       # % of the FMA peak
MEMORY_TARGET = ("torch", 0.25)                     # lenet_fast's peak RSS / PyTorch's, at most


def _row(results, variant, case, batch):
    for r in results:
        if (r["variant"], r["case"], r["threads"]) == (variant, case, TARGET_THREADS) and batch in (None, r["batch"]):
            return r
    return None


def _verdict(met):
    return "met" if met else "MISSED"


def target_lines(report):
    """The targets block: one line per target, with the figure, the aim and whether it is met."""
    results = report["results"]
    if len(report["settings"]["contenders"]) < 2:
        return ["targets     not checked: no peer was measured"]
    lines = [f"targets (at {TARGET_THREADS} threads, this run; ratios to the best peer, > 1: lenet_fast faster)"]
    for variant, case, batch, aim in RATIO_TARGETS:
        r = _row(results, variant, case, batch)
        what = f"  {variant} {case}" + (f" batch {batch}" if batch else "")
        if r is None or r["ratio"] is None:
            lines.append(f"{what}: not measured (no peer, or not at {TARGET_THREADS} threads), aim {aim:g}x")
            continue
        lines.append(f"{what}: {r['ratio']:.2f}x {r['best_peer']}, aim {aim:g}x: {_verdict(r['ratio'] >= aim)}")
    variant, case, batch, aim = PEAK_TARGET
    r = _row(results, variant, case, batch)
    what = f"  {variant} {case} batch {batch} at % of the FMA peak"
    if r is None:
        lines.append(f"{what}: not measured, aim {aim:g}%")
    else:
        lines.append(f"{what}: {r['percent_of_peak']:.1f}%, aim {aim:g}%: {_verdict(r['percent_of_peak'] >= aim)}")
    name, aim = MEMORY_TARGET
    memory = report["memory"]
    ratios = (memory or {}).get("lenet_fast_over", {})
    if name in ratios:
        peak = ratios[name]["peak"]
        lines.append(f"  peak memory of the epoch: {peak:.2f}x {name}'s, aim at most {aim:g}x: {_verdict(peak <= aim)}"
                     + "".join(f"; {r['peak']:.2f}x {other}'s" for other, r in ratios.items() if other != name))
    else:
        lines.append(f"  peak memory of the epoch: not measured against {name}, aim at most {aim:g}x")
    return lines
