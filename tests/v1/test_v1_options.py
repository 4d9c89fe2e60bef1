"""SM3Optimizer options: tensor/callable learning rate and momentum, skip_nonfinite, bad input.

Numerics are checked against the numpy reference `sm3_reference.SM3Reference`.
"""

import keras
import numpy as np
import pytest
import sm3_reference
import tensorflow as tf

from sm3_tf import v1

TOLERANCE = 1e-5


def random_gradients(shape, steps, seed):
    return list(np.random.default_rng(seed).normal(size=(steps,) + shape).astype(np.float32))


def test_learning_rate_and_momentum_tensors_may_change_between_steps():
    """Variables as learning rate and momentum: the step reads their current values every run."""
    learning_rates, momenta = [0.1, 0.05, 0.2], [0.5, 0.9, 0.0]
    grads = random_gradients((3, 2), 3, seed=0)
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=np.ones((3, 2), np.float32))
        grad = tf.compat.v1.placeholder(tf.float32, (3, 2))
        learning_rate = tf.compat.v1.placeholder(tf.float32, ())
        momentum = tf.compat.v1.get_variable("momentum", initializer=0.5, trainable=False)
        optimizer = v1.SM3Optimizer(learning_rate, momentum)
        train = optimizer.apply_gradients([(grad, var)])
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            reference = sm3_reference.SM3Reference((3, 2), momentum=0.5)
            expected = np.ones((3, 2))
            for g, rate, beta in zip(grads, learning_rates, momenta):
                momentum.load(beta, session)
                reference.momentum = beta
                session.run(train, {grad: g, learning_rate: rate})
                expected = reference.step(expected, g, rate)
                assert sm3_reference.relative_error(session.run(var), expected) < TOLERANCE


def test_callables_are_evaluated_when_the_update_is_built():
    """Zero-argument callables (the v1 convention), here of the global step: a decaying rate."""
    grads = random_gradients((4,), 3, seed=1)
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=np.ones(4, np.float32))
        grad = tf.compat.v1.placeholder(tf.float32, (4,))
        global_step = tf.compat.v1.train.get_or_create_global_step()

        def rate():
            return 0.1 / (1.0 + tf.cast(global_step, tf.float32))

        optimizer = v1.SM3Optimizer(rate, momentum=lambda: 0.9)
        train = optimizer.apply_gradients([(grad, var)], global_step=global_step)
        assert "momentum" in optimizer.get_slot_names()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            reference = sm3_reference.SM3Reference((4,), momentum=0.9)
            expected = np.ones(4)
            for step, g in enumerate(grads):
                session.run(train, {grad: g})
                expected = reference.step(expected, g, 0.1 / (1.0 + step))
                assert sm3_reference.relative_error(session.run(var), expected) < TOLERANCE


def test_tensor_momentum_always_has_a_slot_and_zero_value_means_plain_sm3():
    grads = random_gradients((2, 3), 2, seed=2)
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=np.ones((2, 3), np.float32))
        grad = tf.compat.v1.placeholder(tf.float32, (2, 3))
        optimizer = v1.SM3Optimizer(0.1, momentum=tf.constant(0.0))
        train = optimizer.apply_gradients([(grad, var)])
        assert optimizer.get_slot(var, "momentum").shape == (2, 3)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            reference = sm3_reference.SM3Reference((2, 3), momentum=0.0)
            expected = np.ones((2, 3))
            for g in grads:
                session.run(train, {grad: g})
                expected = reference.step(expected, g, 0.1)
            assert sm3_reference.relative_error(session.run(var), expected) < TOLERANCE


def test_skip_nonfinite_leaves_state_untouched_counts_and_still_increments_global_step():
    grads = random_gradients((3, 4), 3, seed=3)
    grads[1][0, 2] = np.nan
    bias_grads = [np.ones(4, np.float32)] * 3  # finite, but skipped with the NaN step all the same
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=np.ones((3, 4), np.float32))
        bias = tf.compat.v1.get_variable("b", initializer=np.zeros(4, np.float32))
        grad = tf.compat.v1.placeholder(tf.float32, (3, 4))
        bias_grad = tf.compat.v1.placeholder(tf.float32, (4,))
        global_step = tf.compat.v1.train.get_or_create_global_step()
        optimizer = v1.SM3Optimizer(0.1, 0.9, skip_nonfinite=True)
        train = optimizer.apply_gradients([(grad, var), (bias_grad, bias)], global_step=global_step)
        slots = [
            optimizer.get_slot(v, name) for v in (var, bias) for name in optimizer.get_slot_names()
        ]
        state = [var, bias] + [slot for slot in slots if slot is not None]
        assert len(state) == 2 + 3 + 2  # momentum and covers: 1 + 2 for (3, 4), 1 + 1 for (4,)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(train, {grad: grads[0], bias_grad: bias_grads[0]})
            before = session.run(state)
            session.run(train, {grad: grads[1], bias_grad: bias_grads[1]})
            for old, new in zip(before, session.run(state)):
                np.testing.assert_array_equal(old, new)
            session.run(train, {grad: grads[2], bias_grad: bias_grads[2]})
            assert session.run(optimizer.nonfinite_steps) == 1
            assert session.run(global_step) == 3
            reference = sm3_reference.SM3Reference((3, 4), momentum=0.9)
            expected = reference.step(np.ones((3, 4)), grads[0], 0.1)
            expected = reference.step(expected, grads[2], 0.1)
            assert sm3_reference.relative_error(session.run(var), expected) < TOLERANCE


