"""Builds, caches and loads the fused SM3 op library for the installed TensorFlow.

This is the only module that knows about compilers. The library (`kernels/cc` in a checkout,
`sm3_tf/_kernel_sources/cc` in an installed package) is compiled against the running TensorFlow's
headers and flags (`tf.sysconfig`). A built library is named by a key that hashes the TensorFlow
version and build, its flags, the compiler, the machine and every source file, so a TensorFlow
upgrade or an edited source never loads a stale library: the new key simply has no library yet.

Where a library is looked for, in order:
  1. `$SM3_TF_KERNEL_LIBRARY`, an explicit path (e.g. the one Bazel builds); no key check.
  2. `sm3_tf/_kernel_build/` (built by `pip install .` when TensorFlow was importable then).
  3. The cache, `$SM3_TF_KERNEL_CACHE` or `~/.cache/sm3_tf/kernels` (`$XDG_CACHE_HOME`), where a
     missing library is built on first use (1-2 minutes on 2 cores) by `$SM3_TF_CXX`, `$CXX`
     or the first of g++, c++, clang++ on PATH.
Without a compiler, or when anything fails, `unavailable_reason()` says why, one warning is
logged, and the optimizer falls back to the TF-ops path. `SM3_TF_DISABLE_KERNELS=1` turns the
kernels off.

Command line (build ahead of time, e.g. after `pip install -e .`):
    python -m sm3_tf.kernel_loader --build      # build into the cache unless already there
    python -m sm3_tf.kernel_loader --check      # say which library loads, or why none does
    python -m sm3_tf.kernel_loader --build --output-dir DIR   # setup.py's install-time build
"""

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

LIBRARY_ENV = "SM3_TF_KERNEL_LIBRARY"
CACHE_ENV = "SM3_TF_KERNEL_CACHE"
COMPILER_ENV = "SM3_TF_CXX"
DISABLE_ENV = "SM3_TF_DISABLE_KERNELS"

# Our own flags on top of tf.sysconfig's. -w: TF's headers warn by the hundred.
# -ffp-contract=off: no silent FMAs, so every instruction set rounds the same way.
EXTRA_COMPILE_FLAGS = ("-O3", "-DNDEBUG", "-fPIC", "-ffp-contract=off", "-w")
EXTRA_LINK_FLAGS = ("-shared",)
# Per-file instruction sets (x86 only): each file holds one copy of the SIMD loops and the
# library picks the widest the CPU runs (kernels/cc/kernels/loops.h).
ISA_FLAGS = {"loops_avx.cc": ("-mavx",), "loops_avx512.cc": ("-mavx512f",)}

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_PACKAGED_SOURCES = _PACKAGE_DIR / "_kernel_sources"
_CHECKOUT_SOURCES = _PACKAGE_DIR.parent / "kernels"
PACKAGED_BUILD_DIR = _PACKAGE_DIR / "_kernel_build"


class BuildError(RuntimeError):
    """The op library could not be built; the message carries the compiler's complaint."""


def source_root():
    """The directory holding `cc/ops` and `cc/kernels`, or None when the sources are missing."""
    for root in (_CHECKOUT_SOURCES, _PACKAGED_SOURCES):
        if (root / "cc" / "ops" / "sm3_ops.cc").is_file():
            return root
    return None


def source_files(root):
    """Every C++ source and header under `root/cc`, sorted (the key depends on the order)."""
    cc_dir = pathlib.Path(root) / "cc"
    return sorted(p for p in cc_dir.rglob("*") if p.suffix in (".cc", ".h") and p.is_file())


