"""Tests of the trainer's metrics: label-smoothed loss, accuracy, BLEU."""

import math

import numpy as np
import pytest
import tensorflow as tf

from sm3_t2t import metrics


def _smoothed_xent_by_hand(logits, label, smoothing):
    """Cross-entropy against the smoothed one-hot, minus its entropy."""
    vocab = len(logits)
    log_probs = logits - np.log(np.sum(np.exp(logits)))
    target = np.full(vocab, smoothing / (vocab - 1))
    target[label] = 1.0 - smoothing
    entropy = -sum(p * math.log(p) for p in target if p > 0)
    return -np.sum(target * log_probs) - entropy


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_padded_cross_entropy_matches_the_definition(smoothing):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    labels = np.array([[2, 4, 1], [3, 1, 0]])  # one padding position
    loss_sum, weight = metrics.padded_cross_entropy(
        tf.constant(logits), tf.constant(labels), smoothing
    )
    expected = sum(
        _smoothed_xent_by_hand(logits[b, t], labels[b, t], smoothing)
        for b in range(2)
        for t in range(3)
        if labels[b, t]
    )
    assert float(weight) == 5.0
    assert float(loss_sum) == pytest.approx(expected, rel=1e-5)


def test_perfect_prediction_scores_zero_even_with_smoothing():
    vocab, smoothing = 6, 0.1
    labels = tf.constant([[3, 2, 1]])
    # Logits whose softmax equals the smoothed target distribution.
    probs = np.full((1, 3, vocab), smoothing / (vocab - 1))
    for t, label in enumerate([3, 2, 1]):
        probs[0, t, label] = 1.0 - smoothing
    loss_sum, _ = metrics.padded_cross_entropy(
        tf.constant(np.log(probs), tf.float32), labels, smoothing
    )
    assert float(loss_sum) == pytest.approx(0.0, abs=1e-5)


def test_padding_gets_no_weight():
    logits = tf.random.normal([1, 4, 7])
    labels = tf.constant([[5, 1, 0, 0]])
    full, weight = metrics.padded_cross_entropy(logits, labels, 0.1)
    cut, _ = metrics.padded_cross_entropy(logits[:, :2], labels[:, :2], 0.1)
    assert float(weight) == 2.0
    assert float(full) == pytest.approx(float(cut), rel=1e-6)


def test_bad_smoothing_is_an_error():
    with pytest.raises(ValueError, match="label_smoothing"):
        metrics.padded_cross_entropy(tf.zeros([1, 1, 3]), tf.ones([1, 1]), 1.0)


def test_padded_accuracy_counts_only_real_tokens():
    logits = tf.one_hot([[2, 3, 4, 0]], depth=5)  # predicts 2, 3, 4, 0
    labels = tf.constant([[2, 1, 4, 0]])
    correct, weight = metrics.padded_accuracy(logits, labels)
    assert (float(correct), float(weight)) == (2.0, 3.0)


def test_bleu_is_100_for_exact_and_low_for_unrelated_text():
    references = ["le chat est sur le tapis", "il fait beau aujourd'hui"]
    assert metrics.bleu(references, references) == pytest.approx(100.0)
    unrelated = ["trois pommes vertes", "un bateau rouge"]
    assert metrics.bleu(unrelated, references) < 5.0


def test_bleu_checks_its_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        metrics.bleu([], [])
