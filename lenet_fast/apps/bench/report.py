"""The ``lenet-fast bench`` report: printed as a table, and written as JSON."""
import json
import sys

from ...io.archive import atomic_write
from .memory import MEMORY_IMAGES

CONTENDERS = ("lenet_fast", "torch")


def print_report(report, out=None):
    """The report as text on `out` (default stdout): the settings, the results table, the FLOP counts
    and the memory runs."""
    out = out or sys.stdout
    settings = report["settings"]
    lines = (_header_lines(report) + [""] + _results_lines(report["results"], settings)
             + [""] + _flops_lines(report["flops_per_image"]) + [""] + _memory_lines(report["memory"], settings))
    print("\n".join(lines), file=out, flush=True)


def write_json(report, path):
    data = (json.dumps(report, indent=2) + "\n").encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def _figure(value, unit):
    if value is None:
        return "-"
    return f"{value:,.3f} ms" if unit == "ms" else f"{value:,.0f}/s"


def _mib(value):
    return "-" if value is None else f"{value:,.1f} MiB"


def _threads_text(k):
    return f"{k} thread" + ("s" if k > 1 else "")


def _header_lines(report):
    m, s = report["machine"], report["settings"]
    yes = {True: "yes", False: "no"}
    peaks = ", ".join(f"{p['gflops']:,.1f} GFLOP/s at {_threads_text(p['threads'])}" for p in report["fma_peak"])
    lines = [
        f"lenet-fast bench: medians of {s['repeats']} interleaved repetitions"
        + (", lenet_fast vs PyTorch (CPU)" if s["torch"] else ", lenet_fast only (no PyTorch)")
        + (" [--quick]" if s["quick"] else ""),
        f"cpu         {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"avx2 {yes[m['avx2']]}, avx512f {yes[m['avx512f']]}",
        f"fma peak    {peaks} (medians; a {s['fma_probe_seconds']:g} s float32 FMA probe per thread count in "
        "every repetition)",
        f"lenet_fast  {m['lenet_fast']}, compiled ISA {m['compiled_isa']}, OpenMP {m['openmp'] or 'off'}",
        f"versions    python {m['python']}, numpy {m['numpy']}, torch {m['torch'] or 'not used'}",
        f"threads     cases at {', '.join(map(str, s['threads']))}; OpenMP limit {m['openmp_thread_limit']}, "
        f"OMP_NUM_THREADS={m['OMP_NUM_THREADS'] or 'unset'}"
        + (f", torch default {m['torch_default_threads']}" if s["torch"] else ""),
        f"work        float32; training: {s['train_images_per_repetition']:,} random images per repetition, "
        f"plain SGD (step {s['sgd_step']:g}), paper variant at batch "
        f"{', '.join(map(str, s['train_batches']))}, modern at {s['modern_train_batch']}; inference batch "
        f"{s['inference_batch']:,}; latency (paper): {s['latency_calls_per_repetition']} batch-1 calls per "
        "repetition",
    ]
    if s["torch"]:
        for variant, description in s["torch_models"].items():
            lines.append(f"torch {variant:<7}{description}")
    return lines


def _results_lines(results, settings):
    with_torch = settings["torch"]
    header = f"{'variant':<8}{'case':<12}{'batch':>6}{'threads':>8}{'lenet_fast':>14}"
    if with_torch:
        header += f"{'torch':>14}{'speedup':>9}"
    header += f"{'% peak':>8}{'epoch s*':>15}"
    lines = [header, "-" * len(header)]
    for r in results:
        row = (f"{r['variant']:<8}{r['case']:<12}{r['batch']:>6}{r['threads']:>8}"
               f"{_figure(r['lenet_fast']['median'], r['unit']):>14}")
        if with_torch:
            t = r["torch"]["median"] if r["torch"] else None
            sp = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"
            row += f"{_figure(t, r['unit']):>14}{sp:>9}"
        if r["case"] == "training":
            epoch = [r["epoch_seconds"][name] for name in CONTENDERS[:2 if with_torch else 1]]
            epoch = " / ".join("-" if e is None else f"{e:.1f}" for e in epoch)
            row += f"{r['percent_of_peak']:>7.1f}%{epoch:>15}"
        lines.append(row.rstrip())
    if with_torch:
        lines.append("speedup: lenet_fast over torch in this run (images/s ratio; for latency, torch ms / "
                     "lenet_fast ms); > 1 means lenet_fast is faster")
    lines.append("% peak: lenet_fast's FLOPs per trained image (table below) x its images/s / the FMA peak at "
                 "that thread count (batch 1 trains on one thread)")
    lines.append(f"* epoch s: derived, not measured: {settings['epoch_images']:,} images / the images/s above"
                 + (" (lenet_fast / torch)" if with_torch else ""))
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
    lines.append("inference per image (forward, no loss): "
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
             f"{memory['batch']}, plain SGD, {_threads_text(memory['threads'])}), "
             f"each in a fresh process{quick}",
             f"{'':<18}{'RSS before':>14}{'peak RSS':>14}{'training adds':>15}"]
    for name in CONTENDERS:
        figures = memory[name] or {}
        lines.append(f"{name:<18}{_mib(figures.get('rss_before_mib')):>14}{_mib(figures.get('peak_mib')):>14}"
                     f"{_mib(figures.get('increase_mib')):>15}")
    ratios = memory["lenet_fast_over_torch"]
    lines.append(f"{'lenet_fast / torch':<18}{'':>14}"
                 + (f"{ratios['peak']:>13.2f}x{ratios['increase']:>14.2f}x" if ratios else f"{'-':>14}{'-':>15}"))
    lines.append("RSS before: after imports, data and model, just before training; peak: the process's VmHWM")
    return lines
