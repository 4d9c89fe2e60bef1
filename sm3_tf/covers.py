"""Covers: which accumulators SM3 keeps for a parameter, and how they broadcast back.

SM3 (Anil et al. 2019, sec. 3) bounds each parameter's second-moment statistic by a small set of
accumulators that "cover" it. This project uses the paper's choice for tensors: for a parameter of
shape (d_1, ..., d_p) with p >= 2, one vector per axis, acc_i of shape (d_i,), so the state is
d_1 + ... + d_p floats instead of d_1 * ... * d_p. A scalar or a vector gets one accumulator entry
per
element, which makes SM3 exactly diagonal Adagrad there.

This is the one place that knows the covers; the Keras optimizer (on every backend), the v1
optimizer, the kernels' Python wrapper and the memory accounting all ask here. It imports no
framework: each step reshapes with its own ops along `broadcast_shape`.
"""


def is_factored(shape):
    """True when a parameter of `shape` gets one accumulator per axis (rank >= 2)."""
    return len(tuple(shape)) >= 2


def accumulator_shapes(shape):
    """The accumulator shapes for a parameter of `shape`.

    Args:
      shape: the parameter's fully defined shape (tuple, list or `tf.TensorShape`).

    Returns:
      A list of shape tuples: `[(d_1,), ..., (d_p,)]` for rank >= 2, `[shape]` for rank 0 and 1.
    """
    dims = shape.as_list() if hasattr(shape, "as_list") else shape  # tf.TensorShape
    shape = tuple(int(d) for d in dims)
    if not is_factored(shape):
        return [shape]
    return [(d,) for d in shape]


def accumulator_size(shape):
    """Number of accumulator floats SM3 keeps for a parameter of `shape`."""
    total = 0
    for cover in accumulator_shapes(shape):
        size = 1
        for d in cover:
            size *= d
        total += size
    return total


def broadcast_shape(axis, rank):
    """The shape that stands accumulator `axis` (d_axis,) along its axis of a rank-`rank`
    parameter: size 1 on every other axis, -1 (d_axis) on its own."""
    shape = [1] * rank
    shape[axis] = -1
    return shape


def other_axes(axis, rank):
    """Every axis of a rank-`rank` tensor but `axis`: the axes an accumulator takes its max over."""
    return [a for a in range(rank) if a != axis]
