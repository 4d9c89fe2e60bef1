"""Building, caching and loading the op library; falling back cleanly when that cannot happen.

These tests never run a real compiler (a build takes about a minute; a stand-in script plays the
compiler where one is needed): they check which library the loader would take, that libraries for
another TensorFlow or other sources are never taken, that the key ignores the compiler, and that a
missing compiler, a failed build or a damaged library ends in a reason and the TF-ops path.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from sm3_tf import kernel_build, kernel_loader

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def isolated_library(tmp_path, **kwargs):
    """A KernelLibrary that sees only `tmp_path` as its cache and no install-time build."""
    kwargs.setdefault("compiler", None)
    kwargs.setdefault("library_path", None)
    return kernel_loader.KernelLibrary(cache_dir=tmp_path, search_packaged=False, **kwargs)


def test_key_names_the_tensorflow_version_and_changes_with_it(monkeypatch):
    root = kernel_build.source_root()
    key = kernel_build.build_key(root)
    compile_flags, link_flags, version, git_version = kernel_build.tensorflow_flags()
    assert key.startswith(f"tf{version}-")
    monkeypatch.setattr(
        kernel_build,
        "tensorflow_flags",
        lambda: (compile_flags, link_flags, "9.99.0", git_version),
    )
    assert kernel_build.build_key(root).startswith("tf9.99.0-")
    monkeypatch.setattr(
        kernel_build,
        "tensorflow_flags",
        lambda: (compile_flags, link_flags, version, "another-build"),
    )
    assert kernel_build.build_key(root) != key
    monkeypatch.setattr(
        kernel_build,
        "tensorflow_flags",
        lambda: (compile_flags + ["-D_GLIBCXX_USE_CXX11_ABI=0"], link_flags, version, git_version),
    )
    assert kernel_build.build_key(root) != key  # another C++ ABI is another binary


def test_key_ignores_the_compiler_and_where_tensorflow_is_installed(monkeypatch):
    root = kernel_build.source_root()
    key = kernel_build.build_key(root)
    compile_flags, link_flags, version, git_version = kernel_build.tensorflow_flags()
    moved = (
        [f if not f.startswith("-I") else "-I/elsewhere/tensorflow/include" for f in compile_flags],
        [f if not f.startswith("-L") else "-L/elsewhere/tensorflow" for f in link_flags],
        version,
        git_version,
    )
    monkeypatch.setattr(kernel_build, "tensorflow_flags", lambda: moved)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv(kernel_build.COMPILER_ENV, "/nonexistent/c++")
    assert kernel_build.find_compiler() is None
    assert kernel_build.build_key(root) == key


def test_key_changes_when_any_source_changes(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(kernel_build.source_root() / "cc", copy / "cc")
    before = kernel_build.build_key(copy)
    header = copy / "cc" / "kernels" / "tiling.h"
    header.write_text(header.read_text() + "\n// edited\n")
    assert kernel_build.build_key(copy) != before


def test_the_benchmark_op_is_not_in_the_product_library():
    root = kernel_build.source_root()
    product = {p.name for p in kernel_build.source_files(root, kernel_build.PRODUCT)}
    benchmark = {p.name for p in kernel_build.source_files(root, kernel_build.BENCHMARK)}
    assert "benchmark_ops.cc" not in product and "benchmark_kernels.cc" not in product
    assert "sm3_ops.cc" not in benchmark and "sm3_kernels.cc" not in benchmark
    assert "kernel_isa.cc" in product  # `python -m sm3_tf` reports the ISA
    assert kernel_build.build_key(root) != kernel_build.build_key(root, kernel_build.BENCHMARK)
    ops = kernel_loader.ops()
    assert not hasattr(ops, "sm3_stream_triad")
    assert ops.sm3_kernel_isa().numpy().decode() in ("avx512", "avx", "sse2", "portable")


def test_a_library_for_another_tensorflow_is_never_loaded(tmp_path):
    stale = tmp_path / kernel_build.library_filename("tf2.0.0-0123456789abcdef")
    stale.write_bytes(b"not for this TensorFlow")
    library = isolated_library(tmp_path)
    path, key, reason = library.locate()
    assert path is None and reason is None and key != "tf2.0.0-0123456789abcdef"
    assert library.load() is None
    assert "no C++ compiler" in library.reason


def test_the_cache_is_searched_by_key(tmp_path):
    library = isolated_library(tmp_path)
    _, key, _ = library.locate()
    built = tmp_path / kernel_build.library_filename(key)
    built.write_bytes(b"placeholder")
    assert library.locate()[0] == built


def test_a_damaged_library_is_reported_not_crashed_on(tmp_path):
    library = isolated_library(tmp_path)
    _, key, _ = library.locate()
    damaged = tmp_path / kernel_build.library_filename(key)
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
        kernel_build.compile_library(
            kernel_build.source_root(), tmp_path / "out.so", str(compiler), jobs=1
        )
    assert not (tmp_path / "out.so").exists()


def test_a_named_compiler_that_is_missing_is_not_replaced(monkeypatch):
    monkeypatch.setenv(kernel_build.COMPILER_ENV, "/nonexistent/c++")
    assert kernel_build.find_compiler() is None


def run_python(script, env_updates, *args):
    """Runs `script` in a new interpreter with the checkout importable; returns its stdout."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    for name in (kernel_loader.LIBRARY_ENV, "CXX"):
        env.pop(name, None)
    env.update(env_updates)
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


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
    env = {
        "SM3_TF_CXX": "/nonexistent/c++",
        "SM3_TF_KERNEL_CACHE": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
    }
    stdout = run_python(FALLBACK_SCRIPT, env)
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert outcome["never"] <= 1e-5 and outcome["auto"] <= 1e-5 and outcome["auto_again"] <= 1e-5
    assert outcome["warned_before_auto"] == 0  # fused=False never even looks for the library
    assert len(outcome["warnings"]) == 1, outcome["warnings"]
    assert "no C++ compiler" in outcome["warnings"][0]
    assert "fused=True" in outcome["demanded"] and "no C++ compiler" in outcome["demanded"]


