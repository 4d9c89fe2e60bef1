#!/usr/bin/env bash
# CI stage: the platform wheel carries a kernel that loads where no compiler is.
#
#   bash .ci/wheel_check.sh [PYTHON]
#
# 1. `pip wheel .` with PYTHON (default .venv/bin/python, which has TensorFlow: the wheel's kernel
#    is built for it, or copied from the kernel cache when a library with the same key is there).
#    The wheel must be tagged for the platform and hold one sm3_tf/_kernel_build/*.so, for
#    PYTHON's TensorFlow.
# 2. A fresh venv gets the wheel with its [tensorflow-cpu] extra at PYTHON's TensorFlow version
#    (pip's cache serves it; nothing else installs TensorFlow in this stage).
# 3. From outside the checkout, with PATH holding the venv's bin only (no compiler), CXX unset and
#    an empty kernel cache: `python -m sm3_tf`, then .ci/wheel_check.py (one SM3 step on a CPU
#    variable with fused=True, checked against the numpy reference; nothing built in the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
python="${1:-$repo/.venv/bin/python}"
work="$(mktemp -d /tmp/sm3_wheel_check.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "wheel_check: building the wheel" >&2
"$python" -m pip wheel --quiet --no-deps . -w "$work/dist"
wheel="$(ls "$work"/dist/sm3_tf-*.whl)"
echo "wheel_check: $(basename "$wheel")" >&2
case "$(basename "$wheel")" in
  *-none-any.whl) echo "wheel_check: a pure-Python wheel, without a kernel" >&2; exit 1 ;;
esac
tensorflow="$("$python" -c 'import tensorflow as tf; print(tf.version.VERSION)' 2>/dev/null)"
# The listing is read whole before grep looks at it: `grep -q` stops reading at its first match,
# and under pipefail the listing's broken pipe would fail the stage.
listing="$("$python" -m zipfile -l "$wheel")"
libraries="$(grep -c "sm3_tf/_kernel_build/_sm3_ops-.*\.so" <<<"$listing" || true)"
if [ "$libraries" != 1 ] || ! grep -q "_sm3_ops-tf$tensorflow-" <<<"$listing"
then
  echo "wheel_check: want one kernel library, for TensorFlow $tensorflow; found $libraries" >&2
  exit 1
fi
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel[tensorflow-cpu]" \
  "tensorflow-cpu==$tensorflow"

mkdir "$work/cache" "$work/run"
cd "$work/run"
run() {
  env -u CXX -u SM3_TF_CXX -u SM3_TF_KERNEL_LIBRARY -u PYTHONPATH PATH="$work/venv/bin" \
    SM3_TF_KERNEL_CACHE="$work/cache" TF_CPP_MIN_LOG_LEVEL=3 "$work/venv/bin/python" "$@"
}
run -m sm3_tf | tee "$work/diagnostics.txt"
grep -q "^Fused kernel library: loaded" "$work/diagnostics.txt"
grep -q "^  from: $work/venv/.*/site-packages/sm3_tf/_kernel_build/" "$work/diagnostics.txt"
grep -q "^  CPU variable: fused kernel" "$work/diagnostics.txt"
run "$repo/.ci/wheel_check.py" "$repo/tests" "$work/cache"
