"""The SM3 step in plain TensorFlow ops: the XLA/TPU path and the fallback of the fused kernels.

One step for one variable, dense or sparse, written as small functions that each do one thing
(optax style). Both optimizers call `dense_update` / `sparse_update`; the fused kernels implement
exactly the same contract, so tests run every path on the same inputs.

Notation, for a gradient g of a parameter w with covers acc_1..acc_p (see `covers.py`):

  SM3-II:  nu    = beta_2 * min_i acc_i + w_new * g^2
           acc_i <- max of nu over all axes but i
  SM3-I:   acc_i <- beta_2 * acc_i + w_new * max of g^2 over all axes but i
           nu    = min_i acc_i
  p        = g / sqrt(nu + epsilon)        (p = 0 where nu + epsilon == 0, the paper's 0/0 = 0)
  buf     <- momentum * buf + (1 - momentum) * p ;  w <- w - lr * buf
           (no buffer when momentum == 0: w <- w - lr * p)

where w_new = 1 for running sums (beta_2 == 1) and 1 - beta_2 otherwise. Rank-0/1 parameters keep
one accumulator per element, for which both variants are diagonal Adagrad. A sparse step (rows of
axis 0) uses the axis-0 cover alone, as the authors' implementation does: acc_0[row] broadcast
stands for min_i acc_i, and only the touched rows of w, acc_0 and buf change.

Arithmetic is float32 (float64 for float64 variables) whatever the variable's dtype; accumulators
are stored in that type, the momentum buffer in its own dtype.

Everything here is XLA-compilable: no host work, no data-dependent shapes (the sparse path sorts
instead of calling `tf.unique`).
"""

import math

import tensorflow as tf

from sm3_tf import covers


def compute_dtype(dtype):
    """The arithmetic type for a variable of `dtype`: float64 stays, everything else is float32."""
    return tf.float64 if tf.as_dtype(dtype) == tf.float64 else tf.float32


def min_of_covers(accumulator_values, rank):
    """min_i acc_i, broadcast to the parameter's rank (rank-0/1: the accumulator itself)."""
    if rank < 2:
        return accumulator_values[0]
    smallest = covers.broadcast_along(accumulator_values[0], 0, rank)
    for axis, value in enumerate(accumulator_values[1:], start=1):
        smallest = tf.minimum(smallest, covers.broadcast_along(value, axis, rank))
    return smallest


def max_over_other_axes(x, rank):
    """[max of x over all axes but i for each axis i]: what each cover keeps of x."""
    if rank < 2:
        return [x]
    if not x.shape.is_fully_defined():
        return [tf.reduce_max(x, axis=covers.other_axes(axis, rank)) for axis in range(rank)]
    return _cover_maxima(x)


# Rows folded together per stage of `_max_over_rows`; 8 was fastest on 8192x8192 (4 and 16 are
# about 1.4x slower, 32 and more 4x, as slow as a plain reduction).
_ROW_STAGE = 8


def _cover_maxima(x):
    """max_over_other_axes for a static shape of rank >= 2, as reductions Eigen does at memory
    speed.

    Eigen reduces the innermost axis at full bandwidth but the outer axes of a large tensor 4x
    slower (8192x8192: 42 ms against 9 ms), and a reduction over axes on both sides of a kept one
    slower still (17x on a rank-3 tensor). So x is read twice whatever its rank: once reduced over
    its last axis, which leaves a tensor 1/d_last the size whose own cover maxima are the covers of
    every other axis, and once by `_max_over_rows` for the last axis' cover. Max is exact, so any
    order gives the same bits.
    """
    dims = x.shape.as_list()
    last_cover = _max_over_rows(tf.reshape(x, [math.prod(dims[:-1]), dims[-1]]))
    without_last = tf.reduce_max(x, axis=-1)
    leading_covers = [without_last] if len(dims) == 2 else _cover_maxima(without_last)
    return leading_covers + [last_cover]


def _max_over_rows(x):
    """max over axis 0 of a [rows, columns] tensor, folding `_ROW_STAGE` rows at a time.

    Each stage views groups of rows as [rows / stage, stage, columns] and reduces the middle axis,
    which Eigen streams at memory speed; rows that do not fill a group are reduced apart.
    """
    rows, columns = x.shape.as_list()
    leftover = []
    while rows >= 2 * _ROW_STAGE:
        whole = rows - rows % _ROW_STAGE
        if whole < rows:
            leftover.append(tf.reduce_max(x[whole:], axis=0))
            x = x[:whole]  # a leading slice: TF aliases the buffer, no copy
        rows = whole // _ROW_STAGE
        x = tf.reduce_max(tf.reshape(x, [rows, _ROW_STAGE, columns]), axis=1)
    result = tf.reduce_max(x, axis=0)
    for part in leftover:
        result = tf.maximum(result, part)
    return result


