"""MirroredStrategy over 2 logical CPUs (set up in tests/conftest.py) gives the same weights as one
device on the same global batch, for dense and Embedding (sparse) gradients."""

import keras
import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf

import sm3_tf


def build_model():
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(16, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=sm3_tf.SM3(learning_rate=0.05, skip_nonfinite=True), loss="mse")
    return model


@pytest.mark.parametrize("momentum_dtype", [None, "bfloat16"])
def test_mirrored_equals_single_device(momentum_dtype, mirrored_strategy):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 16, size=(64, 4))
    y = rng.normal(size=(64, 1)).astype(np.float32)

    def train(strategy):
        with strategy.scope():
            model = build_model()
            model.optimizer.momentum_dtype = momentum_dtype
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return model

    assert len(tf.config.list_logical_devices("CPU")) >= 2
    single = train(tf.distribute.get_strategy())
    mirrored = train(mirrored_strategy)
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        assert ref.relative_error(b, a) <= 1e-5
    assert int(mirrored.optimizer.iterations.numpy()) == 8
    assert int(mirrored.optimizer.nonfinite_steps.numpy()) == 0


@pytest.mark.parametrize("weight_decay", [None, 0.1])
def test_mirrored_skips_a_nonfinite_step_on_every_replica(weight_decay, mirrored_strategy):
    strategy = mirrored_strategy
    with strategy.scope():
        var = tf.Variable(np.ones((3, 2), np.float32))
        optimizer = sm3_tf.SM3(learning_rate=0.1, skip_nonfinite=True, weight_decay=weight_decay)
        optimizer.build([var])

    @tf.function
    def step(bad):
        def replica_fn():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            # Only replica 1 sees the NaN; the all-reduced gradient is NaN everywhere.
            poison = tf.where(tf.logical_and(bad, replica == 1), np.nan, 0.0)
            optimizer.apply_gradients([(tf.ones((3, 2)) + poison, var)])

        strategy.run(replica_fn)

    step(tf.constant(True))
    for component in strategy.experimental_local_results(var):
        np.testing.assert_array_equal(component.numpy(), np.ones((3, 2)))
    assert int(optimizer.nonfinite_steps.numpy()) == 1
    step(tf.constant(False))
    for component in strategy.experimental_local_results(var):
        assert np.all(component.numpy() < 1.0)
