"""Optimizer-state accounting: bytes an optimizer keeps besides the model.

Counts the optimizer's real variables (not a formula), leaving out its counters (iteration,
learning rate, skipped-step count), so that SM3, Adam, Adagrad and Adafactor compare like for like.
For SM3 the expected state is, per variable of shape (d_1..d_p): 4 * (d_1 + .. + d_p) bytes of
covers
(4 * size for rank 0/1) plus the momentum buffer (size * bytes of `momentum_dtype`) when momentum >
0.
"""

import keras
import ml_dtypes
import numpy as np


def _counter_ids(optimizer):
    counters = [
        getattr(optimizer, "_iterations", None),
        getattr(optimizer, "_learning_rate", None),
        getattr(optimizer, "nonfinite_steps", None),
    ]
    return {id(c) for c in counters if isinstance(c, keras.Variable)}


def variable_bytes(variable):
    """Bytes of one variable's value."""
    name = keras.backend.standardize_dtype(variable.dtype)
    itemsize = np.dtype(getattr(ml_dtypes, name, None) or name).itemsize  # bfloat16: ml_dtypes
    return int(np.prod(variable.shape, dtype=np.int64)) * itemsize


def format_bytes(size):
    """Human-readable size: 1.5 KiB, 12.0 MiB, 1.56 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


def state_bytes(optimizer):
    """Bytes of a built Keras optimizer's state, counters excluded."""
    if not optimizer.built:
        raise ValueError(
            "`optimizer` must be built (call optimizer.build(variables)) to count its state."
        )
    counters = _counter_ids(optimizer)
    return sum(variable_bytes(v) for v in optimizer.variables if id(v) not in counters)


def parameter_bytes(variables):
    """Bytes of the trained variables themselves."""
    return sum(variable_bytes(v) for v in variables)


def comparison_table(variables, optimizer):
    """A printable table of `optimizer`'s state next to Keras Adam's for the same `variables`.

    Builds a throwaway Adam on `variables` to count its real state (the model is not changed).
    """
    if not optimizer.built:
        optimizer.build(variables)
    adam = keras.optimizers.Adam()
    adam.build(variables)
    params = parameter_bytes(variables)
    rows = [(type(optimizer).__name__, state_bytes(optimizer)), ("Adam", state_bytes(adam))]
    adam_bytes = rows[1][1]
    lines = [
        f"optimizer state for {format_bytes(params)} of parameters "
        f"({sum(int(np.prod(v.shape)) for v in variables):,} values):",
        f"  {'optimizer':<10} {'state':>11} {'x params':>9} {'x Adam':>7}",
    ]
    for name, size in rows:
        lines.append(
            f"  {name:<10} {format_bytes(size):>11} {size / max(params, 1):>9.3f} "
            f"{size / max(adam_bytes, 1):>7.3f}"
        )
    return "\n".join(lines)
