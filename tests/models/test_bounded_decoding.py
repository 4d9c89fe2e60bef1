"""Evaluation and decoding are bounded, and sm3-decoder checks its input and flags up front.

One overlong line is truncated (decoding, BLEU) or left out (test loss) and reported, and batches
are built by token budget, so it costs no more than its own share; input that is not UTF-8 is
reported with file and line before the model loads; output is UTF-8 whatever the locale.
"""

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from t2t_test_support import tiny_options

from sm3_t2t import decoder, evaluation, registry, trainer
from sm3_t2t.problems import DataError
from sm3_t2t.problems.tsv import read_tsv_pairs

LONG_LINE = " ".join("01"[i % 2] for i in range(10_000))  # 10,001 tokens with its EOS


# A --t2t_usr_dir package, so that sm3-decoder (another process) finds the problem too.
USR_PROBLEM = textwrap.dedent(
    """
    from sm3_t2t.problems import TEST
    from sm3_t2t.problems.algorithmic import AlgorithmicReverseBinary40
    from sm3_t2t.registry import register_problem

    LONG_LINE = " ".join("01"[i % 2] for i in range(10_000))


    @register_problem
    class ReverseWithOneOverlongTestLine(AlgorithmicReverseBinary40):
        # The reversal problem, small, whose test split ends with a 10,000-symbol pair.

        train_size, eval_size = 400, 12

        def source_text_pairs(self, split, tmp_dir):
            yield from super().source_text_pairs(split, tmp_dir)
            if split == TEST:
                yield LONG_LINE, LONG_LINE[::-1]
    """
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded")
    package = root / "overlong_test_line_problem"
    package.mkdir()
    (package / "__init__.py").write_text(USR_PROBLEM, encoding="utf-8")
    options = tiny_options(
        root,
        problem="reverse_with_one_overlong_test_line",
        t2t_usr_dir=str(package),
        eval_bleu_samples=0,
        eval_beam_size=1,
    )
    yield trainer.train(options)
    # The package registered its problem in this process; other tests list the built-in ones.
    registry.PROBLEMS.unregister(options.problem)


def test_evaluation_leaves_out_and_truncates_an_overlong_test_line(run, capsys):
    results = evaluation.evaluate(run)
    out = capsys.readouterr().out
    assert results["loss_examples_left_out"] == 1
    assert results["bleu_sources_truncated"] == 1
    assert results["bleu_sentences"] == 13  # all test pairs are translated, the long one cut
    assert "13 (10001 tokens)" in out and "truncated to it" in out
    with open(os.path.join(run.options.output_dir, "eval_results.json")) as f:
        assert json.load(f) == results


def test_batches_are_built_by_token_budget():
    lengths = [5] * 100 + [64] + [5] * 20
    batches = decoder.length_batches(lengths, batch_size=32, batch_tokens=256)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 32
        assert len(batch) * max(lengths[i] for i in batch) <= 256
    (outlier_batch,) = [batch for batch in batches if 100 in batch]
    assert len(outlier_batch) <= 256 // 64
    # One input longer than the budget still gets a batch of its own.
    assert decoder.length_batches([300, 3], 32, 256) == [[1], [0]]


def _decoder(output_dir, *flags, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "sm3_t2t.decoder", f"--output_dir={output_dir}", *flags],
        capture_output=True,
        timeout=600,
        **kwargs,
    )


def test_the_decoder_truncates_and_reports_an_overlong_line(run, tmp_path):
    source = tmp_path / "source.txt"
    lines = ["0 1 1", "1 0"] * 10 + [LONG_LINE]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "out" / "translations.txt"
    target.parent.mkdir()
    result = _decoder(
        run.options.output_dir,
        "--beam_size=1",
        f"--decode_from_file={source}",
        f"--decode_to_file={target}",
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-3000:]
    assert "1 of 21 inputs are longer than 64 tokens" in stderr and "21 (10001 tokens)" in stderr
    assert len(target.read_text(encoding="utf-8").splitlines()) == 21


@pytest.mark.parametrize(
    "content, where",
    [(b"0 1\n1 \xff 0\n", "source.txt:2"), (b"\xc3\x28\n", "source.txt:1")],
)
def test_non_utf8_input_is_named_with_its_line_before_loading(run, tmp_path, content, where):
    source = tmp_path / "source.txt"
    source.write_bytes(content)
    result = _decoder(run.options.output_dir, f"--decode_from_file={source}")
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("sm3-decoder:")]
    assert where in line and "not UTF-8" in line
    assert "Traceback" not in stderr

    result = _decoder(run.options.output_dir, input=content)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "<stdin>:" + where.split(":")[1] in stderr


@pytest.mark.parametrize(
    "flag, named",
    [("--alpha=nan", "--alpha"), ("--decode_to_file=/no/such/dir/out.txt", "/no/such/dir")],
)
def test_bad_flags_fail_at_once_without_decoding(run, flag, named):
    result = _decoder(run.options.output_dir, flag, input=b"0 1\n")
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("sm3-decoder:")]
    assert named in line
    assert result.stdout == b""


# Under an ASCII-only locale: translations with non-ASCII text still come out, as UTF-8.
ASCII_LOCALE_DECODE = """
import sys
from sm3_t2t import decoder
decoder.translate_texts = lambda model, encoders, texts, **kwargs: ["café über"] * len(texts)
sys.argv = ["sm3-decoder", "--output_dir=" + sys.argv[1]]
decoder.run()
"""


def test_output_is_utf8_under_a_non_utf8_locale(run):
    environment = dict(os.environ, LC_ALL="C", LANG="C", PYTHONIOENCODING="ascii")
    result = subprocess.run(
        [sys.executable, "-c", ASCII_LOCALE_DECODE, run.options.output_dir],
        input=b"0 1\n1\n",
        capture_output=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert result.stdout.decode("utf-8") == "café über\ncafé über\n"


def test_a_utf8_bom_is_not_part_of_the_first_sentence(tmp_path):
    source = tmp_path / "source.txt"
    source.write_bytes("\ufeff0 1\r\n1 0\n".encode())
    assert decoder.read_source_lines(str(source)) == ["0 1", "1 0"]
    tsv = tmp_path / "train.tsv"
    tsv.write_bytes("\ufeffHello\tBonjour\nYes\tOui\n".encode())
    assert list(read_tsv_pairs(str(tsv))) == [("Hello", "Bonjour"), ("Yes", "Oui")]
    with pytest.raises(DataError, match="train.tsv:1"):
        tsv.write_bytes(b"\xffHello\tBonjour\n")
        list(read_tsv_pairs(str(tsv)))


def test_write_translations_writes_bytes_to_stdout(monkeypatch):
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)
    decoder.write_translations(["ça va"])
    assert stdout.buffer.getvalue() == "ça va\n".encode()


def test_translate_texts_rejects_a_non_finite_alpha(run):
    with pytest.raises(ValueError, match="alpha"):
        decoder.translate_texts(run.model, run.encoders, ["0 1"], alpha=float("nan"))


def test_an_input_the_vocabulary_cannot_encode_is_named(run):
    with pytest.raises(DataError, match="input 2: 'hello'"):
        decoder.encode_inputs(run.encoders, ["0 1", "hello 1"])
