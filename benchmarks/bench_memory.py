"""Optimizer memory: state bytes on three models' shapes, and the peak RSS of a transformer_big
step.

    python -m benchmarks.bench_memory [--batch_tokens=2048] [--length=64] [--skip_rss]
    python -m benchmarks.bench_memory --replot      # the figures again, from the saved JSON

Part 1 (state): for the parameter shapes of transformer_big (32k vocabulary), transformer_base
and BERT-Large (`model_shapes.py`), creates real variables of those shapes, builds each optimizer
of `benchmarks.roster` on them and counts the bytes of the optimizer's own variables
(`sm3_tf.memory.state_bytes`, step counters excluded). One process per model, one optimizer at a
time, freed before the next.

Part 2 (peak RSS): one subprocess per optimizer (`benchmarks.rss_probe`) runs one training step of
the real transformer_big Transformer on `--batch_tokens` tokens and reports its peak resident
memory; a model-only process (forward and backward, no optimizer) gives the baseline, so the
optimizer's share is the difference. SM3 is measured with its fused kernel and, separately, with the
TF-ops step (same state, different temporaries).

Prints both tables, writes docs/memory_state.png, docs/memory_rss.png and docs/results/memory.*.
"""

import argparse
import gc
import multiprocessing
from concurrent import futures

from benchmarks import docs_output, model_shapes, roster, rss_probe

GIB = 2**30
MIB = 2**20


def model_shape_lists(vocab):
    """{model name: list of parameter shapes}, from the shared `model_shapes.py`."""
    lists = {
        f"transformer_big ({vocab // 1024}k vocab)": model_shapes.transformer_big_shapes(
            vocab=vocab
        ),
        f"transformer_base ({vocab // 1024}k vocab)": model_shapes.transformer_base_shapes(
            vocab=vocab
        ),
        "BERT-Large": model_shapes.bert_large_shapes(),
    }
    return {name: [_shape_of(item) for item in _items(shapes)] for name, shapes in lists.items()}


def _items(shapes):
    return shapes.values() if isinstance(shapes, dict) else shapes


def _shape_of(item):
    # Accept bare shapes as well as (name, shape) pairs.
    if len(item) == 2 and isinstance(item[0], str):
        item = item[1]
    return tuple(int(d) for d in item)


def count_state(shapes):
    """{optimizer name: state bytes} for real variables of `shapes`, and the parameter count."""
    import keras

    from sm3_tf import memory

    variables = [
        keras.Variable(initializer="zeros", shape=shape, dtype="float32", name=f"w{i}")
        for i, shape in enumerate(shapes)
    ]
    counts = {}
    for name in roster.names():
        optimizer = roster.make(name)
        optimizer.build(variables)
        counts[name] = memory.state_bytes(optimizer)
        del optimizer
        gc.collect()  # the next optimizer should not share the process with this one's state
    params = sum(int(v.numpy().size) for v in variables)
    del variables
    gc.collect()
    return counts, params


def count_state_in_subprocess(shapes):
    """`count_state` in a fresh process, so that this one stays small while the probes run."""
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(count_state, shapes).result()


def state_table(results):
    rows = []
    for model, (counts, params) in results.items():
        for name, size in counts.items():
            rows.append(
                [
                    model,
                    roster.label(name),
                    f"{params / 1e6:.1f}M",
                    _format_size(size),
                    f"{size / params:.3f}",
                    f"{size / counts['adam']:.3f}",
                ]
            )
    return docs_output.format_table(
        ["model", "optimizer", "params", "state", "bytes/param", "x Adam"], rows, "llrrrr"
    )


def _format_size(size):
    return f"{size / GIB:.3f} GiB" if size >= GIB / 4 else f"{size / MIB:.2f} MiB"


def plot_state(results, path):
    """Grouped bars: state GiB per model, one bar per optimizer, each labelled."""
    plt = docs_output.pyplot()
    models = list(results)
    names = roster.names()
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(10, 4.8))
    for i, name in enumerate(names):
        xs = [m + (i - (len(names) - 1) / 2) * width for m in range(len(models))]
        values = [results[model][0][name] / GIB for model in models]
        bars = ax.bar(xs, values, width, label=roster.label(name), color=roster.color(name))
        for bar, value in zip(bars, values):
            text = f"{value:.2f}" if value >= 0.01 else f"{value * 1024:.1f} MiB"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels([f"{m}\n{results[m][1] / 1e6:.0f}M params" for m in models])
    ax.set_ylabel("optimizer state (GiB, float32 weights)")
    ax.set_title("Optimizer state counted from built optimizers' variables")
    ax.set_ylim(0, max(results[m][0]["adam"] for m in models) / GIB * 1.25)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def measure_rss(batch_tokens, length, vocab, hparams_set):
    """{name: probe result} for the model-only baseline and every optimizer."""
    results = {}
    for name in [roster.MODEL_ONLY] + roster.names(with_tf_ops=True):
        print(f"  peak RSS: {name} ...", flush=True)
        results[name] = rss_probe.run_probe(
            name, hparams_set=hparams_set, vocab=vocab, batch_tokens=batch_tokens, length=length
        )
    return results


def _in_table_order(probes):
    """`probes` ordered as the tables are (a reloaded JSON file has its keys sorted)."""
    order = [roster.MODEL_ONLY] + roster.names(with_tf_ops=True)
    return {name: probes[name] for name in order if name in probes}


