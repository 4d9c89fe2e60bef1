#!/usr/bin/env bash
# CI step: sm3_tf.SM3 on tf_keras (Keras 2) under TF_USE_LEGACY_KERAS=1, on the main venv's TF.
#
#   bash tools/ci_tf_keras.sh [PYTHON]
#
# The tf_keras matching PYTHON's TensorFlow (default .venv/bin/python) goes into .tf_keras/, put
# on PYTHONPATH for this run only, with --no-deps: its `tensorflow` requirement would install the
# full TensorFlow wheel beside tensorflow-cpu. Then the Keras 2 tests, required to run
# ($SM3_TF_TEST_REQUIRE), with the fused kernels of that TensorFlow.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${1:-$PWD/.venv/bin/python}"
release="$("$python" -c "import tensorflow as tf; print('.'.join(tf.__version__.split('.')[:2]))")"
"$python" -m pip install --quiet --upgrade --no-deps --target .tf_keras "tf_keras~=$release.0"

status=0
TF_USE_LEGACY_KERAS=1 PYTHONPATH="$PWD/.tf_keras" SM3_TF_TEST_REQUIRE=keras2,kernels \
  "$python" -m pytest tests/keras2 tests/sm3_tf/test_which_keras.py -q -rs -p no:cacheprovider || status=$?
if [ "$status" -eq 5 ]; then
  echo "ci_tf_keras: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
