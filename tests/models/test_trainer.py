"""End-to-end tests of the trainer in-process: train, checkpoint, resume,
evaluate, summaries, and MirroredStrategy on 2 logical CPUs."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from sm3_t2t import decoder, evaluation, run_dir, trainer

TINY = "hidden_size=32,filter_size=64,batch_size=256"


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    return trainer.TrainerOptions(
        problem="algorithmic_reverse_binary40",
        hparams_set="transformer_tiny",
        hparams=TINY,
        data_dir=str(root / "data"),
        output_dir=str(root / "run"),
        train_steps=6,
        save_checkpoints_steps=3,
        log_step_count_steps=3,
        iterations_per_loop=2,
        eval_steps=2,
        eval_bleu_samples=8,
        eval_beam_size=2,
        schedule="train",
    )


@pytest.fixture(scope="module")
def first_run(options):
    """6 SM3 steps, checkpoints at 3 and 6."""
    return trainer.train(options)


def _values(variables):
    return [v.numpy() for v in variables]


def test_writes_checkpoints_and_run_info(options, first_run):
    assert first_run.step == 6
    out = options.output_dir
    # T2T's checkpoint names, which its tools glob as model.ckpt-*.
    assert tf.train.latest_checkpoint(out).endswith("model.ckpt-6")
    assert os.path.exists(os.path.join(out, "model.ckpt-3.index"))
    with open(os.path.join(out, run_dir.RUN_INFO_FILE)) as f:
        run_info = json.load(f)
    assert run_info["problem"] == options.problem
    assert run_info["model"] == "transformer"
    assert run_info["t2t_usr_dir"] == ""
    _, saved_hparams = run_dir.read_run_info(out)
    assert saved_hparams.values() == first_run.hparams.values()


def test_writes_loss_summaries(options, first_run):
    del first_run
    events_dir = os.path.join(options.output_dir, "train")
    losses = {}
    for name in os.listdir(events_dir):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(events_dir, name)):
            for value in event.summary.value:
                if value.tag == "loss":
                    losses[event.step] = float(tf.make_ndarray(value.tensor))
    assert sorted(losses) == [3, 6]
    assert all(math.isfinite(loss) for loss in losses.values())


def test_restore_gives_back_model_and_optimizer_state(options, first_run, capsys):
    restored = trainer.train(dataclasses.replace(options, schedule="evaluate"))
    assert "resuming from step 6" in capsys.readouterr().out
    assert restored.step == 6
    for saved, loaded in zip(_values(first_run.model.weights), _values(restored.model.weights)):
        np.testing.assert_array_equal(saved, loaded)
    # SM3's accumulators and momentum, and the iteration count.
    assert len(restored.optimizer.variables) == len(first_run.optimizer.variables)
    for saved, loaded in zip(
        _values(first_run.optimizer.variables), _values(restored.optimizer.variables)
    ):
        np.testing.assert_array_equal(saved, loaded)


def test_rerun_continues_from_the_latest_checkpoint(options, first_run, capsys):
    del first_run
    longer = dataclasses.replace(options, train_steps=8)
    run = trainer.train(longer)
    output = capsys.readouterr().out
    assert "resuming from step 6" in output
    assert "steps 6 -> 8" in output
    assert run.step == 8 and int(run.optimizer.iterations.numpy()) == 8
    assert tf.train.latest_checkpoint(options.output_dir).endswith("model.ckpt-8")


def test_evaluate_reports_loss_accuracy_and_bleu(options, first_run, capsys):
    results = evaluation.evaluate(first_run)
    output = capsys.readouterr().out
    assert math.isfinite(results["loss"]) and results["loss"] > 0
    assert 0.0 <= results["accuracy"] <= 1.0
    assert 0.0 <= results["bleu"] <= 100.0
    assert results["bleu_sentences"] == 8
    assert f"BLEU = {results['bleu']:.2f}" in output
    assert output.count("translation: ") == options.num_samples_to_print
    with open(os.path.join(options.output_dir, "eval_results.json")) as f:
        assert json.load(f) == results


def test_evaluate_takes_bleu_and_samples_evenly_over_the_test_split(
    options, first_run, capsys, monkeypatch
):
    pairs = first_run.problem.text_pairs("test", options.data_dir)
    assert len(pairs) > 3 * options.eval_bleu_samples
    translated = []
    translate_texts = evaluation.decoder.translate_texts

    def recording(model, encoders, texts, **kwargs):
        translated.extend(texts)
        return translate_texts(model, encoders, texts, **kwargs)

    monkeypatch.setattr(evaluation.decoder, "translate_texts", recording)
    evaluation.evaluate(first_run)
    output = capsys.readouterr().out
    n, k = len(pairs), options.eval_bleu_samples
    bleu_sources = translated[:k]
    assert bleu_sources == [pairs[(2 * i + 1) * n // (2 * k)][0] for i in range(k)]
    assert f"({k} of {n} test sentences, evenly spread;" in output
    printed = [
        line.split("source:", 1)[1].strip() for line in output.splitlines() if "source:" in line
    ]
    # The middles of three equal parts, not the split's first lines.
    assert printed == [pairs[n // 6][0], pairs[n // 2][0], pairs[5 * n // 6][0]]
    assert f"test lines {n // 6 + 1}, {n // 2 + 1}, {5 * n // 6 + 1} of {n}" in output


@pytest.mark.parametrize(
    "total, count, expected",
    [(10, 2, [2, 7]), (9, 3, [1, 4, 7]), (3, 5, [0, 1, 2]), (1, 1, [0]), (5, 0, []), (0, 3, [])],
)
def test_spread_indices(total, count, expected):
    assert evaluation.spread_indices(total, count) == expected


def test_memory_report_compares_with_adam(first_run):
    report = evaluation.memory_report(first_run)
    assert "SM3" in report and "Adam" in report


def test_refuses_to_resume_another_problem(options, first_run):
    del first_run
    other = dataclasses.replace(options, problem="translate_enfr_wesnoth")
    with pytest.raises(ValueError, match="algorithmic_reverse_binary40"):
        trainer.train(other)


def test_mirrored_strategy_on_two_logical_cpus(options, first_run, mirrored_strategy):
    """Two replicas train in lock-step: mirrored copies stay identical.

    The session's one MirroredStrategy is passed in: a second strategy in the same process would
    reuse collective keys (see tests/conftest.py); `make_strategy("mirrored")` is what it holds.
    """
    del first_run  # reuses the generated data
    assert len(tf.config.list_logical_devices("CPU")) == 2
    mirrored = dataclasses.replace(
        options, strategy="mirrored", train_steps=3, output_dir=options.output_dir + "_mirrored"
    )
    run = trainer.train(mirrored, strategy=mirrored_strategy)
    assert run.strategy.num_replicas_in_sync == 2
    assert run.step == 3
    for variable in run.model.trainable_variables:
        first, second = run.strategy.experimental_local_results(variable.value)
        np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert tf.train.latest_checkpoint(mirrored.output_dir).endswith("model.ckpt-3")


def test_xla_training_with_fixed_shapes(options, first_run):
    """--xla compiles the SM3 step with XLA on fixed-shape batches."""
    del first_run  # reuses the generated data
    compiled = dataclasses.replace(
        options,
        xla=True,
        train_steps=2,
        save_checkpoints_steps=2,
        hparams=TINY + ",max_length=48",
        output_dir=options.output_dir + "_xla",
    )
    run = trainer.train(compiled)
    assert run.hparams.fixed_shapes
    assert run.step == 2
    assert tf.train.latest_checkpoint(compiled.output_dir).endswith("model.ckpt-2")


def test_a_run_with_the_old_ckpt_names_resumes_and_goes_on_as_model_ckpt(
    options, tmp_path, capsys, monkeypatch
):
    """Runs from before the rename hold `ckpt-N`, listed in their state file: they resume."""
    old = dataclasses.replace(
        options, output_dir=str(tmp_path / "old"), train_steps=2, save_checkpoints_steps=2
    )
    with monkeypatch.context() as patch:
        # The trainer as it was: CheckpointManager's default name.
        patch.setattr(run_dir, "CHECKPOINT_NAME", "ckpt")
        trainer.train(old)
    assert tf.train.latest_checkpoint(old.output_dir).endswith("/ckpt-2")
    capsys.readouterr()

    run = trainer.train(dataclasses.replace(old, train_steps=4))
    assert "resuming from step 2" in capsys.readouterr().out
    assert run.step == 4 and int(run.optimizer.iterations.numpy()) == 4
    steps = run_dir.checkpoint_steps(old.output_dir)
    assert [os.path.basename(steps[2]), os.path.basename(steps[4])] == ["ckpt-2", "model.ckpt-4"]
    assert decoder.load_trained(old.output_dir, checkpoint_path=steps[2]).step == 2
    assert decoder.load_trained(old.output_dir).step == 4