def rss_table(probes):
    probes = _in_table_order(probes)
    base = probes[roster.MODEL_ONLY]
    adam_extra = probes["adam"]["peak_rss"] - base["peak_rss"] if probes.get("adam") else None
    rows = []
    for name, probe in probes.items():
        if probe is None:
            rows.append([roster.label(name), "failed", "", "", "", "", ""])
            continue
        extra = probe["peak_rss"] - base["peak_rss"]
        is_base = name == roster.MODEL_ONLY
        rows.append(
            [
                roster.label(name),
                _format_size(probe["state_bytes"]),
                f"{probe['peak_rss'] / GIB:.2f} GiB",
                "" if is_base else f"{extra / GIB:+.2f} GiB",
                "" if is_base or not adam_extra else f"{extra / adam_extra:.2f}",
                f"{probe['first_step_seconds']:.0f}",
                probe["sm3_path"] or "",
            ]
        )
    return docs_output.format_table(
        ["optimizer", "state", "peak RSS", "over model only", "x Adam's", "1st step s", "SM3 path"],
        rows,
        "lrrrrrl",
    )


def plot_rss(probes, path):
    """Stacked bars: model-only peak, then the optimizer's state (solid, in the optimizer's colour),
    then its other step transients (hatched, same colour)."""
    plt = docs_output.pyplot()
    probes = _in_table_order(probes)
    base = probes[roster.MODEL_ONLY]["peak_rss"] / GIB
    names = [n for n in probes if probes[n] is not None]
    fig, ax = plt.subplots(figsize=(9, 5.4))
    for i, name in enumerate(names):
        probe = probes[name]
        total = probe["peak_rss"] / GIB
        state = min(probe["state_bytes"] / GIB, max(total - base, 0))
        color = roster.color(name)
        ax.barh(i, base, color="0.85", label="model-only step peak" if i == 0 else None)
        ax.barh(i, state, left=base, color=color)
        ax.barh(
            i,
            max(total - base - state, 0),
            left=base + state,
            color=color,
            alpha=0.35,
            hatch="///",
            edgecolor=color,
        )
        ax.annotate(
            f"{total:.2f} GiB",
            (max(total, base), i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([roster.label(n) for n in names])
    ax.invert_yaxis()
    first = probes[names[0]]
    ax.set_xlabel("peak resident memory of the process (GiB)")
    ax.set_title(
        f"One training step of {first['hparams_set']} ({first['params'] / 1e6:.0f}M params), "
        f"{first['batch_tokens']} tokens, CPU"
    )
    ax.set_xlim(0, max(p["peak_rss"] for p in probes.values() if p) / GIB * 1.18)
    from matplotlib.patches import Patch

    legend = [
        Patch(color="0.85", label="model-only step peak"),
        Patch(color="0.3", label="optimizer state (solid, the optimizer's colour)"),
        Patch(
            facecolor="0.3",
            alpha=0.35,
            hatch="///",
            edgecolor="0.3",
            label="other optimizer-step memory (hatched)",
        ),
    ]
    ax.legend(handles=legend, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(batch_tokens=2048, length=64, vocab=32768, skip_rss=False, hparams_set="transformer_big"):
    """Both parts; prints the tables and writes the docs files. Returns the raw results."""
    stopwatch = docs_output.Stopwatch()
    state = {}
    for model, shapes in model_shape_lists(vocab).items():
        print(f"  counting optimizer state on {model} ...", flush=True)
        state[model] = count_state_in_subprocess(shapes)
    plot_state(state, docs_output.figure_path("memory_state"))
    tables = [("Optimizer state, counted from built optimizers' variables:", state_table(state))]
    figures = ["Figures: docs/memory_state.png" + ("" if skip_rss else ", docs/memory_rss.png")]
    raw = {"vocab": vocab, "state": {m: {"bytes": c, "params": p} for m, (c, p) in state.items()}}
    if not skip_rss:
        probes = measure_rss(batch_tokens, length, vocab, hparams_set)
        plot_rss(probes, docs_output.figure_path("memory_rss"))
        tables.append(
            (
                f"Peak RSS of one {hparams_set} training step ({batch_tokens} tokens, "
                f"{length}-token sentences), one process each:",
                rss_table(probes),
            )
        )
        raw["rss"] = probes
    docs_output.publish("memory", "Optimizer memory", tables, raw, stopwatch, figures)
    return raw


def replot():
    """Draws docs/memory_state.png and docs/memory_rss.png again from docs/results/memory.json."""
    raw = docs_output.read_results("memory")
    # The models in the order they were measured (a reloaded JSON file has its keys sorted).
    measured = list(model_shape_lists(raw.get("vocab", 32768)))
    order = [m for m in measured if m in raw["state"]] + sorted(set(raw["state"]) - set(measured))
    state = {}
    for model in order:
        counts = raw["state"][model]["bytes"]
        state[model] = (
            {n: counts[n] for n in roster.names() if n in counts},
            raw["state"][model]["params"],
        )
    plot_state(state, docs_output.figure_path("memory_state"))
    written = ["docs/memory_state.png"]
    if "rss" in raw:
        plot_rss(raw["rss"], docs_output.figure_path("memory_rss"))
        written.append("docs/memory_rss.png")
    print(f"wrote {' and '.join(written)} from docs/results/memory.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batch_tokens",
        type=int,
        default=2048,
        help="tokens per training step in the RSS probes (transformer_big's batch_size hparam)",
    )
    parser.add_argument("--length", type=int, default=64, help="tokens per sentence, both sides")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument(
        "--hparams_set",
        default="transformer_big",
        help="the Transformer whose training step the RSS probes run",
    )
    parser.add_argument("--skip_rss", action="store_true", help="only count the state")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only draw the figures again, from docs/results/memory.json (measures nothing)",
    )
    args = parser.parse_args()
    if args.replot:
        replot()
        return
    run(args.batch_tokens, args.length, args.vocab, args.skip_rss, args.hparams_set)


if __name__ == "__main__":
    main()
