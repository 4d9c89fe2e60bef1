"""Bad input and damaged files: clear errors naming the file, and nothing half-written kept."""

import os

import pytest
import tensorflow as tf

from sm3_t2t import problems
from sm3_t2t.hparams import basic_params1
from sm3_t2t.problems import base
from sm3_t2t.problems.algorithmic import AlgorithmicReverseBinary40
from sm3_t2t.problems.translate import TranslateTsv
from sm3_t2t.vocabulary import train_sentencepiece


def write_tsv_dir(directory, train_lines=40, valid_text=None):
    directory.mkdir(exist_ok=True)
    (directory / "train.tsv").write_text(
        "".join(f"hello number {i}\tbonjour numéro {i}\n" for i in range(train_lines)),
        encoding="utf-8",
    )
    (directory / "valid.tsv").write_text(
        valid_text or "good day\tbonne journée\n", encoding="utf-8"
    )
    (directory / "test.tsv").write_text("thank you\tmerci\n", encoding="utf-8")
    return str(directory)


def small_tsv_problem():
    return TranslateTsv(approx_vocab_size=300)


def snapshot(directory):
    return {
        name: os.stat(os.path.join(directory, name)).st_mtime_ns for name in os.listdir(directory)
    }


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"train\.tsv is empty"),
        (
            b"a\tb\nno tab here\n",
            r"train\.tsv:2: expected 'source<TAB>target' \(one tab\), found 0",
        ),
        (b"a\tb\tc\n", r"train\.tsv:1: .* found 2 tabs"),
        (b"a\tb\nc\t \n", r"train\.tsv:2: empty target text"),
        (b"a\tb\n\xff\xfe\tx\n", r"train\.tsv:2: not UTF-8"),
    ],
)
def test_malformed_tsv_names_file_and_line(tmp_path, content, message):
    raw_dir = write_tsv_dir(tmp_path / "raw")
    (tmp_path / "raw" / "train.tsv").write_bytes(content)
    with pytest.raises(problems.DataError, match=message):
        small_tsv_problem().generate_data(str(tmp_path / "data"), raw_dir)
    assert not (tmp_path / "data" / "vocab.translate_tsv.300.model").exists()


def test_missing_inputs_are_named(tmp_path):
    problem = small_tsv_problem()
    with pytest.raises(ValueError, match="pass tmp_dir"):
        problem.generate_data(str(tmp_path / "data"))
    raw_dir = write_tsv_dir(tmp_path / "raw")
    os.remove(os.path.join(raw_dir, "valid.tsv"))
    with pytest.raises(FileNotFoundError, match=r"no eval file in .*valid\.tsv\[\.gz\] or dev"):
        problem.generate_data(str(tmp_path / "data"), raw_dir)
    (tmp_path / "raw" / "dev.tsv.gz").write_bytes(b"\x1f\x8b\x08truncated")
    with pytest.raises(problems.DataError, match=r"dev\.tsv\.gz: cannot read"):
        problem.generate_data(str(tmp_path / "data"), raw_dir)


def test_reading_before_generating(tmp_path):
    hparams = basic_params1()
    with pytest.raises(
        FileNotFoundError,
        match=r"vocab\.translate_tsv\.300\.model .* run "
        r"generate_data first",
    ):
        small_tsv_problem().dataset(problems.TRAIN, str(tmp_path), hparams)
    with pytest.raises(
        problems.MissingDataError,
        match="no complete 'eval' data for problem algorithmic_reverse_binary40",
    ):
        AlgorithmicReverseBinary40().dataset(problems.EVAL, str(tmp_path), hparams)
    with pytest.raises(ValueError, match="mode must be one of"):
        AlgorithmicReverseBinary40().dataset("training", str(tmp_path), hparams)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="max_examples must be positive"):
        AlgorithmicReverseBinary40(max_examples=0)
    with pytest.raises(ValueError, match="approx_vocab_size must be at least 300"):
        TranslateTsv(approx_vocab_size=100)


class InterruptedReverse(AlgorithmicReverseBinary40):
    """Dies (like Ctrl-C) in the middle of writing the eval split while `interrupt` is set."""

    interrupt = True

    def source_text_pairs(self, split, tmp_dir):
        for index, pair in enumerate(super().source_text_pairs(split, tmp_dir)):
            if self.interrupt and split == problems.EVAL and index == 300:
                raise KeyboardInterrupt
            yield pair


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "_ENCODE_CHUNK", 50)  # so that eval records hit the disk first
    data_dir = str(tmp_path)
    problem = InterruptedReverse()
    with pytest.raises(KeyboardInterrupt):
        problem.generate_data(data_dir)
    names = sorted(os.listdir(data_dir))
    assert not [name for name in names if "-eval" in name or ".tmp" in name]
    assert "interrupted_reverse-train.meta.json" in names
    with pytest.raises(problems.MissingDataError, match="run generate_data first"):
        problem.dataset(problems.EVAL, data_dir, basic_params1())
    train_before = snapshot(data_dir)
    problem.interrupt = False
    problem.generate_data(data_dir)  # resumes: train is kept, eval and test are written
    after = snapshot(data_dir)
    assert {name: after[name] for name in train_before} == train_before
    assert len(problem.text_pairs(problems.EVAL, data_dir)) == problem.eval_size


