"""Picks the implementation of one SM3 step: the fused kernel or the plain-TF ops.

Both implementations honour the same contract (`tf_step.dense_update` / `sparse_update`). The
kernels are custom ops without an XLA kernel, so under XLA (jit_compile, TPU) the TF ops are used.
`path` says which one a variable's step takes and why; `select` returns its module.
"""

import typing

from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util

from sm3_tf import tf_step

FUSED_CHOICES = (None, True, False)

FUSED = "fused"
TF_OPS = "tf_ops"
XLA = "xla"


class StepPath(typing.NamedTuple):
    """Which implementation runs a variable's step.

    Attributes:
      kind: "fused" (the C++ kernel), "xla" (the TF ops, because XLA compiles the step) or
        "tf_ops" (the TF ops for another reason).
      reason: None for "fused", else why the kernel is not used (a sentence).
    """

    kind: str
    reason: typing.Optional[str] = None

    def __str__(self):
        return self.kind if self.reason is None else f"{self.kind} ({self.reason})"


def in_xla_context():
    """True while tracing code that XLA will compile (jit_compile=True or a TPU computation)."""
    return control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


def check_fused(fused):
    """Validates the `fused` argument: None (auto), True (required) or False (never)."""
    if not (fused is None or isinstance(fused, bool)):
        raise ValueError(f"`fused` must be None, True or False, got {fused!r}.")
    return fused


def kernels_unavailable_reason():
    """None when the kernel library loads in this process, else why not (a sentence)."""
    try:
        from sm3_tf import kernel_loader
    except ImportError as error:  # the kernels are optional: say why they are missing
        return f"the kernel loader could not be imported ({error})"
    return kernel_loader.unavailable_reason()


def fused_unavailable_reason(var, config):
    """None when the fused kernel can run this step here, else why not (a sentence)."""
    if in_xla_context():
        return "the step is compiled by XLA, and the SM3 kernels have no XLA implementation"
    try:
        from sm3_tf import fused_step
    except ImportError as error:  # the kernels are optional: say why they are missing
        return f"the fused-kernel wrapper could not be imported ({error})"
    return fused_step.unavailable_reason(var, config)


def path(fused, var, config):
    """The `StepPath` of `var`'s step under the `fused` choice, here and now.

    Raises:
      RuntimeError: `fused=True` and the kernel cannot run, saying why (as the step would).
    """
    if fused is False:
        return StepPath(TF_OPS, "fused=False")
    reason = fused_unavailable_reason(var, config)
    if reason is None:
        return StepPath(FUSED)
    if fused:
        raise RuntimeError(
            f"SM3(fused=True) cannot use the fused kernel for variable "
            f"{var.name!r}: {reason}. Use fused=None to fall back to TF ops."
        )
    return StepPath(XLA if in_xla_context() else TF_OPS, reason)


def select(fused, var, config, report=None):
    """Returns the module (`fused_step` or `tf_step`) that performs this variable's step.

    Args:
      fused: None = the kernel when it can run, True = the kernel or an error, False = TF ops.
      var: the variable being updated.
      config: its `StepConfig`.
      report: the optimizer's `fallbacks.FallbackReport`, told which path `var` takes (not under
        XLA, whose path is the TF ops by design, nor with fused=False, which asked for them).

    Raises:
      RuntimeError: `fused=True` and the kernel cannot run, saying why.
    """
    chosen = path(fused, var, config)
    if report is not None and fused is not False and chosen.kind != XLA:
        report.record(var, chosen.reason)
    if chosen.kind != FUSED:
        return tf_step
    from sm3_tf import fused_step

    return fused_step
