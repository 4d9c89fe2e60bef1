"""Optimizers from T2T-style hparams: one hparams object builds the Keras or the v1 optimizer.

This is the T2T layer's glue; the optimizer library `sm3_tf` knows no hparams names. The hparams
object is anything with attributes (e.g. `sm3_t2t.hparams.HParams`); the fields read are

  optimizer                     "sm3" | "adam" | "adagrad" | "adafactor"
  learning_rate                 peak learning rate
  learning_rate_warmup_steps    warm-up length (0: none)
  learning_rate_warmup_power    warm-up exponent (2: the SM3 authors' recommendation)
  learning_rate_cooldown_steps  linear decay to 0 over the last steps of `total_steps` (0: none)
  optimizer_sm3_momentum, optimizer_sm3_beta2, optimizer_sm3_variant, optimizer_sm3_epsilon,
  optimizer_sm3_momentum_dtype ("" = the variable's dtype), optimizer_sm3_skip_nonfinite,
  optimizer_sm3_fused ("auto" | "true" | "false")
  optimizer_adam_beta1, optimizer_adam_beta2, optimizer_adam_epsilon
  clip_grad_norm                clip the gradients to this global norm before each step (0: none)

Missing SM3/Adam fields take the defaults of `sm3_tf.SM3` / Keras.
"""

import keras
import tensorflow as tf

from sm3_tf import schedules, step_config, v1
from sm3_tf.sm3 import SM3

OPTIMIZERS = ("sm3", "adam", "adagrad", "adafactor")
APIS = ("keras", "v1")
_FUSED = {"auto": None, "true": True, "false": False}


def _get(hparams, name, default):
    return getattr(hparams, name, default)


def make_learning_rate(hparams, total_steps=None):
    """The warm-up (and optional cool-down) schedule described by `hparams`."""
    cooldown = int(_get(hparams, "learning_rate_cooldown_steps", 0))
    if cooldown and total_steps:
        # A set's cool-down is sized for its usual run length; a shorter run (e.g. a smoke test
        # of the demo set) cools down over all of its steps rather than failing.
        cooldown = min(cooldown, int(total_steps))
    return schedules.WarmupSchedule(
        float(hparams.learning_rate),
        warmup_steps=int(_get(hparams, "learning_rate_warmup_steps", 0)),
        power=float(_get(hparams, "learning_rate_warmup_power", 2.0)),
        cooldown_steps=cooldown,
        total_steps=total_steps if cooldown else None,
    )


def sm3_arguments(hparams):
    """The `SM3` / `SM3Optimizer` keyword arguments named by `optimizer_sm3_*` hparams."""
    fused = str(_get(hparams, "optimizer_sm3_fused", "auto")).lower()
    if fused not in _FUSED:
        raise ValueError(
            f"hparam `optimizer_sm3_fused` must be one of {sorted(_FUSED)}, got {fused!r}."
        )
    return dict(
        momentum=float(_get(hparams, "optimizer_sm3_momentum", 0.9)),
        beta_2=float(_get(hparams, "optimizer_sm3_beta2", 1.0)),
        epsilon=float(_get(hparams, "optimizer_sm3_epsilon", 0.0)),
        variant=str(_get(hparams, "optimizer_sm3_variant", "II")),
        momentum_dtype=_get(hparams, "optimizer_sm3_momentum_dtype", "") or None,
        skip_nonfinite=bool(_get(hparams, "optimizer_sm3_skip_nonfinite", False)),
        fused=_FUSED[fused],
    )


def clip_norm(hparams):
    """The global gradient norm `clip_grad_norm` asks for, or None (0: no clipping).

    Raises:
      ValueError: a negative or non-finite value.
    """
    value = float(_get(hparams, "clip_grad_norm", 0.0))
    if not (value >= 0 and value != float("inf")):
        raise ValueError(f"hparam `clip_grad_norm` must be >= 0 and finite, got {value!r}.")
    return value or None


def make_optimizer(hparams, total_steps=None, api="keras"):
    """Builds the optimizer named by `hparams.optimizer`.

    Args:
      hparams: an object with the fields listed in this module's docstring.
      total_steps: training length, needed only for a cool-down.
      api: "keras" for a `keras.optimizers.Optimizer`, "v1" for a `tf.compat.v1.train.Optimizer`.

    With `clip_grad_norm` > 0 the Keras optimizers get `global_clipnorm`, and the v1 optimizers
    are of a subclass whose `apply_gradients` (and so `minimize`) clips by global norm first.

    Raises:
      ValueError: unknown optimizer or api, or a bad hparam value (naming it).
    """
    name = str(hparams.optimizer).lower()
    if name not in OPTIMIZERS:
        raise ValueError(
            f"hparam `optimizer` must be one of {OPTIMIZERS}, got {hparams.optimizer!r}."
        )
    if api not in APIS:
        raise ValueError(f"`api` must be one of {APIS}, got {api!r}.")
    learning_rate = make_learning_rate(hparams, total_steps)
    clip = clip_norm(hparams)
    if api == "v1":
        return _make_v1_optimizer(name, hparams, learning_rate, clip)
    if name == "sm3":
        return SM3(learning_rate=learning_rate, global_clipnorm=clip, **sm3_arguments(hparams))
    if name == "adam":
        return keras.optimizers.Adam(
            learning_rate=learning_rate,
            global_clipnorm=clip,
            beta_1=float(_get(hparams, "optimizer_adam_beta1", 0.9)),
            beta_2=float(_get(hparams, "optimizer_adam_beta2", 0.999)),
            epsilon=float(_get(hparams, "optimizer_adam_epsilon", 1e-7)),
        )
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=learning_rate, global_clipnorm=clip)
    return keras.optimizers.Adafactor(learning_rate=learning_rate, global_clipnorm=clip)


