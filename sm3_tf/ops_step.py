"""The SM3 step in `keras.ops`: what `sm3_tf.SM3` runs on Keras's JAX and PyTorch backends.

The same maths and contract as `tf_step` (the TensorFlow backend's step), written once in
backend-neutral `keras.ops` as pure functions, optax `transform.py` style: each takes values and
returns new values, and the optimizer writes them with `assign` (`sm3_tf.ops_backend`). Pure
functions are what JAX's stateless training step wants, and they let `skip_nonfinite` choose
between the new and the old state with one `ops.cond`.

For a gradient g of a parameter w with covers acc_1..acc_p (`covers.py`):

  SM3-II:  nu    = beta_2 * min_i acc_i + w_new * g^2
           acc_i <- max of nu over all axes but i
  SM3-I:   acc_i <- beta_2 * acc_i + w_new * max of g^2 over all axes but i
           nu    = min_i acc_i
  p        = g / sqrt(nu + epsilon)        (p = 0 where nu + epsilon == 0, the paper's 0/0 = 0)
  buf     <- momentum * buf + (1 - momentum) * p ;  w <- w - lr * buf
           (no buffer when momentum == 0: w <- w - lr * p)

with w_new = 1 for running sums (beta_2 == 1) and 1 - beta_2 otherwise. Rank-0/1 parameters keep
one accumulator per element (diagonal Adagrad). The arithmetic is float32 (float64 for float64
variables) whatever the variable's dtype; the caller rounds each result once into its variable.

Dense gradients only: Keras's JAX and PyTorch backends differentiate `Embedding` into a dense
gradient, so there is no row-sparse step here (on TensorFlow, `tf_step.sparse_update` has one).
Everything is static-shaped with no host work: under JAX's `jit` XLA compiles the whole step.
"""

import math
import typing

import keras
from keras import ops

from sm3_tf import covers, step_config


class State(typing.NamedTuple):
    """One parameter's values and its SM3 state, as tensors (a JAX pytree).

    Attributes:
      weights: the parameter.
      accumulators: its covers, a tuple shaped as `covers.accumulator_shapes(weights.shape)`.
      buffer: the momentum buffer (shaped as the parameter), or None when momentum == 0.
    """

    weights: typing.Any
    accumulators: tuple
    buffer: typing.Any = None


def compute_dtype(dtype):
    """The arithmetic and accumulator dtype (a string) for a variable of `dtype`."""
    return step_config.compute_dtype(keras.backend.standardize_dtype(dtype))


def broadcast_along(vector, axis, rank):
    """Accumulator `vector` (d_axis,) reshaped to rank `rank`, size 1 on every other axis."""
    return ops.reshape(vector, covers.broadcast_shape(axis, rank))


def min_of_covers(accumulator_values, rank):
    """min_i acc_i, broadcast to the parameter's rank (rank-0/1: the accumulator itself)."""
    if rank < 2:
        return accumulator_values[0]
    smallest = broadcast_along(accumulator_values[0], 0, rank)
    for axis, value in enumerate(accumulator_values[1:], start=1):
        smallest = ops.minimum(smallest, broadcast_along(value, axis, rank))
    return smallest


def max_over_other_axes(x, rank):
    """[max of x over all axes but i, for each axis i]: what each cover keeps of x."""
    if rank < 2:
        return [x]
    return [ops.max(x, axis=tuple(covers.other_axes(axis, rank))) for axis in range(rank)]


def _decay(value, beta_2):
    return value if beta_2 == 1.0 else beta_2 * value


def _weighted(squared, weight):
    return squared if weight == 1.0 else weight * squared


def second_moments(g, accumulator_values, config):
    """(nu, new accumulator values) for gradient `g` (compute dtype) under `config`."""
    rank = len(g.shape)
    squared = _weighted(ops.square(g), config.new_sample_weight)
    if config.variant == "II" or rank < 2:
        nu = _decay(min_of_covers(accumulator_values, rank), config.beta_2) + squared
        return nu, max_over_other_axes(nu, rank)
    new_values = [
        _decay(value, config.beta_2) + update
        for value, update in zip(accumulator_values, max_over_other_axes(squared, rank))
    ]
    nu = min_of_covers(new_values, rank) * ops.ones_like(g)
    return nu, new_values


def precondition(g, nu, epsilon):
    """p = g / sqrt(nu + epsilon), defined as 0 where nu + epsilon == 0."""
    denominator = nu + epsilon if epsilon else nu
    positive = ops.greater(denominator, 0)
    root = ops.sqrt(ops.where(positive, denominator, ops.ones_like(denominator)))
    return ops.where(positive, g / root, ops.zeros_like(g))


def momentum_step(p, buffer_value, momentum):
    """buf <- momentum * buf + (1 - momentum) * p, in the compute dtype of `p`."""
    return momentum * ops.cast(buffer_value, p.dtype) + (1.0 - momentum) * p


def dense_update(state, gradient, learning_rate, config):
    """One SM3 step: the new `State` of one parameter, in its compute dtype.

    Args:
      state: the parameter's current `State` (any float dtypes).
      gradient: its dense gradient, shaped as the parameter.
      learning_rate: a scalar (tensor or number).
      config: a `StepConfig`; momentum 0 exactly when `state.buffer` is None.

    Returns:
      The new `State`; the caller rounds each part to its variable's dtype. A zero-size
      parameter's state comes back unchanged: a maximum over no entries is 0, which changes no
      cover (and an empty reduction has no maximum in some backends).
    """
    if math.prod(state.weights.shape) == 0:
        return state
    dtype = compute_dtype(state.weights.dtype)
    g = ops.cast(gradient, dtype)
    accumulators = [ops.cast(a, dtype) for a in state.accumulators]
    nu, new_accumulators = second_moments(g, accumulators, config)
    step = precondition(g, nu, config.epsilon)
    buffer = None
    if state.buffer is not None:
        step = buffer = momentum_step(step, state.buffer, config.momentum)
    weights = ops.cast(state.weights, dtype) - ops.cast(learning_rate, dtype) * step
    return State(weights, tuple(new_accumulators), buffer)


def all_finite(gradients):
    """A scalar bool tensor: every value of every gradient is finite."""
    checks = [ops.all(ops.isfinite(g)) for g in gradients if g is not None]
    return ops.all(ops.stack(checks)) if checks else ops.convert_to_tensor(True)
