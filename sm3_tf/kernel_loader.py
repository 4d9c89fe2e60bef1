"""Finds, builds (through `kernel_build`) and loads the fused SM3 op libraries.

A library is named by its key (`kernel_build.build_key`: TensorFlow version and ABI, flags, sources;
not the compiler), so a TensorFlow upgrade or an edited source never loads a stale library: the new
key simply has no library yet. Where a library is looked for, in order:
  1. `$SM3_TF_KERNEL_LIBRARY`, an explicit path (e.g. the one Bazel builds); no key check.
  2. `sm3_tf/_kernel_build/`, the library a platform wheel carries (see setup.py).
  3. The cache, `$SM3_TF_KERNEL_CACHE` or `~/.cache/sm3_tf/kernels` (`$XDG_CACHE_HOME`), where a
     missing library is built on first use (1-2 minutes on 2 cores) by `$SM3_TF_CXX`, `$CXX`
     or the first of g++, c++, clang++ on PATH.
A failed build leaves a `.failed` note beside where the library would be; later processes read it
instead of compiling again, until `python -m sm3_tf.kernel_loader --build` retries. Without a
library, `unavailable_reason()` says why and the optimizer takes the TF-ops path (it says so once,
see `sm3_tf.step`). `SM3_TF_DISABLE_KERNELS=1` turns the kernels off.

Command line:
    python -m sm3_tf.kernel_loader --build      # build into the cache (retries a failed build)
    python -m sm3_tf.kernel_loader --check      # say which library loads, or why none does
    python -m sm3_tf.kernel_loader --build --benchmark-ops   # the benchmarks' library
    python -m sm3_tf.kernel_loader --build --output-dir DIR  # setup.py's wheel build
"""

import argparse
import contextlib
import fcntl
import logging
import os
import pathlib
import shutil
import sys
import threading
import warnings

from sm3_tf import kernel_build
from sm3_tf.kernel_build import BENCHMARK, PRODUCT, BuildError

CACHE_ENV = "SM3_TF_KERNEL_CACHE"
DISABLE_ENV = "SM3_TF_DISABLE_KERNELS"
LIBRARY_ENV = PRODUCT.path_env
PACKAGED_BUILD_DIR = pathlib.Path(__file__).resolve().parent / "_kernel_build"
RETRY_COMMAND = "python -m sm3_tf.kernel_loader --build"

_log = logging.getLogger(__name__)

__all__ = ["BuildError", "KernelLibrary", "load", "ops", "benchmark_ops", "unavailable_reason"]


