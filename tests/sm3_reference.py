"""Independent float64 numpy reference of SM3, written from the paper's equations.

Anil, Gupta, Koren, Singer, "Memory-Efficient Adaptive Optimization", NeurIPS 2019
(arXiv:1901.11150), Algorithms SM3-I and SM3-II, with the options this project adds:

  covers   rank >= 2: one accumulator vector per axis, acc_i of shape (d_i,);
           rank 0/1: one accumulator entry per element (diagonal Adagrad).
  SM3-II   nu    = beta_2 * min_i acc_i[broadcast] + (1 - beta_2') * g^2
           acc_i = max of nu over every axis but i
  SM3-I    acc_i = beta_2 * acc_i + (1 - beta_2') * max of g^2 over every axis but i
           nu    = min_i acc_i[broadcast]
           (beta_2' is 0 when beta_2 == 1: plain running sums, as in the paper)
  p        = g / sqrt(nu + epsilon), and 0 where nu + epsilon == 0
  momentum buf = momentum * buf + (1 - momentum) * p;  w = w - lr * buf
           (momentum == 0: w = w - lr * p)
  sparse   rows of axis 0 only: rows of w, of acc_0 and of buf change. As in the authors'
           implementation, only the axis-0 cover is used (the parameter is covered by its rows
           alone:
           nu = beta_2 * acc_0[row] + w_new * g^2 for SM3-II); the other covers are neither read nor
           written, so rows that a sparse step never touches cannot shrink anyone's bound.

This module never imports sm3_tf: it is what the code under test is checked against.
"""

import ml_dtypes
import numpy as np


def cover_shapes(shape):
    """The accumulator shapes SM3 keeps for a parameter of `shape`."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        return [shape]
    return [(d,) for d in shape]


def _broadcast(vector, axis, rank):
    shape = [1] * rank
    shape[axis] = -1
    return vector.reshape(shape)


def _max_over_all_axes_but(x, axis):
    """The cover's maximum; over no entries (a zero-size parameter) it is 0, the least value a
    sum of squares can take, so an empty axis never changes a cover."""
    other_axes = tuple(a for a in range(x.ndim) if a != axis)
    return np.max(x, axis=other_axes, initial=0.0) if other_axes else x


def _round_to(x, dtype):
    """Rounds float64 values to `dtype` storage and back (None: float32 storage)."""
    if dtype is None or dtype == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "bfloat16":
        return x.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float64)
    raise ValueError(dtype)


class SM3Reference:
    """Float64 SM3 state for one parameter; `step`/`sparse_step` return the new weights.

    Args:
      shape: the parameter's shape.
      variant: "II" or "I".
      momentum: in [0, 1); 0 keeps no buffer.
      beta_2: 1.0 for running sums/maxima, below 1 for the exponential moving average.
      epsilon: added to nu under the square root.
      momentum_dtype: None (float32 storage, like the parameter) or "bfloat16": the buffer is stored
        rounded to that type after each step while the arithmetic stays in high precision.
      param_dtype: storage type of the weights ("float32", "float16", "bfloat16").
    """

    def __init__(
        self,
        shape,
        variant="II",
        momentum=0.0,
        beta_2=1.0,
        epsilon=0.0,
        momentum_dtype=None,
        param_dtype="float32",
    ):
        self.shape = tuple(shape)
        self.variant = variant
        self.momentum = momentum
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum_dtype = momentum_dtype
        self.param_dtype = param_dtype
        self.accumulators = [np.zeros(s, np.float64) for s in cover_shapes(shape)]
        self.buffer = np.zeros(self.shape, np.float64) if momentum else None

    @property
    def _new_weight(self):
        return 1.0 - self.beta_2 if self.beta_2 < 1.0 else 1.0

    def _precondition(self, g, nu):
        denominator = nu + self.epsilon
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(denominator > 0, g / np.sqrt(safe), 0.0)

    def _nu_and_new_accumulators(self, g, accumulators):
        """Returns nu and the new accumulators for gradient `g` and the current covers."""
        rank = g.ndim
        if len(accumulators) == 1:
            (acc,) = accumulators
            new = self.beta_2 * acc + self._new_weight * g * g
            return new, [new]
        broadcast = [_broadcast(a, i, rank) for i, a in enumerate(accumulators)]
        if self.variant == "II":
            smallest = broadcast[0]
            for b in broadcast[1:]:
                smallest = np.minimum(smallest, b)
            nu = self.beta_2 * smallest + self._new_weight * g * g
            return nu, [_max_over_all_axes_but(nu, i) for i in range(rank)]
        new = [
            self.beta_2 * a + self._new_weight * _max_over_all_axes_but(g * g, i)
            for i, a in enumerate(accumulators)
        ]
        nu = _broadcast(new[0], 0, rank)
        for i, a in enumerate(new[1:], start=1):
            nu = np.minimum(nu, _broadcast(a, i, rank))
        return nu * np.ones_like(g), new

    def _apply(self, w, g, nu, buffer_rows):
        p = self._precondition(g, nu)
        if self.momentum:
            new_buffer = self.momentum * buffer_rows + (1.0 - self.momentum) * p
            step = new_buffer
            stored = _round_to(new_buffer, self.momentum_dtype or self.param_dtype)
        else:
            step, stored = p, None
        return _round_to(w - self.lr * step, self.param_dtype), stored

    def step(self, w, g, lr):
        """One dense step on float64 copies of `w` and `g`; returns the new `w`."""
        w = np.asarray(w, np.float64)
        g = np.asarray(g, np.float64).reshape(self.shape)
        self.lr = lr
        nu, self.accumulators = self._nu_and_new_accumulators(g, self.accumulators)
        new_w, stored = self._apply(w, g, nu, self.buffer)
        if self.momentum:
            self.buffer = stored
        return new_w

    def sparse_step(self, w, indices, values, lr):
        """One step for a gradient given as rows `values` at axis-0 `indices` (duplicates
        summed)."""
        w = np.array(w, np.float64)
        indices = np.asarray(indices)
        values = np.asarray(values, np.float64)
        rows = np.unique(indices)
        g = np.stack([values[indices == r].sum(axis=0) for r in rows]) if len(rows) else values[:0]
        self.lr = lr
        acc_rows = self.accumulators[0][rows]
        if len(self.shape) < 2:
            nu, (new_rows,) = self._nu_and_new_accumulators(g, [acc_rows])
        else:
            # The rows alone cover the touched entries: acc_0[row] broadcast over the other axes.
            row_shape = (len(rows),) + (1,) * (len(self.shape) - 1)
            other_axes = tuple(range(1, len(self.shape)))
            squared = g * g
            if self.variant == "II":
                nu = self.beta_2 * acc_rows.reshape(row_shape) + self._new_weight * squared
                new_rows = nu.max(axis=other_axes, initial=0.0)
            else:
                row_maxima = squared.max(axis=other_axes, initial=0.0)
                new_rows = self.beta_2 * acc_rows + self._new_weight * row_maxima
                nu = new_rows.reshape(row_shape) * np.ones_like(g)
        self.accumulators[0][rows] = new_rows
        buffer_rows = self.buffer[rows] if self.momentum else None
        new_rows, stored = self._apply(w[rows], g, nu, buffer_rows)
        w[rows] = new_rows
        if self.momentum:
            self.buffer[rows] = stored
        return w


def relative_error(actual, expected):
    """max |actual - expected| / max(|expected|, tiny): the measure the tests bound by 1e-5."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    scale = max(np.max(np.abs(expected)) if expected.size else 0.0, 1e-30)
    return float(np.max(np.abs(actual - expected)) / scale) if expected.size else 0.0
