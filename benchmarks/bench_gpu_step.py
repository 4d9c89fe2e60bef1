"""One optimizer step on a GPU: SM3 against Adam, time and peak device memory.

Runs where a GPU and JAX or PyTorch are, with or without TensorFlow: the contenders are Keras 3
optimizers on the JAX backend (the step compiled by XLA, as on TPUs) and on the PyTorch backend,
next to the strongest peers of each framework (optax's Adam and SM3 on JAX; PyTorch's fused Adam).
Each (contender, workload) runs in its own process, so peak memory is that contender's alone:

  * step time: median over `--steps` steps after `--warmup` steps, each step waited for on device;
  * state: bytes of the optimizer's state (counters excluded);
  * peak extra: the device's peak bytes in use during the steps minus the bytes in use before them
    (parameters, gradients and state), i.e. the step's temporaries.

Workloads: T2T transformer_big's variable list (`benchmarks.model_shapes`, 209.8M parameters) and
one 8192x8192 matrix. Usage:

    python -m benchmarks.bench_gpu_step --out DIR               # measure; DIR/gpu_step_raw.json
    python -m benchmarks.bench_gpu_step --render DIR/gpu_step_raw.json   # docs/results/gpu_step.*

The measuring half imports neither TensorFlow nor `sm3_t2t`; `--render` (run where the project is
installed) writes the tables with the project's provenance.
"""

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time

from benchmarks import model_shapes

WORKLOADS = ("transformer_big", "8192x8192")
# contender -> (framework, what it is)
CONTENDERS = {
    "keras_adam": ("jax", "Keras Adam"),
    "sm3": ("jax", "Keras SM3, momentum 0.9 (float32)"),
    "sm3_bf16": ("jax", "Keras SM3, momentum 0.9 (bfloat16)"),
    "sm3_no_momentum": ("jax", "Keras SM3, no momentum"),
    "keras_adafactor": ("jax", "Keras Adafactor"),
    "optax_adam": ("jax", "optax.adam"),
    "optax_sm3": ("jax", "optax.sm3, momentum 0.9"),
    "torch_keras_adam": ("torch", "Keras Adam (PyTorch backend)"),
    "torch_sm3": ("torch", "Keras SM3, momentum 0.9 (PyTorch backend)"),
    "torch_fused_adam": ("torch", "torch.optim.Adam(fused=True)"),
    # The TensorFlow backend: SM3's TF-ops step (a GPU variable never takes the CPU kernel),
    # in a tf.function and under XLA, against Keras Adam. Only where TensorFlow is installed.
    "tf_keras_adam": ("tensorflow", "Keras Adam (TensorFlow backend, tf.function)"),
    "tf_sm3": ("tensorflow", "Keras SM3, momentum 0.9 (TF ops, tf.function)"),
    "tf_sm3_xla": ("tensorflow", "Keras SM3, momentum 0.9 (TF ops, XLA)"),
    "tf_keras_adam_xla": ("tensorflow", "Keras Adam (TensorFlow backend, XLA)"),
}
RATIO_BASE = {"jax": "keras_adam", "torch": "torch_fused_adam", "tensorflow": "tf_keras_adam"}


def workload_shapes(name):
    if name == "transformer_big":
        return [shape for _, shape in model_shapes.transformer_big_shapes()]
    rows, columns = (int(d) for d in name.split("x"))
    return [(rows, columns)]


def keras_optimizer(name):
    import keras

    import sm3_tf

    name = name.removesuffix("_xla")  # the same optimizer, compiled by the caller
    if name.endswith("keras_adam"):
        return keras.optimizers.Adam(learning_rate=1e-3)
    if name == "keras_adafactor":
        return keras.optimizers.Adafactor(learning_rate=1e-3)
    momentum_dtype = "bfloat16" if name.endswith("bf16") else None
    momentum = 0.0 if name.endswith("no_momentum") else 0.9
    return sm3_tf.SM3(learning_rate=0.1, momentum=momentum, momentum_dtype=momentum_dtype)