def stand_in_compiler(tmp_path, fail=False):
    """A shell script playing the compiler: counts its calls in `calls`, writes empty outputs (or
    fails with a complaint); `--version` names it."""
    calls = tmp_path / "calls"
    script = tmp_path / ("broken-c++" if fail else "stand-in-c++")
    body = (
        "echo 'sm3: simulated syntax error' >&2; exit 1"
        if fail
        else 'out=; prev=; for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done; : > "$out"'
    )
    script.write_text(
        "#!/bin/sh\n"
        f"echo call >> {calls}\n"
        '[ "$1" = --version ] && { echo "stand-in c++ 9.9"; exit 0; }\n'
        f"{body}\n"
    )
    script.chmod(0o755)
    return script, calls


def call_count(calls):
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_a_build_records_the_compiler_beside_the_library(tmp_path):
    compiler, _ = stand_in_compiler(tmp_path)
    library = isolated_library(tmp_path / "cache", compiler=str(compiler))
    path = library.build()
    info = kernel_build.read_info(path)
    _, key, _ = library.locate()
    compile_flags, link_flags, version, git_version = kernel_build.tensorflow_flags()
    assert info["compiler"] == str(compiler) and info["compiler_version"] == "stand-in c++ 9.9"
    assert info["tensorflow"] == version and info["key"] == key
    assert path.name == kernel_build.library_filename(key)


LOAD_IN_NEW_PROCESS = textwrap.dedent("""
    import json, sys
    from sm3_tf import kernel_build, kernel_loader
    library = kernel_loader.KernelLibrary(library_path=None, packaged_dir=sys.argv[1])
    module = library.load()
    isa = module.sm3_kernel_isa().numpy().decode() if module is not None else None
    print(json.dumps(dict(reason=library.reason, path=str(library.path), isa=isa,
                          compiler=kernel_build.find_compiler())))
    """)


