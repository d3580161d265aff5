"""The ``lenet-fast bench`` report: printed as tables, and written as JSON."""
import json
import sys

from ...io.archive import atomic_write
from .memory import MEMORY_IMAGES
from .targets import target_lines

OURS = "lenet_fast"


def print_report(report, out=None):
    """The report as text on `out` (default stdout): the settings, lenet_fast against the best peer per
    measure, every contender's figures, the FLOP counts, the memory runs and the issue's targets."""
    out = out or sys.stdout
    settings = report["settings"]
    blocks = [_header_lines(report), _best_peer_lines(report["results"], settings)]
    if len(settings["contenders"]) > 1:
        blocks.append(_contender_lines(report["results"], settings))
    blocks += [_flops_lines(report["flops_per_image"]), _memory_lines(report["memory"], settings),
               target_lines(report)]
    print("\n\n".join("\n".join(block) for block in blocks if block), file=out, flush=True)


def write_json(report, path):
    data = (json.dumps(report, indent=2) + "\n").encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def _figure(value, unit):
    if value is None:
        return "-"
    return f"{value:,.3f} ms" if unit == "ms" else f"{value:,.0f}/s"


def _mib(value):
    return "-" if value is None else f"{value:,.1f} MiB"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def _threads_text(k):
    return f"{k} thread" + ("s" if k > 1 else "")


def _header_lines(report):
    m, s = report["machine"], report["settings"]
    yes = {True: "yes", False: "no"}
    peers = [name for name in s["contenders"] if name != OURS]
    peaks = ", ".join(f"{p['gflops']:,.1f} GFLOP/s at {_threads_text(p['threads'])}" for p in report["fma_peak"])
    versions = ", ".join(f"{name} {version}" for name, version in m["peers"].items())
    lines = [
        f"lenet-fast bench: medians of {s['repeats']} interleaved repetitions (each timed run after an untimed "
        "one), lenet_fast"
        + (f" against {len(peers)} peer{'s' if len(peers) > 1 else ''}" if peers else " only (no peer)")
        + (" [--quick]" if s["quick"] else ""),
        f"cpu         {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"avx2 {yes[m['avx2']]}, avx512f {yes[m['avx512f']]}",
        f"isa         lenet_fast compiled for {m['compiled_isa']}"
        + (f"; torch's ATen CPU capability {m['torch_cpu_capability']}" if m["torch_cpu_capability"] else ""),
        f"fma peak    {peaks} (medians; a {s['fma_probe_seconds']:g} s float32 FMA probe per thread count in "
        "every repetition)",
        f"lenet_fast  {m['lenet_fast']}, OpenMP {m['openmp'] or 'off'}",
        f"versions    python {m['python']}, numpy {m['numpy']}" + (f", {versions}" if versions else ""),
        f"threads     cases at {', '.join(map(str, s['threads']))}; OpenMP limit {m['openmp_thread_limit']}, "
        f"OMP_NUM_THREADS={m['OMP_NUM_THREADS'] or 'unset'}",
        f"work        float32; training: {s['train_images_per_repetition']:,} random images per repetition, "
        f"plain SGD (step {s['sgd_step']:g}), paper variant at batch "
        f"{', '.join(map(str, s['train_batches']))}, modern at {s['modern_train_batch']}; inference batch "
        f"{s['inference_batch']:,}; latency (paper): {s['latency_calls_per_repetition']} batch-1 calls per "
        "repetition",
    ]
    if peers:
        lines.append("peers       the classic LeNet-5, paper: " + s["classic_models"]["paper"] + "; modern: "
                     + s["classic_models"]["modern"])
        lines += [f"  {name:<20}{description}" for name, description in s["peers"].items()]
        warmup = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in s["warmup_seconds"].items()
                           if seconds is not None)
        lines.append(f"warm-up     first call of every case, not timed (compilation included): {warmup}")
    lines += s["skipped"] + [f"note: {note}" for note in s["notes"]]
    return lines


