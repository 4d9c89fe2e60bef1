"""`sm3_tf.SM3` on Keras's TensorFlow backend: the fused kernel, the TF ops and XLA.

The optimizer (`sm3_tf.sm3`) finds a variable's slots; this module hands them, as tf.Variables, to
the implementation `sm3_tf.step` picks (the fused C++ kernel, or `tf_step` under XLA and as the
fallback), dense or row-sparse (`tf.IndexedSlices`, as Keras gives for `Embedding`). Each choice
is told to the optimizer's `fallbacks.FallbackReport`, which `SM3.apply` flushes: one warning if
variables left the kernel. It also owns what only TensorFlow has: slot placement under
`tf.distribute`, and `skip_nonfinite` as one `tf.cond` per variable inside the strategy's update,
decided after the all-reduce.
"""

import keras
import tensorflow as tf

from sm3_tf import guards, step


def fused_unavailable_reason():
    """None when the kernel library loads in this process, else why not (a sentence)."""
    return step.kernels_unavailable_reason()


def tf_variable(variable):
    """The tf.Variable of a Keras variable (a tf.Variable passes through)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def colocated_with(optimizer, variable):
    """Parameter servers must keep a variable's state beside it."""
    return optimizer._distribution_strategy.extended.colocate_vars_with(tf_variable(variable))


def step_path(optimizer, variable):
    """`step.path` of `variable` under the optimizer's `fused` choice and current config."""
    return step.path(optimizer.fused, tf_variable(variable), optimizer.step_config())


def update_step(optimizer, gradient, variable, learning_rate):
    """One SM3 step of `variable` (the tf.Variable Keras hands over), dense or row-sparse."""
    accumulators, buffer = optimizer._state_of(variable)
    accumulators = [a.value for a in accumulators]
    buffer = buffer.value if buffer is not None else None
    config = optimizer.step_config()
    implementation = step.select(optimizer.fused, variable, config, optimizer._fallbacks)
    lr = tf.cast(learning_rate, tf.float32)
    if isinstance(gradient, tf.IndexedSlices):
        return implementation.sparse_update(
            variable, gradient.values, gradient.indices, accumulators, buffer, lr, config
        )
    return implementation.dense_update(variable, gradient, accumulators, buffer, lr, config)


def _decay_weight(optimizer, variable, learning_rate):
    """Keras's decoupled weight decay of one tf.Variable: w -= w * weight_decay * lr."""
    if optimizer.weight_decay is None or not optimizer._use_weight_decay(variable):
        return []
    lr = tf.cast(learning_rate, variable.dtype)
    decay = tf.cast(optimizer.weight_decay, variable.dtype)
    return [variable.assign_sub(variable * decay * lr)]


# With skip_nonfinite the whole step, weight decay included, is guarded by one flag computed
# after the gradients are all-reduced, so every replica takes the same decision.
def guarded_update_step(optimizer, grads, variables, learning_rate):
    """skip_nonfinite: the weight decay and SM3 step of every variable, or none of them."""
    variables = [tf_variable(v) for v in variables]
    grads_and_vars = optimizer._all_reduce_sum_gradients(list(zip(grads, variables)))
    finite = guards.all_finite([g for g, _ in grads_and_vars])
    optimizer.nonfinite_steps.assign_add(
        tf.cast(tf.logical_not(finite), optimizer.nonfinite_steps.dtype)
    )

    def distributed_update(distribution, grads_and_vars, learning_rate, finite):
        def guarded_update(var, grad, learning_rate, finite):
            def update():
                with tf.control_dependencies(_decay_weight(optimizer, var, learning_rate)):
                    return _as_op(optimizer.update_step(grad, var, learning_rate))

            return tf.cond(finite, update, tf.no_op)

        for grad, var in grads_and_vars:
            distribution.extended.update(
                var, guarded_update, args=(grad, learning_rate, finite), group=False
            )

    tf.__internal__.distribute.interim.maybe_merge_call(
        distributed_update, optimizer._distribution_strategy, grads_and_vars, learning_rate, finite
    )


def _as_op(result):
    # tf.cond wants both branches to return the same structure: an op in graphs, nothing eagerly.
    return tf.group(result) if result is not None else tf.no_op()
