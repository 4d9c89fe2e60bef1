"""On-disk form of a generated split: TFRecord shards of tf.train.Example plus a metadata file.

A split `S` of problem `P` in `data_dir` is
  - `P-S-00000-of-0000N` ... : records {"inputs": int64 ids, "targets": int64 ids}, EOS-terminated;
  - `P-S.meta.json`: the vocabulary fingerprint, the shard names, their byte sizes and example
    counts.
Every file is written under a `.tmp` name and renamed, and the metadata is written last, so a
split is complete exactly when its metadata exists: a killed run leaves nothing that looks
finished. Reading checks the metadata against the files and the vocabulary, so a truncated shard
or a vocabulary from another run is reported by file name instead of surfacing mid-training.
"""

import glob
import json
import os

import tensorflow as tf

from sm3_t2t.atomic_write import write_atomically

FORMAT_VERSION = 1


class DataError(ValueError):
    """Input data or generated files that cannot be used as they are."""


class CorruptShardError(DataError):
    """A shard file that does not match its metadata or cannot be parsed."""


class VocabularyMismatchError(DataError):
    """Shards generated with a vocabulary other than the one in data_dir."""


class MissingDataError(FileNotFoundError):
    """A split that was never generated (or whose generation did not finish)."""


def meta_path(data_dir, problem_name, split):
    """Path of a split's metadata file."""
    return os.path.join(data_dir, f"{problem_name}-{split}.meta.json")


def shard_paths(data_dir, problem_name, split, num_shards):
    """Paths of a split's shards, T2T-style `name-split-00000-of-00010`."""
    return [
        os.path.join(data_dir, f"{problem_name}-{split}-{index:05d}-of-{num_shards:05d}")
        for index in range(num_shards)
    ]


def read_meta(data_dir, problem_name, split):
    """The split's metadata dict, or None when the split is not (completely) generated."""
    path = meta_path(data_dir, problem_name, split)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as meta_file:
            meta = json.load(meta_file)
    except (OSError, ValueError) as error:
        raise DataError(
            f"{path}: unreadable split metadata ({error}); delete it and run generate_data again"
        ) from error
    if meta.get("format") != FORMAT_VERSION:
        raise DataError(f"{path}: unknown metadata format {meta.get('format')!r}")
    return meta


def is_complete(data_dir, problem_name, split, fingerprint):
    """Whether the split exists, was generated with this vocabulary and has intact shard sizes."""
    try:
        checked_shard_files(data_dir, problem_name, split, fingerprint)
    except (DataError, MissingDataError):
        return False
    return True


