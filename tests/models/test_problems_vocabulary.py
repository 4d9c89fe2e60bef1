"""Tests of the encoders problems use: reserved ids, EOS/PAD handling, lossless round trips."""

import io
import os

import pytest
import sentencepiece

from sm3_t2t import problems
from sm3_t2t.vocabulary import SentencePieceEncoder, SymbolEncoder, train_sentencepiece

SENTENCES = [
    f"The {colour} unit moves {count} hexes north."
    for colour in ("red", "blue", "green", "white")
    for count in ("one", "two", "three")
] * 20


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = os.path.join(tmp_path_factory.mktemp("vocab"), "test.model")
    return train_sentencepiece(SENTENCES, path, vocab_size=320)


def test_reserved_ids_match_t2t():
    assert (problems.PAD_ID, problems.EOS_ID) == (0, 1)


def test_training_writes_the_model_and_nothing_else(encoder):
    directory = os.path.dirname(encoder.model_path)
    assert os.listdir(directory) == ["test.model"]  # the .tmp was renamed away
    assert 259 < encoder.vocab_size <= 320  # 3 reserved + 256 byte ids + learned pieces


def test_round_trip_is_lossless_even_for_unseen_characters(encoder):
    for text in SENTENCES[:3] + ["Ünïcødé «quotes» 漢字 🙂", "x"]:
        ids = encoder.encode(text)
        assert ids and problems.PAD_ID not in ids and problems.EOS_ID not in ids
        assert encoder.decode(ids) == text
    assert encoder.decode(encoder.encode("  two   spaces ")) == "two spaces"  # folded
    assert encoder.encode_batch(SENTENCES[:2]) == [encoder.encode(t) for t in SENTENCES[:2]]


def test_decode_stops_at_eos_and_skips_pad(encoder):
    first, second = encoder.encode("red unit"), encoder.encode("blue")
    ids = [problems.PAD_ID] + first + [problems.PAD_ID, problems.EOS_ID] + second
    assert encoder.decode(ids) == "red unit"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        encoder.decode([encoder.vocab_size])


def test_fingerprint_identifies_the_model_file(encoder, tmp_path):
    other = train_sentencepiece(
        SENTENCES[:60] + ["completely different words"] * 10,
        str(tmp_path / "other.model"),
        vocab_size=300,
    )
    assert encoder.fingerprint() == SentencePieceEncoder(encoder.model_path).fingerprint()
    assert encoder.fingerprint() != other.fingerprint()


def test_bad_model_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.model does not exist"):
        SentencePieceEncoder(str(tmp_path / "missing.model"))
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a sentencepiece model")
    with pytest.raises(ValueError, match="garbage.model is not a sentencepiece model"):
        SentencePieceEncoder(str(garbage))
    default_ids = io.BytesIO()  # sentencepiece's own defaults: unk=0, bos=1, eos=2, no pad
    sentencepiece.SentencePieceTrainer.Train(
        sentence_iterator=iter(SENTENCES),
        model_writer=default_ids,
        vocab_size=60,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    foreign = tmp_path / "foreign.model"
    foreign.write_bytes(default_ids.getvalue())
    with pytest.raises(ValueError, match="must reserve pad_id=0 and eos_id=1"):
        SentencePieceEncoder(str(foreign))


def test_symbol_encoder():
    encoder = SymbolEncoder(num_symbols=3)
    assert encoder.vocab_size == 5 and encoder.model_path is None
    assert encoder.encode("2 0 1") == [4, 2, 3]
    assert encoder.decode([4, 2, 0, 3, 1, 4]) == "2 0 1"
    with pytest.raises(ValueError, match="'3' is not a symbol in 0..2"):
        encoder.encode("1 3")
    with pytest.raises(ValueError, match="num_symbols must be positive"):
        SymbolEncoder(0)
