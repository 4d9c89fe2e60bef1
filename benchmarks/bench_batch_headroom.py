"""Batch headroom: the largest token batch of transformer_big that trains within a memory budget.

    python benchmarks/bench_batch_headroom.py [--budget_batch=1024] [--length=64]

The budget is the peak RSS of one Adam training step at `--budget_batch` tokens (measured), or
`--budget_gib`. For each optimizer the search measures (one `rss_probe.py` subprocess per probe,
sentence length fixed):
  1. the peak RSS at the budget batch (every optimizer at Adam's batch);
  2. then probes where the line through its measured points, with the model-only slope (peak
     bytes per extra token, measured at two batches), meets the budget; a secant between the
     nearest fitting and failing probes once both exist; until they are one sentence apart.
"Fits" means peak RSS <= budget. The answer is the largest batch measured to fit.

A second table extrapolates the largest batch at other budgets, to show where the batch ratio is
2x and where it falls towards 1x: each optimizer's line has the model-only slope (its own memory
does not grow with the batch) through its measured points.

Prints both tables, writes docs/batch_headroom.png and docs/results/batch_headroom.*.
"""

import argparse

import docs_output
import numpy as np
import optimizer_variants
import rss_probe

GIB = 2**30


class Search:
    """The probes of one optimizer against one budget; `fits`/`fails` are measured batches."""

    def __init__(self, name, budget, slope, grain, probe):
        self.name, self.budget, self.slope, self.grain, self.probe = (
            name,
            budget,
            slope,
            grain,
            probe,
        )
        self.points = {}  # batch tokens -> peak RSS bytes

    def measure(self, batch):
        result = self.probe(self.name, batch)
        if result is None:  # the process died, e.g. killed for memory: certainly over the budget
            self.points[batch] = float("inf")
        else:
            self.points[batch] = result["peak_rss"]
        print(
            f"    {self.name} at {batch} tokens: "
            f"{self.points[batch] / GIB:.3f} GiB ({'fits' if self.fits(batch) else 'over'})",
            flush=True,
        )

    def fits(self, batch):
        return self.points[batch] <= self.budget

    def bracket(self):
        fitting = [b for b in self.points if self.fits(b)]
        failing = [b for b in self.points if not self.fits(b)]
        return (max(fitting) if fitting else None), (min(failing) if failing else None)

    def next_batch(self):
        """Where to probe next, or None once the answer is known to one sentence."""
        lo, hi = self.bracket()
        if lo is not None and hi is not None and hi - lo <= self.grain:
            return None
        if lo is not None and hi is not None and np.isfinite(self.points[hi]):
            # Secant between the bracketing probes.
            slope = (self.points[hi] - self.points[lo]) / (hi - lo)
            anchor = lo
        else:
            anchor = lo if lo is not None else hi
            slope = self.slope
        guess = anchor + (self.budget - self.points[anchor]) / slope
        guess = int(guess // self.grain) * self.grain
        low_limit = (lo + self.grain) if lo is not None else self.grain
        high_limit = (hi - self.grain) if hi is not None else 1 << 30
        if high_limit < low_limit:
            return None  # nothing left to try: hi is the smallest batch (one sentence)
        return min(max(guess, low_limit), high_limit)

    def run(self, first_batch, max_probes):
        if first_batch not in self.points:
            self.measure(first_batch)
        for _ in range(max_probes):
            batch = self.next_batch()
            if batch is None:
                break
            self.measure(batch)
        return self.bracket()


def line_fit(points, slope=None):
    """(intercept, slope) of peak RSS against batch through the finite measured points.

    With `slope` given (the model-only slope), only the intercept is fitted: an optimizer's own
    memory does not grow with the batch, so its line is the model-only line shifted up, and one
    shared, well-separated slope is steadier than one fitted to probes a sentence apart.
    """
    xs = np.array([b for b, r in points.items() if np.isfinite(r)], dtype=float)
    ys = np.array([r for r in points.values() if np.isfinite(r)], dtype=float)
    if slope is not None and len(xs):
        return float(np.median(ys - slope * xs)), slope
    if len(xs) < 2:
        return None
    slope, intercept = np.polyfit(xs, ys, 1)
    return float(intercept), float(slope)


def headroom_table(searches, budget_batch):
    rows = []
    adam_lo = searches["adam"].bracket()[0] if "adam" in searches else None
    for name, search in searches.items():
        lo, hi = search.bracket()
        at_adam_batch = search.points.get(budget_batch)
        rows.append(
            [
                optimizer_variants.label(name),
                "" if at_adam_batch is None else f"{at_adam_batch / GIB:.3f} GiB",
                "none" if lo is None else str(lo),
                "" if hi is None else str(hi),
                "" if not (lo and adam_lo) else f"{lo / adam_lo:.2f}",
                str(len(search.points)),
            ]
        )
    return docs_output.format_table(
        [
            "optimizer",
            f"peak RSS at {budget_batch} tok",
            "largest batch that fits",
            "smallest that does not",
            "x Adam",
            "probes",
        ],
        rows,
    )


def extrapolation_table(searches, budgets_batches, slope):
    """Largest batch per optimizer at budgets = Adam's (fitted) peak at other batches."""
    fits = {name: line_fit(search.points, slope) for name, search in searches.items()}
    adam_fit = fits["adam"]
    rows = []
    for adam_batch in budgets_batches:
        budget = adam_fit[0] + adam_fit[1] * adam_batch
        row = [f"{budget / GIB:.2f} GiB (Adam at {adam_batch})"]
        for name in searches:
            fit = fits[name]
            if fit is None:
                row.append("n/a")
                continue
            batch = (budget - fit[0]) / fit[1]
            row.append(f"{max(batch, 0):.0f} ({max(batch, 0) / adam_batch:.2f}x)")
        rows.append(row)
    headers = ["budget"] + [optimizer_variants.label(n) for n in searches]
    return docs_output.format_table(headers, rows), fits


def two_x_limit(fits, name):
    """Largest Adam batch at which `name` still fits twice Adam's batch (the fitted lines)."""
    (a_adam, slope), (a_opt, _) = fits["adam"], fits[name]
    # a_adam + slope * b >= a_opt + slope * 2b  <=>  b <= (a_adam - a_opt) / slope
    return (a_adam - a_opt) / slope


def plot(searches, baseline, budget, path, budget_batch, slope, hparams_set):
    plt = docs_output.pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 5.5))
    xs_all = [b for s in searches.values() for b in s.points] + list(baseline)
    grid = np.linspace(0, max(xs_all) * 1.05, 50)
    for i, (name, search) in enumerate(searches.items()):
        color = f"C{i}"
        finite = {b: r for b, r in search.points.items() if np.isfinite(r)}
        ax.plot(
            list(finite),
            [r / GIB for r in finite.values()],
            "o",
            color=color,
            label=optimizer_variants.label(name),
        )
        fit = line_fit(search.points, slope)
        if fit:
            ax.plot(
                grid, (fit[0] + fit[1] * grid) / GIB, "-", color=color, linewidth=0.8, alpha=0.6
            )
        lo = search.bracket()[0]
        if lo:
            ax.axvline(lo, color=color, linestyle=":", linewidth=1)
    ax.plot(
        list(baseline),
        [r / GIB for r in baseline.values()],
        "s",
        color="0.4",
        label="model only (no optimizer)",
    )
    fit = line_fit(baseline)
    if fit:
        ax.plot(grid, (fit[0] + fit[1] * grid) / GIB, "--", color="0.4", linewidth=0.8)
    ax.axhline(
        budget / GIB,
        color="black",
        linewidth=1.2,
        label=f"budget: Adam's peak at {budget_batch} tokens",
    )
    ax.set_xlabel("batch (tokens per step)")
    ax.set_ylabel("peak RSS of one training step (GiB)")
    ax.set_title(
        f"{hparams_set} on CPU: peak memory against batch; dotted: largest batch that fits"
    )
    ax.set_xlim(0, grid[-1])
    ax.set_ylim(0, None)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(
    budget_batch=1024,
    budget_gib=None,
    length=64,
    vocab=32768,
    max_probes=4,
    extra_batches=(),
    hparams_set="transformer_big",
):
    """Measures and publishes; returns the raw results.

    `extra_batches`: batches measured for every optimizer besides the search (they sharpen the
    lines; free when `bench_memory.py` already measured them in the same `run_all.py` process).
    """
    stopwatch = docs_output.Stopwatch()

    def probe(name, batch):
        return rss_probe.run_probe(
            name, hparams_set=hparams_set, batch_tokens=batch, length=length, vocab=vocab
        )

    print("  model-only baseline ...", flush=True)
    baseline = {
        b: probe(optimizer_variants.MODEL_ONLY, b)["peak_rss"]
        for b in sorted({budget_batch, 2 * budget_batch})
    }
    slope = (baseline[2 * budget_batch] - baseline[budget_batch]) / budget_batch
    budget = budget_gib * GIB if budget_gib else probe("adam", budget_batch)["peak_rss"]
    print(
        f"  budget {budget / GIB:.3f} GiB; model-only slope {slope / 2**20:.3f} MiB per token",
        flush=True,
    )
    searches = {}
    for name in optimizer_variants.names():
        search = Search(name, budget, slope, length, probe)
        for batch in extra_batches:
            search.measure(batch)
        search.run(budget_batch, max_probes)
        searches[name] = search
    plot(
        searches,
        baseline,
        budget,
        docs_output.figure_path("batch_headroom"),
        budget_batch,
        slope,
        hparams_set,
    )
    extrapolated, fits = extrapolation_table(
        searches,
        [budget_batch // 2, budget_batch, 2 * budget_batch, 4 * budget_batch, 8 * budget_batch],
        slope,
    )
    limits = {name: two_x_limit(fits, name) for name in searches if name != "adam"}
    limit_lines = [
        f"  {optimizer_variants.label(n)}: up to Adam batches of {v:.0f} tokens"
        for n, v in limits.items()
        if v is not None and v > 0
    ]
    tables = [
        (
            f"Largest {hparams_set} batch (tokens, {length}-token sentences) whose one-step peak "
            f"RSS stays within {budget / GIB:.3f} GiB (Adam's peak at {budget_batch} tokens):",
            headroom_table(searches, budget_batch),
        ),
        (
            "Extrapolated (not measured at these budgets): each optimizer's measured points on "
            "a line of the model-only slope; budget = Adam's line at that batch:",
            extrapolated,
        ),
        (
            "Where the straight lines still give twice Adam's batch:",
            "\n".join(limit_lines) or "  no optimizer reaches 2x",
        ),
    ]
    raw = {
        "budget_bytes": budget,
        "budget_batch": budget_batch,
        "length": length,
        "model_only": baseline,
        "slope_bytes_per_token": slope,
        "points": {n: s.points for n, s in searches.items()},
        "fits": {n: f for n, f in fits.items()},
        "two_x_limits": limits,
    }
    docs_output.publish(
        "batch_headroom",
        "Batch headroom",
        tables,
        raw,
        stopwatch,
        ["Figure: docs/batch_headroom.png"],
    )
    return raw


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget_batch",
        type=int,
        default=1024,
        help="the budget is Adam's peak RSS at this many tokens",
    )
    parser.add_argument(
        "--budget_gib", type=float, default=None, help="a fixed budget instead (GiB of peak RSS)"
    )
    parser.add_argument("--length", type=int, default=64, help="tokens per sentence (fixed)")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--hparams_set", default="transformer_big")
    parser.add_argument("--max_probes", type=int, default=4, help="search probes per optimizer")
    parser.add_argument(
        "--extra_batches",
        default="",
        help="comma-separated batches to measure for every optimizer too",
    )
    args = parser.parse_args()
    extra = tuple(int(b) for b in args.extra_batches.split(",") if b)
    run(
        args.budget_batch,
        args.budget_gib,
        args.length,
        args.vocab,
        args.max_probes,
        extra,
        args.hparams_set,
    )


if __name__ == "__main__":
    main()
