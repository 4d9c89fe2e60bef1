"""sm3_tf.SM3 on this process's Keras backend against the float64 numpy reference: ranks 0-4, both
variants, momentum off / float32 / bfloat16, beta_2 < 1, epsilon, float16/bfloat16 variables,
skip_nonfinite with weight decay; eagerly and compiled (jit) where the backend compiles.

Run per backend: `KERAS_BACKEND=jax pytest tests/backends` (tools/backends_ci.sh does it for JAX
and PyTorch; the main suite runs these on TensorFlow).
"""

import keras
import numpy as np
import pytest
import sm3_reference as ref
from backend_support import (
    LOW_PRECISION_TOLERANCE,
    SHAPES,
    TOLERANCE,
    as_numpy,
    jit_modes,
    reference_weights,
    run_steps,
)
from seeded_inputs import gradients

STEPS = 3
MOMENTA = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, momentum_dtype="bfloat16")]


def steps_for(shapes, steps=STEPS):
    per_shape = [gradients(shape, steps, seed=i) for i, shape in enumerate(shapes)]
    return [[per_shape[i][t] for i in range(len(shapes))] for t in range(steps)]


@pytest.mark.parametrize("mode", jit_modes())
@pytest.mark.parametrize("variant", ["II", "I"])
@pytest.mark.parametrize("momentum", MOMENTA, ids=["m0", "m.9", "m.9bf16"])
@pytest.mark.parametrize("beta_2", [1.0, 0.9])
def test_ranks_0_to_4_match_the_reference(variant, momentum, beta_2, mode):
    grads = steps_for(SHAPES)
    options = dict(variant=variant, beta_2=beta_2, **momentum)
    w0s, actual, optimizer = run_steps(SHAPES, grads, mode=mode, **options)
    for i, shape in enumerate(SHAPES):
        expected = reference_weights(shape, w0s[i], [g[i] for g in grads], **options)
        assert ref.relative_error(actual[i], expected) <= TOLERANCE, shape
    # The state is the covers (one float32 vector per axis) and, with momentum, one buffer each.
    covers = [v for v in optimizer.variables if "accumulator" in v.path]
    assert sorted(tuple(v.shape) for v in covers) == sorted(
        cover for shape in SHAPES for cover in ref.cover_shapes(shape)
    )
    assert {keras.backend.standardize_dtype(v.dtype) for v in covers} == {"float32"}
    buffers = [v for v in optimizer.variables if "momentum" in v.path]
    assert len(buffers) == (len(SHAPES) if momentum["momentum"] else 0)
    if momentum.get("momentum_dtype"):
        assert {keras.backend.standardize_dtype(v.dtype) for v in buffers} == {"bfloat16"}


@pytest.mark.parametrize("epsilon", [1e-8, 0.5])
def test_epsilon_is_added_under_the_root(epsilon):
    shapes = [(4, 5)]
    grads = steps_for(shapes)
    w0s, actual, _ = run_steps(shapes, grads, momentum=0.9, epsilon=epsilon)
    expected = reference_weights(
        (4, 5), w0s[0], [g[0] for g in grads], momentum=0.9, epsilon=epsilon
    )
    assert ref.relative_error(actual[0], expected) <= TOLERANCE


def test_zero_gradients_leave_the_weights_unchanged():
    """0/0 = 0: a zero gradient on fresh state gives no NaN and no step."""
    shapes = [(3, 4), (2,)]
    zeros = [[np.zeros(s, np.float32) for s in shapes]] * 2
    w0s, actual, _ = run_steps(shapes, zeros)
    for w0, w in zip(w0s, actual):
        np.testing.assert_array_equal(w, w0.astype(np.float64))


@pytest.mark.parametrize("mode", jit_modes())
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_low_precision_variables(dtype, momentum, mode):
    """float32 maths and float32 covers, rounded once into the variable's dtype."""
    shapes = [(4, 6), (5,)]
    grads = steps_for(shapes)
    w0s, actual, optimizer = run_steps(shapes, grads, mode=mode, dtype=dtype, momentum=momentum)
    for i, shape in enumerate(shapes):
        expected = reference_weights(
            shape,
            w0s[i],
            [g[i] for g in grads],
            param_dtype=dtype,
            momentum=momentum,
            momentum_dtype=dtype if momentum else None,
        )
        assert ref.relative_error(actual[i], expected) <= LOW_PRECISION_TOLERANCE[dtype]
    covers = [v for v in optimizer.variables if "accumulator" in v.path]
    assert {keras.backend.standardize_dtype(v.dtype) for v in covers} == {"float32"}


@pytest.mark.parametrize("mode", jit_modes())
def test_skip_nonfinite_skips_the_whole_step_and_counts_it(mode):
    """A NaN or Inf anywhere leaves every weight (no weight decay either), cover and buffer as
    they were; the finite steps around it match the reference that never saw it."""
    grads = steps_for(SHAPES, steps=4)
    grads[1][2] = grads[1][2].copy()
    grads[1][2][0, 1] = np.nan
    grads[2][0] = np.float32(np.inf)
    options = dict(momentum=0.9, momentum_dtype="bfloat16", beta_2=0.95, skip_nonfinite=True)
    w0s, actual, optimizer = run_steps(SHAPES, grads, mode=mode, weight_decay=0.01, **options)
    del options["skip_nonfinite"]
    for i, shape in enumerate(SHAPES):
        finite_steps = [g[i] if t in (0, 3) else None for t, g in enumerate(grads)]
        expected = reference_weights(shape, w0s[i], finite_steps, weight_decay=0.01, **options)
        assert ref.relative_error(actual[i], expected) <= TOLERANCE, shape
    assert int(as_numpy(optimizer.nonfinite_steps)) == 2
    assert int(as_numpy(optimizer.iterations)) == 4
    for variable in optimizer.variables:
        assert np.all(np.isfinite(as_numpy(variable))), variable.path
