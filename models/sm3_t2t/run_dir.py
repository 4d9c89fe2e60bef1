"""The trainer's output directory: what it holds, how it is read back, how checkpoints are named.

    OUTPUT_DIR/
      run_info.json        problem, model, hparams set, data dir, t2t_usr_dir of the run
      hparams.json         the resolved hparams
      checkpoint           TF's checkpoint state: the list of checkpoints, newest last
      model.ckpt-N.*       TF2 object-based checkpoints (T2T tools glob `model.ckpt-*`)
      train/, eval/        TensorBoard summaries
      eval_results.json    the last evaluation

Runs written before checkpoints were named `model.ckpt-N` hold `ckpt-N`: the state file lists
them, so they resume and decode as they are, and new saves go on as `model.ckpt-N`.
Every read and write goes through `tf.io.gfile`, so OUTPUT_DIR may be on gs://.
"""

import json
import os

import tensorflow as tf

from sm3_t2t import hparams as hparams_lib
from sm3_t2t.atomic_write import write_atomically

RUN_INFO_FILE = "run_info.json"
HPARAMS_FILE = "hparams.json"
CHECKPOINT_NAME = "model.ckpt"
_RUN_INFO_KEYS = {"problem", "model", "data_dir"}


def absolute(path):
    """`path` made absolute when it is local; URLs (gs://, ram://) as they are."""
    return path if "://" in path else os.path.abspath(path)


class RunInfoError(ValueError):
    """A run description (run_info.json / hparams.json) that cannot be read; names the file."""


class RunMismatchError(ValueError):
    """An output directory holding a run of another problem or model than asked for."""


def has_run_info(output_dir):
    """Whether `output_dir` already holds a run's description."""
    return tf.io.gfile.exists(os.path.join(output_dir, RUN_INFO_FILE))


def read_run_info(output_dir):
    """Returns (run_info dict, HParams) saved by the trainer in `output_dir`.

    Raises:
      FileNotFoundError: naming the missing file, if `output_dir` was not written by sm3-trainer.
      RunInfoError: naming the file, if one of them is damaged (not the JSON the trainer wrote).
    """
    paths = [os.path.join(output_dir, name) for name in (RUN_INFO_FILE, HPARAMS_FILE)]
    for path in paths:
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(
                f"{path} not found: --output_dir must be a directory written by sm3-trainer"
            )
    texts = []
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as description:
            texts.append(description.read())
    try:
        run_info = json.loads(texts[0].decode("utf-8"))
        if not isinstance(run_info, dict) or not _RUN_INFO_KEYS <= set(run_info):
            raise ValueError(f"expected an object with {', '.join(sorted(_RUN_INFO_KEYS))}")
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RunInfoError(_damaged(paths[0], error)) from None
    try:
        hparams = hparams_lib.HParams.from_json(texts[1].decode("utf-8"))
    except ValueError as error:
        raise RunInfoError(_damaged(paths[1], error)) from None
    return run_info, hparams


def _damaged(path, error):
    return (
        f"{path} is damaged ({error}); restore it, or delete {RUN_INFO_FILE} and {HPARAMS_FILE} "
        f"and re-run this run's sm3-trainer command, which writes them again once its "
        f"checkpoint restores"
    )


def check_same_run(output_dir, run_info, hparams):
    """The saved (run_info, hparams) of `output_dir`, or None when it holds no run; reads only.

    Refuses a run of another problem or model than `run_info`'s, and prints what hparams differ.

    Raises:
      RunMismatchError: `output_dir` holds a run of another problem or model.
      RunInfoError: its description is damaged (naming the file).
    """
    if not has_run_info(output_dir):
        return None
    saved_info, saved_hparams = read_run_info(output_dir)
    for key in ("problem", "model"):
        if saved_info[key] != run_info[key]:
            raise RunMismatchError(
                f"--output_dir={output_dir} holds a run of {key} {saved_info[key]!r}, not "
                f"{run_info[key]!r}; use another --output_dir"
            )
    old, new = saved_hparams.values(), hparams.values()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        print(
            "hparams differ from the saved run (the new values apply if the checkpoint fits): "
            + ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        )
    return saved_info, saved_hparams


def write_run_info(output_dir, run_info, hparams, unless=None):
    """Writes run_info.json and hparams.json, each atomically.

    Args:
      unless: the (run_info, hparams) already saved (`check_same_run`): nothing is written
        when they are the same as the new ones.
    """
    if unless is not None and unless == (run_info, hparams):
        return
    tf.io.gfile.makedirs(output_dir)
    write_atomically(
        os.path.join(output_dir, RUN_INFO_FILE),
        json.dumps(run_info, indent=2, sort_keys=True) + "\n",
    )
    write_atomically(os.path.join(output_dir, HPARAMS_FILE), hparams.to_json())


def checkpoint_manager(checkpoint, directory, max_to_keep):
    """A CheckpointManager saving `model.ckpt-<step>` (T2T's names) into `directory`.

    It writes to temporary files, renames them into place and only then updates the state file:
    a kill at any moment leaves the previous checkpoints intact and listed.
    """
    return tf.train.CheckpointManager(
        checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name=CHECKPOINT_NAME
    )


def checkpoint_steps(output_dir):
    """{step: checkpoint prefix} of the checkpoints the state file lists, oldest first.

    Both names count: `model.ckpt-N` and the `ckpt-N` of runs from before the rename.
    """
    state = tf.train.get_checkpoint_state(output_dir)
    if state is None:
        return {}
    found = {}
    # get_checkpoint_state already joins relative names onto `output_dir` (relative or not);
    # joining again would turn output/run/ckpt-6 into output/run/output/run/ckpt-6.
    for prefix in state.all_model_checkpoint_paths:
        found[int(prefix.rsplit("-", 1)[1])] = prefix
    return dict(sorted(found.items()))
