"""The console scripts that `pip install` puts next to Python run from anywhere.

setup.py maps the package `sm3_t2t` to models/sm3_t2t; an editable install
that ignored that mapping (the legacy `setup.py develop`) installed scripts
that failed with "No module named 'sm3_t2t'", which tests running from the
repository (where conftest.py puts models/ on sys.path) did not see.
"""

import os
import subprocess
import sys

import pytest

SCRIPTS = ("sm3-trainer", "sm3-decoder")


@pytest.mark.parametrize("script", SCRIPTS)
def test_installed_script_starts_outside_the_repository(script, tmp_path):
    path = os.path.join(os.path.dirname(sys.executable), script)
    if not os.path.exists(path):
        pytest.fail(
            f"{script} is not installed beside {sys.executable}: "
            f"run `pip install -e '.[models]'` (make setup does)"
        )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # absl prints the flags and exits with 1 after --helpfull.
    result = subprocess.run(
        [path, "--helpfull"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "--output_dir" in output, output