# The optimizer and schedule arguments each hparam becomes, to name the hparam in errors.
_HPARAM_OF_ARGUMENT = {
    "learning_rate": "learning_rate",
    "warmup_steps": "learning_rate_warmup_steps",
    "power": "learning_rate_warmup_power",
    "cooldown_steps": "learning_rate_cooldown_steps",
    "momentum": "optimizer_sm3_momentum",
    "beta_2": "optimizer_sm3_beta2",
    "epsilon": "optimizer_sm3_epsilon",
    "variant": "optimizer_sm3_variant",
    "momentum_dtype": "optimizer_sm3_momentum_dtype",
    "skip_nonfinite": "optimizer_sm3_skip_nonfinite",
    "fused": "optimizer_sm3_fused",
}


def check_hparams(hparams, total_steps=None):
    """Raises ValueError naming the first optimizer hparam that cannot work.

    Runs the checks the optimizer and its schedule run on their arguments, and reports their
    complaints under the hparam's name. Nothing touches TensorFlow's runtime (a multi-worker job
    must configure it first). Adam's betas and epsilon, which Keras does not check, are checked
    here.
    """
    if str(hparams.optimizer).lower() == "adam":
        for name in ("optimizer_adam_beta1", "optimizer_adam_beta2"):
            value = float(_get(hparams, name, 0.9))
            if not 0.0 <= value < 1.0:
                raise ValueError(f"hparam `{name}` must be in [0, 1), got {value!r}.")
        epsilon = float(_get(hparams, "optimizer_adam_epsilon", 1e-7))
        if not 0.0 <= epsilon < float("inf"):
            raise ValueError(
                f"hparam `optimizer_adam_epsilon` must be finite and >= 0, got {epsilon!r}."
            )
    name = str(hparams.optimizer).lower()
    if name not in OPTIMIZERS:
        raise ValueError(
            f"hparam `optimizer` must be one of {OPTIMIZERS}, got {hparams.optimizer!r}."
        )
    try:
        make_learning_rate(hparams, total_steps)
        clip_norm(hparams)
        if name == "sm3":
            arguments = sm3_arguments(hparams)
            step_config.validate(
                arguments["variant"],
                arguments["momentum"],
                arguments["beta_2"],
                arguments["epsilon"],
                arguments["momentum_dtype"],
            )
    except ValueError as error:
        message = str(error)
        for argument, hparam in _HPARAM_OF_ARGUMENT.items():
            if message.startswith(f"`{argument}`"):
                message = f"hparam `{hparam}`" + message[len(argument) + 2 :]
                break
        raise ValueError(message) from None


class _GlobalNormClipping:
    """Mixin for a `tf.compat.v1.train.Optimizer`: clips the gradients by global norm first.

    A subclass rather than a wrapper, so the optimizer keeps its type, its slots and its place in
    checkpoints; `minimize` and TPU's `CrossShardOptimizer` both end in `apply_gradients`.
    """

    def __init__(self, *args, clip_norm, **kwargs):
        super().__init__(*args, **kwargs)
        self.clip_norm = clip_norm

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        pairs = list(grads_and_vars)
        # None gradients (variables the loss does not reach) are passed through untouched.
        clipped, _ = tf.clip_by_global_norm([grad for grad, _ in pairs], self.clip_norm)
        return super().apply_gradients(
            list(zip(clipped, [var for _, var in pairs])), global_step=global_step, name=name
        )


def _v1_optimizer(optimizer_class, clip, *args, **kwargs):
    if clip is None:
        return optimizer_class(*args, **kwargs)
    clipped_class = type(
        f"GlobalNormClipped{optimizer_class.__name__}", (_GlobalNormClipping, optimizer_class), {}
    )
    return clipped_class(*args, clip_norm=clip, **kwargs)


def _make_v1_optimizer(name, hparams, learning_rate, clip):
    step = tf.compat.v1.train.get_or_create_global_step

    def rate():
        return learning_rate(step())  # a callable: v1 optimizers evaluate it per step

    if name == "sm3":
        return _v1_optimizer(v1.SM3Optimizer, clip, learning_rate=rate, **sm3_arguments(hparams))
    if name == "adam":
        return _v1_optimizer(
            tf.compat.v1.train.AdamOptimizer,
            clip,
            rate,
            beta1=float(_get(hparams, "optimizer_adam_beta1", 0.9)),
            beta2=float(_get(hparams, "optimizer_adam_beta2", 0.999)),
            epsilon=float(_get(hparams, "optimizer_adam_epsilon", 1e-8)),
        )
    if name == "adagrad":
        return _v1_optimizer(tf.compat.v1.train.AdagradOptimizer, clip, rate)
    raise ValueError(
        "hparam `optimizer`='adafactor' has no tf.compat.v1 optimizer here; use api='keras'."
    )