def test_skip_nonfinite_eagerly_with_a_sparse_gradient():
    table = tf.Variable(np.ones((5, 2), np.float32))
    optimizer = v1.SM3Optimizer(0.1, skip_nonfinite=True)
    reference = sm3_reference.SM3Reference((5, 2))
    expected = np.ones((5, 2))
    rows = [
        (np.array([0, 3]), np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)),
        (np.array([1]), np.array([[np.inf, 0.0]], np.float32)),
        (np.array([3, 3]), np.array([[1.0, -1.0], [0.5, 0.5]], np.float32)),
    ]
    for indices, values in rows:
        optimizer.apply_gradients(
            [
                (
                    tf.IndexedSlices(
                        tf.constant(values), tf.constant(indices), tf.constant([5, 2])
                    ),
                    table,
                )
            ]
        )
        if np.all(np.isfinite(values)):
            expected = reference.sparse_step(expected, indices, values, 0.1)
        assert sm3_reference.relative_error(table.numpy(), expected) < TOLERANCE
    assert optimizer.nonfinite_steps.numpy() == 1


def test_skip_nonfinite_under_a_distribution_strategy_is_refused(mirrored_strategy):
    with mirrored_strategy.scope():
        var = tf.Variable(np.ones(3, np.float32))
    optimizer = v1.SM3Optimizer(0.1, skip_nonfinite=True)

    def replica_step():
        optimizer.apply_gradients([(tf.ones(3), var)])

    with pytest.raises(NotImplementedError, match="skip_nonfinite"):
        mirrored_strategy.run(replica_step)


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(variant="III"), ValueError, "`variant`"),
        (dict(momentum=1.0), ValueError, "`momentum`"),
        (dict(momentum="0.9"), TypeError, "`momentum`"),
        (dict(beta_2=0.0), ValueError, "`beta_2`"),
        (dict(epsilon=-1e-8), ValueError, "`epsilon`"),
        (dict(momentum_dtype="int8"), ValueError, "`momentum_dtype`"),
        (dict(learning_rate=-0.1), ValueError, "`learning_rate`"),
        (dict(learning_rate="0.1"), TypeError, "`learning_rate`"),
        (
            dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)),
            TypeError,
            "LearningRateSchedule",
        ),
        (
            dict(use_locking="SM3"),
            TypeError,
            "`use_locking`.*name=",
        ),  # the authors' positional name
        (dict(use_locking=True), ValueError, "`use_locking=True`"),
        (dict(name=""), ValueError, "`name`"),
        (dict(fused="yes"), ValueError, "`fused`"),
        (dict(learning_rate=float("inf")), ValueError, "`learning_rate`"),
        (dict(epsilon=float("inf")), ValueError, "`epsilon`"),
        (dict(momentum=None), TypeError, "`momentum`"),
        (dict(beta_2=None), TypeError, "`beta_2`"),
        (dict(epsilon=None), TypeError, "`epsilon`"),
        (dict(skip_nonfinite="no"), TypeError, "`skip_nonfinite`"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(arguments, error, message):
    arguments = dict(dict(learning_rate=0.1), **arguments)
    with pytest.raises(error, match=message):
        v1.SM3Optimizer(**arguments)


def test_bad_runtime_values_and_variables_are_refused():
    optimizer = v1.SM3Optimizer(lambda: -1.0)
    with pytest.raises(ValueError, match="`learning_rate`"):
        optimizer.apply_gradients([(tf.ones(2), tf.Variable(tf.ones(2)))])
    optimizer = v1.SM3Optimizer(0.1, momentum=lambda: 1.5)
    with pytest.raises(ValueError, match="`momentum`"):
        optimizer.apply_gradients([(tf.ones(2), tf.Variable(tf.ones(2)))])
    with pytest.raises(ValueError, match="floating-point.*int32"):
        v1.SM3Optimizer(0.1).apply_gradients(
            [(tf.ones(2, tf.int32), tf.Variable(tf.ones(2, tf.int32), name="counts"))]
        )
