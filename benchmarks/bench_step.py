"""Times one optimizer step over a whole model's variables: SM3 fused vs TF ops vs XLA vs Keras.

In one process, for each workload (a model's variable list from `model_shapes.py`, or single large
matrices), every contender applies the same random dense gradients to the same variables through
its Keras `apply` inside a `tf.function`; contenders are interleaved, their order rotated every
repetition, and the median is reported. In the same rotation the `Sm3>StreamTriad` op (the
benchmark library, `python -m sm3_tf.kernel_loader --build --benchmark-ops`) measures the
machine's memory bandwidth (STREAM triad, a = b + s * c, counted as 12 bytes per element).

Printed per contender: median step time, ratio to Keras Adam, achieved GB/s (the bytes the
optimizer must move per parameter, e.g. SM3 with momentum reads g, w, buf and writes w, buf: 20;
Adam 28), that as a fraction of the triad bandwidth, and the peak extra memory of a step: the
peak of TF's CPU allocator during one more step minus what it held before (tensors and kernel
scratch; TF's oneDNN-enabled CPU allocator keeps these statistics).

Usage (from the repository root; the kernels must be built: `python -m sm3_tf.kernel_loader
--build`):
    python -m benchmarks.bench_step                          # Transformer-Big + 2 matrices
    python -m benchmarks.bench_step --model transformer_base --matrices 4096x4096 --repeats 7
    python -m benchmarks.bench_step --contenders sm3_fused,adam --model none --matrices 8192x8192
"""

import argparse
import os
import re
import statistics
import sys
import time

import keras
import tensorflow as tf

from benchmarks import model_shapes, roster
from sm3_tf import kernel_loader

# name -> (optimizer factory, jit_compile, bytes moved per parameter per step); the optimizers
# are the roster's, SM3 on each of its paths.
CONTENDERS = {
    "sm3_fused": (lambda: roster.make("sm3", learning_rate=0.1, fused=True), False, 20),
    "sm3_tf_ops": (lambda: roster.make("sm3_tf_ops", learning_rate=0.1), False, 20),
    "sm3_xla": (lambda: roster.make("sm3", learning_rate=0.1), True, 20),
    "adam": (lambda: roster.make("adam", learning_rate=1e-3), False, 28),
    "adagrad": (lambda: roster.make("adagrad", learning_rate=1e-2), False, 20),
    "adafactor": (lambda: roster.make("adafactor", learning_rate=1e-3), False, 12),
}
TRIAD_BYTES_PER_ELEMENT = 12
TRIAD_ELEMENTS = 64 * 1024 * 1024  # 3 x 256 MiB: far beyond any cache


def parse_matrix(text):
    """'32768x1024' -> (32768, 1024)."""
    if not re.fullmatch(r"\d+(x\d+)+", text):
        raise argparse.ArgumentTypeError(f"matrix shapes look like 4096x1024, got {text!r}")
    return tuple(int(d) for d in text.split("x"))


def step_peak_extra_bytes(step):
    """Bytes TF's CPU allocator held at the peak of `step()` beyond what it held before.

    Counts every tensor and kernel scratch buffer (the SM3 kernels allocate their partial maxima
    through TF), not Python or XLA-internal memory. None when the allocator keeps no statistics.
    """
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        step()
        return tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
    except (ValueError, tf.errors.OpError):
        return None


class Contender:
    """One optimizer's compiled step over the shared variables and gradients."""

    def __init__(self, name, variables, grads):
        factory, jit_compile, self.bytes_per_param = CONTENDERS[name]
        self.name = name
        self.optimizer = factory()
        self.optimizer.build(variables)

        def step():
            self.optimizer.apply(grads, variables)

        self.step = tf.function(step, jit_compile=jit_compile)
        self.times = []

    def run(self):
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start


