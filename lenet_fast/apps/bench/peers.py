"""The peers of ``lenet-fast bench``: which there are, which are installed, and their versions.

A peer is measured when the packages it needs can be imported (``pip install 'lenet_fast[bench]'``
installs them all); a missing one is skipped with a line saying how to install it. ``--peers LIST``
chooses among them (default: every installed one)."""
import dataclasses
import importlib.metadata
import importlib.util

from .peers_jax import JaxScan, JaxStep
from .peers_onnx import OnnxRuntime
from .peers_torch import TorchCompiledModel, TorchCompiledStep, TorchEager


@dataclasses.dataclass(frozen=True)
class PeerSpec:
    name: str
    modules: tuple          # importable names it needs
    install: str            # the pip command that brings them
    cls: type               # a contenders.Contender: cls(variant, n_threads, x_train, y_train)
    description: str


TORCH = ("torch",), "pip install torch"
JAX = ("jax", "jaxlib"), "pip install 'jax[cpu]'"
ORT = ("onnxruntime", "onnx"), "pip install onnxruntime onnx"
PEERS = (
    PeerSpec("torch", *TORCH, TorchEager, "PyTorch eager: autograd, torch.optim.SGD; inference_mode"),
    PeerSpec("torch-compile", *TORCH, TorchCompiledModel,
             "torch.compile(model); the step in eager autograd around it"),
    PeerSpec("torch-compile-step", *TORCH, TorchCompiledStep,
             "torch.compile(fullgraph) of the whole step: forward, loss, torch.func.grad, SGD update; training only"),
    PeerSpec("jax", *JAX, JaxStep, "jax.jit of the whole step (one call per batch) and of inference"),
    PeerSpec("jax-scan", *JAX, JaxScan, "jax.jit of a whole epoch (lax.scan of the step over the batches); "
             "training only"),
    PeerSpec("onnxruntime", *ORT, OnnxRuntime, "ONNX Runtime (CPU) running lenet_fast's own model as "
             "lenet_fast.export_onnx writes it; inference and latency only"),
)
PEER_NAMES = tuple(p.name for p in PEERS)
# the distributions whose versions the report gives, for the modules the peers import
DISTRIBUTIONS = {"torch": "torch", "jax": "jax", "jaxlib": "jaxlib", "onnxruntime": "onnxruntime", "onnx": "onnx"}


def parse_peers(text):
    """'torch,jax' -> ("torch", "jax"); 'none' -> (); 'all' -> every peer. ValueError (one line) otherwise."""
    text = text.strip()
    if text == "none":
        return ()
    if text == "all":
        return PEER_NAMES
    names = tuple(part.strip() for part in text.split(","))
    unknown = [n for n in names if n not in PEER_NAMES]
    if not text or unknown or len(set(names)) != len(names):
        raise ValueError(f"--peers must be 'all', 'none' or a comma-separated list of distinct peers from "
                         f"{', '.join(PEER_NAMES)}; got {text!r}")
    return names


def resolve_peers(peers):
    """(the PeerSpecs to run, the skipped lines): `peers` is None (every peer), or a sequence of names and
    PeerSpecs (a PeerSpec is taken as it is: the tests bring their own)."""
    chosen = PEERS if peers is None else [p if isinstance(p, PeerSpec) else _spec(p) for p in peers]
    available, skipped = [], []
    for spec in chosen:
        missing = [m for m in spec.modules if not _importable(m)]
        if missing:
            skipped.append(f"skipped: {spec.name} (not installed: {spec.install})")
        else:
            available.append(spec)
    return available, skipped


def peer_versions(specs):
    """{distribution: version} of the packages the peers `specs` use."""
    versions = {}
    for spec in specs:
        for module in spec.modules:
            name = DISTRIBUTIONS.get(module)
            if name and name not in versions:
                try:
                    versions[name] = importlib.metadata.version(name)
                except importlib.metadata.PackageNotFoundError:
                    versions[name] = "unknown"
    return versions


def _spec(name):
    for spec in PEERS:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown peer {name!r}: the peers are {', '.join(PEER_NAMES)}")


def _importable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
