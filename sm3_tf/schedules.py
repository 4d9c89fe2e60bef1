"""Learning-rate schedules recommended for SM3.

The authors' README (google-research/sm3) suggests a polynomial warm-up
    lr_t = lr * min(1, (t / warmup_steps) ** power),  power = 2,
(their README prints the ratio upside down, (warmup_steps / t) ** power, which would start
enormous; the code and the paper's experiments ramp up). `WarmupSchedule` adds an optional linear
cool-down to 0 over the last `cooldown_steps` of `total_steps`.
"""

import math

import keras

try:  # Keras 3: the same schedule on the TensorFlow, JAX and PyTorch backends
    from keras import ops
except ImportError:  # Keras 2 (TF 2.15's own `keras`) runs on TensorFlow, whose ops these are
    import tensorflow as ops


def _check_count(name, value, allow_zero=True):
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be a {kind} integer, got {value!r}.")


@keras.saving.register_keras_serializable(package="sm3_tf")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr * min(1, (step / warmup_steps) ** power), then an optional linear cool-down to 0.

    With `cooldown_steps = c > 0` and `total_steps = T`, the rate is multiplied by
    min(1, (T - step) / c) for step >= T - c, reaching 0 at step T (and staying 0 after).

    Args:
      learning_rate: the peak learning rate, a non-negative float.
      warmup_steps: steps to reach the peak; 0 starts at the peak.
      power: the warm-up exponent (2 in the authors' recommendation; 1 is linear).
      cooldown_steps: length of the final linear decay; 0 disables it.
      total_steps: the step at which the cool-down ends; required when `cooldown_steps` > 0.
    """

    def __init__(
        self, learning_rate, warmup_steps=1000, power=2.0, cooldown_steps=0, total_steps=None
    ):
        if (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, (int, float))
            or math.isnan(learning_rate)
            or learning_rate < 0
        ):
            raise ValueError(
                f"`learning_rate` must be a non-negative number, got {learning_rate!r}."
            )
        _check_count("warmup_steps", warmup_steps)
        _check_count("cooldown_steps", cooldown_steps)
        if not isinstance(power, (int, float)) or isinstance(power, bool) or not power > 0:
            raise ValueError(f"`power` must be a positive number, got {power!r}.")
        if cooldown_steps:
            if total_steps is None:
                raise ValueError("`total_steps` is required when `cooldown_steps` > 0.")
            _check_count("total_steps", total_steps, allow_zero=False)
            if cooldown_steps > total_steps:
                raise ValueError(
                    f"`cooldown_steps` ({cooldown_steps}) exceeds `total_steps` ({total_steps})."
                )
        self.learning_rate = float(learning_rate)
        self.warmup_steps = warmup_steps
        self.power = float(power)
        self.cooldown_steps = cooldown_steps
        self.total_steps = total_steps

    def __call__(self, step):
        # Only ops that keras.ops and TensorFlow both have, with the same meaning (see the import).
        step = ops.cast(step, "float32")
        factor = ops.ones_like(step)
        if self.warmup_steps:
            factor = ops.minimum(1.0, (step / self.warmup_steps) ** self.power)
        if self.cooldown_steps:
            remaining = ops.maximum(float(self.total_steps) - step, 0.0)
            factor = factor * ops.minimum(1.0, remaining / self.cooldown_steps)
        return self.learning_rate * factor

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "power": self.power,
            "cooldown_steps": self.cooldown_steps,
            "total_steps": self.total_steps,
        }
