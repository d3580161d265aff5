"""LeNet-5 as an ONNX model: ``export_onnx(net, path)`` (and ``lenet-fast export MODEL --onnx OUT``).

The graph uses standard ONNX operators only, opset 17 (IR version 8), so ONNX Runtime, OpenCV's dnn
module and other runtimes run it. It is built from the architecture spec, layer by layer:

============  ====================================================================================
input         ``input``: float32 (N, 1, 32, 32), N a dynamic batch axis, preprocessed as
              ``lenet_fast.preprocess`` does (background -0.1, ink 1.175, 28x28 padded to 32x32).
              With ``raw_digits=True`` the input is ``digits`` instead: uint8 (N, 28, 28), 0 =
              background, 255 = ink; Cast, Mul, Add, Reshape and Pad do ``preprocess`` in the graph.
conv          Conv (5x5, valid, stride 1) with the dense weights; C3's pairs outside Table I are
              zeros in them, so the connection table needs no special operator.
subsample     the paper's trainable subsampling: a sum pool (AveragePool 2x2 stride 2, times 4,
              which is exact) times the per-map coefficients, plus the per-map biases (Mul, Add).
maxpool       MaxPool 2x2, stride 2 (modern variant).
dense         Gemm (transB=1), after a Flatten where the previous layer's output is a map (C5).
rbf           the squared Euclidean distance of F6's 84 outputs to the 10 fixed Fig. 3 bitmaps:
              Reshape to (N, 1, 84), Sub the constant centres (10, 84), Mul by itself, ReduceSum
              over the 84 units.
squash        1.7159 tanh(2a/3) as Mul, Tanh, Mul.  relu: Relu.
output        ``penalties`` (paper: the RBF penalties, lower = more likely, decide by argmin) or
              ``logits`` (modern: decide by argmax), float32 (N, 10).
============  ====================================================================================

Initializers carry the parameter names of the spec (``c1.weight``, ``s2.coef``, ...; the centres are
``output.centers``), and node outputs are named after their layer (``c3.conv``, ``c3.tanh``, ...).
The model's metadata holds the variant, the decision rule and the input convention.

The graph is float32 for both dtypes: ONNX Runtime's CPU Conv and AveragePool have no float64
kernels. A float64 model's weights are rounded to float32 (its outputs then agree with its own
``forward`` to about 1e-6 relative).

``onnx`` is an optional dependency (``pip install 'lenet_fast[onnx]'``), imported when a model is
exported; ``onnxruntime`` is only needed to run the result.
"""
import numpy as np

from .._version import __version__
from ..nn.architecture import POOL, architecture
from ..nn.constants import INPUT_BACKGROUND, INPUT_FOREGROUND, SQUASH_A, SQUASH_S
from ..nn.network import Network
from .archive import atomic_write

OPSET = 17
IR_VERSION = 8                  # the IR of opset 17 (onnx 1.12), read by every runtime that has the opset
INPUT_NAME = "input"
DIGITS_NAME = "digits"
DIGIT_SIZE = 28                 # MNIST digits, padded to the network's 32x32 input
OUTPUT_NAMES = {"argmin": "penalties", "argmax": "logits"}
BATCH_AXIS = "N"
INSTALL_HINT = "pip install 'lenet_fast[onnx]'"


def export_onnx(net, path, raw_digits=False):
    """Write `net` (a LeNet5, either variant and dtype) to `path` as an ONNX model, atomically.

    The graph's input is ``input``, float32 (N, 1, 32, 32) as ``lenet_fast.preprocess`` makes it, or
    with ``raw_digits=True`` ``digits``, uint8 (N, 28, 28) MNIST-style images; its output is
    ``penalties`` (paper) or ``logits`` (modern), float32 (N, 10), what ``net.forward`` returns. See the
    module's docstring for the graph. Raises ImportError (naming the extra to install) without the
    ``onnx`` package, OSError naming `path` when it cannot be written."""
    model = onnx_model(net, raw_digits=raw_digits)
    data = model.SerializeToString()
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as exc:
        raise OSError(f"cannot write the ONNX file {path}: {exc.strerror or exc}") from None


def onnx_model(net, raw_digits=False):
    """The ``onnx.ModelProto`` that ``export_onnx`` writes (checked with ``onnx.checker``)."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a lenet_fast LeNet5 model, got {type(net).__name__}")
    onnx = _import_onnx()
    spec = architecture(net.variant)
    params = net.parameters()
    g = _Graph(onnx)
    x = INPUT_NAME
    if raw_digits:
        x = _digits_to_input(g, spec.layers[0].input_shape)
    for layer in spec.layers:
        x = LAYERS[layer.kind](g, layer, x, params)
        if layer.activation is not None:
            x = ACTIVATIONS[layer.activation](g, layer.name, x)
    output = OUTPUT_NAMES[spec.decision]
    g.nodes[-1].output[0] = output                      # the last node writes the graph's output

    helper, tensor = onnx.helper, onnx.TensorProto
    inputs = ([helper.make_tensor_value_info(DIGITS_NAME, tensor.UINT8, [BATCH_AXIS, DIGIT_SIZE, DIGIT_SIZE])]
              if raw_digits else
              [helper.make_tensor_value_info(INPUT_NAME, tensor.FLOAT, [BATCH_AXIS, *spec.layers[0].input_shape])])
    outputs = [helper.make_tensor_value_info(output, tensor.FLOAT, [BATCH_AXIS, *spec.layers[-1].output_shape])]
    graph = helper.make_graph(g.nodes, f"lenet5_{net.variant}", inputs, outputs, g.initializers,
                              doc_string=_describe(net, spec, raw_digits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="lenet_fast", producer_version=__version__,
                              doc_string=graph.doc_string)
    helper.set_model_props(model, {"variant": net.variant, "model_dtype": str(net.dtype),
                                   "decision": spec.decision, "input": inputs[0].name, "output": output})
    onnx.checker.check_model(model, full_check=True)
    return model


def _import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "onnx"
        raise ImportError(f"ONNX export needs the '{missing}' package, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return onnx


def _describe(net, spec, raw_digits):
    source = (f"'{DIGITS_NAME}' uint8 (N, {DIGIT_SIZE}, {DIGIT_SIZE}), 0 = background, 255 = ink" if raw_digits
              else f"'{INPUT_NAME}' float32 (N, {', '.join(map(str, spec.layers[0].input_shape))}) as "
                   "lenet_fast.preprocess makes it")
    return (f"LeNet-5, {net.variant} variant (LeCun et al. 1998), exported by lenet_fast {__version__} from "
            f"a {net.dtype} model. Input {source}; output '{OUTPUT_NAMES[spec.decision]}' float32 (N, 10), "
            f"decide by {spec.decision}.")


class _Graph:
    """The nodes and float32 initializers of the graph being built."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.initializers = onnx, [], []

    def const(self, name, value, dtype=np.float32):
        """An initializer `name` holding `value` (float32 unless told); returns its name."""
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op, inputs, output, **attributes):
        """A node `op` (named like its one output); returns the output's name."""
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


