"""SM3 for Keras 2: TensorFlow 2.15's `tf.keras`, and `tf_keras` under `TF_USE_LEGACY_KERAS=1`.

A thin adapter of Keras 2's optimizer protocol (`build`, `update_step`, `_update_step`; Keras
2.15's `tf.keras.optimizers.Optimizer`, the one Keras 2.11 introduced) to the one SM3 step
contract: the covers come from `sm3_tf.covers`, the hyper-parameters and their validation from
`sm3_tf.hyperparameters`, and each variable's step is `step.select(...)`'s `dense_update` /
`sparse_update` (the fused kernel on CPU, the TF ops under XLA). `sm3_tf.SM3` is this class where
`tf.keras` is Keras 2 (see `sm3_tf.which_keras`); the Keras 3 one is `sm3_tf.sm3.SM3`.
"""

import collections

import tensorflow as tf

from sm3_tf import (
    covers,
    fallbacks,
    guards,
    hyperparameters,
    step,
    step_config,
    tf_step,
    which_keras,
)

if not which_keras.tf_keras_is_keras_2():
    raise ImportError(
        f"sm3_tf.keras2 is the optimizer for Keras 2, but tf.keras is Keras "
        f"{which_keras.tf_keras_version()} here: use sm3_tf.SM3 (sm3_tf.sm3.SM3)."
    )

_Optimizer = tf.keras.optimizers.Optimizer
_Schedule = tf.keras.optimizers.schedules.LearningRateSchedule

# A gradient with the step's all-finite flag, so that `tf.distribute` hands each replica's
# variable update its own copy of both (skip_nonfinite; see `_internal_apply_gradients`).
_GuardedGradient = collections.namedtuple("_GuardedGradient", ["value", "finite"])


