"""`Text2TextProblem`: text to text with a shared sentencepiece vocabulary, as T2T's translate."""

import itertools
import os

import tensorflow as tf

from sm3_t2t import run_dir
from sm3_t2t.problems.base import TRAIN, Problem
from sm3_t2t.vocabulary import SentencePieceEncoder, train_sentencepiece


class Text2TextProblem(Problem):
    """A problem whose inputs and targets are text sharing one subword vocabulary.

    The vocabulary is trained with sentencepiece on the training split (both sides) the first
    time `generate_data` runs and saved in data_dir as `vocab.<name>.<size>.model`; later runs
    and readers reuse it.

    Args:
      approx_vocab_size: vocabulary size to aim for (default: the class's); a soft limit.
      max_examples: keep at most this many pairs per split (see `Problem`).
    """

    approx_vocab_size = 2**15
    max_samples_for_vocab = 200_000  # training pairs sentencepiece learns from

    def __init__(self, approx_vocab_size=None, max_examples=None):
        super().__init__(max_examples=max_examples)
        if approx_vocab_size is not None:
            if approx_vocab_size < 300:  # 259 reserved and byte ids plus some characters
                raise ValueError(f"approx_vocab_size must be at least 300, got {approx_vocab_size}")
            self.approx_vocab_size = approx_vocab_size
        self._encoders = {}  # data_dir -> shared encoder dict

    @property
    def vocab_filename(self):
        """File name of the vocabulary inside data_dir."""
        return f"vocab.{self.name}.{self.approx_vocab_size}.model"

    def eval_metrics(self):
        """Loss, token accuracy and BLEU on decoded text."""
        return ["loss", "accuracy", "bleu"]

    def feature_encoders(self, data_dir):
        """The vocabulary saved in data_dir, one object for both inputs and targets."""
        key = run_dir.absolute(data_dir)
        if key not in self._encoders:
            path = os.path.join(data_dir, self.vocab_filename)
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(
                    f"vocabulary {path} of problem {self.name} does not "
                    f"exist; run generate_data first"
                )
            encoder = SentencePieceEncoder(path)
            self._encoders[key] = {"inputs": encoder, "targets": encoder}
        return self._encoders[key]

    def build_vocabulary(self, data_dir, tmp_dir):
        """Loads the vocabulary in data_dir, training it from the training pairs if absent."""
        path = os.path.join(data_dir, self.vocab_filename)
        if not tf.io.gfile.exists(path):
            pairs = itertools.islice(
                self.limited_text_pairs(TRAIN, tmp_dir), self.max_samples_for_vocab
            )
            texts = (text for pair in pairs for text in pair)
            train_sentencepiece(
                texts, path, self.approx_vocab_size, max_sentences=2 * self.max_samples_for_vocab
            )
            self._encoders.pop(run_dir.absolute(data_dir), None)
        return self.feature_encoders(data_dir)["targets"]
