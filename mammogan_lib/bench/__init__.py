"""The benchmark (``make bench``): how fast we train, against the loop the thesis's code would have used.

``python -m mammogan_lib.bench`` measures, on this machine, in one run:

* **Training speed** of the exp3 ("baseline") GAN, 128x128, batch 32, width 1.0, after warm-up, median of
  repeated steps:

  (a) ``reference``: the classic Keras-GAN loop many theses use (Keras-GAN style): per step
      ``D.train_on_batch(real, 1)``, ``fake = G.predict(z)``, ``D.train_on_batch(fake, 0)`` and
      ``combined.train_on_batch(z, 1)`` with ``combined = D(G(z))`` and D frozen; the models in the
      thesis's layers (``UpSampling2D`` + ``Conv2D``), the same Adam (learning rates and beta1 of
      ``params/base.yaml``), float32, BCE;
  (b0) ``float32_thesis_layers``: our compiled train step (:mod:`mammogan_lib.gan.training`), float32, on the
      same two-layer models: what the step alone gains (at most the arithmetic the classic loop repeats);
  (b) ``float32``: our train step in float32 on our models, whose upsampling blocks are one
      ``UpsampleConv2D`` each (the same function and weights in 4/9 of the arithmetic);
  (c) ``mixed``: our train step in mixed precision (bfloat16 on a CPU, float16 on a GPU). Where the device
      does not compute it natively (bfloat16 on a CPU without AVX-512 BF16 / AMX) it is emulated, many
      times slower, and timed with fewer steps (:data:`EMULATED_REPEATS`): the point is its size.

  For each: ms/step, images/s (generated images per second, ``batch / step time``), speed-up over (a),
  the analytic FLOPs the step executes (:func:`count_forward_flops`, :func:`step_flops`), the FLOP/s
  achieved and its fraction of a large float32 matmul measured in the same run (:func:`measure_matmul_peak`).
  Then **which policy ``precision: auto`` picks** on this machine (with its calibration, where it runs
  one), flagged as a wrong pick if that policy's step is more than 5 % slower than float32's
  (:data:`AUTO_TOLERANCE`). The report records the CPU's flags (AVX-512, BF16, AMX) beside the figures.
* **02_preprocess throughput**: images/s of :func:`mammogan_lib.data.preprocess.preprocess_image` over the
  phantom's full mammograms (~1024 px high), with :func:`mammogan_lib.core.parallel.parallel_map` at 2
  workers.
* **Feature throughput** of :mod:`mammogan_lib.evaluate.features` (ResNet50 for the SVM, InceptionV3 for
  FID) on ``(32, R, R)`` arrays; random weights where the pretrained ones are not on the machine (the speed
  of a forward pass does not depend on the weights' values; the report says which).

Every measurement runs in a fresh subprocess (``python -m mammogan_lib.bench --measure NAME``), for two
reasons: its peak memory (``ru_maxrss``) is its own, and TensorFlow and torch are never loaded in the same
process (importing torchvision after tensorflow segfaults here: see :mod:`mammogan_lib.core.frameworks`).
Figures go to ``runs/bench/bench.json`` with the machine, package versions and the load average at the start
and end; a table goes to stdout. Random data stand in for images in the training and feature timings: the
cost does not depend on pixel values. Speed is measured and reported here, never asserted in a test.

``python -m mammogan_lib.bench --profile reference float32 mixed`` answers the next question, where a
step's time goes: a ``tf.profiler`` trace summarised by op kind and by op (:func:`profile_step`).

Modules: :mod:`.flops` (analytic FLOPs per layer and per step), :mod:`.classic` (the reference loop),
:mod:`.measure` (each measurement), :mod:`.profile` (the profiler's summary), :mod:`.runner` (each
measurement in its own process), :mod:`.report` (the run, its derived figures and its table), :mod:`.cli`.
The names below are the package's interface.
"""

from mammogan_lib.bench.classic import ClassicLoop, build_classic_loop
from mammogan_lib.bench.cli import main, parse_options
from mammogan_lib.bench.flops import (
    CLASSIC_LOOP_PASSES,
    OUR_STEP_PASSES,
    LayerFlops,
    Pass,
    count_forward_flops,
    forward_flops,
    layer_forward_flops,
    step_flops,
)
from mammogan_lib.bench.measure import bench_settings, random_images, time_classic_loop, time_train_step
from mammogan_lib.bench.profile import op_category, profile_step
from mammogan_lib.bench.report import (
    AUTO_TOLERANCE,
    EMULATED_REPEATS,
    EMULATED_WARMUP,
    TARGET_SPEEDUPS,
    TRAIN_LABELS,
    TRAIN_MEASUREMENTS,
    BenchOptions,
    check_auto,
    exp3_hours,
    format_report,
    mixed_is_native,
    run_benchmark,
    t4_estimate,
    train_configs,
)
from mammogan_lib.bench.runner import run_measurement

__all__ = [
    "AUTO_TOLERANCE",
    "CLASSIC_LOOP_PASSES",
    "EMULATED_REPEATS",
    "EMULATED_WARMUP",
    "OUR_STEP_PASSES",
    "TARGET_SPEEDUPS",
    "TRAIN_LABELS",
    "TRAIN_MEASUREMENTS",
    "BenchOptions",
    "ClassicLoop",
    "LayerFlops",
    "Pass",
    "bench_settings",
    "build_classic_loop",
    "check_auto",
    "count_forward_flops",
    "exp3_hours",
    "format_report",
    "forward_flops",
    "layer_forward_flops",
    "main",
    "mixed_is_native",
    "op_category",
    "parse_options",
    "profile_step",
    "random_images",
    "run_benchmark",
    "run_measurement",
    "step_flops",
    "t4_estimate",
    "time_classic_loop",
    "time_train_step",
    "train_configs",
]
