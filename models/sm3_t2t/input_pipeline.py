"""tf.data input pipelines for problems: read shards, filter by length, batch by tokens.

Two batching modes, chosen by `hparams.fixed_shapes`:
  - token batching (T2T's default): examples are grouped into length buckets and every batch
    holds at most `batch_size` tokens, counted as sentences x padded length of the longer of
    `inputs`/`targets`; shapes vary from batch to batch.
  - fixed shapes: every batch is `[batch_size // max_length, max_length]`, the static shapes
    XLA/TPU compilation wants; the last partial evaluation batch is completed with all-PAD rows.

Order is a function of the seed alone: files and examples are shuffled with op-level seeds and
every parallel stage keeps its input order.
"""

import tensorflow as tf

from sm3_t2t.problems import shards

FEATURES = ("inputs", "targets")


# Read-ahead per shard file. Stating it also keeps TFRecordDataset from logging, mid progress
# bar, that it picked its default (256 KiB).
_READ_BUFFER_BYTES = 1 << 20


def _read_shard(path):
    return tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER_BYTES)


def check_batching_hparams(hparams):
    """Raises ValueError naming the first data hparam that cannot work."""

    def need(condition, name, requirement):
        if not condition:
            raise ValueError(f"hparams.{name}={hparams.get(name)!r}: {requirement}")

    for name in (
        "batch_size",
        "max_length",
        "min_length_bucket",
        "length_bucket_step",
        "fixed_shapes",
    ):
        if name not in hparams:
            raise ValueError(f"hparams has no {name!r}; start from hparams.basic_params1()")
    need(hparams.batch_size > 0, "batch_size", "must be a positive number of tokens")
    need(hparams.max_length >= 0, "max_length", "must be >= 0 (0 means no limit)")
    need(hparams.min_length_bucket >= 1, "min_length_bucket", "must be >= 1")
    need(hparams.length_bucket_step > 1.0, "length_bucket_step", "must be > 1.0")
    need(
        hparams.get("max_input_seq_length", 0) >= 0,
        "max_input_seq_length",
        "must be >= 0 (0 means max_length)",
    )
    if hparams.fixed_shapes:
        need(hparams.max_length > 0, "max_length", "fixed_shapes needs a positive max_length")
        need(
            hparams.batch_size >= hparams.max_length,
            "batch_size",
            f"fixed_shapes needs batch_size >= max_length ({hparams.max_length}) so that a "
            f"batch holds at least one sequence",
        )


def max_input_length(hparams):
    """The longest input (in tokens, EOS included) evaluation and decoding take, or 0: no limit.

    `max_input_seq_length` (T2T's name) when set, else `max_length`, the longest example the
    model was trained on. Longer inputs are truncated (decoding, BLEU) or skipped (test loss) and
    reported, so that one overlong line cannot exhaust the memory or the time of a whole run.
    """
    return hparams.get("max_input_seq_length", 0) or hparams.max_length


def example_length(example):
    """Length T2T batches by: the longer of inputs and targets (EOS included)."""
    return tf.maximum(tf.size(example["inputs"]), tf.size(example["targets"]))


def bucket_boundaries(max_length, min_length_bucket=8, length_bucket_step=1.1):
    """T2T's geometric bucket boundaries below `max_length`: 8, 9, 10, ..., x -> x * step."""
    boundaries, length = [], min_length_bucket
    while length < max_length:
        boundaries.append(length)
        length = max(length + 1, int(length * length_bucket_step))
    return boundaries


def bucketing_scheme(batch_size, max_length, min_length_bucket, length_bucket_step):
    """(boundaries, batch sizes) keeping every batch within `batch_size` tokens.

    Bucket i holds lengths below boundaries[i], so `batch_size // boundaries[i]` sentences fit.
    The bucket ending at `max_length` (inclusive) takes `batch_size // max_length`; anything
    longer (only eval data, or max_length=0) goes one sentence per batch.
    """
    longest = max_length or batch_size  # T2T's reading of max_length=0
    lower = bucket_boundaries(longest, min_length_bucket, length_bucket_step)
    boundaries = lower + [longest + 1]
    sizes = [max(1, batch_size // length) for length in lower + [longest]] + [1]
    return boundaries, sizes


def read_examples(files, training, seed, shard_index=0, num_shards=1):
    """Parsed examples of `files`, this input pipeline's share of them, in a seeded order.

    With at least as many files as pipelines, each pipeline reads its own files (no wasted
    reading); otherwise every pipeline reads all files and keeps every num_shards-th example.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index={shard_index} must be in [0, num_shards={num_shards})")
    files = sorted(files)
    by_file = len(files) >= num_shards
    if by_file:
        files = files[shard_index::num_shards]
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        _read_shard,
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if not by_file and num_shards > 1:
        dataset = dataset.shard(num_shards, shard_index)
    if num_shards > 1:  # already sharded here: tf.distribute must not shard a second time
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset.map(shards.parse_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def check_ids_in_vocabulary(dataset, vocab_size, description):
    """Fails with a clear message on an id >= vocab_size (data from another vocabulary)."""

    def check(example):
        for name in FEATURES:
            tf.debugging.assert_less(
                example[name],
                tf.constant(vocab_size, tf.int64),
                message=f"{description}: {name} holds token ids >= the vocabulary size "
                f"{vocab_size}; the vocabulary does not match the data",
            )
        return example

    return dataset.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _pad_batch_rows(rows, max_length):
    """Completes a short final batch with all-PAD rows so its shape stays static."""

    def pad(batch):
        missing = rows - tf.shape(batch["inputs"])[0]
        return {
            name: tf.ensure_shape(tf.pad(batch[name], [[0, missing], [0, 0]]), [rows, max_length])
            for name in FEATURES
        }

    return pad


def count_longer(examples, length):
    """How many of the parsed `examples` are longer than `length` (`example_length`)."""
    return int(
        examples.reduce(
            tf.constant(0, tf.int64),
            lambda count, example: count + tf.cast(example_length(example) > length, tf.int64),
        )
    )


def batch_examples(
    dataset, hparams, training, seed, repeat, shuffle_buffer_size=4096, max_example_length=0
):
    """Filters, shuffles, repeats and batches parsed examples as `hparams` asks.

    Training drops examples longer than `max_length` (unless 0); evaluation keeps all of them
    (in fixed-shape mode, where a longer example cannot fit, it is dropped there too), except
    those longer than `max_example_length` (unless 0).
    """
    check_batching_hparams(hparams)
    max_length = hparams.max_length
    if max_length and (training or hparams.fixed_shapes):
        dataset = dataset.filter(lambda example: example_length(example) <= max_length)
    if max_example_length and not training:
        dataset = dataset.filter(lambda example: example_length(example) <= max_example_length)
    if training:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if hparams.fixed_shapes:
        rows = hparams.batch_size // max_length
        padded = {name: [max_length] for name in FEATURES}
        dataset = dataset.padded_batch(rows, padded_shapes=padded, drop_remainder=repeat)
        if not repeat:  # keep every example of a finite split, still with static shapes
            dataset = dataset.map(_pad_batch_rows(rows, max_length))
    else:
        boundaries, sizes = bucketing_scheme(
            hparams.batch_size, max_length, hparams.min_length_bucket, hparams.length_bucket_step
        )
        dataset = dataset.bucket_by_sequence_length(example_length, boundaries, sizes)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
