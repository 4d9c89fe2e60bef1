"""The sm3-trainer command line: flag errors, unknown names (kill -9: test_fault_injection)."""

import os
import subprocess
import sys

import pytest

from sm3_t2t import registry, run_dir

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
