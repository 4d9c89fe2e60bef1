"""sm3_tf.SM3 in Keras 2's model API: `compile`/`fit` (also under MirroredStrategy) equal the
numpy reference replayed on the same batches; a model saved as .keras or .h5, or a
tf.train.Checkpoint, resumes training exactly where it stopped; a SavedModel keeps what Keras 2
keeps of any optimizer."""

import environments

environments.require_keras_2()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sm3_reference as ref  # noqa: E402
import tensorflow as tf  # noqa: E402

import sm3_tf  # noqa: E402

LR = 0.1
BATCH = 8
OPTIONS = dict(momentum=0.9, variant="II")
RNG = np.random.default_rng(0)
X = RNG.integers(0, 10, size=(32, 3)).astype(np.int32)
Y = RNG.normal(size=(32, 2)).astype(np.float32)


def build_model():
    """Embedding (sparse gradients) and Dense (dense ones), with fixed initial weights."""
    tf.keras.utils.set_random_seed(0)
    return tf.keras.Sequential(
        [
            tf.keras.Input((3,), dtype="int32"),
            tf.keras.layers.Embedding(10, 4),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(2),
        ]
    )


def compiled_model():
    model = build_model()
    model.compile(optimizer=sm3_tf.SM3(LR, **OPTIONS), loss="mse")
    return model


def fit(model, epochs):
    model.fit(X, Y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)


def reference_fit(initial_weights, epochs):
    """The reference's weights after `epochs` of fit's batches (gradients taken by TF)."""
    model = build_model()
    weights = [w.astype(np.float64) for w in initial_weights]
    references = [ref.SM3Reference(w.shape, **OPTIONS) for w in weights]
    loss = tf.keras.losses.MeanSquaredError()
    for _ in range(epochs):
        for start in range(0, len(X), BATCH):
            model.set_weights([w.astype(np.float32) for w in weights])
            with tf.GradientTape() as tape:
                value = loss(Y[start : start + BATCH], model(X[start : start + BATCH]))
            grads = tape.gradient(value, model.trainable_variables)
            for i, (g, reference) in enumerate(zip(grads, references)):
                if isinstance(g, tf.IndexedSlices):
                    weights[i] = reference.sparse_step(
                        weights[i], g.indices.numpy(), g.values.numpy(), LR
                    )
                else:
                    weights[i] = reference.step(weights[i], g.numpy(), LR)
    return weights


def assert_weights_match(actual, expected, tolerance=1e-5):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert ref.relative_error(a, e) <= tolerance


def test_fit_matches_the_reference():
    model = compiled_model()
    initial = model.get_weights()
    fit(model, epochs=2)
    assert_weights_match(model.get_weights(), reference_fit(initial, epochs=2))


def test_fit_under_mirrored_strategy_matches_the_reference(mirrored_strategy):
    with mirrored_strategy.scope():
        model = compiled_model()
    initial = model.get_weights()
    fit(model, epochs=1)
    assert_weights_match(model.get_weights(), reference_fit(initial, epochs=1))


@pytest.mark.parametrize("file_name", ["model.keras", "model.h5"])
def test_saved_model_loads_and_resumes_as_if_never_interrupted(tmp_path, file_name):
    model = compiled_model()
    initial = model.get_weights()
    fit(model, epochs=1)
    model.save(str(tmp_path / file_name))
    loaded = tf.keras.models.load_model(str(tmp_path / file_name))
    assert type(loaded.optimizer) is sm3_tf.SM3
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    fit(loaded, epochs=1)
    assert_weights_match(loaded.get_weights(), reference_fit(initial, epochs=2))


def test_savedmodel_keeps_the_weights_and_the_config_but_not_the_state(tmp_path):
    """As for Keras 2.15's own optimizers (Adam too): a SavedModel's optimizer restarts from zero
    covers; .keras, .h5 and tf.train.Checkpoint keep the state."""
    model = compiled_model()
    fit(model, epochs=1)
    model.save(str(tmp_path / "saved_model"))
    loaded = tf.keras.models.load_model(str(tmp_path / "saved_model"))
    assert type(loaded.optimizer) is sm3_tf.SM3
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert_weights_match(loaded.get_weights(), model.get_weights(), tolerance=0.0)
    fit(loaded, epochs=1)
    assert_weights_match(loaded.get_weights(), reference_fit(model.get_weights(), epochs=1))


def test_checkpoint_restores_the_state_into_a_new_model(tmp_path):
    model = compiled_model()
    initial = model.get_weights()
    fit(model, epochs=1)
    path = tf.train.Checkpoint(model=model, optimizer=model.optimizer).save(str(tmp_path / "c"))
    resumed = compiled_model()  # a new optimizer: its covers are created, then restored, later
    tf.train.Checkpoint(model=resumed, optimizer=resumed.optimizer).restore(
        path
    ).assert_existing_objects_matched()
    fit(resumed, epochs=1)
    assert int(resumed.optimizer.iterations) == 2 * len(X) // BATCH
    assert_weights_match(resumed.get_weights(), reference_fit(initial, epochs=2))


def test_a_loss_scale_optimizer_wraps_it():
    """Keras 2's loss scaling (Keras 3's `loss_scale_factor` has no Keras 2 counterpart): the
    gradients are unscaled before SM3 sees them, so the steps are the reference's."""
    model = build_model()
    wrapped = tf.keras.mixed_precision.LossScaleOptimizer(sm3_tf.SM3(LR, **OPTIONS))
    model.compile(optimizer=wrapped, loss="mse")
    initial = model.get_weights()
    fit(model, epochs=1)
    assert_weights_match(model.get_weights(), reference_fit(initial, epochs=1))
