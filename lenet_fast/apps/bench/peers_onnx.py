"""The ONNX Runtime peer of ``lenet-fast bench``: inference and latency only (ONNX Runtime does not
train here). It runs lenet_fast's own model, the graph ``lenet_fast.export_onnx`` writes (the same
weights, seed 0, and the same function as ``LeNet5.forward``: Table I's C3, the scaled tanh, the trainable
subsampling, the RBF output), on the same float32 input, on the CPU execution provider with every graph
optimisation, ``intra_op_num_threads`` = the case's thread count and sequential execution."""
import numpy as np

from ...io.onnx_export import onnx_model
from ...model import LeNet5
from .contenders import Contender


class OnnxRuntime(Contender):
    name = "onnxruntime"
    kinds = frozenset({"inference", "latency"})

    def __init__(self, variant, n_threads, x_train, y_train):
        import onnxruntime      # optional: only when this peer runs
        net = LeNet5(variant, dtype="float32", seed=0)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = n_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(onnx_model(net).SerializeToString(), options,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def infer(self, x):
        self.session.run(None, {self.input_name: x})

    def as_input(self, x):
        return np.ascontiguousarray(x, dtype=np.float32)
