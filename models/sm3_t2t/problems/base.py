"""`Problem`: a dataset's generation, vocabulary and tf.data input pipeline, as in T2T.

A subclass supplies text pairs and encoders:

    class MyProblem(Problem):
        def source_text_pairs(self, split, tmp_dir):   # yields (source, target) strings
        def feature_encoders(self, data_dir):          # {"inputs": enc, "targets": enc}

and the base class turns them into EOS-terminated TFRecord shards (`generate_data`), batched
int64 features (`dataset`) and back into text (`text_pairs`).
"""

import itertools
import logging
import os

from sm3_t2t import input_pipeline, registry
from sm3_t2t.problems import shards
from sm3_t2t.special_ids import EOS_ID

TRAIN, EVAL, TEST = "train", "eval", "test"
MODES = (TRAIN, EVAL, TEST)

_ENCODE_CHUNK = 10_000  # pairs encoded per call: amortizes Python overhead, bounds memory
_LOG = logging.getLogger(__name__)


def check_mode(mode):
    """Raises ValueError unless `mode` is one of TRAIN, EVAL, TEST."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _one_line(text):
    # Raw text is stored one pair per line, tab-separated.
    return " ".join(text.replace("\t", " ").splitlines())


class Problem:
    """Base class of all problems.

    Args:
      max_examples: keep at most this many examples per split (a quick subset for tests and
        smoke runs); None keeps all. Changing it does not regenerate existing shards.
    """

    num_train_shards = 1
    shuffle_buffer_size = 4096

    def __init__(self, max_examples=None):
        if max_examples is not None and max_examples < 1:
            raise ValueError(f"max_examples must be positive or None, got {max_examples}")
        self.max_examples = max_examples

    @property
    def name(self):
        """The registered name (T2T's snake_case of the class name when unregistered)."""
        return type(self).__dict__.get(registry.PROBLEM_NAME_ATTRIBUTE) or registry.default_name(
            type(self)
        )

    # --- to be provided by subclasses -------------------------------------------------------

    def source_text_pairs(self, split, tmp_dir):
        """Yields the (source, target) strings of `split` from the raw data in `tmp_dir`."""
        raise NotImplementedError(f"{type(self).__name__} must implement source_text_pairs")

    def feature_encoders(self, data_dir):
        """{"inputs": encoder, "targets": encoder} for data in `data_dir`."""
        raise NotImplementedError(f"{type(self).__name__} must implement feature_encoders")

    def build_vocabulary(self, data_dir, tmp_dir):
        """Creates the vocabulary in `data_dir` if needed; returns the targets encoder."""
        del tmp_dir  # built-in vocabularies need no data
        return self.feature_encoders(data_dir)["targets"]

    def num_shards(self, split):
        """Shard files written for `split`."""
        return self.num_train_shards if split == TRAIN else 1

    def eval_metrics(self):
        """Names of the metrics the trainer reports on evaluation."""
        return ["loss", "accuracy"]

    # --- generation -------------------------------------------------------------------------

    def generate_data(self, data_dir, tmp_dir=None):
        """Writes vocabulary and shards of every split to `data_dir`; complete splits are kept.

        Files appear under temporary names and are renamed when whole, and a split counts as
        generated only once its metadata is written, so an interrupted run is simply resumed.
        """
        os.makedirs(data_dir, exist_ok=True)
        encoder = self.build_vocabulary(data_dir, tmp_dir)
        fingerprint = encoder.fingerprint()
        for split in MODES:
            if shards.is_complete(data_dir, self.name, split, fingerprint):
                _LOG.info("%s: reusing the %s shards in %s", self.name, split, data_dir)
                continue
            _LOG.info("%s: generating the %s split in %s", self.name, split, data_dir)
            self._generate_split(split, data_dir, tmp_dir, encoder, fingerprint)

    def limited_text_pairs(self, split, tmp_dir):
        """`source_text_pairs` on one line each, cut to `max_examples`."""
        pairs = (
            (_one_line(source), _one_line(target))
            for source, target in self.source_text_pairs(split, tmp_dir)
        )
        return itertools.islice(pairs, self.max_examples)

    def _generate_split(self, split, data_dir, tmp_dir, encoder, fingerprint):
        if split == TRAIN:
            examples = self._encoded_examples(split, tmp_dir, encoder, raw_file=None)
            shards.write_split(
                data_dir, self.name, split, examples, self.num_shards(split), fingerprint
            )
            return
        # The decoder scores BLEU on raw text, so the (small) eval/test splits keep a copy.
        raw_name = f"{self.name}-{split}.pairs.tsv"
        raw_path = os.path.join(data_dir, raw_name)
        try:
            with open(raw_path + ".tmp", "w", encoding="utf-8") as raw_file:
                examples = self._encoded_examples(split, tmp_dir, encoder, raw_file)

                def commit_raw_text():
                    raw_file.close()
                    os.replace(raw_path + ".tmp", raw_path)

                shards.write_split(
                    data_dir,
                    self.name,
                    split,
                    examples,
                    self.num_shards(split),
                    fingerprint,
                    [raw_name],
                    before_commit=commit_raw_text,
                )
        finally:
            if os.path.exists(raw_path + ".tmp"):  # failed before the commit
                os.remove(raw_path + ".tmp")

    def _encoded_examples(self, split, tmp_dir, encoder, raw_file):
        """Yields EOS-terminated (input_ids, target_ids), copying the text to `raw_file`."""
        pairs = iter(self.limited_text_pairs(split, tmp_dir))
        encode = getattr(encoder, "encode_batch", None) or (
            lambda texts: [encoder.encode(text) for text in texts]
        )
        while True:
            chunk = list(itertools.islice(pairs, _ENCODE_CHUNK))
            if not chunk:
                return
            sources, targets = zip(*chunk)
            if raw_file is not None:
                raw_file.writelines(f"{source}\t{target}\n" for source, target in chunk)
            for source_ids, target_ids in zip(encode(sources), encode(targets)):
                yield list(source_ids) + [EOS_ID], list(target_ids) + [EOS_ID]

    # --- reading ----------------------------------------------------------------------------

    def vocab_size(self, data_dir):
        """Number of token ids of the (shared) vocabulary in `data_dir`."""
        return self.feature_encoders(data_dir)["targets"].vocab_size

    def _checked_files(self, mode, data_dir):
        check_mode(mode)
        fingerprint = self.feature_encoders(data_dir)["targets"].fingerprint()
        return shards.checked_shard_files(data_dir, self.name, mode, fingerprint)

    def dataset(self, mode, data_dir, hparams, shard_index=0, num_shards=1, seed=None, repeat=None):
        """Batched examples of split `mode` as a tf.data.Dataset.

        Args:
          mode: TRAIN, EVAL or TEST.
          data_dir: where `generate_data` wrote the split.
          hparams: HParams with the data fields of `basic_params1`.
          shard_index, num_shards: this input pipeline's share (tf.distribute's
            input_pipeline_id / num_input_pipelines); the shares are disjoint and cover all.
          seed: shuffling seed; None uses `hparams.seed`.
          repeat: repeat forever; None means only in TRAIN mode.
        Returns:
          Dicts {"inputs": int64 [B, Ls], "targets": int64 [B, Lt]}, 0-padded, each sequence
          ending in EOS. TRAIN shuffles (same seed -> same batches in the same order).
        """
        input_pipeline.check_batching_hparams(hparams)
        files = self._checked_files(mode, data_dir)
        training = mode == TRAIN
        seed = hparams.seed if seed is None else seed
        repeat = training if repeat is None else repeat
        examples = input_pipeline.read_examples(files, training, seed, shard_index, num_shards)
        examples = input_pipeline.check_ids_in_vocabulary(
            examples, self.vocab_size(data_dir), f"{self.name} {mode} data in {data_dir}"
        )
        return input_pipeline.batch_examples(
            examples, hparams, training, seed, repeat, self.shuffle_buffer_size
        )

    def text_pairs(self, mode, data_dir):
        """(source, target) strings of split `mode`, in file order.

        EVAL/TEST give the raw text saved at generation; TRAIN decodes its shards (lossless up
        to whitespace folding; held in memory, so meant for small corpora and tools).
        """
        files = self._checked_files(mode, data_dir)
        raw_path = os.path.join(data_dir, f"{self.name}-{mode}.pairs.tsv")
        if mode != TRAIN and os.path.exists(raw_path):
            with open(raw_path, encoding="utf-8") as raw_file:
                return [tuple(line.rstrip("\n").split("\t")) for line in raw_file]
        encoders = self.feature_encoders(data_dir)
        return [
            (encoders["inputs"].decode(inputs), encoders["targets"].decode(targets))
            for inputs, targets in shards.read_records(files)
        ]
