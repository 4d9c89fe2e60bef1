#!/usr/bin/env bash
# CI stage: sm3_tf.SM3 on the JAX and PyTorch backends of Keras 3, each in its own venv, on CPU.
#
#   bash tools/backends_ci.sh            # both backends
#   bash tools/backends_ci.sh jax        # one of them
#
# Per backend: a venv in .venv-backends/<backend> (kept between runs, rebuilt when setup.py or
# pyproject.toml is newer), this tree installed in editable mode with the backend's extra
# (`.[jax]`, `.[torch]`) and pytest; TensorFlow is not a requirement of the package, so the venv has
# none, as a JAX or PyTorch user's (checked before the tests). Then
# `KERAS_BACKEND=<backend> pytest tests/backends`. pip's cache is reused; nothing is CUDA.
#
# PyTorch: `torch==2.13.0` is the CPU build on this CI machine's disk (pip's find-links). Elsewhere
# set SM3_TF_TORCH_REQUIREMENT and, for the CPU wheel, PIP_EXTRA_INDEX_URL to PyTorch's CPU index.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
if [ "$#" -gt 0 ]; then backends=("$@"); else backends=(jax torch); fi

for backend in "${backends[@]}"; do
  case "$backend" in
    jax | torch) ;;
    *) echo "backends_ci: unknown backend '$backend' (jax or torch)" >&2; exit 2 ;;
  esac
  venv=".venv-backends/$backend"
  stamp="$venv/.installed-stamp"
  if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "backends_ci: setting up $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    if [ "$backend" = torch ]; then
      "$venv/bin/python" -m pip install --quiet "${SM3_TF_TORCH_REQUIREMENT:-torch==2.13.0}"
    fi
    "$venv/bin/python" -m pip install --quiet -e ".[$backend]" pytest
    touch "$stamp"
  fi
  if "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"; then
    echo "backends_ci: $venv has TensorFlow (a requirement crept in?); the $backend stage must run without it" >&2
    exit 1
  fi
  echo "=== Keras backend: $backend ===" >&2
  status=0
  # Keras's own NumPy 2 deprecation notices (its tensors' __array__) would bury the summary.
  KERAS_BACKEND="$backend" "$venv/bin/python" -m pytest tests/backends -q -p no:cacheprovider \
    --durations=5 -W "ignore:__array__ implementation:DeprecationWarning" || status=$?
  if [ "$status" -eq 5 ]; then
    echo "backends_ci: pytest collected no tests for $backend" >&2
    exit 1
  fi
  if [ "$status" -ne 0 ]; then exit "$status"; fi
done