@tf.keras.saving.register_keras_serializable(package="sm3_tf")
class SM3(hyperparameters.HyperParameters, _Optimizer):
    """Optimizer that implements SM3 (Anil, Gupta, Koren, Singer, NeurIPS 2019), for Keras 2.

    The algorithm, the arguments and the numerics are those of the Keras 3 `sm3_tf.SM3` (see
    `sm3_tf.sm3.SM3` and the README): `learning_rate=0.1, momentum=0.9, beta_2=1.0, epsilon=0.0,
    variant="II", momentum_dtype=None, skip_nonfinite=False, fused=None`, then Keras's
    `weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
    ema_overwrite_frequency`. The SM3 arguments are live attributes, validated when assigned.
    Per variable, the optimizer keeps one float32 cover per axis ("accumulator_<axis>/<var>") and,
    when momentum > 0, a momentum buffer ("momentum/<var>").

    Keras 2 differs from Keras 3 in three arguments:
      loss_scale_factor, gradient_accumulation_steps: Keras 2 has neither; they must stay None
        (wrap the optimizer in `tf.keras.mixed_precision.LossScaleOptimizer` for loss scaling).
      jit_compile: Keras 2's own (default True): with a GPU, Keras compiles each step with XLA,
        which takes the TF-ops path. Without a GPU it is ignored, and CPU steps are fused.
      name: defaults to "SM3", as Keras 2's optimizers default to their class name.

    Raises:
      ValueError / TypeError: naming the argument that is out of range or of the wrong type.
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
        name=None,
        jit_compile=True,
        **kwargs,
    ):
        # Every argument is checked before the base class creates any variable.
        learning_rate = _as_learning_rate(learning_rate)
        arguments = self.checked_hyperparameters(
            momentum=momentum,
            beta_2=beta_2,
            epsilon=epsilon,
            variant=variant,
            momentum_dtype=momentum_dtype,
            skip_nonfinite=skip_nonfinite,
            fused=fused,
        )
        for argument, value in (
            ("loss_scale_factor", loss_scale_factor),
            ("gradient_accumulation_steps", gradient_accumulation_steps),
        ):
            if value is not None:
                raise ValueError(
                    f"`{argument}` is a Keras 3 option; Keras 2 (tf.keras is Keras "
                    f"{which_keras.tf_keras_version()} here) has no such option, so it must "
                    f"be None, got {value!r}."
                )
        super().__init__(
            name=name or "SM3",
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            jit_compile=jit_compile,
            **kwargs,
        )
        self._learning_rate = self._build_learning_rate(learning_rate)
        self._set_hyperparameters(**arguments)
        self._fallbacks = fallbacks.FallbackReport(self.name)

    @property
    def learning_rate(self):
        """The current learning rate; assigning a number checks it first (finite, >= 0)."""
        return _Optimizer.learning_rate.fget(self)

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        _Optimizer.learning_rate.fset(self, _as_learning_rate(learning_rate))

    def build(self, var_list):
        """Creates the covers (and the momentum buffers when momentum > 0) for `var_list`."""
        if getattr(self, "_built", False):
            return
        for variable in var_list:
            step_config.check_variable_dtype(variable)
        super().build(var_list)
        self._built = True
        # Flat lists in `var_list`'s order, as Keras 2's own optimizers keep their slots:
        # `_cover_slices[i]` says which covers belong to variable i.
        self._accumulators = []
        self._momentums = []
        cover_slices = []
        for variable in var_list:
            start = len(self._accumulators)
            with self._distribution_strategy.extended.colocate_vars_with(variable):
                for axis, shape in enumerate(covers.accumulator_shapes(variable.shape)):
                    self._accumulators.append(
                        self.add_variable(
                            shape=shape,
                            dtype=tf_step.compute_dtype(variable.dtype),
                            name=f"accumulator_{axis}/{variable._shared_name}",
                        )
                    )
                self._momentums.append(
                    self.add_variable(
                        shape=variable.shape,
                        dtype=self.momentum_dtype or variable.dtype,
                        name=f"momentum/{variable._shared_name}",
                    )
                    if self.momentum > 0
                    else None
                )
            cover_slices.append((start, len(self._accumulators)))
        self._cover_slices = tuple(cover_slices)
        if self.skip_nonfinite:
            # Incremented in replica context (`_internal_apply_gradients`), hence the aggregation.
            self.nonfinite_steps = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                name="nonfinite_steps",
            )
            self._variables.append(self.nonfinite_steps)
        self._record_built_state()

    def step_path(self, variable):
        """Which implementation runs `variable`'s step here, and why: a `sm3_tf.step.StepPath`.

        Raises:
          RuntimeError: `fused=True` and the kernel cannot run here, as the step would.
        """
        return step.path(self.fused, variable, self.step_config())

    def update_step(self, gradient, variable):
        """Applies one SM3 step to `variable` (fused kernel or TF ops, see `sm3_tf.step`)."""
        index = self._index_dict[self._var_key(variable)]
        start, end = self._cover_slices[index]
        accumulators = list(self._accumulators[start:end])
        buffer = self._momentums[index]
        config = self.step_config()
        implementation = step.select(self.fused, variable, config, self._fallbacks)
        lr = tf.cast(self.learning_rate, tf.float32)
        if isinstance(gradient, tf.IndexedSlices):
            return implementation.sparse_update(
                variable, gradient.values, gradient.indices, accumulators, buffer, lr, config
            )
        return implementation.dense_update(variable, gradient, accumulators, buffer, lr, config)

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        result = super().apply_gradients(grads_and_vars, *args, **kwargs)
        self._fallbacks.flush()  # once every variable's path is known: one warning, if any
        return result

    def _deduplicate_sparse_grad(self, grads):
        # The step sums duplicate rows itself (without tf.unique under XLA).
        return grads

    # With skip_nonfinite, one flag "every gradient is finite", computed after the gradients are
    # aggregated (so every replica decides alike), guards each variable's weight decay and step.
    def _apply_weight_decay(self, variables):
        if not self.skip_nonfinite:
            super()._apply_weight_decay(variables)
        # else: applied inside the guarded step, `_update_step`

    def _internal_apply_gradients(self, grads_and_vars):
        if not self.skip_nonfinite:
            return super()._internal_apply_gradients(grads_and_vars)
        finite = guards.all_finite([gradient for gradient, _ in grads_and_vars])
        self.nonfinite_steps.assign_add(tf.cast(tf.logical_not(finite), tf.int64))
        guarded = [(_GuardedGradient(g, finite), v) for g, v in grads_and_vars]
        return super()._internal_apply_gradients(guarded)

    def _update_step(self, gradient, variable):
        if not isinstance(gradient, _GuardedGradient):
            return super()._update_step(gradient, variable)
        update_step = super()._update_step

        def update():
            with tf.control_dependencies(self._decay_weight(variable)):
                update_step(gradient.value, variable)
            return tf.no_op()  # the branch's writes run in it (TF2 control flow)

        return tf.cond(gradient.finite, update, tf.no_op)

    def _decay_weight(self, variable):
        """Keras's decoupled weight decay of one variable: w -= w * weight_decay * lr."""
        if self.weight_decay is None or not self._use_weight_decay(variable):
            return []
        lr = tf.cast(self.learning_rate, variable.dtype)
        decay = tf.cast(self.weight_decay, variable.dtype)
        return [variable.assign_sub(variable * decay * lr)]

    def get_config(self):
        """Keras 2's optimizer config, the learning rate and SM3's hyper-parameters as they are."""
        config = super().get_config()
        learning_rate = self._serialize_hyperparameter(self._learning_rate)
        if not isinstance(learning_rate, dict):  # a schedule's config stays as it is
            # The shortest decimal of the float32 variable: 0.05, as written, not 0.0500000007.
            learning_rate = step_config.as_float("learning_rate", learning_rate)
        config["learning_rate"] = learning_rate
        config.update(self.hyperparameter_config())
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds an SM3 from `get_config`'s dict (`fused=True` falls back where no kernels)."""
        return super().from_config(hyperparameters.loadable_config(config), custom_objects)


def _as_learning_rate(learning_rate):
    """Checks a number's range (also of 1 or a scalar tensor); schedules and callables pass."""
    if isinstance(learning_rate, _Schedule):
        return learning_rate
    if callable(learning_rate) and hasattr(learning_rate, "get_config"):
        raise TypeError(
            f"`learning_rate` {learning_rate!r} is a schedule of another Keras than tf.keras "
            f"(Keras {which_keras.tf_keras_version()} here); use a "
            f"tf.keras.optimizers.schedules.LearningRateSchedule."
        )
    if callable(learning_rate):
        return learning_rate
    return step_config.check_learning_rate(step_config.as_float("learning_rate", learning_rate))