def _serialize(inputs, targets):
    feature = {
        name: tf.train.Feature(int64_list=tf.train.Int64List(value=ids))
        for name, ids in (("inputs", inputs), ("targets", targets))
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_split(
    data_dir,
    problem_name,
    split,
    examples,
    num_shards,
    fingerprint,
    extra_files=(),
    before_commit=None,
):
    """Writes `examples` (pairs of EOS-terminated id lists) round-robin into `num_shards` shards.

    Args:
      data_dir: output directory (must exist).
      problem_name, split: name the files.
      examples: iterable of (input_ids, target_ids).
      num_shards: number of shard files.
      fingerprint: the vocabulary's fingerprint, checked when the split is read.
      extra_files: names (in data_dir) of other files of this split (e.g. raw text), recorded
        so that the split is incomplete without them.
      before_commit: called after the shards are in place and before the metadata is written
        (to finish the extra files).
    Returns:
      The metadata dict that was written.
    """
    path = meta_path(data_dir, problem_name, split)
    if os.path.exists(path):
        os.remove(path)  # from here on the split is incomplete until the new metadata lands
    for stale in glob.glob(os.path.join(glob.escape(data_dir), f"{problem_name}-{split}-*.tmp")):
        os.remove(stale)
    paths = shard_paths(data_dir, problem_name, split, num_shards)
    counts = [0] * num_shards
    writers = [tf.io.TFRecordWriter(shard + ".tmp") for shard in paths]
    try:
        for index, (inputs, targets) in enumerate(examples):
            writers[index % num_shards].write(_serialize(inputs, targets))
            counts[index % num_shards] += 1
        if sum(counts) == 0:
            raise DataError(f"problem {problem_name}: split {split!r} has no examples")
    except BaseException:  # includes KeyboardInterrupt: leave no partial files behind
        for writer in writers:
            writer.close()
        for shard in paths:
            if os.path.exists(shard + ".tmp"):
                os.remove(shard + ".tmp")
        raise
    for writer in writers:
        writer.close()
    for shard in paths:
        os.replace(shard + ".tmp", shard)
    if before_commit is not None:
        before_commit()
    meta = {
        "format": FORMAT_VERSION,
        "problem": problem_name,
        "split": split,
        "vocabulary": fingerprint,
        "num_examples": sum(counts),
        "extra_files": list(extra_files),
        "shards": [
            {"file": os.path.basename(shard), "bytes": os.path.getsize(shard), "examples": count}
            for shard, count in zip(paths, counts)
        ],
    }
    write_atomically(path, json.dumps(meta, indent=1))
    _remove_other_shards(data_dir, problem_name, split, keep=paths)
    return meta


def _remove_other_shards(data_dir, problem_name, split, keep):
    """Deletes shards of an earlier generation with a different shard count."""
    pattern = os.path.join(glob.escape(data_dir), f"{problem_name}-{split}-?????-of-?????")
    for shard in set(glob.glob(pattern)) - set(keep):
        os.remove(shard)


def checked_shard_files(data_dir, problem_name, split, fingerprint):
    """The split's shard paths, after checking they are complete and match the vocabulary.

    Raises:
      MissingDataError: the split was never generated completely.
      VocabularyMismatchError: shards were encoded with another vocabulary.
      CorruptShardError: a shard is missing or its size differs from the metadata.
    """
    meta = read_meta(data_dir, problem_name, split)
    if meta is None:
        raise MissingDataError(
            f"no complete {split!r} data for problem {problem_name} in {data_dir} "
            f"(missing {os.path.basename(meta_path(data_dir, problem_name, split))}); "
            f"run generate_data first"
        )
    if meta["vocabulary"] != fingerprint:
        raise VocabularyMismatchError(
            f"the {split!r} shards of {problem_name} in {data_dir} were encoded with vocabulary "
            f"{meta['vocabulary']}, but the vocabulary there now is {fingerprint}; run "
            f"generate_data again to re-encode them"
        )
    for name in meta["extra_files"]:
        if not os.path.exists(os.path.join(data_dir, name)):
            raise CorruptShardError(f"{os.path.join(data_dir, name)} is missing")
    files = []
    for shard in meta["shards"]:
        path = os.path.join(data_dir, shard["file"])
        if not os.path.exists(path):
            raise CorruptShardError(f"shard {path} is missing; run generate_data again")
        size = os.path.getsize(path)
        if size != shard["bytes"]:
            raise CorruptShardError(
                f"shard {path} is {size} bytes but was written with {shard['bytes']} "
                f"(truncated or modified); delete {meta_path(data_dir, problem_name, split)} "
                f"and run generate_data again"
            )
        files.append(path)
    return files


def parse_record(serialized):
    """A serialized record -> {"inputs": int64 [n], "targets": int64 [m]} (inside tf.data)."""
    spec = {name: tf.io.RaggedFeature(tf.int64) for name in ("inputs", "targets")}
    return tf.io.parse_single_example(serialized, spec)


def _records(paths):
    for serialized in tf.data.TFRecordDataset(paths):
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature
        yield list(feature["inputs"].int64_list.value), list(feature["targets"].int64_list.value)


def read_records(paths):
    """(inputs, targets) id lists of shard files in order (eager: for small splits and tools).

    Raises:
      CorruptShardError: naming the first shard whose records fail their checksums.
    """
    try:
        return list(_records(paths))
    except tf.errors.DataLossError as error:
        for path in paths:  # one dataset per file is slow: only done to name the culprit
            try:
                for _ in tf.data.TFRecordDataset(path):
                    pass
            except tf.errors.DataLossError:
                raise CorruptShardError(f"shard {path} is corrupt: {error.message}") from error
        raise
