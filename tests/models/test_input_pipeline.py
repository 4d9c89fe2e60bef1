"""Tests of the input pipeline on the reverse problem: token budget, buckets, length filter,
fixed shapes, determinism and sharding. Expected examples come from the raw shards, parsed here.
"""

import collections
import os

import numpy as np
import pytest
import tensorflow as tf

from sm3_t2t import input_pipeline, problems
from sm3_t2t.hparams import basic_params1
from sm3_t2t.problems.algorithmic import AlgorithmicReverseBinary40


class FourShardReverse(AlgorithmicReverseBinary40):
    """Small, with several train shards so that sharding by file can be exercised."""

    num_train_shards = 4
    train_size = 1200
    eval_size = 300


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("reverse"))
    problem = FourShardReverse()
    problem.generate_data(data_dir)
    return problem, data_dir


def make_hparams(**overrides):
    hparams = basic_params1()
    hparams.override_from_dict({"batch_size": 200, **overrides})
    return hparams


def stored_examples(data_dir, name, split):
    """Counter of (inputs, targets) tuples in the split's shards, parsed independently."""
    paths = tf.io.gfile.glob(os.path.join(data_dir, f"{name}-{split}-*-of-*"))
    examples = collections.Counter()
    for serialized in tf.data.TFRecordDataset(paths):
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature
        examples[
            (tuple(feature["inputs"].int64_list.value), tuple(feature["targets"].int64_list.value))
        ] += 1
    return examples


def unpad(row):
    """A padded row back to its EOS-terminated sequence; checks the padding is all PAD."""
    row = list(row)
    end = row.index(problems.EOS_ID) + 1
    assert all(token == problems.PAD_ID for token in row[end:])
    return tuple(row[:end])


def batched_examples(batches):
    """Counter of the (inputs, targets) examples in batches (all-PAD rows skipped)."""
    examples = collections.Counter()
    for batch in batches:
        for inputs, targets in zip(batch["inputs"].numpy(), batch["targets"].numpy()):
            if inputs.any():
                examples[(unpad(inputs), unpad(targets))] += 1
    return examples


@pytest.mark.parametrize("batch_size, max_length", [(200, 0), (64, 30), (1000, 50)])
def test_batches_respect_the_token_budget(generated, batch_size, max_length):
    problem, data_dir = generated
    hparams = make_hparams(batch_size=batch_size, max_length=max_length)
    batches = list(problem.dataset(problems.EVAL, data_dir, hparams))
    for batch in batches:
        rows, length = batch["inputs"].shape
        longest = max(length, batch["targets"].shape[1])
        assert rows * longest <= batch_size or rows == 1
    # Evaluation keeps every example exactly once, however long (max_length only filters train).
    assert batched_examples(batches) == stored_examples(data_dir, problem.name, problems.EVAL)


def test_length_buckets_keep_padding_low(generated):
    problem, data_dir = generated
    batches = list(problem.dataset(problems.TRAIN, data_dir, make_hparams(), repeat=False))
    real = sum(int(tf.math.count_nonzero(batch["inputs"])) for batch in batches)
    padded = sum(int(tf.size(batch["inputs"])) for batch in batches)
    # Lengths are uniform in 2..41, so one batch of everything would be about half padding.
    assert real / padded > 0.8


def test_bucket_boundaries_follow_t2t():
    boundaries = input_pipeline.bucket_boundaries(256, 8, 1.1)
    assert boundaries[:15] == [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 24]
    assert boundaries[-1] < 256 and int(boundaries[-1] * 1.1) >= 256
    assert all(b - a >= 1 for a, b in zip(boundaries, boundaries[1:]))
    assert input_pipeline.bucket_boundaries(8, 8, 1.1) == []


def test_training_filters_by_max_length_and_sees_every_short_example(generated):
    problem, data_dir = generated
    hparams = make_hparams(max_length=20)
    batches = list(problem.dataset(problems.TRAIN, data_dir, hparams, repeat=False))
    stored = stored_examples(data_dir, problem.name, problems.TRAIN)
    short = collections.Counter(
        {example: count for example, count in stored.items() if max(map(len, example)) <= 20}
    )
    assert 0 < sum(short.values()) < sum(stored.values())
    assert batched_examples(batches) == short


