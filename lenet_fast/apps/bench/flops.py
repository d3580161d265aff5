"""The FLOPs per image that lenet_fast performs (``flops_per_image``), layer by layer, with the layer
sizes from the architecture spec (``lenet_fast.nn.architecture``).

Counted is the arithmetic each layer needs, as the fused kernels that ``LeNet5.train_steps`` and
``LeNet5.forward`` run perform it (src/kernels/network/network.pyx: C1, C3 and the dense layers from
fused_simd.h, the rest from src/kernels/layers/*_one.pxd):

* convolution: 25 multiply-adds per connected (input map, output map) pair and output position
  forward; backward as many again for the weight gradient and, except in C1 (the input needs no
  gradient), for the input gradient, plus one add per output for the bias gradient. C3 connects the 60
  pairs of Table I (paper) or all 96 (modern). C5's kernels cover its whole 5x5 input: it runs, and
  counts, as the dense layer 400->120.
* dense (C5 400->120, F6 120->84, the modern output 84->10): F * K multiply-adds forward; backward
  2 F K (input and weight gradients) + K (bias gradient).
* subsampling (paper): coef * (sum of the 2x2 block) + bias, 5 per output; backward 7 per output (the
  block's sum again, a multiply-add into the coefficient's gradient, an add into the bias's, coef *
  gradient for the inputs). Max-pooling (modern) only compares: 0.
* RBF output (paper): a subtraction and a multiply-add per centre coordinate (10 x 84) forward;
  backward the 10 incoming gradients doubled, then the same 840 subtractions and multiply-adds.
* squash 1.7159 tanh(2a/3): 3 forward (two multiplies and the tanh), 4 backward (its derivative from
  the output, times the gradient); ReLU: 0.
* loss: MSE 0 forward (the correct class's penalty), 1 backward; cross-entropy 33 forward (log-sum-exp
  over 10 logits), 63 backward (log-sum-exp again, the softmax, minus 1 at the label).
* update: w -= step * (g + decay * w), 4 per trainable parameter per batch (the kernel evaluates the
  decay term even when it is 0); C3's unconnected weights are skipped, as in the kernel.

The modern variant's inference computes C3 and S4 by Winograd's F(2x2, 5x5) (winograd_template.h):
86,400 multiply-adds of transformed values and about 48,000 other operations in the transforms, not
C3's 240,000 multiply-adds. The "forward" rows, and ``inference_flops_per_image``, count the direct
convolution's arithmetic all the same: the network's work as every peer does it, so that images per
second and FLOPs convert into each other alike for all contenders (no figure of the bench divides
inference's FLOPs by the FMA peak).

Conventions: a multiply-add is 2 FLOPs (also when the product goes into an accumulator; a weighted sum
of n terms plus a bias is n multiply-adds); any other add, subtract, multiply or divide is 1; tanh, exp
and log are 1 each; comparisons are 0.

Not counted, though the kernels do it (the first two only on the per-sample path, which batches of
less than a block of samples per thread take, and the rest of a batch; in blocks of samples, one per
vector lane, the convolutions do exactly the counted multiply-adds):

* C1 computes an output row of 28 as two vectors of 16 positions, 0-15 and 12-27: its forward pass and
  its weight and bias gradients do the work of 32 positions per row, 896 per map for 784 outputs (the
  gradients multiply the repeated positions 12-15 by a mask of zeros).
* C3's forward pass and weight gradient hold its 16 output maps in one vector: in the paper variant
  the forward pass also multiplies the zero weights of the 36 pairs outside Table I, and the weight
  gradient also sums for those pairs (discarded when folded), the work of 96 pairs for 60. Its input
  gradient skips those pairs but runs along rows of 16 lanes, 10 of which hold gradients: per pair
  4,000 lane multiply-adds for 2,500.
* The dense layers' forward sums run in 16 partial sums, added at the end: 15 adds per output.
* Once per batch: the sum of the per-thread gradient rows, and the folds of the partial gradients into
  them (in blocks: the convolutional layers' per-lane sums; per sample: C1's 16 partial sums per weight
  and C3's transposed weight gradient).
* A float32 tanh is a rational approximation x P(x^2) / Q(x^2) (``_tanh_float`` in
  src/kernels/layers/activation_one.pxd): x^2, two degree-4 polynomials by Horner's rule (8
  multiply-adds), a multiply and a divide, 19 FLOPs by these conventions (besides an absolute value, a
  clamp and a copysign), counted as 1. (float64 calls the C library's tanh.)
* At batch size 1 the dense layers' update runs inside their backward pass, with no gradient row: each
  of their parameters takes one FLOP fewer than counted (its gradient is used where it is computed, not
  added into a row first).
"""
import math