def second_moments(g, accumulator_values, config):
    """Returns (nu, new accumulator values) for gradient `g` under `config`.

    Args:
      g: the gradient, in compute dtype.
      accumulator_values: the current covers (one per axis, or one per element for rank 0/1).
      config: a `StepConfig`.
    """
    rank = len(g.shape)
    beta_2 = config.beta_2
    squared = _weighted(tf.square(g), config.new_sample_weight)
    if config.variant == "II" or rank < 2:
        nu = _decay(min_of_covers(accumulator_values, rank), beta_2) + squared
        return nu, max_over_other_axes(nu, rank)
    new_values = [
        _decay(value, beta_2) + update
        for value, update in zip(accumulator_values, max_over_other_axes(squared, rank))
    ]
    nu = min_of_covers(new_values, rank) * tf.ones_like(g)
    return nu, new_values


def row_second_moments(g_rows, accumulator_rows, config):
    """Sparse step: (nu, new axis-0 accumulator rows) when the rows alone cover the touched entries.

    As in the authors' implementation, a sparse step uses only the axis-0 cover, broadcast over the
    other axes: SM3-II nu = beta_2 * acc_0[row] + w_new * g^2, acc_0[row] = max of nu over the row;
    SM3-I acc_0[row] = beta_2 * acc_0[row] + w_new * max of g^2 over the row, nu = acc_0[row].
    The other covers are neither read nor written (reading them would let rows that sparse steps
    never touch pull the bound towards 0).
    """
    rank = len(g_rows.shape)
    if rank < 2:
        return second_moments(g_rows, [accumulator_rows], config)

    def as_column(rows):
        return covers.broadcast_along(rows, 0, rank)

    squared = _weighted(tf.square(g_rows), config.new_sample_weight)
    other_axes = list(range(1, rank))
    if config.variant == "II":
        nu = _decay(as_column(accumulator_rows), config.beta_2) + squared
        return nu, [tf.reduce_max(nu, axis=other_axes)]
    new_rows = _decay(accumulator_rows, config.beta_2) + tf.reduce_max(squared, other_axes)
    return as_column(new_rows) * tf.ones_like(g_rows), [new_rows]


def _decay(value, beta_2):
    return value if beta_2 == 1.0 else beta_2 * value


def _weighted(squared, weight):
    # Skipping the multiply by 1 saves a full pass over parameter-sized data.
    return squared if weight == 1.0 else weight * squared


def precondition(g, nu, epsilon):
    """p = g / sqrt(nu + epsilon), defined as 0 where nu + epsilon == 0."""
    return tf.math.divide_no_nan(g, tf.sqrt(nu + epsilon if epsilon else nu))


def momentum_step(p, buffer_value, momentum):
    """buf <- momentum * buf + (1 - momentum) * p, in the compute dtype of `p`."""
    momentum = tf.cast(momentum, p.dtype)
    return momentum * tf.cast(buffer_value, p.dtype) + (1.0 - momentum) * p


def _read(variable, dtype):
    return tf.cast(variable.read_value() if hasattr(variable, "read_value") else variable, dtype)


def _has_no_elements(var):
    """A zero-size variable (T2T makes [0, d] embedding shards) has nothing to update.

    Its covers stay 0, which is also what the exact step computes: a maximum over no entries of
    non-negative values is 0 (TF's reduce_max would give -inf), and SM3-I adds that maximum. The
    fused kernels return at once for such variables as well.
    """
    return var.shape.num_elements() == 0


def dense_update(var, grad, accumulators, momentum_buffer, lr, config):
    """One SM3 step on `var` in place with a dense gradient.

    Args:
      var: the `tf.Variable` to train (float32/float16/bfloat16/float64).
      grad: its gradient, a dense tensor of the same shape.
      accumulators: the covers, `tf.Variable`s shaped as `covers.accumulator_shapes(var.shape)`.
      momentum_buffer: a `tf.Variable` shaped as `var`, or None when momentum == 0.
      lr: the learning rate (scalar tensor or number).
      config: a `StepConfig`.

    Returns:
      One op grouping every assignment (graph mode: run it to run the whole step); None eagerly.
    """
    if _has_no_elements(var):
        return tf.group()
    dtype = compute_dtype(var.dtype)
    g = tf.cast(grad, dtype)
    nu, new_values = second_moments(g, [_read(a, dtype) for a in accumulators], config)
    updates = [
        accumulator.assign(tf.cast(value, accumulator.dtype))
        for accumulator, value in zip(accumulators, new_values)
    ]
    lr = tf.cast(lr, dtype)
    # Reading nu for the step only after the covers' reductions have read it lets TF hand nu's
    # buffer on to sqrt(nu) instead of allocating another full-size tensor.
    with tf.control_dependencies(new_values):
        nu = tf.identity(nu)
    if var.dtype == dtype and (momentum_buffer is None or momentum_buffer.dtype == dtype):
        updates.append(_apply_in_place(var, g, nu, momentum_buffer, lr, config))
        return tf.group(*updates)
    step = precondition(g, nu, config.epsilon)
    if momentum_buffer is not None:
        step = momentum_step(step, momentum_buffer.read_value(), config.momentum)
        updates.append(momentum_buffer.assign(tf.cast(step, momentum_buffer.dtype)))
    # Low-precision variable or buffer: the arithmetic stays in float32, rounded once on store.
    updates.append(var.assign(tf.cast(_read(var, dtype) - lr * step, var.dtype)))
    return tf.group(*updates)


