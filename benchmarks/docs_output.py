"""Writing a benchmark's evidence to docs/: its table as printed, the command, the code, the load.

Every benchmark script ends with `publish(...)`, which prints the table and writes
`docs/results/<name>.md` (command, date, git commit, TensorFlow and Keras versions, machine load,
table) and `docs/results/<name>.json` (the same provenance and the raw measurements), so a table
in the docs can always be traced to the run and the code that made it. Figures are re-drawn from
the JSON with each script's `--replot`.
"""

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time

from benchmarks import processes
from sm3_t2t.atomic_write import write_atomically

RESULTS_DIR = os.path.join(processes.DOCS_DIR, "results")
PROVENANCE_KEY = "provenance"


def command_line():
    """The command that is running, as one would type it from the repository root."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:  # python -m benchmarks.x
        return shlex.join(["python", "-m", spec.name.removesuffix(".__main__")] + sys.argv[1:])
    script = os.path.relpath(os.path.abspath(sys.argv[0]), processes.ROOT)
    return shlex.join(["python", script] + sys.argv[1:])


def _git(*arguments):
    done = subprocess.run(
        ["git", *arguments], cwd=processes.ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def provenance():
    """The code and libraries a result comes from: git commit (and whether the tree differed from
    it outside docs/), TensorFlow, Keras and Python versions."""
    import keras
    import tensorflow as tf

    commit = _git("rev-parse", "HEAD")
    # docs/ is where results land, so only changes elsewhere make the code differ from the commit.
    changes = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs")
    return {
        "commit": commit or "unknown (not a git checkout)",
        "uncommitted_changes": bool(changes),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def provenance_line(info):
    """One Markdown line stating `info` (a `provenance()` dict)."""
    dirty = " plus uncommitted changes" if info.get("uncommitted_changes") else ""
    note = f" ({info['note']})" if info.get("note") else ""
    return (
        f"Code: commit `{info['commit']}`{dirty}{note}; TensorFlow {info['tensorflow']}, "
        f"Keras {info['keras']}."
    )


def read_results(name, with_provenance=False):
    """The raw measurements `publish` wrote to docs/results/<name>.json (provenance removed,
    unless `with_provenance`).

    Raises:
      FileNotFoundError: naming the file, when the benchmark has not been run.
      ValueError: naming the file, when it is empty or not JSON (truncated, damaged).
    """
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: run the benchmark once before --replot")
    with open(path, encoding="utf-8") as results:
        try:
            raw = json.load(results)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is empty or damaged, not JSON: {error}") from None
    if not with_provenance:
        raw.pop(PROVENANCE_KEY, None)
    return raw


def load_average():
    """The 1/5/15-minute load averages as a string (other jobs share these cores)."""
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def machine_summary():
    """CPU count, memory and load: what a reader needs to weigh times and memory figures."""
    import psutil

    memory_gib = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, "
        f"load average {load_average()}"
    )


def format_table(headers, rows, align=None):
    """A fixed-width text table; `align` is a string of 'l'/'r' per column (default: l then r)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row):
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


class Stopwatch:
    """Wall-clock time of a benchmark part, with the load at its start and end."""

    def __init__(self):
        self.start = time.time()
        self.load_at_start = load_average()

    def summary(self):
        minutes = (time.time() - self.start) / 60
        return (
            f"took {minutes:.1f} min wall-clock; load average {self.load_at_start} at the start, "
            f"{load_average()} at the end"
        )


def publish(name, title, tables, raw, stopwatch, notes=()):
    """Prints `tables` and writes docs/results/<name>.md and .json.

    Args:
      name: file stem, e.g. "memory".
      title: heading of the .md file.
      tables: list of (caption, table text) pairs, printed and written as code blocks.
      raw: JSON-serialisable measurements.
      stopwatch: the part's `Stopwatch`.
      notes: extra lines (e.g. the figure files written).
    """
    os.makedirs(RESULTS_DIR, exist_ok=True)
    # The command, date and machine too, so that a later run that carries these results over can
    # say where they came from (bench_memory.py --only_backends).
    info = dict(
        provenance(),
        command=command_line(),
        generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        machine=f"{machine_summary()}; {stopwatch.summary()}",
    )
    header = [
        f"# {title}",
        "",
        f"Generated by `{info['command']}` on {info['generated']}.",
        "",
        provenance_line(info),
        "",
        f"Machine: {info['machine']}.",
        "",
    ]
    body = []
    for caption, table in tables:
        print(f"\n{caption}\n{table}")
        body += [caption, "", "```", table, "```", ""]
    body += list(notes)
    write_atomically(
        os.path.join(RESULTS_DIR, f"{name}.md"), "\n".join(header + body).rstrip() + "\n"
    )
    write_atomically(
        os.path.join(RESULTS_DIR, f"{name}.json"),
        json.dumps({PROVENANCE_KEY: info, **raw}, indent=1, sort_keys=True),
    )
    print(f"\n{stopwatch.summary()}")
    print(f"wrote docs/results/{name}.md and docs/results/{name}.json")


def figure_path(name):
    """docs/<name>.png, creating docs/ if needed."""
    os.makedirs(processes.DOCS_DIR, exist_ok=True)
    return os.path.join(processes.DOCS_DIR, f"{name}.png")


def pyplot():
    """matplotlib.pyplot with the file-only backend (no display on a build machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
