"""SM3's hyper-parameters as live attributes, validated when set: one mixin for the Keras adapters.

Keras optimizers keep their hyper-parameters as plain attributes that the step reads (SGD's
`momentum`), and `get_config` saves what the attributes hold. `HyperParameters` gives an optimizer
class SM3's seven such attributes. Each assignment is checked by `step_config` (an error names the
argument), and `step_config()` turns the current values into the `StepConfig` of the next step.

A traced step (a `tf.function`, `model.fit`'s train function) keeps the values it was traced
with, as for Keras's own optimizers; eager steps and functions traced later see the new values.

Some choices decide which state exists, so they are fixed once the optimizer is built:
  momentum        may change within (0, 1), but not to or from 0: momentum buffers exist only when
                  it was above 0 at build time, and a saved file must load into the same state;
  momentum_dtype  the buffers' dtype;
  skip_nonfinite  the `nonfinite_steps` counter exists only with it.
`variant`, `beta_2`, `epsilon` and `fused` may change at any time: both variants keep the same
covers (one vector per axis), and `fused` only picks the implementation.
"""

import warnings

from sm3_tf import step, step_config


class _HyperParameter:
    """A data descriptor: validated by `check` on assignment, kept in `_sm3_<name>`."""

    def __init__(self, check, doc):
        self._check = check
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name = name
        self._private = f"_sm3_{name}"

    def __get__(self, optimizer, owner=None):
        if optimizer is None:
            return self
        return getattr(optimizer, self._private)

    def __set__(self, optimizer, value):
        value = self._check(value)
        optimizer._check_fixed_after_build(self.name, value)
        setattr(optimizer, self._private, value)


def _momentum_is_on(momentum):
    return momentum > 0


# The attributes whose value, once the optimizer is built, decides which state exists: name ->
# the property of the value that must not change.
_FIXED_AFTER_BUILD = {
    "momentum": _momentum_is_on,
    "momentum_dtype": lambda dtype: dtype,
    "skip_nonfinite": lambda skip: skip,
}


class HyperParameters:
    """Mixin for an SM3 optimizer class: `momentum`, `beta_2`, `epsilon`, `variant`,
    `momentum_dtype`, `skip_nonfinite` and `fused` as live, validated attributes.

    The class calls `_record_built_state()` once it has created its state, and passes the
    arguments to `_set_hyperparameters` in its constructor.
    """

    momentum = _HyperParameter(step_config.check_momentum, "Heavy-ball momentum in [0, 1).")
    beta_2 = _HyperParameter(step_config.check_beta_2, "Decay of the covers, in (0, 1].")
    epsilon = _HyperParameter(step_config.check_epsilon, "Added to nu under the square root.")
    variant = _HyperParameter(step_config.check_variant, 'SM3 variant, "II" or "I".')
    momentum_dtype = _HyperParameter(
        step_config.check_momentum_dtype, "dtype of the momentum buffers (None: the variable's)."
    )
    skip_nonfinite = _HyperParameter(
        step_config.check_skip_nonfinite, "Whether a step with a NaN/Inf gradient is skipped."
    )
    fused = _HyperParameter(
        step.check_fused, "None: fused kernel when it can run; True: required; False: TF ops."
    )

    @classmethod
    def checked_hyperparameters(cls, **values):
        """`values` (name -> argument) validated as an assignment would validate them, for a
        constructor to call before its base class creates any variable."""
        return {name: getattr(cls, name)._check(value) for name, value in values.items()}

    def _set_hyperparameters(self, **values):
        self._sm3_built_with = None
        for name, value in values.items():
            setattr(self, name, value)

    def _record_built_state(self):
        """Fixes what decides the state's layout (see the module docstring)."""
        # A tuple of plain values: a dict would become a (empty) node of every checkpoint.
        self._sm3_built_with = tuple(
            (name, aspect(getattr(self, name))) for name, aspect in _FIXED_AFTER_BUILD.items()
        )

    def _check_fixed_after_build(self, name, value):
        built_with = dict(getattr(self, "_sm3_built_with", None) or ())
        if name not in built_with:
            return
        if _FIXED_AFTER_BUILD[name](value) != built_with[name]:
            raise ValueError(
                f"`{name}` cannot change from {getattr(self, name)!r} to {value!r} after the "
                f"optimizer is built: {_WHY_FIXED[name]} Create a new optimizer instead."
            )

    def step_config(self):
        """The `StepConfig` of the current hyper-parameters: what the next step computes."""
        return step_config.config_of(self)

    def hyperparameter_config(self):
        """The hyper-parameters for `get_config`, as plain Python values."""
        return {
            "momentum": self.momentum,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "variant": self.variant,
            "momentum_dtype": self.momentum_dtype,
            "skip_nonfinite": self.skip_nonfinite,
            "fused": self.fused,
        }


_WHY_FIXED = {
    "momentum": "momentum buffers exist only when momentum was above 0 at build time.",
    "momentum_dtype": "the momentum buffers were created in the old dtype.",
    "skip_nonfinite": "the `nonfinite_steps` counter exists only when it was True at build time.",
}


def loadable_config(config):
    """`config` (from `get_config`) made loadable here: `fused=True` becomes None, with a warning,
    when this machine has no kernels, so that a saved file still loads and trains (on TF ops)."""
    if config.get("fused") is not True:
        return config
    reason = step.kernels_unavailable_reason()
    if reason is None:
        return config
    warnings.warn(
        f"This SM3 optimizer was saved with fused=True, but the fused kernels are unavailable "
        f"here ({reason}); it is loaded with fused=None and steps run on TF ops.",
        stacklevel=3,
    )
    return dict(config, fused=None)
