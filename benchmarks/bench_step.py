"""Times one optimizer step over a model's variables: SM3's fused kernel against PyTorch's fused
CPU Adam, SM3's TF-ops and XLA steps and Keras Adam, next to the machine's streaming bandwidth.

For each workload (a model's variable list from `model_shapes.py`, or one large matrix) every
TensorFlow contender applies the same random dense gradients to the same variables through its
Keras `apply` inside a `tf.function`; PyTorch's `Adam(fused=True)` runs in a process of its own
(`benchmarks.torch_adam_worker`) on tensors of the same shapes. The optimizers are the roster's
(`benchmarks.roster`); `sm3_xla` is its `sm3` entry compiled with XLA. Contenders and the
bandwidth probe (`benchmarks.stream_probe`) are timed one at a time, in an order rotated every
repetition, with a short pause between them so no thread pool is still spinning from the previous
one; the table shows medians. All ratios are within this one run. Each workload is measured in a
fresh process of its own (`--results-json`), with its own PyTorch worker, so that none runs in
what the one before it left behind.

Columns: step time (median and minimum wall-clock, median CPU time of the process); the ratio to
PyTorch's fused Adam; GB/s = the bytes the optimizer must move per float32 parameter (SM3 with a
float32 buffer 20: reads g, w, buf, writes w, buf; bfloat16 buffer 16; no momentum 12; Adam 28)
over the median time; that as a % of the limit, the fastest probe mix of the same run; the step
time over the fastest bare probe loop with the contender's own streams ("x own loop": r1w2 for SM3
with a float32 buffer, r1w1 without momentum, r1w3 for Keras Adam, `adam` for PyTorch); the
fused SM3 step over the same bare loop run on its own gradient, weights and buffer ("x
same-memory loop", `SameMemoryLoop`: what the kernel costs beyond the memory TF gave it); and the
peak extra memory of a step (TF's CPU allocator; n/a for PyTorch). Under each table, those bare
loops of SM3's streams as ratios to PyTorch: on a machine where a step's time follows the bytes
it reads (docs/kernels_benchmark.md), what a kernel that streams them as the bare loop does
cannot beat in this run. A last table times the fused step against the TF-ops step on
tall-thin, narrow and size-1-axis shapes.

Memory pages: by default the run restarts itself once with GLIBC_TUNABLES=glibc.malloc.hugetlb=1,
so TF's tensors and (inherited) the PyTorch worker's sit on 2 MiB transparent huge pages alike
(`benchmarks.huge_pages`; each caption says how many MiB of each process do). On the project's
VM streams over 4 KiB pages ran up to 40% slower depending on how scattered the pages were, which
made runs differ; `--no-huge-pages` measures glibc's default 4 KiB pages.

Usage, from the repository root (the product kernels are built by `make setup`, the probe's
library on first use or by `python -m sm3_tf.kernel_loader --build --benchmark-ops`; PyTorch's CPU
wheel comes with `make bench`, or `pip install -e '.[torch-bench]' --extra-index-url
https://download.pytorch.org/whl/cpu`; without it the torch_adam row is skipped and the ratios
are to Keras Adam):
    python -m benchmarks.bench_step            # Transformer-Big + 8192x8192 + shapes; docs/results
    python -m benchmarks.bench_step --model none --matrices 4096x4096 --repeats 5 --no-publish
    python -m benchmarks.bench_step --contenders torch_adam,sm3 --model none --shapes ''
"""

import argparse
import dataclasses
import gc
import json
import os
import re
import statistics
import sys
import tempfile
import time

import keras
import tensorflow as tf

from benchmarks import (
    docs_output,
    huge_pages,
    model_shapes,
    processes,
    roster,
    stream_probe,
    torch_adam_worker,
)
from sm3_tf import kernel_loader


@dataclasses.dataclass(frozen=True)
class TfStep:
    """A TF contender: a roster entry, its constructor overrides, how its step is compiled and
    the bytes it must move per float32 parameter per step."""

    entry: str
    overrides: dict
    jit_compile: bool
    bytes_per_param: int
    probe_mix: str | None = None  # the probe mix with the same streams (stream_probe.Mix.name)

    def make(self):
        return roster.make(self.entry, **self.overrides)


