"""Which optional environment a test module needs, and what happens where it is missing.

Tests of Keras 2 (`tf.keras` is Keras 2: TF 2.15, or tf_keras with TF_USE_LEGACY_KERAS=1),
tf.estimator (TF 2.15) and tensor2tensor run only where those exist: elsewhere (the TF 2.21
stage) their modules are skipped with a reason. A CI stage that promises an environment lists it
in $SM3_TF_TEST_REQUIRE (comma-separated: keras2, estimator, t2t, kernels); there a missing one
fails the run instead of skipping, so the stage runs exactly the tests it claims to.
"""

import importlib.util
import os

import pytest

REQUIRE_ENV = "SM3_TF_TEST_REQUIRE"


def promised(name):
    """Whether this run's stage promises environment `name`."""
    return name in os.environ.get(REQUIRE_ENV, "").replace(" ", "").split(",")


def require(name, missing_reason):
    """Skips the calling module when `missing_reason` is a sentence (None: all there), unless
    the stage promised `name`: then the module fails to import, naming what is missing."""
    if missing_reason is None:
        return
    if promised(name):
        raise RuntimeError(f"{REQUIRE_ENV} promises {name!r}, but {missing_reason}.")
    pytest.skip(missing_reason, allow_module_level=True)


def require_keras_2():
    from sm3_tf import which_keras

    version = which_keras.tf_keras_version()
    require(
        "keras2",
        None
        if which_keras.is_keras_2(version)
        else f"tf.keras is Keras {version} (Keras 2 tests need TF 2.15, or tf_keras with "
        f"TF_USE_LEGACY_KERAS=1)",
    )


def require_estimator():
    missing = importlib.util.find_spec("tensorflow_estimator") is None
    require("estimator", "tensorflow_estimator (TF <= 2.15) is not installed" if missing else None)


def require_t2t():
    missing = importlib.util.find_spec("tensor2tensor") is None
    require("t2t", "tensor2tensor is not installed (it runs on TF 2.15)" if missing else None)


def require_kernels():
    """The fused kernels: a test that must run them fails here, where they were promised."""
    from sm3_tf import kernel_loader

    reason = kernel_loader.unavailable_reason()
    require("kernels", None if reason is None else f"the kernels are unavailable ({reason})")
