"""The console scripts that `pip install` puts next to Python run from anywhere.

setup.py maps the package `sm3_t2t` to models/sm3_t2t; an editable install
that ignored that mapping (the legacy `setup.py develop`) installed scripts
that failed with "No module named 'sm3_t2t'", which tests running from the
repository did not see. `--help` lists each script's own flags (absl shows only the
main module's, and a console script's main module is its launcher).
"""

import os
import subprocess
import sys

import pytest

SCRIPTS = ("sm3-trainer", "sm3-decoder")
OWN_FLAGS = {
    "sm3-trainer": ("--problem", "--model", "--hparams_set", "--t2t_usr_dir", "--train_steps"),
    "sm3-decoder": ("--output_dir", "--t2t_usr_dir", "--beam_size", "--decode_from_file"),
}


def _installed(script):
    path = os.path.join(os.path.dirname(sys.executable), script)
    if not os.path.exists(path):
        pytest.fail(
            f"{script} is not installed beside {sys.executable}: "
            f"run `pip install -e '.[models]'` (make setup does)"
        )
    return path


@pytest.mark.parametrize("script", SCRIPTS)
def test_installed_script_starts_outside_the_repository(script, tmp_path):
    path = _installed(script)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # absl prints the flags and exits with 1 after --helpfull.
    result = subprocess.run(
        [path, "--helpfull"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "--output_dir" in output, output


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_the_scripts_own_flags(script, tmp_path):
    result = subprocess.run(
        [_installed(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for flag in OWN_FLAGS[script]:
        assert f"{flag}:" in output, f"{flag} missing from {script} --help:\n{output}"
    assert script.split("-")[1] in output  # the usage text, not only the flags
