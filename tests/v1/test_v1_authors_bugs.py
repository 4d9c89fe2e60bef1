"""The cases where the authors' TF implementation (google-research `sm3/sm3.py`) goes wrong.

See docs/v1.md, "Differences from the authors' optimizer", for what their code does in each case.
Here each case is run through `sm3_tf.v1.SM3Optimizer` and checked against the numpy reference.
"""

import numpy as np
import pytest
import sm3_reference
import tensorflow as tf

from sm3_tf import v1

ONE_ULP = {"float16": 2.0**-10, "bfloat16": 2.0**-7}  # relative spacing of values near 1


def run_graph(initial, feeds, build_gradient, make_options):
    """Runs SM3Optimizer(0.1, **make_options()) on variable `w`, gradient build_gradient(w, x).

    `make_options` is called inside the graph, so its tensors belong to it.
    """
    with tf.Graph().as_default() as graph:
        var = tf.compat.v1.get_variable("w", initializer=initial)
        inputs = tf.compat.v1.placeholder(tf.as_dtype(feeds[0].dtype), [None] * feeds[0].ndim)
        optimizer = v1.SM3Optimizer(0.1, **make_options())
        gradient = build_gradient(var, inputs)
        train = optimizer.apply_gradients([(gradient, var)])
        slots = {name: optimizer.get_slot(var, name) for name in optimizer.get_slot_names()}
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            history = []
            for x in feeds:
                session.run(train, {inputs: x})
                history.append(session.run(var))
            return history, session.run(slots), gradient


@pytest.mark.parametrize(
    "batches", [[[2], [2]], [[0, 3, 0], [4, 4, 1, 0]]], ids=["one-row", "duplicate-rows"]
)
def test_rank_1_sparse_updates(batches):
    """Theirs: scatter_add returns the whole accumulator, whose shape [n] then meets values [k]."""
    initial = np.linspace(-1.0, 1.0, 5).astype(np.float32)
    feeds = [np.array(ids, np.int32) for ids in batches]

    def coefficient(ids):
        return np.arange(1, len(ids) + 1, dtype=np.float32)  # d loss / d w[ids]

    def gradient_of_gather(var, ids):
        loss = tf.reduce_sum(
            tf.gather(var, ids) * tf.range(1.0, tf.cast(tf.size(ids), tf.float32) + 1.0)
        )
        return tf.gradients(loss, var)[0]

    history, _, gradient = run_graph(initial, feeds, gradient_of_gather, lambda: dict(momentum=0.9))
    assert isinstance(gradient, tf.IndexedSlices)
    reference = sm3_reference.SM3Reference((5,), momentum=0.9)
    expected = initial.astype(np.float64)
    for ids, actual in zip(feeds, history):
        expected = reference.sparse_step(expected, ids, coefficient(ids), 0.1)
        assert sm3_reference.relative_error(actual, expected) < 1e-5


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(4,), (3, 4)])
def test_low_precision_variables_with_a_tiny_epsilon(dtype, shape):
    """Theirs: 1e-30 is 0 in float16, so a zero gradient with a zero accumulator gives 0 * inf.

    Here the accumulators and the arithmetic are float32: epsilon stays 1e-30, squares of large
    float16 gradients (300^2 > 65504) do not overflow, and 0/0 is 0 by definition anyway.
    """
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(3,) + shape).astype(np.float32)
    grads[0].flat[0] = 0.0  # its accumulator entry is still 0: theirs gives NaN here in float16
    grads[1].flat[-1] = 300.0
    initial = np.ones(shape, dtype)
    history, slots, _ = run_graph(
        initial,
        [g.astype(dtype) for g in grads],
        lambda var, g: g,
        lambda: dict(momentum=0.9, epsilon=1e-30),
    )
    reference = sm3_reference.SM3Reference(shape, momentum=0.9, epsilon=1e-30, param_dtype=dtype)
    expected = initial.astype(np.float64)
    for g, actual in zip(grads, history):
        expected = reference.step(expected, g.astype(dtype).astype(np.float64), 0.1)
        assert np.all(np.isfinite(actual.astype(np.float64)))
        # Both round once to the variable's dtype: at most one unit in the last place apart.
        assert sm3_reference.relative_error(actual, expected) <= ONE_ULP[dtype]
    for name, value in slots.items():
        assert value.dtype == (np.float32 if name.startswith("accumulator") else dtype), name
        assert np.all(np.isfinite(value.astype(np.float64)))


def test_tensor_momentum_in_a_graph():
    """Theirs: `if self._momentum > 0` on a graph tensor raises (a tensor is not a Python bool)."""
    grads = [np.full((2, 2), v, np.float32) for v in (1.0, -2.0, 0.5)]
    history, slots, _ = run_graph(
        np.zeros((2, 2), np.float32),
        grads,
        lambda var, g: g,
        lambda: dict(momentum=tf.constant(0.9)),
    )
    assert slots["momentum"].shape == (2, 2)
    reference = sm3_reference.SM3Reference((2, 2), momentum=0.9)
    expected = np.zeros((2, 2))
    for g, actual in zip(grads, history):
        expected = reference.step(expected, g, 0.1)
        assert sm3_reference.relative_error(actual, expected) < 1e-5
