"""Building a registered model for a problem: the one place the trainer, decoder and
benchmarks construct models."""

import tensorflow as tf

from sm3_t2t import registry
from sm3_t2t.model_protocol import missing_members


def build_model(model_name, hparams, encoders):
    """Instantiates registered model `model_name` for the problem's vocabularies.

    Raises:
      UnknownNameError: no model of that name is registered.
      TypeError: the model does not implement `sm3_t2t.model_protocol.Model`, naming what lacks.
    """
    model_class = registry.model(model_name)
    model = model_class(
        hparams,
        input_vocab_size=encoders["inputs"].vocab_size,
        target_vocab_size=encoders["targets"].vocab_size,
    )
    missing = missing_members(model)
    if missing:
        raise TypeError(
            f"model {model_name!r} ({model_class.__module__}.{model_class.__qualname__}) lacks "
            f"{', '.join(missing)} of the sm3_t2t.model_protocol.Model protocol"
        )
    return model


def build_variables(model):
    """Creates the model's variables by calling it on a one-token batch."""
    one_token = tf.ones([1, 1], tf.int64)
    model({"inputs": one_token, "targets": one_token}, training=False)