_SM3_FUSED = dict(learning_rate=0.1, fused=True)
# SM3 with a float32 buffer reads g, w, buf and writes w, buf (20 B); bfloat16 buffer 16; none 12.
TF_CONTENDERS = {
    "sm3": TfStep("sm3", _SM3_FUSED, False, 20, "r1w2"),
    "sm3_bf16": TfStep("sm3_bf16", _SM3_FUSED, False, 16),
    "sm3_nomom": TfStep("sm3_nomom", _SM3_FUSED, False, 12, "r1w1"),
    "sm3_tf_ops": TfStep("sm3_tf_ops", dict(learning_rate=0.1), False, 20),
    "sm3_xla": TfStep("sm3", dict(learning_rate=0.1), True, 20),
    "adam": TfStep("adam", dict(learning_rate=1e-3), False, 28, "r1w3"),
    "adagrad": TfStep("adagrad", dict(learning_rate=1e-2), False, 20),
    "adafactor": TfStep("adafactor", dict(learning_rate=1e-3), False, 12),
}
CONTENDERS = [torch_adam_worker.NAME, *TF_CONTENDERS]
DEFAULT_CONTENDERS = ["torch_adam", "sm3", "sm3_bf16", "sm3_nomom", "sm3_tf_ops", "sm3_xla", "adam"]
# Fused vs TF ops on shapes with size-1 axes, few or narrow rows (issue 14's tall-thin case).
DEFAULT_SHAPES = "4194304x1,1048576x4,131072x33,1024x1x1024,4x1048576,1x4194304,4194304,2048x2048"
PAUSE_S = 0.05  # between two timed runs: lets the previous contender's threads go idle


def parse_shape(text):
    """'32768x1024' -> (32768, 1024); '4194304' -> (4194304,)."""
    if not re.fullmatch(r"\d+(x\d+)*", text):
        raise argparse.ArgumentTypeError(f"shapes look like 4096x1024, got {text!r}")
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


class TfContender:
    """One Keras optimizer's compiled step over the shared variables and gradients."""

    def __init__(self, name, variables, grads):
        spec = TF_CONTENDERS[name]
        self.name = name
        self.bytes_per_param = spec.bytes_per_param
        self.probe_mix = spec.probe_mix
        self.optimizer = spec.make()
        self.optimizer.build(variables)

        def step():
            self.optimizer.apply(grads, variables)

        self.step = tf.function(step, jit_compile=spec.jit_compile)
        self.wall, self.cpu = [], []
        self.run()  # trace (and XLA-compile)
        self.run()

    def run(self):
        start, cpu_start = time.perf_counter(), time.process_time()
        self.step()
        return time.perf_counter() - start, time.process_time() - cpu_start

    def record(self):
        wall, cpu = self.run()
        self.wall.append(wall)
        self.cpu.append(cpu)

    def peak_extra_mib(self):
        extra = step_peak_extra_bytes(self.step)
        return None if extra is None else extra / 2**20


class SameMemoryLoop:
    """The probe's bare loop (Sm3>StreamOn) over one fused SM3 contender's own tensors: each
    variable's gradient read, its weights and float32 buffer (if any) read and written in place.

    It streams exactly the memory that contender's step streams, so `step / loop` is what the
    kernel's arithmetic and covers cost on top of the memory TF gave it; the probe's own memory
    can stream faster or slower (docs/kernels_benchmark.md). It changes the weights and buffers
    (both stay finite), which only a benchmark may do.
    """

    def __init__(self, contender, variables, grads):
        ops = kernel_loader.benchmark_ops()
        calls = []
        for variable, grad in zip(variables, grads):
            _, buffer = contender.optimizer._state_of(variable)
            written = [variable] + ([buffer] if buffer is not None else [])
            calls.append((grad, [v.value.handle for v in written]))

        def loop():
            for grad, handles in calls:
                ops.sm3_stream_on(reads=[grad], variables=handles)

        self.loop = tf.function(loop)
        self.loop()  # trace
        self.wall = []

    def record(self):
        start = time.perf_counter()
        self.loop()
        self.wall.append(time.perf_counter() - start)


def same_memory_loops(contenders, variables, grads):
    """{contender name: SameMemoryLoop} for the fused SM3 contenders with a float32 or no buffer
    (the loop has no bfloat16 stream)."""
    return {
        c.name: SameMemoryLoop(c, variables, grads)
        for c in contenders
        if c.name in ("sm3", "sm3_nomom")
    }


