"""SM3 as a `tf.compat.v1.train.Optimizer`: graph-mode, estimator-style and TPU jobs.

    from sm3_tf import v1 as sm3
    optimizer = sm3.SM3Optimizer(learning_rate=0.1, momentum=0.9)
    train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_or_create_global_step())

A drop-in for the authors' `SM3Optimizer(learning_rate, momentum, name)` (google-research
`sm3/sm3.py`): the first arguments match, and so do the slot variables' names, so their
`tf.compat.v1.train.Saver` checkpoints restore; the numerics are those of `sm3_tf.SM3`, without
the authors' bugs (see docs/v1.md). The maths is not repeated here: each variable's step is
`sm3_tf.step.select(...)`'s `dense_update` / `sparse_update` (the fused kernel on CPU, the
plain-TF ops under XLA/TPU). This module only adapts the v1 optimizer protocol (slots, `_prepare`,
`_resource_apply_*`, `_finish`) to that contract.
"""

import dataclasses
import numbers

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.training import optimizer as tf_optimizer

from sm3_tf import covers, fallbacks, guards, step, step_config, tf_step

NONFINITE_STEPS = "nonfinite_steps"


class SM3Optimizer(tf.compat.v1.train.Optimizer):
    """Optimizer that implements SM3 (Anil, Gupta, Koren, Singer, NeurIPS 2019) for tf.compat.v1.

    For a variable of shape (d_1, ..., d_p), p >= 2, SM3 keeps one accumulator vector per axis
    (slots "accumulator_0" .. "accumulator_{p-1}", shapes (d_i,)); scalars and vectors keep one
    entry per element (slot "accumulator_0", diagonal Adagrad). For a gradient g:

    SM3-II (default):  nu = beta_2 * min_i acc_i + w_new * g^2 ;  acc_i = max of nu over axes != i
    SM3-I:             acc_i = beta_2 * acc_i + w_new * max of g^2 over axes != i ;  nu = min_i
    acc_i
        p   = g / sqrt(nu + epsilon)                 (0 where nu + epsilon == 0)
        buf = momentum * buf + (1 - momentum) * p    (slot "momentum")
        w   = w - learning_rate * buf                (no buffer: w = w - learning_rate * p)

    with w_new = 1 when beta_2 == 1 (the paper's running sums) and 1 - beta_2 otherwise. Sparse
    gradients (`tf.IndexedSlices`, e.g. from `tf.compat.v1.nn.embedding_lookup`) have duplicate
    indices summed and update only the touched rows of the variable, of "accumulator_0" and of
    "momentum". The arithmetic is float32 for float16/bfloat16 variables, whose accumulators are
    float32; the result is rounded to the variable's dtype once.

    With `skip_nonfinite=True`, `apply_gradients` computes one flag "every gradient is finite" and
    updates nothing (weights, accumulators, momentum) when it is false; such steps are counted in
    `nonfinite_steps`. `global_step` is still incremented, so schedules keep counting steps taken.

    Args:
      learning_rate: A finite non-negative float, a scalar tensor or variable, or a zero-argument
        callable returning one (evaluated each time `apply_gradients` builds the update).
      momentum: Heavy-ball momentum in [0, 1), a scalar tensor or a zero-argument callable.
        A Python 0 (the default) creates no momentum slot; a tensor or callable always creates one,
        since its value is unknown when the slots are built.
        A tensor learning rate or momentum is checked when the step runs, on every path: out of
        range, the step fails with an `InvalidArgumentError` naming the argument; under XLA/TPU,
        where TensorFlow compiles assertions away, the step changes nothing instead.
      use_locking: Must be False: the step does not take variable locks (the authors' optimizer
        passed False as well). Present so the argument order matches the other v1 optimizers.
      name: Name of the slot variables' scope and of the update ops. Defaults to "SM3".
      beta_2: In (0, 1]. 1.0 (default) keeps running sums/maxima; below 1 the past decays.
      epsilon: Finite and non-negative, added to nu under the square root. Defaults to 0.
      variant: "II" (default) or "I".
      momentum_dtype: None (the variable's dtype), "float32", "bfloat16" or "float16".
      skip_nonfinite: True or False: skip (and count) steps whose gradients hold a NaN or Inf.
      fused: None uses the fused kernel when it can run, True requires it, False never uses it.

    Raises:
      ValueError / TypeError: naming the argument that is out of range or of the wrong type.
    """

    def __init__(
        self,
        learning_rate,
        momentum=0.0,
        use_locking=False,
        name="SM3",
        *,
        beta_2=1.0,
        epsilon=0.0,
        variant="II",
        momentum_dtype=None,
        skip_nonfinite=False,
        fused=None,
    ):
        _check_use_locking(use_locking)
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
        _check_scalar_argument("learning_rate", learning_rate)
        _check_scalar_argument("momentum", momentum)
        step_config.check_learning_rate(learning_rate)
        config = step_config.validate(variant, momentum, beta_2, epsilon, momentum_dtype)
        skip_nonfinite = step_config.check_skip_nonfinite(skip_nonfinite)
        fused = step.check_fused(fused)
        super().__init__(use_locking=False, name=name)
        self._config = config
        self._learning_rate = learning_rate
        self._momentum = momentum
        self._momentum_dtype = momentum_dtype
        self._skip_nonfinite = skip_nonfinite
        self._fused = fused
        self._fallbacks = fallbacks.FallbackReport(name)
        # Per-call state, set by apply_gradients / _prepare / _create_slots like the base class does
        # for its own tensors (`_learning_rate_tensor`).
        self._step_config = self._config
        self._all_finite = None
        self._assertions = []
        self._hyperparameters_valid = None
        self._nonfinite_counter = None

    @property
    def nonfinite_steps(self):
        """The int64 count of skipped non-finite steps in this graph; None without
        skip_nonfinite."""
        eager = tf.compat.v1.executing_eagerly_outside_functions()
        graph = None if eager else tf.compat.v1.get_default_graph()
        return self._get_non_slot_variable(NONFINITE_STEPS, graph=graph)

    def apply_gradients(
        self, grads_and_vars, global_step=None, name=None, skip_gradients_aggregation=False
    ):
        """Applies one SM3 step; with skip_nonfinite, all variables' steps share one finite flag."""
        grads_and_vars = tuple(grads_and_vars)
        if not self._skip_nonfinite:
            return super().apply_gradients(
                grads_and_vars, global_step, name, skip_gradients_aggregation
            )
        if tf.distribute.has_strategy() and not skip_gradients_aggregation:
            # Under a strategy the base class reduces gradients after this point, so a flag computed
            # here could differ between replicas. Keras `sm3_tf.SM3` supports this case.
            raise NotImplementedError(
                "`skip_nonfinite=True` is not supported under a tf.distribute strategy in the v1 "
                "optimizer; use sm3_tf.SM3 (Keras) or tf.compat.v1.tpu.CrossShardOptimizer."
            )
        with tf.name_scope("all_finite"):
            self._all_finite = guards.all_finite([g for g, _ in grads_and_vars])
        try:
            return super().apply_gradients(
                grads_and_vars, global_step, name, skip_gradients_aggregation
            )
        finally:
            self._all_finite = None

    def _create_slots(self, var_list):
        # Momentum first, then the covers, all scoped under `self._name`: the order in which the
        # authors' optimizer created them, so `tf.compat.v1.train.Saver` checkpoints (which match
        # by variable name: "w/SM3", "w/SM3_1", ...) of their jobs restore into this optimizer.
        zeros = tf.compat.v1.zeros_initializer()
        for var in var_list:
            step_config.check_variable_dtype(var)
            if not hasattr(var, "handle"):
                # Reference variables (TF1's default) are refused: the step updates variables in
                # place
                # through their resource handles, as the fused kernel and TF's training ops need.
                raise _reference_variable_error(var)
            if not var.shape.is_fully_defined():
                raise ValueError(
                    f"SM3 needs variables of fully defined shape; variable {var.name!r} "
                    f"has shape {var.shape}."
                )
            if self._config.has_momentum:
                self._get_or_make_slot_with_initializer(
                    var,
                    zeros,
                    var.shape,
                    tf.as_dtype(self._momentum_dtype or var.dtype.base_dtype),
                    "momentum",
                    self._name,
                )
            for axis, shape in enumerate(covers.accumulator_shapes(var.shape)):
                self._get_or_make_slot_with_initializer(
                    var,
                    zeros,
                    tf.TensorShape(shape),
                    tf_step.compute_dtype(var.dtype),
                    f"accumulator_{axis}",
                    self._name,
                )
        if self._skip_nonfinite:
            self._nonfinite_counter = self._create_non_slot_variable(
                initial_value=np.int64(0),
                name=NONFINITE_STEPS,
                colocate_with=min(var_list, key=lambda v: v.name),
            )

    def _create_or_restore_slot_variable(self, slot_variable_position, slot_name, variable):
        # When a checkpoint is restored before the slots exist, the base class creates the missing
        # slot at once with the variable's shape and dtype: wrong for the covers, shaped (d_i,) and
        # float32. Deferring instead lets `_create_slots` make it, which then restores its value.
        if self.get_slot(variable, slot_name) is None:
            key = tf_optimizer._var_key(variable)
            self._deferred_slot_restorations.setdefault(slot_name, {}).setdefault(key, []).append(
                slot_variable_position
            )
            return
        super()._create_or_restore_slot_variable(slot_variable_position, slot_name, variable)

    def _prepare(self):
        learning_rate = self._call_if_callable(self._learning_rate)
        momentum = self._call_if_callable(self._momentum)
        # Numbers (also those a callable returns) are checked now, tensors when the step runs.
        step_config.check_learning_rate(learning_rate)
        self._learning_rate_tensor = _float32(learning_rate, "learning_rate")
        runtime = {}
        if not _is_python_number(learning_rate):
            runtime["learning_rate"] = self._learning_rate_tensor
        self._step_config = self._config
        if not _is_python_number(self._momentum):
            # A tensor/callable momentum has a slot whatever its value: pass it on as a tensor, so
            # the step uses the buffer even when the value happens to be 0 (buf = p then).
            momentum_tensor = _float32(momentum, "momentum")
            if _is_python_number(momentum):
                step_config.check_momentum(momentum)
            else:
                runtime["momentum"] = momentum_tensor
            self._step_config = dataclasses.replace(self._config, momentum=momentum_tensor)
        self._assertions, self._hyperparameters_valid = guards.check_hyperparameters(**runtime)

    # `handle` is the resource variable itself (`_DenseResourceVariableProcessor` passes it).
    def _resource_apply_dense(self, grad, handle):
        return self._guarded_update(handle, "dense_update", grad)

    def _resource_apply_sparse_duplicate_indices(self, grad, handle, indices):
        # The step sums duplicate rows itself, without tf.unique (data-dependent shape, bad for
        # XLA).
        return self._guarded_update(handle, "sparse_update", grad, indices)

    def _resource_apply_sparse(self, grad, handle, indices):
        return self._resource_apply_sparse_duplicate_indices(grad, handle, indices)

    def _finish(self, update_ops, name_scope):
        self._fallbacks.flush()  # every variable's path is known now: one warning, if any
        if self._all_finite is not None:
            skipped = tf.cast(tf.logical_not(self._all_finite), tf.int64)
            update_ops = list(update_ops) + [
                self._nonfinite_counter.assign_add(skipped, read_value=False)
            ]
        return super()._finish(update_ops, name_scope)

    def _guarded_update(self, var, update_name, *gradient):
        """Calls the step's `update_name` for `var` and its slots, behind the all-finite flag if
        any.

        `gradient` is (grad,) for "dense_update", (grad_values, grad_indices) for "sparse_update".
        """
        accumulators = [
            self.get_slot(var, f"accumulator_{axis}")
            for axis in range(len(covers.accumulator_shapes(var.shape)))
        ]
        buffer = self.get_slot(var, "momentum") if self._config.has_momentum else None
        implementation = step.select(self._fused, var, self._step_config, self._fallbacks)
        update = getattr(implementation, update_name)

        def run():
            # The step returns one op grouping all its writes, so a Session runs the whole step;
            # none of it runs when a run-time check of the learning rate or momentum fails.
            with tf.control_dependencies(self._assertions):
                return update(
                    var,
                    *gradient,
                    accumulators,
                    buffer,
                    self._learning_rate_tensor,
                    self._step_config,
                )

        flags = (self._all_finite, self._hyperparameters_valid)
        flags = [flag for flag in flags if flag is not None]
        if not flags:
            return run()
        return tf.cond(tf.reduce_all(tf.stack(flags)), run, tf.no_op)


