"""Fault injection: kills and damaged files never cost a user more than the steps since a save.

Each test damages a copy of one small trained run (checkpoints at steps 2, 4 and 6) the way a
kill, a full disk or a bad copy would, then re-runs the trainer or the decoder and checks what the
README's "Reliability" section promises: the newest intact checkpoint is used and the damaged
files are named, nothing the user saved is overwritten, and leftovers of killed saves are removed.
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf
from t2t_test_support import tiny_options

from sm3_t2t import checkpoint_recovery, decoder, problems, run_dir, trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run with checkpoints at steps 2, 4 and 6, and its data."""
    options = tiny_options(
        tmp_path_factory.mktemp("faults"),
        train_steps=6,
        iterations_per_loop=2,
        log_step_count_steps=2,
    )
    trainer.train(options)
    return options


@pytest.fixture
def copy(trained, tmp_path):
    """Options for a fresh copy of the trained run, to damage; train_steps=8 resumes it."""
    output_dir = str(tmp_path / "run")
    shutil.copytree(trained.output_dir, output_dir)
    return dataclasses.replace(trained, output_dir=output_dir, train_steps=8)


def _path(options, name):
    return os.path.join(options.output_dir, name)


def _truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _snapshot(directory):
    """{relative path: bytes} of every file below `directory`."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def _latest_step(output_dir):
    return int(tf.train.latest_checkpoint(output_dir).rsplit("-", 1)[1])


def test_truncated_data_and_index_fall_back_to_the_newest_intact_checkpoint(copy, capsys):
    data_6 = _path(copy, "model.ckpt-6.data-00000-of-00001")
    index_4 = _path(copy, "model.ckpt-4.index")
    _truncate(data_6)
    _truncate(index_4)

    run = trainer.train(copy)
    captured = capsys.readouterr()
    assert "resuming from step 2" in captured.out
    assert data_6 in captured.err and index_4 in captured.err
    assert run.step == 8 and _latest_step(copy.output_dir) == 8
    # The re-trained steps 4 and 6 were saved over the damaged files.
    listed = tf.train.get_checkpoint_state(copy.output_dir).all_model_checkpoint_paths
    assert [os.path.basename(p) for p in listed] == ["model.ckpt-4", "model.ckpt-6", "model.ckpt-8"]
    assert all(checkpoint_recovery.damage(path) is None for path in listed)
    assert decoder.load_trained(copy.output_dir).step == 8


def test_a_garbage_state_file_is_replaced_by_the_checkpoints_on_disk(copy, capsys):
    state = _path(copy, "checkpoint")
    with open(state, "wb") as f:
        f.write(b"\xff\xfe\x00 not a checkpoint state \x9c")

    run = trainer.train(copy)
    captured = capsys.readouterr()
    assert "resuming from step 6" in captured.out
    assert state in captured.err and "unreadable" in captured.err
    assert run.step == 8 and _latest_step(copy.output_dir) == 8


def test_the_decoder_skips_a_damaged_latest_checkpoint_and_names_it(copy, capsys):
    _truncate(_path(copy, "model.ckpt-6.index"))
    with open(_path(copy, "checkpoint"), "w") as f:
        f.write("model_checkpoint_path: \x01garbage\n{{{")

    assert decoder.load_trained(copy.output_dir).step == 4
    err = capsys.readouterr().err
    assert _path(copy, "model.ckpt-6.index") in err
    # An explicitly chosen damaged checkpoint is refused, naming it: no silent substitute.
    with pytest.raises(checkpoint_recovery.DamagedCheckpointsError, match="model.ckpt-6.index"):
        decoder.load_trained(copy.output_dir, checkpoint_path=_path(copy, "model.ckpt-6"))


def test_with_every_checkpoint_damaged_nothing_is_trained_over_them(copy):
    for step in (2, 4, 6):
        _truncate(_path(copy, f"model.ckpt-{step}.data-00000-of-00001"))
    before = _snapshot(copy.output_dir)
    with pytest.raises(checkpoint_recovery.DamagedCheckpointsError) as error:
        trainer.train(copy)
    for step in (2, 4, 6):
        assert f"model.ckpt-{step}.data-00000-of-00001" in str(error.value)
    assert _snapshot(copy.output_dir) == before


def test_a_corrupted_shard_is_named_when_training_reads_it(copy, tmp_path):
    data_dir = str(tmp_path / "data")
    shutil.copytree(copy.data_dir, data_dir)
    (shard,) = tf.io.gfile.glob(os.path.join(data_dir, "*-train-*-of-*"))
    with open(shard, "r+b") as f:  # same size, so the metadata check passes; records do not
        f.seek(os.path.getsize(shard) // 2)
        f.write(b"\x00" * 64)
    with pytest.raises(problems.CorruptShardError, match=shard):
        trainer.train(dataclasses.replace(copy, data_dir=data_dir))


def test_a_damaged_run_description_is_named_and_left_alone(copy, capsys):
    for damaged in (run_dir.HPARAMS_FILE, run_dir.RUN_INFO_FILE):
        _truncate(_path(copy, damaged))
        before = _snapshot(copy.output_dir)
        with pytest.raises(run_dir.RunInfoError, match=damaged):
            trainer.train(copy)
        with pytest.raises(run_dir.RunInfoError, match=damaged):
            decoder.load_trained(copy.output_dir)
        assert _snapshot(copy.output_dir) == before

    # What the message advises: without a description, the run's own command restores the
    # checkpoint and writes the description again.
    os.remove(_path(copy, run_dir.RUN_INFO_FILE))
    os.remove(_path(copy, run_dir.HPARAMS_FILE))
    trainer.train(copy)
    assert "resuming from step 6" in capsys.readouterr().out
    assert decoder.load_trained(copy.output_dir).step == 8


def _run_then_kill(command, until):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while not until():
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            assert time.time() < deadline, "the trainer did not get there within 180 s"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


def test_kill_9_during_training_loses_at_most_the_steps_since_the_last_save(trained, tmp_path):
    options = dataclasses.replace(
        trained,
        output_dir=str(tmp_path / "run"),
        train_steps=12,
        save_checkpoints_steps=3,
        iterations_per_loop=1,
    )
    command = [
        sys.executable,
        "-m",
        "sm3_t2t.trainer",
        f"--problem={options.problem}",
        f"--hparams_set={options.hparams_set}",
        f"--hparams={options.hparams}",
        f"--data_dir={options.data_dir}",
        f"--output_dir={options.output_dir}",
        "--train_steps=12",
        "--save_checkpoints_steps=3",
        "--iterations_per_loop=1",
        "--schedule=train",
    ]
    _run_then_kill(command, lambda: tf.train.latest_checkpoint(options.output_dir))
    killed_at = _latest_step(options.output_dir)
    assert 3 <= killed_at < 12
    # Every checkpoint the state file lists reads back completely.
    for path in tf.train.get_checkpoint_state(options.output_dir).all_model_checkpoint_paths:
        assert checkpoint_recovery.damage(path) is None

    run = trainer.train(options)
    assert run.step == 12 and int(run.optimizer.iterations.numpy()) == 12


# Runs the trainer in a child process that SIGKILLs itself in the middle of the save of step 4,
# after the variables are written to `model.ckpt-4_temp/` and before they are merged into place.
KILLED_IN_A_SAVE = textwrap.dedent(
    """
    import dataclasses, json, os, signal, sys
    from tensorflow.python.ops import gen_io_ops
    from sm3_t2t import trainer

    merge = gen_io_ops.merge_v2_checkpoints

    def merge_or_die(checkpoint_prefixes, destination_prefix, *args, **kwargs):
        destination = getattr(destination_prefix, "numpy", lambda: destination_prefix)()
        if (destination.decode() if isinstance(destination, bytes) else destination).endswith(
            "model.ckpt-4"
        ):
            os.kill(os.getpid(), signal.SIGKILL)
        return merge(checkpoint_prefixes, destination_prefix, *args, **kwargs)

    gen_io_ops.merge_v2_checkpoints = merge_or_die
    trainer.train(trainer.TrainerOptions(**json.loads(sys.argv[1])))
    """
)


def test_kill_9_during_a_checkpoint_save_keeps_the_previous_one_and_is_cleaned_up(
    trained, tmp_path, capsys
):
    options = dataclasses.replace(trained, output_dir=str(tmp_path / "run"), train_steps=6)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_IN_A_SAVE, _json(options)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout[-2000:] + child.stderr[-2000:]
    assert _latest_step(options.output_dir) == 2
    assert os.path.isdir(_path(options, "model.ckpt-4_temp"))  # what the killed save left
    # A killed atomic write leaves its temporary too.
    leftover = _path(options, run_dir.RUN_INFO_FILE + ".tmp-" + "0" * 32)
    with open(leftover, "w") as f:
        f.write("{")

    run = trainer.train(options)
    assert "resuming from step 2" in capsys.readouterr().out
    assert run.step == 6
    assert not os.path.exists(_path(options, "model.ckpt-4_temp"))
    assert not os.path.exists(leftover)
    assert decoder.load_trained(options.output_dir).step == 6


def _json(options):
    return json.dumps(dataclasses.asdict(options))


def test_a_relative_output_dir_resumes_and_decodes(copy, monkeypatch):
    # `make demo` passes --output_dir=output/demo_enfr_wesnoth: a path relative to the working
    # directory, whose checkpoints must read back as intact (not as "ckpt-6.index is missing").
    parent, name = os.path.split(copy.output_dir)
    monkeypatch.chdir(parent)
    relative = dataclasses.replace(copy, output_dir=name)

    assert sorted(run_dir.checkpoint_steps(name)) == [2, 4, 6]
    assert decoder.load_trained(name).step == 6
    assert trainer.train(relative).step == 8