def make_contenders(names, shapes, torch_worker):
    variables = [
        keras.Variable(tf.random.normal(shape, stddev=0.02), name=f"v{i}")
        for i, shape in enumerate(shapes)
    ]
    grads = [tf.random.normal(shape, stddev=1e-3) for shape in shapes]
    contenders = []
    for name in names:
        if name == torch_adam_worker.NAME:
            if torch_worker is not None:
                contenders.append(torch_worker.contender(shapes))
        else:
            contenders.append(TfContender(name, variables, grads))
    return contenders, variables, grads


def time_rotation(items, repeats):
    """Runs every item's `record()` `repeats` times, the order rotated each time."""
    for repeat in range(repeats):
        shift = repeat % len(items)
        for item in items[shift:] + items[:shift]:
            time.sleep(PAUSE_S)
            item()


def measure_workload(title, shapes, names, repeats, mixes, torch_worker):
    """Times `names` and the probe `mixes` on `shapes`; returns the workload's result dict.

    The probe's memory is allocated after the workload's tensors and freed with them: allocated
    first, it moved where TF placed the gradients and slowed SM3's steps by up to 30%
    (docs/kernels_benchmark.md), so the instrument would have shaped what it measures.
    """
    params = model_shapes.parameter_count([(None, s) for s in shapes])
    print(f"\n## {title}: {len(shapes)} variables, {params / 1e6:.1f}M parameters", flush=True)
    contenders, variables, grads = make_contenders(names, shapes, torch_worker)
    probe = stream_probe.StreamProbe(mixes)
    huge_mib = dict(tf=huge_pages.huge_mib())
    for contender in contenders:
        if getattr(contender, "huge_mib", None) is not None:
            huge_mib[contender.name] = contender.huge_mib
    load_before = docs_output.load_average()
    loops = same_memory_loops(contenders, variables, grads)
    items = [c.record for c in contenders] + [loop.record for loop in loops.values()]
    items += [lambda mix=mix, probe=probe: probe.record(mix) for mix in probe.mixes]
    time_rotation(items, repeats)
    bandwidths = probe.bandwidths()
    ns_per_element = probe.ns_per_element()
    results = []
    for contender in contenders:
        median = statistics.median(contender.wall)
        results.append(
            dict(
                contender=contender.name,
                bytes_per_param=contender.bytes_per_param,
                probe_mix=contender.probe_mix,
                median_s=median,
                same_memory_s=statistics.median(loops[contender.name].wall)
                if contender.name in loops
                else None,
                min_s=min(contender.wall),
                cpu_s=statistics.median(contender.cpu),
                gbps=contender.bytes_per_param * params / median / 1e9,
                extra_mib=contender.peak_extra_mib(),
            )
        )
    for contender in contenders:
        if hasattr(contender, "close"):
            contender.close()
    del contenders, variables, grads, probe, loops
    gc.collect()
    return dict(
        workload=title,
        params=params,
        variables=len(shapes),
        results=results,
        probe_gbps=bandwidths,
        probe_ns_per_element=ns_per_element,
        huge_mib=huge_mib,
        load_before=load_before,
        load_after=docs_output.load_average(),
    )


def measure_shapes(shapes, repeats):
    """Fused SM3 against the TF-ops step (momentum 0.9) per shape, alternating."""
    rows = []
    for shape in shapes:
        contenders, variables, grads = make_contenders(["sm3", "sm3_tf_ops"], [shape], None)
        time_rotation([c.record for c in contenders], repeats)
        fused, tf_ops = (statistics.median(c.wall) for c in contenders)
        rows.append(dict(shape=list(shape), fused_s=fused, tf_ops_s=tf_ops))
        del contenders, variables, grads
        gc.collect()
    return rows


def _format(value, spec, missing="n/a"):
    return missing if value is None else format(value, spec)


def pages_note(workload):
    """The caption's "; on 2 MiB pages: tf N MiB, torch_adam M MiB", or "" when none is known."""
    known = {k: v for k, v in workload.get("huge_mib", {}).items() if v is not None}
    if not known:
        return ""
    return "; on 2 MiB pages: " + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in known.items())


def own_loop_s(workload, mix):
    """Seconds the probe's fastest variant of `mix` (r1w2, r1w2+skew, ...) takes for the
    workload's parameters in this run; None without such a mix."""
    if not mix:
        return None
    per_element = workload.get("probe_ns_per_element", {})
    family = [
        ns for name, ns in per_element.items() if re.fullmatch(rf"{re.escape(mix)}([+-].*)?", name)
    ]
    return min(family) * workload["params"] / 1e9 if family else None


