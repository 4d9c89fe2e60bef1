"""Convergence: SM3 vs Adam, Adagrad and Adafactor training a Transformer on Wesnoth en->fr.

    python -m benchmarks.bench_convergence [--train_steps=900] [--seeds=1,2] \\
        [--hparams_set=transformer_demo] [--optimizers=sm3,sm3_bf16,...] [--grid=sm3=0.1:0.3]
    python -m benchmarks.bench_convergence --replot     # the figure again, from the saved JSON

1. Sweep: each optimizer at the learning rates of LEARNING_RATES, `--train_steps` steps (the same
   horizon as the final runs: a rate that wins a short sweep can lose a long run), the first seed;
   the rate with the lowest validation loss at the end is that optimizer's best, and its sweep
   run is that optimizer's first-seed final run.
2. Final runs: each optimizer at its best rate for every further seed; validation loss every
   `--eval_every` steps, then test loss and BLEU on `--bleu_samples` test sentences.
Every run is `benchmarks.convergence_run` in its own process (the trainer's `train()`, then
`evaluation.evaluate()`), with one TF thread. Runs go `--parallel` at a time, different
optimizers side by side, so that they share the machine under the same conditions: on a
machine other jobs also load, runs made one after another would compare the load, not the
optimizers. All runs share the data, batch, schedule and hparams set and differ only in
optimizer (the roster's entries the trainer can build: SM3 with a float32, a bfloat16 or no
momentum buffer, Adam, Adagrad, Keras Adafactor), learning rate and seed.

Prints the sweep and result tables (validation loss at equal steps and at an equal wall-clock
budget, BLEU, steps and time to a target validation loss), writes docs/<name>.png and
docs/results/<name>.*.
"""

import argparse
import json
import os
import shutil
from concurrent import futures

import numpy as np

from benchmarks import convergence_run, docs_output, processes, roster

# Roster entries that the trainer builds as another of its optimizers with further hparams; every
# other entry trained here is a value of the trainer's `optimizer` hparam itself.
HPARAMS_VARIANTS = {
    "sm3_bf16": ("sm3", "optimizer_sm3_momentum_dtype=bfloat16"),
    "sm3_nomom": ("sm3", "optimizer_sm3_momentum=0.0"),
}
# The demo's model and recipe (`transformer_demo`: SM3 with beta_2 0.999) and the horizon: at 900
# steps of 2048 tokens (~5 passes over the corpus) the validation loss flattens under the
# cool-down (docs/recipes.md), where the 250-step runs of the earlier version of this benchmark
# stopped in the steep part of training.
HPARAMS_SET = "transformer_demo"
HORIZON = 900
# Two rates a factor 2-3 apart per optimizer, at the best rates of docs/recipes.md's 1000-step
# runs (SM3 with beta_2 0.999 and Adam at 0.003; SM3 at 0.0045 collapsed there, so the second
# rate is below) and of the earlier 80-step sweep for the others (docs/benchmarks.md). Two, not
# three: 18 runs of 900 steps took 2.1 h of this 2-core machine. Every best is at an edge of a
# two-rate grid; docs/benchmarks.md says what lies beyond it.
LEARNING_RATES = {
    "sm3": (0.0015, 0.003),
    "sm3_bf16": (0.0015, 0.003),
    "sm3_nomom": (0.0015, 0.003),
    "adam": (0.001, 0.003),
    "adagrad": (0.1, 0.2),
    "adafactor": (0.01, 0.03),
}


def convergence_names():
    """The roster's names this benchmark can train, in table order."""
    trainable = set(roster.trainer_names()) | set(HPARAMS_VARIANTS)
    return [name for name in roster.names() if name in trainable]


def trainer_settings(name):
    """(the trainer's `optimizer` hparam, further hparams overrides) of roster entry `name`."""
    return HPARAMS_VARIANTS.get(name, (name, ""))


