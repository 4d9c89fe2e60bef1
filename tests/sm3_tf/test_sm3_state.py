"""SM3's state: how much there is, and that it survives config round trips, .keras files and
tf.train.Checkpoint exactly."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import sm3_tf
from sm3_tf import memory

COUNTERS = ("iteration", "learning_rate")


def state_values(optimizer):
    return [v for v in optimizer.variables if v.name not in COUNTERS]


def test_matrix_with_no_momentum_keeps_m_plus_n_floats():
    m, n = 300, 70
    var = tf.Variable(tf.zeros((m, n)))
    optimizer = sm3_tf.SM3(momentum=0.0)
    optimizer.build([var])
    state = state_values(optimizer)
    assert sorted(tuple(v.shape) for v in state) == sorted([(m,), (n,)])
    assert sum(int(np.prod(v.shape)) for v in state) == m + n
    assert all(v.dtype == "float32" for v in state)
    assert memory.state_bytes(optimizer) == 4 * (m + n)


def test_momentum_dtype_halves_the_buffer():
    var = tf.Variable(tf.zeros((64, 32)))
    full, half = sm3_tf.SM3(), sm3_tf.SM3(momentum_dtype="bfloat16")
    full.build([var])
    half.build([var])
    assert memory.state_bytes(full) == 4 * (64 + 32) + 4 * 64 * 32
    assert memory.state_bytes(half) == 4 * (64 + 32) + 2 * 64 * 32


def test_get_config_round_trip():
    schedule = sm3_tf.schedules.WarmupSchedule(
        0.3, warmup_steps=10, cooldown_steps=5, total_steps=100
    )
    optimizer = sm3_tf.SM3(
        learning_rate=schedule,
        momentum=0.5,
        beta_2=0.99,
        epsilon=1e-6,
        variant="I",
        momentum_dtype="bfloat16",
        skip_nonfinite=True,
        fused=False,
        clipnorm=2.0,
    )
    config = keras.optimizers.serialize(optimizer)
    restored = keras.optimizers.deserialize(config)
    assert isinstance(restored, sm3_tf.SM3)
    assert restored.get_config() == optimizer.get_config()
    assert float(restored.learning_rate) == pytest.approx(float(schedule(restored.iterations)))


def make_model():
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            keras.layers.Embedding(30, 4),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    model.compile(optimizer=sm3_tf.SM3(learning_rate=0.05, momentum_dtype="bfloat16"), loss="mse")
    return model


def data(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 30, size=(32, 6)), rng.normal(size=(32, 3)).astype(np.float32)


def test_keras_file_restores_optimizer_and_state(tmp_path):
    model = make_model()
    model.fit(*data(0), batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, sm3_tf.SM3)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Continuing from the file equals continuing in memory.
    model.fit(*data(1), batch_size=8, epochs=1, shuffle=False, verbose=0)
    loaded.fit(*data(1), batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("build_before_restore", [True, False])
def test_checkpoint_resume_is_bitwise_identical(tmp_path, build_before_restore):
    uninterrupted = make_model()
    for seed in range(4):
        uninterrupted.fit(*data(seed), batch_size=8, epochs=1, shuffle=False, verbose=0)

    first = make_model()
    for seed in range(2):
        first.fit(*data(seed), batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = tf.train.Checkpoint(model=first, optimizer=first.optimizer).save(str(tmp_path / "ckpt"))

    resumed = make_model()
    if build_before_restore:
        resumed.optimizer.build(resumed.trainable_variables)
    status = tf.train.Checkpoint(model=resumed, optimizer=resumed.optimizer).restore(path)
    for seed in range(2, 4):
        resumed.fit(*data(seed), batch_size=8, epochs=1, shuffle=False, verbose=0)
    status.assert_existing_objects_matched()
    assert int(resumed.optimizer.iterations.numpy()) == int(
        uninterrupted.optimizer.iterations.numpy()
    )
    for a, b in zip(uninterrupted.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(uninterrupted.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
