"""Every base Keras optimizer argument keeps working with SM3, checked against the numpy reference
applied to the gradients those arguments produce."""

import keras
import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf

import sm3_tf

LR = 0.1
SHAPE = (4, 3)


def grads_for(steps=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [scale * rng.normal(size=SHAPE).astype(np.float32) for _ in range(steps)]


def train(grads, **options):
    var = tf.Variable(np.random.default_rng(1).normal(size=SHAPE).astype(np.float32))
    w0 = var.numpy().astype(np.float64)
    optimizer = sm3_tf.SM3(learning_rate=LR, momentum=0.9, **options)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), var)])
    return w0, var, optimizer


def reference(w0, grads, transform=lambda g, w: g, decay=0.0):
    model = ref.SM3Reference(SHAPE, momentum=0.9)
    w = w0
    for g in grads:
        w = w - LR * decay * w
        w = model.step(w, transform(np.asarray(g, np.float64), w), LR)
    return w


def test_clipvalue():
    grads = grads_for(scale=3.0)
    w0, var, _ = train(grads, clipvalue=0.5)
    expected = reference(w0, grads, lambda g, w: np.clip(g, -0.5, 0.5))
    assert ref.relative_error(var.numpy(), expected) <= 1e-5


@pytest.mark.parametrize("argument", ["clipnorm", "global_clipnorm"])
def test_clipnorm(argument):
    grads = grads_for(scale=3.0)
    w0, var, _ = train(grads, **{argument: 1.0})
    expected = reference(w0, grads, lambda g, w: g * min(1.0, 1.0 / np.linalg.norm(g)))
    assert ref.relative_error(var.numpy(), expected) <= 1e-5


def test_weight_decay_is_decoupled_and_applied_first():
    grads = grads_for()
    w0, var, _ = train(grads, weight_decay=0.01)
    expected = reference(w0, grads, decay=0.01)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5


def test_loss_scale_factor_unscales_gradients():
    grads = grads_for()
    w0, var, _ = train([g * 128.0 for g in grads], loss_scale_factor=128.0)
    assert ref.relative_error(var.numpy(), reference(w0, grads)) <= 1e-5


def test_gradient_accumulation_steps():
    grads = grads_for(steps=4)
    w0, var, optimizer = train(grads, gradient_accumulation_steps=2)
    averaged = [(grads[0] + grads[1]) / 2, (grads[2] + grads[3]) / 2]
    assert ref.relative_error(var.numpy(), reference(w0, averaged)) <= 1e-5
    assert int(optimizer.iterations.numpy()) == 2


def test_use_ema_tracks_the_moving_average():
    grads = grads_for()
    var = tf.Variable(np.random.default_rng(1).normal(size=SHAPE).astype(np.float32))
    optimizer = sm3_tf.SM3(learning_rate=LR, use_ema=True, ema_momentum=0.5)
    model = ref.SM3Reference(SHAPE, momentum=0.9)
    w, average = var.numpy().astype(np.float64), None
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), var)])
        w = model.step(w, g, LR)
        average = w if average is None else 0.5 * average + 0.5 * w  # Keras: first step copies
    optimizer.finalize_variable_values([var])  # overwrites the variable with its average
    assert ref.relative_error(var.numpy(), average) <= 1e-5


def test_loss_scale_optimizer_wrapping():
    grads = grads_for()
    var = tf.Variable(np.random.default_rng(1).normal(size=SHAPE).astype(np.float32))
    w0 = var.numpy().astype(np.float64)
    optimizer = keras.optimizers.LossScaleOptimizer(
        sm3_tf.SM3(learning_rate=LR), initial_scale=1024.0
    )
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g * 1024.0), var)])
    assert ref.relative_error(var.numpy(), reference(w0, grads)) <= 1e-5
    # An overflowing step is skipped by the wrapper, the scale halves, SM3's state is untouched.
    before = [v.numpy().copy() for v in optimizer.inner_optimizer.variables]
    optimizer.apply_gradients([(tf.constant(np.full(SHAPE, np.inf, np.float32)), var)])
    assert float(optimizer.dynamic_scale.numpy()) == 512.0
    for old, new in zip(before, optimizer.inner_optimizer.variables):
        np.testing.assert_array_equal(old, new.numpy())


def test_model_fit_with_embedding_eager_graph_and_xla_agree():
    """model.fit drives dense and sparse (Embedding) gradients; XLA (TF ops) and non-XLA (kernel
    when built) reach the same weights, and the loss goes down."""
    x = np.random.default_rng(0).integers(0, 20, size=(64, 5))
    y = np.random.default_rng(1).normal(size=(64, 1)).astype(np.float32)

    def fit(jit_compile):
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [
                keras.Input((5,), dtype="int32"),
                keras.layers.Embedding(20, 4),
                keras.layers.Flatten(),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer=sm3_tf.SM3(learning_rate=0.05), loss="mse", jit_compile=jit_compile)
        history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        return model.get_weights(), history.history["loss"]

    weights_xla, losses_xla = fit(True)
    weights_plain, losses_plain = fit(False)
    assert losses_xla[-1] < losses_xla[0]
    for a, b in zip(weights_xla, weights_plain):
        assert ref.relative_error(a, b) <= 1e-5