def run_one(job, args):
    """Runs one `convergence_run` job; returns its result dict (with an "error" if it failed)."""
    name = f"{job['optimizer']}_lr{job['learning_rate']:g}_s{job['seed']}_{job['train_steps']}"
    output_dir = os.path.join(args.work_dir, name)
    optimizer, extra_hparams = trainer_settings(job["optimizer"])
    arguments = [
        f"--optimizer={optimizer}",
        f"--hparams_set={args.hparams_set}",
        f"--hparams={','.join(h for h in (args.hparams, extra_hparams) if h)}",
        f"--learning_rate={job['learning_rate']}",
        f"--seed={job['seed']}",
        f"--train_steps={job['train_steps']}",
        f"--eval_every={job['eval_every']}",
        f"--bleu_samples={job['bleu_samples']}",
        f"--batch_size={args.batch_size}",
        f"--warmup_steps={args.warmup_steps}",
        f"--threads={max(1, (os.cpu_count() or 2) // args.parallel)}",
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
            result = json.loads(line[len(convergence_run.RESULT_PREFIX) :])
            # Results are grouped by this benchmark's names (sm3_bf16, ...), not the hparam's.
            result["optimizer"] = job["optimizer"]
            print(f"  {name}: validation loss {result['validation_loss'][-1][1]:.3f}", flush=True)
            return result
    tail = " | ".join(done.stderr.strip().splitlines()[-3:])
    print(f"  {name}: FAILED (exit {done.returncode}): {tail}", flush=True)
    return dict(job, error=tail)


def run_jobs(jobs, args):
    """Runs `jobs` in groups of `args.parallel`, each group to its end before the next starts.

    Whole groups, not a rolling pool: a run that starts while another group's runs finish would
    train on a machine that is emptier for some optimizers than for others.
    """
    results = []
    with futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for start in range(0, len(jobs), args.parallel):
            group = jobs[start : start + args.parallel]
            results += list(pool.map(lambda job: run_one(job, args), group))
    return results


def final_validation_loss(result):
    return result["validation_loss"][-1][1] if "validation_loss" in result else float("inf")


def final_job(args, optimizer, learning_rate, seed):
    return dict(
        optimizer=optimizer,
        learning_rate=learning_rate,
        seed=seed,
        train_steps=args.train_steps,
        eval_every=args.eval_every,
        bleu_samples=args.bleu_samples,
    )


def sweep(args):
    """{optimizer: [sweep results]}: every rate of `args.grid` at the full horizon, first seed.

    Sweep runs are complete final runs (validation curve, test loss, BLEU), so the best one is
    also that optimizer's first-seed result.
    """
    # Interleaved (the i-th rate of every optimizer, then the next) so that runs running together
    # are of different optimizers.
    grid = args.grid
    jobs = [
        final_job(args, o, grid[o][i], args.seeds[0])
        for i in range(max(len(grid[o]) for o in args.optimizers))
        for o in args.optimizers
        if i < len(grid[o])
    ]
    results = run_jobs(jobs, args)
    return {o: [r for r in results if r["optimizer"] == o] for o in args.optimizers}


def best_run(sweep_results):
    return min(sweep_results, key=final_validation_loss)


def best_rate(sweep_results):
    return best_run(sweep_results)["learning_rate"]


def curves(result):
    """Arrays of one run: validation (steps, losses, seconds) and training (steps, losses, seconds).

    The clock starts at the first logged training step (after tracing, which is not training).
    """
    train = np.array(result["train_loss"])
    origin = train[0, 1]
    wall = dict(zip(train[:, 0].astype(int), train[:, 1] - origin))
    val = np.array(result["validation_loss"])
    val_seconds = np.array([wall.get(int(step), np.nan) for step in val[:, 0]])
    return {
        "val_steps": val[:, 0],
        "val_loss": val[:, 1],
        "val_seconds": val_seconds,
        "train_steps": train[:, 0],
        "train_loss": train[:, 2],
        "train_seconds": train[:, 1] - origin,
    }


def mean_curves(results):
    """Seed-averaged curves of one optimizer's final runs (they share their checkpoint steps)."""
    per_seed = [curves(r) for r in results]
    return {key: np.mean([c[key] for c in per_seed], axis=0) for key in per_seed[0]}, per_seed


def crossing(values, xs, target):
    """First x where the piecewise-linear `values(xs)` reaches <= target, or None."""
    for i, value in enumerate(values):
        if value <= target:
            if i == 0:
                return float(xs[0])
            fraction = (values[i - 1] - target) / (values[i - 1] - value)
            return float(xs[i - 1] + fraction * (xs[i] - xs[i - 1]))
    return None


def summarize(finals):
    """Per-optimizer numbers for the results table, and the shared target and time budget."""
    means = {o: mean_curves(rs) for o, rs in finals.items()}
    # The target every optimizer reaches: the worst of their best seed-averaged validation losses.
    target = max(float(np.min(m["val_loss"])) for m, _ in means.values())
    budget = min(float(m["val_seconds"][-1]) for m, _ in means.values())
    rows = {}
    for optimizer, (mean, per_seed) in means.items():
        runs = finals[optimizer]
        step_seconds = [
            np.median(np.diff(c["train_seconds"]) / np.diff(c["train_steps"])) for c in per_seed
        ]
        rows[optimizer] = {
            "learning_rate": runs[0]["learning_rate"],
            "val_loss_seeds": [float(c["val_loss"][-1]) for c in per_seed],
            "val_loss_at_budget": float(np.interp(budget, mean["val_seconds"], mean["val_loss"])),
            "bleu_seeds": [r["test"]["bleu"] for r in runs if "test" in r],
            "test_loss_seeds": [r["test"]["loss"] for r in runs if "test" in r],
            "seconds_per_step": float(np.mean(step_seconds)),
            "steps_to_target": crossing(mean["val_loss"], mean["val_steps"], target),
            "seconds_to_target": crossing(mean["val_loss"], mean["val_seconds"], target),
            "state_bytes": runs[0]["state_bytes"],
        }
    return rows, target, budget


def _spread(values, digits):
    values = list(values)
    if not values:
        return "n/a"
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def sweep_table(sweeps):
    rows = []
    for optimizer, results in sweeps.items():
        best = best_rate(results)
        for r in results:
            loss = final_validation_loss(r)
            rows.append(
                [
                    roster.label(optimizer),
                    f"{r['learning_rate']:g}",
                    "diverged/failed" if loss == float("inf") else f"{loss:.3f}",
                    "best" if r["learning_rate"] == best else "",
                ]
            )
    return docs_output.format_table(
        ["optimizer", "learning rate", "validation loss", ""], rows, "lrrl"
    )


def results_table(rows, target, budget, train_steps):
    def fmt(x, d):
        return "not reached" if x is None else f"{x:.{d}f}"

    table = []
    for optimizer, row in rows.items():
        table.append(
            [
                roster.label(optimizer),
                f"{row['learning_rate']:g}",
                _spread(row["val_loss_seeds"], 3),
                f"{row['val_loss_at_budget']:.3f}",
                _spread(row["bleu_seeds"], 2),
                _spread(row["test_loss_seeds"], 3),
                f"{row['seconds_per_step']:.3f}",
                fmt(row["steps_to_target"], 0),
                fmt(row["seconds_to_target"], 0),
                f"{row['state_bytes'] / 2**20:.1f}",
            ]
        )
    headers = [
        "optimizer",
        "lr",
        f"val loss @{train_steps}",
        f"val loss @{budget:.0f}s",
        "BLEU",
        "test loss",
        "s/step",
        f"steps to {target:.3f}",
        f"s to {target:.3f}",
        "state MiB",
    ]
    return docs_output.format_table(headers, table)


def plot(sweeps, finals, target, budget, path, hparams_set):
    """Four panels: sweep, validation loss vs step, vs wall-clock, training loss vs step."""
    plt = docs_output.pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0, 0]
    for optimizer, results in sweeps.items():
        ok = [r for r in results if "validation_loss" in r]
        ax.plot(
            [r["learning_rate"] for r in ok],
            [final_validation_loss(r) for r in ok],
            "o-",
            color=roster.color(optimizer),
            label=roster.label(optimizer),
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("validation loss at the end of the sweep run")
    ax.set_title(
        "Learning-rate sweep (seed 1)"
        if sweeps
        else "Learning-rate sweep: not run (rates given with --rates)"
    )
    if sweeps:
        ax.legend(fontsize=8)
    panels = [
        (axes[0, 1], "val_steps", "val_loss", "step", "validation loss"),
        (
            axes[1, 0],
            "val_seconds",
            "val_loss",
            "seconds of training (clock from step 10)",
            "validation loss",
        ),
        (axes[1, 1], "train_steps", "train_loss", "step", "training loss (last batch)"),
    ]
    for ax, x_key, y_key, x_label, y_label in panels:
        for optimizer, results in finals.items():
            mean, per_seed = mean_curves(results)
            for c in per_seed:
                ax.plot(c[x_key], c[y_key], color=roster.color(optimizer), alpha=0.3, linewidth=0.8)
            ax.plot(
                mean[x_key],
                mean[y_key],
                color=roster.color(optimizer),
                linewidth=2,
                label=f"{roster.label(optimizer)} (lr {results[0]['learning_rate']:g})",
            )
        if y_key == "val_loss":
            ax.axhline(
                target, color="0.4", linestyle=":", linewidth=1, label=f"target {target:.3f}"
            )
        if x_key == "val_seconds":
            ax.axvline(
                budget, color="0.4", linestyle="--", linewidth=1, label=f"budget {budget:.0f}s"
            )
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.legend(fontsize=8)
    axes[0, 1].set_title("Validation loss (thin: seeds, thick: mean)")
    axes[1, 0].set_title("Validation loss against wall-clock")
    axes[1, 1].set_title("Training loss")
    fig.suptitle(f"{hparams_set} on translate_enfr_wesnoth, each optimizer at its best rate")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def prepare_data(data_dir):
    """Generates the problem's data once, before parallel runs could race to write it."""
    from sm3_t2t import registry

    registry.problem(convergence_run.PROBLEM).generate_data(data_dir, None)


def run(args):
    stopwatch = docs_output.Stopwatch()
    os.makedirs(args.work_dir, exist_ok=True)
    prepare_data(args.data_dir)
    finals = {}
    if args.rates:
        # Rates chosen by an earlier sweep at this horizon (documented with its table).
        sweeps, best, seeds = {}, args.rates, args.seeds
    else:
        runs = sum(len(args.grid[o]) for o in args.optimizers)
        print(f"sweep: {runs} runs of {args.train_steps} steps", flush=True)
        sweeps = sweep(args)
        best = {o: best_rate(rs) for o, rs in sweeps.items()}
        finals = {o: [best_run(rs)] for o, rs in sweeps.items()}
        seeds = args.seeds[1:]
    print(f"final: best rates {best}; further seeds {seeds}", flush=True)
    jobs = [final_job(args, o, best[o], s) for s in seeds for o in args.optimizers]
    for result in run_jobs(jobs, args):
        finals.setdefault(result["optimizer"], []).append(result)
    failed = [r for rs in finals.values() for r in rs if "error" in r]
    if failed:
        raise RuntimeError(f"final runs failed: {failed}")
    rows, target, budget = summarize(finals)
    used = finals[args.optimizers[0]][0]["resolved_hparams"]
    model = ", ".join(
        f"{k}={used[k]}"
        for k in (
            "hidden_size",
            "filter_size",
            "num_hidden_layers",
            "num_heads",
            "max_length",
            "layer_prepostprocess_dropout",
            "attention_dropout",
            "relu_dropout",
            "label_smoothing",
        )
    )
    plot(sweeps, finals, target, budget, docs_output.figure_path(args.name), args.hparams_set)
    tables = (
        []
        if not sweeps
        else [
            (
                f"Learning-rate sweep: validation loss after {args.train_steps} steps, seed "
                f"{args.seeds[0]}:",
                sweep_table(sweeps),
            )
        ]
    )
    tables += [
        (
            f"Best rate, {args.train_steps} steps, seeds {','.join(map(str, args.seeds))} "
            f"(mean ± half-range); {used['batch_size']}-token batches, "
            f"warm-up {used['learning_rate_warmup_steps']} steps (power "
            f"{used['learning_rate_warmup_power']:g}), cool-down "
            f"{used['learning_rate_cooldown_steps']} steps; "
            f"BLEU on {args.bleu_samples} test sentences:",
            results_table(rows, target, budget, args.train_steps),
        ),
    ]
    docs_output.publish(
        args.name,
        "Convergence",
        tables,
        {
            "sweep": sweeps,
            "final": finals,
            "summary": rows,
            "target": target,
            "budget_seconds": budget,
            "hparams_set": args.hparams_set,
        },
        stopwatch,
        [
            f"Model ({args.hparams_set} as resolved): {model}.",
            "",
            f"Figure: docs/{args.name}.png",
        ],
    )


def in_roster_order(by_optimizer):
    """`by_optimizer` ordered as the tables are (a reloaded JSON file has its keys sorted)."""
    return {name: by_optimizer[name] for name in roster.names() if name in by_optimizer}


def replot(name):
    """Draws docs/<name>.png again from docs/results/<name>.json; trains nothing."""
    raw = docs_output.read_results(name)
    path = docs_output.figure_path(name)
    plot(
        in_roster_order(raw["sweep"]),
        in_roster_order(raw["final"]),
        raw["target"],
        raw["budget_seconds"],
        path,
        # Results from before the set was recorded were all transformer_small's.
        raw.get("hparams_set", "transformer_small"),
    )
    print(f"wrote {path} from docs/results/{name}.json")


def optimizer_rates(text):
    """{optimizer: (rate, ...)} of 'sm3=0.1:0.3,adam=0.003' (an argparse `type`)."""
    rates = {}
    for item in filter(None, text.split(",")):
        name, _, values = item.partition("=")
        if name not in convergence_names():
            raise argparse.ArgumentTypeError(
                f"unknown optimizer {name!r}; known: {', '.join(convergence_names())}"
            )
        try:
            rates[name] = tuple(float(value) for value in values.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not NAME=RATE[:RATE...]") from None
        if not all(rate > 0 for rate in rates[name]):
            raise argparse.ArgumentTypeError(f"rates must be positive, got {item!r}")
    return rates


def one_rate_each(text):
    """{optimizer: rate} of 'sm3=0.2,adam=0.001' (an argparse `type`)."""
    rates = optimizer_rates(text)
    if any(len(values) != 1 for values in rates.values()):
        raise argparse.ArgumentTypeError(f"one rate per optimizer, got {text!r}")
    return {name: values[0] for name, values in rates.items()}


def seed_list(text):
    """[seed, ...] of '1,2' (an argparse `type`)."""
    try:
        seeds = [int(seed) for seed in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"integers separated by commas, got {text!r}") from None
    return seeds


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizers", default=",".join(convergence_names()))
    parser.add_argument(
        "--train_steps", type=int, default=HORIZON, help="the horizon of sweep and final runs"
    )
    parser.add_argument("--eval_every", type=int, default=150)
    parser.add_argument(
        "--hparams",
        default="learning_rate_cooldown_steps=450",
        help="overrides shared by every run (the schedule of docs/recipes.md's runs)",
    )
    parser.add_argument("--seeds", type=seed_list, default="1,2")
    parser.add_argument("--hparams_set", default=HPARAMS_SET)
    parser.add_argument(
        "--batch_size", type=int, default=0, help="tokens per batch (0: the set's own)"
    )
    parser.add_argument(
        "--warmup_steps", type=int, default=0, help="warm-up steps (0: the set's own)"
    )
    parser.add_argument(
        "--grid",
        type=optimizer_rates,
        default="",
        help="sweep these rates instead of LEARNING_RATES, e.g. 'sm3=0.1:0.3,adam=0.003'",
    )
    parser.add_argument("--bleu_samples", type=int, default=100)
    parser.add_argument(
        "--rates",
        type=one_rate_each,
        default="",
        help="skip the sweep and use these rates, e.g. 'sm3=0.2,adam=0.001'",
    )
    parser.add_argument(
        "--name",
        default="convergence",
        help="stem of the docs files written (docs/<name>.png, docs/results/<name>.*)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=2,
        help="runs at once, each with max(1, cores // parallel) TF threads",
    )
    parser.add_argument("--data_dir", default=os.path.join(processes.ROOT, "output", "t2t_data"))
    parser.add_argument(
        "--work_dir", default=os.path.join(processes.ROOT, "output", "bench_convergence")
    )
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only draw docs/<name>.png again, from docs/results/<name>.json (no training)",
    )
    args = parser.parse_args(argv)
    for flag in ("train_steps", "eval_every", "parallel"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.bleu_samples < 0:
        parser.error(f"--bleu_samples must be at least 0, got {args.bleu_samples}")
    args.optimizers = [o for o in args.optimizers.split(",") if o]
    if args.rates:
        args.optimizers = list(args.rates)
    args.grid = {**LEARNING_RATES, **args.grid}
    for o in args.optimizers:
        if o not in convergence_names():
            parser.error(f"unknown optimizer {o!r}; known: {', '.join(convergence_names())}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        replot(args.name)
    else:
        run(args)


if __name__ == "__main__":
    main()
