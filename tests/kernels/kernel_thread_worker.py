"""Runs seeded fused-kernel steps with a given intra-op thread count and saves the results.

Used by test_kernel_threads_and_replicas.py: the thread pool size is fixed when TensorFlow starts,
so each count needs its own process. `start(threads, out)` starts one with multiprocessing's
"spawn", which gives the new interpreter the test process's import path.
"""

import multiprocessing

import kernel_test_support as support
import numpy as np
import tensorflow as tf

from sm3_tf import fused_step

# Big enough for several tiles at any thread count; one needs column blocks, one is diagonal.
DENSE_CASES = {
    "dense_ii": ((300, 1031), support.Options("II", momentum=0.9)),
    "dense_i": ((64, 3, 257), support.Options("I", momentum=0.9, beta_2=0.99)),
    "dense_wide": ((3, 50000), support.Options("II", momentum=0.0)),
    "dense_vector": ((100003,), support.Options("I", momentum=0.9)),
}
SPARSE_CASES = {
    "sparse_ii": ((2000, 64), support.Options("II", momentum=0.9), 1500),
}
STEPS = 3


def run_all():
    """{case: final weights} and {case/cover_i: final covers} after STEPS fused steps."""
    results = {}
    for name, (shape, options) in DENSE_CASES.items():
        state = support.PathState(support.initial_weights(shape, options), options)
        for g in support.dense_gradients(shape, STEPS):
            fused_step.dense_update(
                state.var,
                tf.constant(g),
                state.accumulators,
                state.buffer,
                support.LEARNING_RATE,
                options.config,
            )
        _save(results, name, state)
    for name, (shape, options, rows) in SPARSE_CASES.items():
        state = support.PathState(support.initial_weights(shape, options), options)
        for indices, values in support.sparse_gradients(shape, STEPS, rows):
            fused_step.sparse_update(
                state.var,
                tf.constant(values),
                tf.constant(indices),
                state.accumulators,
                state.buffer,
                support.LEARNING_RATE,
                options.config,
            )
        _save(results, name, state)
    return results


def _save(results, name, state):
    results[name] = state.var.numpy()
    for axis, cover in enumerate(state.accumulators):
        results[f"{name}/cover_{axis}"] = cover.numpy()


def run(threads, out):
    """In the new process: fixes the thread pools, runs every case, saves them to `out` (.npz)."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    np.savez(out, **run_all())


def start(threads, out):
    """`run(threads, out)` in a fresh interpreter; returns the started Process."""
    process = multiprocessing.get_context("spawn").Process(target=run, args=(threads, out))
    process.start()
    return process
