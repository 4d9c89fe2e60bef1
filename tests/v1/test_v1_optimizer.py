"""`sm3_tf.v1.SM3Optimizer` in a v1 graph run by a Session, in TF2 eager code, and against Keras.

Every run is checked against the float64 numpy reference `sm3_reference.SM3Reference`; the Keras
comparison then shows the two optimizers take the same steps on the same inputs.
"""

import numpy as np
import pytest
import sm3_reference
import tensorflow as tf

import sm3_tf
from sm3_tf import v1

TOLERANCE = 1e-5
LEARNING_RATE = 0.1


def gradients_for(shape, steps, seed=0):
    """Random float32 gradients with some exact zeros (they exercise the 0/0 = 0 convention)."""
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(steps,) + tuple(shape)).astype(np.float32)
    grads[rng.random(grads.shape) < 0.2] = 0.0
    return list(grads)


def graph_dense_steps(initial, grads, resource=True, **options):
    """Weights after each step of SM3Optimizer(LEARNING_RATE, **options) in a graph + Session."""
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=initial, use_resource=resource)
        grad = tf.compat.v1.placeholder(var.dtype.base_dtype, initial.shape)
        train = v1.SM3Optimizer(LEARNING_RATE, **options).apply_gradients([(grad, var)])
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            history = []
            for g in grads:
                session.run(train, {grad: g})
                history.append(session.run(var))
    return history


def reference_dense_steps(initial, grads, **options):
    reference = sm3_reference.SM3Reference(initial.shape, **options)
    weights, history = initial.astype(np.float64), []
    for g in grads:
        weights = reference.step(weights, g, LEARNING_RATE)
        history.append(weights)
    return history


def assert_histories_close(actual, expected, tolerance=TOLERANCE):
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected)):
        error = sm3_reference.relative_error(a, e)
        assert error < tolerance, f"step {step}: relative error {error}"


@pytest.mark.parametrize("shape", [(), (5,), (4, 3), (2, 3, 4)])
@pytest.mark.parametrize("variant", ["II", "I"])
def test_dense_graph_steps_match_reference(shape, variant):
    initial = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    grads = gradients_for(shape, steps=4)
    actual = graph_dense_steps(initial, grads, momentum=0.9, variant=variant)
    assert_histories_close(
        actual, reference_dense_steps(initial, grads, momentum=0.9, variant=variant)
    )


@pytest.mark.parametrize(
    "options",
    [
        dict(momentum=0.0),
        dict(momentum=0.5, beta_2=0.95, epsilon=1e-3),
        dict(momentum=0.9, variant="I", beta_2=0.99),
        dict(momentum=0.9, momentum_dtype="bfloat16"),
    ],
)
def test_dense_graph_options_match_reference(options):
    initial = np.ones((3, 5), np.float32)
    grads = gradients_for((3, 5), steps=4, seed=2)
    assert_histories_close(
        graph_dense_steps(initial, grads, **options),
        reference_dense_steps(initial, grads, **options),
    )


def test_reference_variables_are_refused_naming_the_variable():
    with pytest.raises(TypeError, match="'w:0' is a reference variable.*use_resource=True"):
        graph_dense_steps(np.ones((3, 4), np.float32), [], resource=False)


@pytest.mark.parametrize("variant", ["II", "I"])
def test_embedding_lookup_sparse_steps_match_reference(variant):
    """embedding_lookup gives IndexedSlices; duplicate ids are summed, untouched rows stay."""
    initial = np.random.default_rng(4).normal(size=(6, 3)).astype(np.float32)
    batches = [np.array([1, 4, 1]), np.array([0, 4]), np.array([5, 5, 5, 2])]
    rng = np.random.default_rng(5)
    coefficients = [rng.normal(size=(len(ids), 3)).astype(np.float32) for ids in batches]
    with tf.Graph().as_default() as graph:
        table = tf.compat.v1.get_variable("table", initializer=initial, use_resource=True)
        ids = tf.compat.v1.placeholder(tf.int32, [None])
        coefficient = tf.compat.v1.placeholder(tf.float32, [None, 3])
        loss = tf.reduce_sum(tf.compat.v1.nn.embedding_lookup(table, ids) * coefficient)
        optimizer = v1.SM3Optimizer(LEARNING_RATE, momentum=0.9, variant=variant)
        ((grad, _),) = optimizer.compute_gradients(loss, [table])
        assert isinstance(grad, tf.IndexedSlices)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        train = optimizer.apply_gradients([(grad, table)], global_step=global_step)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            reference = sm3_reference.SM3Reference((6, 3), variant=variant, momentum=0.9)
            expected = initial.astype(np.float64)
            for batch, values in zip(batches, coefficients):
                session.run(train, {ids: batch, coefficient: values})
                expected = reference.sparse_step(expected, batch, values, LEARNING_RATE)
                assert sm3_reference.relative_error(session.run(table), expected) < TOLERANCE
            assert session.run(global_step) == len(batches)