def _float32(value, name):
    return tf.cast(tf.convert_to_tensor(value, name=name), tf.float32)


def _is_python_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_scalar_argument(name, value):
    """`learning_rate` / `momentum`: a number, a tensor or variable, or a zero-argument callable."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        raise TypeError(
            f"`{name}` is a Keras LearningRateSchedule, which needs the step as argument; pass "
            f"`lambda: schedule(tf.compat.v1.train.get_or_create_global_step())` instead."
        )
    if isinstance(value, (bool, str)) or not (
        _is_python_number(value)
        or tf.is_tensor(value)
        or isinstance(value, tf.Variable)
        or callable(value)
    ):
        raise TypeError(
            f"`{name}` must be a number, a scalar tensor or a zero-argument callable, "
            f"got {value!r}."
        )


def _reference_variable_error(var):
    return TypeError(
        f"SM3Optimizer trains resource variables only; {var.name!r} is a reference variable. "
        f"Create it with `use_resource=True` (the TF2 default; do not call "
        f"tf.compat.v1.disable_resource_variables())."
    )


def _check_use_locking(use_locking):
    if not isinstance(use_locking, bool):
        # The authors' signature was (learning_rate, momentum, name): a positional name lands here.
        raise TypeError(
            f"`use_locking` must be a bool, got {use_locking!r}; pass the optimizer's "
            f"name as `name=...`."
        )
    if use_locking:
        raise ValueError(
            "`use_locking=True` is not supported: the SM3 step does not lock variables."
        )
