"""Zero-size variables (T2T makes [0, d] embedding shards) leave no non-finite value in the state,
on every path: fused kernel, TF ops, XLA, sparse, and the v1 optimizer. Their covers are checked
against the numpy reference, where a maximum over no entries is 0."""

import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf

import sm3_tf
from sm3_tf import kernel_loader, v1

SHAPES = [(0, 128), (128, 0), (0,), (3, 0, 4)]
LR = 0.1
# Rows of a sparse gradient for each shape: only a non-empty axis 0 has rows to name.
SPARSE_ROWS = {(0, 128): [], (128, 0): [1, 5, 1], (0,): [], (3, 0, 4): [0, 2]}

needs_kernels = pytest.mark.skipif(
    kernel_loader.unavailable_reason() is not None, reason="the fused kernels are unavailable"
)
PATHS = [
    pytest.param(dict(fused=True), False, id="fused", marks=needs_kernels),
    pytest.param(dict(fused=False), False, id="tf_ops"),
    pytest.param(dict(), True, id="xla"),
]


def gradient(shape, sparse):
    """A gradient for `shape` (dense, or rows at `SPARSE_ROWS`); both have no elements."""
    if not sparse:
        return tf.zeros(shape), None
    rows = np.array(SPARSE_ROWS[shape], np.int64)
    values = np.zeros((len(rows),) + shape[1:], np.float32)
    return tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant(shape, tf.int64)), (
        rows,
        values,
    )


def reference_covers(shape, sparse, variant, steps=2):
    model = ref.SM3Reference(shape, variant=variant, momentum=0.9, beta_2=0.9)
    w = np.zeros(shape)
    for _ in range(steps):
        if sparse:
            rows, values = gradient(shape, sparse)[1]
            w = model.sparse_step(w, rows, values, LR)
        else:
            w = model.step(w, np.zeros(shape), LR)
    return model.accumulators


def check_state(state, covers, expected):
    for value in state:
        assert np.all(np.isfinite(value)), value
    assert len(covers) == len(expected)
    for actual, wanted in zip(covers, expected):
        np.testing.assert_array_equal(actual, wanted)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("variant", ["II", "I"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("options, jit_compile", PATHS)
def test_keras_state_stays_finite(shape, variant, sparse, options, jit_compile):
    var = tf.Variable(tf.zeros(shape), name="empty")
    # A non-empty variable in the same step: its update must not be disturbed either.
    other = tf.Variable(tf.ones((3, 2)), name="other")
    optimizer = sm3_tf.SM3(learning_rate=LR, momentum=0.9, beta_2=0.9, variant=variant, **options)

    def apply(grad):
        optimizer.apply_gradients([(grad, var), (tf.ones((3, 2)), other)])

    if jit_compile:
        apply = tf.function(apply, jit_compile=True)
    for _ in range(2):
        apply(gradient(shape, sparse)[0])
    covers = [v.numpy() for v in optimizer.variables if "empty_0_accumulator" in v.path]
    check_state(
        [v.numpy() for v in optimizer.variables],
        covers,
        reference_covers(shape, sparse, variant),
    )
    expected_other = ref.SM3Reference((3, 2), variant=variant, momentum=0.9, beta_2=0.9)
    w = np.ones((3, 2))
    for _ in range(2):
        w = expected_other.step(w, np.ones((3, 2)), LR)
    assert ref.relative_error(other.numpy(), w) <= 1e-5


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("options, jit_compile", PATHS)
def test_v1_state_stays_finite(shape, sparse, options, jit_compile):
    var = tf.Variable(tf.zeros(shape))
    optimizer = v1.SM3Optimizer(LR, momentum=0.9, beta_2=0.9, **options)

    def apply(grad):
        optimizer.apply_gradients([(grad, var)])

    if jit_compile:
        apply = tf.function(apply, jit_compile=True)
    for _ in range(2):
        apply(gradient(shape, sparse)[0])
    covers = [
        optimizer.get_slot(var, f"accumulator_{axis}").numpy()
        for axis in range(len(ref.cover_shapes(shape)))
    ]
    state = covers + [optimizer.get_slot(var, "momentum").numpy()]
    check_state(state, covers, reference_covers(shape, sparse, "II"))
