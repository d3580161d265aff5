"""ONNX export (lenet_fast.export_onnx, `lenet-fast export`): the graph passes onnx.checker, uses standard
operators at the documented opset with the documented names, and ONNX Runtime's output equals
net.forward on real digits and random input, batch 1 and larger, both variants and both dtypes.

onnx and onnxruntime are the optional extra lenet_fast[onnx] (and in the test extra): without them these
tests skip, except those of the errors, which need neither."""
import os
import sys

import numpy as np
import pytest

import lenet_fast
from lenet_fast import LeNet5, export_onnx, preprocess
from lenet_fast.apps.cli import main
from lenet_fast.data import load_sample
from lenet_fast.io import onnx_export
from lenet_fast.nn.architecture import DTYPES, VARIANTS, architecture

# the documented interface (README, "Export to ONNX"; the module's docstring)
OPSET = 17
OUTPUT = {"paper": "penalties", "modern": "logits"}
STANDARD_OPS = {"Conv", "AveragePool", "MaxPool", "Mul", "Add", "Sub", "Tanh", "Relu", "Flatten", "Gemm",
                "Reshape", "ReduceSum", "Cast", "Pad"}


def _onnx():
    return pytest.importorskip("onnx", reason="onnx is not installed: pip install 'lenet_fast[onnx]'")