def _state_variables(optimizer):
    """The optimizer's state: its variables but the step counter and other scalars."""
    return [
        v for v in optimizer.variables if v is not optimizer.iterations and math.prod(v.shape) > 1
    ]


def _timed(step, wait, warmup, steps):
    for _ in range(warmup):
        wait(step())
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        wait(step())
        times.append(time.perf_counter() - start)
    return times


def measure_jax(contender, shapes, warmup, steps):
    import jax
    import jax.numpy as jnp

    device = jax.devices()[0]
    keys = jax.random.split(jax.random.PRNGKey(0), 2 * len(shapes))
    params = [jax.random.normal(k, s, jnp.float32) * 0.02 for k, s in zip(keys[::2], shapes)]
    grads = [jax.random.normal(k, s, jnp.float32) * 1e-3 for k, s in zip(keys[1::2], shapes)]
    if contender.startswith("optax"):
        import optax

        tx = optax.adam(1e-3) if contender == "optax_adam" else optax.sm3(0.1, momentum=0.9)
        state = tx.init(params)

        def apply(params, state, grads):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        state_leaves = [x for x in jax.tree_util.tree_leaves(state) if x.size > 1]
    else:
        import keras

        optimizer = keras_optimizer(contender)
        variables = [keras.Variable(p) for p in params]
        optimizer.build(variables)
        state = [v.value for v in optimizer.variables]
        state_leaves = [v.value for v in _state_variables(optimizer)]
        params = [v.value for v in variables]

        def apply(params, state, grads):
            params, state = optimizer.stateless_apply(state, grads, params)
            return params, state

    step_fn = jax.jit(apply, donate_argnums=(0, 1))
    carry = {"params": params, "state": state}

    def step():
        carry["params"], carry["state"] = step_fn(carry["params"], carry["state"], grads)
        return carry["params"]

    step()  # compile, then measure from a settled allocator
    jax.block_until_ready(carry["params"])
    # CPU devices keep no statistics (None): the smoke test on CPU still times the step.
    before = (device.memory_stats() or {}).get("bytes_in_use", 0)
    times = _timed(step, jax.block_until_ready, warmup, steps)
    stats = device.memory_stats() or {}
    return {
        "times": times,
        "state_bytes": int(sum(x.size * x.dtype.itemsize for x in state_leaves)),
        "bytes_before": int(before),
        "peak_bytes": int(stats.get("peak_bytes_in_use", 0)),
        "device": str(device.device_kind),
        "versions": {"jax": jax.__version__, **_keras_version()},
    }


def measure_torch(contender, shapes, warmup, steps):
    import torch

    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    params = [torch.randn(s, device=device, generator=generator) * 0.02 for s in shapes]
    grads = [torch.randn(s, device=device, generator=generator) * 1e-3 for s in shapes]
    if contender == "torch_fused_adam":
        tensors = [torch.nn.Parameter(p) for p in params]
        for t, g in zip(tensors, grads):
            t.grad = g
        optimizer = torch.optim.Adam(tensors, lr=1e-3, fused=True)

        def step():
            optimizer.step()

        step()
        state = [v for s in optimizer.state.values() for v in s.values() if v.numel() > 1]
    else:
        import keras

        optimizer = keras_optimizer(contender)
        variables = [keras.Variable(p) for p in params]
        optimizer.build(variables)
        state = [v.value for v in _state_variables(optimizer)]

        def step():
            optimizer.apply(grads, variables)

        step()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = _timed(step, lambda _: torch.cuda.synchronize(), warmup, steps)
    return {
        "times": times,
        "state_bytes": int(sum(t.numel() * t.element_size() for t in state)),
        "bytes_before": int(before),
        "peak_bytes": int(torch.cuda.max_memory_allocated()),
        "device": torch.cuda.get_device_name(),
        "versions": {"torch": torch.__version__, **_keras_version()},
    }


