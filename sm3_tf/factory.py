"""Optimizers from T2T-style hparams: one hparams object builds the Keras or the v1 optimizer.

The hparams object is anything with attributes (e.g. `sm3_t2t.hparams.HParams`); the fields read are

  optimizer                     "sm3" | "adam" | "adagrad" | "adafactor"
  learning_rate                 peak learning rate
  learning_rate_warmup_steps    warm-up length (0: none)
  learning_rate_warmup_power    warm-up exponent (2: the SM3 authors' recommendation)
  learning_rate_cooldown_steps  linear decay to 0 over the last steps of `total_steps` (0: none)
  optimizer_sm3_momentum, optimizer_sm3_beta2, optimizer_sm3_variant, optimizer_sm3_epsilon,
  optimizer_sm3_momentum_dtype ("" = the variable's dtype), optimizer_sm3_skip_nonfinite,
  optimizer_sm3_fused ("auto" | "true" | "false")
  optimizer_adam_beta1, optimizer_adam_beta2, optimizer_adam_epsilon
  clip_grad_norm                global-norm clipping (0: none)

Missing SM3/Adam fields take the defaults of `sm3_tf.SM3` / Keras.
"""

import keras

from sm3_tf import schedules
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


def make_optimizer(hparams, total_steps=None, api="keras"):
    """Builds the optimizer named by `hparams.optimizer`.

    Args:
      hparams: an object with the fields listed in this module's docstring.
      total_steps: training length, needed only for a cool-down.
      api: "keras" for a `keras.optimizers.Optimizer`, "v1" for a `tf.compat.v1.train.Optimizer`.

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
    clip = float(_get(hparams, "clip_grad_norm", 0.0)) or None
    if api == "v1":
        return _make_v1_optimizer(name, hparams, learning_rate)
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


def _make_v1_optimizer(name, hparams, learning_rate):
    import tensorflow as tf

    from sm3_tf import v1

    step = tf.compat.v1.train.get_or_create_global_step

    def rate():
        return learning_rate(step())  # a callable: v1 optimizers evaluate it per step

    if name == "sm3":
        return v1.SM3Optimizer(learning_rate=rate, **sm3_arguments(hparams))
    if name == "adam":
        return tf.compat.v1.train.AdamOptimizer(
            rate,
            beta1=float(_get(hparams, "optimizer_adam_beta1", 0.9)),
            beta2=float(_get(hparams, "optimizer_adam_beta2", 0.999)),
            epsilon=float(_get(hparams, "optimizer_adam_epsilon", 1e-8)),
        )
    if name == "adagrad":
        return tf.compat.v1.train.AdagradOptimizer(rate)
    raise ValueError(
        "hparam `optimizer`='adafactor' has no tf.compat.v1 optimizer here; use api='keras'."
    )
