"""Bad calls to the ops fail with an error naming the argument, and change nothing.

The optimizer never makes these calls; they guard direct users of the ops (and future callers).
"""

import kernel_test_support as support
import numpy as np
import pytest
import tensorflow as tf

from sm3_tf import fused_step, kernel_loader
from sm3_tf.step_config import StepConfig


@pytest.fixture(scope="module")
def ops():
    support.require_kernels()
    return kernel_loader.ops()


def dense_call(ops, var, accumulators, buffers=(), grad=None, momentum=0.0, beta_2=1.0):
    ops.sm3_resource_apply_dense(
        var=var.handle,
        accumulators=[a.handle for a in accumulators],
        momentum_buffer=[b.handle for b in buffers],
        grad=tf.zeros(var.shape, var.dtype) if grad is None else grad,
        lr=tf.constant(0.1, tf.float64),
        momentum=tf.constant(momentum, tf.float64),
        beta_2=tf.constant(beta_2, tf.float64),
        epsilon=tf.constant(0.0, tf.float64),
    )


def sparse_call(ops, var, row_accumulator, indices, values):
    ops.sm3_resource_apply_sparse(
        var=var.handle,
        row_accumulator=row_accumulator.handle,
        momentum_buffer=[],
        values=values,
        indices=indices,
        lr=tf.constant(0.1, tf.float64),
        momentum=tf.constant(0.0, tf.float64),
        beta_2=tf.constant(1.0, tf.float64),
        epsilon=tf.constant(0.0, tf.float64),
    )


def matrix_state(shape=(4, 3), dtype=tf.float32):
    var = tf.Variable(tf.ones(shape, dtype))
    return var, [tf.Variable(tf.zeros([d])) for d in shape]


def test_gradient_of_another_shape(ops):
    var, accumulators = matrix_state()
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="grad"):
        dense_call(ops, var, accumulators, grad=tf.ones((3, 4)))
    np.testing.assert_array_equal(var.numpy(), 1.0)


def test_wrong_number_of_accumulators(ops):
    var, accumulators = matrix_state()
    with pytest.raises(tf.errors.InvalidArgumentError, match="`accumulators` must hold 2"):
        dense_call(ops, var, accumulators[:1])


def test_accumulator_of_the_wrong_shape_or_type(ops):
    var, accumulators = matrix_state()
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"`accumulators\[1\]` must have shape"
    ):
        dense_call(ops, var, [accumulators[0], tf.Variable(tf.zeros([4]))])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`accumulators\[0\]` must be float"):
        dense_call(ops, var, [tf.Variable(tf.zeros([4], tf.float64)), accumulators[1]])


def test_momentum_buffer_of_the_wrong_shape(ops):
    var, accumulators = matrix_state()
    with pytest.raises(tf.errors.InvalidArgumentError, match="`momentum_buffer` must have"):
        dense_call(ops, var, accumulators, buffers=[tf.Variable(tf.zeros((4, 4)))], momentum=0.9)


@pytest.mark.parametrize("name,value", [("momentum", 1.0), ("beta_2", 0.0)])
def test_hyper_parameters_out_of_range(ops, name, value):
    var, accumulators = matrix_state()
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{name}` must be in"):
        dense_call(ops, var, accumulators, **{name: value})
    np.testing.assert_array_equal(accumulators[0].numpy(), 0.0)


def test_integer_parameter(ops):
    var = tf.Variable(tf.ones((2, 2), tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`var` must be a float16"):
        dense_call(
            ops,
            var,
            [tf.Variable(tf.zeros([2])), tf.Variable(tf.zeros([2]))],
            grad=tf.zeros((2, 2)),
        )
    assert "float" in fused_step.unavailable_reason(var, StepConfig())


def test_sparse_index_out_of_range(ops):
    var, accumulators = matrix_state()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`indices\[1\]` = 4 is not in"):
        sparse_call(ops, var, accumulators[0], tf.constant([0, 4]), tf.ones((2, 3)))
    np.testing.assert_array_equal(var.numpy(), 1.0)


def test_sparse_duplicate_indices_are_refused_by_the_op(ops):
    """The op updates rows in parallel; fused_step sums duplicates before calling it."""
    var, accumulators = matrix_state()
    with pytest.raises(tf.errors.InvalidArgumentError, match="`indices` must be unique"):
        sparse_call(ops, var, accumulators[0], tf.constant([2, 2]), tf.ones((2, 3)))


def test_sparse_values_of_the_wrong_shape(ops):
    var, accumulators = matrix_state()
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="values|indices"):
        sparse_call(ops, var, accumulators[0], tf.constant([0, 1]), tf.ones((2, 4)))


def test_sparse_step_on_a_scalar(ops):
    var = tf.Variable(1.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="rank >= 1"):
        sparse_call(ops, var, tf.Variable(tf.zeros([1])), tf.constant([0]), tf.ones((1,)))


def test_uninitialized_accumulator(ops):
    var, accumulators = matrix_state()
    with tf.init_scope():
        handle_only = tf.raw_ops.VarHandleOp(
            dtype=tf.float32, shape=[3], shared_name="sm3_never_set"
        )
    with pytest.raises(
        (tf.errors.FailedPreconditionError, tf.errors.NotFoundError), match=r"accumulators\[1\]"
    ):
        ops.sm3_resource_apply_dense(
            var=var.handle,
            accumulators=[accumulators[0].handle, handle_only],
            momentum_buffer=[],
            grad=tf.zeros((4, 3)),
            lr=tf.constant(0.1, tf.float64),
            momentum=tf.constant(0.0, tf.float64),
            beta_2=tf.constant(1.0, tf.float64),
            epsilon=tf.constant(0.0, tf.float64),
        )
