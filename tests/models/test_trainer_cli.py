"""The sm3-trainer command line: kill -9 and resume, flag errors, unknown names."""

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from sm3_t2t import decoder, registry, run_dir

PROBLEM = "algorithmic_reverse_binary40"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli_data"))
    registry.problem(PROBLEM).generate_data(path)
    return path


def _trainer_command(data_dir, output_dir, *extra):
    return [
        sys.executable,
        "-m",
        "sm3_t2t.trainer",
        f"--problem={PROBLEM}",
        "--hparams_set=transformer_tiny",
        "--hparams=hidden_size=32,filter_size=64,batch_size=256",
        f"--data_dir={data_dir}",
        f"--output_dir={output_dir}",
        *extra,
    ]


def _checkpoint_step(path):
    return int(path.rsplit("-", 1)[1])


def test_kill_9_then_rerun_resumes_from_the_last_checkpoint(data_dir, tmp_path):
    output_dir = str(tmp_path / "run")
    command = _trainer_command(
        data_dir,
        output_dir,
        "--train_steps=30",
        "--save_checkpoints_steps=5",
        "--iterations_per_loop=1",
        "--schedule=train",
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while tf.train.latest_checkpoint(output_dir) is None:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.time() < deadline, "no checkpoint within 180 s"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = _checkpoint_step(tf.train.latest_checkpoint(output_dir))
    assert 5 <= killed_at < 30

    # Every checkpoint the state file lists reads back completely.
    state = tf.train.get_checkpoint_state(output_dir)
    for path in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"resuming from step {killed_at}" in rerun.stdout
    assert f"steps {killed_at} -> 30" in rerun.stdout
    assert decoder.load_trained(output_dir).step == 30


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--hparams=num_heads=four", "num_heads"),
        ("--hparams_set=transformer_huge", "transformer_huge"),
        ("--train_steps=-3", "--train_steps"),
    ],
)
def test_bad_flags_fail_with_a_message_naming_them(data_dir, tmp_path, flag, message):
    command = _trainer_command(data_dir, str(tmp_path / "run")) + [flag]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert not os.path.exists(tmp_path / "run" / run_dir.RUN_INFO_FILE)


@pytest.mark.parametrize(
    "flag, suggestion",
    [
        ("--problem=algorithmic_reverse_binary4", "algorithmic_reverse_binary40"),
        ("--model=transfomer", "transformer"),
        ("--hparams_set=transformer_smal", "transformer_small"),
        ("--t2t_usr_dir=no_such_usr_dir", "no such directory"),
    ],
)
def test_unknown_names_are_one_line_with_close_matches_and_exit_2(tmp_path, flag, suggestion):
    """No traceback, nothing written: neither the run directory nor the data directory."""
    data_dir, output_dir = tmp_path / "data", tmp_path / "run"
    command = _trainer_command(str(data_dir), str(output_dir)) + [flag]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sm3-trainer: ")]
    assert len(lines) == 1, result.stderr
    assert flag.split("=")[0] in lines[0] and suggestion in lines[0]
    if "usr_dir" not in flag:
        assert "Did you mean" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not data_dir.exists() and not output_dir.exists()
