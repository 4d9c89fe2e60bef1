"""Where the checkout is, and how a benchmark starts another in a fresh Python process.

Peak memory and thread pools are per process, so probes and training runs each get their own:
`python -m benchmarks.<module>` from the repository root, with this interpreter.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_DIR = os.path.join(ROOT, "docs")


def module_command(module, *arguments, python=None):
    """The command line that runs `benchmarks.<module>` with `arguments` in a new process (with
    `python`, e.g. another venv's, or this interpreter)."""
    return [python or sys.executable, "-m", f"benchmarks.{module}", *arguments]


def _environment(env_updates=None):
    env = dict(os.environ, **(env_updates or {}))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the C++ startup chatter buries the results
    return env


def run_module(
    module, *arguments, timeout=None, capture_output=True, python=None, env_updates=None
):
    """Runs `benchmarks.<module>` from the repository root (with `python` and `env_updates` if
    given); returns the CompletedProcess.

    With `capture_output=False` its output goes straight to this process's (a long benchmark's
    progress stays visible).
    """
    import subprocess

    return subprocess.run(
        module_command(module, *arguments, python=python),
        cwd=ROOT,
        env=_environment(env_updates),
        capture_output=capture_output,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_module(module, *arguments):
    """Starts `benchmarks.<module>` from the repository root with pipes to its stdin and stdout
    (text, line by line); returns the Popen. The caller talks to it and waits for it."""
    import subprocess

    return subprocess.Popen(
        module_command(module, *arguments),
        cwd=ROOT,
        env=_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
