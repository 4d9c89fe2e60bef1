"""Tests of the Keras Transformer: masks, positions, sharing, caching, XLA."""

import numpy as np
import pytest
import tensorflow as tf

from sm3_t2t import (
    metrics,
    registry,
    transformer,
    transformer_hparams,  # noqa: F401  (registers the sets)
)

VOCAB = 17


def _tiny_hparams(**overrides):
    hparams = registry.hparams_set("transformer_tiny")
    hparams.parse("hidden_size=16,filter_size=32,num_heads=2")
    for name, value in overrides.items():
        hparams.set_hparam(name, value)
    return hparams


@pytest.fixture(scope="module")
def model():
    """A tiny model with dropout, built once for the module's tests."""
    tf.keras.utils.set_random_seed(0)
    model = transformer.Transformer(_tiny_hparams(), VOCAB, VOCAB)
    model({"inputs": tf.ones([1, 1], tf.int64), "targets": tf.ones([1, 1], tf.int64)})
    return model


INPUTS = tf.constant([[5, 6, 7, 8, 1], [3, 4, 1, 0, 0]], tf.int64)
TARGETS = tf.constant([[9, 10, 11, 1], [12, 1, 0, 0]], tf.int64)


def test_registered_as_transformer():
    assert registry.model("transformer") is transformer.Transformer


def test_timing_signal_is_sines_then_cosines_of_geometric_timescales():
    channels, length = 6, 5
    signal = transformer.timing_signal(length, channels).numpy()
    # Timescales 1, 100, 10^4 for 3 channel pairs (T2T's geometric spacing).
    timescales = np.array([1.0, 100.0, 1.0e4])
    angles = np.arange(length)[:, None] / timescales[None, :]
    expected = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    np.testing.assert_allclose(signal, expected, rtol=1e-5, atol=1e-6)


def test_logits_shape(model):
    logits = model({"inputs": INPUTS, "targets": TARGETS})
    assert logits.shape == (2, 4, VOCAB)


def test_decoder_is_causal(model):
    """Changing target t changes no prediction at positions <= t."""
    changed = tf.tensor_scatter_nd_update(TARGETS, [[0, 2]], [4])
    before = model({"inputs": INPUTS, "targets": TARGETS}).numpy()
    after = model({"inputs": INPUTS, "targets": changed}).numpy()
    np.testing.assert_allclose(before[0, :3], after[0, :3], atol=1e-5)
    assert np.abs(before[0, 3] - after[0, 3]).max() > 1e-4


def test_padding_is_invisible(model):
    """Extra padding on either side does not change real positions' logits."""
    padded = {
        "inputs": tf.pad(INPUTS, [[0, 0], [0, 3]]),
        "targets": tf.pad(TARGETS, [[0, 0], [0, 2]]),
    }
    base = model({"inputs": INPUTS, "targets": TARGETS}).numpy()
    longer = model(padded).numpy()
    np.testing.assert_allclose(base, longer[:, :4], atol=1e-5)


def test_source_content_matters(model):
    other = tf.constant([[6, 5, 8, 7, 1], [3, 4, 1, 0, 0]], tf.int64)
    a = model({"inputs": INPUTS, "targets": TARGETS}).numpy()
    b = model({"inputs": other, "targets": TARGETS}).numpy()
    assert np.abs(a[0] - b[0]).max() > 1e-4
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)


def test_dropout_only_in_training(model):
    features = {"inputs": INPUTS, "targets": TARGETS}
    eval_a = model(features, training=False).numpy()
    eval_b = model(features, training=False).numpy()
    train = model(features, training=True).numpy()
    np.testing.assert_array_equal(eval_a, eval_b)
    assert np.abs(train - eval_a).max() > 1e-3


def test_one_matrix_for_source_target_and_softmax(model):
    vocab_matrices = [v for v in model.trainable_variables if tuple(v.shape) == (VOCAB, 16)]
    assert len(vocab_matrices) == 1
    # The softmax is the embedding transposed: perturbing the matrix row of
    # a token moves that token's logit.
    hidden = tf.random.normal([3, 16])
    logits = model.target_embedding.logits(hidden).numpy()
    expected = hidden.numpy() @ vocab_matrices[0].numpy().T
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_separate_vocabularies_get_separate_embeddings():
    model = transformer.Transformer(_tiny_hparams(), 11, VOCAB)
    logits = model(
        {"inputs": tf.constant([[3, 1]], tf.int64), "targets": tf.constant([[4, 1]], tf.int64)}
    )
    assert logits.shape == (1, 2, VOCAB)
    shapes = sorted(
        tuple(v.shape)
        for v in model.trainable_variables
        if v.shape[-1] == 16 and len(v.shape) == 2 and v.shape[0] in (11, VOCAB)
    )
    assert shapes == [(11, 16), (VOCAB, 16)]


