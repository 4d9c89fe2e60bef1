#!/usr/bin/env bash
# CI step: the Bazel build and test of the fused SM3 kernels, offline.
#
#   bash tools/bazel_ci.sh [PYTHON]
#
# Installs Debian's bazel-bootstrap when `bazel` is missing (apt-get, as root), then runs
# `bazel test //:kernel_tests` with PYTHON (default: .venv/bin/python, which must have
# TensorFlow and pytest) as both the source of TensorFlow's headers and the tests' interpreter.
# Prints the tests' own pytest summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${1:-${PYTHON:-$PWD/.venv/bin/python}}"
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
if ! "$python" -c "import tensorflow, pytest" 2>/dev/null; then
  echo "bazel_ci: $python cannot import tensorflow and pytest" >&2
  exit 1
fi

if ! command -v bazel >/dev/null 2>&1; then
  echo "bazel_ci: installing bazel-bootstrap" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends bazel-bootstrap >/dev/null
fi

bazel test //:kernel_tests --repo_env=PYTHON_BIN_PATH="$python"
# The pytest summary line of the run, e.g. "212 passed in 26.61s".
tail -n 1 "$(bazel info bazel-testlogs 2>/dev/null)/kernel_tests/test.log"
