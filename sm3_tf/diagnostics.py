"""`python -m sm3_tf`: which versions, which kernel library and which step path SM3 has here.

Answers "is my kernel loaded, and if not why?" without reading the loader: the versions of
sm3_tf, TensorFlow, Keras and its backend; whether the fused kernel library loads, from where, who
built it for which TensorFlow, which instruction set its loops use; and which path SM3 (with
fused=None) takes for a variable on CPU, on GPU, and in a step compiled by XLA.
"""

import platform
import sys

import keras
import tensorflow as tf

import sm3_tf
from sm3_tf import fused_step, kernel_build, kernel_loader, step
from sm3_tf.step_config import StepConfig

FUSED = "fused kernel"


def step_path(variable):
    """How SM3(fused=None) updates `variable` here: "fused kernel" or "TF ops: <why>".

    `step.path` is what `SM3.step_path` answers with; it is asked directly so that this report
    also works where the Keras optimizer cannot be built (an unsupported Keras).
    """
    chosen = step.path(None, variable, StepConfig())
    return FUSED if chosen.kind == step.FUSED else f"TF ops: {chosen.reason}"


def versions():
    return [
        f"sm3_tf {sm3_tf.__version__}",
        f"TensorFlow {tf.version.VERSION} ({tf.version.GIT_VERSION})",
        f"Keras {keras.__version__}, backend {keras.backend.backend()}",
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}",
    ]


def kernel_library():
    """Whether the op library loads, from where, built by whom, with which loops; or why not."""
    library = kernel_loader.default_library()
    if library.load() is None:
        return [
            "Fused kernel library: not loaded",
            f"  why: {library.reason}",
            f"  build it (needs a C++ compiler): {kernel_loader.RETRY_COMMAND}",
        ]
    info = kernel_build.read_info(library.path)
    built = (
        f"for TensorFlow {info.get('tensorflow', '?')} by {info.get('compiler_version', '?')}, "
        f"{info.get('built', '?')}"
        if info
        else "no build record (an explicit library)"
    )
    isa = kernel_loader.ops().sm3_kernel_isa().numpy().decode()
    return [
        "Fused kernel library: loaded",
        f"  from: {library.path}",
        f"  built: {built}",
        f"  instruction set: {isa}",
    ]


def step_paths():
    """The path SM3 takes for a CPU variable, a GPU variable and under XLA."""
    with tf.device("/cpu:0"):
        cpu_variable = tf.Variable(tf.zeros([2, 2]), name="cpu_variable")
    if tf.config.list_logical_devices("GPU"):
        with tf.device("/gpu:0"):
            gpu = step_path(tf.Variable(tf.zeros([2, 2]), name="gpu_variable"))
    else:
        gpu = f"TF ops: {fused_step.device_reason('GPU')} (this machine has no GPU)"
    traced = []

    @tf.function(jit_compile=True)
    def xla_step():
        traced.append(step_path(cpu_variable))
        return cpu_variable.read_value()

    xla_step.get_concrete_function()
    return [
        "SM3 step path (fused=None):",
        f"  CPU variable: {step_path(cpu_variable)}",
        f"  GPU variable: {gpu}",
        f"  under XLA (jit_compile=True, TPU): {traced[0]}",
    ]


def report():
    """The diagnostics, as lines."""
    return versions() + [""] + kernel_library() + [""] + step_paths()


def main():
    print("\n".join(report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
