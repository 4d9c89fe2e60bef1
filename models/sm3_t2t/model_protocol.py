"""`Model`: what sm3-trainer and sm3-decoder ask of a registered model.

Register a class with `sm3_t2t.registry.register_model` (in a module of `--t2t_usr_dir`, or any
module imported before the look-up) and it trains and decodes like the built-in Transformer,
provided it has these parts:

  constructor   `ModelClass(hparams, input_vocab_size=..., target_vocab_size=...)`: the resolved
                `HParams` of the run and the problem's vocabulary sizes (keyword arguments).
  __call__      `model(features, training=...)` with `features = {"inputs": [B, Ls],
                "targets": [B, Lt]}` (int64 ids, PAD-padded, EOS-terminated) returns the
                next-token logits `[B, Lt, target_vocab_size]`: position t predicts
                `targets[:, t]` from `targets[:, :t]`. The trainer's loss is the padded
                cross-entropy of these logits. One call on a one-token batch must create every
                variable (the trainer builds the optimizer and restores checkpoints after it).
  trainable_variables  what the gradients are taken for and the optimizer updates.
  translate     `model.translate(inputs, beam_size=, alpha=, extra_length=, eos_id=)` returns
                `(ids [B, T], scores [B])`: the best output per sentence, PAD after its EOS, and
                its score. Called inside a `tf.function` on `[B, Ls]` int64 ids.
  checkpointing the model must be trackable (a `keras.Model`, `keras.layers.Layer` or
                `tf.Module`): it is saved as `tf.train.Checkpoint(model=...)`.

A `keras.Model` subclass that implements `call` and `translate` has all of them;
`sm3_t2t.transformer.Transformer` is the reference implementation.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import tensorflow as tf

from sm3_t2t.special_ids import EOS_ID


@runtime_checkable
class Model(Protocol):
    """The part of a model the trainer and decoder use (see the module docstring)."""

    trainable_variables: Sequence[tf.Variable]

    def __init__(self, hparams: Any, input_vocab_size: int, target_vocab_size: int): ...

    def __call__(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Next-token logits `[B, Lt, V]` for `features["inputs"]`, `features["targets"]`."""
        ...

    def translate(
        self,
        inputs: tf.Tensor,
        beam_size: int = 4,
        alpha: float = 0.6,
        extra_length: int = 50,
        eos_id: int = EOS_ID,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """`(ids [B, T], scores [B])`: the best output of each source sentence."""
        ...


def missing_members(model):
    """Names of the `Model` members `model` lacks (empty when it implements the protocol)."""
    return [
        name
        for name in ("__call__", "translate", "trainable_variables")
        if not hasattr(model, name)
    ]
