"""Batched beam search in plain TensorFlow, after T2T's `beam_search`.

The search keeps, per sentence, `beam_size` *alive* hypotheses (no EOS yet)
and `beam_size` *finished* ones. Each step scores every extension of every
alive beam, takes the best `2 * beam_size` (so that enough non-EOS candidates
survive), moves EOS-ended candidates to the finished set and the rest to the
alive set. Finished hypotheses are ranked by the log-probability divided by
T2T's length penalty `((5 + length) / 6) ** alpha` (GNMT, Wu et al. 2016).

Everything has a fixed shape inside the `tf.while_loop` (sequences live in a
`[batch, beam, decode_length + 1]` buffer), so the search runs in
`tf.function` and compiles with XLA. `beam_size=1` is greedy decoding.
"""

import numpy as np
import tensorflow as tf

# Log-probability of the initially empty beams and finished slots; finite so
# that arithmetic on it (length penalties, sums) stays NaN-free.
_NEG_INF = -1.0e7


def length_penalty(length, alpha):
    """T2T/GNMT length penalty `((5 + length) / 6) ** alpha`."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _merge_beams(x):
    """`[B, beam, ...]` -> `[B * beam, ...]`."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))


def _split_beams(x, beam_size):
    """`[B * beam, ...]` -> `[B, beam, ...]`."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[shape[0] // beam_size, beam_size], shape[1:]], 0))


def expand_to_beams(x, beam_size):
    """Tiles `[B, ...]` to `[B * beam, ...]`, each row repeated `beam_size`."""
    return tf.repeat(x, beam_size, axis=0)


def _gather_beams(nested, beam_indices, beam_size):
    """Picks beams `beam_indices [B, k]` from every `[B * beam, ...]` tensor."""

    def gather(x):
        picked = tf.gather(_split_beams(x, beam_size), beam_indices, batch_dims=1)
        return _merge_beams(picked)

    return tf.nest.map_structure(gather, nested)


def _top_k(scores, k, *tensors):
    """Top `k` of `scores [B, n]` and the matching rows of `tensors [B, n, ...]`."""
    top_scores, indices = tf.math.top_k(scores, k=k)
    return (top_scores, indices) + tuple(tf.gather(t, indices, batch_dims=1) for t in tensors)


def beam_search(
    symbols_to_logits_fn,
    initial_ids,
    beam_size,
    decode_length,
    vocab_size,
    alpha,
    states=None,
    eos_id=1,
    stop_early=True,
):
    """Beam search for the best sequences under `symbols_to_logits_fn`.

    Args:
      symbols_to_logits_fn: `(last_ids [B*beam], position, states) ->
        (logits [B*beam, vocab_size], new_states)`; `position` counts from 0
        and is where `last_ids` sit in the sequence.
      initial_ids: `[B]` ids to start from (the GO symbol).
      beam_size: number of beams; 1 gives greedy decoding.
      decode_length: maximum number of tokens to generate, EOS included:
        an int, a scalar, or a `[B]` vector of per-sentence limits. A
        hypothesis reaching its limit must end there with EOS, so each
        sentence's result does not depend on what it is batched with.
      vocab_size: size of the last logits dimension.
      alpha: length penalty exponent; 0 ranks by raw log-probability.
      states: nested structure of `[B, ...]` tensors handed to the model
        (e.g. key/value caches); tiled to `[B*beam, ...]` here.
      eos_id: id that finishes a hypothesis.
      stop_early: stop once no alive beam can beat the finished ones.

    Returns:
      `(sequences [B, beam, max(decode_length)], scores [B, beam])`, best
      first.
      Sequences exclude the initial id and hold 0 after their EOS; scores are
      length-normalised log-probabilities (for sentences where nothing
      finished, the raw log-probability of the alive beams).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    initial_ids = tf.convert_to_tensor(initial_ids)
    batch = tf.shape(initial_ids)[0]
    limits = tf.broadcast_to(tf.convert_to_tensor(decode_length, tf.int32), [batch])
    decode_length = tf.reduce_max(limits)
    ids_dtype = initial_ids.dtype
    states = tf.nest.map_structure(lambda x: expand_to_beams(x, beam_size), states or {})

    # Slot 0 holds the initial id; generated tokens go to 1..decode_length.
    alive_seq = tf.zeros([batch, beam_size, decode_length + 1], ids_dtype)
    alive_seq += (
        tf.cast(tf.one_hot(0, decode_length + 1, dtype=tf.int32), ids_dtype)[None, None, :]
        * initial_ids[:, None, None]
    )
    # Only the first beam is live at the start, so the first step does not
    # pick the same extension beam_size times.
    alive_log_probs = tf.tile(
        tf.concat([[0.0], tf.fill([beam_size - 1], _NEG_INF)], 0)[None], [batch, 1]
    )
    finished_seq = tf.zeros_like(alive_seq)
    finished_scores = tf.fill([batch, beam_size], _NEG_INF)
    finished_flags = tf.zeros([batch, beam_size], tf.bool)

    def grow(i, alive_seq, alive_log_probs, finished_seq, finished_scores, finished_flags, states):
        last_ids = _merge_beams(tf.gather(alive_seq, i, axis=2))
        logits, states = symbols_to_logits_fn(last_ids, i, states)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        log_probs = _split_beams(log_probs, beam_size)
        # At a sentence's length limit only EOS may follow.
        must_end = (i + 1 >= limits)[:, None, None]
        log_probs = tf.where(
            must_end & (tf.range(vocab_size) != eos_id)[None, None, :], -np.inf, log_probs
        )
        candidate_log_probs = log_probs + alive_log_probs[:, :, None]
        penalty = length_penalty(i + 1, alpha)
        flat = tf.reshape(candidate_log_probs, [batch, -1])

        # 2 * beam candidates: even if beam of them end in EOS, beam remain.
        top_log_probs, top_flat_ids = tf.math.top_k(flat, k=2 * beam_size)
        top_beams = top_flat_ids // vocab_size
        top_tokens = tf.cast(top_flat_ids % vocab_size, ids_dtype)
        top_seq = tf.gather(alive_seq, top_beams, batch_dims=1)
        slot = tf.cast(tf.one_hot(i + 1, decode_length + 1, dtype=tf.int32), ids_dtype)[
            None, None, :
        ]
        top_seq = top_seq * (1 - slot) + top_tokens[:, :, None] * slot
        top_finished = tf.equal(top_tokens, eos_id)

        # Alive set: the best candidates that did not end with EOS. An
        # EOS candidate must never be picked, not even over a dead beam's
        # (finite, very low) score, hence -inf rather than a large negative.
        alive_scores = tf.where(top_finished, -np.inf, top_log_probs)
        _, alive_pick, alive_seq, alive_log_probs = _top_k(
            alive_scores, beam_size, top_seq, top_log_probs
        )
        source_beams = tf.gather(top_beams, alive_pick, batch_dims=1)
        states = _gather_beams(states, source_beams, beam_size)

        # Finished set: the best of the old finished and new EOS candidates.
        new_scores = tf.where(top_finished, top_log_probs / penalty, -np.inf)
        finished_scores, _, finished_seq, finished_flags = _top_k(
            tf.concat([finished_scores, new_scores], 1),
            beam_size,
            tf.concat([finished_seq, top_seq], 1),
            tf.concat([finished_flags, top_finished], 1),
        )
        return (
            i + 1,
            alive_seq,
            alive_log_probs,
            finished_seq,
            finished_scores,
            finished_flags,
            states,
        )

    def grow_keeping_shapes(*loop_vars):
        # Gathers lose static dimensions (e.g. the batch size) that the
        # loop variables had on entry; tf.while_loop needs them unchanged.
        def keep_shape(new, old):
            new.set_shape(old.shape)
            return new

        return tf.nest.map_structure(keep_shape, grow(*loop_vars), tuple(loop_vars))

    def not_done(
        i, alive_seq, alive_log_probs, finished_seq, finished_scores, finished_flags, states
    ):
        in_length = i < decode_length
        if not stop_early:
            return in_length
        # Alive log-probs only fall as tokens are added, and the length
        # penalty is largest at the limit: this bounds any alive beam.
        best_alive = alive_log_probs[:, 0] / length_penalty(limits, alpha)
        worst_finished = tf.reduce_min(tf.where(finished_flags, finished_scores, 0.0), axis=1)
        worst_finished += (
            1.0 - tf.cast(tf.reduce_any(finished_flags, axis=1), tf.float32)
        ) * _NEG_INF
        can_improve = tf.reduce_any(best_alive > worst_finished)
        return tf.logical_and(in_length, can_improve)

    loop_vars = (
        tf.constant(0),
        alive_seq,
        alive_log_probs,
        finished_seq,
        finished_scores,
        finished_flags,
        states,
    )
    (_, alive_seq, alive_log_probs, finished_seq, finished_scores, finished_flags, _) = (
        tf.while_loop(not_done, grow_keeping_shapes, loop_vars)
    )

    any_finished = tf.reduce_any(finished_flags, axis=1)
    sequences = tf.where(any_finished[:, None, None], finished_seq, alive_seq)
    scores = tf.where(any_finished[:, None], finished_scores, alive_log_probs)
    sequences = sequences[:, :, 1:]
    # Zero everything after the first EOS (alive beams never contain one).
    after_eos = (
        tf.cumsum(tf.cast(tf.equal(sequences, eos_id), tf.int32), axis=2, exclusive=True) > 0
    )
    sequences = tf.where(after_eos, tf.zeros_like(sequences), sequences)
    return sequences, scores
