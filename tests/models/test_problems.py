"""Every registered problem generates its data and reads it back: text -> ids -> text.

Problems run on small subsets (constructor arguments) so the whole module takes seconds; the
WMT problems read tensorflow-datasets' `wmt14_translate` through `tfds.testing.mock_data`.
Expected text comes from the raw sources, read here independently of the code under test.
"""

import contextlib
import gzip
import json
import os

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import sm3_t2t  # noqa: F401  registers the problems
from sm3_t2t import problems, registry
from sm3_t2t.hparams import basic_params1
from sm3_t2t.problems.algorithmic import AlgorithmicReverseBinary40
from sm3_t2t.problems.translate import (
    TranslateEndeWesnoth,
    TranslateEndeWmt32k,
    TranslateEnfrWesnoth,
    TranslateEnfrWmt32k,
    TranslateTsv,
)

WESNOTH_DIR = os.path.join(
    os.path.dirname(__file__), "..", "..", "models", "sm3_t2t", "data", "wesnoth"
)
SPLIT_FILES = {problems.TRAIN: "train", problems.EVAL: "valid", problems.TEST: "test"}
SUBSET = 120  # pairs per split for the translation problems


def fold(text):
    """Whitespace folding, the only change sentencepiece makes to text."""
    return " ".join(text.split())


def wesnoth_pairs(language, split, limit=None):
    path = os.path.join(WESNOTH_DIR, f"{SPLIT_FILES[split]}.{language}.tsv.gz")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        pairs = [tuple(line.rstrip("\n").split("\t")) for line in lines]
    return pairs[:limit]


def fake_wmt_pairs(language, tfds_split):
    count = {"train": 60, "validation": 7, "test": 9}[tfds_split]
    return [
        (f"English line {i} of the {tfds_split} set.", f"{language} ligne {i} {tfds_split}")
        for i in range(count)
    ]


def fake_wmt_as_dataset(builder, split, **unused_kwargs):
    """Stands in for tfds' reader: known text, one empty pair in train (it must be skipped)."""
    language = builder.builder_config.name.split("-")[0]
    pairs = fake_wmt_pairs(language, str(split))
    if str(split) == "train":
        pairs = pairs[:5] + [("", "")] + pairs[5:]
    english, foreign = zip(*pairs)
    return tf.data.Dataset.from_tensor_slices({"en": list(english), language: list(foreign)})


def tsv_pairs(split):
    count = {problems.TRAIN: 80, problems.EVAL: 6, problems.TEST: 7}[split]
    return [(f"source {split} {i} ünïcode «x»", f"cible  {split} numéro {i}") for i in range(count)]


def case_for(name, tmp_path):
    """(problem, tmp_dir, context, {split: expected raw pairs}) for a registered problem."""
    if name in ("translate_enfr_wesnoth", "translate_ende_wesnoth"):
        problem_class = {"fr": TranslateEnfrWesnoth, "de": TranslateEndeWesnoth}[name[12:14]]
        language = problem_class.target_language
        expected = {split: wesnoth_pairs(language, split, SUBSET) for split in problems.MODES}
        problem = problem_class(approx_vocab_size=700, max_examples=SUBSET)
        return problem, None, contextlib.nullcontext(), expected
    if name in ("translate_enfr_wmt32k", "translate_ende_wmt32k"):
        problem_class = {"fr": TranslateEnfrWmt32k, "de": TranslateEndeWmt32k}[name[12:14]]
        language = problem_class.target_language
        expected = {
            split: fake_wmt_pairs(language, tfds_split)
            for split, tfds_split in problem_class.tfds_splits.items()
        }
        problem = problem_class(approx_vocab_size=300)
        problem.num_train_shards = 3  # 100 mostly empty shards would only slow the test down
        mock = tfds.testing.mock_data(as_dataset_fn=fake_wmt_as_dataset)
        return problem, str(tmp_path / "tfds"), mock, expected
    if name == "translate_tsv":
        raw_dir = tmp_path / "raw"
        raw_dir.mkdir()
        expected = {split: tsv_pairs(split) for split in problems.MODES}
        for split, pairs in expected.items():
            text = "".join(f"{source}\t{target}\n" for source, target in pairs)
            (raw_dir / f"{SPLIT_FILES[split]}.tsv").write_text(text, encoding="utf-8")
        return TranslateTsv(approx_vocab_size=320), str(raw_dir), contextlib.nullcontext(), expected
    if name == "algorithmic_reverse_binary40":
        return AlgorithmicReverseBinary40(), None, contextlib.nullcontext(), None
    raise AssertionError(f"registered problem {name} has no round-trip case in this test")


