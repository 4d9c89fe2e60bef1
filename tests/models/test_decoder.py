"""Tests of beam search and of sm3-decoder (library helpers and CLI)."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from sm3_t2t import beam_search, decoder, trainer

EOS = 1
VOCAB = 5  # 0 = GO/pad, 1 = EOS, 2..4 = symbols


def _markov_tables(seed, batch):
    """Per-sentence next-token log-prob tables [B, V, V]; never emits id 0."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, VOCAB, VOCAB)) * 2.0
    logits[:, :, 0] = -1e9
    return logits.astype(np.float32)


def _markov_fn(last_ids, position, states):
    del position
    rows = tf.gather(states["table"], last_ids, batch_dims=1)
    return rows, states


def _log_softmax(row):
    row = row.astype(np.float64)
    return row - np.log(np.exp(row - row.max()).sum()) - row.max()


def _best_by_brute_force(table, max_length, alpha):
    """The EOS-ended sequence of at most max_length tokens with best score."""
    best = (-math.inf, None)
    for length in range(1, max_length + 1):
        for body in itertools.product(range(2, VOCAB), repeat=length - 1):
            sequence = list(body) + [EOS]
            previous, log_prob = 0, 0.0
            for token in sequence:
                log_prob += _log_softmax(table[previous])[token]
                previous = token
            score = log_prob / ((5.0 + length) / 6.0) ** alpha
            best = max(best, (score, sequence))
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_wide_beam_finds_the_exact_best_sequence(alpha):
    tables = _markov_tables(seed=int(alpha * 10), batch=3)
    max_length = 4
    ids, scores = beam_search.beam_search(
        _markov_fn,
        initial_ids=tf.zeros([3], tf.int64),
        beam_size=32,
        decode_length=max_length,
        vocab_size=VOCAB,
        alpha=alpha,
        states={"table": tf.constant(tables)},
        eos_id=EOS,
    )
    for b in range(3):
        best_score, best_sequence = _best_by_brute_force(tables[b], max_length, alpha)
        found = ids.numpy()[b, 0].tolist()
        assert found[: len(best_sequence)] == best_sequence
        assert not any(found[len(best_sequence) :])
        assert scores.numpy()[b, 0] == pytest.approx(best_score, abs=1e-4)


def test_beam_of_one_is_greedy():
    table = _markov_tables(seed=7, batch=1)
    ids, _ = beam_search.beam_search(
        _markov_fn,
        tf.zeros([1], tf.int64),
        beam_size=1,
        decode_length=6,
        vocab_size=VOCAB,
        alpha=0.6,
        states={"table": tf.constant(table)},
    )
    expected, previous = [], 0
    while len(expected) < 6:
        previous = int(np.argmax(table[0, previous]))
        expected.append(previous)
        if previous == EOS:
            break
    assert ids.numpy()[0, 0, : len(expected)].tolist() == expected


def test_search_compiles_with_xla():
    tables = tf.constant(_markov_tables(seed=3, batch=2))

    def search(tables):
        return beam_search.beam_search(
            _markov_fn,
            tf.zeros([2], tf.int64),
            beam_size=3,
            decode_length=5,
            vocab_size=VOCAB,
            alpha=0.6,
            states={"table": tables},
        )

    eager_ids, eager_scores = search(tables)
    xla_ids, xla_scores = tf.function(search, jit_compile=True)(tables)
    np.testing.assert_array_equal(eager_ids.numpy(), xla_ids.numpy())
    np.testing.assert_allclose(eager_scores.numpy(), xla_scores.numpy(), rtol=1e-5)


def test_beam_size_must_be_positive():
    with pytest.raises(ValueError, match="beam_size"):
        beam_search.beam_search(_markov_fn, tf.zeros([1], tf.int64), 0, 3, VOCAB, 0.6)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """A few Adam steps of the tiny Transformer on the reversal problem.

    Enough for the model to prefer symbols over EOS, so that translations
    are not all empty.
    """
    root = tmp_path_factory.mktemp("decoder")
    options = trainer.TrainerOptions(
        problem="algorithmic_reverse_binary40",
        hparams_set="transformer_tiny",
        hparams="hidden_size=32,filter_size=64,batch_size=256,"
        "optimizer=adam,learning_rate=0.01,"
        "learning_rate_warmup_steps=0",
        data_dir=str(root / "data"),
        output_dir=str(root / "train"),
        train_steps=12,
        save_checkpoints_steps=12,
        schedule="train",
    )
    run = trainer.train(options)
    return options, run


