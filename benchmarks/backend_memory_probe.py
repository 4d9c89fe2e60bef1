"""Peak resident memory of one transformer_small training step on this process's Keras backend.

    KERAS_BACKEND=jax python -m benchmarks.backend_memory_probe --optimizer=sm3 --vocab=32768

The T2T Transformer of `models/sm3_t2t` is TensorFlow code, so this builds the same
transformer_small in backend-neutral Keras (pre-norm, shared input/target/softmax embedding,
attention projections without bias, ReLU feed-forward with biases, sinusoidal positions) and checks
at run time that its trainable shapes are exactly `model_shapes.transformer_shapes` of
transformer_small (hidden 256, filter 1024, 4 heads, 2 + 2 layers). Then one `train_on_batch` on
random ids, `batch_tokens // length` sentences of `length` tokens on each side, in the backend's
usual mode: XLA-compiled on JAX (`jit_compile=True`), a tf.function on TensorFlow (so SM3 runs its
fused kernel), eager on PyTorch (`jit_compile="auto"` is eager there). Prints one JSON line (the
`rss_probe.RESULT_PREFIX` protocol) with the peak RSS (VmHWM) of the process.

`--optimizer`: a name of `benchmarks/roster.py`, or "sgd" (plain SGD, no state: the baseline).
Only Keras, the backend's own framework and `sm3_tf` are imported: no TensorFlow off its backend.
"""

import argparse
import importlib
import json
import math
import time

import keras
import numpy as np
from keras import ops

from benchmarks import model_shapes, roster, rss_probe

HIDDEN, FILTER, HEADS, LAYERS = 256, 1024, 4, 2  # transformer_small
# Keras's train_on_batch needs an optimizer: plain SGD, which keeps no state, is the baseline.
BASELINE = "sgd"
JIT_COMPILE = {"jax": True, "tensorflow": False, "torch": False}


class SharedEmbedding(keras.layers.Layer):
    """Embeds ids (scaled by sqrt(hidden)) and projects back to logits with one matrix."""

    def __init__(self, vocab, hidden, **kwargs):
        super().__init__(**kwargs)
        self.table = self.add_weight(shape=(vocab, hidden), name="weights_0")
        self.hidden = hidden

    def call(self, ids=None, hidden_states=None):
        if hidden_states is not None:
            return ops.matmul(hidden_states, ops.transpose(self.table))
        return ops.take(self.table, ids, axis=0) * math.sqrt(self.hidden)


