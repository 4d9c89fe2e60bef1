"""Run-time guards shared by the Keras and the v1 optimizer: checks on tensors, not on arguments.

Arguments are validated when they are given (`step_config`). What only a running step knows, the
gradients' finiteness and the value of a tensor learning rate or momentum, is checked here, with
ops that work on every path: the fused kernel, the TF ops, and XLA/TPU.

TensorFlow compiles assertions away under XLA (its `Assert` kernel for XLA does nothing). So a
step that XLA compiles is guarded instead: it changes nothing (weights, covers, momentum) when a
run-time hyper-parameter is out of range, the way `skip_nonfinite` skips a non-finite gradient.
Outside XLA an out-of-range value raises `InvalidArgumentError` naming the argument.
"""

import tensorflow as tf

from sm3_tf import step


def all_finite(grads):
    """A scalar bool tensor: every gradient value is finite (IndexedSlices: their values)."""
    checks = [
        tf.reduce_all(tf.math.is_finite(g.values if isinstance(g, tf.IndexedSlices) else g))
        for g in grads
        if g is not None
    ]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def _learning_rate_ok(value):
    return tf.logical_and(tf.math.is_finite(value), value >= 0.0)


def _momentum_ok(value):
    return tf.logical_and(value >= 0.0, value < 1.0)


# For each run-time hyper-parameter: its valid range in words, and the test of a float32 value.
_CHECKS = {
    "learning_rate": ("a finite non-negative number", _learning_rate_ok),
    "momentum": ("in [0, 1)", _momentum_ok),
}


def check_hyperparameters(**values):
    """Checks the run-time values of `learning_rate` / `momentum` (float32 scalar tensors).

    Args:
      **values: name -> scalar float32 tensor, for the names in `_CHECKS`. Python numbers are
        validated at construction, so callers pass tensors only.

    Returns:
      (assertions, valid). Outside XLA: the assertion ops, which fail with an
      `InvalidArgumentError` naming the argument (create the step under
      `tf.control_dependencies(assertions)`, so that a failing check runs none of it), and None.
      Under XLA: no assertions, and a scalar bool tensor that is False when a value is out of
      range (the caller then skips the step); None when there is nothing to check.
    """
    if not values:
        return [], None
    verdicts = {name: _CHECKS[name][1](value) for name, value in values.items()}
    if step.in_xla_context():
        return [], tf.reduce_all(tf.stack(list(verdicts.values())))
    assertions = [
        tf.debugging.Assert(verdicts[name], [f"`{name}` must be {_CHECKS[name][0]}, got", value])
        for name, value in values.items()
    ]
    return assertions, None
