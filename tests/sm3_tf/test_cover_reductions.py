"""The covers' max reductions (`tf_step.max_over_other_axes`) against numpy's max.

The TF-ops path reduces large tensors in stages (last axis first, then groups of rows) because
Eigen's outer-axis reductions are slow; these shapes reach every branch: rows that are and are not
multiples of the stage, several stages, size-1 axes, and ranks 2 to 4.
"""

import numpy as np
import pytest
import tensorflow as tf

from sm3_tf import tf_step

SHAPES = [
    (1, 1),
    (7, 3),
    (16, 5),
    (17, 5),
    (37, 2),
    (128, 3),
    (129, 4),
    (1031, 2),
    (1, 40),
    (40, 1),
    (3, 130, 2),
    (129, 1, 3),
    (8, 9, 10, 3),
    (2, 17, 33, 1),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_max_over_other_axes_equals_numpy(shape):
    # Distinct values, so a maximum taken from the wrong element cannot tie with the right one.
    rng = np.random.default_rng(len(shape) * 1000 + sum(shape))
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32)
    rank = len(shape)
    results = tf.function(lambda t: tf_step.max_over_other_axes(t, rank))(tf.constant(x))
    assert len(results) == rank
    for axis, result in enumerate(results):
        other = tuple(a for a in range(rank) if a != axis)
        np.testing.assert_array_equal(result.numpy(), x.max(axis=other))


def test_unknown_shape_falls_back_to_plain_reductions():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    signature = [tf.TensorSpec([None, 6], tf.float32)]
    results = tf.function(lambda t: tf_step.max_over_other_axes(t, 2), input_signature=signature)(
        tf.constant(x)
    )
    np.testing.assert_array_equal(results[0].numpy(), x.max(axis=1))
    np.testing.assert_array_equal(results[1].numpy(), x.max(axis=0))
