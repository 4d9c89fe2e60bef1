"""Training and evaluation metrics: label-smoothed loss, accuracy, BLEU.

The loss and accuracy follow T2T's `padded_cross_entropy` and
`padded_accuracy`: positions whose label is PAD_ID carry no weight,
and functions return `(sum, weight)` pairs so that callers can add them up
across batches and replicas before dividing. BLEU is sacrebleu's corpus BLEU
on detokenized text, the number papers report.
"""

import sacrebleu
import tensorflow as tf

from sm3_t2t.special_ids import PAD_ID


def _padding_weights(labels):
    return tf.cast(tf.not_equal(labels, PAD_ID), tf.float32)


def padded_cross_entropy(logits, labels, label_smoothing=0.0):
    """Label-smoothed cross-entropy summed over non-padding positions.

    With smoothing `s` over a vocabulary of `V`, the target distribution puts
    `1 - s` on the label and `s / (V - 1)` on every other token. As in T2T the
    entropy of that distribution is subtracted, so a perfect model scores 0
    whatever `s` is.

    Args:
      logits: `[..., V]` float logits.
      labels: `[...]` int labels; 0 is padding.
      label_smoothing: `s` in `[0, 1)`.

    Returns:
      `(loss_sum, weight_sum)`: float32 scalars; the mean loss per token is
      `loss_sum / weight_sum`.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    logits = tf.cast(logits, tf.float32)
    vocab_size = tf.shape(logits)[-1]
    confidence = 1.0 - label_smoothing
    low_confidence = label_smoothing / tf.cast(vocab_size - 1, tf.float32)
    soft_targets = tf.one_hot(
        tf.cast(labels, tf.int32), vocab_size, on_value=confidence, off_value=low_confidence
    )
    xent = tf.nn.softmax_cross_entropy_with_logits(labels=soft_targets, logits=logits)
    # Entropy of the smoothed target distribution (xlogy(0, 0) == 0).
    normalizing = -(
        tf.math.xlogy(confidence, confidence)
        + tf.cast(vocab_size - 1, tf.float32) * tf.math.xlogy(low_confidence, low_confidence)
    )
    weights = _padding_weights(labels)
    return (tf.reduce_sum((xent - normalizing) * weights), tf.reduce_sum(weights))


def padded_accuracy(logits, labels):
    """Arg-max token accuracy over non-padding positions.

    Returns:
      `(correct_sum, weight_sum)` float32 scalars.
    """
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int64)
    correct = tf.cast(tf.equal(predictions, tf.cast(labels, tf.int64)), tf.float32)
    weights = _padding_weights(labels)
    return tf.reduce_sum(correct * weights), tf.reduce_sum(weights)


def bleu(hypotheses, references):
    """Corpus BLEU (0-100) of detokenized `hypotheses` against `references`.

    Args:
      hypotheses: list of system translations (strings).
      references: list of reference translations, same length.

    Raises:
      ValueError: if the lists differ in length or are empty.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references differ in length: {len(hypotheses)} vs {len(references)}"
        )
    if not hypotheses:
        raise ValueError("bleu needs at least one hypothesis")
    return sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score
