"""Sparse fused-kernel steps == TF-ops steps == numpy reference, duplicates and empties included.

Only the touched rows of the weight, the axis-0 cover and the momentum buffer may change; the
other covers stay as they were.
"""

import kernel_test_support as support
import numpy as np
import pytest
import tensorflow as tf

from sm3_tf import fused_step
from sm3_tf.step_config import StepConfig

SHAPES = [(1,), (9,), (12, 1), (10, 7), (6, 5, 3), (40, 1031)]


@pytest.fixture(scope="module", autouse=True)
def kernels():
    support.require_kernels()


@pytest.mark.parametrize("options", support.OPTION_CASES, ids=support.option_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fused_matches_tf_ops_and_reference(shape, options):
    support.assert_close(support.run_sparse(shape, options), options.tolerance)


@pytest.mark.parametrize("index_dtype", [tf.int32, tf.int64], ids=["int32", "int64"])
def test_index_types(index_dtype):
    options = support.Options(momentum=0.9)
    support.assert_close(support.run_sparse((10, 7), options, index_dtype=index_dtype))


@pytest.mark.parametrize("param_dtype", ["bfloat16", "float16"])
def test_low_precision_parameters(param_dtype):
    options = support.Options(momentum=0.9, param_dtype=param_dtype)
    errors = support.run_sparse((10, 7), options)
    for name, (weight_error, cover_error) in errors.items():
        assert weight_error <= 2.0**-7, (name, weight_error)
        assert cover_error <= support.TOLERANCE, (name, cover_error)


def test_many_rows_spread_over_threads():
    """More rows than one task takes, all duplicated: every row is summed before the op."""
    options = support.Options(momentum=0.9, variant="II")
    support.assert_close(support.run_sparse((500, 300), options, rows_per_step=400))


def test_only_touched_rows_and_the_axis0_cover_change():
    options = support.Options(momentum=0.9)
    w0 = support.initial_weights((6, 4), options)
    state = support.PathState(w0, options)
    state.accumulators[1].assign([1.0, 2.0, 3.0, 4.0])
    fused_step.sparse_update(
        state.var,
        tf.ones((2, 4)),
        tf.constant([4, 1]),
        state.accumulators,
        state.buffer,
        0.1,
        options.config,
    )
    untouched = [0, 2, 3, 5]
    np.testing.assert_array_equal(state.var.numpy()[untouched], w0[untouched])
    np.testing.assert_array_equal(state.buffer.numpy()[untouched], 0.0)
    np.testing.assert_array_equal(state.accumulators[0].numpy()[untouched], 0.0)
    assert np.all(state.accumulators[0].numpy()[[1, 4]] == 1.0)  # nu = 0 + 1^2 on those rows
    np.testing.assert_array_equal(state.accumulators[1].numpy(), [1.0, 2.0, 3.0, 4.0])


def test_empty_gradient_changes_nothing():
    options = support.Options(momentum=0.9)
    w0 = support.initial_weights((5, 3), options)
    state = support.PathState(w0, options)
    fused_step.sparse_update(
        state.var,
        tf.zeros((0, 3)),
        tf.zeros((0,), tf.int64),
        state.accumulators,
        state.buffer,
        0.1,
        options.config,
    )
    np.testing.assert_array_equal(state.var.numpy(), w0)
    np.testing.assert_array_equal(state.accumulators[0].numpy(), 0.0)


def test_inside_tf_function():
    options = support.Options(momentum=0.9, variant="I")
    state = support.PathState(support.initial_weights((8, 5), options), options)
    reference = support.reference_for((8, 5), options)
    expected = state.weights()

    @tf.function
    def step(values, indices):
        fused_step.sparse_update(
            state.var, values, indices, state.accumulators, state.buffer, 0.1, StepConfig("I", 0.9)
        )

    for indices, values in support.sparse_gradients((8, 5), 3, 4):
        step(tf.constant(values), tf.constant(indices))
        expected = reference.sparse_step(expected, indices, values, 0.1)
    assert support.relative_error(state.weights(), expected) <= support.TOLERANCE
