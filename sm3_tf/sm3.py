"""The SM3 optimizer for Keras 3 (TensorFlow backend)."""

import keras
import tensorflow as tf

from sm3_tf import covers, fallbacks, step, step_config, tf_step


@keras.saving.register_keras_serializable(package="sm3_tf")
class SM3(keras.optimizers.Optimizer):
    """Optimizer that implements SM3 (Anil, Gupta, Koren, Singer, NeurIPS 2019).

    SM3 is an adaptive method like Adagrad whose second-moment state is sub-linear in the number of
    parameters: a variable of shape (d_1, ..., d_p), p >= 2, keeps one accumulator vector per axis,
    d_1 + ... + d_p floats, instead of one per parameter (scalars and vectors keep one per element,
    which is diagonal Adagrad). For a gradient g:

    SM3-II (`variant="II"`, the default, tighter):
        nu    = beta_2 * min_i acc_i + (1 - beta_2') * g^2      (acc_i broadcast along axis i)
        acc_i = max of nu over every axis but i
    SM3-I (`variant="I"`):
        acc_i = beta_2 * acc_i + (1 - beta_2') * max of g^2 over every axis but i
        nu    = min_i acc_i
    then, with beta_2' = 0 when beta_2 == 1 (the paper's running sums):
        p     = g / sqrt(nu + epsilon)          (0 where nu + epsilon == 0)
        buf   = momentum * buf + (1 - momentum) * p
        w     = w - learning_rate * buf         (momentum == 0: w = w - learning_rate * p)

    With `momentum=0` no momentum slot is created at all: the optimizer's state is then only the
    covers. Accumulators are float32 also for float16/bfloat16 variables (mixed precision); the
    update is computed in float32 and rounded once.

    Sparse gradients (`tf.IndexedSlices`, as Keras gives for `Embedding`): duplicate indices are
    summed, and only the touched rows of the variable, of the axis-0 accumulator and of the momentum
    buffer are updated (lazy momentum). As in the authors' implementation the rows alone cover the
    touched entries (nu = acc_0[row] + g^2 for SM3-II); the other axes' accumulators are left alone.
    Nothing is densified to the variable's shape.

    On CPU, each variable's step runs as one fused in-place C++ op when the kernels are built and
    the
    step is not compiled by XLA; the XLA/TPU path uses the same maths in plain TF ops.

    Args:
      learning_rate: A float, a `keras.optimizers.schedules.LearningRateSchedule` (see
        `sm3_tf.schedules.WarmupSchedule` for the authors' warm-up) or a callable returning the
        value.
        Must be non-negative. Defaults to 0.1.
      momentum: Heavy-ball momentum in [0, 1). Defaults to 0.9, as in the paper's experiments.
        0 disables the momentum slot.
      beta_2: In (0, 1]. 1.0 (default) keeps the paper's running sums/maxima; below 1 the past is
        decayed by `beta_2` every step and the new g^2 weighted by (1 - beta_2).
      epsilon: Non-negative constant added to nu under the square root. Defaults to 0: the paper's
        0/0 = 0 convention makes it unnecessary.
      variant: "II" (default) or "I".
      momentum_dtype: None (the variable's dtype), "float32", or "bfloat16"/"float16" to halve the
        momentum memory; the arithmetic stays float32.
      skip_nonfinite: If True, a step whose gradients hold a NaN or Inf leaves the weights,
        accumulators and momentum untouched, and is counted in `nonfinite_steps`. Accumulators are
        running maxima/sums: one NaN would otherwise poison them for the rest of training.
      fused: None (default) uses the fused kernel whenever it can run, True requires it (an error
        says why it cannot), False always uses TF ops.
      {{base_optimizer_keyword_args}}

    Reference:
      - [Anil et al., 2019](https://arxiv.org/abs/1901.11150)
    """

    def __init__(
        self,
        learning_rate=0.1,
        momentum=0.9,
        beta_2=1.0,
        epsilon=0.0,
        variant="II",
        momentum_dtype=None,
        skip_nonfinite=False,
        fused=None,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name="SM3",
        **kwargs,
    ):
        step_config.check_learning_rate(learning_rate)
        if isinstance(learning_rate, int) and not isinstance(learning_rate, bool):
            learning_rate = float(learning_rate)  # Keras wants a float; 1 is a fine way to say 1.0
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self._config = step_config.validate(variant, momentum, beta_2, epsilon, momentum_dtype)
        self.momentum = momentum
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.variant = variant
        self.momentum_dtype = momentum_dtype
        self.skip_nonfinite = bool(skip_nonfinite)
        self.fused = step.check_fused(fused)
        self._fallbacks = fallbacks.FallbackReport(name)

    def build(self, var_list):
        """Creates the covers (and the momentum buffers when momentum > 0) for `var_list`."""
        if self.built:
            return
        for variable in var_list:
            step_config.check_variable_dtype(variable)
        super().build(var_list)
        # Flat lists keep checkpoints simple; `_cover_slices[i]` says which covers belong to var i.
        self._accumulators = []
        self._cover_slices = []
        self._momentums = []
        for variable in var_list:
            if self._overwrite_variable_with_gradient(variable):
                self._cover_slices.append(None)
                self._momentums.append(None)
                continue
            start = len(self._accumulators)
            with self._colocated_with(variable):
                for axis, shape in enumerate(covers.accumulator_shapes(variable.shape)):
                    self._accumulators.append(
                        self.add_variable(
                            shape=shape,
                            dtype=tf_step.compute_dtype(variable.dtype),
                            name=f"{_slot_prefix(variable)}_accumulator_{axis}",
                        )
                    )
                self._cover_slices.append((start, len(self._accumulators)))
                if self._config.has_momentum:
                    self._momentums.append(
                        self.add_variable(
                            shape=variable.shape,
                            dtype=self.momentum_dtype or variable.dtype,
                            name=f"{_slot_prefix(variable)}_momentum",
                        )
                    )
        if self.skip_nonfinite:
            self.nonfinite_steps = self.add_variable(
                shape=(), dtype="int64", aggregation="only_first_replica", name="nonfinite_steps"
            )

    def _colocated_with(self, variable):
        # Parameter servers must keep a variable's state beside it.
        value = variable.value if isinstance(variable, keras.Variable) else variable
        return self._distribution_strategy.extended.colocate_vars_with(value)

    def _state_of(self, variable):
        """The (covers, momentum buffer or None) of `variable`, as tf.Variables."""
        index = self._get_variable_index(variable)
        start, end = self._cover_slices[index]
        accumulators = [a.value for a in self._accumulators[start:end]]
        buffer = self._momentums[index].value if self._config.has_momentum else None
        return accumulators, buffer

    def update_step(self, gradient, variable, learning_rate):
        """Applies one SM3 step to `variable` (fused kernel or TF ops, see `sm3_tf.step`)."""
        accumulators, buffer = self._state_of(variable)
        implementation = step.select(self.fused, variable, self._config, self._fallbacks)
        lr = tf.cast(learning_rate, tf.float32)
        if isinstance(gradient, tf.IndexedSlices):
            return implementation.sparse_update(
                variable, gradient.values, gradient.indices, accumulators, buffer, lr, self._config
            )
        return implementation.dense_update(
            variable, gradient, accumulators, buffer, lr, self._config
        )

    def apply(self, grads, trainable_variables=None):
        result = super().apply(grads, trainable_variables)
        self._fallbacks.flush()  # once every variable's path is known: one warning, if any
        return result

    # With skip_nonfinite the whole step is guarded by one flag computed after the gradients are
    # all-reduced, so every replica takes the same decision.
    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self.skip_nonfinite:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        trainable_variables = [
            v.value if isinstance(v, keras.Variable) else v for v in trainable_variables
        ]
        grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, trainable_variables)))
        finite = all_finite([g for g, _ in grads_and_vars])
        self.nonfinite_steps.assign_add(tf.cast(tf.logical_not(finite), tf.int64))
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_guarded_update_step,
            self._distribution_strategy,
            grads_and_vars,
            learning_rate,
            finite,
        )

    def _distributed_guarded_update_step(self, distribution, grads_and_vars, learning_rate, finite):
        def guarded_update(var, grad, learning_rate, finite):
            return tf.cond(
                finite, lambda: _as_op(self.update_step(grad, var, learning_rate)), tf.no_op
            )

        for grad, var in grads_and_vars:
            distribution.extended.update(
                var, guarded_update, args=(grad, learning_rate, finite), group=False
            )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "variant": self.variant,
                "momentum_dtype": self.momentum_dtype,
                "skip_nonfinite": self.skip_nonfinite,
                "fused": self.fused,
            }
        )
        return config


def all_finite(grads):
    """A scalar bool tensor: every gradient value is finite (IndexedSlices: their values)."""
    checks = [
        tf.reduce_all(tf.math.is_finite(g.values if isinstance(g, tf.IndexedSlices) else g))
        for g in grads
        if g is not None
    ]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def _as_op(result):
    # tf.cond wants both branches to return the same structure: an op in graphs, nothing eagerly.
    return tf.group(result) if result is not None else tf.no_op()


def _slot_prefix(variable):
    name = getattr(variable, "path", None) or variable.name
    return str(name).replace("/", "_").replace(":", "_")


SM3.__doc__ = SM3.__doc__.replace(
    "{{base_optimizer_keyword_args}}", keras.src.optimizers.optimizer.base_optimizer_keyword_args
)
