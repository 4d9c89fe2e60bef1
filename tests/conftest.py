"""Test-wide set-up: the process has 2 logical CPUs.

The helpers here (`sm3_reference`, ...) are importable through pyproject.toml's pytest
`pythonpath`, and `sm3_tf`/`sm3_t2t` through the editable install (`make setup`). Two logical CPU
devices let MirroredStrategy tests run on one machine; they must be configured
before TensorFlow initialises its devices, hence here, before any test module runs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the 2 logical CPUs for the whole session.

    Two strategies in one process reuse collective instance keys and then clash on shapes, so every
    test that needs Mirrored shares this one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
