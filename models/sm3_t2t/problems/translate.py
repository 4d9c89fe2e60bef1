"""Translation problems: WMT'14 (via tensorflow-datasets), the embedded Wesnoth corpus and a
user's own TSV files. All share one sentencepiece vocabulary between source and target."""

import logging
import os

from sm3_t2t.problems.base import EVAL, TEST, TRAIN
from sm3_t2t.problems.text2text import Text2TextProblem
from sm3_t2t.problems.tsv import find_tsv, read_tsv_pairs
from sm3_t2t.registry import register_problem

WESNOTH_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "wesnoth"
)
_LOG = logging.getLogger(__name__)


@register_problem
class TranslateTsv(Text2TextProblem):
    """Your own parallel text: `train.tsv`, `valid.tsv` (or `dev.tsv`) and `test.tsv` in tmp_dir.

    One `source<TAB>target` pair per line, UTF-8, optionally gzipped (`train.tsv.gz`).
    """

    approx_vocab_size = 8000
    split_stems = {TRAIN: ("train",), EVAL: ("valid", "dev"), TEST: ("test",)}

    def split_file(self, split, tmp_dir):
        """The TSV file of `split` in `tmp_dir`; FileNotFoundError naming what was looked for."""
        if tmp_dir is None:
            raise ValueError(
                f"{self.name} reads train.tsv, valid.tsv and test.tsv from tmp_dir; pass tmp_dir"
            )
        for stem in self.split_stems[split]:
            path = find_tsv(tmp_dir, stem)
            if path:
                return path
        wanted = " or ".join(f"{stem}.tsv[.gz]" for stem in self.split_stems[split])
        raise FileNotFoundError(f"{self.name}: no {split} file in {tmp_dir} (expected {wanted})")

    def source_text_pairs(self, split, tmp_dir):
        """Pairs of the split's TSV file."""
        return read_tsv_pairs(self.split_file(split, tmp_dir))


class TranslateWesnoth(TranslateTsv):
    """English -> `target_language` sentences from The Battle for Wesnoth's translations.

    The corpus ships with this package (data/wesnoth, GPL-2.0-or-later, see its README), so
    nothing needs downloading: with no tmp_dir, or a tmp_dir without `train.<lang>.tsv[.gz]`,
    the embedded copy is read.
    """

    approx_vocab_size = 8000
    num_train_shards = 4
    target_language = None
    split_stems = {TRAIN: ("train",), EVAL: ("valid",), TEST: ("test",)}

    def corpus_dir(self, tmp_dir):
        """tmp_dir if it holds this corpus, else the embedded copy."""
        if tmp_dir and find_tsv(tmp_dir, f"train.{self.target_language}"):
            return tmp_dir
        return WESNOTH_DIR

    def split_file(self, split, tmp_dir):
        """The corpus file `<split>.<lang>.tsv[.gz]`."""
        directory = self.corpus_dir(tmp_dir)
        stem = f"{self.split_stems[split][0]}.{self.target_language}"
        path = find_tsv(directory, stem)
        if path is None:
            raise FileNotFoundError(f"{self.name}: {stem}.tsv[.gz] not found in {directory}")
        return path


@register_problem
class TranslateEnfrWesnoth(TranslateWesnoth):
    """Wesnoth English -> French, ~19k training pairs, 8k shared vocabulary."""

    target_language = "fr"


@register_problem
class TranslateEndeWesnoth(TranslateWesnoth):
    """Wesnoth English -> German, ~17.5k training pairs, 8k shared vocabulary."""

    target_language = "de"


class TranslateWmt14(Text2TextProblem):
    """WMT'14 English -> `target_language` read through tensorflow-datasets.

    tmp_dir is the tfds data_dir: a prepared `wmt14_translate` there is used as is, otherwise
    tfds downloads and prepares it (large; needs internet). None means tfds' default directory.
    Splits: train, validation (newstest2013) as EVAL, test (newstest2014) as TEST.
    """

    approx_vocab_size = 2**15
    num_train_shards = 100
    target_language = None
    tfds_splits = {TRAIN: "train", EVAL: "validation", TEST: "test"}

    @property
    def tfds_name(self):
        """The tfds builder, e.g. `wmt14_translate/fr-en`."""
        return f"wmt14_translate/{self.target_language}-en"

    def source_text_pairs(self, split, tmp_dir):
        """(English, target) strings of the split, in tfds order; empty pairs are skipped."""
        import tensorflow_datasets as tfds  # heavy import, only needed for this problem

        builder = tfds.builder(self.tfds_name, data_dir=tmp_dir)
        builder.download_and_prepare()  # a no-op once prepared
        dataset = builder.as_dataset(split=self.tfds_splits[split], shuffle_files=False)
        skipped = 0
        for example in dataset.as_numpy_iterator():
            source = example["en"].decode("utf-8").strip()
            target = example[self.target_language].decode("utf-8").strip()
            if source and target:
                yield source, target
            else:
                skipped += 1
        if skipped:
            _LOG.warning("%s: skipped %d %s pairs with an empty side", self.name, skipped, split)


@register_problem
class TranslateEnfrWmt32k(TranslateWmt14):
    """WMT'14 English -> French (~40M pairs), 32k shared vocabulary, as in the SM3 paper."""

    target_language = "fr"


@register_problem
class TranslateEndeWmt32k(TranslateWmt14):
    """WMT'14 English -> German (~4.5M pairs), 32k shared vocabulary, as in the SM3 paper."""

    target_language = "de"
