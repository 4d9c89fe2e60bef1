"""The real tensor2tensor 1.15.7 `t2t-trainer` (TF 2.15) trains T2T's Transformer with
`optimizer=sm3` from `--t2t_usr_dir=examples/t2t_sm3`, on the fused kernel (fused=true: an error
if it cannot run): the logged loss falls, the checkpoint holds SM3's finite slots, and a re-run
with more steps resumes from that checkpoint. The commands are those of docs/t2t.md."""

import environments

environments.require_t2t()

import math  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAINER = pathlib.Path(sys.executable).with_name("t2t-trainer")
HPARAMS = (
    "optimizer=sm3,optimizer_sm3_momentum=0.9,optimizer_sm3_fused=true,batch_size=256,"
    "learning_rate_schedule=constant*linear_warmup,learning_rate_constant=0.1,"
    "learning_rate_warmup_steps=20"
)
# basic_session_run_hooks' line, e.g. "loss = 0.9562955, step = 11 (10.443 sec)".
LOGGED_LOSS = re.compile(r"INFO:tensorflow:loss = ([^,]+), step = (\d+)")


def t2t_trainer(workdir, train_steps, *flags):
    """Runs t2t-trainer as docs/t2t.md does; returns {step: loss} from its log."""
    command = [
        str(TRAINER),
        f"--t2t_usr_dir={REPO / 'examples' / 't2t_sm3'}",
        "--problem=algorithmic_reverse_binary40_test",
        "--model=transformer",
        "--hparams_set=transformer_tiny",
        f"--hparams={HPARAMS}",
        "--worker_gpu=0",
        f"--train_steps={train_steps}",
        "--schedule=train",
        "--log_step_count_steps=10",
        f"--data_dir={workdir / 'data'}",
        f"--tmp_dir={workdir / 'tmp'}",
        f"--output_dir={workdir / 'train'}",
        *flags,
    ]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    return {int(step): float(loss) for loss, step in LOGGED_LOSS.findall(log)}, log


def test_t2t_trainer_trains_with_sm3_and_resumes_from_its_checkpoint(tmp_path):
    losses, _ = t2t_trainer(tmp_path, 60, "--generate_data")
    steps = sorted(losses)
    # The first log line says step 1, or step 0 when the logging hook reads the global step
    # before the first update has incremented it (seen on a loaded machine).
    assert steps[0] in (0, 1) and steps[-1] >= 50, losses
    assert all(math.isfinite(loss) for loss in losses.values()), losses
    assert losses[steps[-1]] < 0.5 * losses[steps[0]], losses  # ~2.6 at the start here

    checkpoint = str(tmp_path / "train" / "model.ckpt-60")
    slots = [name for name, _ in tf.train.list_variables(checkpoint) if "/SM3" in name]
    assert slots, "the checkpoint has no SM3 slots"
    reader = tf.train.load_checkpoint(checkpoint)
    for name, _ in tf.train.list_variables(checkpoint):
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name

    resumed, log = t2t_trainer(tmp_path, 90)
    assert f"Restoring parameters from {checkpoint}" in log
    first = min(resumed)
    assert first in (60, 61), resumed  # from the checkpoint's step (same race as above), not 1
    assert resumed[first] < 0.5 * losses[steps[0]], resumed  # the trained weights, not fresh ones
    assert tf.train.latest_checkpoint(str(tmp_path / "train")).endswith("model.ckpt-90")
