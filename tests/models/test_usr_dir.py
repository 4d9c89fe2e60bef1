"""--t2t_usr_dir: a problem, a model and an hparams set from a package OUTSIDE sm3_t2t.

The package is written to tmp_path. Its model implements `sm3_t2t.model_protocol.Model` without
inheriting anything from sm3_t2t; sm3-trainer trains it a few steps, sm3-decoder decodes with it
(importing the usr dir recorded in the run), both as the installed console scripts.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from sm3_t2t import model_protocol, run_dir, usr_dir

PACKAGE = "sm3_usr_example"
FILES = {
    "__init__.py": """
        # Importing the package registers everything, as T2T's usr dirs do.
        from . import copy_problem, hparams_sets, last_token_model  # noqa: F401
    """,
    "copy_problem.py": """
        from sm3_t2t.problems import algorithmic
        from sm3_t2t.registry import register_problem


        @register_problem
        class UsrCopyTernary(algorithmic.AlgorithmicProblem):
            num_symbols = 3
            train_length = eval_length = 5
            train_size, eval_size = 200, 16

            def transform(self, symbols):
                return list(symbols)
    """,
    "hparams_sets.py": """
        from sm3_t2t.hparams import basic_params1
        from sm3_t2t.registry import register_hparams


        @register_hparams
        def usr_tiny():
            hparams = basic_params1()
            hparams.batch_size = 64
            hparams.learning_rate_warmup_steps = 0
            hparams.add_hparam("label_smoothing", 0.0)  # the trainer's loss reads it
            return hparams
    """,
    "last_token_model.py": """
        import keras
        import tensorflow as tf

        from sm3_t2t.registry import register_model


        @register_model
        class UsrLastToken(keras.Model):
            # Each target token from the previous one and the mean source embedding.

            def __init__(self, hparams, input_vocab_size, target_vocab_size, **kwargs):
                super().__init__(**kwargs)
                self.source_embedding = keras.layers.Embedding(input_vocab_size, 8)
                self.target_embedding = keras.layers.Embedding(target_vocab_size, 8)
                self.output_layer = keras.layers.Dense(target_vocab_size)

            def _logits(self, source, previous):
                return self.output_layer(self.target_embedding(previous) + source)

            def call(self, features, training=False):
                source = tf.reduce_mean(self.source_embedding(features["inputs"]), 1, True)
                previous = tf.pad(features["targets"], [[0, 0], [1, 0]])[:, :-1]
                return self._logits(source, previous)

            def translate(self, inputs, beam_size=4, alpha=0.6, extra_length=50, eos_id=1):
                source = tf.reduce_mean(self.source_embedding(inputs), 1)
                batch, length = tf.shape(inputs)[0], tf.shape(inputs)[1] + extra_length

                def step(i, previous, tokens):
                    token = tf.argmax(self._logits(source, previous), -1, output_type=tf.int64)
                    return i + 1, token, tokens.write(i, token)

                start = (0, tf.zeros([batch], tf.int64), tf.TensorArray(tf.int64, length))
                _, _, tokens = tf.while_loop(lambda i, *_: i < length, step, start)
                return tf.transpose(tokens.stack()), tf.zeros([batch])
    """,
}


def write_usr_dir(root):
    package = root / PACKAGE
    package.mkdir()
    for name, text in FILES.items():
        (package / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return str(package)


def _script(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    assert os.path.exists(path), f"{name} is not installed: run make setup"
    return path


def _run(command, cwd, timeout=300, **kwargs):
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of the usr dir's model on its problem with its hparams set: 4 steps."""
    root = tmp_path_factory.mktemp("usr")
    package = write_usr_dir(root)
    output_dir = str(root / "run")
    result = _run(
        [
            _script("sm3-trainer"),
            f"--t2t_usr_dir={package}",
            "--problem=usr_copy_ternary",
            "--model=usr_last_token",
            "--hparams_set=usr_tiny",
            f"--data_dir={root / 'data'}",
            f"--output_dir={output_dir}",
            "--train_steps=4",
            "--save_checkpoints_steps=2",
            "--eval_bleu_samples=4",
            "--eval_beam_size=1",
        ],
        cwd=root,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root, package, output_dir, result.stdout


def test_trainer_trains_and_evaluates_a_model_from_the_usr_dir(trained):
    _, package, output_dir, stdout = trained
    assert "training usr_last_token/usr_tiny on usr_copy_ternary" in stdout
    assert "BLEU = " in stdout
    with open(os.path.join(output_dir, run_dir.RUN_INFO_FILE)) as f:
        assert json.load(f)["t2t_usr_dir"] == package
    assert sorted(run_dir.checkpoint_steps(output_dir)) == [2, 4]


@pytest.mark.parametrize("pass_flag", [False, True], ids=["recorded", "flag"])
def test_decoder_imports_the_usr_dir_and_decodes(trained, pass_flag):
    root, package, output_dir, _ = trained
    command = [_script("sm3-decoder"), f"--output_dir={output_dir}", "--beam_size=1"]
    if pass_flag:
        command.append(f"--t2t_usr_dir={package}")
    result = _run(command, cwd=root, input="0 1 2\n2 2\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usr_last_token on usr_copy_ternary, step 4" in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    # Built-in symbol vocabulary: every output token is one of the 3 symbols.
    assert all(token in {"0", "1", "2"} for line in lines for token in line.split())


def test_the_example_model_satisfies_the_protocol(tmp_path):
    """`Model` is a runtime-checkable Protocol; the usr dir's class fits it without inheriting."""
    usr_dir.import_usr_dir(write_usr_dir(tmp_path))
    from sm3_t2t import registry

    model = registry.model("usr_last_token")(None, input_vocab_size=5, target_vocab_size=5)
    assert isinstance(model, model_protocol.Model)
    assert model_protocol.missing_members(model) == []
    assert model_protocol.missing_members(object()) == [
        "__call__",
        "translate",
        "trainable_variables",
    ]


def test_a_missing_usr_dir_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="--t2t_usr_dir=.*nowhere"):
        usr_dir.import_usr_dir(str(tmp_path / "nowhere"))


def test_the_recorded_path_is_absolute_with_home_expanded():
    assert usr_dir.absolute_path("~/my_t2t/") == os.path.join(os.path.expanduser("~"), "my_t2t")
    assert usr_dir.absolute_path("") == ""