def test_a_failed_build_is_remembered_until_the_build_command_retries(tmp_path, monkeypatch):
    compiler, calls = stand_in_compiler(tmp_path, fail=True)
    cache = tmp_path / "cache"
    first = isolated_library(cache, compiler=str(compiler))
    assert first.load() is None and "simulated syntax error" in first.reason
    (marker,) = cache.glob("*.failed")
    assert "simulated syntax error" in marker.read_text()
    compiled = call_count(calls)
    assert compiled > 0

    # Another process finds the note and does not compile again.
    env = {kernel_build.COMPILER_ENV: str(compiler), kernel_loader.CACHE_ENV: str(cache)}
    outcome = json.loads(run_python(LOAD_IN_NEW_PROCESS, env, tmp_path / "no-wheel"))
    assert outcome["path"] == "None" and "failed before" in outcome["reason"]
    assert kernel_loader.RETRY_COMMAND in outcome["reason"]
    assert "simulated syntax error" in outcome["reason"]
    assert call_count(calls) == compiled

    # `python -m sm3_tf.kernel_loader --build` tries again (and fails again here).
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(kernel_loader.LIBRARY_ENV, raising=False)  # Bazel's library
    assert kernel_loader.main(["--build"]) == 1
    assert call_count(calls) > compiled
    assert marker.is_file()


def test_a_wheel_library_loads_where_there_is_no_compiler(tmp_path):
    built = kernel_loader.default_library()
    assert built.load() is not None, built.reason
    wheel_dir = tmp_path / "wheel"
    wheel_dir.mkdir()
    key = kernel_build.build_key(kernel_build.source_root())
    shutil.copyfile(built.path, wheel_dir / kernel_build.library_filename(key))
    cache = tmp_path / "empty-cache"
    env = {
        "PATH": os.path.dirname(sys.executable),  # the venv's bin: no compiler there
        kernel_loader.CACHE_ENV: str(cache),
        kernel_build.COMPILER_ENV: "",
    }
    outcome = json.loads(run_python(LOAD_IN_NEW_PROCESS, env, wheel_dir))
    assert outcome["compiler"] is None
    assert outcome["reason"] is None and outcome["path"].startswith(str(wheel_dir))
    assert outcome["isa"] in ("avx512", "avx", "sse2", "portable")
    assert not cache.exists() or not any(cache.iterdir())


def fake_wheel_for_another_tensorflow(tmp_path):
    wheel_dir = tmp_path / "wheel"
    wheel_dir.mkdir()
    other = wheel_dir / kernel_build.library_filename("tf2.15.1-0123456789abcdef")
    other.write_bytes(b"a library for another TensorFlow")
    kernel_build.info_path(other).write_text(json.dumps({"tensorflow": "2.15.1"}))
    return wheel_dir


def test_a_wheel_library_for_another_tensorflow_is_named_without_a_compiler(tmp_path):
    library = kernel_loader.KernelLibrary(
        cache_dir=tmp_path / "cache",
        compiler=None,
        library_path=None,
        packaged_dir=fake_wheel_for_another_tensorflow(tmp_path),
    )
    assert library.load() is None
    _, _, version, _ = kernel_build.tensorflow_flags()
    assert "built for TensorFlow 2.15.1" in library.reason
    assert f"this is TensorFlow {version}" in library.reason
    assert "no C++ compiler" in library.reason


def test_a_wheel_library_for_another_tensorflow_is_rebuilt_with_a_compiler(tmp_path):
    compiler, calls = stand_in_compiler(tmp_path)
    library = kernel_loader.KernelLibrary(
        cache_dir=tmp_path / "cache",
        compiler=str(compiler),
        library_path=None,
        packaged_dir=fake_wheel_for_another_tensorflow(tmp_path),
    )
    library.load()  # the stand-in's empty library does not load, but it was built for this TF
    _, key, _ = library.locate()
    assert call_count(calls) > 0
    assert library.cached_path(key).is_file()
    assert kernel_build.read_info(library.cached_path(key))["key"] == key
