"""Memory into speed, the paper's claim: SM3's saved memory spent on a larger batch, in steps.

    python -m benchmarks.bench_memory_to_speed [--budget_batch=512] [--train_steps=600]
    python -m benchmarks.bench_memory_to_speed --replot   # the figure again, from the saved JSON

1. Budget: Adam's peak RSS (`benchmarks.rss_probe`, VmHWM, one process per probe) for one
   training step of the demo model (`--hparams_set`, the Wesnoth problem's vocabulary) at
   `--budget_batch` tokens of `--length`-token sentences.
2. Batch: for SM3 without momentum and with a bfloat16 buffer, the largest batch (whole
   sentences) whose peak stays within the budget: aimed where the line through the SM3 probe at
   the budget batch with the model-only slope (tokens -> bytes, probed at 1x and 2x the budget
   batch) meets the budget, then stepped down a sentence at a time until a probe fits.
3. Training: Adam at the budget batch and each SM3 variant at its batch, `--train_steps` steps,
   same hparams set, schedule and seed; validation loss every `--eval_every` steps. The table
   gives steps and tokens until each reaches the target validation loss (Adam's final one unless
   `--target` is given).

On a CPU a batch twice as large takes about twice as long, so the result is stated in steps
(and tokens), not seconds; this script makes no wall-clock claim. Writes
docs/memory_to_speed.png and docs/results/memory_to_speed.*.
"""

import argparse
import json
import os
import shutil
from concurrent import futures

import numpy as np

from benchmarks import convergence_run, docs_output, processes, roster, rss_probe

GIB = 2**30
# Run name -> (the roster entry it trains and probes, the trainer's `optimizer` hparam, further
# hparams overrides). Labels and colours are the roster's.
CONTENDERS = {
    "adam": ("adam", "adam", ""),
    "sm3_nomom": ("sm3_nomom", "sm3", "optimizer_sm3_momentum=0.0"),
    "sm3_bf16": ("sm3_bf16", "sm3", "optimizer_sm3_momentum_dtype=bfloat16"),
    # The control: SM3 at Adam's batch separates the optimizer's effect from the batch's.
    "sm3_nomom_same_batch": ("sm3_nomom", "sm3", "optimizer_sm3_momentum=0.0"),
}


def label(name):
    """The roster's label of run `name`; the control says it is at Adam's batch."""
    entry = CONTENDERS[name][0]
    return roster.label(entry) + (" at Adam's batch" if name != entry else "")


def vocabulary_size(data_dir):
    from sm3_t2t import registry

    problem = registry.problem(convergence_run.PROBLEM)
    problem.generate_data(data_dir, None)
    return problem.feature_encoders(data_dir)["targets"].vocab_size


