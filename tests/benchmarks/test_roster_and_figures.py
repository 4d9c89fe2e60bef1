"""benchmarks: one roster of optimizers with one colour each, figures re-drawn from the saved
results with every optimizer visible, and results that name the code they came from."""

import json
import os
import subprocess

import keras
import numpy as np
import pytest
from matplotlib import colors

from benchmarks import (
    bench_batch_headroom,
    bench_convergence,
    bench_memory,
    docs_output,
    processes,
    rescore_bleu,
    roster,
)
from sm3_t2t import optimizers

RESULTS = ("batch_headroom", "convergence", "memory", "step")


def test_every_optimizer_has_its_own_name_colour_and_marker():
    for field in ("name", "label", "color", "marker"):
        values = [getattr(entry, field) for entry in roster.ENTRIES]
        assert len(set(values)) == len(values), field
    assert roster.MODEL_ONLY_COLOR not in [entry.color for entry in roster.ENTRIES]


def test_every_entry_builds_through_the_public_apis_with_overrides():
    for name in roster.names(with_tf_ops=True):
        optimizer = roster.make(name, learning_rate=0.25)
        assert isinstance(optimizer, keras.optimizers.Optimizer)
        assert float(optimizer.learning_rate) == pytest.approx(0.25)
    assert roster.make("sm3_tf_ops").fused is False
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        roster.make("sgd")


def test_the_convergence_runs_are_the_roster_entries_the_trainer_can_build():
    assert roster.trainer_names() == ["adam", "adagrad", "adafactor", "sm3"]
    assert set(roster.trainer_names()) == set(optimizers.OPTIMIZERS)


class RecordingPyplot:
    """pyplot whose figures stay open after the script closes them, for inspection."""

    def __init__(self):
        self.pyplot = docs_output.pyplot()
        self.figures = []

    def subplots(self, *args, **kwargs):
        figure, axes = self.pyplot.subplots(*args, **kwargs)
        self.figures.append(figure)
        return figure, axes

    def close(self, figure):
        del figure


@pytest.fixture
def figures(monkeypatch, tmp_path):
    """Figures drawn from the committed docs/results JSON, into tmp_path instead of docs/."""
    recorder = RecordingPyplot()
    monkeypatch.setattr(docs_output, "pyplot", lambda: recorder)
    monkeypatch.setattr(docs_output, "figure_path", lambda name: str(tmp_path / f"{name}.png"))
    yield recorder
    for figure in recorder.figures:
        recorder.pyplot.close(figure)


def test_headroom_figure_shows_every_marker_and_clips_its_lines(figures, tmp_path):
    bench_batch_headroom.replot()
    assert (tmp_path / "batch_headroom.png").exists()
    (axes,) = figures.figures[0].axes
    raw = docs_output.read_results("batch_headroom")
    markers, lines = {}, {}
    for line in axes.get_lines():
        label = line.get_label()
        if line.get_linestyle() == "None":
            markers[label] = line
        elif len(line.get_xdata()) == 2 and line.get_xdata()[0] != line.get_xdata()[1]:
            lines.setdefault(line.get_color(), []).append(line)
    for name, points in raw["points"].items():
        label, color = roster.label(name), roster.color(name)
        marker = markers[label]
        assert marker.get_color() == color and marker.get_marker() == roster.entry(name).marker
        batches = sorted(int(b) for b in points)
        (line,) = lines[color]
        # The fitted line spans the measured batches, not down to batch 0.
        assert tuple(line.get_xdata()) == (batches[0], batches[-1])
    # Adagrad and SM3 (f32 momentum) coincide: their markers are shifted apart.
    adagrad, sm3 = (markers[roster.label(n)] for n in ("adagrad", "sm3"))
    assert np.all(np.array(adagrad.get_xdata()) != np.array(sm3.get_xdata()))
    assert adagrad.get_marker() != sm3.get_marker()


def test_convergence_and_memory_figures_use_the_roster_colours(figures, tmp_path):
    bench_convergence.replot("convergence")
    bench_memory.replot()
    assert {p.name for p in tmp_path.iterdir()} == {
        "convergence.png",
        "memory_state.png",
        "memory_rss.png",
    }
    convergence, state, rss = figures.figures
    legend_colors = {}
    for axes in convergence.axes:
        for line in axes.get_lines():
            legend_colors.setdefault(line.get_label().split(" (lr")[0], set()).add(line.get_color())
    for name in roster.trainer_names():
        assert legend_colors[roster.label(name)] == {roster.color(name)}, name
    for container, name in zip(state.axes[0].containers, roster.names()):
        for bar in container:
            assert np.allclose(bar.get_facecolor()[:3], colors.to_rgb(roster.color(name))), name
    # The RSS bars: each optimizer's state segment in its colour.
    rss_colors = {tuple(np.round(p.get_facecolor()[:3], 4)) for p in rss.axes[0].patches}
    for name in roster.names(with_tf_ops=True):
        assert tuple(np.round(colors.to_rgb(roster.color(name)), 4)) in rss_colors, name


