"""The benchmarks' bare streaming loop over given tensors (Sm3>StreamOn), checked with numpy: it is
what bench_step's "x same-memory loop" divides by, so it must stream every element it claims to
and write exactly what the probe's formula says."""

import numpy as np
import pytest
import tensorflow as tf

from sm3_tf import kernel_loader

ELEMENTS = (1 << 16) + 5  # two tiles and a tail of 5 the loop leaves out


@pytest.fixture(scope="module")
def ops():
    try:
        return kernel_loader.benchmark_ops()
    except RuntimeError as error:  # no compiler here: the probe cannot be built either
        pytest.skip(str(error))


def test_stream_on_reads_the_gradient_and_rewrites_each_variable_in_place(ops):
    rng = np.random.default_rng(3)
    grad, weight, buffer = (rng.standard_normal(ELEMENTS).astype(np.float32) for _ in range(3))
    weight_var, buffer_var = tf.Variable(weight), tf.Variable(buffer)
    ops.sm3_stream_on(reads=[tf.constant(grad)], variables=[weight_var.handle, buffer_var.handle])
    body = ELEMENTS // 16 * 16
    total = (grad.astype(np.float64) + weight) + buffer
    for variable, before in ((weight_var, weight), (buffer_var, buffer)):
        after = variable.numpy()
        np.testing.assert_allclose(
            after[:body], (0.5 * before + 0.25 * total)[:body], rtol=1e-6, atol=1e-6
        )
        np.testing.assert_array_equal(after[body:], before[body:])  # the tail is not streamed


def test_stream_on_names_the_input_of_another_size_or_type(ops):
    grad = tf.zeros([ELEMENTS])
    short = tf.Variable(tf.zeros([ELEMENTS - 16]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`variables\[0\]` has 65525"):
        ops.sm3_stream_on(reads=[grad], variables=[short.handle])
    doubles = tf.Variable(tf.zeros([ELEMENTS], tf.float64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`variables\[0\]` must be float32"):
        ops.sm3_stream_on(reads=[grad], variables=[doubles.handle])
    untouched = tf.Variable(tf.ones([ELEMENTS]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 3"):
        ops.sm3_stream_on(reads=[grad] * 4, variables=[untouched.handle])
    assert np.all(untouched.numpy() == 1.0)  # refused before anything was written
