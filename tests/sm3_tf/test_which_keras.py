"""`sm3_tf.SM3` is the Keras 2 or the Keras 3 optimizer as `tf.keras` is; both take the same
arguments; an unsupported or missing Keras behind `tf.keras` is an ImportError naming versions."""

import ast
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

import sm3_tf
from sm3_tf import which_keras

REPO = pathlib.Path(__file__).resolve().parents[2]
ROUTES_TF_KERAS = tuple(int(p) for p in tf.version.VERSION.split(".")[:2]) >= (2, 16)


def test_sm3_is_the_optimizer_of_the_keras_behind_tf_keras():
    module = "sm3_tf.keras2" if which_keras.tf_keras_is_keras_2() else "sm3_tf.sm3"
    assert sm3_tf.SM3.__module__ == module
    assert isinstance(sm3_tf.SM3(), tf.keras.optimizers.Optimizer)


@pytest.mark.parametrize(
    "version,supported", [("2.15.0", True), ("2.21.0", True), ("3.15.1", True), ("2.12.0", False)]
)
def test_keras_2_older_than_2_15_is_refused_naming_the_versions(version, supported):
    problem = which_keras.keras_2_problem(version)
    assert (problem is None) == supported
    if not supported:
        assert f"Keras {version}" in problem and "Keras 2.15" in problem
        assert f"TensorFlow {tf.version.VERSION}" in problem


def constructor_arguments(path):
    """The SM3 class's __init__ arguments in the source at `path` (not imported: one Keras per
    process)."""
    tree = ast.parse((REPO / path).read_text())
    (sm3,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "SM3"]
    (init,) = [node for node in sm3.body if getattr(node, "name", "") == "__init__"]
    return [argument.arg for argument in init.args.args[1:]]


def test_both_optimizers_take_the_same_arguments_in_the_same_order():
    keras_3 = constructor_arguments("sm3_tf/sm3.py")
    assert constructor_arguments("sm3_tf/keras2.py") == keras_3 + ["jit_compile"]


def run_import(tmp_path, **env):
    """`import sm3_tf` in a fresh process with TF_USE_LEGACY_KERAS=1 and `env`."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", **env)
    return subprocess.run(
        [sys.executable, "-c", "import sm3_tf"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(not ROUTES_TF_KERAS, reason="TF_USE_LEGACY_KERAS routes tf.keras from 2.16")
@pytest.mark.skipif(importlib.util.find_spec("tf_keras") is not None, reason="tf_keras present")
def test_legacy_keras_without_tf_keras_says_what_to_install(tmp_path):
    result = run_import(tmp_path, PYTHONPATH=str(REPO))
    assert result.returncode != 0
    release = ".".join(tf.version.VERSION.split(".")[:2])
    assert f"pip install 'tf_keras~={release}.0'" in result.stderr
    assert f"TensorFlow {tf.version.VERSION}" in result.stderr


@pytest.mark.skipif(not ROUTES_TF_KERAS, reason="TF_USE_LEGACY_KERAS routes tf.keras from 2.16")
def test_an_old_keras_2_behind_tf_keras_is_refused_naming_the_versions(tmp_path):
    """A stand-in `tf_keras` 2.12 (only what TensorFlow's loader and the check read)."""
    package = tmp_path / "old" / "tf_keras"
    api = package / "api" / "_v2" / "keras"
    (api / "optimizers").mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "2.12.0"\n')
    for init in (package / "api", package / "api" / "_v2"):
        init.joinpath("__init__.py").write_text("")
    (api / "__init__.py").write_text("from . import optimizers\n")
    (api / "optimizers" / "__init__.py").write_text(
        textwrap.dedent("""
            class Optimizer:
                pass
        """)
    )
    result = run_import(tmp_path, PYTHONPATH=os.pathsep.join([str(tmp_path / "old"), str(REPO)]))
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "tf.keras is Keras 2.12.0" in result.stderr and "Keras 2.15 or later" in result.stderr
