"""benchmarks.adafactor_ablation: Keras's Adafactor with features switched off."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import adafactor_ablation

SHAPES = [(6, 5), (7,), (3, 4, 5)]


def _train(optimizer, gradients, initial):
    variables = [tf.Variable(x) for x in initial]
    for step_gradients in gradients:
        optimizer.apply_gradients(zip([tf.constant(g) for g in step_gradients], variables))
    return [v.numpy() for v in variables]


def _random_problem(steps=5, seed=0):
    rng = np.random.default_rng(seed)
    initial = [rng.normal(size=s).astype("float32") for s in SHAPES]
    gradients = [[rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(steps)]
    return initial, gradients


def test_with_every_feature_on_it_is_keras_adafactor():
    initial, gradients = _random_problem()
    expected = _train(keras.optimizers.Adafactor(learning_rate=0.03), gradients, initial)
    got = _train(adafactor_ablation.make("full", 0.03), gradients, initial)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


def test_switching_a_feature_off_changes_the_update():
    initial, gradients = _random_problem()
    full = _train(adafactor_ablation.make("full", 0.03), gradients, initial)
    for name in ("no_clip", "no_scale", "sum"):
        ablated = _train(adafactor_ablation.make(name, 0.03), gradients, initial)
        assert max(np.max(np.abs(a - f)) for a, f in zip(ablated, full)) > 1e-4, name


def test_summed_accumulation_is_adagrad_like():
    """A constant gradient g on a vector: v_t = t g^2, so each step moves lr / sqrt(t)."""
    lr, steps, g = 0.01, 4, np.array([0.5, -2.0, 1.0], "float32")
    optimizer = adafactor_ablation.make("no_scale_sum", lr)
    (got,) = _train(optimizer, [[g]] * steps, [np.zeros(3, "float32")])
    expected = -lr * np.sign(g) * sum(1 / np.sqrt(t) for t in range(1, steps + 1))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_unknown_ablation_is_an_error_naming_it():
    with pytest.raises(ValueError, match="no_such"):
        adafactor_ablation.make("no_such", 0.03)


def test_patch_factory_makes_the_trainer_build_the_ablation(monkeypatch):
    from sm3_t2t import hparams as hparams_lib
    from sm3_t2t import optimizers

    # Restored after the test: the patch replaces a module attribute.
    monkeypatch.setattr(optimizers, "make_optimizer", optimizers.make_optimizer)
    adafactor_ablation.patch_factory("no_clip")
    hparams = hparams_lib.HParams(optimizer="adafactor", learning_rate=0.03)
    built = optimizers.make_optimizer(hparams, total_steps=10)
    assert isinstance(built, adafactor_ablation.AblatedAdafactor)
    assert built.clip_threshold == float("inf")
    # Every other optimizer is built as before.
    hparams = hparams_lib.HParams(optimizer="adam", learning_rate=0.03)
    assert type(optimizers.make_optimizer(hparams)) is keras.optimizers.Adam
