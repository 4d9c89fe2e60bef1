"""Seeded test inputs shared by the test tables of every path (TensorFlow and Keras backends)."""

import numpy as np


def gradients(shape, steps=3, seed=0):
    """Random float32 gradients with an all-zero first row at step 0 (exercises the 0/0 = 0
    rule)."""
    rng = np.random.default_rng(seed)
    result = []
    for t in range(steps):
        g = rng.normal(size=shape).astype(np.float32)
        if t == 0 and len(shape) >= 1:
            g[0] = 0.0
        result.append(g)
    return result