class Attention(keras.layers.Layer):
    """Multi-head attention with T2T's four [hidden, hidden] projections, no biases."""

    def __init__(self, hidden, heads, causal=False, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.causal = heads, causal
        self.projections = [self.add_weight(shape=(hidden, hidden), name=name) for name in "qkvo"]

    def _split(self, x):
        _, length, hidden = x.shape  # static; the batch may be unknown
        x = ops.reshape(x, (-1, length, self.heads, hidden // self.heads))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x, memory=None):
        memory = x if memory is None else memory
        q, k, v = (
            self._split(ops.matmul(source, w))
            for source, w in zip((x, memory, memory), self.projections)
        )
        logits = ops.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
        if self.causal:
            future = ops.triu(ops.ones((x.shape[1], memory.shape[1])), k=1)
            logits = logits - 1e9 * future
        out = ops.einsum("bhqk,bhkd->bhqd", ops.softmax(logits, axis=-1), v)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, x.shape[1], x.shape[2]))
        return ops.matmul(out, self.projections[3])


def build_transformer(vocab, length):
    """The Keras transformer_small: {"inputs", "targets"} ids -> logits over `vocab`."""

    def positions():
        position = np.arange(length)[:, None]
        scales = np.exp(-np.log(1e4) * np.arange(HIDDEN // 2) / max(HIDDEN // 2 - 1, 1))
        signal = np.concatenate([np.sin(position * scales), np.cos(position * scales)], axis=1)
        return ops.convert_to_tensor(signal[None].astype("float32"))

    def feed_forward(x):
        x = keras.layers.Dense(FILTER, activation="relu")(x)
        return keras.layers.Dense(HIDDEN)(x)

    def block(x, sublayer):
        return x + sublayer(keras.layers.LayerNormalization(epsilon=1e-6)(x))

    inputs = keras.Input((length,), dtype="int32", name="inputs")
    targets = keras.Input((length,), dtype="int32", name="targets")
    embedding = SharedEmbedding(vocab, HIDDEN)
    x = embedding(inputs) + positions()
    for _ in range(LAYERS):
        x = block(x, Attention(HIDDEN, HEADS))
        x = block(x, feed_forward)
    memory = keras.layers.LayerNormalization(epsilon=1e-6)(x)
    # Targets shifted right by one position, as T2T's decoder input.
    y = embedding(ops.pad(targets[:, :-1], ((0, 0), (1, 0)))) + positions()
    for _ in range(LAYERS):
        y = block(y, Attention(HIDDEN, HEADS, causal=True))
        y = block(y, lambda h: Attention(HIDDEN, HEADS)(h, memory))
        y = block(y, feed_forward)
    y = keras.layers.LayerNormalization(epsilon=1e-6)(y)
    logits = embedding(hidden_states=y)
    return keras.Model({"inputs": inputs, "targets": targets}, logits)


def check_shapes(model, vocab):
    """The model's trainable shapes must be transformer_small's, as `model_shapes` lists them."""
    expected = model_shapes.transformer_shapes(vocab, HIDDEN, FILTER, LAYERS, LAYERS)
    actual = sorted(tuple(v.shape) for v in model.trainable_variables)
    if actual != sorted(shape for _, shape in expected):
        raise AssertionError("the Keras model's shapes are not transformer_small's")
    return model_shapes.parameter_count(expected)


def make_optimizer(name):
    return keras.optimizers.SGD() if name == BASELINE else roster.make(name)


def library_versions(backend):
    """{"keras": version, <backend>: version} of this process; the backend's framework (tensorflow,
    jax, torch), whose module has the backend's name, Keras has already imported."""
    return {"keras": keras.__version__, backend: importlib.import_module(backend).__version__}


def measure(optimizer_name, vocab, batch_tokens, length, seed=1):
    import sm3_tf
    from sm3_tf import memory

    keras.utils.set_random_seed(seed)
    model = build_transformer(vocab, length)
    params = check_shapes(model, vocab)
    optimizer = make_optimizer(optimizer_name)
    backend = keras.backend.backend()
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=JIT_COMPILE.get(backend, "auto"),
    )
    sentences = max(1, batch_tokens // length)
    rng = np.random.default_rng(seed)
    features = {
        name: rng.integers(2, vocab, size=(sentences, length)).astype("int32")
        for name in ("inputs", "targets")
    }
    start = time.perf_counter()
    loss = model.train_on_batch(features, features["targets"])
    seconds = time.perf_counter() - start
    sm3_path = None
    if isinstance(optimizer, sm3_tf.SM3):
        sm3_path = optimizer.step_path(model.trainable_variables[0]).kind
    return {
        "backend": backend,
        "optimizer": optimizer_name,
        "jit_compile": JIT_COMPILE.get(backend, "auto"),
        "vocab": vocab,
        "batch_tokens": sentences * length,
        "params": params,
        "state_bytes": memory.state_bytes(optimizer),
        "peak_rss": rss_probe._peak_rss_bytes(),
        "first_step_seconds": seconds,
        "loss": float(np.asarray(loss)),
        "sm3_path": sm3_path,
        "versions": library_versions(backend),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizer", required=True)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--batch_tokens", type=int, default=2048)
    parser.add_argument("--length", type=int, default=64)
    args = parser.parse_args()
    result = measure(args.optimizer, args.vocab, args.batch_tokens, args.length)
    print(rss_probe.RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