def measure_tf(contender, shapes, warmup, steps):
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        raise RuntimeError("TensorFlow sees no GPU")
    with tf.device(gpus[0].name):
        generator = tf.random.Generator.from_seed(0)
        variables = [tf.Variable(generator.normal(s) * 0.02) for s in shapes]
        grads = [generator.normal(s) * 1e-3 for s in shapes]
        optimizer = keras_optimizer(contender)
        optimizer.build(variables)
        state = _state_variables(optimizer)

        @tf.function(jit_compile=contender.endswith("_xla"))
        def apply():
            optimizer.apply(grads, variables)
            return variables[0][0, 0] if len(shapes[0]) == 2 else variables[0][0]

        apply()
    tf.config.experimental.reset_memory_stats(gpus[0].name)
    before = tf.config.experimental.get_memory_info(gpus[0].name)["current"]
    times = _timed(apply, lambda x: x.numpy(), warmup, steps)
    info = tf.config.experimental.get_memory_info(gpus[0].name)
    return {
        "times": times,
        "state_bytes": int(sum(int(tf.size(v)) * tf.as_dtype(v.dtype).size for v in state)),
        "bytes_before": int(before),
        "peak_bytes": int(info["peak"]),
        "device": gpus[0].name,
        "versions": {"tensorflow": tf.__version__, **_keras_version()},
    }


def _keras_version():
    if "keras" not in sys.modules:
        return {}
    import keras

    import sm3_tf

    return {"keras": keras.__version__, "sm3_tf": sm3_tf.__version__}


def run_one(contender, workload, warmup, steps):
    """Measures one contender on one workload in this process; prints one JSON line."""
    framework = CONTENDERS[contender][0]
    measure = {"jax": measure_jax, "torch": measure_torch, "tensorflow": measure_tf}[framework]
    result = measure(contender, workload_shapes(workload), warmup, steps)
    result.update(contender=contender, workload=workload)
    print("RESULT " + json.dumps(result), flush=True)


def run_all(args):
    import importlib.util

    results, failures = [], []
    for workload in args.workloads:
        for contender in args.contenders:
            framework = CONTENDERS[contender][0]
            if importlib.util.find_spec(framework) is None:
                print(f"{contender} on {workload}: skipped, no {framework} here", flush=True)
                continue
            env = dict(
                os.environ,
                KERAS_BACKEND=framework,
                XLA_PYTHON_CLIENT_PREALLOCATE="false",  # peak memory is the step's, not a pool's
                TF_FORCE_GPU_ALLOW_GROWTH="true",
            )
            command = [
                sys.executable,
                "-m",
                "benchmarks.bench_gpu_step",
                "--one",
                contender,
                workload,
                "--warmup",
                str(args.warmup),
                "--steps",
                str(args.steps),
            ]
            started = time.time()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode or not lines:
                failures.append(
                    {
                        "contender": contender,
                        "workload": workload,
                        "error": (done.stderr or done.stdout)[-1500:],
                    }
                )
                print(f"{contender} on {workload}: FAILED\n{failures[-1]['error']}", flush=True)
                _save(args.out, results, failures)
                continue
            result = json.loads(lines[-1][len("RESULT ") :])
            result["wall_s"] = round(time.time() - started, 1)
            results.append(result)
            print(
                f"{workload:16} {contender:18} {1e3 * statistics.median(result['times']):8.2f} ms"
                f"  state {result['state_bytes'] / 2**20:9.1f} MiB  peak extra "
                f"{(result['peak_bytes'] - result['bytes_before']) / 2**20:9.1f} MiB",
                flush=True,
            )
            _save(args.out, results, failures)
    _save(args.out, results, failures)
    return 1 if failures and not results else 0


def _save(out, results, failures):
    # After every contender: a run stopped by a time limit keeps what it measured.
    os.makedirs(out, exist_ok=True)
    raw = {"results": results, "failures": failures, "machine": _machine()}
    with open(os.path.join(out, "gpu_step_raw.json"), "w") as f:
        json.dump(raw, f, indent=1)


