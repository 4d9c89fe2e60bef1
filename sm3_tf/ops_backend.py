"""`sm3_tf.SM3` on Keras's JAX and PyTorch backends: the `keras.ops` step, written with `assign`.

The optimizer (`sm3_tf.sm3`) finds a variable's slots; this module reads them, runs
`ops_step.dense_update` and writes the results back with the optimizer's `assign`, each rounded
once into its variable's dtype. Under JAX the writes go to Keras's `StatelessScope`, so `fit`'s
jit-compiled train step is one XLA computation. TensorFlow is never imported here.

With `skip_nonfinite`, one `ops.cond` on "every gradient is finite" picks, for all variables at
once, either their new state (weight decay included) or their current one; the counter
`nonfinite_steps` adds 1 when the old state is kept. `ops.cond` is `lax.cond` under JAX, so the
decision stays on the device.
"""

import contextlib

import keras
from keras import ops

from sm3_tf import ops_step, step


def backend_name():
    return keras.backend.backend()


def fused_unavailable_reason():
    """Why the fused kernel never runs here (a sentence)."""
    return f"Keras runs on the {backend_name()} backend, and the fused kernels are TensorFlow ops"


def colocated_with(optimizer, variable):
    """Slots need no placement here: they are created beside the model's variables."""
    del optimizer, variable
    return contextlib.nullcontext()


def step_path(optimizer, variable):
    """Every variable's step is the `keras.ops` one on this backend."""
    del optimizer, variable
    return step.StepPath(step.KERAS_OPS, fused_unavailable_reason())


def _current_state(optimizer, variable):
    accumulators, buffer = optimizer._state_of(variable)
    return ops_step.State(
        variable.value,
        tuple(a.value for a in accumulators),
        buffer.value if buffer is not None else None,
    )


def _new_state(optimizer, gradient, variable, learning_rate, config):
    """The step's new values of `variable` and its slots, rounded into their dtypes."""
    current = _current_state(optimizer, variable)
    return _rounded_like(ops_step.dense_update(current, gradient, learning_rate, config), current)


def _write(optimizer, variable, state):
    accumulators, buffer = optimizer._state_of(variable)
    for accumulator, value in zip(accumulators, state.accumulators):
        optimizer.assign(accumulator, value)
    if buffer is not None:
        optimizer.assign(buffer, state.buffer)
    optimizer.assign(variable, state.weights)


def update_step(optimizer, gradient, variable, learning_rate):
    """One SM3 step of `variable` (a `keras.Variable`) with a dense `gradient`."""
    config = optimizer.step_config()
    _write(optimizer, variable, _new_state(optimizer, gradient, variable, learning_rate, config))


def _decayed(optimizer, variable, learning_rate):
    """`variable` as Keras's decoupled weight decay leaves it: w - w * weight_decay * lr, computed
    in the variable's dtype as `BaseOptimizer._apply_weight_decay` does."""
    weights = variable.value
    if optimizer.weight_decay is None or not optimizer._use_weight_decay(variable):
        return weights
    lr = ops.cast(learning_rate, variable.dtype)
    decay = ops.cast(optimizer.weight_decay, variable.dtype)
    return weights - weights * decay * lr


def guarded_update_step(optimizer, grads, variables, learning_rate):
    """skip_nonfinite: the weight decay and SM3 step of every variable, or none of them."""
    config = optimizer.step_config()
    finite = ops_step.all_finite(grads)
    counter = optimizer.nonfinite_steps
    optimizer.assign_add(counter, ops.cast(ops.logical_not(finite), counter.dtype))
    current = [_current_state(optimizer, v) for v in variables]

    def step_all():
        states = []
        for grad, variable, state in zip(grads, variables, current):
            decayed = ops_step.State(
                _decayed(optimizer, variable, learning_rate), state.accumulators, state.buffer
            )
            new = ops_step.dense_update(decayed, grad, learning_rate, config)
            states.append(_rounded_like(new, state))
        return states

    for variable, state in zip(variables, ops.cond(finite, step_all, lambda: current)):
        _write(optimizer, variable, state)


def _rounded_like(new, current):
    """`new` cast part by part to the dtypes of `current` (both branches of a cond must agree)."""
    return ops_step.State(
        ops.cast(new.weights, current.weights.dtype),
        tuple(ops.cast(v, c.dtype) for v, c in zip(new.accumulators, current.accumulators)),
        ops.cast(new.buffer, current.buffer.dtype) if current.buffer is not None else None,
    )
