"""`import sm3_tf.t2t` without tensor2tensor installed does nothing: no error, no registration,
TensorFlow's modules left as they are (runs in every stage; T2T is hidden from the process)."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

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
