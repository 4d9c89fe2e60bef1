"""Where the checkout is, and how a benchmark starts another in a fresh Python process.

Peak memory and thread pools are per process, so probes and training runs each get their own:
`python -m benchmarks.<module>` from the repository root, with this interpreter.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_DIR = os.path.join(ROOT, "docs")


def module_command(module, *arguments):
    """The command line that runs `benchmarks.<module>` with `arguments` in a new process."""
    return [sys.executable, "-m", f"benchmarks.{module}", *arguments]


def run_module(module, *arguments, timeout=None):
    """Runs `benchmarks.<module>` from the repository root; returns the CompletedProcess."""
    import subprocess

    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the C++ startup chatter buries the results
    return subprocess.run(
        module_command(module, *arguments),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
