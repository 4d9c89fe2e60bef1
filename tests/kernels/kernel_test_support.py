"""What the kernel tests share: one parameter's state per path, seeded gradients, the reference.

A case runs the same seeded gradients through the fused kernel (`fused_step`), the TF-ops path
(`tf_step`) and the float64 numpy reference (`tests/sm3_reference.py`), and reports the relative
errors of the weights and the covers of each path against the reference.
"""

import contextlib
import dataclasses

import numpy as np
import pytest
import sm3_reference
import tensorflow as tf
from sm3_reference import SM3Reference, relative_error

from sm3_tf import covers, fused_step, kernel_loader, tf_step
from sm3_tf.step_config import StepConfig

TOLERANCE = 1e-5
# A bfloat16 momentum entry computed in float32 may round one unit (2^-8 relative) away from the
# float64 reference's rounding; that moves w by lr * 2^-8 * |buf|, about 1e-5 of max |w| here.
BFLOAT16_BUFFER_TOLERANCE = 1e-4
LEARNING_RATE = 0.1


def require_kernels():
    """Fails (not skips) when the op library is unavailable: these tests exist to run it."""
    reason = kernel_loader.unavailable_reason()
    if reason is not None:
        pytest.fail(f"the SM3 kernel library is unavailable: {reason}")


@dataclasses.dataclass(frozen=True)
class Options:
    """Hyper-parameters and storage types of one case."""

    variant: str = "II"
    momentum: float = 0.0
    beta_2: float = 1.0
    epsilon: float = 0.0
    momentum_dtype: str = None
    param_dtype: str = "float32"

    @property
    def tolerance(self):
        """The weight tolerance against the reference (see BFLOAT16_BUFFER_TOLERANCE)."""
        return BFLOAT16_BUFFER_TOLERANCE if self.momentum_dtype == "bfloat16" else TOLERANCE

    @property
    def config(self):
        return StepConfig(self.variant, self.momentum, self.beta_2, self.epsilon)


class PathState:
    """A parameter with its covers and momentum buffer, as the optimizer would create them."""

    def __init__(self, w0, options):
        dtype = tf.as_dtype(options.param_dtype)
        self.var = tf.Variable(w0, dtype=dtype)
        self.accumulators = [
            tf.Variable(tf.zeros(s, tf_step.compute_dtype(dtype)))
            for s in covers.accumulator_shapes(w0.shape)
        ]
        self.buffer = (
            tf.Variable(tf.zeros(w0.shape, options.momentum_dtype or dtype))
            if options.momentum
            else None
        )

    def weights(self):
        return self.var.numpy().astype(np.float64)


def initial_weights(shape, options, seed=0):
    """Seeded weights, already representable in the parameter's dtype."""
    w0 = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return tf.cast(tf.cast(w0, options.param_dtype), tf.float32).numpy()


def representable(x, dtype):
    """`x` rounded to `dtype` and back to float32: what a gradient of that dtype holds."""
    return tf.cast(tf.cast(x, dtype), tf.float32).numpy()


def dense_gradients(shape, steps, seed=1, dtype="float32"):
    """Seeded gradients; the first step's first row is 0 so some nu are 0/0 (p must be 0 there)."""
    rng = np.random.default_rng(seed)
    grads = [
        representable(rng.standard_normal(shape).astype(np.float32), dtype) for _ in range(steps)
    ]
    if len(shape) >= 1 and shape[0] > 0:
        grads[0][0] = 0.0
    return grads