def _machine():
    try:
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        ).stdout
    except OSError:
        gpu = ""
    return {
        "gpu": gpu.strip(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def tables(raw):
    """(caption, table) pairs: per workload, each contender's time, ratio and memory."""
    from benchmarks import docs_output

    out = []
    by_key = {(r["workload"], r["contender"]): r for r in raw["results"]}
    for workload in WORKLOADS:
        rows = []
        for contender, (framework, label) in CONTENDERS.items():
            result = by_key.get((workload, contender))
            if result is None:
                continue
            base = by_key.get((workload, RATIO_BASE[framework]))
            median = statistics.median(result["times"])
            ratio = median / statistics.median(base["times"]) if base else float("nan")
            rows.append(
                [
                    label,
                    f"{1e3 * median:.2f}",
                    f"{ratio:.2f}x {CONTENDERS[RATIO_BASE[framework]][1]}",
                    f"{result['state_bytes'] / 2**20:.1f}",
                    f"{(result['peak_bytes'] - result['bytes_before']) / 2**20:.1f}",
                    f"{result['peak_bytes'] / 2**20:.0f}",
                ]
            )
        if rows:
            headers = [
                "contender",
                "step ms",
                "ratio",
                "state MiB",
                "peak extra MiB",
                "peak total MiB",
            ]
            out.append(
                (
                    f"{workload} (median of the measured steps):",
                    docs_output.format_table(headers, rows),
                )
            )
    return out


def render_notes(raw):
    """The lines under the tables: where and with what the raw results were measured."""
    machine = raw["machine"]
    versions = {k: v for r in raw["results"] for k, v in r["versions"].items()}
    notes = [
        f"Measured on {machine['gpu']} ({machine['cpu_count']} CPU cores, Python "
        f"{machine['python']}) on {machine['date']}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + ".",
        "",
        (
            "TensorFlow rows: SM3's TF-ops step in a tf.function and under XLA."
            if "tensorflow" in versions
            else "TensorFlow was not installed on that machine (its GPU wheel is far larger than "
            "what can be carried there), so the TF-ops and XLA paths of the TensorFlow backend "
            "are not in this table."
        ),
        "The JAX rows are the XLA-compiled step (Keras on JAX is the Keras-on-TPU path), the "
        "PyTorch rows Keras's eager step. The machine line above is where the table was "
        "rendered, not measured.",
    ]
    if raw["failures"]:
        notes += [
            "",
            "Failed: " + ", ".join(f"{x['contender']} on {x['workload']}" for x in raw["failures"]),
        ]
    return notes


def render(path):
    from benchmarks import docs_output

    # Everything is read and formatted before anything is written, so a missing, empty or
    # damaged file (or a result without its fields) leaves docs/ as it was.
    try:
        with open(path) as f:
            raw = json.load(f)
        body, notes = tables(raw), render_notes(raw)
    except (OSError, ValueError, KeyError, TypeError, statistics.StatisticsError) as error:
        raise SystemExit(f"--render {path}: not a gpu_step_raw.json ({error!r})") from None
    if not body:
        raise SystemExit(f"--render {path}: no result of a known contender and workload")
    docs_output.publish(
        "gpu_step", "One optimizer step on a GPU", body, raw, docs_output.Stopwatch(), notes
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="output/gpu_step", help="where gpu_step_raw.json goes")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--one",
        nargs=2,
        metavar=("CONTENDER", "WORKLOAD"),
        help="measure one pair in this process (used by the driver)",
    )
    parser.add_argument("--render", metavar="RAW_JSON", help="write docs/results/gpu_step.*")
    args = parser.parse_args(argv)
    if args.render:
        return render(args.render)
    if args.one:
        return run_one(*args.one, args.warmup, args.steps)
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.contenders = [c for c in args.contenders.split(",") if c]
    for name in args.contenders:
        if name not in CONTENDERS:
            parser.error(f"--contenders: unknown {name!r}; known: {', '.join(CONTENDERS)}")
    for name in args.workloads:
        if name not in WORKLOADS and not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", name):
            parser.error(
                f"--workloads: {name!r} is neither {' nor '.join(WORKLOADS)} nor ROWSxCOLUMNS"
            )
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