def test_unshared_softmax_has_its_own_weights():
    hparams = _tiny_hparams(shared_embedding_and_softmax_weights=False)
    model = transformer.Transformer(hparams, VOCAB, VOCAB)
    model({"inputs": INPUTS, "targets": TARGETS})
    assert model.softmax_layer is not None
    assert model.input_embedding is not model.target_embedding


def test_heads_must_divide_hidden_size():
    with pytest.raises(ValueError, match="num_heads=3"):
        transformer.Transformer(_tiny_hparams(num_heads=3), VOCAB, VOCAB)


def test_incremental_decoding_matches_teacher_forcing(model):
    memory, bias = model.encode(INPUTS)
    full = model.decode(TARGETS, memory, bias).numpy()
    state = model.initial_decode_state(memory, bias, max_length=6)
    previous = tf.zeros([2], tf.int64)
    for position in range(TARGETS.shape[1]):
        logits, state = model.decode_step(previous, tf.constant(position), state)
        np.testing.assert_allclose(logits.numpy(), full[:, position], rtol=1e-4, atol=1e-4)
        previous = TARGETS[:, position]


def test_translate_returns_eos_terminated_ids(model):
    ids, scores = tf.function(lambda x: model.translate(x, beam_size=2, extra_length=3))(INPUTS)
    assert ids.shape[0] == 2 and ids.shape[1] <= INPUTS.shape[1] + 3
    assert np.all(np.isfinite(scores.numpy()))
    for row in ids.numpy():
        after_eos = row[list(row).index(1) + 1 :] if 1 in row else []
        assert not any(after_eos)


def _train_step(model, optimizer, features, label_smoothing):
    with tf.GradientTape() as tape:
        logits = model(features, training=False)
        loss_sum, weight = metrics.padded_cross_entropy(
            logits, features["targets"], label_smoothing
        )
        loss = loss_sum / weight
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


def test_xla_training_step_matches_graph_step():
    """One SGD step compiled with XLA gives the graph step's loss and update."""
    features = {
        "inputs": tf.pad(INPUTS, [[0, 0], [0, 3]]),
        "targets": tf.pad(TARGETS, [[0, 0], [0, 4]]),
    }
    results = []
    for jit in (False, True):
        tf.keras.utils.set_random_seed(3)
        model = transformer.Transformer(_tiny_hparams(), VOCAB, VOCAB)
        model(features)
        optimizer = tf.keras.optimizers.SGD(0.02)
        step = tf.function(_train_step, jit_compile=jit)
        losses = [float(step(model, optimizer, features, 0.1)) for _ in range(2)]
        results.append((losses, model.trainable_variables[0].numpy()))
    (graph_losses, graph_weights), (xla_losses, xla_weights) = results
    np.testing.assert_allclose(graph_losses, xla_losses, rtol=1e-4)
    assert graph_losses[1] < graph_losses[0]
    np.testing.assert_allclose(graph_weights, xla_weights, atol=1e-5)


def test_memorises_and_translates_a_small_reversal_set():
    """Adam fits 8 reversal pairs, and beam search then reproduces them."""
    tf.keras.utils.set_random_seed(1)
    hparams = _tiny_hparams(
        layer_prepostprocess_dropout=0.0, attention_dropout=0.0, relu_dropout=0.0
    )
    model = transformer.Transformer(hparams, 8, 8)
    optimizer = tf.keras.optimizers.Adam(0.01)
    symbols = np.random.default_rng(0).integers(2, 8, size=(8, 4))
    eos = np.ones((8, 1), np.int64)
    features = {
        "inputs": tf.constant(np.hstack([symbols, eos])),
        "targets": tf.constant(np.hstack([symbols[:, ::-1], eos])),
    }
    step = tf.function(_train_step)
    first = float(step(model, optimizer, features, 0.0))
    for _ in range(80):
        loss = float(step(model, optimizer, features, 0.0))
    assert loss < 0.05 * first
    translated, _ = model.translate(features["inputs"], beam_size=2)
    np.testing.assert_array_equal(translated.numpy()[:, :5], features["targets"].numpy())
    assert not translated.numpy()[:, 5:].any()


def test_checkpoint_round_trip_restores_every_weight(model, tmp_path):
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    tf.keras.utils.set_random_seed(99)
    fresh = transformer.Transformer(_tiny_hparams(), VOCAB, VOCAB)
    fresh({"inputs": INPUTS, "targets": TARGETS})
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    assert len(fresh.weights) == len(model.weights)
    for saved, restored in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
