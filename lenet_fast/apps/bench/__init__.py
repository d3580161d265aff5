"""``lenet-fast bench``: lenet_fast against its peers (CPU) on the same work, in one run.

The peers (``peers.PEERS``; each runs when its packages are installed, ``pip install
'lenet_fast[bench]'`` brings them all, and ``--peers LIST`` chooses): PyTorch eager, torch.compile of
the model, torch.compile of the whole training step, JAX (jax.jit of the step, and of a whole epoch as a
lax.scan), and ONNX Runtime (inference only). Each runs the classic LeNet-5 (``CLASSIC_MODELS``); ONNX
Runtime runs lenet_fast's own exported model. A missing peer is skipped with a line saying so; one that
fails to build or compile too.

Every repetition runs each case once for lenet_fast and then once for each peer (A B C ... A B C ...),
so machine noise spreads over all; the figures are medians over the repetitions, and the warm-up (first
call of every case, compilation included) is not timed. Cases, at each thread count:

* training throughput (images/s), paper variant, float32, at batch 1, 16, 64 and 256: lenet_fast runs
  its fused compiled steps (``LeNet5.train_steps``, plain SGD, step 1e-4) over a fixed random input;
  the peers train the classic net (MSE against one-hot targets, plain SGD) on the same images in the
  same batches;
* inference throughput at batch 1024; single-image latency: p50 and p99 of a series of batch-1 calls
  (each repetition gives one p50 and one p99; the figures are their medians);
* the modern variant (ReLU, 2x2 max-pool, softmax cross-entropy): training at batch 64 and inference.

For every measure the report names the best peer and lenet_fast's ratio to it. Derived: the FLOPs per
image lenet_fast performs (``flops_per_image``), its training throughput as a percentage of this CPU's
float32 FMA peak (``_platform.fma_peak_gflops``, measured at each thread count in every repetition),
and the seconds an epoch of 60,000 images would take. Last, the peak memory of one training epoch
(60,000 images, batch 64) of lenet_fast and PyTorch eager, each in a fresh process (``memory``), and the
issue's targets (``targets``).

Modules: ``run`` (run_bench: the cases and the interleaved measurements), ``contenders`` (what a
contender does, and lenet_fast), ``peers`` (the list) with ``peers_torch``, ``peers_jax`` and
``peers_onnx``, ``flops`` (the FLOP counts), ``memory`` (the fresh-process memory runs), ``machine`` (the
machine block), ``report`` (the tables and the JSON file) and ``targets``.
"""
from .contenders import CLASSIC_MODELS, STEP, Contender, _LenetFast
from .flops import flops_per_image, inference_flops_per_image, training_flops_per_image
from .machine import machine_info
from .memory import MEMORY_BATCH, MEMORY_IMAGES, MEMORY_IMAGES_QUICK, _memory_run, _status_mib, _train_for_memory
from .peers import PEER_NAMES, PEERS, PeerSpec, parse_peers
from .report import print_report, write_json
from .run import EPOCH_IMAGES, MODERN_TRAIN_BATCH, TRAIN_BATCHES, parse_threads, run_bench

__all__ = ["run_bench", "parse_threads", "parse_peers", "PEERS", "PEER_NAMES", "print_report", "write_json",
           "flops_per_image", "training_flops_per_image", "inference_flops_per_image", "machine_info"]