def basis_of(workload):
    """The contender the ratios are to (PyTorch's fused Adam, else Keras Adam) and its median."""
    by_name = {r["contender"]: r for r in workload["results"]}
    basis = torch_adam_worker.NAME if torch_adam_worker.NAME in by_name else "adam"
    return basis, by_name[basis]["median_s"] if basis in by_name else None


def floor_note(workload):
    """The bare probe loops of SM3's streams as ratios to the basis: how close a step with those
    streams can come on this machine in this run, against issue 15's targets."""
    basis, base = basis_of(workload)
    parts = []
    for mix, what, target in (("r1w2", "float32 buffer", 0.80), ("r1w1", "no momentum", 0.50)):
        loop = own_loop_s(workload, mix)
        if base and loop:
            parts.append(f"{mix} ({what}) {loop / base:.2f} (target {target:.2f})")
    if not parts:
        return None
    lead = f"Bare probe loops with SM3's streams, x {basis} in the same rotation: "
    return lead + ", ".join(parts)


def workload_table(workload):
    results = workload["results"]
    basis, base = basis_of(workload)
    limit = max(workload["probe_gbps"].values()) if workload["probe_gbps"] else None
    rows = []
    for r in results:
        own = own_loop_s(workload, r.get("probe_mix"))
        rows.append(
            [
                r["contender"],
                r["bytes_per_param"],
                f"{1e3 * r['median_s']:.1f}",
                f"{1e3 * r['min_s']:.1f}",
                f"{1e3 * r['cpu_s']:.1f}",
                _format(base and r["median_s"] / base, ".2f"),
                f"{r['gbps']:.1f}",
                _format(limit and 100 * r["gbps"] / limit, ".0f"),
                _format(own and r["median_s"] / own, ".2f"),
                _format(r.get("same_memory_s") and r["median_s"] / r["same_memory_s"], ".2f"),
                _format(r["extra_mib"], ".2f"),
            ]
        )
    headers = [
        "optimizer",
        "B/param",
        "step ms",
        "min ms",
        "CPU ms",
        f"x {basis}",
        "GB/s",
        "% of limit",
        "x own loop",
        "x same-memory loop",
        "peak extra MiB",
    ]
    return docs_output.format_table(headers, rows)


def probe_table(workload):
    rows = [[name, f"{gbps:.1f}"] for name, gbps in workload["probe_gbps"].items()]
    return docs_output.format_table(["probe mix", "GB/s"], rows)


