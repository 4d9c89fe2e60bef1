"""Text <-> token id encoders shared by problems, the trainer and the decoder.

Every encoder reserves PAD_ID and EOS_ID (`sm3_t2t.special_ids`), as T2T does, and offers
`encode(text) -> list[int]` (no EOS), `decode(ids) -> str` (stops at the first EOS, skips
PAD), `vocab_size` and `model_path` (the sentencepiece model file, None for built-in ones).
"""

import hashlib
import io
import os

import sentencepiece

from sm3_t2t.atomic_write import write_atomically
from sm3_t2t.special_ids import EOS_ID, PAD_ID

UNK_ID = 2  # sentencepiece only; byte fallback makes it practically unused


def _ids_before_eos(ids, vocab_size):
    """`ids` as ints, cut at the first EOS, without PAD; out-of-range ids are an error."""
    kept = []
    for token in ids:
        token = int(token)
        if token == EOS_ID:
            break
        if token == PAD_ID:
            continue
        if not 0 <= token < vocab_size:
            raise ValueError(f"token id {token} is outside the vocabulary (size {vocab_size})")
        kept.append(token)
    return kept


class SentencePieceEncoder:
    """A subword vocabulary stored as a sentencepiece model file.

    Args:
      model_path: path of the `.model` file written by `train_sentencepiece`.
    """

    def __init__(self, model_path):
        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"vocabulary file {model_path} does not exist (generate_data trains and writes it)"
            )
        self.model_path = model_path
        with open(model_path, "rb") as model_file:
            model = model_file.read()
        # Fingerprint what was loaded: if the file is replaced later, this encoder still
        # describes (and is checked as) the vocabulary it actually uses.
        self._fingerprint = "sentencepiece:" + hashlib.sha256(model).hexdigest()
        self._processor = sentencepiece.SentencePieceProcessor()
        try:
            self._processor.LoadFromSerializedProto(model)
        except (OSError, RuntimeError) as error:
            raise ValueError(
                f"vocabulary file {model_path} is not a sentencepiece model: {error}"
            ) from error
        if (self._processor.pad_id(), self._processor.eos_id()) != (PAD_ID, EOS_ID):
            raise ValueError(
                f"vocabulary {model_path} must reserve pad_id={PAD_ID} and "
                f"eos_id={EOS_ID}; it has pad_id={self._processor.pad_id()}, "
                f"eos_id={self._processor.eos_id()}"
            )

    @property
    def vocab_size(self):
        """Number of ids, reserved ones included."""
        return self._processor.GetPieceSize()

    def encode(self, text):
        """Token ids of `text`, without EOS."""
        return self._processor.EncodeAsIds(text)

    def encode_batch(self, texts, num_threads=2):
        """Token ids of each text (encoded in C++ threads: the fast path for data generation)."""
        return self._processor.Encode(list(texts), num_threads=num_threads)

    def decode(self, ids):
        """Text of `ids`, stopping at the first EOS and skipping PAD."""
        return self._processor.DecodeIds(_ids_before_eos(ids, self.vocab_size))

    def fingerprint(self):
        """SHA-256 of the loaded model: shards record it to detect a mismatched vocabulary."""
        return self._fingerprint


class _ErrorKeepingIterator:
    """Iterates `texts`, remembering the exception that ended it.

    sentencepiece reports an exception raised by its sentence iterator as a RuntimeError with
    the message flattened; keeping the original lets the caller re-raise the real error.
    """

    def __init__(self, texts):
        self._texts = iter(texts)
        self.error = None

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._texts)
        except StopIteration:
            raise
        except BaseException as error:
            self.error = error
            raise


def train_sentencepiece(texts, model_path, vocab_size, max_sentences=1_000_000, num_threads=2):
    """Trains a unigram sentencepiece model on `texts` and writes it to `model_path` atomically.

    Normalization is the identity and unknown characters fall back to bytes, so
    `decode(encode(text))` gives back `text` up to whitespace folding (the decoder's BLEU is
    computed on real text). `vocab_size` is a soft limit: a corpus too small for it gets a
    smaller vocabulary instead of an error.

    Args:
      texts: iterable of sentences (source and target sides for a shared vocabulary).
      model_path: where to write the model; a crash leaves no file there.
      vocab_size: target number of ids, reserved ones included.
      max_sentences: sentencepiece samples at most this many sentences.
      num_threads: training threads.
    Returns:
      A `SentencePieceEncoder` of the new model.
    """
    model = io.BytesIO()
    source = _ErrorKeepingIterator(texts)
    try:
        sentencepiece.SentencePieceTrainer.Train(
            sentence_iterator=source,
            model_writer=model,
            vocab_size=vocab_size,
            model_type="unigram",
            byte_fallback=True,
            normalization_rule_name="identity",
            pad_id=PAD_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            bos_id=-1,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            hard_vocab_limit=False,
            num_threads=num_threads,
            minloglevel=2,
        )
    except RuntimeError:
        if source.error is not None:
            raise source.error from None  # e.g. a malformed data line, not a sentencepiece bug
        raise
    write_atomically(model_path, model.getvalue())
    return SentencePieceEncoder(model_path)


class SymbolEncoder:
    """Built-in vocabulary of algorithmic problems: text "3 0 1" <-> ids [5, 2, 3].

    Symbols 0..num_symbols-1 are written as decimal numbers separated by spaces; their ids are
    shifted by the two reserved ids, as T2T's TextEncoder does.

    Args:
      num_symbols: size of the alphabet.
    """

    model_path = None

    def __init__(self, num_symbols):
        if num_symbols < 1:
            raise ValueError(f"num_symbols must be positive, got {num_symbols}")
        self.num_symbols = num_symbols

    @property
    def vocab_size(self):
        """Number of ids, reserved ones included."""
        return self.num_symbols + 2

    def encode(self, text):
        """Ids of the space-separated symbols in `text`, without EOS."""
        ids = []
        for word in text.split():
            if not word.isdigit() or int(word) >= self.num_symbols:
                raise ValueError(f"{word!r} is not a symbol in 0..{self.num_symbols - 1}")
            ids.append(int(word) + 2)
        return ids

    def decode(self, ids):
        """Space-separated symbols of `ids`, stopping at the first EOS and skipping PAD."""
        return " ".join(str(token - 2) for token in _ids_before_eos(ids, self.vocab_size))

    def fingerprint(self):
        """Identifies the vocabulary in shard metadata."""
        return f"symbols:{self.num_symbols}"
