"""The supported TensorFlow/Keras versions, the error naming them, and `python -m sm3_tf`."""

import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf
from packaging.specifiers import SpecifierSet

import sm3_tf
from sm3_tf import kernel_loader, versions

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_requirement_ranges_agree_with_the_checked_versions():
    tensorflow = SpecifierSet(versions.TENSORFLOW_RANGE)
    assert "2.15.0" in tensorflow and "2.21.9" in tensorflow
    assert "2.14.1" not in tensorflow and "2.22.0" not in tensorflow
    keras_range = SpecifierSet(versions.KERAS_RANGE)
    assert "2.15.0" in keras_range and "3.10.0" in keras_range and "3.15.1" in keras_range
    assert "3.9.2" not in keras_range and "2.14.0" not in keras_range
    assert versions.release(versions.TENSORFLOW_RANGE.split(",<")[1]) > versions.NEWEST_TENSORFLOW


def test_an_old_tensorflow_is_refused_naming_both_versions():
    error, warning = versions.tensorflow_problem("2.14.1")
    assert warning is None
    assert "TensorFlow 2.14.1 is installed" in error and "TensorFlow 2.15 to 2.21" in error
    assert versions.tensorflow_problem("2.15.1") == (None, None)
    assert versions.tensorflow_problem("2.21.0") == (None, None)
    error, warning = versions.tensorflow_problem("2.22.0")
    assert error is None and "2.22.0" in warning and "2.15 to 2.21" in warning


def test_an_old_keras_is_refused_naming_both_versions():
    assert versions.keras_problem("2.15.0") is None
    assert versions.keras_problem("3.10.0") is None
    for old in ("3.5.0", "2.14.0"):
        message = versions.keras_problem(old)
        assert f"Keras {old} is installed" in message and "Keras >= 3.10" in message


def test_the_import_check_raises_for_an_unsupported_version(monkeypatch):
    versions.check()  # this environment is supported
    monkeypatch.setattr(tf.version, "VERSION", "2.13.0")
    with pytest.raises(ImportError, match=r"TensorFlow 2\.13\.0 is installed"):
        versions.check()
    monkeypatch.undo()
    monkeypatch.setattr(keras, "__version__", "3.3.3")
    with pytest.raises(ImportError, match=r"Keras 3\.3\.3 is installed"):
        versions.check()


def python_m_sm3_tf(**env_updates):
    """The lines `python -m sm3_tf` prints, run on this checkout with `env_updates`."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", **env_updates)
    if env_updates:
        env.pop(kernel_loader.LIBRARY_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "sm3_tf"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def test_python_m_sm3_tf_reports_versions_kernel_and_paths():
    lines = python_m_sm3_tf()
    assert lines[0] == f"sm3_tf {sm3_tf.__version__}"
    assert f"TensorFlow {tf.version.VERSION}" in lines[1]
    assert lines[2] == f"Keras {keras.__version__}, backend {keras.backend.backend()}"
    library = kernel_loader.default_library()
    assert library.load() is not None, library.reason
    assert "Fused kernel library: loaded" in lines
    assert f"  from: {library.path}" in lines
    isa = kernel_loader.ops().sm3_kernel_isa().numpy().decode()
    assert f"  instruction set: {isa}" in lines
    assert "  CPU variable: fused kernel" in lines
    assert any(
        line.startswith("  GPU variable: TF ops: the fused kernel runs on CPU only")
        for line in lines
    )
    assert any(
        line.startswith("  under XLA") and "TF ops: the step is compiled by XLA" in line
        for line in lines
    )


def test_python_m_sm3_tf_says_why_the_kernel_is_missing(tmp_path):
    lines = python_m_sm3_tf(SM3_TF_KERNEL_CACHE=str(tmp_path), SM3_TF_CXX="/nonexistent/c++")
    assert "Fused kernel library: not loaded" in lines
    assert any(line.startswith("  why: ") and "no C++ compiler" in line for line in lines)
    assert any(kernel_loader.RETRY_COMMAND in line for line in lines)
    assert any(
        line.startswith("  CPU variable: TF ops: the kernel library is unavailable")
        for line in lines
    )
