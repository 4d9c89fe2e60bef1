"""The Transformer encoder-decoder as a Keras model, laid out as in T2T v2+.

"Attention Is All You Need" (Vaswani et al., 2017) with Tensor2Tensor's later
defaults: layer norm *before* each sub-layer and dropout-then-residual after it
("pre-norm"), a final layer norm on both stacks, sinusoidal positions, one
embedding matrix shared by source, target and softmax, padding masks on every
attention over the source, and a causal mask in decoder self-attention.

Shapes are static-friendly: training is a single call on `[batch, length]`
int ids, and incremental decoding keeps its key/value caches in fixed-size
buffers, so both run under XLA (`jit_compile=True`) and on TPUs.

Example:

    model = Transformer(hparams, input_vocab_size=v, target_vocab_size=v)
    logits = model({"inputs": src_ids, "targets": tgt_ids}, training=True)
    ids, scores = model.translate(src_ids, beam_size=4, alpha=0.6)
"""

import math

import keras
import tensorflow as tf

from sm3_t2t import beam_search, registry

# Attention logits of masked positions; large but finite so that fully
# masked rows stay NaN-free in float32 and bfloat16.
_MASK_VALUE = -1e9
# The decoder's first input position is the all-zero "GO" embedding, which is
# what embedding the padding id 0 gives (T2T's shift_right).
_GO_ID = 0
_PAD_ID = 0


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
    is_pad = tf.cast(tf.equal(ids, _PAD_ID), tf.float32)
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


def _layer_norm(hp, name):
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
        self.attention_norm = _layer_norm(hparams, "self_attention_norm")
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
        self.self_norm = _layer_norm(hparams, "self_attention_norm")
        self.encdec_norm = _layer_norm(hparams, "encdec_attention_norm")
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
        not_pad = tf.cast(tf.not_equal(ids, _PAD_ID), embedded.dtype)
        return embedded * not_pad[..., None] * self.hidden_size**0.5

    def logits(self, hidden):
        # A plain 2-D matmul: einsum's gradient with "..." broadcasting
        # materialises a [vocab, batch, ...] tensor.
        flat = tf.reshape(hidden, [-1, self.hidden_size])
        logits = tf.matmul(flat, self.weights_matrix, transpose_b=True)
        return tf.reshape(logits, tf.concat([tf.shape(hidden)[:-1], [self.vocab_size]], 0))


