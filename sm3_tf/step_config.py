"""The hyper-parameters of one SM3 step, and their validation.

`StepConfig` is what the Keras optimizer, the v1 optimizer and the kernels agree on: everything
that defines the update besides the learning rate, which may change every step. Validation lives
here so both optimizers reject bad input with the same message naming the argument.
"""

import dataclasses
import math
import numbers

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
      is
        weighted by (1 - beta_2).
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


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_learning_rate(learning_rate):
    """Rejects a negative or NaN float learning rate; schedules and tensors pass through."""
    if _is_number(learning_rate) and (math.isnan(learning_rate) or learning_rate < 0):
        raise ValueError(f"`learning_rate` must be a non-negative number, got {learning_rate!r}.")
    return learning_rate


def validate(variant, momentum, beta_2, epsilon, momentum_dtype=None):
    """Checks the SM3 arguments and returns a `StepConfig`.

    Numbers are checked here; tensors and callables (v1 optimizer) are accepted as they are.

    Raises:
      ValueError: naming the offending argument.
    """
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}.")
    if _is_number(momentum) and not 0.0 <= momentum < 1.0:
        raise ValueError(f"`momentum` must be in [0, 1), got {momentum!r}.")
    if _is_number(beta_2) and not 0.0 < beta_2 <= 1.0:
        raise ValueError(f"`beta_2` must be in (0, 1], got {beta_2!r}.")
    if _is_number(epsilon) and not epsilon >= 0.0:
        raise ValueError(f"`epsilon` must be a non-negative number, got {epsilon!r}.")
    if momentum_dtype not in MOMENTUM_DTYPES:
        raise ValueError(
            f"`momentum_dtype` must be one of {MOMENTUM_DTYPES}, got {momentum_dtype!r}."
        )
    for name, value in (("momentum", momentum), ("beta_2", beta_2), ("epsilon", epsilon)):
        if isinstance(value, bool) or isinstance(value, str):
            raise ValueError(f"`{name}` must be a number, got {value!r}.")
    return StepConfig(variant=variant, momentum=momentum, beta_2=beta_2, epsilon=epsilon)


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
