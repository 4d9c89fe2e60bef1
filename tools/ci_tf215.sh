#!/usr/bin/env bash
# CI stage: TensorFlow 2.15 (Keras 2.15, tf.estimator, tensor2tensor 1.15.7) in its own venv.
#
#   bash tools/ci_tf215.sh
#
# The venv (.venv-tf215) comes from the measured pins, ../shared/compat/t2t-tf215-pins.txt
# ($SM3_TF_TF215_PINS), each installed without dependencies (a plain `pip install tensor2tensor`
# resolves to TF 2.21), plus psutil (tensorflow-datasets imports it when T2T loads its problems)
# and pytest. The package goes in with --no-deps, so Keras 2.15 stays. The fused kernels must build
# for TF 2.15. Then one pytest run of exactly the tests this stage promises ($SM3_TF_TEST_REQUIRE
# turns their skips into failures): Keras 2, v1, kernels, estimators, the T2T registration and
# the real t2t-trainer run (tests/t2t/test_t2t_trainer.py: the loss falls, a re-run resumes).
set -euo pipefail
cd "$(dirname "$0")/.."

pins="${SM3_TF_TF215_PINS:-../shared/compat/t2t-tf215-pins.txt}"
venv=.venv-tf215
stamp="$venv/.installed-stamp"
if [ ! -f "$pins" ]; then
  echo "ci_tf215: no pins file at $pins (set SM3_TF_TF215_PINS)" >&2
  exit 1
fi

# TensorFlow 2.15 has wheels for Python 3.9 to 3.11 only.
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$python" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))'; then
  echo "ci_tf215: TensorFlow 2.15 needs Python 3.9-3.11; $python is $("$python" -V 2>&1)" >&2
  exit 1
fi

if [ ! -f "$stamp" ] || [ "$pins" -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet --no-deps -r "$pins" psutil==7.2.2
  "$venv/bin/python" -m pip install --quiet pytest
  "$venv/bin/python" -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi
"$venv/bin/python" -c "import tensorflow as tf, keras; print('ci_tf215: TensorFlow', tf.__version__, 'Keras', keras.__version__)"
"$venv/bin/python" -m sm3_tf.kernel_loader --build

status=0
SM3_TF_TEST_REQUIRE=keras2,kernels,estimator,t2t "$venv/bin/python" -m pytest \
  tests/keras2 tests/v1 tests/kernels tests/estimator tests/t2t tests/sm3_tf/test_which_keras.py \
  -q -rs -p no:cacheprovider --durations=5 || status=$?
if [ "$status" -eq 5 ]; then
  echo "ci_tf215: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