def _session(model):
    """An ONNX Runtime session (one thread) on an ONNX file or an onnx.ModelProto."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'lenet_fast[onnx]'")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = model.SerializeToString() if hasattr(model, "SerializeToString") else os.fspath(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _trained_ish(variant, dtype="float32", seed=3):
    """A model whose every trainable weight, bias and coefficient is non-zero and away from the initial
    values (C3's unconnected weights stay zero)."""
    net = LeNet5(variant, dtype=dtype, seed=seed)
    mask = architecture(variant).trainable_mask()
    noise = np.random.default_rng(seed).normal(scale=0.05, size=mask.size) * mask
    net.flat_parameters[...] += noise.astype(net.dtype)
    assert np.count_nonzero(net.flat_parameters) == mask.sum()
    return net


def _inputs(batch, kind, seed=0):
    """(network input, uint8 digits or None): real digits of the embedded sample, or random input."""
    rng = np.random.default_rng(seed)
    if kind == "digits":
        digits = load_sample().x_train[rng.choice(5000, batch, replace=False)]
        return preprocess(digits), digits
    return rng.uniform(-0.5, 1.5, size=(batch, 1, 32, 32)).astype(np.float32), None


def _assert_close(out, ref):
    """rtol 1e-5, with an absolute tolerance of 1e-5 times the outputs' magnitude (logits cross 0)."""
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
    return float(np.abs(out - ref).max())


# --- the graph ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw_digits", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
def test_graph_passes_the_checker_with_the_documented_interface(variant, raw_digits, tmp_path):
    onnx = _onnx()
    net = _trained_ish(variant)
    path = tmp_path / "lenet5.onnx"
    assert export_onnx(net, path, raw_digits=raw_digits) is None
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] and model.ir_version == 8
    assert {node.op_type for node in model.graph.node} <= STANDARD_OPS
    assert all(node.domain == "" for node in model.graph.node)

    def interface(values):
        return [(v.name, v.type.tensor_type.elem_type,
                 [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values]

    expected_input = (("digits", onnx.TensorProto.UINT8, ["N", 28, 28]) if raw_digits
                      else ("input", onnx.TensorProto.FLOAT, ["N", 1, 32, 32]))
    assert interface(model.graph.input) == [expected_input]
    assert interface(model.graph.output) == [(OUTPUT[variant], onnx.TensorProto.FLOAT, ["N", 10])]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["variant"] == variant and props["decision"] == architecture(variant).decision

    # the parameters are initializers under the spec's names, with the model's values (as float32)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for name, value in net.parameters().items():
        assert weights[name].dtype == np.float32
        np.testing.assert_array_equal(weights[name], value.astype(np.float32).reshape(weights[name].shape))
    c3 = weights["c3.weight"]
    assert np.all((c3 != 0) == architecture(variant).c3_table.T[:, :, None, None])   # Table I, by its zeros


# --- ONNX Runtime against net.forward -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_onnx_runtime_equals_forward(variant, dtype, tmp_path):
    _onnx()
    net = _trained_ish(variant, dtype)
    path = tmp_path / "lenet5.onnx"
    export_onnx(net, path)
    session = _session(path)               # one session: the batch axis is dynamic
    for batch, kind in [(1, "digits"), (64, "digits"), (1, "random"), (7, "random")]:
        x, _ = _inputs(batch, kind, seed=batch)
        ref = net.forward(x)
        assert np.std(ref) > 0.1
        (out,) = session.run(None, {"input": x})
        _assert_close(out, ref)
        np.testing.assert_array_equal(net.decide(out), net.decide(ref))


@pytest.mark.parametrize("variant", VARIANTS)
def test_raw_digits_graph_preprocesses_like_preprocess(variant):
    _onnx()
    net = _trained_ish(variant)
    raw, plain = _session(onnx_export.onnx_model(net, raw_digits=True)), _session(onnx_export.onnx_model(net))
    for batch in (1, 33):
        x, digits = _inputs(batch, "digits", seed=batch)
        (out,) = raw.run(None, {"digits": digits})
        _assert_close(out, net.forward(digits))
        _assert_close(out, plain.run(None, {"input": x})[0])


def test_export_rejects_what_is_not_a_model(tmp_path):
    with pytest.raises(TypeError, match="net must be a lenet_fast LeNet5 model, got str"):
        export_onnx("lenet5.npz", tmp_path / "out.onnx")


def test_export_without_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)         # `import onnx` now fails as if not installed
    with pytest.raises(ImportError) as exc:
        export_onnx(LeNet5(), tmp_path / "out.onnx")
    message = str(exc.value)
    assert "'onnx' package" in message and "pip install 'lenet_fast[onnx]'" in message and "\n" not in message
    assert not list(tmp_path.iterdir())
    assert lenet_fast.export_onnx is export_onnx


# --- the command line ------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_cli_export_writes_a_file_that_onnx_runtime_runs(variant, tmp_path, capsys):
    _onnx()
    net = _trained_ish(variant)
    model, out = tmp_path / "m.npz", tmp_path / "m.onnx"
    net.save(model)
    assert main(["export", str(model), "--onnx", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out}: {variant} variant, opset {OPSET}") and OUTPUT[variant] in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "m.onnx"]      # no temporary file left
    x, digits = _inputs(5, "digits")
    _assert_close(_session(out).run(None, {"input": x})[0], net.forward(x))
    assert main(["export", str(model), "--onnx", str(out), "--raw-digits"]) == 0
    assert "digits uint8 (N, 28, 28)" in capsys.readouterr().out
    _assert_close(_session(out).run(None, {"digits": digits})[0], net.forward(x))


def test_cli_export_of_a_float64_model_says_the_weights_are_rounded(tmp_path, capsys):
    _onnx()
    model, out = tmp_path / "m64.npz", tmp_path / "m64.onnx"
    _trained_ish("paper", "float64").save(model)
    assert main(["export", str(model), "--onnx", str(out)]) == 0
    assert "(float64 weights rounded to float32)" in capsys.readouterr().out


def _one_line_error(argv, capsys):
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("lenet-fast: error: ")
    return captured.err


def test_cli_export_mistakes_are_one_line_errors(tmp_path, capsys):
    model, not_a_model = tmp_path / "m.npz", tmp_path / "notes.txt"
    LeNet5().save(model)
    not_a_model.write_text("not a model")
    assert "model file not found" in _one_line_error(["export", str(tmp_path / "nope.npz"), "--onnx",
                                                      str(tmp_path / "x.onnx")], capsys)
    assert str(not_a_model) in _one_line_error(["export", str(not_a_model), "--onnx", str(tmp_path / "x.onnx")],
                                               capsys)
    with pytest.raises(SystemExit) as exc:            # --onnx is required
        main(["export", str(model)])
    assert exc.value.code == 2 and "--onnx" in capsys.readouterr().err


def test_cli_export_to_an_unwritable_path_is_a_one_line_error(tmp_path, capsys):
    _onnx()
    model = tmp_path / "m.npz"
    LeNet5().save(model)
    for target in (tmp_path / "no-such-folder" / "x.onnx", tmp_path):
        err = _one_line_error(["export", str(model), "--onnx", str(target)], capsys)
        assert f"cannot write the ONNX file {target}: " in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_cli_export_without_onnx_says_what_to_install(tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.npz"
    LeNet5().save(model)
    monkeypatch.setitem(sys.modules, "onnx", None)
    err = _one_line_error(["export", str(model), "--onnx", str(tmp_path / "x.onnx")], capsys)
    assert "'onnx' package" in err and "pip install 'lenet_fast[onnx]'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