BUILTIN = [
    "algorithmic_reverse_binary40",
    "translate_ende_wesnoth",
    "translate_ende_wmt32k",
    "translate_enfr_wesnoth",
    "translate_enfr_wmt32k",
    "translate_tsv",
]


def test_every_registered_problem_has_a_case():
    assert registry.list_problems() == BUILTIN


def read_records(data_dir, name, split):
    """(inputs, targets) id lists of a split, parsed here with tf.train.Example."""
    paths = sorted(tf.io.gfile.glob(os.path.join(data_dir, f"{name}-{split}-*-of-*")))
    records = []
    for serialized in tf.data.TFRecordDataset(paths):
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature
        records.append(
            (list(feature["inputs"].int64_list.value), list(feature["targets"].int64_list.value))
        )
    return records


@pytest.fixture(scope="module", params=BUILTIN)
def generated(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(request.param)
    problem, tmp_dir, context, expected = case_for(request.param, tmp_path)
    data_dir = str(tmp_path / "data")
    with context:
        problem.generate_data(data_dir, tmp_dir)
    if expected is None:  # algorithmic: its own (source) pairs are the reference
        expected = {split: list(problem.source_text_pairs(split, None)) for split in problems.MODES}
    return problem, data_dir, expected


def test_records_decode_to_the_source_text(generated):
    problem, data_dir, expected = generated
    encoders = problem.feature_encoders(data_dir)
    assert encoders["inputs"] is encoders["targets"]
    for split in problems.MODES:
        records = read_records(data_dir, problem.name, split)
        for inputs, targets in records:
            for ids in (inputs, targets):  # EOS-terminated, nothing reserved inside
                assert ids[-1] == problems.EOS_ID
                assert problems.EOS_ID not in ids[:-1] and problems.PAD_ID not in ids
        decoded = [
            (encoders["inputs"].decode(i), encoders["targets"].decode(t)) for i, t in records
        ]
        folded = [(fold(source), fold(target)) for source, target in expected[split]]
        if split == problems.TRAIN:  # round-robin over several shards: order differs
            assert sorted(decoded) == sorted(folded)
        else:
            assert decoded == folded


def test_text_pairs_give_raw_eval_text_and_decoded_train_text(generated):
    problem, data_dir, expected = generated
    assert problem.text_pairs(problems.TEST, data_dir) == expected[problems.TEST]
    assert problem.text_pairs(problems.EVAL, data_dir) == expected[problems.EVAL]
    train = problem.text_pairs(problems.TRAIN, data_dir)
    assert sorted(train) == sorted((fold(s), fold(t)) for s, t in expected[problems.TRAIN])


def test_dataset_yields_int64_batches(generated):
    problem, data_dir, _ = generated
    hparams = basic_params1()
    hparams.batch_size = 256
    batch = next(iter(problem.dataset(problems.TRAIN, data_dir, hparams)))
    assert set(batch) == {"inputs", "targets"}
    assert batch["inputs"].dtype == tf.int64 and batch["targets"].dtype == tf.int64
    assert int(tf.reduce_max(batch["targets"])) < problem.vocab_size(data_dir)
    assert "loss" in problem.eval_metrics()


def test_generate_data_is_idempotent(generated):
    problem, data_dir, _ = generated
    before = {
        name: os.stat(os.path.join(data_dir, name)).st_mtime_ns for name in os.listdir(data_dir)
    }
    problem.generate_data(data_dir, None)  # no tmp_dir needed: nothing is regenerated
    after = {
        name: os.stat(os.path.join(data_dir, name)).st_mtime_ns for name in os.listdir(data_dir)
    }
    assert after == before
    assert not [name for name in after if name.endswith(".tmp")]


def test_wmt_reads_english_as_source_and_skips_empty_pairs(tmp_path):
    assert TranslateEnfrWmt32k().approx_vocab_size == 32768
    problem = TranslateEnfrWmt32k()
    assert problem.tfds_name == "wmt14_translate/fr-en"
    with tfds.testing.mock_data(as_dataset_fn=fake_wmt_as_dataset):
        pairs = list(problem.source_text_pairs(problems.TRAIN, str(tmp_path)))
    assert pairs == fake_wmt_pairs("fr", "train")


def test_wmt_with_tfds_random_mock_data(tmp_path):
    """The unmodified tfds mock (random text from the builder's features) also round-trips."""
    problem = TranslateEnfrWmt32k(approx_vocab_size=300)
    problem.num_train_shards = 2
    with tfds.testing.mock_data(num_examples=12):
        problem.generate_data(str(tmp_path / "data"), str(tmp_path / "tfds"))
        source = list(problem.source_text_pairs(problems.TEST, str(tmp_path / "tfds")))
    assert len(source) == 12
    assert problem.text_pairs(problems.TEST, str(tmp_path / "data")) == source


def test_algorithmic_targets_reverse_inputs(tmp_path):
    problem = AlgorithmicReverseBinary40()
    problem.generate_data(str(tmp_path))
    records = read_records(str(tmp_path), problem.name, problems.TRAIN)
    assert len(records) == problem.train_size
    assert all(targets[:-1] == inputs[:-1][::-1] for inputs, targets in records)
    assert {len(inputs) - 1 for inputs, _ in records} == set(range(1, 41))
    assert problem.vocab_size(str(tmp_path)) == 4


def test_embedded_wesnoth_corpus_is_complete():
    counts = {
        (language, split): len(wesnoth_pairs(language, split))
        for language in ("fr", "de")
        for split in problems.MODES
    }
    assert counts == {
        ("fr", "train"): 19020,
        ("fr", "eval"): 1065,
        ("fr", "test"): 1044,
        ("de", "train"): 17510,
        ("de", "eval"): 989,
        ("de", "test"): 981,
    }
    with open(os.path.join(WESNOTH_DIR, "README.md"), encoding="utf-8") as readme:
        assert "GPL-2.0-or-later" in readme.read()
    assert TranslateEnfrWesnoth().approx_vocab_size == 8000


def test_wesnoth_prefers_a_copy_in_tmp_dir(tmp_path):
    (tmp_path / "train.fr.tsv").write_text("one\tun\n", encoding="utf-8")
    problem = TranslateEnfrWesnoth()
    assert list(problem.source_text_pairs(problems.TRAIN, str(tmp_path))) == [("one", "un")]
    assert problem.corpus_dir(str(tmp_path / "elsewhere")).endswith(os.path.join("data", "wesnoth"))


def test_registered_wesnoth_problem_builds_the_full_8k_corpus(tmp_path):
    """The shipped default: embedded corpus, no tmp_dir, an ~8k vocabulary, lossless text."""
    data_dir = str(tmp_path)
    problem = registry.problem("translate_enfr_wesnoth")
    problem.generate_data(data_dir)
    assert problem.vocab_size(data_dir) == 8000
    for split, count in ((problems.TRAIN, 19020), (problems.EVAL, 1065), (problems.TEST, 1044)):
        with open(
            os.path.join(data_dir, f"{problem.name}-{split}.meta.json"), encoding="utf-8"
        ) as meta:
            assert json.load(meta)["num_examples"] == count
    encoder = problem.feature_encoders(data_dir)["targets"]
    decoded = [
        (encoder.decode(i), encoder.decode(t))
        for i, t in read_records(data_dir, problem.name, problems.TEST)
    ]
    assert decoded == [(fold(s), fold(t)) for s, t in wesnoth_pairs("fr", problems.TEST)]
