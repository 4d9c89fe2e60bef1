"""Tensor learning rates and momenta are checked when the step runs, on every path.

Outside XLA (fused kernel and TF ops) an out-of-range value fails the step with an error naming
the argument. Under XLA, which compiles assertions away, the step changes nothing instead.
"""

import numpy as np
import pytest
import tensorflow as tf

from sm3_tf import v1

BAD_VALUES = [
    ("learning_rate", -1.0),
    ("learning_rate", np.nan),
    ("learning_rate", np.inf),
    ("momentum", 1.5),
    ("momentum", -0.1),
]
SHAPE = (3, 2)


def training(fused=None, jit_compile=False):
    """A variable, its optimizer with variable learning rate and momentum, and a step function."""
    var = tf.Variable(np.ones(SHAPE, np.float32))
    hyperparameters = dict(learning_rate=tf.Variable(0.1), momentum=tf.Variable(0.9))
    optimizer = v1.SM3Optimizer(**hyperparameters, fused=fused)

    @tf.function(jit_compile=jit_compile)
    def step():
        optimizer.apply_gradients([(tf.ones(SHAPE), var)])

    return var, hyperparameters, optimizer, step


def state(var, optimizer):
    slots = [optimizer.get_slot(var, name) for name in optimizer.get_slot_names()]
    return [var.numpy()] + [slot.numpy() for slot in slots]


@pytest.mark.parametrize("fused", [False, None], ids=["tf_ops", "auto"])
@pytest.mark.parametrize("name, value", BAD_VALUES)
def test_a_bad_tensor_value_fails_the_step_naming_it(name, value, fused):
    var, hyperparameters, optimizer, step = training(fused=fused)
    step()
    before = state(var, optimizer)
    hyperparameters[name].assign(value)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{name}` must be"):
        step()
    for old, new in zip(before, state(var, optimizer)):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("name, value", BAD_VALUES)
def test_under_xla_a_bad_tensor_value_makes_the_step_change_nothing(name, value):
    var, hyperparameters, optimizer, step = training(jit_compile=True)
    step()
    before = state(var, optimizer)
    hyperparameters[name].assign(value)
    step()
    for old, new in zip(before, state(var, optimizer)):
        np.testing.assert_array_equal(old, new)
    hyperparameters[name].assign(0.5)  # valid again: training goes on
    step()
    assert np.all(var.numpy() < before[0])


def test_bad_values_in_a_graph_session_fail_naming_the_argument():
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=np.ones(SHAPE, np.float32))
        learning_rate = tf.compat.v1.placeholder(tf.float32, ())
        train = v1.SM3Optimizer(learning_rate, fused=False).apply_gradients([(tf.ones(SHAPE), var)])
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(train, {learning_rate: 0.1})
            with pytest.raises(tf.errors.InvalidArgumentError, match="`learning_rate` must be"):
                session.run(train, {learning_rate: -1.0})