from ..._checks import integer
from ...nn.architecture import VARIANTS, architecture

# FLOPs per output (subsampling), per squashed value and per trainable parameter: see the docstring
SUBSAMPLE_FORWARD, SUBSAMPLE_BACKWARD = 5, 7
SQUASH_FORWARD, SQUASH_BACKWARD = 3, 4
UPDATE = 4


def flops_per_image(variant, batch_size=1):
    """FLOPs per image of lenet_fast's training step (``LeNet5.train_steps``, plain SGD), by layer.

    Returns {row: {"forward": F, "backward": B, "update": U}} for the rows "c1", "s2", "c3", "s4",
    "c5", "f6", "output" (each layer's own arithmetic), "activations" (every squash, or ReLU, of the
    network) and "loss" (the variant's default loss, which the bench trains with: MSE on the RBF
    penalties for "paper", softmax cross-entropy for "modern"). U is the SGD update of the row's
    trainable parameters divided by `batch_size`, as it runs once per batch. Inference
    (``LeNet5.forward``) is the "forward" of every row but "loss" (``inference_flops_per_image``); a
    training step is the sum of everything (``training_flops_per_image``). What is counted, and what
    is not: the module's docstring.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    batch_size = integer("batch_size", batch_size, at_least=1)
    spec = architecture(variant)
    rows = {layer.name: _layer_flops(layer, batch_size, input_gradient=index > 0)
            for index, layer in enumerate(spec.layers)}
    squashed = sum(layer.output_size for layer in spec.layers if layer.activation == "squash")
    rows["activations"] = _row(SQUASH_FORWARD * squashed, SQUASH_BACKWARD * squashed)
    rows["loss"] = _loss_flops(spec.criteria[0], n_scores=spec.layers[-1].output_size)
    return rows


def training_flops_per_image(variant, batch_size):
    """FLOPs per trained image: forward, loss, backward and the batch's update shared over its images."""
    return sum(sum(row.values()) for row in flops_per_image(variant, batch_size).values())


def inference_flops_per_image(variant):
    """FLOPs per image of the forward pass alone (no loss)."""
    return sum(row["forward"] for name, row in flops_per_image(variant).items() if name != "loss")


def _row(forward, backward, trainable=0, batch_size=1):
    return {"forward": forward, "backward": backward, "update": UPDATE * trainable / batch_size}


def _layer_flops(layer, batch_size, input_gradient):
    """One layer's row; `input_gradient`: whether backward computes the gradient of the layer's input
    (not for the first layer, whose input is the image)."""
    if layer.kind in ("conv", "dense"):
        # a dense layer counts as a convolution with one output position and every input connected
        positions = layer.output_size // layer.output_shape[0]
        macs = _connected_weights(layer) * positions
        backward = (4 if input_gradient else 2) * macs + layer.output_size
        return _row(2 * macs, backward, layer.trainable, batch_size)
    if layer.kind == "subsample":
        return _row(SUBSAMPLE_FORWARD * layer.output_size, SUBSAMPLE_BACKWARD * layer.output_size,
                    layer.trainable, batch_size)
    if layer.kind == "maxpool":
        return _row(0, 0, batch_size=batch_size)
    if layer.kind == "rbf":
        coordinates = layer.output_size * math.prod(layer.input_shape)      # the fixed centres, 10 x 84
        return _row(3 * coordinates, layer.output_size + 3 * coordinates, batch_size=batch_size)
    raise ValueError(f"no FLOP count for a {layer.kind!r} layer")


def _connected_weights(layer):
    """The weights that multiply an input: those of a convolution's pairs outside its table left out."""
    weight = next(p for p in layer.params if p.name.endswith(".weight"))
    if layer.table is None:
        return weight.size
    taps = weight.size // (weight.shape[0] * weight.shape[1])      # 5 x 5 per (output, input) pair
    return int(layer.table.sum()) * taps


def _loss_flops(criterion, n_scores):
    if criterion == "mse":
        return _row(0, 1)       # forward picks the correct class's penalty; backward adds 1 to its gradient
    if criterion == "cross_entropy":
        # log-sum-exp: per score a subtraction, an exp and an add, then a log and an add. Forward
        # subtracts the label's score from it; backward computes it again, then per score a subtraction,
        # an exp and a multiply (the scaled softmax), and a subtraction at the label.
        log_sum_exp = 3 * n_scores + 2
        return _row(log_sum_exp + 1, log_sum_exp + 3 * n_scores + 1)
    raise ValueError(f"no FLOP count for the {criterion!r} loss")