def _best_peer_lines(results, settings):
    with_peers = len(settings["contenders"]) > 1
    header = f"{'variant':<8}{'case':<12}{'batch':>6}{'threads':>8}{OURS:>14}"
    if with_peers:
        header += f"  {'best peer':<20}{'its figure':>14}{'ratio':>9}"
    header += f"{'% peak':>8}{'epoch s*':>10}"
    lines = [header, "-" * len(header)]
    for r in results:
        unit = r["unit"]
        row = (f"{r['variant']:<8}{r['case']:<12}{r['batch']:>6}{r['threads']:>8}"
               f"{_figure(r['figures'][OURS]['median'], unit):>14}")
        if with_peers:
            best = r["best_peer"]
            figure = r["figures"][best]["median"] if best else None
            row += f"  {best or '-':<20}{_figure(figure, unit):>14}{_ratio(r['ratio']):>9}"
        if r["case"] == "training":
            epoch = r["epoch_seconds"][OURS]
            row += f"{r['percent_of_peak']:>7.1f}%{epoch:>10.1f}"
        lines.append(row.rstrip())
    if with_peers:
        lines.append("best peer: the fastest peer at that measure in this run; ratio: lenet_fast over it "
                     "(images/s ratio; for latency, its ms / lenet_fast's ms); > 1 means lenet_fast is faster")
    lines.append("% peak: lenet_fast's FLOPs per trained image (table below) x its images/s / the FMA peak at "
                 "that thread count (batch 1 trains on one thread)")
    lines.append(f"* epoch s: derived, not measured: {settings['epoch_images']:,} images / lenet_fast's images/s")
    return lines


def _contender_lines(results, settings):
    names = settings["contenders"]
    widths = [max(14, len(name) + 2) for name in names]
    header = f"{'variant':<8}{'case':<12}{'batch':>6}{'threads':>8}" + "".join(
        f"{name:>{w}}" for name, w in zip(names, widths))
    lines = ["every contender (medians; '-': it does not run that measure, or not at that thread count)",
             header, "-" * len(header)]
    for r in results:
        row = f"{r['variant']:<8}{r['case']:<12}{r['batch']:>6}{r['threads']:>8}"
        for name, w in zip(names, widths):
            figure = r["figures"].get(name)
            row += f"{_figure(figure['median'] if figure else None, r['unit']):>{w}}"
        lines.append(row)
    return lines


def _flops_lines(flops):
    variants = list(flops)
    lines = ["FLOPs per image that lenet_fast performs (bench.flops_per_image: a multiply-add is 2 FLOPs, "
             "tanh, exp and log 1, comparisons 0)",
             f"{'':<14}" + "".join(f"{v + ' forward':>17}{v + ' backward':>17}" for v in variants)]
    rows = {v: flops[v]["by_layer"] for v in variants}
    for name in rows[variants[0]]:
        lines.append(f"{name:<14}" + "".join(f"{rows[v][name]['forward']:>17,}{rows[v][name]['backward']:>17,}"
                                            for v in variants))
    totals = {v: [sum(r[d] for r in rows[v].values()) for d in ("forward", "backward")] for v in variants}
    lines.append(f"{'total':<14}" + "".join(f"{totals[v][0]:>17,}{totals[v][1]:>17,}" for v in variants))
    lines.append("SGD update, once per batch (4 per trainable parameter): "
                 + "; ".join(f"{v} {flops[v]['update_per_batch']:,.0f}" for v in variants))
    lines.append("inference per image (forward, no loss; modern: C3 counted as the direct convolution its "
                 "Winograd form replaces): "
                 + "; ".join(f"{v} {flops[v]['inference']:,}" for v in variants))
    steps = {v: ", ".join(f"{f:,.0f} at batch {b}" for b, f in flops[v]["training_step"].items())
             for v in variants}
    lines.append("training step per image (total + update / batch): "
                 + "; ".join(f"{v} {steps[v]}" for v in variants))
    return lines


def _memory_lines(memory, settings):
    if memory is None:
        return ["memory      not measured (it reads /proc/self/status: Linux only)"]
    quick = f" [--quick: {memory['images']:,} images, not {MEMORY_IMAGES:,}]" if settings["quick"] else ""
    lines = [f"memory: one training epoch of {memory['images']:,} random images (paper, float32, batch "
             f"{memory['batch']}, plain SGD, {_threads_text(memory['threads'])}), each in a fresh process{quick}",
             f"{'':<26}{'RSS before':>14}{'peak RSS':>14}{'training adds':>15}   what it holds"]
    for name, figures in memory["runs"].items():
        lines.append(f"{name:<26}{_mib(figures['rss_before_mib']):>14}{_mib(figures['peak_mib']):>14}"
                     f"{_mib(figures['increase_mib']):>15}   {memory['holds'][name]}")
    for name, ratios in memory["lenet_fast_over"].items():
        lines.append(f"{OURS + ' / ' + name:<26}{'':>14}{_ratio(ratios['peak']):>14}{_ratio(ratios['increase']):>15}")
    lines.append("RSS before: after imports, data and model, just before training; peak: the process's VmHWM")
    return lines
