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


def absolute(path):
    """`path` made absolute when it is local; URLs (gs://, ram://) as they are."""
    return path if "://" in path else os.path.abspath(path)


def has_run_info(output_dir):
    """Whether `output_dir` already holds a run's description."""
    return tf.io.gfile.exists(os.path.join(output_dir, RUN_INFO_FILE))


def read_run_info(output_dir):
    """Returns (run_info dict, HParams) saved by the trainer in `output_dir`.

    Raises:
      FileNotFoundError: naming the missing file, if `output_dir` was not written by sm3-trainer.
    """
    paths = [os.path.join(output_dir, name) for name in (RUN_INFO_FILE, HPARAMS_FILE)]
    for path in paths:
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(
                f"{path} not found: --output_dir must be a directory written by sm3-trainer"
            )
    with tf.io.gfile.GFile(paths[0]) as run_info_file:
        run_info = json.loads(run_info_file.read())
    with tf.io.gfile.GFile(paths[1]) as hparams_file:
        hparams = hparams_lib.HParams.from_json(hparams_file.read())
    return run_info, hparams


def write_run_info(output_dir, run_info, hparams):
    """Writes run_info.json and hparams.json, each atomically."""
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
    for path in state.all_model_checkpoint_paths:
        prefix = path if os.path.isabs(path) or "://" in path else os.path.join(output_dir, path)
        found[int(prefix.rsplit("-", 1)[1])] = prefix
    return dict(sorted(found.items()))
