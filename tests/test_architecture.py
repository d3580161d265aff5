"""The architecture spec (lenet_fast.nn.architecture) against the paper's numbers, and the package's
layout: imports run one way, with no cycle (function-level imports included), and the module paths of
lenet_fast 0.1 still import."""
import ast
import importlib
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast import LeNet5
from lenet_fast.nn.architecture import VARIANTS, architecture
from lenet_fast.nn.constants import C3_TABLE

PACKAGE = Path(lenet_fast.__file__).parent
CHECKOUT = Path(__file__).resolve().parents[1]


# --- the spec -----------------------------------------------------------------------------------------

def test_paper_numbers():
    # Sec. II-B: 60,000 trainable parameters, 340,908 connections; C1 122,304, C3 1,516 / 151,600,
    # C5 48,120 (parameters = connections), F6 10,164
    spec = architecture("paper")
    assert spec.num_parameters == 60_000 and spec.connections == 340_908
    counts = {layer.name: (layer.trainable, layer.connections) for layer in spec.layers}
    assert counts == {"c1": (156, 122_304), "s2": (12, 5_880), "c3": (1_516, 151_600), "s4": (32, 2_000),
                      "c5": (48_120, 48_120), "f6": (10_164, 10_164), "output": (0, 840)}
    np.testing.assert_array_equal(spec.c3_table, C3_TABLE)
    assert spec.decision == "argmin" and spec.criteria == ("mse", "map")


def test_modern_numbers():
    spec = architecture("modern")
    assert spec.num_parameters == 61_706 and spec.decision == "argmax"
    assert spec.c3_table.all() and spec.trainable_mask().all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_layout_is_contiguous_and_the_models(variant):
    spec = architecture(variant)
    offset = 0
    for p in spec.params:
        assert p.offset == offset
        offset += p.size
    assert spec.size == offset
    net = LeNet5(variant)
    assert net.flat_parameters.size == spec.size and net.num_parameters == spec.num_parameters
    trainable = {name: value for name, value in net.parameters().items() if name != "output.centers"}
    assert {name: value.shape for name, value in trainable.items()} == {p.name: p.shape for p in spec.params}
    for p in spec.params:     # the named views are the flat array's slices at the spec's offsets
        assert np.shares_memory(trainable[p.name], net.flat_parameters[p.offset:p.offset + p.size])
    mask = spec.trainable_mask()
    assert mask.sum() == spec.num_parameters and np.all(net.flat_parameters[~mask] == 0)
    assert [layer.output_size for layer in spec.layers] == [4704, 1176, 1600, 400, 120, 84, 10]


def test_spec_is_read_only():
    with pytest.raises(ValueError):
        architecture("paper").c3_table[0, 0] = 1
    with pytest.raises(ValueError, match="variant must be one of"):
        architecture("lenet1")


# --- the layout of the package ------------------------------------------------------------------------

def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """The lenet_fast modules that the source file `path` imports, anywhere in it (functions included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if node.module:
                found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}      # `from pkg import module`
    return {m for m in found if m.startswith("lenet_fast")}


def _graph():
    sources = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in sources and m != name} for name, path in sources.items()}


def test_no_import_cycle():
    graph, state, path = _graph(), {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


# which packages each package may import; "base" are the top-level helper modules (_checks, _config, ...)
MAY_IMPORT = {
    "base": {"base"},
    "data": {"base", "io", "data"},
    "io": {"base", "io", "nn"},
    "nn": {"base", "io", "nn"},
    "train": {"base", "io", "nn", "train"},
    "model": {"base", "nn", "train"},
    "sklearn": {"base", "nn", "train", "model", "sklearn"},
    "inspect": {"base", "io", "nn", "data", "model", "inspect"},
    "apps": {"base", "io", "nn", "data", "train", "model", "inspect", "apps"},
}


def _package_of(module):
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "root"
    if parts[1] in MAY_IMPORT:
        return parts[1]
    return "base" if parts[1].startswith("_") else parts[1]


def test_imports_run_one_way():
    for module, targets in _graph().items():
        package = _package_of(module)
        if package == "root":       # lenet_fast/__init__.py gathers the public names; __main__ runs the CLI
            continue
        for target in targets:
            assert _package_of(target) in MAY_IMPORT[package], f"{module} imports {target}"


def test_no_source_file_over_400_lines():
    roots = [CHECKOUT / "lenet_fast", CHECKOUT / "src", CHECKOUT / "tests", CHECKOUT / "tools"]
    long = [str(p) for root in roots if root.is_dir() for p in root.rglob("*")
            if p.suffix in (".py", ".pyx", ".pxd", ".h") and len(p.read_text().splitlines()) > 410]
    assert not long


@pytest.mark.parametrize("old,new,name", [
    ("training", "lenet_fast.train", "Trainer"), ("datasets", "lenet_fast.data", "load_sample"),
    ("ops", "lenet_fast.nn.layer_kernels", "conv2d_forward"), ("reference", "lenet_fast.nn.reference", "ReferenceLeNet5"),
    ("distortions", "lenet_fast.train.distortions", "Distortions"), ("images", "lenet_fast.data.images", "mnist_style"),
    ("constants", "lenet_fast.nn.constants", "C3_TABLE"),
])
def test_old_module_paths_still_import(old, new, name):
    module = importlib.import_module(f"lenet_fast.{old}")
    assert module is importlib.import_module(new) and hasattr(module, name)
