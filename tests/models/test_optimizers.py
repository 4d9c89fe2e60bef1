"""sm3_t2t.optimizers: T2T hparams build the Keras and the v1 optimizers, clipping included.

Numerics are checked against the numpy reference `sm3_reference.SM3Reference`; clipping against
the reference's update on the gradients clipped in numpy (g * clip / max(global norm, clip)).
"""

import types

import numpy as np
import pytest
import sm3_reference
import tensorflow as tf

from sm3_t2t import optimizers
from sm3_tf import SM3, v1

TOLERANCE = 1e-5
SHAPES = ((3, 2), (4,))


def random_gradients(shape, steps, seed):
    return list(np.random.default_rng(seed).normal(size=(steps,) + shape).astype(np.float32))


def test_builds_the_v1_optimizer_from_hparams():
    """api="v1": options and the warm-up schedule reach the graph's steps."""
    hparams = types.SimpleNamespace(
        optimizer="sm3",
        learning_rate=0.2,
        learning_rate_warmup_steps=4,
        learning_rate_warmup_power=1.0,
        optimizer_sm3_momentum=0.5,
        optimizer_sm3_beta2=0.9,
        optimizer_sm3_variant="I",
        optimizer_sm3_epsilon=1e-6,
        optimizer_sm3_momentum_dtype="float32",
        optimizer_sm3_skip_nonfinite=True,
        optimizer_sm3_fused="false",
    )
    grads = random_gradients((3, 2), 3, seed=4)
    with tf.Graph().as_default() as graph:
        optimizer = optimizers.make_optimizer(hparams, api="v1")
        assert type(optimizer) is v1.SM3Optimizer  # no clipping asked: the plain class
        var = tf.compat.v1.get_variable("w", initializer=np.ones((3, 2), np.float32))
        grad = tf.compat.v1.placeholder(tf.float32, (3, 2))
        train = optimizer.apply_gradients(
            [(grad, var)], global_step=tf.compat.v1.train.get_or_create_global_step()
        )
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            reference = sm3_reference.SM3Reference(
                (3, 2), variant="I", momentum=0.5, beta_2=0.9, epsilon=1e-6
            )
            expected = np.ones((3, 2))
            for step, g in enumerate(grads):
                session.run(train, {grad: g})
                expected = reference.step(expected, g, 0.2 * min(1.0, step / 4))  # linear warm-up
            assert sm3_reference.relative_error(session.run(var), expected) < TOLERANCE
            assert session.run(optimizer.nonfinite_steps) == 0


def _clipping_hparams(clip):
    return types.SimpleNamespace(
        optimizer="sm3",
        learning_rate=0.1,
        learning_rate_warmup_steps=0,
        optimizer_sm3_momentum=0.5,
        clip_grad_norm=clip,
    )


def _expected_after_clipped_steps(grads_per_step, clip):
    """The reference's weights after SM3 steps on the gradients clipped by their global norm."""
    references = [sm3_reference.SM3Reference(shape, momentum=0.5) for shape in SHAPES]
    weights = [np.ones(shape) for shape in SHAPES]
    for grads in grads_per_step:
        norm = np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in grads))
        scale = clip / max(norm, clip)
        weights = [
            reference.step(w, g * scale, 0.1) for reference, w, g in zip(references, weights, grads)
        ]
    return weights


def _gradients(scale):
    """Two steps of gradients for SHAPES, of global norm about `scale` * 3."""
    rng = np.random.default_rng(7)
    return [[(scale * rng.normal(size=shape)).astype(np.float32) for shape in SHAPES] for _ in "ab"]


# A global norm well above the clip (clipped), and one below it (left alone).
@pytest.mark.parametrize("scale", [4.0, 0.05])
def test_keras_optimizer_clips_by_global_norm(scale):
    grads_per_step = _gradients(scale)
    optimizer = optimizers.make_optimizer(_clipping_hparams(1.0))
    assert isinstance(optimizer, SM3) and optimizer.global_clipnorm == 1.0
    variables = [tf.Variable(np.ones(shape, np.float32)) for shape in SHAPES]
    for grads in grads_per_step:
        optimizer.apply_gradients(zip([tf.constant(g) for g in grads], variables))
    expected = _expected_after_clipped_steps(grads_per_step, 1.0)
    for variable, weights in zip(variables, expected):
        assert sm3_reference.relative_error(variable.numpy(), weights) < TOLERANCE


@pytest.mark.parametrize("scale", [4.0, 0.05])
def test_v1_optimizer_clips_by_global_norm(scale):
    """The bug this fixes: api="v1" read `clip_grad_norm` and then dropped it."""
    grads_per_step = _gradients(scale)
    with tf.Graph().as_default() as graph:
        optimizer = optimizers.make_optimizer(_clipping_hparams(1.0), api="v1")
        assert isinstance(optimizer, v1.SM3Optimizer) and optimizer.clip_norm == 1.0
        variables = [
            tf.compat.v1.get_variable(f"w{i}", initializer=np.ones(shape, np.float32))
            for i, shape in enumerate(SHAPES)
        ]
        unused = tf.compat.v1.get_variable("unused", initializer=np.ones(2, np.float32))
        placeholders = [tf.compat.v1.placeholder(tf.float32, shape) for shape in SHAPES]
        # A variable without a gradient passes through untouched, as with any v1 optimizer.
        train = optimizer.apply_gradients(
            list(zip(placeholders, variables)) + [(None, unused)],
            global_step=tf.compat.v1.train.get_or_create_global_step(),
        )
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for grads in grads_per_step:
                session.run(train, dict(zip(placeholders, grads)))
            actual = session.run(variables)
            np.testing.assert_array_equal(session.run(unused), np.ones(2))
    expected = _expected_after_clipped_steps(grads_per_step, 1.0)
    for weights, reference_weights in zip(actual, expected):
        assert sm3_reference.relative_error(weights, reference_weights) < TOLERANCE


def test_v1_minimize_clips_too():
    """`minimize` ends in `apply_gradients`, so it clips as well."""
    with tf.Graph().as_default() as graph:
        optimizer = optimizers.make_optimizer(_clipping_hparams(0.5), api="v1")
        var = tf.compat.v1.get_variable("w", initializer=np.ones((3, 2), np.float32))
        target = tf.constant(np.full((3, 2), 10.0, np.float32))
        loss = tf.reduce_sum(tf.square(var - target))  # gradient 2 * (w - 10) = -18 everywhere
        train = optimizer.minimize(loss)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(train)
            actual = session.run(var)
    grad = np.full((3, 2), -18.0)
    clipped = grad * 0.5 / np.linalg.norm(grad)
    expected = sm3_reference.SM3Reference((3, 2), momentum=0.5).step(np.ones((3, 2)), clipped, 0.1)
    assert sm3_reference.relative_error(actual, expected) < TOLERANCE


@pytest.mark.parametrize("name", ["adam", "adagrad"])
def test_other_v1_optimizers_get_clipping_too(name):
    hparams = types.SimpleNamespace(optimizer=name, learning_rate=0.1, clip_grad_norm=2.0)
    with tf.Graph().as_default():
        optimizer = optimizers.make_optimizer(hparams, api="v1")
    assert optimizer.clip_norm == 2.0
    assert isinstance(optimizer, tf.compat.v1.train.Optimizer)


@pytest.mark.parametrize("value", [-1.0, float("inf"), float("nan")])
def test_bad_clip_grad_norm_is_an_error_naming_it(value):
    with pytest.raises(ValueError, match="clip_grad_norm"):
        optimizers.make_optimizer(_clipping_hparams(value))
