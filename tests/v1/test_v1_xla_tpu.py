"""TPU readiness, as far as a machine without a TPU can show it.

- The v1 optimizer's update compiles and runs under `tf.function(jit_compile=True)`, dense and
  sparse, with skip_nonfinite's tf.cond, and gives the numpy reference's weights.
- Every op in that compiled update, its tf.cond branches included, has an XLA kernel, and the fused
  kernel is refused there (it has none).
- It composes with `tf.compat.v1.tpu.CrossShardOptimizer` in a graph: the gradients are summed
  across shards (CrossReplicaSum) before SM3 and before its all-finite check.
"""

import numpy as np
import pytest
import sm3_reference
import tensorflow as tf
from tensorflow.python.framework import kernels

from sm3_tf import v1

# Graph plumbing that XLA handles itself rather than through an op kernel: function arguments and
# control-only no-ops.
GRAPH_PLUMBING = {"Placeholder", "NoOp"}
TABLE_SHAPE = (6, 2)


def jit_training(optimizer, weights, table):
    """A jit-compiled step: a dense gradient for `weights`, an IndexedSlices one for `table`."""

    @tf.function(jit_compile=True)
    def train(dense_grad, ids, rows):
        optimizer.apply_gradients(
            [(dense_grad, weights), (tf.IndexedSlices(rows, ids, tf.constant(TABLE_SHAPE)), table)]
        )

    return train


def op_types(concrete_function):
    """Op types of a traced function and of every function it calls (tf.cond branches)."""
    graph_def = concrete_function.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types |= {node.op for node in function.node_def}
    return types


def has_xla_kernel(op_type):
    return any(
        kernel.device_type == "XLA_CPU_JIT"
        for kernel in kernels.get_registered_kernels_for_op(op_type).kernel
    )


def test_update_compiles_with_xla_matches_reference_and_uses_only_xla_ops():
    rng = np.random.default_rng(0)
    weights = tf.Variable(np.ones((4, 3), np.float32))
    table = tf.Variable(np.ones(TABLE_SHAPE, np.float32))
    optimizer = v1.SM3Optimizer(0.1, 0.9, variant="I", skip_nonfinite=True)
    train = jit_training(optimizer, weights, table)
    dense_reference = sm3_reference.SM3Reference((4, 3), variant="I", momentum=0.9)
    sparse_reference = sm3_reference.SM3Reference(TABLE_SHAPE, variant="I", momentum=0.9)
    expected_weights, expected_table = np.ones((4, 3)), np.ones(TABLE_SHAPE)
    for step, ids in enumerate([[1, 4, 1], [0, 5, 2], [3, 3, 3]]):
        dense = rng.normal(size=(4, 3)).astype(np.float32)
        rows = rng.normal(size=(3, 2)).astype(np.float32)
        if step == 1:
            rows[2, 0] = np.nan  # this whole step is skipped
        train(tf.constant(dense), tf.constant(ids), tf.constant(rows))
        if step != 1:
            expected_weights = dense_reference.step(expected_weights, dense, 0.1)
            expected_table = sparse_reference.sparse_step(expected_table, np.array(ids), rows, 0.1)
        assert sm3_reference.relative_error(weights.numpy(), expected_weights) < 1e-5
        assert sm3_reference.relative_error(table.numpy(), expected_table) < 1e-5
    assert optimizer.nonfinite_steps.numpy() == 1

    types = op_types(
        train.get_concrete_function(tf.constant(dense), tf.constant(ids), tf.constant(rows))
    )
    assert {"If", "IsFinite", "ResourceGather"} <= types  # the guarded step, sparse included
    assert sorted(t for t in types - GRAPH_PLUMBING if not has_xla_kernel(t)) == []


def test_fused_kernel_is_refused_under_xla():
    weights = tf.Variable(np.ones((4, 3), np.float32))
    table = tf.Variable(np.ones(TABLE_SHAPE, np.float32))
    train = jit_training(v1.SM3Optimizer(0.1, fused=True), weights, table)
    with pytest.raises(RuntimeError, match="XLA"):
        train(tf.ones((4, 3)), tf.constant([0]), tf.ones((1, 2)))


def test_composes_with_cross_shard_optimizer():
    with tf.Graph().as_default() as graph:
        weights = tf.compat.v1.get_variable("w", shape=(4, 3), use_resource=True)
        table = tf.compat.v1.get_variable("table", shape=TABLE_SHAPE, use_resource=True)
        ids = tf.constant([1, 2, 1])
        loss = tf.reduce_sum(weights**2) + tf.reduce_sum(
            tf.compat.v1.nn.embedding_lookup(table, ids)
        )
        sm3 = v1.SM3Optimizer(0.1, momentum=0.9, skip_nonfinite=True)
        optimizer = tf.compat.v1.tpu.CrossShardOptimizer(sm3)
        train = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_or_create_global_step())
        assert isinstance(train, tf.Operation)
        assert optimizer.get_slot_names() == ["accumulator_0", "accumulator_1", "momentum"]
        assert optimizer.get_slot(table, "accumulator_0").shape == (TABLE_SHAPE[0],)
        assert optimizer.get_slot(weights, "accumulator_1").shape == (3,)
        # The finite check reads the shard-summed gradients, so every shard takes the same decision.
        finite_checks = [op for op in graph.get_operations() if op.type == "IsFinite"]
        assert len(finite_checks) == 2
        for check in finite_checks:
            source = check.inputs[0].op
            while source.type == "Identity":
                source = source.inputs[0].op
            assert source.type == "CrossReplicaSum", source
