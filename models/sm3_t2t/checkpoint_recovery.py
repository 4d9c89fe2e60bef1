"""Restoring the newest intact checkpoint of a run, and clearing what killed saves leave behind.

A run directory can hold a damaged checkpoint: a copy cut short, a disk that filled up, a state
file overwritten by hand. `restore_newest_intact` tries the checkpoints newest first; one that
fails to restore is then read back on its own, and

  - if its files are damaged, it is skipped with a warning naming them, and the next one is tried;
  - if its files are intact, the model simply does not fit it (another hparams set or model):
    `CheckpointMismatchError`, and no older checkpoint is tried, since none would fit either.

When every checkpoint is damaged, `DamagedCheckpointsError` names them all: nothing is trained
over them. A state file (`checkpoint`) that cannot be parsed is replaced by the list of
`model.ckpt-N` files on disk. A kill during a save leaves `<prefix>_temp/` directories and
temporary files; `remove_leftovers` deletes them on the next start. Everything goes through
`tf.io.gfile`, so run directories may be on gs://.
"""

import dataclasses
import json
import os
import re
import sys
import time

import tensorflow as tf

from sm3_t2t import run_dir
from sm3_t2t.atomic_write import is_leftover, write_atomically

STATE_FILE = "checkpoint"
_PREFIX_RE = re.compile(r"(?:model\.)?ckpt-(\d+)")
# What a killed save leaves: TF's sharded-save directory, its temporary index/data files, and
# the temporary of the state file (file_io.atomic_write_string_to_file).
_SAVE_LEFTOVER_RES = (
    re.compile(r"(?:model\.)?ckpt-\d+_temp"),
    re.compile(r"(?:model\.)?ckpt-\d+\..*\.tempstate\d+"),
    re.compile(re.escape(STATE_FILE) + r"\.tmp[0-9a-f]{32}"),
)


class DamagedCheckpointsError(RuntimeError):
    """Every checkpoint of a run is damaged; the message names the files."""


class CheckpointMismatchError(ValueError):
    """An intact checkpoint that does not fit the model built (other hparams or model)."""


@dataclasses.dataclass
class Restored:
    """What `restore_newest_intact` restored and what it had to skip."""

    path: str
    skipped: list  # [(prefix, why)] of damaged checkpoints newer than `path`
    state_unreadable: bool  # the state file could not be parsed


def _one_line(error):
    text = " ".join(str(getattr(error, "message", None) or error).split())[:300]
    return text or type(error).__name__


def _step(prefix):
    match = _PREFIX_RE.fullmatch(os.path.basename(prefix))
    return int(match.group(1)) if match else -1


def _on_disk(directory):
    """Checkpoint prefixes with an index file in `directory`, newest first."""
    prefixes = [
        path[: -len(".index")]
        for path in tf.io.gfile.glob(os.path.join(directory, "*ckpt-*.index"))
        if _step(path[: -len(".index")]) >= 0
    ]
    return sorted(prefixes, key=_step, reverse=True)


def candidates(directory):
    """(checkpoint prefixes newest first, whether the state file was unreadable).

    The state file's list when it can be read; otherwise (missing or garbage) the checkpoints
    found on disk.
    """
    try:
        # None for a missing state file, and for one TF's text parser rejects.
        listed = tf.train.get_checkpoint_state(directory) and run_dir.checkpoint_steps(directory)
    except (ValueError, tf.errors.OpError):  # UnicodeDecodeError, names without a step
        return _on_disk(directory), True
    if not listed:
        unreadable = tf.io.gfile.exists(os.path.join(directory, STATE_FILE))
        return _on_disk(directory), unreadable
    return list(reversed(listed.values())), False


def damage(prefix):
    """None if every file of checkpoint `prefix` reads back; else what is wrong, naming files."""
    index = prefix + ".index"
    if not tf.io.gfile.exists(index):
        return f"{index} is missing"
    try:
        # Not tf.train.load_checkpoint: on ram:// it takes the prefix for a directory.
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    except Exception as error:  # OpError, IndexError, ...: all mean damaged
        return f"{index} is damaged ({_one_line(error)})"
    data_files = sorted(tf.io.gfile.glob(prefix + ".data-?????-of-?????"))
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # as above
        files = ", ".join(data_files) or f"{prefix}.data-*"
        return f"{files} damaged or missing ({_one_line(error)})"
    return None