def default_cache_dir():
    """$SM3_TF_KERNEL_CACHE, else $XDG_CACHE_HOME/sm3_tf/kernels, else ~/.cache/sm3_tf/kernels."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "sm3_tf" / "kernels"


@contextlib.contextmanager
def _directory_lock(directory):
    """Holds an exclusive lock on `directory`: one process builds, the others wait and reuse.

    Locking the directory itself leaves no lock files behind (in the cache or in a wheel).
    """
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


class KernelLibrary:
    """Finds, builds and loads one op library once; remembers where from, or why it could not.

    Args:
      cache_dir: where libraries are built and found (default: `default_cache_dir()`).
      compiler: the C++ compiler (default: `find_compiler()`); None or a missing path = no builds.
      library_path: an explicit library to load instead (default: the library's environment
        variable, $SM3_TF_KERNEL_LIBRARY for the product).
      search_packaged: also look in `packaged_dir` (a wheel's library).
      build: build a missing library (False: only load what exists).
      library: `kernel_build.PRODUCT` (the optimizer's ops) or `kernel_build.BENCHMARK`.
      packaged_dir: where a wheel's library is (default: `sm3_tf/_kernel_build`).
    """

    _UNSET = object()

    def __init__(
        self,
        cache_dir=None,
        compiler=_UNSET,
        library_path=_UNSET,
        search_packaged=True,
        build=True,
        library=PRODUCT,
        packaged_dir=None,
    ):
        self._cache_dir = pathlib.Path(cache_dir) if cache_dir else None
        self._compiler = compiler
        self._library_path = library_path
        self._packaged_dir = pathlib.Path(packaged_dir or PACKAGED_BUILD_DIR)
        self._search_packaged = search_packaged
        self._build = build
        self.library = library
        self._lock = threading.Lock()
        self._loaded = False
        self._module = None
        self._reason = None
        self.path = None  # the library loaded, once loaded

    @property
    def cache_dir(self):
        return self._cache_dir or default_cache_dir()

    @property
    def compiler(self):
        if self._compiler is KernelLibrary._UNSET:
            return kernel_build.find_compiler()
        return self._compiler

    def explicit_library(self):
        """The library named by the caller or the library's environment variable, if any."""
        if self._library_path is KernelLibrary._UNSET:
            path = os.environ.get(self.library.path_env)
        else:
            path = self._library_path
        return pathlib.Path(path) if path else None

    def cached_path(self, key):
        """Where the cache keeps (or would keep) the library with `key`."""
        return self.cache_dir / kernel_build.library_filename(key, self.library)

    def candidates(self, key):
        """Where a library with `key` may already be, in the order they are tried."""
        name = kernel_build.library_filename(key, self.library)
        places = [self._packaged_dir / name] if self._search_packaged else []
        return places + [self.cached_path(key)]

    def locate(self):
        """(path of an existing library for this TF and these sources or None, key or None,
        reason)."""
        explicit = self.explicit_library()
        if explicit is not None:
            if explicit.is_file():
                return explicit, None, None
            return None, None, f"{self.library.path_env} names {explicit}, which does not exist"
        root = kernel_build.source_root()
        if root is None:
            return None, None, "the C++ sources of the kernels are not installed"
        key = kernel_build.build_key(root, self.library)
        for path in self.candidates(key):
            if path.is_file():
                return path, key, None
        return None, key, None

    def packaged_mismatch(self, key):
        """A sentence when the package carries a library for another TensorFlow, else None."""
        import tensorflow as tf

        if not self._search_packaged:
            return None
        for other in sorted(self._packaged_dir.glob(f"{self.library.name}-*.so")):
            built_for = kernel_build.read_info(other).get("tensorflow", "another version")
            if built_for == tf.version.VERSION:  # same version, other ABI flags or build
                built_for += f" with other flags or sources (this one needs key {key})"
            return (
                f"the kernel library in this package was built for TensorFlow {built_for} "
                f"({other.name}), and this is TensorFlow {tf.version.VERSION}"
            )
        return None

    def build(self, force=False, retry=False, why=None):
        """Builds the library for the running TensorFlow into the cache; returns its path.

        A build that failed before is not repeated (its complaint is raised again) unless
        `retry` or `force`; a compiler failure is recorded for the next process. `why`, if
        given, is logged (with the wait to expect) when compiling starts.

        Raises:
          BuildError: no sources or compiler, or the compiler failed (now or before).
        """
        root = kernel_build.source_root()
        if root is None:
            raise BuildError("the C++ sources of the kernels are not installed")
        output = self.cached_path(kernel_build.build_key(root, self.library))
        failed = kernel_build.failure_path(output)
        with _directory_lock(output.parent):
            if force or retry:
                failed.unlink(missing_ok=True)
            if failed.is_file():
                raise BuildError(
                    f"building it failed before (see {failed}; `{RETRY_COMMAND}` retries): "
                    + failed.read_text()[:500]
                )
            if force or not output.is_file():
                compiler = self.compiler
                if not compiler:
                    raise BuildError(
                        "no C++ compiler found (set SM3_TF_CXX or CXX, or install g++)"
                    )
                if why:
                    _log.warning(
                        "SM3: %s; compiling the fused kernels for it (about a minute)", why
                    )
                try:
                    kernel_build.compile_library(root, output, compiler, self.library)
                except BuildError as error:
                    with contextlib.suppress(OSError):
                        failed.write_text(f"{compiler}: {error}\n")
                    raise
        return output

    def load(self):
        """The loaded op module, or None (see `reason`). Tries once; thread-safe."""
        with self._lock:
            if not self._loaded:
                self._module, self._reason = self._load()
                self._loaded = True
            return self._module

    @property
    def reason(self):
        """Why the library is unavailable (None when it loaded or was not tried yet)."""
        return self._reason

    def _load(self):
        if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
            return None, f"{DISABLE_ENV} is set"
        path = key = None
        try:
            path, key, reason = self.locate()
            if reason:
                return None, reason
            if path is None:
                mismatch = self.packaged_mismatch(key)
                if not self._build:
                    return None, mismatch or "no built library for this TensorFlow and sources"
                try:
                    path = self.build(why=mismatch or "no kernel library for this TensorFlow yet")
                except BuildError as error:
                    return None, f"{mismatch}; {error}" if mismatch else str(error)
            self.path = path
            return _load_op_library(path), None
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            # A damaged cached library (say, a build cut short by a crash): rebuild it once.
            if key is not None and self._build and path == self.cached_path(key):
                try:
                    self.path = self.build(force=True)
                    return _load_op_library(self.path), None
                except Exception as second:
                    reason += f"; rebuilding it failed: {type(second).__name__}: {second}"
            return None, f"could not load {path}: {reason}" if path is not None else reason


def _load_op_library(path):
    import tensorflow as tf

    return tf.load_op_library(str(path))


_DEFAULT = KernelLibrary()
_BENCHMARK = KernelLibrary(library=BENCHMARK, search_packaged=False)
_warned = False


def default_library():
    """The process-wide `KernelLibrary` of the optimizer's ops."""
    return _DEFAULT


def load():
    """The op module, building it on first use; None when unavailable (warns once)."""
    global _warned
    module = _DEFAULT.load()
    if module is None and not _warned:
        _warned = True
        warnings.warn(
            f"SM3 fused kernels unavailable, using the TF-ops path: {_DEFAULT.reason}",
            RuntimeWarning,
            stacklevel=2,
        )
    return module


def unavailable_reason():
    """None when the op library is loaded (loading it if needed), else why not. Never warns:
    the optimizer reports its fallbacks itself."""
    return None if _DEFAULT.load() is not None else _DEFAULT.reason


def ops():
    """The loaded op module.

    Raises:
      RuntimeError: saying why the library is unavailable.
    """
    return _loaded_or_raise(_DEFAULT, "SM3 fused kernels")


def benchmark_ops():
    """The benchmarks' op module (`sm3_stream_triad`), built on first use.

    Raises:
      RuntimeError: saying why the library is unavailable.
    """
    return _loaded_or_raise(_BENCHMARK, "SM3 benchmark ops")


def _loaded_or_raise(library, what):
    module = library.load()
    if module is None:
        raise RuntimeError(f"{what} unavailable: {library.reason}")
    return module


def build_into(directory, library=PRODUCT):
    """Puts the library for this TensorFlow into `directory` (a wheel's `_kernel_build`).

    A library with the same key already in the cache is the same binary: it is copied with its
    build record instead of being compiled again. Either way it is loaded once, so a wheel never
    carries a library that does not load.
    """
    cached, key, reason = KernelLibrary(library=library, library_path=None).locate()
    if reason:
        raise BuildError(reason)
    if cached is None:
        built = KernelLibrary(
            cache_dir=directory, library_path=None, search_packaged=False, library=library
        ).build(retry=True)
    else:
        built = pathlib.Path(directory) / cached.name
        built.parent.mkdir(parents=True, exist_ok=True)
        if cached != built:
            shutil.copyfile(cached, built)
            if kernel_build.info_path(cached).is_file():
                shutil.copyfile(kernel_build.info_path(cached), kernel_build.info_path(built))
    _load_op_library(built)
    return built, key


def main(argv=None):
    """`python -m sm3_tf.kernel_loader --build | --check`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--build",
        action="store_true",
        help="build the library unless it is there; retries a build that failed before",
    )
    parser.add_argument("--force", action="store_true", help="with --build: rebuild anyway")
    parser.add_argument(
        "--benchmark-ops", action="store_true", help="the benchmarks' library (Sm3>StreamTriad)"
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        help="with --build: put the library into this directory (setup.py's wheel build)",
    )
    parser.add_argument("--check", action="store_true", help="load it and say from where")
    args = parser.parse_args(argv)
    kind = BENCHMARK if args.benchmark_ops else PRODUCT
    library = KernelLibrary(library=kind)
    try:
        if args.output_dir is not None:
            print(f"SM3 kernels in {build_into(args.output_dir, kind)[0]}")
            return 0
        if args.build:
            existing, _, _ = library.locate()
            if existing is not None and not args.force:
                print(f"SM3 kernels already built: {existing}")
            else:
                print(f"SM3 kernels built: {library.build(force=args.force, retry=True)}")
    except BuildError as error:
        print(f"SM3 kernels could not be built: {error}", file=sys.stderr)
        return 1
    if args.check or not args.build:
        if library.load() is None:
            print(f"SM3 kernels unavailable: {library.reason}", file=sys.stderr)
            return 1
        print(f"SM3 kernels load from {library.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
