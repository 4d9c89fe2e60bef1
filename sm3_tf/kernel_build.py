"""Compiles the fused SM3 op libraries against the running TensorFlow; names what it builds.

The only module that knows about compilers (`kernel_loader` finds and loads what it builds). The
sources (`kernels/cc` in a checkout, `sm3_tf/_kernel_sources/cc` in an installed package) make two
libraries, TF Addons-style (`cc/ops` registers, `cc/kernels` computes):
  - `_sm3_ops`, the product: `Sm3>ResourceApplyDense`, `Sm3>ResourceApplySparse`, `Sm3>KernelIsa`;
  - `_sm3_benchmark_ops`: `Sm3>StreamTriad`, the bandwidth probe of benchmarks/bench_step.py.

A library's key is what its binary depends on: the TensorFlow version and build, TensorFlow's ABI
flags (not where its headers happen to be installed), our flags, the per-file instruction sets,
the machine's architecture and the library's own sources. The compiler is not in it: the library
is a C++17 shared object against TensorFlow's ABI, whichever compiler made it, so one built
elsewhere (a wheel) loads on a machine without a compiler. Who built it is written beside it
(`<library>.json`). A build that fails leaves `<library>.failed` holding the compiler's complaint,
so other processes do not repeat a compile that cannot succeed.
"""

import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

COMPILER_ENV = "SM3_TF_CXX"

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


@dataclasses.dataclass(frozen=True)
class Library:
    """One op library: its file-name stem and the registration files that belong to the other.

    Every other `.cc` file (the steps, the loops, variable access) goes into both.
    """

    name: str
    others_sources: tuple
    path_env: str  # names an explicit library to load instead (Bazel's build, say)


PRODUCT = Library(
    "_sm3_ops",
    ("ops/benchmark_ops.cc", "kernels/benchmark_kernels.cc"),
    "SM3_TF_KERNEL_LIBRARY",
)
BENCHMARK = Library(
    "_sm3_benchmark_ops",
    ("ops/sm3_ops.cc", "kernels/sm3_kernels.cc", "kernels/kernel_isa.cc"),
    "SM3_TF_BENCHMARK_LIBRARY",
)


class BuildError(RuntimeError):
    """The op library could not be built; the message carries the compiler's complaint."""


def source_root():
    """The directory holding `cc/ops` and `cc/kernels`, or None when the sources are missing."""
    for root in (_CHECKOUT_SOURCES, _PACKAGED_SOURCES):
        if (root / "cc" / "ops" / "sm3_ops.cc").is_file():
            return root
    return None


def source_files(root, library=PRODUCT):
    """The headers and `.cc` files of `library` under `root/cc`, sorted (the key hashes them)."""
    cc_dir = pathlib.Path(root) / "cc"
    return sorted(
        p
        for p in cc_dir.rglob("*")
        if p.is_file()
        and p.suffix in (".cc", ".h")
        and p.relative_to(cc_dir).as_posix() not in library.others_sources
    )


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


def abi_flags(flags):
    """`flags` without the directories (-I, -L): where TensorFlow is installed is not its ABI."""
    return [flag for flag in flags if not flag.startswith(("-I", "-L"))]


def build_key(root, library=PRODUCT):
    """Names a library: TF version plus a hash of everything the binary depends on."""
    compile_flags, link_flags, version, git_version = tensorflow_flags()
    digest = hashlib.sha256()
    for part in (
        version,
        git_version,
        platform.machine(),
        *abi_flags(compile_flags),
        *abi_flags(link_flags),
        *EXTRA_COMPILE_FLAGS,
        *EXTRA_LINK_FLAGS,
        *(f"{name}:{' '.join(flags)}" for name, flags in sorted(ISA_FLAGS.items())),
    ):
        digest.update(part.encode() + b"\0")
    for path in source_files(root, library):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"tf{version}-{digest.hexdigest()[:16]}"


def library_filename(key, library=PRODUCT):
    return f"{library.name}-{key}.so"


def info_path(library_path):
    """Where the build record of a library is kept: `<library>.json`."""
    return pathlib.Path(library_path).with_suffix(".json")


def failure_path(library_path):
    """Where a failed build of a library leaves the compiler's complaint: `<library>.failed`."""
    return pathlib.Path(library_path).with_suffix(".failed")


def read_info(library_path):
    """The build record beside a library ({} when there is none or it is unreadable)."""
    try:
        return json.loads(info_path(library_path).read_text())
    except (OSError, ValueError):
        return {}


def compiler_identity(compiler):
    """The first line of `compiler --version`, e.g. "g++ (Debian 12.2.0-14) 12.2.0"."""
    try:
        result = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        return (result.stdout.strip().splitlines() or ["unknown"])[0]
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"


def compile_library(root, output, compiler, library=PRODUCT, jobs=2):
    """Compiles `library`'s sources under `root` into the shared library `output`.

    Translation units compile in parallel (`jobs`), then link; `output` appears atomically (so a
    concurrent loader never sees half a file), with its build record beside it.

    Raises:
      BuildError: with the tail of the compiler's output.
    """
    compile_flags, link_flags, version, git_version = tensorflow_flags()
    root = pathlib.Path(root)
    include_dirs = [f"-I{root / 'cc' / 'kernels'}"]
    sources = [p for p in source_files(root, library) if p.suffix == ".cc"]
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
        record = {
            "library": library.name,
            "key": output.stem[len(library.name) + 1 :],
            "tensorflow": version,
            "tensorflow_git_version": git_version,
            "machine": platform.machine(),
            "isa_flags": {name: list(isa_flags(name)) for name in sorted(ISA_FLAGS)},
            "compiler": compiler,
            "compiler_version": compiler_identity(compiler),
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        info_path(partial).write_text(json.dumps(record, indent=1) + "\n")
        os.replace(info_path(partial), info_path(output))
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
