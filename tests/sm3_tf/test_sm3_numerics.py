"""sm3_tf.SM3 against the float64 numpy reference, on every path: ranks 0-4, both variants,
momentum off / float32 / bfloat16, beta_2 < 1, epsilon, sparse with duplicate indices,
low-precision variables, eager / tf.function / XLA, TF ops and the fused kernel."""

import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf
from seeded_inputs import gradients

import sm3_tf

SHAPES = [(), (7,), (1,), (5, 3), (1, 4), (2, 3, 4), (3, 1, 2, 5)]
LR = 0.1
STEPS = 3


def run_sm3(shape, grads, mode="eager", dtype=tf.float32, **options):
    """Trains one variable from a fixed start with `grads`; returns its final value as float64."""
    w0 = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    var = tf.Variable(tf.cast(w0, dtype))
    optimizer = sm3_tf.SM3(learning_rate=LR, **options)

    def apply(g):
        return optimizer.apply_gradients([(g, var)])

    if mode != "eager":
        apply = tf.function(apply, jit_compile=(mode == "xla"))
    for g in grads:
        apply(tf.cast(g, dtype))
    return w0, tf.cast(var, tf.float64).numpy(), optimizer


def reference_run(shape, w0, grads, param_dtype="float32", **options):
    model = ref.SM3Reference(shape, param_dtype=param_dtype, **options)
    w = w0.astype(np.float64)
    if param_dtype != "float32":
        w = ref._round_to(w, param_dtype)
    for g in grads:
        w = model.step(w, g, LR)
    return w


MOMENTA = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, momentum_dtype="bfloat16")]


