"""SM3 for tensor2tensor: `import sm3_tf.t2t` registers `optimizer=sm3` in T2T's registry.

Give `t2t-trainer` a user directory whose `__init__.py` imports this module (the repository's
`examples/t2t_sm3` is one), then choose SM3 and its options by hparams:

    t2t-trainer --t2t_usr_dir=examples/t2t_sm3 --problem=... --model=transformer \\
      --hparams_set=transformer_tiny \\
      --hparams='optimizer=sm3,optimizer_sm3_momentum=0.9,learning_rate_schedule=constant*linear_warmup,learning_rate_constant=0.1'

SM3's options are hparams named after T2T's `optimizer_adafactor_*` convention (see `HPARAMS`);
they are added, with SM3's defaults, to every hparams set built on T2T's `basic_params1` that lacks
them, so `--hparams` can set them. The learning rate is T2T's (its schedule times
`learning_rate_constant`...); SM3 wants a larger one than Adam, e.g. 0.1 with a warm-up.

T2T 1.15.7 under TF 2 asks its optimizer for `get_gradients(loss, params)` (a Keras 2 method) and
builds the train op with tf_slim, which still reads `ops.Tensor` / `ops.IndexedSlices`: the
optimizer registered here has the method, and importing this module adds the two aliases where
TensorFlow lacks them. Without tensor2tensor installed, importing this module does nothing
(`T2T_AVAILABLE` is False). This is the only module of sm3_tf that knows T2T's hparams names.
"""

import functools
import importlib.util

import tensorflow as tf

from sm3_tf import v1

REGISTERED_NAME = "sm3"
_FUSED = {"auto": None, "true": True, "false": False}

# T2T hparam -> (sm3_tf.v1.SM3Optimizer argument, default hparam value, hparam -> argument).
HPARAMS = {
    "optimizer_sm3_momentum": ("momentum", 0.9, float),
    "optimizer_sm3_beta2": ("beta_2", 1.0, float),
    "optimizer_sm3_epsilon": ("epsilon", 0.0, float),
    "optimizer_sm3_variant": ("variant", "II", str),
    "optimizer_sm3_momentum_dtype": ("momentum_dtype", "", lambda dtype: dtype or None),
    "optimizer_sm3_skip_nonfinite": ("skip_nonfinite", False, lambda skip: skip),
    "optimizer_sm3_fused": ("fused", "auto", lambda fused: _FUSED.get(str(fused).lower(), fused)),
}

T2T_AVAILABLE = importlib.util.find_spec("tensor2tensor") is not None


class T2TSM3Optimizer(v1.SM3Optimizer):
    """`sm3_tf.v1.SM3Optimizer` with the Keras 2 method T2T's TF 2 path calls."""

    def get_gradients(self, loss, params):
        """The gradient of `loss` for each of `params` (None where `loss` does not depend on it)."""
        return [gradient for gradient, _ in self.compute_gradients(loss, params)]


def sm3_arguments(hparams):
    """The SM3Optimizer keyword arguments that `hparams` sets (SM3's defaults where missing)."""
    arguments = {}
    for name, (argument, default, convert) in HPARAMS.items():
        value = getattr(hparams, name, default)
        try:
            arguments[argument] = convert(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"hparam `{name}`={value!r} is not valid: {error}") from error
    return arguments


def sm3_optimizer(learning_rate, hparams):
    """T2T's optimizer factory for `optimizer=sm3`: (learning-rate tensor, hparams) -> optimizer.

    Raises:
      ValueError / TypeError: naming the hparam whose value SM3 refuses.
    """
    arguments = sm3_arguments(hparams)
    try:
        return T2TSM3Optimizer(learning_rate, **arguments)
    except (TypeError, ValueError) as error:
        given = ", ".join(f"{name}={getattr(hparams, name, '(unset)')!r}" for name in HPARAMS)
        raise type(error)(f"{error} (from the T2T hparams {given})") from error


def add_hparams(hparams):
    """Adds each of `HPARAMS` that `hparams` lacks, with SM3's default; returns `hparams`."""
    present = hparams.values()
    for name, (_, default, _) in HPARAMS.items():
        if name not in present:
            hparams.add_hparam(name, default)
    return hparams


def _alias_tf_slim_names():
    """tf_slim 1.1.0 (T2T's train op) reads `ops.Tensor` / `ops.IndexedSlices`, which TF 2.15's
    `tensorflow.python.framework.ops` no longer has."""
    from tensorflow.python.framework import ops

    for name, value in (("Tensor", tf.Tensor), ("IndexedSlices", tf.IndexedSlices)):
        if not hasattr(ops, name):
            setattr(ops, name, value)


def _with_sm3_hparams(basic_params):
    """T2T's `basic_params1`, which every hparams set starts from, plus `HPARAMS`."""

    @functools.wraps(basic_params)
    def basic_params1():
        return add_hparams(basic_params())

    basic_params1.adds_sm3_hparams = True
    return basic_params1


def register():
    """Registers `optimizer=sm3` and the SM3 hparams in tensor2tensor (idempotent)."""
    from tensor2tensor.layers import common_hparams
    from tensor2tensor.utils import registry

    _alias_tf_slim_names()
    if REGISTERED_NAME not in registry.Registries.optimizers:
        registry.register_optimizer(REGISTERED_NAME)(sm3_optimizer)
    if not getattr(common_hparams.basic_params1, "adds_sm3_hparams", False):
        common_hparams.basic_params1 = _with_sm3_hparams(common_hparams.basic_params1)


if T2T_AVAILABLE:
    register()