# --- the layers: (graph, layer of the spec, input name, parameters) -> output name ----------------------

def _conv(g, layer, x, params):
    n = layer.name
    weight = params[f"{n}.weight"] * layer.table.T[:, :, None, None]    # C3: zeros outside Table I
    return g.node("Conv", [x, g.const(f"{n}.weight", weight), g.const(f"{n}.bias", params[f"{n}.bias"])],
                  f"{n}.conv", kernel_shape=list(weight.shape[2:]), strides=[1, 1])


def _subsample(g, layer, x, params):
    n, per_map = layer.name, (-1, 1, 1)
    mean = g.node("AveragePool", [x], f"{n}.mean", kernel_shape=[POOL, POOL], strides=[POOL, POOL])
    block_sum = g.node("Mul", [mean, g.const(f"{n}.area", POOL * POOL)], f"{n}.sum")
    scaled = g.node("Mul", [block_sum, g.const(f"{n}.coef", params[f"{n}.coef"].reshape(per_map))], f"{n}.scaled")
    return g.node("Add", [scaled, g.const(f"{n}.bias", params[f"{n}.bias"].reshape(per_map))], f"{n}.pool")


def _maxpool(g, layer, x, params):
    return g.node("MaxPool", [x], f"{layer.name}.pool", kernel_shape=[POOL, POOL], strides=[POOL, POOL])


def _dense(g, layer, x, params):
    n = layer.name
    if len(layer.input_shape) > 1:          # C5's (120, 1, 1) maps -> 120 units
        x = g.node("Flatten", [x], f"{n}.flatten", axis=1)
    return g.node("Gemm", [x, g.const(f"{n}.weight", params[f"{n}.weight"]), g.const(f"{n}.bias", params[f"{n}.bias"])],
                  f"{n}.gemm", transB=1)


def _rbf(g, layer, x, params):
    n, shape = layer.name, [-1, 1, *layer.input_shape]      # (N, 1, 84) (an Unsqueeze fails in OpenCV 4.10)
    units = g.node("Reshape", [x, g.const(f"{n}.units_shape", shape, np.int64)], f"{n}.units")
    diff = g.node("Sub", [units, g.const(f"{n}.centers", params[f"{n}.centers"])], f"{n}.diff")    # (N, 10, 84)
    square = g.node("Mul", [diff, diff], f"{n}.square")
    return g.node("ReduceSum", [square, g.const(f"{n}.unit_axis", [2], np.int64)], f"{n}.rbf", keepdims=0)


def _squash(g, name, x):
    a = g.node("Mul", [x, g.const(f"{name}.squash_s", SQUASH_S)], f"{name}.scaled_input")
    t = g.node("Tanh", [a], f"{name}.tanh")
    return g.node("Mul", [t, g.const(f"{name}.squash_a", SQUASH_A)], f"{name}.squash")


def _relu(g, name, x):
    return g.node("Relu", [x], f"{name}.relu")


LAYERS = {"conv": _conv, "subsample": _subsample, "maxpool": _maxpool, "dense": _dense, "rbf": _rbf}
ACTIVATIONS = {"squash": _squash, "relu": _relu}


def _digits_to_input(g, input_shape):
    """``preprocess`` in the graph: uint8 (N, 28, 28) -> float32 (N, 1, 32, 32); returns the name."""
    pad = (input_shape[-1] - DIGIT_SIZE) // 2
    scale = (INPUT_FOREGROUND - INPUT_BACKGROUND) / 255.0
    x = g.node("Cast", [DIGITS_NAME], "digits.float", to=g.onnx.TensorProto.FLOAT)
    x = g.node("Mul", [x, g.const("digits.scale", scale)], "digits.scaled")
    x = g.node("Add", [x, g.const("digits.background", INPUT_BACKGROUND)], "digits.shifted")
    shape = g.const("digits.maps_shape", [-1, 1, DIGIT_SIZE, DIGIT_SIZE], np.int64)    # (N, 1, 28, 28)
    x = g.node("Reshape", [x, shape], "digits.maps")
    pads = g.const("digits.pads", [0, 0, pad, pad, 0, 0, pad, pad], np.int64)
    return g.node("Pad", [x, pads, g.const("digits.pad_value", INPUT_BACKGROUND)], INPUT_NAME, mode="constant")
