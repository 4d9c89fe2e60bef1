"""The kernels give the same answer on one thread and many, and under MirroredStrategy.

Thread counts change how a parameter is cut into tiles, never the result: per-element arithmetic
does not depend on the tiling and maxima are exact, so 1 and 7 threads must agree bit for bit (and
with the reference). MirroredStrategy hands update_step one replica's variable at a time; each
replica's copy must match the reference for the all-reduced gradient.
"""

import kernel_test_support as support
import kernel_thread_worker as worker
import numpy as np
import pytest
import tensorflow as tf

import sm3_tf


@pytest.fixture(scope="module", autouse=True)
def kernels():
    support.require_kernels()


def _expected_results():
    """The reference's weights and covers for every worker case."""
    expected = {}
    for name, (shape, options) in worker.DENSE_CASES.items():
        reference = support.reference_for(shape, options)
        w = support.initial_weights(shape, options).astype(np.float64)
        for g in support.dense_gradients(shape, worker.STEPS):
            w = reference.step(w, g, support.LEARNING_RATE)
        expected[name] = (w, reference.accumulators)
    for name, (shape, options, rows) in worker.SPARSE_CASES.items():
        reference = support.reference_for(shape, options)
        w = support.initial_weights(shape, options).astype(np.float64)
        for indices, values in support.sparse_gradients(shape, worker.STEPS, rows):
            w = reference.sparse_step(w, indices, values, support.LEARNING_RATE)
        expected[name] = (w, reference.accumulators[:1])
    return expected


def test_one_thread_and_many_threads_agree_exactly(tmp_path):
    runs = {threads: str(tmp_path / f"threads_{threads}.npz") for threads in (1, 7)}
    processes = {threads: worker.start(threads, out) for threads, out in runs.items()}
    for threads, process in processes.items():
        process.join(timeout=180)
        if process.is_alive():
            process.kill()
        # A failing worker's traceback is on this test's captured stderr.
        assert process.exitcode == 0, f"{threads}-thread worker exited with {process.exitcode}"
    one, many = (np.load(runs[t]) for t in (1, 7))
    for name, (weights, covers) in _expected_results().items():
        np.testing.assert_array_equal(one[name], many[name], err_msg=name)
        assert support.relative_error(one[name], weights) <= support.TOLERANCE, name
        for axis, cover in enumerate(covers):
            key = f"{name}/cover_{axis}"
            np.testing.assert_array_equal(one[key], many[key], err_msg=key)
            assert support.relative_error(one[key], cover) <= support.TOLERANCE, key


def test_mirrored_strategy_updates_every_replica_with_the_kernel(mirrored_strategy):
    strategy = mirrored_strategy
    options = support.Options("II", momentum=0.9)
    w0 = support.initial_weights((12, 5), options)
    embedding0 = support.initial_weights((10, 4), options, seed=5)
    with strategy.scope():
        dense_var = tf.Variable(w0)
        embedding = tf.Variable(embedding0)
        optimizer = sm3_tf.SM3(learning_rate=0.1, momentum=0.9, fused=True)
        optimizer.build([dense_var, embedding])
    grads = support.dense_gradients((12, 5), 2)
    rows = [np.array([1, 7, 1]), np.array([3, 3, 9])]
    values = [np.random.default_rng(k).standard_normal((3, 4)).astype(np.float32) for k in (0, 1)]

    @tf.function
    def step(g, row_indices, row_values):
        def replica_fn():
            # The replicas' gradients all-reduce to (g, rows): each sends its share.
            share = (
                tf.cast(
                    tf.distribute.get_replica_context().replica_id_in_sync_group + 1, tf.float32
                )
                / 3.0
            )
            sparse = tf.IndexedSlices(row_values * share, row_indices, tf.constant([10, 4]))
            optimizer.apply_gradients([(g * share, dense_var), (sparse, embedding)])

        strategy.run(replica_fn)

    dense_reference = support.reference_for((12, 5), options)
    sparse_reference = support.reference_for((10, 4), options)
    expected_dense, expected_embedding = w0.astype(np.float64), embedding0.astype(np.float64)
    for g, r, v in zip(grads, rows, values):
        step(tf.constant(g), tf.constant(r), tf.constant(v))
        expected_dense = dense_reference.step(expected_dense, g, 0.1)
        # The two replicas' rows arrive concatenated: every row twice, at 1/3 and 2/3 of its value.
        expected_embedding = sparse_reference.sparse_step(
            expected_embedding,
            np.concatenate([r, r]),
            np.concatenate([v / 3.0, 2.0 * v / 3.0]),
            0.1,
        )
    for component in strategy.experimental_local_results(dense_var):
        assert support.relative_error(component.numpy(), expected_dense) <= support.TOLERANCE
    for component in strategy.experimental_local_results(embedding):
        assert support.relative_error(component.numpy(), expected_embedding) <= support.TOLERANCE
