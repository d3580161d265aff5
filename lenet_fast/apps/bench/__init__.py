"""``lenet-fast bench``: lenet_fast against PyTorch (CPU) on the same work, in one run.

Every repetition runs each case once for lenet_fast and then once for PyTorch (A B A B ...), so machine
noise spreads over both; the figures are medians over the repetitions. Cases, at each thread count:

* training throughput (images/s), paper variant, float32, at batch 1, 16, 64 and 256: lenet_fast runs
  its fused compiled steps (``LeNet5.train_steps``, plain SGD, step 1e-4) over a fixed random input;
  PyTorch trains the closest classic LeNet-5 it can express (conv 5x5 1->6, tanh, avg-pool 2, conv 5x5
  6->16, tanh, avg-pool 2, conv 5x5 16->120, tanh, linear 120->84, tanh, linear 84->10, MSE loss
  against one-hot targets, torch.optim.SGD) on the same images in the same batches;
* inference throughput at batch 1024 (``LeNet5.forward``; ``model(x)`` under torch.inference_mode());
* single-image latency: p50 and p99 of a series of batch-1 calls (each repetition gives one p50 and
  one p99; the figures are their medians);
* the modern variant (ReLU, 2x2 max-pool, dense 84->10 output, softmax cross-entropy): training at
  batch 64 and inference at batch 1024, against the same network in PyTorch (ReLU, MaxPool2d,
  CrossEntropyLoss, SGD).

Derived from those: the FLOPs per image lenet_fast performs (``flops_per_image``), its training
throughput as a percentage of this CPU's float32 FMA peak (``_platform.fma_peak_gflops``, measured at
each thread count in every repetition, so it shares the machine's noise), and the seconds an epoch of
60,000 images would take. Last, the peak memory of one training epoch (60,000 images, batch 64) of each
contender, each in a fresh process (at the largest thread count).

PyTorch is optional: without it (or with ``--no-torch``) only lenet_fast is measured.

Modules: ``run`` (run_bench: the cases and the interleaved measurements), ``contenders`` (lenet_fast
and PyTorch), ``flops`` (the FLOP counts), ``memory`` (the fresh-process memory runs), ``machine`` (the
machine block) and ``report`` (the table and the JSON file).
"""
from .contenders import STEP, TORCH_MODELS, _LenetFast, _Torch
from .flops import flops_per_image, inference_flops_per_image, training_flops_per_image
from .machine import machine_info
from .memory import MEMORY_BATCH, MEMORY_IMAGES, MEMORY_IMAGES_QUICK, _memory_run, _status_mib, _train_for_memory
from .report import print_report, write_json
from .run import EPOCH_IMAGES, MODERN_TRAIN_BATCH, TRAIN_BATCHES, parse_threads, run_bench

__all__ = ["run_bench", "parse_threads", "print_report", "write_json", "flops_per_image",
           "training_flops_per_image", "inference_flops_per_image", "machine_info"]
