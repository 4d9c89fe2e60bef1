"""Which Keras `tf.keras` is here, and whether `sm3_tf.SM3` supports it.

`tf.keras` is Keras 2 on TensorFlow 2.15 (the `keras` 2.15 package) and, on TensorFlow 2.16 and
later, when `TF_USE_LEGACY_KERAS=1` routes it to the `tf_keras` package; otherwise it is Keras 3.
`sm3_tf.SM3` is then `sm3_tf.keras2.SM3` or `sm3_tf.sm3.SM3`. Keras 2's optimizer API that the
Keras 2 adapter builds on (`build`, `update_step`, `add_variable`) is the one of Keras 2.15.
"""

import importlib

import tensorflow as tf

from sm3_tf.versions import OLDEST_KERAS_2


def _release(version):
    return tuple(int(part) for part in version.split(".")[:2])


def tf_keras_version():
    """The version of the Keras package behind `tf.keras` ("2.15.0", "2.21.0", "3.15.1", ...).

    Raises:
      ImportError: `tf.keras` cannot be imported (e.g. TF_USE_LEGACY_KERAS=1 without tf_keras),
        saying what to install.
    """
    try:
        package = tf.keras.optimizers.Optimizer.__module__.split(".")[0]
    except ImportError as error:
        release = ".".join(tf.version.VERSION.split(".")[:2])
        raise ImportError(
            f"sm3_tf needs tf.keras, which TensorFlow {tf.version.VERSION} cannot import "
            f"({error}). With TF_USE_LEGACY_KERAS=1, install the tf_keras matching TensorFlow: "
            f"pip install 'tf_keras~={release}.0'."
        ) from error
    return importlib.import_module(package).__version__


def is_keras_2(version):
    """Whether Keras `version` is a Keras 2 (the `sm3_tf.keras2` adapter's)."""
    return _release(version) < (3, 0)


def keras_2_problem(version):
    """Why `tf.keras` at Keras `version` cannot run `sm3_tf.SM3` (None when it can)."""
    if is_keras_2(version) and _release(version) < OLDEST_KERAS_2:
        oldest = ".".join(map(str, OLDEST_KERAS_2))
        return (
            f"sm3_tf.SM3 needs tf.keras to be Keras {oldest} or later (TensorFlow 2.15's Keras, "
            f"or tf_keras with TF_USE_LEGACY_KERAS=1) or Keras 3; tf.keras is Keras {version} "
            f"with TensorFlow {tf.version.VERSION}. Upgrade TensorFlow and Keras."
        )
    return None


def tf_keras_is_keras_2():
    """True when `tf.keras` is Keras 2, i.e. `sm3_tf.SM3` must be the Keras 2 optimizer.

    Raises:
      ImportError: naming the versions, when that Keras 2 is older than 2.15.
    """
    version = tf_keras_version()
    problem = keras_2_problem(version)
    if problem:
        raise ImportError(problem)
    return is_keras_2(version)