def _apply_in_place(var, g, nu, momentum_buffer, lr, config):
    """w -= lr * p (or the momentum form) with TF's own in-place training ops.

    ResourceApplyMomentum computes buf = momentum * buf + grad; w -= lr * buf in one pass, so it is
    fed grad = (1 - momentum) * p, computed as g / (sqrt(nu) / (1 - momentum)): scaling the
    single-use sqrt(nu) lets TF reuse its buffer, where scaling g would allocate a new full-size
    tensor. Both ops have XLA kernels, so this stays the TPU path too.
    """
    root = tf.sqrt(nu + config.epsilon if config.epsilon else nu)
    if momentum_buffer is None:
        return tf.raw_ops.ResourceApplyGradientDescent(
            var=var.handle, alpha=lr, delta=tf.math.divide_no_nan(g, root)
        )
    momentum = tf.cast(config.momentum, g.dtype)
    scaled = tf.math.divide_no_nan(g, root * (1.0 / (1.0 - momentum)))
    return tf.raw_ops.ResourceApplyMomentum(
        var=var.handle, accum=momentum_buffer.handle, lr=lr, grad=scaled, momentum=momentum
    )


def sum_duplicate_rows(values, indices):
    """Sums the rows of an IndexedSlices that share an index, keeping one entry per original index.

    Every occurrence of a row index carries the total of its duplicates, so the step computed for
    each occurrence is identical and a scatter that writes duplicates writes the same value. This
    keeps static shapes for XLA (no `tf.unique`) and never densifies to the variable's shape.

    Returns:
      (rows, summed): sorted row indices (with repeats) and their summed gradient rows.
    """
    order = tf.argsort(indices, stable=True)
    rows = tf.gather(indices, order)
    sorted_values = tf.gather(values, order)
    starts = tf.concat(
        [tf.ones_like(rows[:1], tf.int32), tf.cast(tf.not_equal(rows[1:], rows[:-1]), tf.int32)],
        axis=0,
    )
    segment = tf.cumsum(starts) - 1
    totals = tf.math.unsorted_segment_sum(sorted_values, segment, tf.shape(rows)[0])
    return rows, tf.gather(totals, segment)


def sparse_update(var, grad_values, grad_indices, accumulators, momentum_buffer, lr, config):
    """One SM3 step on the rows of `var` named by `grad_indices` (duplicates are summed).

    Only the touched rows of `var`, of the axis-0 accumulator and of the momentum buffer are read
    and
    written (lazy momentum); the other axes' accumulators are left alone (see `row_second_moments`).
    Arguments as in `dense_update`, with the gradient given as rows `grad_values`
    (shape [k] + var.shape[1:]) at axis-0 `grad_indices` (shape [k]).
    """
    if _has_no_elements(var):
        return tf.group()
    dtype = compute_dtype(var.dtype)
    rows, g = sum_duplicate_rows(tf.cast(grad_values, dtype), grad_indices)
    nu, new_values = row_second_moments(g, tf.cast(tf.gather(accumulators[0], rows), dtype), config)
    updates = [
        accumulators[0].scatter_update(
            tf.IndexedSlices(tf.cast(new_values[0], accumulators[0].dtype), rows)
        )
    ]
    step = precondition(g, nu, config.epsilon)
    if momentum_buffer is not None:
        step = momentum_step(step, tf.gather(momentum_buffer, rows), config.momentum)
        updates.append(
            momentum_buffer.scatter_update(
                tf.IndexedSlices(tf.cast(step, momentum_buffer.dtype), rows)
            )
        )
    new_rows = tf.cast(tf.gather(var, rows), dtype) - tf.cast(lr, dtype) * step
    updates.append(var.scatter_update(tf.IndexedSlices(tf.cast(new_rows, var.dtype), rows)))
    return tf.group(*updates)
