"""`import sm3_tf.t2t` without tensor2tensor installed does nothing: no error, no registration,
TensorFlow's modules left as they are (runs in every stage; T2T is hidden from the process). Its
hparams mean what they mean to the T2T-style layer's `sm3_t2t.optimizers`."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import types

import pytest

from sm3_tf import which_keras

REPO = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["tensor2tensor"] = None  # as if not installed: find_spec None, import fails
    from tensorflow.python.framework import ops
    before = sorted(vars(ops))
    import sm3_tf.t2t
    print(json.dumps({
        "available": sm3_tf.t2t.T2T_AVAILABLE,
        "ops_unchanged": sorted(vars(ops)) == before,
        "t2t_imported": any(name.startswith("tensor2tensor.") for name in sys.modules),
        "hparams": sorted(sm3_tf.t2t.HPARAMS),
    }))
""")


def test_importing_without_tensor2tensor_does_nothing():
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["available"] is False
    assert report["ops_unchanged"] and not report["t2t_imported"]
    assert all(name.startswith("optimizer_sm3_") for name in report["hparams"])


@pytest.mark.parametrize(
    "hparams",
    [
        {},
        dict(
            optimizer_sm3_momentum=0.5,
            optimizer_sm3_beta2=0.99,
            optimizer_sm3_epsilon=1e-6,
            optimizer_sm3_variant="I",
            optimizer_sm3_momentum_dtype="bfloat16",
            optimizer_sm3_skip_nonfinite=True,
            optimizer_sm3_fused="False",
        ),
    ],
    ids=["defaults", "all_set"],
)
def test_the_same_hparams_mean_the_same_optimizer_as_in_sm3_t2t(hparams):
    """One hparams set, two readers: real T2T's registration and the T2T-style layer's glue."""
    if which_keras.tf_keras_is_keras_2():
        pytest.skip("sm3_t2t (the T2T-style layer) is for Keras 3")
    from sm3_t2t import optimizers
    from sm3_tf import t2t

    given = types.SimpleNamespace(**hparams)
    assert t2t.sm3_arguments(given) == optimizers.sm3_arguments(given)
