"""Transparent huge pages for a benchmark's tensors, and how much memory sits on them.

On the project's 2-vCPU KVM guest the speed of a stream over 4 KiB pages depends on how
scattered its pages are: 64 MiB arrays read up to 40% slower when their pages were scattered,
while on 2 MiB pages every array read at the fast rate (docs/kernels_benchmark.md, "Page size").
TensorFlow and PyTorch both take large CPU tensors from glibc's malloc. glibc (2.35 or newer)
puts them on transparent huge pages when the process starts with
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 and the kernel's THP mode is `madvise` or `always`. The
tunable is read once, at start-up, so a benchmark that wants it restarts itself with it
(`restart_with`), and its PyTorch worker inherits it.
"""

import argparse
import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb"
SETTING = f"{TUNABLE}=1"
THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"
SMAPS_ROLLUP = "/proc/self/smaps_rollup"
_RESTARTED = "SM3_BENCH_PAGES_RESTARTED"  # set on the restarted process: restart only once


def add_flag(parser):
    """`--huge-pages` / `--no-huge-pages` (default on) on a benchmark's argument parser; pass
    the parsed value to `restart_with` and `describe`."""
    parser.add_argument(
        "--huge-pages",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run TF and PyTorch alike with their tensors on 2 MiB pages (restarts with "
        f"GLIBC_TUNABLES={SETTING}; on this VM 4 KiB pages made stream speed depend on where "
        "the pages landed)",
    )


def with_setting(tunables, on):
    """The GLIBC_TUNABLES string `tunables` with the huge-page setting added (`on`) or removed;
    the other tunables are kept."""
    kept = [t for t in (tunables or "").split(":") if t and not t.startswith(f"{TUNABLE}=")]
    return ":".join(kept + [SETTING] if on else kept)


def requested(environ=None):
    """Whether this process was started with the huge-page setting."""
    environ = os.environ if environ is None else environ
    return SETTING in environ.get("GLIBC_TUNABLES", "").split(":")


def thp_mode(path=THP_ENABLED):
    """The kernel's THP mode (`always`, `madvise` or `never`), or None where it cannot be read."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def huge_mib(path=SMAPS_ROLLUP):
    """MiB of this process's anonymous memory on transparent huge pages, or None where the
    kernel does not say (not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available():
    """None when glibc can put this process's tensors on huge pages, else why not."""
    if platform.libc_ver()[0] != "glibc":
        return "not a glibc system"
    mode = thp_mode()
    if mode is None:
        return f"{THP_ENABLED} is not readable"
    if mode == "never":
        return "transparent huge pages are off (THP mode never)"
    return None


def restart_with(on, environ=None, execve=os.execve):
    """Replaces this process by the same command with GLIBC_TUNABLES set for `on` (huge pages
    or not), unless it already runs that way, huge pages are unavailable here, or it is itself
    such a restart. Call it before any large allocation; it does not return when it restarts."""
    environ = os.environ if environ is None else environ
    if requested(environ) == on or environ.get(_RESTARTED) or (on and available()):
        return
    env = dict(environ, **{_RESTARTED: "1"})
    env["GLIBC_TUNABLES"] = with_setting(environ.get("GLIBC_TUNABLES"), on)
    if not env["GLIBC_TUNABLES"]:
        del env["GLIBC_TUNABLES"]
    sys.stdout.flush()
    sys.stderr.flush()
    execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def describe(wanted, environ=None):
    """One line for a results header: which pages this process's tensors got, given whether
    2 MiB pages were `wanted`, and why not where they were wanted but not had."""
    if not wanted:
        return "memory pages: 4 KiB (--no-huge-pages: glibc's default)"
    reason = available()
    if reason:
        return f"memory pages: 4 KiB (2 MiB pages asked for, but {reason})"
    if not requested(environ):
        return f"memory pages: 4 KiB (2 MiB pages asked for; started without {SETTING})"
    return (
        f"memory pages: 2 MiB transparent huge pages for TF's and PyTorch's tensors alike "
        f"(GLIBC_TUNABLES={SETTING}, THP mode {thp_mode()})"
    )
