"""Bazel's entry point for the py_tests: pytest on the given paths, with Bazel's op library.

    bazel_pytest.py --kernel-library=PATH TEST_PATH...

Points sm3_tf's loader at the library Bazel built (SM3_TF_KERNEL_LIBRARY), so the tests exercise
that build and never compile one of their own. Bazel runs tests from the workspace's runfiles
root, where the test files and the library sit at their workspace paths.
"""

import argparse
import os
import sys

import pytest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kernel-library", required=True, help="the op library built by Bazel (//:_sm3_ops.so)"
    )
    parser.add_argument("paths", nargs="+", help="test files or directories")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.kernel_library):
        parser.error(f"--kernel-library: {args.kernel_library} does not exist")
    os.environ["SM3_TF_KERNEL_LIBRARY"] = os.path.abspath(args.kernel_library)
    return pytest.main(["-q", "-p", "no:cacheprovider", *args.paths])


if __name__ == "__main__":
    sys.exit(main())