def test_train_repeats_by_default(generated):
    problem, data_dir = generated
    dataset = problem.dataset(problems.TRAIN, data_dir, make_hparams(batch_size=2000))
    rows = sum(int(batch["inputs"].shape[0]) for batch in dataset.take(40))
    assert rows > problem.train_size  # more than one epoch came out


@pytest.mark.parametrize("mode", [problems.TRAIN, problems.EVAL])
def test_fixed_shapes_are_static(generated, mode):
    problem, data_dir = generated
    hparams = make_hparams(batch_size=120, max_length=30, fixed_shapes=True)
    dataset = problem.dataset(mode, data_dir, hparams)
    for name in ("inputs", "targets"):
        assert dataset.element_spec[name].shape.as_list() == [4, 30]  # 120 // 30 rows
    batches = list(dataset.take(100))
    assert all(batch[name].shape == (4, 30) for batch in batches for name in batch)
    if mode == problems.EVAL:  # all examples that fit, last batch completed with PAD rows
        stored = stored_examples(data_dir, problem.name, mode)
        fitting = collections.Counter(
            {example: count for example, count in stored.items() if max(map(len, example)) <= 30}
        )
        assert batched_examples(batches) == fitting
        assert len(batches) == -(-sum(fitting.values()) // 4)


def test_same_seed_same_batches(generated):
    problem, data_dir = generated
    hparams = make_hparams(batch_size=4000)

    def first_batches(seed):
        dataset = problem.dataset(problems.TRAIN, data_dir, hparams, seed=seed)
        return [
            {name: tensor.numpy() for name, tensor in batch.items()} for batch in dataset.take(12)
        ]

    first, again, other = first_batches(7), first_batches(7), first_batches(8)
    # The reshuffled second epoch must be reproducible too.
    assert sum(batch["inputs"].shape[0] for batch in first) > problem.train_size
    assert all(np.array_equal(a[name], b[name]) for a, b in zip(first, again) for name in a)
    assert any(
        a["inputs"].shape != b["inputs"].shape or not np.array_equal(a["inputs"], b["inputs"])
        for a, b in zip(first, other)
    )


@pytest.mark.parametrize(
    "mode, num_shards",
    [
        (problems.TRAIN, 2),  # 4 files, 2 pipelines: each reads its own files
        (problems.TRAIN, 3),  # 4 files, 3 pipelines: uneven, still shard by file
        (problems.EVAL, 2),  # 1 file: every pipeline reads it, keeps every 2nd example
    ],
)
def test_shards_partition_the_data(generated, mode, num_shards):
    problem, data_dir = generated
    hparams = make_hparams()
    parts = [
        batched_examples(
            problem.dataset(
                mode, data_dir, hparams, shard_index=index, num_shards=num_shards, repeat=False
            )
        )
        for index in range(num_shards)
    ]
    assert all(sum(part.values()) > 0 for part in parts)
    assert sum(parts, collections.Counter()) == stored_examples(data_dir, problem.name, mode)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"batch_size": 0}, "hparams.batch_size=0: must be a positive"),
        ({"max_length": -1}, "hparams.max_length=-1"),
        ({"length_bucket_step": 1.0}, "hparams.length_bucket_step=1.0: must be > 1.0"),
        ({"min_length_bucket": 0}, "hparams.min_length_bucket=0"),
        ({"fixed_shapes": True, "max_length": 0}, "fixed_shapes needs a positive max_length"),
        ({"fixed_shapes": True, "max_length": 300}, "hparams.batch_size=200: fixed_shapes needs"),
    ],
)
def test_bad_hparams_are_named(generated, overrides, message):
    problem, data_dir = generated
    with pytest.raises(ValueError, match=message):
        problem.dataset(problems.TRAIN, data_dir, make_hparams(**overrides))


def test_missing_hparams_and_bad_shard_index(generated):
    problem, data_dir = generated
    hparams = make_hparams()
    hparams.del_hparam("length_bucket_step")
    with pytest.raises(ValueError, match="no 'length_bucket_step'.*basic_params1"):
        problem.dataset(problems.TRAIN, data_dir, hparams)
    with pytest.raises(ValueError, match=r"shard_index=2 must be in \[0, num_shards=2\)"):
        problem.dataset(problems.TRAIN, data_dir, make_hparams(), shard_index=2, num_shards=2)
