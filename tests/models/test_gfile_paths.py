"""The T2T layer on any `tf.io.gfile` path: `ram://` (per process) stands in for gs://.

One process trains, resumes, evaluates and decodes with `data_dir` and `output_dir` on ram://,
a TSV problem generates its vocabulary and shards there, and an AST scan keeps local-only file
calls (`open`, `os.remove`, `shutil`, ...) out of the package.
"""

import ast
import dataclasses
import pathlib
import uuid

import tensorflow as tf
from t2t_test_support import tiny_options

import sm3_t2t
from sm3_t2t import decoder, evaluation, problems, run_dir, trainer
from sm3_t2t.hparams import basic_params1


def _ram_dir(name):
    path = f"ram://{name}-{uuid.uuid4().hex}"
    tf.io.gfile.makedirs(path)
    return path


def _all_files(root):
    return [
        f"{directory.rstrip('/')}/{name}"
        for directory, _, names in tf.io.gfile.walk(root)
        for name in names
    ]


def _read(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read().decode("utf-8")


def test_train_resume_evaluate_and_decode_on_ram(capsys):
    root = _ram_dir("t2t")
    options = tiny_options(root, eval_steps=1, eval_bleu_samples=4, eval_beam_size=1)
    trainer.train(options)
    run = trainer.train(dataclasses.replace(options, train_steps=4))
    assert "resuming from step 2" in capsys.readouterr().out and run.step == 4
    results = evaluation.evaluate(run)
    assert results["step"] == 4

    run_info, _ = run_dir.read_run_info(options.output_dir)
    assert run_info["data_dir"] == options.data_dir  # a URL is recorded as it is
    trained = decoder.load_trained(options.output_dir)
    assert trained.step == 4
    source, target = f"{root}/source.txt", f"{root}/translations.txt"
    with tf.io.gfile.GFile(source, "w") as f:
        f.write("0 1 1\n1 0\n")
    translations = decoder.translate_texts(
        trained.model, trained.encoders, decoder.read_source_lines(source), beam_size=1
    )
    decoder.write_translations(translations, target)
    assert _read(target).splitlines() == translations

    files = _all_files(root)
    names = {path.rsplit("/", 1)[1] for path in files}
    assert {"run_info.json", "hparams.json", "checkpoint", "eval_results.json"} <= names
    assert "model.ckpt-4.index" in names
    assert any("/run/train/" in path and "tfevents" in path for path in files)
    assert any("/run/eval/" in path and "tfevents" in path for path in files)
    assert any(name.startswith("algorithmic_reverse_binary40-train-") for name in names)
    assert not [name for name in names if ".tmp" in name or "_temp" in name]


def test_a_tsv_problem_generates_its_vocabulary_and_shards_on_ram():
    tmp_dir, data_dir = _ram_dir("tsv-raw"), _ram_dir("tsv-data")
    words = ["red", "green", "blue", "house", "tree", "river", "stone", "light", "night", "day"]
    french = ["rouge", "vert", "bleu", "maison", "arbre", "rivière", "pierre", "lumière", "nuit"]
    for split, size in (("train", 300), ("valid", 20), ("test", 20)):
        lines = [
            f"{words[i % 10]} {words[(i * 7) % 10]}\t{french[i % 9]} {french[(i * 5) % 9]}\n"
            for i in range(size)
        ]
        with tf.io.gfile.GFile(f"{tmp_dir}/{split}.tsv", "w") as f:
            f.write("\ufeff" + "".join(lines))
    problem = sm3_t2t.registry.problem("translate_tsv")
    problem.approx_vocab_size = 300
    problem.generate_data(data_dir, tmp_dir)

    assert tf.io.gfile.exists(f"{data_dir}/{problem.vocab_filename}")
    pairs = problem.text_pairs(problems.TEST, data_dir)
    assert pairs[0] == ("red red", "rouge rouge")  # the BOM is not part of the first sentence
    batch = next(iter(problem.dataset(problems.TRAIN, data_dir, basic_params1())))
    assert batch["inputs"].shape[0] > 0


# Local-only calls that would fail on gs://; the package reaches files through tf.io.gfile.
_LOCAL_ONLY = {
    ("open",),
    ("os", "remove"),
    ("os", "replace"),
    ("os", "rename"),
    ("os", "makedirs"),
    ("os", "mkdir"),
    ("os", "listdir"),
    ("os", "walk"),
    ("os", "stat"),
    ("os", "path", "exists"),
    ("os", "path", "isfile"),
    ("os", "path", "isdir"),
    ("os", "path", "getsize"),
    ("shutil",),
    ("glob",),
    ("gzip", "open"),
}
# usr_dir imports Python code, which only a local directory can hold.
_ALLOWED_FILES = {"usr_dir.py"}


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def test_the_package_uses_no_local_only_file_calls():
    package = pathlib.Path(sm3_t2t.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name in _ALLOWED_FILES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                if any(name[: len(bad)] == bad for bad in _LOCAL_ONLY):
                    found.append(f"{path.relative_to(package)}:{node.lineno}: {'.'.join(name)}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [alias.name for alias in node.names] + [getattr(node, "module", "")]
                if {"shutil", "glob"} & set(modules):
                    found.append(f"{path.relative_to(package)}:{node.lineno}: import {modules}")
    assert found == []
