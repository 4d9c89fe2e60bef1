"""The hyper-parameters of one SM3 step, and their validation.

`StepConfig` is what the Keras optimizer, the v1 optimizer and the kernels agree on: everything
that defines the update besides the learning rate, which may change every step. Validation lives
here so both optimizers reject bad input with the same message naming the argument: a value of the
wrong type raises TypeError, a value out of range ValueError. `config_of` derives the `StepConfig`
of an optimizer from its live attributes; every Keras adapter calls it once per step.
"""

import dataclasses
import math
import numbers

import numpy as np

VARIANTS = ("II", "I")
MOMENTUM_DTYPES = (None, "float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static hyper-parameters of the SM3 update.

    Attributes:
      variant: "II" (nu = min of covers + g^2; covers = max of nu) or "I" (covers += max of g^2;
        nu = min of covers).
      momentum: heavy-ball coefficient in [0, 1); 0 means no buffer at all. A tensor is allowed
        (v1).
      beta_2: 1.0 for the paper's running sums; below 1, the past decays by beta_2 and the new g^2
        is weighted by (1 - beta_2).
      epsilon: added to nu under the square root; p is 0 where nu + epsilon == 0.
    """

    variant: str = "II"
    momentum: object = 0.9
    beta_2: float = 1.0
    epsilon: float = 0.0

    @property
    def has_momentum(self):
        """Whether a momentum buffer exists (any tensor momentum counts as yes)."""
        return not (isinstance(self.momentum, numbers.Number) and self.momentum == 0)

    @property
    def new_sample_weight(self):
        """Weight of the new g^2: 1 for running sums (beta_2 == 1), else 1 - beta_2."""
        return 1.0 if self.beta_2 == 1.0 else 1.0 - self.beta_2


def config_of(optimizer):
    """The `StepConfig` of `optimizer`'s current `variant`, `momentum`, `beta_2` and `epsilon`.

    The attributes were validated when set (see `sm3_tf.hyperparameters`), so this only gathers
    them: a step reads the values the optimizer has now, not the ones it was constructed with.
    """
    return StepConfig(
        variant=optimizer.variant,
        momentum=optimizer.momentum,
        beta_2=optimizer.beta_2,
        epsilon=optimizer.epsilon,
    )


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_tensor_like(value):
    """A tensor, variable or array (has a dtype and a shape), as opposed to a Python number."""
    return hasattr(value, "dtype") and hasattr(value, "shape") and not _is_number(value)


def as_float(name, value):
    """`value` as a Python float: numbers, numpy scalars and eager scalar tensors convert.

    Optimizer arguments are plain numbers: they go into `get_config` and must survive a save and
    load. A graph tensor has no value yet, so it is refused. A float32 value becomes the shortest
    decimal that is that float32 (tf.constant(0.9) is 0.9, not 0.8999999761581421): what the user
    wrote.

    Raises:
      TypeError: naming `name`, for None, bools, strings, non-scalars and graph tensors.
    """
    if _is_number(value) and not isinstance(value, np.floating):
        return float(value)
    scalar = _numeric_scalar(value)
    if scalar is None:
        raise TypeError(f"`{name}` must be a number, got {value!r}.")
    if scalar.dtype.kind == "f":
        return float(np.format_float_positional(scalar, unique=True))
    return float(scalar)


def _numeric_scalar(value):
    """The value of a numpy scalar, 0-d array or eager scalar tensor of a number type, else None."""
    if not (hasattr(value, "dtype") and hasattr(value, "shape")) or isinstance(value, np.bool_):
        return None
    try:
        array = np.asarray(value)  # eager tensors and variables read their value here
    except (TypeError, ValueError, NotImplementedError):  # graph tensors have no value
        return None
    if array.shape != () or array.dtype.kind not in "iuf":
        return None
    return array[()]


def _check_range(name, value, low, high, text, low_open=False, high_open=True):
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if math.isnan(value) or not (above and below):
        raise ValueError(f"`{name}` must be {text}, got {value!r}.")
    return value


def check_learning_rate(learning_rate):
    """Rejects a negative, infinite or NaN number; schedules, tensors and callables pass through.

    A number that is out of range raises ValueError naming `learning_rate`; other checks (type,
    run-time values) belong to the optimizer that knows what it accepts.
    """
    if _is_number(learning_rate):
        _check_range("learning_rate", learning_rate, 0.0, math.inf, "a finite non-negative number")
    return learning_rate


def check_momentum(momentum):
    """A momentum number in [0, 1), as a float."""
    return _check_range("momentum", as_float("momentum", momentum), 0.0, 1.0, "in [0, 1)")


def check_beta_2(beta_2):
    """A beta_2 number in (0, 1], as a float."""
    value = as_float("beta_2", beta_2)
    return _check_range("beta_2", value, 0.0, 1.0, "in (0, 1]", low_open=True, high_open=False)


def check_epsilon(epsilon):
    """A finite non-negative epsilon, as a float (inf would turn every step into a no-op)."""
    value = as_float("epsilon", epsilon)
    return _check_range("epsilon", value, 0.0, math.inf, "a finite non-negative number")


def check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}.")
    return variant


def check_momentum_dtype(momentum_dtype):
    if momentum_dtype not in MOMENTUM_DTYPES:
        raise ValueError(
            f"`momentum_dtype` must be one of {MOMENTUM_DTYPES}, got {momentum_dtype!r}."
        )
    return momentum_dtype


def check_skip_nonfinite(skip_nonfinite):
    """True or False only: a string such as "no" would otherwise count as True."""
    if not isinstance(skip_nonfinite, (bool, np.bool_)):
        raise TypeError(f"`skip_nonfinite` must be True or False, got {skip_nonfinite!r}.")
    return bool(skip_nonfinite)


def validate(variant, momentum, beta_2, epsilon, momentum_dtype=None):
    """Checks the SM3 arguments and returns a `StepConfig` of plain Python values.

    `momentum` may also be a tensor, variable or callable (the v1 optimizer checks those when the
    step runs, see `sm3_tf.guards`); everything else must be a number.

    Raises:
      TypeError / ValueError: naming the offending argument.
    """
    check_variant(variant)
    if not (is_tensor_like(momentum) or callable(momentum)):
        momentum = check_momentum(momentum)
    check_momentum_dtype(momentum_dtype)
    return StepConfig(
        variant=variant,
        momentum=momentum,
        beta_2=check_beta_2(beta_2),
        epsilon=check_epsilon(epsilon),
    )


def check_variable_dtype(variable):
    """SM3 trains floating-point variables only; says which variable is not."""
    dtype = variable.dtype
    dtype = getattr(dtype, "base_dtype", dtype)
    name = getattr(dtype, "name", str(dtype))
    if name not in ("float32", "float16", "bfloat16", "float64"):
        raise ValueError(
            f"SM3 can only train floating-point variables; variable {variable.name!r} has "
            f"dtype {name}."
        )