def sparse_gradients(shape, steps, rows_per_step, seed=2, dtype="float32"):
    """Seeded (indices, values) pairs with repeated indices in every step."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(steps):
        indices = rng.integers(0, shape[0], size=rows_per_step).astype(np.int64)
        if rows_per_step >= 2:
            indices[-1] = indices[0]  # a duplicate: the step must sum the two rows
        values = rng.standard_normal((rows_per_step,) + tuple(shape[1:])).astype(np.float32)
        result.append((indices, representable(values, dtype)))
    return result


def reference_for(shape, options):
    return SM3Reference(
        shape,
        options.variant,
        options.momentum,
        options.beta_2,
        options.epsilon,
        options.momentum_dtype,
        options.param_dtype,
    )


@contextlib.contextmanager
def float64_storage_in_reference():
    """Lets the reference store float64 parameters (it knows float32/16 and bfloat16 only).

    Only the storage rounding is added (none, for float64); the reference's maths are untouched.
    """
    original = sm3_reference._round_to

    def round_to(x, dtype):
        return np.asarray(x, np.float64) if dtype == "float64" else original(x, dtype)

    sm3_reference._round_to = round_to
    try:
        yield
    finally:
        sm3_reference._round_to = original


def _reference_weights(shape, options, w0, apply):
    """Runs `apply(reference, w)` for each step; returns (reference, final weights)."""
    reference = reference_for(shape, options)
    context = (
        float64_storage_in_reference()
        if options.param_dtype == "float64"
        else contextlib.nullcontext()
    )
    with context:
        return reference, apply(reference, w0.astype(np.float64))


def run_dense(shape, options, steps=3, modules=(fused_step, tf_step)):
    """Runs `steps` dense steps on each module and the reference; returns errors per module.

    Returns:
      {module name: (weight error, worst cover error)} relative to the reference.
    """
    w0 = initial_weights(shape, options)
    grads = dense_gradients(shape, steps, dtype=options.param_dtype)

    def apply(reference, w):
        for g in grads:
            w = reference.step(w, g, LEARNING_RATE)
        return w

    reference, expected = _reference_weights(shape, options, w0, apply)
    errors = {}
    for module in modules:
        state = PathState(w0, options)
        for g in grads:
            module.dense_update(
                state.var,
                tf.constant(g, options.param_dtype),
                state.accumulators,
                state.buffer,
                LEARNING_RATE,
                options.config,
            )
        errors[module.__name__] = _errors(state, expected, reference)
    return errors


def run_sparse(
    shape, options, steps=3, rows_per_step=5, modules=(fused_step, tf_step), index_dtype=tf.int64
):
    """As `run_dense` with IndexedSlices gradients (duplicates included)."""
    w0 = initial_weights(shape, options)
    grads = sparse_gradients(shape, steps, rows_per_step, dtype=options.param_dtype)

    def apply(reference, w):
        for indices, values in grads:
            w = reference.sparse_step(w, indices, values, LEARNING_RATE)
        return w

    reference, expected = _reference_weights(shape, options, w0, apply)
    errors = {}
    for module in modules:
        state = PathState(w0, options)
        for indices, values in grads:
            module.sparse_update(
                state.var,
                tf.constant(values, options.param_dtype),
                tf.constant(indices, index_dtype),
                state.accumulators,
                state.buffer,
                LEARNING_RATE,
                options.config,
            )
        errors[module.__name__] = _errors(state, expected, reference)
    return errors


def _errors(state, expected, reference):
    cover_errors = [
        relative_error(a.numpy(), r) for a, r in zip(state.accumulators, reference.accumulators)
    ]
    return relative_error(state.weights(), expected), max(cover_errors)


def assert_close(errors, weight_tolerance=TOLERANCE):
    """Every path's weights (within `weight_tolerance`) and covers (1e-5) match the reference."""
    for name, (weight_error, cover_error) in errors.items():
        assert weight_error <= weight_tolerance, (
            f"{name}: weights off the reference by {weight_error:.2e}"
        )
        assert cover_error <= TOLERANCE, f"{name}: covers off the reference by {cover_error:.2e}"


# The option sets every kernel-vs-reference test runs (momentum off/on/bf16, beta_2 and epsilon).
_OPTION_SETS = [
    Options(),
    Options(momentum=0.9),
    Options(momentum=0.5, beta_2=0.99, epsilon=1e-3),
    Options(momentum=0.9, momentum_dtype="bfloat16"),
]
# Every option set under both variants: the cases the dense and sparse kernel tests sweep.
OPTION_CASES = [
    dataclasses.replace(options, variant=variant)
    for variant in ("II", "I")
    for options in _OPTION_SETS
]


def option_id(options):
    """A readable pytest id for one of OPTION_CASES."""
    return (
        f"{options.variant}-m{options.momentum}-b{options.beta_2}-e{options.epsilon}"
        f"-{options.momentum_dtype}"
    )
