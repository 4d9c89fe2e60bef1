"""The Transformer's building blocks: positions, masks, attention, feed-forward, embeddings.

Laid out as in T2T v2+: layer norm before each sub-layer, dropout then residual after it
("pre-norm"), padding masks on attention over the source, a causal mask in decoder
self-attention, one embedding matrix that doubles as the softmax. `sm3_t2t.transformer`
assembles them into the model.
"""

import math

import keras
import tensorflow as tf

from sm3_t2t.special_ids import PAD_ID

# Attention logits of masked positions; large but finite so that fully
# masked rows stay NaN-free in float32 and bfloat16.
_MASK_VALUE = -1e9


def timing_signal(length, channels, min_timescale=1.0, max_timescale=1.0e4):
    """Sinusoidal position signal of T2T's `add_timing_signal_1d`.

    Args:
      length: number of positions (int or scalar tensor).
      channels: signal width; the first half holds sines, the second cosines.
      min_timescale, max_timescale: the geometric range of wavelengths.

    Returns:
      float32 tensor `[length, channels]`.
    """
    position = tf.cast(tf.range(length), tf.float32)
    num_timescales = channels // 2
    log_increment = math.log(max_timescale / min_timescale) / max(num_timescales - 1, 1)
    inv_timescales = min_timescale * tf.exp(
        tf.range(num_timescales, dtype=tf.float32) * -log_increment
    )
    scaled_time = position[:, None] * inv_timescales[None, :]
    signal = tf.concat([tf.sin(scaled_time), tf.cos(scaled_time)], axis=1)
    # An odd width gets one zero channel, as in T2T.
    return tf.pad(signal, [[0, 0], [0, channels % 2]])


def padding_bias(ids):
    """Attention bias `[batch, 1, 1, length]` that hides padding positions."""
    is_pad = tf.cast(tf.equal(ids, PAD_ID), tf.float32)
    return (is_pad * _MASK_VALUE)[:, None, None, :]


def causal_bias(length):
    """Attention bias `[1, 1, length, length]` that hides future positions."""
    allowed = tf.linalg.band_part(tf.ones([length, length]), -1, 0)
    return ((1.0 - allowed) * _MASK_VALUE)[None, None, :, :]


class MultiHeadAttention(keras.layers.Layer):
    """Multi-head dot-product attention without biases, as in T2T.

    Queries are scaled by `depth ** -0.5` before the dot product; attention
    weights get dropout during training.
    """

    def __init__(self, hidden_size, num_heads, dropout, initializer, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}"
            )
        self.num_heads = num_heads
        self.depth = hidden_size // num_heads

        def dense(name):
            return keras.layers.Dense(
                hidden_size, use_bias=False, kernel_initializer=initializer, name=name
            )

        self.query_layer = dense("q")
        self.key_layer = dense("k")
        self.value_layer = dense("v")
        self.output_layer = dense("output_transform")
        self.dropout = keras.layers.Dropout(dropout)

    def _split_heads(self, x):
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        return tf.reshape(x, [batch, length, self.num_heads, self.depth])

    def keys_and_values(self, memory):
        """Projects `memory [B, L, H]` to keys and values `[B, L, heads, d]`."""
        return (
            self._split_heads(self.key_layer(memory)),
            self._split_heads(self.value_layer(memory)),
        )

    def attend(self, query_input, keys, values, bias, training=False):
        """Attends from `query_input [B, Lq, H]` over given keys and values."""
        query = self._split_heads(self.query_layer(query_input))
        query *= self.depth**-0.5
        logits = tf.einsum("bqhd,bkhd->bhqk", query, keys) + bias
        weights = self.dropout(tf.nn.softmax(logits), training=training)
        context = tf.einsum("bhqk,bkhd->bqhd", weights, values)
        batch, length = tf.shape(context)[0], tf.shape(context)[1]
        context = tf.reshape(context, [batch, length, self.num_heads * self.depth])
        return self.output_layer(context)

    def call(self, query_input, memory, bias, training=False):
        keys, values = self.keys_and_values(memory)
        return self.attend(query_input, keys, values, bias, training)


class FeedForward(keras.layers.Layer):
    """T2T's `dense_relu_dense`: relu hidden layer with dropout, then linear."""

    def __init__(self, hidden_size, filter_size, dropout, initializer, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(
            filter_size, activation="relu", kernel_initializer=initializer, name="conv1"
        )
        self.dropout = keras.layers.Dropout(dropout)
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=initializer, name="conv2"
        )

    def call(self, x, training=False):
        return self.output_dense(self.dropout(self.hidden(x), training=training))


class _PreNormResidual(keras.layers.Layer):
    """Layer norm in front of a sub-layer, dropout and residual add behind it.

    This is T2T's `layer_preprocess_sequence="n"` and
    `layer_postprocess_sequence="da"`.
    """

    def __init__(self, sublayer, dropout, epsilon, **kwargs):
        super().__init__(**kwargs)
        self.sublayer = sublayer
        self.norm = keras.layers.LayerNormalization(epsilon=epsilon, name="layer_norm")
        self.dropout = keras.layers.Dropout(dropout)

    def call(self, x, training=False):
        y = self.sublayer(self.norm(x), training=training)
        return x + self.dropout(y, training=training)


