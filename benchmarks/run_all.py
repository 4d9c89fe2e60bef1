"""Regenerates every benchmark table and figure in docs/ (what `make bench` runs).

    python benchmarks/run_all.py                      # all parts, in the order below
    python benchmarks/run_all.py --only memory        # one part (repeatable: --only a --only b)

Parts (each under 30 minutes on an otherwise idle 2-core machine except convergence, which
trains 24 runs of 900 steps, about 2 hours; see docs/benchmarks.md for the times measured):
  memory       bench_memory.py: optimizer state of three models; peak RSS of a
               transformer_big step per optimizer            -> docs/memory_*.png
  headroom     bench_batch_headroom.py: largest transformer_big batch within a memory budget
                                                              -> docs/batch_headroom.png
  convergence  bench_convergence.py: transformer_small on Wesnoth en->fr, six optimizers,
               sweep at the full horizon, then a second seed  -> docs/convergence.png
  speed        bench_memory_to_speed.py: SM3 at the largest batch within Adam's peak memory,
               steps to Adam's loss                           -> docs/memory_to_speed.png
  step         bench_step.py: optimizer step time (the kernels benchmark)
Each part writes docs/results/<part>.md with its command, the machine's load and its tables.

Memory and headroom share their probes when run together (the headroom lines get the memory
part's batch as an extra measured point for free). Parts run one after the other: timings and
peak memory measured while another part runs would not mean much.
"""

import argparse
import subprocess
import sys

import docs_output
import source_tree

PARTS = ("memory", "headroom", "convergence", "speed", "step")
MEMORY_BATCH_TOKENS = 2048  # transformer_big's own batch_size hparam


def run_memory():
    import bench_memory

    bench_memory.run(batch_tokens=MEMORY_BATCH_TOKENS)


def run_headroom(shared_with_memory):
    import bench_batch_headroom

    extra = (MEMORY_BATCH_TOKENS,) if shared_with_memory else ()
    bench_batch_headroom.run(budget_batch=1024, extra_batches=extra)


def run_convergence():
    import bench_convergence

    bench_convergence.run(bench_convergence.parse_args([]))


def run_speed():
    import bench_memory_to_speed

    bench_memory_to_speed.run(bench_memory_to_speed.parse_args([]))


def run_step():
    """bench_step.py in its own process (it sets up TF itself); its table goes to docs/results."""
    stopwatch = docs_output.Stopwatch()
    command = [sys.executable, f"{source_tree.BENCHMARKS_DIR}/bench_step.py"]
    done = subprocess.run(
        command, env=source_tree.subprocess_env(), capture_output=True, text=True, check=True
    )
    output = "\n".join(
        line
        for line in done.stdout.splitlines()
        if not line.startswith(("I0000", "WARNING: All log"))
    )
    docs_output.publish(
        "step",
        "Optimizer step speed (bench_step.py)",
        [("`python benchmarks/bench_step.py` printed:", output)],
        {"stdout": done.stdout},
        stopwatch,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only this part (may be given several times)",
    )
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    for part in PARTS:
        if part not in parts:
            continue
        print(f"=== {part} ===", flush=True)
        stopwatch = docs_output.Stopwatch()
        if part == "memory":
            run_memory()
        elif part == "headroom":
            run_headroom(shared_with_memory="memory" in parts)
        elif part == "convergence":
            run_convergence()
        elif part == "speed":
            run_speed()
        else:
            run_step()
        print(f"=== {part}: {stopwatch.summary()} ===", flush=True)


if __name__ == "__main__":
    main()
