"""Everything is checked before anything is written, and a refused resume changes nothing.

Bad hparam values are caught by the hparams checks, naming the hparam (not by Keras seconds in);
a resume with another hparams set, an invalid hparam or a mistyped model leaves the run's
description and checkpoints as they were, loadable by the decoder; the run description is
rewritten only when it legitimately changed.
"""

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest
from t2t_test_support import TINY_HPARAMS, tiny_options

from sm3_t2t import checkpoint_recovery, command_line, decoder, run_dir, trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    options = tiny_options(tmp_path_factory.mktemp("validation"))
    trainer.train(options)
    return options


@pytest.fixture
def copy(trained, tmp_path):
    output_dir = str(tmp_path / "run")
    shutil.copytree(trained.output_dir, output_dir)
    return dataclasses.replace(trained, output_dir=output_dir)


def _description(output_dir):
    """The bytes and inode of run_info.json and hparams.json (an inode changes on rewrite)."""
    described = {}
    for name in (run_dir.RUN_INFO_FILE, run_dir.HPARAMS_FILE):
        path = os.path.join(output_dir, name)
        with open(path, "rb") as f:
            described[name] = (f.read(), os.stat(path).st_ino)
    return described


@pytest.mark.parametrize(
    "override, hparam",
    [
        ("hidden_size=0", "hidden_size"),  # Keras: "units=0"
        ("filter_size=-4", "filter_size"),
        ("num_heads=3", "num_heads"),  # does not divide hidden_size=32
        ("relu_dropout=1.5", "relu_dropout"),  # Keras: "rate=1.5"
        ("attention_dropout=-0.1", "attention_dropout"),
        ("label_smoothing=1.0", "label_smoothing"),
        ("norm_epsilon=0.0", "norm_epsilon"),
        ("batch_size=0", "batch_size"),
        ("max_input_seq_length=-1", "max_input_seq_length"),
        ("learning_rate=-0.5", "learning_rate"),
        ("learning_rate=nan", "learning_rate"),
        ("optimizer_sm3_momentum=1.5", "optimizer_sm3_momentum"),
        ("optimizer_sm3_beta2=0.0", "optimizer_sm3_beta2"),
        ("optimizer=adam,optimizer_adam_beta1=1.0", "optimizer_adam_beta1"),
        ("optimizer=sgd", "optimizer"),
    ],
)
def test_bad_hparam_values_are_named_before_anything_is_written(tmp_path, override, hparam):
    overridden = {assignment.split("=")[0] for assignment in override.split(",")}
    kept = [item for item in TINY_HPARAMS.split(",") if item.split("=")[0] not in overridden]
    options = tiny_options(tmp_path, hparams=",".join(kept + [override]))
    with pytest.raises(ValueError, match=rf"hparams?\W+{hparam}\b"):
        trainer.train(options)
    assert os.listdir(tmp_path) == []


def test_bad_flag_values_are_one_line_with_exit_2(tmp_path):
    """absl's own flag errors (an enum, an int) as well as the trainer's checks."""
    for flag, named in [
        ("--schedule=trian", "--schedule"),
        ("--train_steps=many", "--train_steps"),
        ("--eval_alpha=nan", "--eval_alpha"),
        ("--hparams=num_heads=3", "num_heads"),
    ]:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sm3_t2t.trainer",
                "--problem=algorithmic_reverse_binary40",
                "--hparams_set=transformer_tiny",
                f"--data_dir={tmp_path / 'data'}",
                f"--output_dir={tmp_path / 'run'}",
                flag,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == command_line.USAGE_ERROR_EXIT_CODE, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("sm3-trainer:")]
        assert len(lines) == 1 and named in lines[0], result.stderr
        assert "Traceback" not in result.stderr
        assert os.listdir(tmp_path) == []


def test_resuming_with_another_hparams_set_is_refused_and_changes_nothing(copy):
    before = _description(copy.output_dir)
    other = dataclasses.replace(copy, hparams_set="transformer_small", hparams="", train_steps=4)
    with pytest.raises(checkpoint_recovery.CheckpointMismatchError, match="transformer_tiny"):
        trainer.train(other)
    assert _description(copy.output_dir) == before
    assert decoder.load_trained(copy.output_dir).step == 2


def test_resuming_with_an_invalid_hparam_changes_nothing(copy):
    before = _description(copy.output_dir)
    with pytest.raises(ValueError, match="num_heads"):
        trainer.train(
            dataclasses.replace(copy, hparams=TINY_HPARAMS + ",num_heads=3", train_steps=4)
        )
    assert _description(copy.output_dir) == before
    assert decoder.load_trained(copy.output_dir).step == 2


def test_a_mistyped_model_is_not_recorded_and_the_corrected_command_resumes(copy, capsys):
    before = _description(copy.output_dir)
    with pytest.raises(ValueError, match="--model=transfomer"):
        trainer.train(dataclasses.replace(copy, model="transfomer", train_steps=4))
    assert _description(copy.output_dir) == before
    run = trainer.train(dataclasses.replace(copy, train_steps=4))
    assert "resuming from step 2" in capsys.readouterr().out
    assert run.step == 4


def test_the_description_is_rewritten_only_when_it_changed(copy):
    before = _description(copy.output_dir)
    trainer.train(dataclasses.replace(copy, train_steps=3))
    assert _description(copy.output_dir) == before  # same command, same description: untouched

    changed = TINY_HPARAMS + ",learning_rate=0.05"
    trainer.train(dataclasses.replace(copy, hparams=changed, train_steps=4))
    _, saved = run_dir.read_run_info(copy.output_dir)
    assert saved.learning_rate == 0.05


def test_evaluate_without_a_checkpoint_writes_nothing(tmp_path):
    options = tiny_options(tmp_path, schedule="evaluate")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        trainer.train(options)
    assert os.listdir(tmp_path) == []