@registry.register_model
class Transformer(keras.Model):
    """Encoder-decoder Transformer for sequence-to-sequence problems.

    Args:
      hparams: an `HParams` from a `transformer_*` set.
      input_vocab_size: source vocabulary size.
      target_vocab_size: target vocabulary size.

    Calling the model on `{"inputs": [B, Ls], "targets": [B, Lt]}` (int ids,
    0-padded, EOS-terminated) returns next-token logits `[B, Lt, V]`: position
    t predicts `targets[:, t]` from `targets[:, :t]`.
    """

    def __init__(self, hparams, input_vocab_size, target_vocab_size, **kwargs):
        super().__init__(**kwargs)
        hp = hparams
        self.hparams = hp
        self.target_vocab_size = target_vocab_size
        initializer = keras.initializers.VarianceScaling(
            scale=hp.initializer_gain, mode="fan_avg", distribution="uniform"
        )
        share = hp.shared_embedding_and_softmax_weights
        self.target_embedding = SharedEmbedding(
            target_vocab_size, hp.hidden_size, name="target_embedding"
        )
        if share and input_vocab_size == target_vocab_size:
            self.input_embedding = self.target_embedding
        else:
            self.input_embedding = SharedEmbedding(
                input_vocab_size, hp.hidden_size, name="input_embedding"
            )
        self.softmax_layer = (
            None if share else keras.layers.Dense(target_vocab_size, use_bias=False, name="softmax")
        )
        # One attribute per layer, not a list: Keras 3 keeps lists out of
        # tf.train.Checkpoint's object graph, so their weights would not be
        # saved or restored.
        self.num_encoder_layers = hp.num_encoder_layers or hp.num_hidden_layers
        self.num_decoder_layers = hp.num_decoder_layers or hp.num_hidden_layers
        for i in range(self.num_encoder_layers):
            setattr(
                self, f"encoder_layer_{i}", EncoderLayer(hp, initializer, name=f"encoder_layer_{i}")
            )
        for i in range(self.num_decoder_layers):
            setattr(
                self, f"decoder_layer_{i}", DecoderLayer(hp, initializer, name=f"decoder_layer_{i}")
            )
        self.encoder_norm = _layer_norm(hp, "encoder_norm")
        self.decoder_norm = _layer_norm(hp, "decoder_norm")
        self.input_dropout = keras.layers.Dropout(hp.layer_prepostprocess_dropout)
        self.target_dropout = keras.layers.Dropout(hp.layer_prepostprocess_dropout)

    @property
    def encoder_layers(self):
        return [getattr(self, f"encoder_layer_{i}") for i in range(self.num_encoder_layers)]

    @property
    def decoder_layers(self):
        return [getattr(self, f"decoder_layer_{i}") for i in range(self.num_decoder_layers)]

    def encode(self, inputs, training=False):
        """Encodes `inputs [B, Ls]`; returns (`memory [B, Ls, H]`, bias)."""
        bias = padding_bias(inputs)
        x = self.input_embedding(inputs)
        x += timing_signal(tf.shape(inputs)[1], self.hparams.hidden_size)
        x = self.input_dropout(x, training=training)
        for layer in self.encoder_layers:
            x = layer(x, bias, training=training)
        return self.encoder_norm(x), bias

    def _logits(self, hidden):
        hidden = self.decoder_norm(hidden)
        if self.softmax_layer is None:
            return self.target_embedding.logits(hidden)
        return self.softmax_layer(hidden)

    def decode(self, targets, memory, memory_bias, training=False):
        """Teacher-forced decoding: logits `[B, Lt, V]` for `targets`."""
        length = tf.shape(targets)[1]
        # Shift right: position t sees targets[:, :t]; position 0 sees GO.
        shifted = tf.pad(targets, [[0, 0], [1, 0]], constant_values=_GO_ID)[:, :-1]
        x = self.target_embedding(shifted)
        x += timing_signal(length, self.hparams.hidden_size)
        x = self.target_dropout(x, training=training)
        self_bias = causal_bias(length)
        for layer in self.decoder_layers:
            x = layer(x, memory, self_bias, memory_bias, training=training)
        return self._logits(x)

    def call(self, features, training=False):
        memory, memory_bias = self.encode(features["inputs"], training=training)
        return self.decode(features["targets"], memory, memory_bias, training=training)

    def initial_decode_state(self, memory, memory_bias, max_length):
        """Per-layer caches for `decode_step`, plus the memory bias."""
        batch = tf.shape(memory)[0]
        hp = self.hparams
        depth = hp.hidden_size // hp.num_heads
        empty = tf.zeros([batch, max_length, hp.num_heads, depth], memory.dtype)
        layers = []
        for layer in self.decoder_layers:
            keys, values = layer.encdec_attention.keys_and_values(memory)
            layers.append(
                {
                    "self_keys": empty,
                    "self_values": empty,
                    "memory_keys": keys,
                    "memory_values": values,
                }
            )
        return {"layers": layers, "memory_bias": memory_bias}

    def decode_step(self, ids, position, state):
        """Logits `[B, V]` for the token after `ids [B]` at `position`."""
        x = self.target_embedding(ids[:, None])
        signal = timing_signal(position + 1, self.hparams.hidden_size)
        x += signal[-1][None, None, :]
        new_layers = []
        for layer, cache in zip(self.decoder_layers, state["layers"]):
            x, cache = layer.decode_step(x, position, cache, state["memory_bias"])
            new_layers.append(cache)
        logits = self._logits(x)[:, 0, :]
        return logits, {"layers": new_layers, "memory_bias": state["memory_bias"]}

    def translate(self, inputs, beam_size=4, alpha=0.6, extra_length=50, eos_id=1):
        """Beam-search decoding of `inputs [B, Ls]`.

        Args:
          inputs: int ids, 0-padded, EOS-terminated.
          beam_size: beams per sentence; 1 is greedy decoding.
          alpha: T2T length penalty exponent, `((5 + len) / 6) ** alpha`.
          extra_length: a translation has at most its source's length plus
            `extra_length` tokens, EOS included.
          eos_id: the id that ends a translation.

        Returns:
          `(ids [B, T], scores [B])`: the best beam per sentence, padded with
          0 after its EOS, and its length-normalised log-probability;
          `T = max(source length) + extra_length`.
        """
        inputs = tf.convert_to_tensor(inputs)
        memory, memory_bias = self.encode(inputs)
        # Per-sentence limits (T2T's decode_length = input length + extra),
        # so a translation does not depend on the batch's padding.
        input_lengths = tf.reduce_sum(tf.cast(tf.not_equal(inputs, _PAD_ID), tf.int32), axis=1)
        limits = input_lengths + extra_length
        state = self.initial_decode_state(memory, memory_bias, tf.reduce_max(limits))
        batch = tf.shape(inputs)[0]

        def symbols_to_logits(last_ids, position, state):
            return self.decode_step(last_ids, position, state)

        ids, scores = beam_search.beam_search(
            symbols_to_logits,
            initial_ids=tf.fill([batch], tf.constant(_GO_ID, inputs.dtype)),
            beam_size=beam_size,
            decode_length=limits,
            vocab_size=self.target_vocab_size,
            alpha=alpha,
            states=state,
            eos_id=eos_id,
        )
        return ids[:, 0, :], scores[:, 0]