def largest_batch(name, args, budget, slope, probe):
    """The largest batch (multiple of args.length) within `budget` for probe optimizer `name`;
    `probe(name, batch)` measures one peak RSS."""

    def peak(batch):
        return probe(name, batch)

    at_budget_batch = peak(args.budget_batch)
    aim = args.budget_batch + (budget - at_budget_batch) / slope
    batch = max(args.length, int(aim) // args.length * args.length)
    for _ in range(args.max_probes):
        if batch == args.budget_batch:
            return batch
        if peak(batch) <= budget:
            return batch
        batch -= args.length
    return batch


def train(name, batch, learning_rate, args):
    """One `benchmarks.convergence_run` process; returns its result dict."""
    _, optimizer, overrides = CONTENDERS[name]
    output_dir = os.path.join(args.work_dir, f"{name}_b{batch}")
    arguments = [
        f"--optimizer={optimizer}",
        f"--learning_rate={learning_rate}",
        f"--seed={args.seed}",
        f"--train_steps={args.train_steps}",
        f"--eval_every={args.eval_every}",
        "--bleu_samples=0",
        f"--batch_size={batch}",
        "--warmup_steps=0",
        f"--hparams_set={args.hparams_set}",
        f"--hparams={overrides}",
        f"--threads={max(1, (os.cpu_count() or 2) // len(CONTENDERS))}",
        f"--data_dir={args.data_dir}",
        f"--output_dir={output_dir}",
    ]
    if os.path.exists(output_dir):
        shutil.rmtree(output_dir)  # a stale run would be resumed, not redone
    done = processes.run_module("convergence_run", *arguments)
    with open(output_dir + ".log", "w", encoding="utf-8") as log:
        log.write(done.stdout + "\n--- stderr ---\n" + done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith(convergence_run.RESULT_PREFIX):
            return json.loads(line[len(convergence_run.RESULT_PREFIX) :])
    raise RuntimeError(f"training {name} at {batch} failed: {done.stderr[-2000:]}")


def first_crossing(points, target):
    """The first step (interpolated) where the validation loss reaches `target`, or None."""
    for (s0, l0), (s1, l1) in zip([(0, float("inf"))] + points, points):
        if l1 <= target:
            if not np.isfinite(l0):
                return float(s1)
            return float(s0 + (l0 - target) / (l0 - l1) * (s1 - s0))
    return None


def plot(runs, target, path, hparams_set):
    plt = docs_output.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, run in runs.items():
        points = np.array(run["result"]["validation_loss"])
        entry = CONTENDERS[name][0]
        style = dict(
            color=roster.color(entry),
            marker=roster.entry(entry).marker,
            # The control shares its optimizer's colour, dashed.
            linestyle="-" if name == entry else "--",
            label=f"{label(name)}, batch {run['batch']}",
        )
        axes[0].plot(points[:, 0], points[:, 1], **style)
        axes[1].plot(points[:, 0] * run["batch"] / 1e3, points[:, 1], **style)
    for ax, xlabel in zip(axes, ("step", "thousand tokens trained (batch x steps)")):
        ax.axhline(target, color="0.4", linestyle=":", label=f"target {target:.3f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.legend(fontsize=8)
    axes[0].set_title("Same peak memory: validation loss against steps")
    axes[1].set_title("... against tokens")
    fig.suptitle(f"{hparams_set} on translate_enfr_wesnoth at Adam's peak RSS")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args):
    stopwatch = docs_output.Stopwatch()
    os.makedirs(args.work_dir, exist_ok=True)
    vocab = vocabulary_size(args.data_dir)
    probes = []

    def probe(name, batch):
        result = rss_probe.run_probe(
            name, hparams_set=args.hparams_set, vocab=vocab, batch_tokens=batch, length=args.length
        )
        if result is None:  # the probe died (out of memory): this batch does not fit
            print(f"  {name} at {batch} tokens: the probe died", flush=True)
            return float("inf")
        probes.append(dict(optimizer=name, batch=batch, peak_rss=result["peak_rss"]))
        print(f"  {name} at {batch} tokens: {result['peak_rss'] / GIB:.3f} GiB", flush=True)
        return result["peak_rss"]

    small, large = args.budget_batch, 2 * args.budget_batch
    slope = (probe("none", large) - probe("none", small)) / (large - small)
    budget = probe("adam", args.budget_batch)
    print(f"budget {budget / GIB:.3f} GiB; slope {slope / 2**20:.4f} MiB/token", flush=True)
    batches = {"adam": args.budget_batch}
    for name in ("sm3_nomom", "sm3_bf16"):
        batches[name] = largest_batch(name, args, budget, slope, probe)
    batches["sm3_nomom_same_batch"] = args.budget_batch
    print(f"batches within the budget: {batches}", flush=True)

    rates = {name: args.sm3_rate for name in batches}
    rates["adam"] = args.adam_rate
    with futures.ThreadPoolExecutor(max_workers=len(CONTENDERS)) as pool:
        results = dict(
            zip(
                batches,
                pool.map(lambda n: train(n, batches[n], rates[n], args), batches),
            )
        )
    runs = {n: {"batch": batches[n], "rate": rates[n], "result": results[n]} for n in batches}
    target = args.target or results["adam"]["validation_loss"][-1][1]
    rows = []
    for name, item in runs.items():
        points = [tuple(p) for p in item["result"]["validation_loss"]]
        steps = first_crossing(points, target)
        probe_name = CONTENDERS[name][0]
        peaks = [
            p["peak_rss"]
            for p in probes
            if p["optimizer"] == probe_name and p["batch"] == item["batch"]
        ]
        rows.append(
            [
                label(name),
                str(item["batch"]),
                f"{item['batch'] / args.budget_batch:.2f}",
                f"{(peaks[0] if peaks else budget) / GIB:.3f}",
                f"{item['rate']:g}",
                f"{points[-1][1]:.3f}",
                "not reached" if steps is None else f"{steps:.0f}",
                "not reached" if steps is None else f"{steps * item['batch'] / 1e3:.0f}k",
            ]
        )
    table = docs_output.format_table(
        [
            "optimizer",
            "batch (tokens)",
            "x Adam",
            "peak RSS GiB",
            "lr",
            f"val loss @{args.train_steps}",
            f"steps to {target:.3f}",
            "tokens to it",
        ],
        rows,
    )
    probe_table = docs_output.format_table(
        ["probe", "batch", "peak RSS GiB"],
        [[p["optimizer"], str(p["batch"]), f"{p['peak_rss'] / GIB:.3f}"] for p in probes],
    )
    plot(runs, target, docs_output.figure_path(args.name), args.hparams_set)
    docs_output.publish(
        args.name,
        "Memory into speed",
        [
            (
                f"Peak RSS probes ({args.hparams_set}, vocabulary {vocab}, {args.length}-token "
                f"sentences; budget = Adam at {args.budget_batch} tokens = {budget / GIB:.3f} GiB,"
                f" model-only slope {slope / 2**20:.4f} MiB/token):",
                probe_table,
            ),
            (
                f"Training at equal peak memory, {args.train_steps} steps, seed {args.seed}; "
                f"steps and tokens to validation loss {target:.3f}:",
                table,
            ),
        ],
        {
            "probes": probes,
            "budget": budget,
            "slope": slope,
            "runs": runs,
            "target": target,
            "hparams_set": args.hparams_set,
        },
        stopwatch,
        [f"Figure: docs/{args.name}.png"],
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hparams_set", default="transformer_small")
    parser.add_argument("--budget_batch", type=int, default=512, help="Adam's batch (tokens)")
    parser.add_argument("--length", type=int, default=32, help="sentence length of the probes")
    parser.add_argument("--max_probes", type=int, default=4)
    parser.add_argument("--train_steps", type=int, default=600)
    parser.add_argument("--eval_every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--adam_rate", type=float, default=0.005)
    parser.add_argument("--sm3_rate", type=float, default=0.1)
    parser.add_argument("--target", type=float, default=0.0, help="0: Adam's final val loss")
    parser.add_argument("--name", default="memory_to_speed")
    parser.add_argument("--data_dir", default=os.path.join(processes.ROOT, "output", "t2t_data"))
    parser.add_argument(
        "--work_dir", default=os.path.join(processes.ROOT, "output", "memory_to_speed")
    )
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only draw docs/<name>.png again, from docs/results/<name>.json (no training)",
    )
    return parser.parse_args(argv)


def replot(name):
    """Draws docs/<name>.png again from docs/results/<name>.json; trains nothing."""
    raw = docs_output.read_results(name)
    runs = {n: raw["runs"][n] for n in CONTENDERS if n in raw["runs"]}
    path = docs_output.figure_path(name)
    plot(runs, raw["target"], path, raw.get("hparams_set", "transformer_small"))
    print(f"wrote {path} from docs/results/{name}.json")


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        replot(args.name)
    else:
        run(args)


if __name__ == "__main__":
    main()
