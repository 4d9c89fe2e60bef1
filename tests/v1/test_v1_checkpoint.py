"""Saving and restoring SM3Optimizer slots: tf.compat.v1.train.Saver and tf.train.Checkpoint.

Includes restoring a checkpoint laid out like the authors' optimizer's (google-research
`sm3/sm3.py` creates "momentum" first, then one accumulator per axis, all scoped "<var>/SM3", so
the Saver names them "w/SM3", "w/SM3_1", "w/SM3_2").
"""

import numpy as np
import sm3_reference
import tensorflow as tf

from sm3_tf import v1

GRADS = list(np.random.default_rng(0).normal(size=(3, 3, 2)).astype(np.float32))


def build(initial):
    """Graph-mode training of variable "w": returns (var, gradient feed, train op, optimizer)."""
    var = tf.compat.v1.get_variable("w", initializer=initial)
    grad = tf.compat.v1.placeholder(tf.float32, initial.shape)
    optimizer = v1.SM3Optimizer(0.1, momentum=0.9)
    return var, grad, optimizer.apply_gradients([(grad, var)]), optimizer


def slot_values(session, optimizer, var):
    return {name: session.run(optimizer.get_slot(var, name)) for name in optimizer.get_slot_names()}


def test_saver_round_trip_then_training_continues_as_without_interruption(tmp_path):
    initial = np.ones((3, 2), np.float32)
    with tf.Graph().as_default() as graph:
        var, grad, train, optimizer = build(initial)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for g in GRADS[:2]:
                session.run(train, {grad: g})
            saved = slot_values(session, optimizer, var)
            path = tf.compat.v1.train.Saver().save(session, str(tmp_path / "model.ckpt"))
    with tf.Graph().as_default() as graph:
        var, grad, train, optimizer = build(np.zeros((3, 2), np.float32))
        with tf.compat.v1.Session(graph=graph) as session:
            tf.compat.v1.train.Saver().restore(session, path)
            restored = slot_values(session, optimizer, var)
            assert sorted(restored) == ["accumulator_0", "accumulator_1", "momentum"]
            for name, value in saved.items():
                np.testing.assert_array_equal(restored[name], value)
            session.run(train, {grad: GRADS[2]})
            reference = sm3_reference.SM3Reference((3, 2), momentum=0.9)
            expected = initial.astype(np.float64)
            for g in GRADS:
                expected = reference.step(expected, g, 0.1)
            assert sm3_reference.relative_error(session.run(var), expected) < 1e-5


def test_saver_restores_a_checkpoint_with_the_authors_slot_names(tmp_path):
    weights = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
    momentum = np.full((3, 2), 0.25, np.float32)
    row_covers = np.array([1.0, 2.0, 4.0], np.float32)
    column_covers = np.array([3.0, 0.5], np.float32)
    with tf.Graph().as_default() as graph:  # the variables their optimizer would have created
        authors_layout = [
            tf.compat.v1.get_variable(name, initializer=value)
            for name, value in (
                ("w", weights),
                ("w/SM3", momentum),
                ("w/SM3_1", row_covers),
                ("w/SM3_2", column_covers),
            )
        ]
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            path = tf.compat.v1.train.Saver(authors_layout).save(session, str(tmp_path / "theirs"))
    with tf.Graph().as_default() as graph:
        var, grad, train, optimizer = build(np.zeros((3, 2), np.float32))
        with tf.compat.v1.Session(graph=graph) as session:
            tf.compat.v1.train.Saver().restore(session, path)
            restored = slot_values(session, optimizer, var)
            np.testing.assert_array_equal(restored["momentum"], momentum)
            np.testing.assert_array_equal(restored["accumulator_0"], row_covers)
            np.testing.assert_array_equal(restored["accumulator_1"], column_covers)
            session.run(train, {grad: GRADS[0]})
            reference = sm3_reference.SM3Reference((3, 2), momentum=0.9)
            reference.accumulators = [
                row_covers.astype(np.float64),
                column_covers.astype(np.float64),
            ]
            reference.buffer = momentum.astype(np.float64)
            expected = reference.step(weights, GRADS[0], 0.1)
            assert sm3_reference.relative_error(session.run(var), expected) < 1e-5


def test_object_based_checkpoint_restores_slots_created_later(tmp_path):
    """tf.train.Checkpoint in TF2: slots are restored when the new optimizer creates them."""
    var = tf.Variable(np.ones((3, 2), np.float32))
    optimizer = v1.SM3Optimizer(0.1, momentum=0.9)
    for g in GRADS[:2]:
        optimizer.apply_gradients([(tf.constant(g), var)])
    saved = {name: optimizer.get_slot(var, name).numpy() for name in optimizer.get_slot_names()}
    path = tf.train.Checkpoint(var=var, optimizer=optimizer).save(str(tmp_path / "ckpt"))
    new_var = tf.Variable(np.zeros((3, 2), np.float32))
    new_optimizer = v1.SM3Optimizer(0.1, momentum=0.9)
    tf.train.Checkpoint(var=new_var, optimizer=new_optimizer).restore(path)
    new_optimizer.apply_gradients([(tf.constant(GRADS[2]), new_var)])
    optimizer.apply_gradients([(tf.constant(GRADS[2]), var)])
    assert set(saved) == {"accumulator_0", "accumulator_1", "momentum"}
    np.testing.assert_allclose(new_var.numpy(), var.numpy(), rtol=1e-6)
    for name in saved:
        np.testing.assert_allclose(
            new_optimizer.get_slot(new_var, name).numpy(),
            optimizer.get_slot(var, name).numpy(),
            rtol=1e-6,
        )