def _restore(checkpoint, prefix, partial):
    status = checkpoint.restore(prefix)
    if partial:
        status.expect_partial()
    status.assert_existing_objects_matched()


def restore_path(checkpoint, prefix, partial=False):
    """Restores the checkpoint `prefix` (an explicit choice: no fallback).

    Raises:
      DamagedCheckpointsError / CheckpointMismatchError: naming the checkpoint.
    """
    try:
        _restore(checkpoint, prefix, partial)
    except Exception as error:  # classified below
        why = damage(prefix)
        if why:
            raise DamagedCheckpointsError(f"checkpoint {prefix}: {why}") from None
        raise CheckpointMismatchError(
            f"checkpoint {prefix} does not fit the model: {_one_line(error)}"
        ) from None


def restore_newest_intact(checkpoint, directory, partial=False, warn=None):
    """Restores the newest intact checkpoint of `directory` into `checkpoint`.

    Args:
      checkpoint: a `tf.train.Checkpoint` whose objects (model, optimizer slots) already exist.
      directory: the run directory.
      partial: the checkpoint holds more than `checkpoint` asks for (the decoder: no optimizer).
      warn: called with a message for each damaged checkpoint skipped; default: print to stderr.

    Returns:
      A `Restored`, or None when there is no checkpoint at all.

    Raises:
      CheckpointMismatchError: the newest intact checkpoint does not fit `checkpoint`.
      DamagedCheckpointsError: there are checkpoints, but none is intact.
    """
    warn = warn or _print_warning
    prefixes, state_unreadable = candidates(directory)
    if state_unreadable:
        warn(
            f"the checkpoint state file {os.path.join(directory, STATE_FILE)} is unreadable; "
            f"using the checkpoint files found in {directory}"
        )
    skipped = []
    for prefix in prefixes:
        try:
            restore_path(checkpoint, prefix, partial)
        except DamagedCheckpointsError as error:
            skipped.append((prefix, str(error)))
            warn(f"skipping damaged {error}")
            continue
        if skipped:
            warn(f"restored the older checkpoint {prefix} instead")
        return Restored(prefix, skipped, state_unreadable)
    if skipped:
        raise DamagedCheckpointsError(
            f"no intact checkpoint in {directory}: "
            + "; ".join(why for _, why in skipped)
            + ". Move the damaged files away to train from the start."
        )
    return None


def repair_state_file(directory, restored):
    """Makes the state file list `restored.path` as the newest, without the damaged ones.

    Needed after a fallback (the damaged checkpoints must not shadow new saves) or when the
    state file was unreadable (CheckpointManager cannot start from it). The damaged files stay
    on disk until a save of the same step replaces them.
    """
    if not restored.skipped and not restored.state_unreadable:
        return
    damaged = {prefix for prefix, _ in restored.skipped}
    kept = [
        prefix
        for prefix in reversed(_on_disk(directory))
        if _step(prefix) <= _step(restored.path) and prefix not in damaged
    ]
    # The state file's text format, as CheckpointManager writes it (names relative to it).
    # CheckpointManager keeps managing (and in time deletes) only the checkpoints whose
    # timestamps are after `last_preserved_timestamp`.
    now = time.time()
    lines = [f"model_checkpoint_path: {json.dumps(os.path.basename(restored.path))}"]
    lines += [f"all_model_checkpoint_paths: {json.dumps(os.path.basename(p))}" for p in kept]
    lines += [f"all_model_checkpoint_timestamps: {now}" for _ in kept]
    lines += [f"last_preserved_timestamp: {now - 1}"]
    write_atomically(os.path.join(directory, STATE_FILE), "\n".join(lines) + "\n")


def remove_leftovers(directory):
    """Deletes what killed checkpoint saves and atomic writes left in `directory`; returns names."""
    if not tf.io.gfile.isdir(directory):
        return []
    removed = []
    for name in tf.io.gfile.listdir(directory):
        name = name.rstrip("/")
        if not (is_leftover(name) or any(r.fullmatch(name) for r in _SAVE_LEFTOVER_RES)):
            continue
        path = os.path.join(directory, name)
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
        removed.append(name)
    return sorted(removed)


def _print_warning(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)
