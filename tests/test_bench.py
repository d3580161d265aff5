"""lenet-fast bench: the quick run, its JSON report and its option errors."""
import json

import pytest

from lenet_fast.bench import parse_threads
from lenet_fast.cli import main


def test_quick_bench_writes_table_and_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--no-torch", "--threads", "1,2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lenet_fast only" in out and "cpu " in out and "compiled ISA" in out
    assert "training" in out and "inference" in out and "latency p99" in out
    report = json.loads(path.read_text())
    machine = report["machine"]
    for key in ("cpu", "logical_cores", "avx2", "avx512f", "lenet_fast", "compiled_isa", "numpy"):
        assert key in machine
    assert machine["torch"] is None and report["settings"]["torch"] is False
    results = report["results"]
    cases = {(r["case"], r["threads"]) for r in results}
    for threads in (1, 2):
        for case in ("training", "inference", "latency p50", "latency p99"):
            assert (case, threads) in cases
    for r in results:
        assert r["lenet_fast"]["median"] > 0 and all(v > 0 for v in r["lenet_fast"]["values"])
        assert r["torch"] is None and r["speedup"] is None
    assert not [p for p in tmp_path.iterdir() if p.name != "bench.json"]   # no temporary file left


@pytest.mark.parametrize("value", ["0", "1,x", "", "-1", "2,2"])
def test_invalid_threads_is_a_one_line_error(value, capsys):
    assert main(["bench", "--quick", "--no-torch", "--threads", value]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("lenet-fast: error: --threads") and "\n" not in err
    assert captured.out == ""


def test_invalid_repeats_is_a_one_line_error(capsys):
    assert main(["bench", "--quick", "--no-torch", "--repeats", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lenet-fast: error: --repeats") and "\n" not in err


def test_parse_threads():
    assert parse_threads("1,2") == (1, 2)
    assert parse_threads("2") == (2,)