def test_shards_without_metadata_are_regenerated(tmp_path):
    data_dir = str(tmp_path)
    problem = AlgorithmicReverseBinary40()
    problem.generate_data(data_dir)
    os.remove(os.path.join(data_dir, f"{problem.name}-test.meta.json"))  # killed before it
    with pytest.raises(problems.MissingDataError):
        problem.text_pairs(problems.TEST, data_dir)
    problem.generate_data(data_dir)
    assert len(problem.text_pairs(problems.TEST, data_dir)) == problem.eval_size


def test_truncated_shard_is_reported_and_regenerated(tmp_path):
    data_dir = str(tmp_path)
    problem = AlgorithmicReverseBinary40()
    problem.generate_data(data_dir)
    shard = os.path.join(data_dir, f"{problem.name}-train-00000-of-00001")
    with open(shard, "r+b") as shard_file:
        shard_file.truncate(os.path.getsize(shard) // 2)
    with pytest.raises(problems.CorruptShardError, match=f"shard {shard} is .* bytes"):
        problem.dataset(problems.TRAIN, data_dir, basic_params1())
    with pytest.raises(problems.CorruptShardError, match="truncated or modified"):
        problem.text_pairs(problems.TRAIN, data_dir)
    problem.generate_data(data_dir)  # a damaged split is not "complete": it is rewritten
    assert len(problem.text_pairs(problems.TRAIN, data_dir)) == problem.train_size
    os.remove(shard)
    with pytest.raises(problems.CorruptShardError, match=f"shard {shard} is missing"):
        problem.dataset(problems.TRAIN, data_dir, basic_params1())


def test_corrupt_record_is_reported_with_the_file(tmp_path):
    data_dir = str(tmp_path)
    problem = AlgorithmicReverseBinary40()
    problem.generate_data(data_dir)
    shard = os.path.join(data_dir, f"{problem.name}-test-00000-of-00001")
    with open(shard, "r+b") as shard_file:  # same size, flipped payload byte
        shard_file.seek(20)
        byte = shard_file.read(1)
        shard_file.seek(20)
        shard_file.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(problems.CorruptShardError, match=f"shard {shard} is corrupt"):
        base.shards.read_records([shard])
    with pytest.raises(tf.errors.DataLossError):  # tf.data checks record checksums too
        list(problem.dataset(problems.TEST, data_dir, basic_params1()))
    os.remove(os.path.join(data_dir, f"{problem.name}-test.pairs.tsv"))
    with pytest.raises(
        problems.CorruptShardError, match=f"{problem.name}-test.pairs.tsv is missing"
    ):
        problem.text_pairs(problems.TEST, data_dir)


def test_unreadable_metadata_is_named(tmp_path):
    data_dir = str(tmp_path)
    problem = AlgorithmicReverseBinary40()
    problem.generate_data(data_dir)
    meta = os.path.join(data_dir, f"{problem.name}-eval.meta.json")
    with open(meta, "w", encoding="utf-8") as meta_file:
        meta_file.write("{not json")
    with pytest.raises(problems.DataError, match=f"{meta}: unreadable split metadata"):
        problem.dataset(problems.EVAL, data_dir, basic_params1())


def test_vocabulary_that_does_not_match_the_data(tmp_path):
    raw_dir = write_tsv_dir(tmp_path / "raw")
    data_dir = str(tmp_path / "data")
    problem = small_tsv_problem()
    problem.generate_data(data_dir, raw_dir)
    vocab_path = os.path.join(data_dir, problem.vocab_filename)
    train_sentencepiece([f"other text {i} ohne Bezug" for i in range(50)], vocab_path, 300)
    problem = small_tsv_problem()  # a fresh reader, as another process would be
    with pytest.raises(problems.VocabularyMismatchError, match="generate_data again"):
        problem.dataset(problems.TRAIN, data_dir, basic_params1())
    problem.generate_data(data_dir, raw_dir)  # keeps the new vocabulary, re-encodes shards
    assert problem.text_pairs(problems.TEST, data_dir) == [("thank you", "merci")]
    encoder = problem.feature_encoders(data_dir)["targets"]
    assert encoder.model_path == vocab_path
    decoded = [
        encoder.decode(ids)
        for _, ids in base.shards.read_records(
            [os.path.join(data_dir, "translate_tsv-test-00000-of-00001")]
        )
    ]
    assert decoded == ["merci"]


def test_ids_beyond_the_vocabulary_fail_clearly(tmp_path):
    data_dir = str(tmp_path)
    problem = AlgorithmicReverseBinary40()
    problem.generate_data(data_dir)
    problem.num_symbols = 1  # reads binary data with a one-symbol vocabulary (ids 0..2)
    meta = os.path.join(data_dir, f"{problem.name}-eval.meta.json")
    with open(meta, encoding="utf-8") as meta_file:  # pretend the metadata agreed
        text = meta_file.read().replace("symbols:2", "symbols:1")
    with open(meta, "w", encoding="utf-8") as meta_file:
        meta_file.write(text)
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocabulary does not match"):
        list(problem.dataset(problems.EVAL, data_dir, basic_params1()))


def test_empty_split_is_an_error_without_leftovers(tmp_path):
    problem = AlgorithmicReverseBinary40()
    problem.eval_size = 0
    with pytest.raises(problems.DataError, match="split 'eval' has no examples"):
        problem.generate_data(str(tmp_path))
    assert not [name for name in os.listdir(tmp_path) if "-eval" in name]