SOURCES = ["1 0 1 1", "0", "1 1 0 0 1 0 1", "0 0 1"]


def test_load_trained_restores_the_saved_weights(trained_dir):
    options, run = trained_dir
    restored = decoder.load_trained(options.output_dir)
    assert restored.step == 12
    assert restored.run_info["problem"] == options.problem
    assert restored.hparams.hidden_size == 32
    for saved, loaded in zip(run.model.weights, restored.model.weights):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())


@pytest.mark.parametrize("beam_size", [1, 2])
def test_batching_does_not_change_translations(trained_dir, beam_size):
    options, _ = trained_dir
    restored = decoder.load_trained(options.output_dir)
    together = decoder.translate_texts(
        restored.model,
        restored.encoders,
        SOURCES,
        beam_size=beam_size,
        batch_size=3,
        extra_length=4,
    )
    alone = [
        decoder.translate_texts(
            restored.model, restored.encoders, [text], beam_size=beam_size, extra_length=4
        )[0]
        for text in SOURCES
    ]
    assert together == alone
    if beam_size == 1:
        # Each sentence has its own limit: source length (with its EOS)
        # + 4 tokens, EOS included, so at most len(source) + 4 symbols.
        for source, translation in zip(SOURCES, together):
            assert len(translation.split()) <= len(source.split()) + 4
        assert any(together), "translations are all empty: nothing compared"


def test_beam_search_respects_per_sentence_limits():
    tables = tf.constant(_markov_tables(seed=5, batch=2))
    ids, _ = beam_search.beam_search(
        _markov_fn,
        tf.zeros([2], tf.int64),
        beam_size=2,
        decode_length=[2, 5],
        vocab_size=VOCAB,
        alpha=0.6,
        states={"table": tables},
    )
    first = ids.numpy()[0, 0].tolist()
    assert ids.shape[-1] == 5
    assert EOS in first[:2] and not any(first[first.index(EOS) + 1 :])


def test_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_info.json"):
        decoder.load_trained(str(tmp_path))


def test_cli_translates_a_file_like_the_library(trained_dir, tmp_path):
    options, _ = trained_dir
    source_file = tmp_path / "source.txt"
    source_file.write_text("\n".join(SOURCES) + "\n", encoding="utf-8")
    target_file = tmp_path / "translations.txt"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sm3_t2t.decoder",
            f"--output_dir={options.output_dir}",
            "--beam_size=1",
            f"--decode_from_file={source_file}",
            f"--decode_to_file={target_file}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    restored = decoder.load_trained(options.output_dir)
    expected = decoder.translate_texts(restored.model, restored.encoders, SOURCES, beam_size=1)
    assert any(expected)
    assert target_file.read_text(encoding="utf-8").splitlines() == expected


def test_cli_names_an_unknown_model_in_one_line_and_exits_2(tmp_path):
    """A run whose model is not registered (e.g. its usr dir moved away): no traceback."""
    from sm3_t2t import registry, run_dir

    info = {
        "problem": "algorithmic_reverse_binary40",
        "model": "transfomer",
        "hparams_set": "transformer_tiny",
        "data_dir": str(tmp_path),
        "t2t_usr_dir": "",
    }
    run_dir.write_run_info(str(tmp_path), info, registry.hparams_set("transformer_tiny"))
    result = subprocess.run(
        [sys.executable, "-m", "sm3_t2t.decoder", f"--output_dir={tmp_path}"],
        input="0 1\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("sm3-decoder: ")]
    assert "--model=transfomer" in line and "Did you mean: transformer" in line
    assert "Traceback" not in result.stderr
