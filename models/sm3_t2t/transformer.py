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

import keras
import tensorflow as tf

from sm3_t2t import beam_search, registry
from sm3_t2t.special_ids import EOS_ID, PAD_ID
from sm3_t2t.transformer_layers import (  # noqa: F401  (timing_signal: part of this module's API)
    DecoderLayer,
    EncoderLayer,
    SharedEmbedding,
    causal_bias,
    layer_norm,
    padding_bias,
    timing_signal,
)

# The decoder's first input position is the all-zero "GO" embedding, which is
# what embedding the padding id gives (T2T's shift_right).
_GO_ID = PAD_ID


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
        self.encoder_norm = layer_norm(hp, "encoder_norm")
        self.decoder_norm = layer_norm(hp, "decoder_norm")
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

    def translate(self, inputs, beam_size=4, alpha=0.6, extra_length=50, eos_id=EOS_ID):
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
        input_lengths = tf.reduce_sum(tf.cast(tf.not_equal(inputs, PAD_ID), tf.int32), axis=1)
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