def find_compiler():
    """The C++ compiler to use: $SM3_TF_CXX, $CXX, or g++ / c++ / clang++ on PATH (None: none)."""
    for name in (os.environ.get(COMPILER_ENV), os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name:
            path = shutil.which(name)
            if path:
                return path
            if os.environ.get(COMPILER_ENV) == name:
                return None  # an explicit choice that does not exist: do not silently pick another
    return None


def is_x86():
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def isa_flags(source):
    """The instruction-set flags of one source file (none off x86)."""
    return ISA_FLAGS.get(pathlib.Path(source).name, ()) if is_x86() else ()


def tensorflow_flags():
    """(compile flags, link flags, version, git version) of the running TensorFlow."""
    import tensorflow as tf

    return (
        list(tf.sysconfig.get_compile_flags()),
        list(tf.sysconfig.get_link_flags()),
        tf.version.VERSION,
        tf.version.GIT_VERSION,
    )


def build_key(root, compiler):
    """Names a library: TF version plus a hash of everything the binary depends on."""
    compile_flags, link_flags, version, git_version = tensorflow_flags()
    digest = hashlib.sha256()
    for part in (
        version,
        git_version,
        platform.machine(),
        compiler or "",
        *compile_flags,
        *link_flags,
        *EXTRA_COMPILE_FLAGS,
        *EXTRA_LINK_FLAGS,
        *(f"{name}:{' '.join(flags)}" for name, flags in sorted(ISA_FLAGS.items())),
    ):
        digest.update(part.encode() + b"\0")
    for path in source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"tf{version}-{digest.hexdigest()[:16]}"


def library_filename(key):
    return f"_sm3_ops-{key}.so"


def default_cache_dir():
    """$SM3_TF_KERNEL_CACHE, else $XDG_CACHE_HOME/sm3_tf/kernels, else ~/.cache/sm3_tf/kernels."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "sm3_tf" / "kernels"


def compile_library(root, output, compiler, jobs=2):
    """Compiles the sources under `root` into the shared library `output`.

    Translation units compile in parallel (`jobs`), then link; `output` appears atomically, so a
    concurrent loader never sees half a file.

    Raises:
      BuildError: with the tail of the compiler's output.
    """
    compile_flags, link_flags, _, _ = tensorflow_flags()
    root = pathlib.Path(root)
    include_dirs = [f"-I{root / 'cc' / 'kernels'}"]
    sources = [p for p in source_files(root) if p.suffix == ".cc"]
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sm3_build_", dir=output.parent) as scratch:
        objects = [pathlib.Path(scratch) / f"{i}_{p.stem}.o" for i, p in enumerate(sources)]
        commands = [
            [
                compiler,
                "-c",
                str(src),
                "-o",
                str(obj),
                *include_dirs,
                *compile_flags,
                *EXTRA_COMPILE_FLAGS,
                *isa_flags(src),
            ]
            for src, obj in zip(sources, objects)
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for result in pool.map(_run, commands):
                _raise_on_failure(result)
        partial = pathlib.Path(scratch) / output.name
        _raise_on_failure(
            _run([compiler, *EXTRA_LINK_FLAGS, *map(str, objects), "-o", str(partial), *link_flags])
        )
        os.replace(partial, output)
    return output


def _run(command):
    try:
        return command, subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:  # the compiler vanished or is not executable
        return command, error


def _raise_on_failure(result):
    command, outcome = result
    if isinstance(outcome, OSError):
        raise BuildError(f"could not run {command[0]}: {outcome}")
    if outcome.returncode != 0:
        tail = (outcome.stderr or outcome.stdout or "").strip()[-2000:]
        raise BuildError(
            f"`{' '.join(command[:4])} ...` failed (exit {outcome.returncode}):\n{tail}"
        )


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
    """Finds, builds and loads the op library once; remembers why it could not.

    Args:
      cache_dir: where libraries are built and found (default: `default_cache_dir()`).
      compiler: the C++ compiler (default: `find_compiler()`); None or a missing path = no builds.
      library_path: an explicit library to load instead (default: $SM3_TF_KERNEL_LIBRARY).
      search_packaged: also look in `sm3_tf/_kernel_build/` (the install-time build).
      build: build a missing library (False: only load what exists).
    """

    _UNSET = object()

    def __init__(
        self, cache_dir=None, compiler=_UNSET, library_path=_UNSET, search_packaged=True, build=True
    ):
        self._cache_dir = pathlib.Path(cache_dir) if cache_dir else None
        self._compiler = compiler
        self._library_path = library_path
        self._search_packaged = search_packaged
        self._build = build
        self._lock = threading.Lock()
        self._loaded = False
        self._module = None
        self._reason = None

    @property
    def cache_dir(self):
        return self._cache_dir or default_cache_dir()

    @property
    def compiler(self):
        return find_compiler() if self._compiler is KernelLibrary._UNSET else self._compiler

    def explicit_library(self):
        """The library named by the caller or $SM3_TF_KERNEL_LIBRARY, if any."""
        path = (
            os.environ.get(LIBRARY_ENV)
            if self._library_path is KernelLibrary._UNSET
            else self._library_path
        )
        return pathlib.Path(path) if path else None

    def candidates(self, key):
        """Where a library with `key` may already be, in the order they are tried."""
        name = library_filename(key)
        places = [PACKAGED_BUILD_DIR / name] if self._search_packaged else []
        return places + [self.cache_dir / name]

    def locate(self):
        """(path of an existing library for this TF and these sources or None, key or None,
        reason)."""
        explicit = self.explicit_library()
        if explicit is not None:
            if explicit.is_file():
                return explicit, None, None
            return None, None, f"{LIBRARY_ENV} names {explicit}, which does not exist"
        root = source_root()
        if root is None:
            return None, None, "the C++ sources of the kernels are not installed"
        key = build_key(root, self.compiler)
        for path in self.candidates(key):
            if path.is_file():
                return path, key, None
        return None, key, None

    def build(self, force=False):
        """Builds the library for the running TensorFlow into the cache; returns its path.

        Raises:
          BuildError: no sources or compiler, or the compiler failed.
        """
        root = source_root()
        if root is None:
            raise BuildError("the C++ sources of the kernels are not installed")
        compiler = self.compiler
        if not compiler:
            raise BuildError("no C++ compiler found (set SM3_TF_CXX or CXX, or install g++)")
        output = self.cache_dir / library_filename(build_key(root, compiler))
        with _directory_lock(output.parent):
            if force or not output.is_file():
                compile_library(root, output, compiler)
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
                if not self._build:
                    return None, "no built library for this TensorFlow and these sources"
                path = self.build()
            return _load_op_library(path), None
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            # A damaged cached library (say, a build cut short by a crash): rebuild it once.
            if (
                key is not None
                and self._build
                and path is not None
                and path.parent == self.cache_dir
            ):
                try:
                    return _load_op_library(self.build(force=True)), None
                except Exception as second:
                    reason += f"; rebuilding it failed: {type(second).__name__}: {second}"
            return None, f"could not load {path}: {reason}" if path is not None else reason


def _load_op_library(path):
    import tensorflow as tf

    return tf.load_op_library(str(path))


_DEFAULT = KernelLibrary()
_warned = False


def default_library():
    """The process-wide `KernelLibrary` the optimizer uses."""
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
    """None when the op library is loaded (loading it if needed), else why not."""
    return None if load() is not None else _DEFAULT.reason


def ops():
    """The loaded op module.

    Raises:
      RuntimeError: saying why the library is unavailable.
    """
    module = load()
    if module is None:
        raise RuntimeError(f"SM3 fused kernels unavailable: {_DEFAULT.reason}")
    return module


def main(argv=None):
    """`python -m sm3_tf.kernel_loader --build | --check`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--build",
        action="store_true",
        help="build the library into the cache unless it is already there",
    )
    parser.add_argument("--force", action="store_true", help="with --build: rebuild anyway")
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        help="with --build: build into this directory instead of the cache "
        "(setup.py uses it for the install-time build)",
    )
    parser.add_argument("--check", action="store_true", help="load it and say from where")
    args = parser.parse_args(argv)
    if args.output_dir is not None:
        library = KernelLibrary(cache_dir=args.output_dir, library_path=None, search_packaged=False)
    else:
        library = KernelLibrary()
    if args.build:
        existing, _, _ = library.locate()
        if existing is not None and not args.force:
            print(f"SM3 kernels already built: {existing}")
        else:
            try:
                print(f"SM3 kernels built: {library.build(force=args.force)}")
            except BuildError as error:
                print(f"SM3 kernels could not be built: {error}", file=sys.stderr)
                return 1
    if args.check or not args.build:
        if library.load() is None:
            print(f"SM3 kernels unavailable: {library.reason}", file=sys.stderr)
            return 1
        print(f"SM3 kernels load from {library.locate()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