def shapes_table(rows):
    table = [
        [
            "x".join(map(str, r["shape"])),
            f"{1e3 * r['fused_s']:.1f}",
            f"{1e3 * r['tf_ops_s']:.1f}",
            f"{r['fused_s'] / r['tf_ops_s']:.2f}",
        ]
        for r in rows
    ]
    return docs_output.format_table(["shape", "fused ms", "TF ops ms", "fused / TF ops"], table)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="transformer_big", choices=sorted(model_shapes.MODELS) + ["none"]
    )
    parser.add_argument(
        "--matrices", default="8192x8192", help="comma-separated shapes timed one at a time"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(DEFAULT_CONTENDERS),
        help=f"comma-separated subset of {','.join(CONTENDERS)}",
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--shapes", default=DEFAULT_SHAPES, help="fused vs TF-ops shapes ('' for none)"
    )
    parser.add_argument(
        "--probe-non-temporal", action="store_true", help="also probe non-temporal stores"
    )
    huge_pages.add_flag(parser)
    parser.add_argument(
        "--no-publish", action="store_true", help="print only; leave docs/results alone"
    )
    parser.add_argument(
        "--results-json",
        metavar="PATH",
        help="measure here, in this process, and write the workloads to PATH (what the "
        "process bench_step starts for each workload does); no tables, nothing published",
    )
    args = parser.parse_args(argv)
    args.names = [n for n in args.contenders.split(",") if n]
    unknown = [n for n in args.names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown --contenders {unknown}; choose from {CONTENDERS}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.results_json is not None:
        if not args.results_json or os.path.isdir(args.results_json):
            parser.error(f"--results-json must name a file, got {args.results_json!r}")
        if not os.path.isdir(os.path.dirname(os.path.abspath(args.results_json))):
            parser.error(f"--results-json {args.results_json}: its directory does not exist")
    try:
        args.matrix_shapes = [parse_shape(m) for m in args.matrices.split(",") if m]
        args.sweep_shapes = [parse_shape(s) for s in args.shapes.split(",") if s]
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    return args


def measure_workloads(args):
    """{"torch": note, "workloads": [...]} for the workloads `args` names, in this process."""
    torch_worker, torch_note = None, None
    if torch_adam_worker.NAME in args.names:
        torch_worker, torch_note = torch_adam_worker.start()
        print(torch_note, flush=True)
    mixes = stream_probe.default_mixes(args.probe_non_temporal)
    workloads = []
    try:
        if args.model != "none":
            shapes = [s for _, s in model_shapes.MODELS[args.model]()]
            workloads.append(
                measure_workload(args.model, shapes, args.names, args.repeats, mixes, torch_worker)
            )
        for shape in args.matrix_shapes:
            title = "x".join(map(str, shape))
            workloads.append(
                measure_workload(title, [shape], args.names, args.repeats, mixes, torch_worker)
            )
    finally:
        if torch_worker is not None:
            torch_worker.quit()
    return dict(torch=torch_note, workloads=workloads)


def workload_arguments(args):
    """The command-line arguments of one process per workload (the model, then each matrix).

    A workload measured after another in the same process ran in what the first left behind:
    8192x8192 after Transformer-Big took 0.86-1.04x PyTorch's step with a float32 buffer, alone
    0.78x (docs/kernels_benchmark.md). Its own process, and its own PyTorch worker, start clean.
    """
    common = [
        "--contenders", ",".join(args.names),
        "--repeats", str(args.repeats),
        "--shapes", "",
        "--huge-pages" if args.huge_pages else "--no-huge-pages",
    ]  # fmt: skip
    if args.probe_non_temporal:
        common.append("--probe-non-temporal")
    runs = [] if args.model == "none" else [["--model", args.model, "--matrices", ""]]
    runs += [["--model", "none", "--matrices", "x".join(map(str, s))] for s in args.matrix_shapes]
    return [run + common for run in runs]


def measure_in_own_process(args, arguments):
    """Runs bench_step with `arguments` in a new process; returns what it measured."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "workload.json")
        done = processes.run_module(
            "bench_step", *arguments, "--results-json", path, capture_output=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"bench_step {' '.join(arguments)} failed (exit code {done.returncode})"
            )
        with open(path) as f:
            return json.load(f)


def main(argv=None):
    args = parse_args(argv)
    if argv is None:  # a command line: glibc reads the page setting only at start-up
        huge_pages.restart_with(args.huge_pages)
    tf.get_logger().setLevel("ERROR")  # every contender and probe mix is its own tf.function
    # One workload, for the process that started this one; that process prints the header.
    if args.results_json is not None:
        with open(args.results_json, "w") as f:
            json.dump(measure_workloads(args), f)
        return 0
    stopwatch = docs_output.Stopwatch()
    ops = kernel_loader.ops()
    header = (
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, "
        f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"SM3 kernel loops: {ops.sm3_kernel_isa().numpy().decode()}; "
        + huge_pages.describe(args.huge_pages)
    )
    print(header, flush=True)
    measured = [measure_in_own_process(args, arguments) for arguments in workload_arguments(args)]
    torch_note = next((m["torch"] for m in measured if m["torch"]), None)
    workloads = [w for m in measured for w in m["workloads"]]
    shape_rows = measure_shapes(args.sweep_shapes, max(3, args.repeats))
    tables = []
    for w in workloads:
        caption = (
            f"{w['workload']} ({w['variables']} variables, {w['params'] / 1e6:.1f}M parameters), "
            f"load average {w['load_before']} before, {w['load_after']} after{pages_note(w)}:"
        )
        table = workload_table(w)
        note = floor_note(w)
        tables.append((caption, table if note is None else f"{table}\n\n{note}"))
        tables.append((f"{w['workload']}: bandwidth probe (same rotation):", probe_table(w)))
    if shape_rows:
        tables.append(
            (
                "Fused vs TF-ops step (SM3, momentum 0.9), median wall-clock:",
                shapes_table(shape_rows),
            )
        )
    raw = dict(header=header, torch=torch_note, workloads=workloads, shapes=shape_rows)
    if args.no_publish:
        for caption, table in tables:
            print(f"\n{caption}\n{table}")
        print(f"\n{stopwatch.summary()}")
    else:
        docs_output.publish(
            "step", "Optimizer step speed (bench_step)", tables, raw, stopwatch, [header]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