def _attention(hp, initializer, name):
    return MultiHeadAttention(
        hp.hidden_size, hp.num_heads, hp.attention_dropout, initializer, name=name
    )


def layer_norm(hp, name):
    return keras.layers.LayerNormalization(epsilon=hp.norm_epsilon, name=name)


def _feed_forward_block(hp, initializer):
    """norm -> FeedForward -> dropout -> + residual, as both layer types end."""
    return _PreNormResidual(
        FeedForward(hp.hidden_size, hp.filter_size, hp.relu_dropout, initializer, name="ffn"),
        hp.layer_prepostprocess_dropout,
        hp.norm_epsilon,
        name="ffn_block",
    )


class EncoderLayer(keras.layers.Layer):
    """Self-attention then feed-forward, each in a pre-norm residual block."""

    def __init__(self, hparams, initializer, **kwargs):
        super().__init__(**kwargs)
        self.self_attention = _attention(hparams, initializer, "self_attention")
        self.attention_norm = layer_norm(hparams, "self_attention_norm")
        self.ffn_block = _feed_forward_block(hparams, initializer)
        self.dropout = keras.layers.Dropout(hparams.layer_prepostprocess_dropout)

    def call(self, x, bias, training=False):
        normed = self.attention_norm(x)
        y = self.self_attention(normed, normed, bias, training=training)
        x = x + self.dropout(y, training=training)
        return self.ffn_block(x, training=training)


class DecoderLayer(keras.layers.Layer):
    """Causal self-attention, encoder-decoder attention, feed-forward.

    Besides the full-sequence `call`, `decode_step` processes one position
    with key/value caches, for beam search.
    """

    def __init__(self, hparams, initializer, **kwargs):
        super().__init__(**kwargs)
        self.self_attention = _attention(hparams, initializer, "self_attention")
        self.encdec_attention = _attention(hparams, initializer, "encdec_attention")
        self.self_norm = layer_norm(hparams, "self_attention_norm")
        self.encdec_norm = layer_norm(hparams, "encdec_attention_norm")
        self.ffn_block = _feed_forward_block(hparams, initializer)
        self.dropout = keras.layers.Dropout(hparams.layer_prepostprocess_dropout)

    def call(self, x, memory, self_bias, memory_bias, training=False):
        normed = self.self_norm(x)
        y = self.self_attention(normed, normed, self_bias, training=training)
        x = x + self.dropout(y, training=training)
        y = self.encdec_attention(self.encdec_norm(x), memory, memory_bias, training=training)
        x = x + self.dropout(y, training=training)
        return self.ffn_block(x, training=training)

    def decode_step(self, x, position, cache, memory_bias):
        """Runs position `position` (`x: [B, 1, H]`) against the caches.

        `cache` holds fixed-size `self_keys`/`self_values` `[B, T, heads, d]`
        (filled up to `position`) and the projected encoder `memory_keys`/
        `memory_values`. Returns the output and the updated cache.
        """
        normed = self.self_norm(x)
        new_keys, new_values = self.self_attention.keys_and_values(normed)
        max_length = tf.shape(cache["self_keys"])[1]
        # Writing through a one-hot mask keeps the cache shape fixed, which
        # XLA and tf.while_loop need (no dynamic concatenation).
        slot = tf.one_hot(position, max_length, dtype=x.dtype)[None, :, None, None]
        keys = cache["self_keys"] * (1.0 - slot) + new_keys * slot
        values = cache["self_values"] * (1.0 - slot) + new_values * slot
        visible = tf.cast(tf.range(max_length) <= position, x.dtype)
        self_bias = ((1.0 - visible) * _MASK_VALUE)[None, None, None, :]
        y = self.self_attention.attend(normed, keys, values, self_bias)
        x = x + y
        y = self.encdec_attention.attend(
            self.encdec_norm(x), cache["memory_keys"], cache["memory_values"], memory_bias
        )
        x = x + y
        new_cache = dict(cache, self_keys=keys, self_values=values)
        return self.ffn_block(x), new_cache


class SharedEmbedding(keras.layers.Layer):
    """Token embedding whose matrix doubles as the softmax weights.

    Embeddings are scaled by `sqrt(hidden_size)` and the padding id embeds to
    zeros (T2T's symbol modality); `logits` multiplies by the transpose.
    """

    def __init__(self, vocab_size, hidden_size, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size

    def build(self, input_shape=None):
        self.weights_matrix = self.add_weight(
            name="weights",
            shape=(self.vocab_size, self.hidden_size),
            initializer=keras.initializers.RandomNormal(stddev=self.hidden_size**-0.5),
        )

    def call(self, ids):
        embedded = tf.gather(self.weights_matrix, ids)
        not_pad = tf.cast(tf.not_equal(ids, PAD_ID), embedded.dtype)
        return embedded * not_pad[..., None] * self.hidden_size**0.5

    def logits(self, hidden):
        # A plain 2-D matmul: einsum's gradient with "..." broadcasting
        # materialises a [vocab, batch, ...] tensor.
        flat = tf.reshape(hidden, [-1, self.hidden_size])
        logits = tf.matmul(flat, self.weights_matrix, transpose_b=True)
        return tf.reshape(logits, tf.concat([tf.shape(hidden)[:-1], [self.vocab_size]], 0))
