"""Picks the implementation of one SM3 step: the fused kernel or the plain-TF ops.

Both implementations honour the same contract (`tf_step.dense_update` / `sparse_update`). The
kernels are custom ops without an XLA kernel, so under XLA (jit_compile, TPU) the TF ops are used.
"""

from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util

from sm3_tf import tf_step

FUSED_CHOICES = (None, True, False)


def in_xla_context():
    """True while tracing code that XLA will compile (jit_compile=True or a TPU computation)."""
    return control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


def check_fused(fused):
    """Validates the `fused` argument: None (auto), True (required) or False (never)."""
    if fused not in FUSED_CHOICES:
        raise ValueError(f"`fused` must be None, True or False, got {fused!r}.")
    return fused


def fused_unavailable_reason(var, config):
    """None when the fused kernel can run this step here, else why not (a sentence)."""
    if in_xla_context():
        return "the step is compiled by XLA, and the SM3 kernels have no XLA implementation"
    try:
        from sm3_tf import fused_step
    except ImportError as error:  # the kernels are optional: say why they are missing
        return f"the fused-kernel wrapper could not be imported ({error})"
    return fused_step.unavailable_reason(var, config)


def select(fused, var, config, report=None):
    """Returns the module (`fused_step` or `tf_step`) that performs this variable's step.

    Args:
      fused: None = the kernel when it can run, True = the kernel or an error, False = TF ops.
      var: the variable being updated.
      config: its `StepConfig`.
      report: the optimizer's `fallbacks.FallbackReport`, told which path `var` takes (outside
        XLA, whose path is the TF ops by design).

    Raises:
      RuntimeError: `fused=True` and the kernel cannot run, saying why.
    """
    if fused is False:
        return tf_step
    reason = fused_unavailable_reason(var, config)
    if reason is not None and fused:
        raise RuntimeError(
            f"SM3(fused=True) cannot use the fused kernel for variable "
            f"{var.name!r}: {reason}. Use fused=None to fall back to TF ops."
        )
    if report is not None and not in_xla_context():
        report.record(var, reason)
    if reason is None:
        from sm3_tf import fused_step

        return fused_step
    return tf_step
