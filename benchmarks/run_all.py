"""Regenerates every benchmark table and figure in docs/ (what `make bench` runs).

    python -m benchmarks.run_all                      # all parts, in the order below
    python -m benchmarks.run_all --only memory        # one part (repeatable: --only a --only b)

Parts (each under 30 minutes on an otherwise idle 2-core machine except convergence, which
trains 18 runs of 900 steps, 2.1 hours measured; see docs/benchmarks.md for the times measured):
  memory       bench_memory: optimizer state of three models; peak RSS of a
               transformer_big step per optimizer            -> docs/memory_*.png
  headroom     bench_batch_headroom: largest transformer_big batch within a memory budget
                                                              -> docs/batch_headroom.png
  convergence  bench_convergence: transformer_small on Wesnoth en->fr, six optimizers,
               sweep at the full horizon, then a second seed  -> docs/convergence.png
  speed        bench_memory_to_speed: SM3 at the largest batch within Adam's peak memory,
               steps to Adam's loss                           -> docs/memory_to_speed.png
  step         bench_step: optimizer step time (the kernels benchmark)
Each part writes docs/results/<part>.md with its command, the machine's load and its tables.

Memory and headroom share their probes when run together (the headroom lines get the memory
part's batch as an extra measured point for free). Parts run one after the other: timings and
peak memory measured while another part runs would not mean much.
"""

import argparse

from benchmarks import docs_output, processes

PARTS = ("memory", "headroom", "convergence", "speed", "step")
MEMORY_BATCH_TOKENS = 2048  # transformer_big's own batch_size hparam


def run_memory():
    from benchmarks import bench_memory

    bench_memory.run(batch_tokens=MEMORY_BATCH_TOKENS)


def run_headroom(shared_with_memory):
    from benchmarks import bench_batch_headroom

    extra = (MEMORY_BATCH_TOKENS,) if shared_with_memory else ()
    bench_batch_headroom.run(budget_batch=1024, extra_batches=extra)


def run_convergence():
    from benchmarks import bench_convergence

    bench_convergence.run(bench_convergence.parse_args([]))


def run_speed():
    from benchmarks import bench_memory_to_speed

    bench_memory_to_speed.run(bench_memory_to_speed.parse_args([]))


def run_step():
    """bench_step in its own process (it sets up TF and its PyTorch worker itself); it writes
    docs/results/step.{md,json} through docs_output.publish."""
    done = processes.run_module("bench_step", capture_output=False)
    if done.returncode:
        raise RuntimeError(f"bench_step failed (exit {done.returncode})")


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
