"""In-process A/B of the fused SM3 step's run-time switches, alternating with PyTorch's fused Adam.

One TensorFlow process holds the variables and one compiled step per fused contender; each
setting of an environment variable the kernels read per step (`SM3_TF_WEIGHT_LAG`:
auto|always|never, `SM3_TF_KERNEL_ISA`: avx512|avx|sse2|portable) is applied just before its
step, and PyTorch's `Adam(fused=True)` runs in its own worker process in the same rotation. On a
shared machine this is the comparison that survives load: every variant sees the same memory
(the same variables) and the same moments of load, and each is a ratio to PyTorch in the same
run. Prints the median, 25th percentile and minimum of each, and the ratios
(docs/kernels_benchmark.md). As bench_step, it puts TF's and PyTorch's tensors on 2 MiB pages
(restarting itself once with glibc's huge-page tunable; `--no-huge-pages` for 4 KiB).

    python -m benchmarks.bench_fused_ab                                  # weight lag, 8192x8192
    python -m benchmarks.bench_fused_ab --workload transformer_big --repeats 11
    python -m benchmarks.bench_fused_ab --variable SM3_TF_KERNEL_ISA --settings avx512,avx
    python -m benchmarks.bench_fused_ab --live-mib 640   # another large tensor already live

Where a tensor lands depends on what else is allocated: with another large tensor live (a
training job's other tensors, or bench_step's bandwidth probe when it was allocated first), TF
placed the gradient at the weights' offset modulo 2 MiB, and the steps ran up to 30% slower
(docs/kernels_benchmark.md). `--live-mib` reproduces that placement.
"""

import argparse
import os
import statistics
import time

import keras
import tensorflow as tf

from benchmarks import bench_step, huge_pages, model_shapes, roster, torch_adam_worker

PAUSE_S = 0.05  # as bench_step: the previous contender's threads go idle first


def workload_shapes(text):
    """A model of model_shapes.MODELS (its variable list) or one matrix such as 8192x8192."""
    if text in model_shapes.MODELS:
        return [s for _, s in model_shapes.MODELS[text]()]
    return [bench_step.parse_shape(text)]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="8192x8192", help="a model name or a matrix shape")
    parser.add_argument("--variable", default="SM3_TF_WEIGHT_LAG")
    parser.add_argument("--settings", default="auto,always,never")
    parser.add_argument("--contenders", default="sm3,sm3_bf16,sm3_nomom")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--live-mib",
        type=int,
        default=0,
        help="allocate a float32 tensor of this many MiB before the workload and keep it live",
    )
    huge_pages.add_flag(parser)
    args = parser.parse_args(argv)
    if args.repeats < 4:
        parser.error("--repeats must be at least 4 (the table shows quartiles)")
    if args.live_mib < 0:
        parser.error(f"--live-mib must be 0 or more, got {args.live_mib}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if argv is None:  # a command line: glibc reads the page setting only at start-up
        huge_pages.restart_with(args.huge_pages)
    tf.get_logger().setLevel("ERROR")
    print(huge_pages.describe(args.huge_pages), flush=True)
    shapes = workload_shapes(args.workload)
    settings = args.settings.split(",")
    client, note = torch_adam_worker.start()
    print(note, "| load average", os.getloadavg(), flush=True)
    items = []  # (label, setting, callable returning wall seconds)
    if client is not None:
        torch_side = client.contender(shapes)

        def torch_step():
            torch_side.record()
            return torch_side.wall[-1]

        items.append(("torch_adam", "", torch_step))
    live = tf.Variable(tf.zeros([args.live_mib * 2**18])) if args.live_mib else None
    variables = [keras.Variable(tf.random.normal(s, stddev=0.02)) for s in shapes]
    grads = [tf.random.normal(s, stddev=1e-3) for s in shapes]
    for name in args.contenders.split(","):
        optimizer = roster.make(name, learning_rate=0.1, fused=True)
        optimizer.build(variables)
        step = tf.function(lambda optimizer=optimizer: optimizer.apply(grads, variables))
        for setting in settings:

            def timed(step=step, setting=setting):
                os.environ[args.variable] = setting
                start = time.perf_counter()
                step()
                return time.perf_counter() - start

            timed()  # trace, then warm up every setting
            timed()
            items.append((name, setting, timed))
    times = {(label, setting): [] for label, setting, _ in items}
    for repeat in range(args.repeats):
        shift = repeat % len(items)
        for label, setting, run in items[shift:] + items[:shift]:
            time.sleep(PAUSE_S)
            times[(label, setting)].append(run())
    if client is not None:
        client.quit()
    base = times.get(("torch_adam", ""))
    live_note = f", {args.live_mib} MiB live tensor" if live is not None else ""
    print(
        f"{args.workload}, {args.variable}, {args.repeats} repeats{live_note}; "
        f"load average {os.getloadavg()}"
    )
    print("contender   setting  median ms  p25 ms  min ms  x torch (median, p25, min)")
    for (label, setting), values in times.items():
        quartile = statistics.quantiles(values, n=4)[0]
        ratios = ""
        if base:
            median_ratio = statistics.median(values) / statistics.median(base)
            quartile_ratio = quartile / statistics.quantiles(base, n=4)[0]
            ratios = f"  {median_ratio:.2f} {quartile_ratio:.2f} {min(values) / min(base):.2f}"
        print(
            f"{label:11s} {setting:7s} {statistics.median(values) * 1e3:9.2f} "
            f"{quartile * 1e3:7.2f} {min(values) * 1e3:7.2f}{ratios}"
        )


if __name__ == "__main__":
    main()