@pytest.mark.parametrize("name", RESULTS)
def test_every_results_file_names_its_commit_and_versions(name):
    with open(os.path.join(docs_output.RESULTS_DIR, f"{name}.json"), encoding="utf-8") as f:
        info = json.load(f)[docs_output.PROVENANCE_KEY]
    assert len(info["commit"]) == 40 and info["tensorflow"] and info["keras"]
    with open(os.path.join(docs_output.RESULTS_DIR, f"{name}.md"), encoding="utf-8") as f:
        text = f.read()
    assert info["commit"] in text and f"TensorFlow {info['tensorflow']}" in text


def test_publish_writes_the_commit_and_versions(monkeypatch, tmp_path, capsys):
    import tensorflow as tf

    monkeypatch.setattr(docs_output, "RESULTS_DIR", str(tmp_path))
    docs_output.publish(
        "probe", "Probe", [("caption", "table")], {"value": 1}, docs_output.Stopwatch()
    )
    capsys.readouterr()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=processes.ROOT, capture_output=True, text=True
    ).stdout.strip()
    with open(tmp_path / "probe.json", encoding="utf-8") as f:
        raw = json.load(f)
    assert raw["value"] == 1
    assert raw["provenance"]["commit"] == head
    assert raw["provenance"]["tensorflow"] == tf.__version__
    assert raw["provenance"]["keras"] == keras.__version__
    text = (tmp_path / "probe.md").read_text(encoding="utf-8")
    assert f"commit `{head}`" in text and f"Keras {keras.__version__}" in text
    assert docs_output.read_results("probe") == {"value": 1}


def test_the_step_benchmark_takes_its_optimizers_from_the_roster():
    from benchmarks import bench_step, torch_adam_worker

    # PyTorch's Adam has its roster entry (label, colour, marker) but no Keras constructor.
    assert torch_adam_worker.NAME in roster.names(external=True)
    assert torch_adam_worker.NAME not in roster.names(with_tf_ops=True)
    with pytest.raises(ValueError, match="not a Keras optimizer"):
        roster.make(torch_adam_worker.NAME)
    for name, spec in bench_step.TF_CONTENDERS.items():
        optimizer = spec.make()
        assert optimizer is not roster.make(spec.entry), name  # a fresh one each time
        assert type(optimizer) is type(roster.make(spec.entry)), name
    assert bench_step.TF_CONTENDERS["sm3_xla"].jit_compile
    assert bench_step.TF_CONTENDERS["sm3_bf16"].make().momentum_dtype == "bfloat16"
    assert set(bench_step.DEFAULT_CONTENDERS) <= set(bench_step.CONTENDERS)


def test_the_step_table_compares_each_step_with_the_bare_loop_of_its_streams():
    from benchmarks import bench_step

    # 1e6 parameters; r1w2's faster variant takes 0.4 ns per element, r1w1's 0.25, Adam's 0.5.
    workload = dict(
        params=1_000_000,
        probe_gbps={"r1w2": 50.0, "r1w2+skew": 40.0, "r1w1": 48.0, "r1w3": 56.0},
        probe_ns_per_element={"r1w2": 0.4, "r1w2+skew": 0.5, "r1w1": 0.25, "r1w3": 0.5},
        results=[
            dict(contender="torch_adam", probe_mix="adam", median_s=0.6e-3),
            dict(contender="sm3", probe_mix="r1w2", median_s=0.44e-3),
            dict(contender="sm3_bf16", probe_mix=None, median_s=0.35e-3),
        ],
    )
    assert bench_step.own_loop_s(workload, "r1w2") == pytest.approx(0.4e-3)
    assert bench_step.own_loop_s(workload, "r1w1") == pytest.approx(0.25e-3)
    assert bench_step.own_loop_s(workload, "adam") is None  # the probe did not run that mix
    assert bench_step.own_loop_s(workload, None) is None
    note = bench_step.floor_note(workload)
    assert "r1w2 (float32 buffer) 0.67 (target 0.80)" in note  # 0.4 / 0.6
    assert "r1w1 (no momentum) 0.42 (target 0.50)" in note  # 0.25 / 0.6
    assert "x torch_adam" in note


