"""sm3_tf.v1.SM3Optimizer in tf.estimator jobs (TF 2.15, the last TensorFlow with estimators):
an `Estimator` and a `TPUEstimator(use_tpu=False)` train, write a checkpoint, and a NEW estimator on
the same model_dir resumes from it; weights and SM3 slots then equal the float64 numpy reference
of all the steps, with gradients computed by numpy (the model is linear in each variable)."""

import environments

environments.require_estimator()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sm3_reference as ref  # noqa: E402
import tensorflow as tf  # noqa: E402

from sm3_tf import v1  # noqa: E402

VOCAB, DIM, BATCH, LR, MOMENTUM = 10, 4, 8, 0.1, 0.9
RNG = np.random.default_rng(0)
EMBEDDINGS = RNG.normal(size=(VOCAB, DIM)).astype(np.float32)
DENSE = RNG.normal(size=(DIM, 1)).astype(np.float32)
IDS = RNG.integers(0, VOCAB, size=(4 * BATCH,)).astype(np.int32)  # with repeated ids
LABELS = RNG.normal(size=(4 * BATCH,)).astype(np.float32)


def input_fn(params=None):
    """The batches in order, each job from the first (TPUEstimator passes its batch size)."""
    batch = (params or {}).get("batch_size", BATCH)
    return tf.data.Dataset.from_tensor_slices((IDS, LABELS)).batch(batch, drop_remainder=True)


def model_fn(features, labels, mode, params):
    """The docs/v1.md recipe: an embedding lookup (sparse gradient) and a dense projection."""
    embeddings = tf.compat.v1.get_variable("embeddings", initializer=EMBEDDINGS)
    dense = tf.compat.v1.get_variable("dense", initializer=DENSE)
    prediction = tf.squeeze(tf.compat.v1.nn.embedding_lookup(embeddings, features) @ dense, 1)
    loss = tf.reduce_mean(tf.square(prediction - labels))
    optimizer = v1.SM3Optimizer(LR, momentum=MOMENTUM)
    if params.get("use_tpu"):  # never here: CrossReplicaSum has no CPU kernel
        optimizer = tf.compat.v1.tpu.CrossShardOptimizer(optimizer)
    train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_or_create_global_step())
    if params.get("tpu_spec"):
        return tf.compat.v1.estimator.tpu.TPUEstimatorSpec(mode, loss=loss, train_op=train_op)
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def estimator(kind, model_dir):
    if kind == "Estimator":
        config = tf.estimator.RunConfig(model_dir=str(model_dir), save_summary_steps=None)
        return tf.estimator.Estimator(model_fn, config=config, params={})
    tpu = tf.compat.v1.estimator.tpu
    config = tpu.RunConfig(
        model_dir=str(model_dir),
        save_summary_steps=None,
        tpu_config=tpu.TPUConfig(iterations_per_loop=1),
    )
    return tpu.TPUEstimator(
        model_fn,
        config=config,
        params={"tpu_spec": True},
        use_tpu=False,
        train_batch_size=BATCH,
    )


def reference_training(batches_per_job):
    """The reference after each job in turn runs `batches_per_job[i]` batches from the first."""
    embeddings = EMBEDDINGS.astype(np.float64)
    dense = DENSE.astype(np.float64)
    sm3_embeddings = ref.SM3Reference(embeddings.shape, momentum=MOMENTUM)
    sm3_dense = ref.SM3Reference(dense.shape, momentum=MOMENTUM)
    for batches in batches_per_job:
        for b in range(batches):
            ids, labels = IDS[b * BATCH : (b + 1) * BATCH], LABELS[b * BATCH : (b + 1) * BATCH]
            hidden = embeddings[ids]
            # d loss / d prediction for the mean of squares; then each variable's gradient.
            residual = 2.0 * ((hidden @ dense)[:, 0] - labels) / BATCH
            dense_grad = hidden.T @ residual[:, None]
            rows = residual[:, None] * dense[:, 0][None, :]
            embeddings = sm3_embeddings.sparse_step(embeddings, ids, rows, LR)
            dense = sm3_dense.step(dense, dense_grad, LR)
    return (embeddings, sm3_embeddings), (dense, sm3_dense)


@pytest.mark.parametrize("kind", ["Estimator", "TPUEstimator"])
def test_a_job_resumes_in_a_new_estimator_and_equals_the_reference(kind, tmp_path):
    estimator(kind, tmp_path).train(input_fn, steps=3)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-3")
    resumed = estimator(kind, tmp_path)  # a new estimator: restores weights and slots
    resumed.train(input_fn, steps=2)
    assert resumed.get_variable_value("global_step") == 5
    (embeddings, sm3_embeddings), (dense, sm3_dense) = reference_training([3, 2])
    assert ref.relative_error(resumed.get_variable_value("embeddings"), embeddings) <= 1e-5
    assert ref.relative_error(resumed.get_variable_value("dense"), dense) <= 1e-5
    # The slots, in the authors' Saver layout: momentum, then one cover per axis.
    for name, reference in (("embeddings", sm3_embeddings), ("dense", sm3_dense)):
        saved = [resumed.get_variable_value(f"{name}/SM3{suffix}") for suffix in ("", "_1", "_2")]
        assert ref.relative_error(saved[0], reference.buffer) <= 1e-5
        for cover, expected in zip(saved[1:], reference.accumulators):
            assert ref.relative_error(cover, expected) <= 1e-5
