"""sm3_tf.SM3 on Keras 2: its arguments are checked before any variable exists, with errors naming
them; its config round-trips through Keras 2's (de)serialization; Keras 3-only options are
refused by name; a config saved with fused=True loads where there are no kernels."""

import environments

environments.require_keras_2()

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import sm3_tf  # noqa: E402
from sm3_tf import step  # noqa: E402


@pytest.mark.parametrize(
    "arguments,error,match",
    [
        (dict(learning_rate=-0.1), ValueError, "`learning_rate`"),
        (dict(learning_rate="fast"), TypeError, "`learning_rate`"),
        (dict(momentum=1.0), ValueError, "`momentum`"),
        (dict(beta_2=0.0), ValueError, "`beta_2`"),
        (dict(epsilon=float("inf")), ValueError, "`epsilon`"),
        (dict(variant="III"), ValueError, "`variant`"),
        (dict(momentum_dtype="int8"), ValueError, "`momentum_dtype`"),
        (dict(skip_nonfinite="no"), TypeError, "`skip_nonfinite`"),
        (dict(fused="yes"), ValueError, "`fused`"),
        (dict(loss_scale_factor=128.0), ValueError, "`loss_scale_factor` is a Keras 3 option"),
        (dict(gradient_accumulation_steps=4), ValueError, "`gradient_accumulation_steps`"),
    ],
)
def test_bad_arguments_are_refused_by_name(arguments, error, match):
    with pytest.raises(error, match=match):
        sm3_tf.SM3(**arguments)


def test_keras_2_arguments_are_passed_on():
    optimizer = sm3_tf.SM3(0.05, clipnorm=1.0, use_ema=True, ema_momentum=0.9, jit_compile=False)
    config = optimizer.get_config()
    assert (config["learning_rate"], config["clipnorm"], config["use_ema"]) == (0.05, 1.0, True)
    assert (config["ema_momentum"], config["jit_compile"], config["name"]) == (0.9, False, "SM3")


def test_config_round_trips_through_keras_serialization():
    optimizer = sm3_tf.SM3(
        learning_rate=tf.keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5),
        momentum=0.5,
        beta_2=0.99,
        epsilon=1e-6,
        variant="I",
        momentum_dtype="bfloat16",
        skip_nonfinite=True,
        fused=False,
        weight_decay=0.01,
        name="my_sm3",
    )
    optimizer.momentum = 0.7  # a live attribute: get_config saves what it holds now
    restored = tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(optimizer))
    assert type(restored) is sm3_tf.SM3
    assert restored.get_config() == optimizer.get_config()
    assert restored.momentum == 0.7
    assert sm3_tf.SM3.from_config(optimizer.get_config()).get_config() == optimizer.get_config()


def test_a_config_saved_with_fused_true_loads_without_kernels(monkeypatch):
    config = sm3_tf.SM3(fused=True).get_config()
    monkeypatch.setattr(step, "kernels_unavailable_reason", lambda: "no compiler here")
    with pytest.warns(UserWarning, match="no compiler here"):
        restored = sm3_tf.SM3.from_config(config)
    assert restored.fused is None


def test_state_layout_is_fixed_once_built():
    var = tf.Variable(tf.ones((3, 2)))
    optimizer = sm3_tf.SM3(momentum=0.9)
    optimizer.build([var])
    assert [v.shape.as_list() for v in optimizer.variables[1:]] == [[3], [2], [3, 2]]
    with pytest.raises(ValueError, match="`momentum_dtype` cannot change"):
        optimizer.momentum_dtype = "bfloat16"
    optimizer.variant = "I"  # may change: both variants keep the same covers
    with pytest.raises(ValueError, match="floating-point variables"):
        sm3_tf.SM3().build([tf.Variable([1, 2])])
