"""Keras 3 on JAX or PyTorch needs no TensorFlow: `import sm3_tf`, fit, save, load, train on and
`python -m sm3_tf` work where it cannot be imported, and never try to; on the TensorFlow backend a
missing TensorFlow is an ImportError that says what to install or which backend to switch to.

Each case runs in a fresh process whose imports of TensorFlow fail, as where it is not installed
(`tools/backends_ci.sh` runs these in venvs that really have none).
"""

import os
import subprocess
import sys
import textwrap

import backend_support as support
import keras
import pytest

import sm3_tf

# A finder that returns a spec whose loading fails: asking whether TensorFlow is there still works
# (a finder that raises would also break libraries that only ask: PyTorch's compiler does).
_BLOCK_TENSORFLOW = textwrap.dedent(
    """
    import importlib.abc, importlib.machinery, sys

    class NoTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "tf_keras"):
                return importlib.machinery.ModuleSpec(name, self)

        def create_module(self, spec):
            raise ModuleNotFoundError(f"{spec.name} is blocked here", name=spec.name)

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, NoTensorFlow())
    """
)


def run_without_tensorflow(script, *arguments, backend=support.BACKEND):
    """Runs `script` (after the block) in a fresh Python with KERAS_BACKEND=`backend`."""
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_TENSORFLOW + textwrap.dedent(script), *arguments],
        env=dict(os.environ, KERAS_BACKEND=backend),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


_TRAIN = """
    import keras, numpy as np, sm3_tf
    from sm3_tf import memory, schedules, sm3

    assert sm3_tf.SM3 is sm3.SM3  # the Keras 3 optimizer; tf.keras is not asked
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    schedule = schedules.WarmupSchedule(0.1, warmup_steps=2)
    model.compile(optimizer=sm3_tf.SM3(schedule, skip_nonfinite=True), loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=2, verbose=0)
    model.save(sys.argv[1])
    keras.models.load_model(sys.argv[1]).fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    print(model.optimizer.step_path(model.weights[0]).kind, memory.state_bytes(model.optimizer))
    assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
"""

off_tensorflow = pytest.mark.skipif(
    support.BACKEND == "tensorflow", reason="TensorFlow is this backend"
)


@off_tensorflow
def test_no_tensorflow_needed(tmp_path):
    """import sm3_tf, fit, save, load and train on: all without TensorFlow."""
    done = run_without_tensorflow(_TRAIN, os.path.join(tmp_path, "m.keras"))
    assert done.returncode == 0, done.stderr[-3000:]
    # Dense(2) on 3 inputs: covers of 3 + 2 and 2 floats, buffers of 6 and 2 floats.
    assert done.stdout.split()[-2:] == ["keras_ops", str(4 * (3 + 2 + 2 + 6 + 2))]


@off_tensorflow
def test_python_m_sm3_tf_reports_the_backend_and_its_step_without_tensorflow():
    done = run_without_tensorflow(
        """
        import runpy

        try:
            runpy.run_module("sm3_tf", run_name="__main__")
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    backend = support.BACKEND
    assert lines[0] == f"sm3_tf {sm3_tf.__version__}"
    assert lines[1] == f"TensorFlow: not used (Keras runs on the {backend} backend)"
    assert lines[2] == f"Keras {keras.__version__}, backend {backend}"
    assert "Fused kernel library: not used (the kernels are TensorFlow ops)" in lines
    (path,) = [line for line in lines if line.startswith("  every variable: ")]
    assert path.startswith(f"  every variable: keras_ops: Keras runs on the {backend} backend")


@off_tensorflow
def test_the_tensorflow_backend_without_tensorflow_says_what_to_do():
    done = run_without_tensorflow("import sm3_tf", backend="tensorflow")
    assert done.returncode != 0
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: sm3_tf on Keras's TensorFlow backend needs TensorFlow")
    assert "pip install 'sm3-tf[tensorflow-cpu]'" in message
    assert "KERAS_BACKEND=jax with 'sm3-tf[jax]'" in message