@pytest.mark.parametrize("fused", [False, None], ids=["tf_ops", "auto"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("variant", ["II", "I"])
@pytest.mark.parametrize("momentum", MOMENTA, ids=["m0", "m.9", "m.9bf16"])
@pytest.mark.parametrize("beta_2", [1.0, 0.9])
def test_dense_matches_reference_eager(shape, variant, momentum, beta_2, fused):
    grads = gradients(shape)
    w0, actual, _ = run_sm3(shape, grads, variant=variant, beta_2=beta_2, fused=fused, **momentum)
    expected = reference_run(shape, w0, grads, variant=variant, beta_2=beta_2, **momentum)
    assert ref.relative_error(actual, expected) <= 1e-5


@pytest.mark.parametrize("mode", ["function", "xla"])
@pytest.mark.parametrize("shape", [(), (6,), (4, 3), (2, 3, 1, 2)], ids=str)
@pytest.mark.parametrize("variant", ["II", "I"])
@pytest.mark.parametrize("momentum", MOMENTA[:2], ids=["m0", "m.9"])
def test_dense_matches_reference_compiled(shape, variant, momentum, mode):
    grads = gradients(shape)
    w0, actual, _ = run_sm3(shape, grads, mode=mode, variant=variant, **momentum)
    expected = reference_run(shape, w0, grads, variant=variant, **momentum)
    assert ref.relative_error(actual, expected) <= 1e-5


@pytest.mark.parametrize("epsilon", [1e-8, 0.5])
def test_epsilon_is_added_under_the_root(epsilon):
    shape = (4, 5)
    grads = gradients(shape)
    w0, actual, _ = run_sm3(shape, grads, epsilon=epsilon)
    expected = reference_run(shape, w0, grads, momentum=0.9, epsilon=epsilon)
    assert ref.relative_error(actual, expected) <= 1e-5


def test_all_zero_gradient_leaves_weights_unchanged():
    """0/0 = 0: without epsilon, a zero gradient on fresh state must not produce NaN."""
    w0, actual, _ = run_sm3((3, 4), [np.zeros((3, 4), np.float32)] * 2)
    np.testing.assert_array_equal(actual, w0.astype(np.float64))


@pytest.mark.parametrize(
    "dtype,tolerance", [(tf.float16, 2**-10), (tf.bfloat16, 2**-7)], ids=["float16", "bfloat16"]
)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_low_precision_variables(dtype, tolerance, momentum):
    """float32 maths and float32 accumulators, rounded once into the variable's dtype."""
    shape = (4, 6)
    grads = gradients(shape)
    w0, actual, optimizer = run_sm3(shape, grads, dtype=dtype, momentum=momentum)
    expected = reference_run(
        shape,
        w0,
        grads,
        param_dtype=dtype.name,
        momentum=momentum,
        momentum_dtype=dtype.name if momentum else None,
    )
    # Within one rounding of the variable's type (the reference rounds the same way, so most agree).
    assert ref.relative_error(actual, expected) <= tolerance
    accumulator_dtypes = {v.dtype for v in optimizer.variables if "accumulator" in v.path}
    assert accumulator_dtypes == {"float32"}


def sparse_case(rows=6, cols=(3,), seed=0):
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(STEPS):
        indices = np.array([1, 4, 1, 0, 4, 1] if t % 2 == 0 else [5, 2], np.int64)
        if len(cols) == 0:
            values = rng.normal(size=(len(indices),)).astype(np.float32)
        else:
            values = rng.normal(size=(len(indices),) + cols).astype(np.float32)
        steps.append((indices, values))
    return (rows,) + cols, steps


@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
@pytest.mark.parametrize("cols", [(), (3,), (2, 3)], ids=["rank1", "rank2", "rank3"])
@pytest.mark.parametrize("variant", ["II", "I"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sparse_with_duplicate_indices(cols, variant, momentum, mode):
    shape, steps = sparse_case(cols=cols)
    w0 = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    var = tf.Variable(w0)
    optimizer = sm3_tf.SM3(learning_rate=LR, momentum=momentum, variant=variant, beta_2=0.95)

    def apply(v, i):
        return optimizer.apply_gradients(
            [(tf.IndexedSlices(v, i, dense_shape=tf.constant(shape, tf.int64)), var)]
        )

    if mode != "eager":
        apply = tf.function(apply, jit_compile=(mode == "xla"))
    model = ref.SM3Reference(shape, variant=variant, momentum=momentum, beta_2=0.95)
    expected = w0.astype(np.float64)
    for indices, values in steps:
        apply(tf.constant(values), tf.constant(indices))
        expected = model.sparse_step(expected, indices, values, LR)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5
    # Untouched rows (3) never move: lazy updates.
    np.testing.assert_array_equal(var.numpy()[3], w0[3])


def test_sparse_step_never_densifies():
    """The traced sparse step holds no tensor of the variable's full size besides the variable."""
    rows, cols = 1000, 8
    var = tf.Variable(tf.zeros((rows, cols)))
    optimizer = sm3_tf.SM3(learning_rate=LR, fused=False)
    optimizer.build([var])

    @tf.function
    def apply(values, indices):
        optimizer.apply_gradients(
            [(tf.IndexedSlices(values, indices, tf.constant([rows, cols])), var)]
        )

    graph = apply.get_concrete_function(
        tf.TensorSpec([None, cols]), tf.TensorSpec([None], tf.int64)
    ).graph
    for op in graph.get_operations():
        for output in op.outputs:
            if output.shape.rank is not None and output.shape.is_fully_defined():
                assert output.shape.num_elements() < rows * cols, (op.type, op.name, output.shape)


def test_empty_sparse_gradient_is_a_no_op():
    var = tf.Variable(np.ones((4, 3), np.float32))
    optimizer = sm3_tf.SM3(learning_rate=LR)
    optimizer.apply_gradients(
        [
            (
                tf.IndexedSlices(
                    tf.zeros((0, 3)), tf.zeros((0,), tf.int64), tf.constant([4, 3], tf.int64)
                ),
                var,
            )
        ]
    )
    np.testing.assert_array_equal(var.numpy(), np.ones((4, 3), np.float32))
