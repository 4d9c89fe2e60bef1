"""SM3's hyper-parameters are live attributes: validated when set, read by the next step, saved
by get_config; what decides the state's layout cannot change after build. Numerics against the
numpy reference, whose attributes change at the same points."""

import keras
import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf

import sm3_tf

LR = 0.1
SHAPE = (4, 3)


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("momentum", 1.0, ValueError),
        ("momentum", None, TypeError),
        ("momentum", "0.9", TypeError),
        ("beta_2", 0.0, ValueError),
        ("beta_2", None, TypeError),
        ("epsilon", float("inf"), ValueError),
        ("epsilon", None, TypeError),
        ("variant", "III", ValueError),
        ("momentum_dtype", "int8", ValueError),
        ("skip_nonfinite", "no", TypeError),
        ("fused", "yes", ValueError),
        ("learning_rate", -1.0, ValueError),
        ("learning_rate", float("nan"), ValueError),
    ],
)
def test_attributes_are_validated_when_set(name, value, error):
    optimizer = sm3_tf.SM3()
    before = optimizer.get_config()
    with pytest.raises(error, match=f"`{name}`"):
        setattr(optimizer, name, value)
    assert optimizer.get_config() == before


@pytest.mark.parametrize("fused", [False, None], ids=["tf_ops", "auto"])
def test_the_step_reads_the_current_values(fused):
    grads = list(np.random.default_rng(0).normal(size=(4,) + SHAPE).astype(np.float32))
    var = tf.Variable(np.random.default_rng(1).normal(size=SHAPE).astype(np.float32))
    optimizer = sm3_tf.SM3(learning_rate=LR, momentum=0.9, fused=fused)
    model = ref.SM3Reference(SHAPE, momentum=0.9)
    expected = var.numpy().astype(np.float64)
    changes = dict(momentum=0.5, beta_2=0.9, epsilon=1e-3, variant="I")
    for step, g in enumerate(grads):
        if step == 2:
            for name, value in changes.items():
                setattr(optimizer, name, value)
                setattr(model, name, value)
        optimizer.apply_gradients([(tf.constant(g), var)])
        expected = model.step(expected, g, LR)
        assert ref.relative_error(var.numpy(), expected) <= 1e-5
    assert {name: optimizer.get_config()[name] for name in changes} == changes


def test_fused_can_change_after_build():
    var = tf.Variable(tf.ones(SHAPE))
    optimizer = sm3_tf.SM3()
    optimizer.build([var])
    optimizer.fused = False
    assert optimizer.step_path(var) == ("tf_ops", "fused=False")
    optimizer.apply_gradients([(tf.ones(SHAPE), var)])
    assert optimizer.get_config()["fused"] is False


@pytest.mark.parametrize(
    "arguments, name, value",
    [
        (dict(momentum=0.0), "momentum", 0.5),
        (dict(momentum=0.9), "momentum", 0.0),
        (dict(momentum_dtype=None), "momentum_dtype", "bfloat16"),
        (dict(skip_nonfinite=False), "skip_nonfinite", True),
        (dict(skip_nonfinite=True), "skip_nonfinite", False),
    ],
)
def test_what_decides_the_state_is_fixed_at_build(arguments, name, value):
    var = tf.Variable(tf.ones(SHAPE))
    unbuilt = sm3_tf.SM3(**arguments)
    setattr(unbuilt, name, value)  # before build: any valid value, and build follows it
    unbuilt.build([var])
    assert unbuilt.get_config()[name] == value
    built = sm3_tf.SM3(**arguments)
    built.build([var])
    state = [tuple(v.shape) for v in built.variables]
    with pytest.raises(ValueError, match=f"`{name}` cannot change .* after the optimizer is built"):
        setattr(built, name, value)
    assert built.get_config()[name] == arguments[name]
    assert [tuple(v.shape) for v in built.variables] == state


def test_momentum_may_change_above_zero_after_build():
    var = tf.Variable(tf.ones(SHAPE))
    optimizer = sm3_tf.SM3(momentum=0.9)
    optimizer.build([var])
    optimizer.momentum = 0.5
    assert optimizer.step_config().momentum == 0.5


def make_model(optimizer):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def data(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(16, 4)).astype(np.float32), rng.normal(size=(16, 1)).astype(np.float32)


def continue_in_memory_and_from_file(model, path):
    """Saves `model`, loads it, trains both on the same batch; returns (in memory, loaded)."""
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, sm3_tf.SM3)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for trained in (model, loaded):
        trained.fit(*data(1), batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model, loaded


def test_changed_attributes_survive_a_keras_file(tmp_path):
    """The step uses what get_config saves, so continuing from the file equals continuing in
    memory (with a frozen copy of the constructor's values, the two runs would differ)."""
    model = make_model(sm3_tf.SM3(learning_rate=0.05, momentum=0.9))
    model.fit(*data(0), batch_size=8, epochs=1, shuffle=False, verbose=0)
    model.optimizer.momentum = 0.5
    model.optimizer.beta_2 = 0.95
    model.optimizer.variant = "I"
    model.make_train_function(force=True)  # the traced step keeps the values it was traced with
    in_memory, loaded = continue_in_memory_and_from_file(model, str(tmp_path / "m.keras"))
    for a, b in zip(in_memory.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_scalar_tensor_arguments_become_numbers_and_round_trip(tmp_path):
    optimizer = sm3_tf.SM3(
        learning_rate=tf.constant(0.05),
        momentum=tf.constant(0.9),
        beta_2=np.float32(0.99),
        epsilon=tf.Variable(1e-6),
    )
    config = optimizer.get_config()
    assert (config["momentum"], config["beta_2"], config["epsilon"]) == (0.9, 0.99, 1e-6)
    assert all(type(config[name]) is float for name in ("momentum", "beta_2", "epsilon"))
    model = make_model(optimizer)
    model.fit(*data(0), batch_size=8, epochs=1, shuffle=False, verbose=0)
    in_memory, loaded = continue_in_memory_and_from_file(model, str(tmp_path / "m.keras"))
    for a, b in zip(in_memory.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_graph_tensors_are_refused_naming_the_argument():
    with tf.Graph().as_default():
        with pytest.raises(TypeError, match="`momentum` must be a number"):
            sm3_tf.SM3(momentum=tf.compat.v1.placeholder(tf.float32, ()))