def test_the_step_ab_names_a_negative_live_tensor(capsys):
    from benchmarks import bench_fused_ab

    with pytest.raises(SystemExit):
        bench_fused_ab.parse_args(["--live-mib", "-1"])
    assert "--live-mib must be 0 or more, got -1" in capsys.readouterr().err


def test_the_torch_worker_refuses_work_before_its_hello():
    import io

    from benchmarks import torch_adam_worker

    replies = io.StringIO()
    requests = io.StringIO('{"cmd": "step"}\n{"cmd": "quit"}\n{"cmd": "step"}\n')
    torch_adam_worker.serve(requests, replies)  # answers without importing torch
    assert [json.loads(line) for line in replies.getvalue().splitlines()] == [
        {"error": "'step' before a successful hello"}
    ]


def test_convergence_trains_the_sm3_momentum_variants_through_hparams():
    assert bench_convergence.convergence_names() == [
        "adam",
        "adagrad",
        "adafactor",
        "sm3",
        "sm3_bf16",
        "sm3_nomom",
    ]
    assert bench_convergence.trainer_settings("adam") == ("adam", "")
    optimizer, overrides = bench_convergence.trainer_settings("sm3_bf16")
    hparams = registry_set("transformer_small", f"optimizer={optimizer},{overrides}")
    assert (
        optimizers.make_optimizer(hparams).momentum_dtype == roster.make("sm3_bf16").momentum_dtype
    )
    optimizer, overrides = bench_convergence.trainer_settings("sm3_nomom")
    hparams = registry_set("transformer_small", f"optimizer={optimizer},{overrides}")
    assert optimizers.make_optimizer(hparams).momentum == roster.make("sm3_nomom").momentum == 0.0


def registry_set(name, overrides):
    from sm3_t2t import registry, transformer_hparams  # noqa: F401  (registers the sets)

    hparams = registry.hparams_set(name)
    hparams.parse(overrides)
    return hparams


@pytest.mark.parametrize(
    "flag, named",
    [
        ("--grid=sm3=0.1:x", "--grid"),
        ("--grid=sm4=0.1", "--grid"),
        ("--grid=adam=-1", "--grid"),
        ("--rates=sm3=0.1:0.2", "--rates"),
        ("--seeds=1,x", "--seeds"),
        ("--train_steps=0", "--train_steps"),
        ("--parallel=0", "--parallel"),
    ],
)
def test_convergence_names_a_bad_flag_before_it_runs_anything(flag, named, capsys):
    with pytest.raises(SystemExit):
        bench_convergence.parse_args([flag])
    assert named in capsys.readouterr().err


def test_convergence_flags_parse_to_rates_and_seeds():
    args = bench_convergence.parse_args(["--rates=sm3=0.001,adam=0.0005", "--seeds=1"])
    assert (args.rates, args.optimizers, args.seeds) == (
        {"sm3": 0.001, "adam": 0.0005},
        ["sm3", "adam"],
        [1],
    )
    args = bench_convergence.parse_args(["--grid=sm3=0.1:0.3"])
    assert args.grid == {**bench_convergence.LEARNING_RATES, "sm3": (0.1, 0.3)}
    assert args.seeds == [1, 2] and args.rates == {}


@pytest.mark.parametrize("text", ["", '{"sweep": {'])
def test_replot_names_an_empty_or_damaged_results_file(text, monkeypatch, tmp_path):
    monkeypatch.setattr(docs_output, "RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(docs_output, "figure_path", lambda name: str(tmp_path / f"{name}.png"))
    (tmp_path / "convergence.json").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="convergence.json is empty or damaged"):
        bench_convergence.replot("convergence")
    assert not (tmp_path / "convergence.png").exists()


def test_rescore_names_a_bad_run_dir_or_sample_size(tmp_path, capsys):
    with pytest.raises(SystemExit):
        rescore_bleu.parse_args([str(tmp_path)])
    assert f"{tmp_path} is not a trainer run" in capsys.readouterr().err
    (tmp_path / "run_info.json").write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit):
        rescore_bleu.parse_args([str(tmp_path), "--samples=0"])
    assert "--samples: must be >= 1" in capsys.readouterr().err
    assert rescore_bleu.parse_args([str(tmp_path)]).samples == 100


@pytest.mark.parametrize("name", ["convergence", "step", "memory"])
def test_rescore_refuses_to_overwrite_another_benchmarks_results(name, tmp_path, capsys):
    (tmp_path / "run_info.json").write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit):
        rescore_bleu.parse_args([str(tmp_path), f"--name={name}"])
    assert f"docs/results/{name}.json holds the results of" in capsys.readouterr().err
    assert rescore_bleu.parse_args([str(tmp_path), "--name=convergence_bleu_rescored"])
