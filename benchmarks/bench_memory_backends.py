"""Part 3 of bench_memory.py: the peak memory of one transformer_small training step per Keras
backend (TensorFlow, JAX, PyTorch), for SGD (no state: the baseline), Adam and SM3.

One process per (backend, optimizer): `python -m benchmarks.backend_memory_probe`, run from the
repository root by that backend's Python with KERAS_BACKEND set. TensorFlow runs with this
interpreter; JAX and PyTorch with the venvs that `tools/backends_ci.sh` makes
(.venv-backends/<backend>, this checkout installed in editable mode, no TensorFlow in them), or
the Pythons given as `--backend_python NAME=PATH`. A backend without a Python is left out of the
table, with the reason. The optimizers are `benchmarks.roster`'s, plus plain SGD as the baseline.
"""

import json
import os
import statistics
import sys

from benchmarks import docs_output, processes, roster, rss_probe
from benchmarks.backend_memory_probe import BASELINE

BACKENDS = ("tensorflow", "jax", "torch")
OPTIMIZERS = (BASELINE, "adam", "sm3", "sm3_nomom")
GIB, MIB = 2**30, 2**20


def default_pythons():
    """{backend: Python}: this one for TensorFlow, tools/backends_ci.sh's venvs for the others."""
    pythons = {"tensorflow": sys.executable}
    for backend in ("jax", "torch"):
        venv = os.path.join(processes.ROOT, ".venv-backends", backend)
        pythons[backend] = os.path.join(venv, "bin", "python")
    return pythons


def parse_pythons(specs):
    """`NAME=PATH` strings over the defaults; raises ValueError naming a bad one."""
    pythons = default_pythons()
    for spec in specs or ():
        name, _, path = spec.partition("=")
        if name not in BACKENDS or not path:
            raise ValueError(
                f"--backend_python must be NAME=PATH with NAME one of {BACKENDS}, got {spec!r}"
            )
        pythons[name] = path
    return pythons


def _probe(python, backend, optimizer, vocab, batch_tokens, length):
    done = processes.run_module(
        "backend_memory_probe",
        f"--optimizer={optimizer}",
        f"--vocab={vocab}",
        f"--batch_tokens={batch_tokens}",
        f"--length={length}",
        python=python,
        env_updates={"KERAS_BACKEND": backend},
    )
    for line in done.stdout.splitlines():
        if line.startswith(rss_probe.RESULT_PREFIX):
            return json.loads(line[len(rss_probe.RESULT_PREFIX) :])
    tail = "\n".join(done.stderr.strip().splitlines()[-5:])
    print(f"  {backend} {optimizer} failed (exit {done.returncode}): {tail}", file=sys.stderr)
    return None


def measure(pythons, vocab=32768, batch_tokens=2048, length=64, repeats=3):
    """{backend: {optimizer: [probe results]}} and {backend: why it was left out}.

    Each (backend, optimizer) runs `repeats` times, round-robin over the optimizers so that a
    change in the machine's load or memory pressure falls on all of them alike. A process's peak
    RSS varies by tens of MiB from run to run (allocator arenas, thread pools), as much as a small
    model's optimizer state: the table shows the median and the spread.
    """
    results, missing = {}, {}
    for backend in BACKENDS:
        python = pythons.get(backend)
        if not python or not os.path.exists(python):
            missing[backend] = f"no Python for it ({python}); `bash tools/backends_ci.sh` makes one"
            continue
        results[backend] = {optimizer: [] for optimizer in OPTIMIZERS}
        for repeat in range(repeats):
            for optimizer in OPTIMIZERS:
                print(f"  {backend}: {optimizer} ({repeat + 1}/{repeats}) ...", flush=True)
                probe = _probe(python, backend, optimizer, vocab, batch_tokens, length)
                if probe is not None:
                    results[backend][optimizer].append(probe)
    return results, missing


def _label(optimizer):
    return "SGD (no state)" if optimizer == BASELINE else roster.label(optimizer)


def _size(size):
    return f"{size / GIB:.3f} GiB" if size >= GIB / 4 else f"{size / MIB:.2f} MiB"


def _row(backend, optimizer, runs, medians):
    base, adam = medians.get(BASELINE), medians.get("adam")
    peaks = [run["peak_rss"] for run in runs]
    extra = medians[optimizer] - base if base is not None and optimizer != BASELINE else None
    adam_extra = adam - base if base is not None and adam is not None else None
    return [
        backend,
        _label(optimizer),
        _size(runs[0]["state_bytes"]),
        f"{medians[optimizer] / GIB:.2f} GiB",
        f"{(max(peaks) - min(peaks)) / MIB:.0f} MiB ({len(runs)})",
        "" if extra is None else f"{extra / MIB:+.0f} MiB",
        "" if extra is None or not adam_extra else f"{extra / adam_extra:.2f}",
        runs[0]["sm3_path"] or "",
        "jit (XLA)" if runs[0]["jit_compile"] is True else "no jit",
    ]


def table(results):
    """Per backend and optimizer: the state, the median peak RSS and its spread over the runs,
    the median above stateless SGD's and as a fraction of Adam's, the SM3 step and the mode."""
    rows = []
    for backend in BACKENDS:
        probes = results.get(backend) or {}
        medians = {
            name: statistics.median(r["peak_rss"] for r in runs)
            for name, runs in probes.items()
            if runs
        }
        for optimizer in OPTIMIZERS if probes else ():
            runs = probes.get(optimizer)
            if runs:
                rows.append(_row(backend, optimizer, runs, medians))
            else:
                rows.append([backend, _label(optimizer), "failed"] + [""] * 6)
    headers = ["backend", "optimizer", "state", "peak RSS", "spread (runs)", "over SGD"]
    headers += ["x Adam's", "SM3 step", "mode"]
    return docs_output.format_table(headers, rows, "llrrrrrll")


def caption(results, missing, vocab, batch_tokens):
    params = next(
        (runs[0]["params"] for probes in results.values() for runs in probes.values() if runs),
        None,
    )
    text = (
        f"Peak RSS of one transformer_small training step per Keras backend ({vocab // 1024}k "
        f"shared vocabulary, {params / 1e6:.1f}M parameters, {batch_tokens} tokens), one process "
        "per run, median of the runs; the same model in backend-neutral Keras "
        "(benchmarks/backend_memory_probe.py):"
        if params
        else "Peak RSS of one transformer_small training step per Keras backend: no probe ran."
    )
    libraries = versions(results)
    if libraries:
        text += "\n\nVersions: " + "; ".join(f"{b}: {v}" for b, v in libraries.items()) + "."
    for backend, why in missing.items():
        text += f"\n\n{backend}: not measured, {why}."
    return text


def versions(results):
    """{backend: "its framework and Keras versions"}, as its probes reported them (each backend
    runs with its own Python and libraries)."""
    found = {}
    for backend, probes in results.items():
        reported = next(
            (r["versions"] for runs in probes.values() for r in runs if "versions" in r), None
        )
        if reported:
            found[backend] = ", ".join(f"{name} {version}" for name, version in reported.items())
    return found