def test_minimize_with_global_step_matches_reference():
    initial = np.ones((2, 3), np.float32)
    grads = gradients_for((2, 3), steps=3, seed=6)
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=initial, use_resource=True)
        coefficient = tf.compat.v1.placeholder(tf.float32, (2, 3))
        global_step = tf.compat.v1.train.get_or_create_global_step()
        train = v1.SM3Optimizer(LEARNING_RATE, 0.9).minimize(
            tf.reduce_sum(var * coefficient), global_step=global_step
        )  # d loss / d var = coefficient
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            history = []
            for g in grads:
                session.run(train, {coefficient: g})
                history.append(session.run(var))
            assert session.run(global_step) == 3
    assert_histories_close(history, reference_dense_steps(initial, grads, momentum=0.9))


@pytest.mark.parametrize("in_function", [False, True])
def test_tf2_eager_apply_gradients_matches_reference(in_function):
    """TF2 code may call a v1 optimizer's apply_gradients eagerly or inside tf.function."""
    initial = np.ones((4, 3), np.float32)
    grads = gradients_for((4, 3), steps=3, seed=7)
    var = tf.Variable(initial)
    optimizer = v1.SM3Optimizer(LEARNING_RATE, momentum=0.9)

    def apply(g):
        optimizer.apply_gradients([(g, var)])  # returns an op in tf.function, which must not escape

    if in_function:
        apply = tf.function(apply)
    history = []
    for g in grads:
        apply(tf.constant(g))
        history.append(var.numpy())
    assert_histories_close(history, reference_dense_steps(initial, grads, momentum=0.9))
    assert optimizer.get_slot(var, "accumulator_1").shape == (3,)


@pytest.mark.parametrize(
    "options", [dict(momentum=0.9), dict(momentum=0.5, variant="I", beta_2=0.9, epsilon=1e-4)]
)
def test_v1_graph_and_keras_take_the_same_steps(options):
    initial = np.random.default_rng(8).normal(size=(5, 4)).astype(np.float32)
    grads = gradients_for((5, 4), steps=4, seed=9)
    graph_history = graph_dense_steps(initial, grads, **options)
    keras_variable = tf.Variable(initial)
    keras_optimizer = sm3_tf.SM3(learning_rate=LEARNING_RATE, **options)
    keras_history = []
    for g in grads:
        keras_optimizer.apply_gradients([(tf.constant(g), keras_variable)])
        keras_history.append(np.array(keras_variable.numpy()))
    assert_histories_close(graph_history, keras_history, tolerance=1e-6)
    assert_histories_close(graph_history, reference_dense_steps(initial, grads, **options))


def test_slots_have_cover_shapes_and_no_momentum_slot_for_zero_momentum():
    with tf.Graph().as_default():
        var = tf.compat.v1.get_variable("w", shape=(4, 3, 2), use_resource=True)
        vector = tf.compat.v1.get_variable("b", shape=(7,), use_resource=True)
        optimizer = v1.SM3Optimizer(LEARNING_RATE)
        optimizer.minimize(tf.reduce_sum(var) + tf.reduce_sum(vector))
        assert optimizer.get_slot_names() == ["accumulator_0", "accumulator_1", "accumulator_2"]
        assert [optimizer.get_slot(var, f"accumulator_{i}").shape for i in range(3)] == [
            (4,),
            (3,),
            (2,),
        ]
        assert optimizer.get_slot(vector, "accumulator_0").shape == (7,)
        assert optimizer.get_slot(vector, "accumulator_1") is None