class Triad:
    """The bandwidth probe, timed in the same rotation as the contenders."""

    name = "triad"

    def __init__(self):
        ops = kernel_loader.benchmark_ops()
        self.a = tf.Variable(tf.zeros([TRIAD_ELEMENTS]))
        b = tf.random.normal([TRIAD_ELEMENTS])
        c = tf.random.normal([TRIAD_ELEMENTS])

        def step():
            ops.sm3_stream_triad(a=self.a.handle, b=b, c=c, scale=3.0)

        self.step = tf.function(step)
        self.times = []

    def run(self):
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start

    def bandwidth(self):
        return TRIAD_BYTES_PER_ELEMENT * TRIAD_ELEMENTS / statistics.median(self.times) / 1e9


def measure_workload(title, shapes, contender_names, repeats, triad):
    """Times every contender on `shapes`; returns a list of result dicts."""
    params = model_shapes.parameter_count(shapes)
    print(f"\n## {title}: {len(shapes)} variables, {params / 1e6:.1f}M parameters", flush=True)
    variables = [
        keras.Variable(tf.random.normal(shape, stddev=0.02), name=f"v{i}")
        for i, (_, shape) in enumerate(shapes)
    ]
    grads = [tf.random.normal(shape, stddev=1e-3) for _, shape in shapes]
    contenders = [Contender(name, variables, grads) for name in contender_names]
    for contender in contenders:
        contender.run()  # trace (and XLA-compile)
        contender.run()
    rotation = contenders + [triad]
    for repeat in range(repeats):
        shift = repeat % len(rotation)
        for item in rotation[shift:] + rotation[:shift]:
            item.times.append(item.run())
    results = []
    for contender in contenders:
        extra = step_peak_extra_bytes(contender.run)
        median = statistics.median(contender.times)
        results.append(
            dict(
                workload=title,
                contender=contender.name,
                params=params,
                median_s=median,
                min_s=min(contender.times),
                gbps=contender.bytes_per_param * params / median / 1e9,
                extra_mib=None if extra is None else extra / 2**20,
            )
        )
    del contenders, variables, grads
    return results


def print_table(results, bandwidth):
    adam = {r["workload"]: r["median_s"] for r in results if r["contender"] == "adam"}
    print(f"\nTriad bandwidth (same run, median): {bandwidth:.1f} GB/s\n")
    print(
        "| workload | optimizer | step (s, median) | min (s) | x Keras Adam | GB/s | % of triad "
        "| peak extra MiB | % of params |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = r["median_s"] / adam[r["workload"]] if r["workload"] in adam else float("nan")
        param_mib = 4 * r["params"] / 2**20
        print(
            f"| {r['workload']} | {r['contender']} | {r['median_s']:.3f} | {r['min_s']:.3f} "
            f"| {ratio:.2f} | {r['gbps']:.1f} | {100 * r['gbps'] / bandwidth:.0f}% "
            f"| {_format(r['extra_mib'], '.2f')} "
            f"| {_format(r['extra_mib'] and 100 * r['extra_mib'] / param_mib, '.2f')}% |"
        )


def _format(value, spec):
    return "n/a" if value is None else format(value, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="transformer_big", choices=sorted(model_shapes.MODELS) + ["none"]
    )
    parser.add_argument(
        "--matrices",
        default="32768x1024,8192x8192",
        help="comma-separated shapes timed one at a time ('' for none)",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {','.join(CONTENDERS)}",
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    names = [n for n in args.contenders.split(",") if n]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown --contenders {unknown}; choose from {list(CONTENDERS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    matrices = [parse_matrix(m) for m in args.matrices.split(",") if m]

    ops = kernel_loader.ops()
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, "
        f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"SM3 kernel loops: {ops.sm3_kernel_isa().numpy().decode()}"
    )
    print(f"load average before: {os.getloadavg()}", flush=True)
    triad = Triad()
    triad.run()
    results = []
    if args.model != "none":
        results += measure_workload(
            args.model, model_shapes.MODELS[args.model](), names, args.repeats, triad
        )
    for shape in matrices:
        title = "x".join(map(str, shape))
        results += measure_workload(title, [(title, shape)], names, args.repeats, triad)
    print(f"load average after: {os.getloadavg()}")
    print_table(results, triad.bandwidth())
    return 0


if __name__ == "__main__":
    sys.exit(main())
