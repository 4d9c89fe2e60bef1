"""Batch headroom: the largest token batch of transformer_big that trains within a memory budget.

    python -m benchmarks.bench_batch_headroom [--budget_batch=1024] [--length=64]
    python -m benchmarks.bench_batch_headroom --replot   # the figure again, from the saved JSON

The budget is the peak RSS of one Adam training step at `--budget_batch` tokens (measured), or
`--budget_gib`. For each optimizer the search measures (one `benchmarks.rss_probe` subprocess per
probe, sentence length fixed):
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

import numpy as np

from benchmarks import docs_output, roster, rss_probe

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
                roster.label(name),
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
    headers = ["budget"] + [roster.label(n) for n in searches]
    return docs_output.format_table(headers, rows), fits


def two_x_limit(fits, name):
    """Largest Adam batch at which `name` still fits twice Adam's batch (the fitted lines)."""
    (a_adam, slope), (a_opt, _) = fits["adam"], fits[name]
    # a_adam + slope * b >= a_opt + slope * 2b  <=>  b <= (a_adam - a_opt) / slope
    return (a_adam - a_opt) / slope


# Lines of optimizers whose probes coincide lie on each other: a dash pattern each keeps both seen.
_LINE_STYLES = ("-", (0, (6, 3)), "-.", (0, (3, 2, 1, 2, 1, 2)), (0, (1, 1)), (0, (9, 2, 2, 2)))


def _measured_line(ax, points, fit, **style):
    """The fitted line of `points` ({batch: bytes}), drawn only across the batches measured."""
    finite = [b for b, r in points.items() if np.isfinite(r)]
    if fit and finite:
        xs = np.array([min(finite), max(finite)], dtype=float)
        ax.plot(xs, (fit[0] + fit[1] * xs) / GIB, **style)


def plot(points, baseline, budget, path, budget_batch, slope, hparams_set):
    """Peak RSS against batch: every optimizer's probes, its line, its largest fitting batch.

    `points`: {optimizer: {batch: peak bytes}} in table order; `baseline`: the model-only probes.
    Optimizers whose probes coincide (Adagrad and SM3 with f32 momentum keep the same state size)
    get distinct hollow markers, each optimizer shifted by a few tokens so that none hides another,
    and distinct dash patterns. Lines span the measured batches only.
    """
    plt = docs_output.pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 5.5))
    measured = [b for p in points.values() for b in p] + list(baseline)
    shift = 0.006 * (max(measured) - min(measured))
    for i, (name, probes) in enumerate(points.items()):
        color = roster.color(name)
        offset = (i - (len(points) - 1) / 2) * shift
        finite = {b: r for b, r in probes.items() if np.isfinite(r)}
        ax.plot(
            [b + offset for b in finite],
            [r / GIB for r in finite.values()],
            linestyle="none",
            marker=roster.entry(name).marker,
            markersize=8,
            markerfacecolor="none",
            markeredgewidth=1.6,
            color=color,
            label=roster.label(name),
        )
        _measured_line(
            ax,
            probes,
            line_fit(probes, slope),
            color=color,
            linewidth=1.1,
            linestyle=_LINE_STYLES[i % len(_LINE_STYLES)],
        )
        fitting = [b for b, r in probes.items() if r <= budget]
        if fitting:
            ax.axvline(max(fitting), color=color, linestyle=":", linewidth=1)
    ax.plot(
        list(baseline),
        [r / GIB for r in baseline.values()],
        linestyle="none",
        marker="s",
        color=roster.MODEL_ONLY_COLOR,
        label=roster.MODEL_ONLY_LABEL,
    )
    _measured_line(
        ax,
        baseline,
        line_fit(baseline),
        color=roster.MODEL_ONLY_COLOR,
        linestyle="--",
        linewidth=0.9,
    )
    ax.axhline(
        budget / GIB,
        color="black",
        linewidth=1.2,
        label=f"budget: Adam's peak at {budget_batch} tokens",
    )
    ax.set_xlabel(
        f"batch (tokens per step); markers shifted by up to {len(points) * shift / 2:.0f}"
        " tokens so that none hides another"
    )
    ax.set_ylabel("peak RSS of one training step (GiB)")
    ax.set_title(
        f"{hparams_set} on CPU: peak memory against batch, lines across the measured batches;\n"
        "dotted: largest batch that fits"
    )
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def replot():
    """Draws docs/batch_headroom.png again from docs/results/batch_headroom.json."""
    raw = docs_output.read_results("batch_headroom")

    def by_batch(points):  # JSON keys are strings
        return {int(b): float(r) for b, r in sorted(points.items(), key=lambda i: int(i[0]))}

    points = {n: by_batch(raw["points"][n]) for n in roster.names() if n in raw["points"]}
    plot(
        points,
        by_batch(raw["model_only"]),
        raw["budget_bytes"],
        docs_output.figure_path("batch_headroom"),
        raw["budget_batch"],
        raw["slope_bytes_per_token"],
        raw.get("hparams_set", "transformer_big"),
    )
    print("wrote docs/batch_headroom.png from docs/results/batch_headroom.json")


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
        b: probe(roster.MODEL_ONLY, b)["peak_rss"] for b in sorted({budget_batch, 2 * budget_batch})
    }
    slope = (baseline[2 * budget_batch] - baseline[budget_batch]) / budget_batch
    budget = budget_gib * GIB if budget_gib else probe("adam", budget_batch)["peak_rss"]
    print(
        f"  budget {budget / GIB:.3f} GiB; model-only slope {slope / 2**20:.3f} MiB per token",
        flush=True,
    )
    searches = {}
    for name in roster.names():
        search = Search(name, budget, slope, length, probe)
        for batch in extra_batches:
            search.measure(batch)
        search.run(budget_batch, max_probes)
        searches[name] = search
    plot(
        {name: search.points for name, search in searches.items()},
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
        f"  {roster.label(n)}: up to Adam batches of {v:.0f} tokens"
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
        "hparams_set": hparams_set,
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
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only draw the figure again, from docs/results/batch_headroom.json (no probes)",
    )
    args = parser.parse_args()
    if args.replot:
        replot()
        return
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
