"""Building, caching and loading the op library; falling back cleanly when that cannot happen.

These tests never compile (a build takes about a minute): they check which library the loader
would take, that libraries for another TensorFlow or other sources are never taken, and that a
missing compiler or a damaged library ends in a reason and the TF-ops path, with one warning.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from sm3_tf import kernel_loader

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def isolated_library(tmp_path, **kwargs):
    """A KernelLibrary that sees only `tmp_path` as its cache and no install-time build."""
    kwargs.setdefault("compiler", None)
    kwargs.setdefault("library_path", None)
    return kernel_loader.KernelLibrary(cache_dir=tmp_path, search_packaged=False, **kwargs)


def test_key_names_the_tensorflow_version_and_changes_with_it(monkeypatch):
    root = kernel_loader.source_root()
    key = kernel_loader.build_key(root, "g++")
    compile_flags, link_flags, version, git_version = kernel_loader.tensorflow_flags()
    assert key.startswith(f"tf{version}-")
    monkeypatch.setattr(
        kernel_loader,
        "tensorflow_flags",
        lambda: (compile_flags, link_flags, "9.99.0", git_version),
    )
    assert kernel_loader.build_key(root, "g++").startswith("tf9.99.0-")
    monkeypatch.setattr(
        kernel_loader,
        "tensorflow_flags",
        lambda: (compile_flags, link_flags, version, "another-build"),
    )
    assert kernel_loader.build_key(root, "g++") != key


def test_key_changes_when_any_source_changes(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(kernel_loader.source_root() / "cc", copy / "cc")
    before = kernel_loader.build_key(copy, "g++")
    header = copy / "cc" / "kernels" / "tiling.h"
    header.write_text(header.read_text() + "\n// edited\n")
    assert kernel_loader.build_key(copy, "g++") != before


def test_a_library_for_another_tensorflow_is_never_loaded(tmp_path):
    stale = tmp_path / kernel_loader.library_filename("tf2.0.0-0123456789abcdef")
    stale.write_bytes(b"not for this TensorFlow")
    library = isolated_library(tmp_path)
    path, key, reason = library.locate()
    assert path is None and reason is None and key != "tf2.0.0-0123456789abcdef"
    assert library.load() is None
    assert "no C++ compiler" in library.reason


def test_the_cache_is_searched_by_key(tmp_path):
    library = isolated_library(tmp_path)
    _, key, _ = library.locate()
    built = tmp_path / kernel_loader.library_filename(key)
    built.write_bytes(b"placeholder")
    assert library.locate()[0] == built


def test_a_damaged_library_is_reported_not_crashed_on(tmp_path):
    library = isolated_library(tmp_path)
    _, key, _ = library.locate()
    damaged = tmp_path / kernel_loader.library_filename(key)
    damaged.write_bytes(b"\x7fELF truncated")
    assert library.load() is None
    assert f"could not load {damaged}" in library.reason
    assert "rebuilding it failed" in library.reason and "no C++ compiler" in library.reason


def test_explicit_library_that_does_not_exist(tmp_path):
    library = isolated_library(tmp_path, library_path=str(tmp_path / "missing.so"))
    assert library.load() is None
    assert kernel_loader.LIBRARY_ENV in library.reason


def test_disable_switch(tmp_path, monkeypatch):
    monkeypatch.setenv(kernel_loader.DISABLE_ENV, "1")
    library = isolated_library(tmp_path)
    assert library.load() is None
    assert kernel_loader.DISABLE_ENV in library.reason


def test_compiler_errors_are_reported(tmp_path):
    compiler = tmp_path / "broken-c++"
    compiler.write_text("#!/bin/sh\necho 'sm3: simulated syntax error' >&2\nexit 1\n")
    compiler.chmod(0o755)
    with pytest.raises(kernel_loader.BuildError, match="simulated syntax error"):
        kernel_loader.compile_library(
            kernel_loader.source_root(), tmp_path / "out.so", str(compiler), jobs=1
        )
    assert not (tmp_path / "out.so").exists()


def test_a_named_compiler_that_is_missing_is_not_replaced(monkeypatch):
    monkeypatch.setenv(kernel_loader.COMPILER_ENV, "/nonexistent/c++")
    assert kernel_loader.find_compiler() is None


FALLBACK_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np, tensorflow as tf
    import sm3_tf
    from sm3_reference import SM3Reference, relative_error

    def train(optimizer):
      var = tf.Variable(np.ones((4, 3), np.float32))
      for step in range(2):
        optimizer.apply_gradients([(tf.fill((4, 3), 0.5 * (step + 1)), var)])
      return var.numpy()

    reference = SM3Reference((4, 3), momentum=0.9)
    expected = np.ones((4, 3))
    for step in range(2):
      expected = reference.step(expected, np.full((4, 3), 0.5 * (step + 1)), 0.1)
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      never = train(sm3_tf.SM3(0.1, momentum=0.9, fused=False))
      warned_before_auto = len(caught)
      auto = train(sm3_tf.SM3(0.1, momentum=0.9))
      auto_again = train(sm3_tf.SM3(0.1, momentum=0.9))
    try:
      train(sm3_tf.SM3(0.1, momentum=0.9, fused=True))
      demanded = "no error"
    except RuntimeError as error:
      demanded = str(error)
    json.dump(dict(never=relative_error(never, expected), auto=relative_error(auto, expected),
                   auto_again=relative_error(auto_again, expected),
                   warned_before_auto=warned_before_auto,
                   warnings=[str(w.message) for w in caught if "SM3 fused" in str(w.message)],
                   demanded=demanded), sys.stdout)
    """)


def test_without_a_compiler_the_optimizer_falls_back_with_one_warning(tmp_path):
    env = dict(
        os.environ,
        SM3_TF_CXX="/nonexistent/c++",
        SM3_TF_KERNEL_CACHE=str(tmp_path),
        PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    env.pop(kernel_loader.LIBRARY_ENV, None)
    result = subprocess.run(
        [sys.executable, "-c", FALLBACK_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["never"] <= 1e-5 and outcome["auto"] <= 1e-5 and outcome["auto_again"] <= 1e-5
    assert outcome["warned_before_auto"] == 0  # fused=False never even looks for the library
    assert len(outcome["warnings"]) == 1, outcome["warnings"]
    assert "no C++ compiler" in outcome["warnings"][0]
    assert "fused=True" in outcome["demanded"] and "no C++ compiler" in outcome["demanded"]
