"""The TensorFlow and Keras versions sm3-tf supports, and the check `import sm3_tf` runs.

TensorFlow is not an install requirement (as in TF Addons): TensorFlow comes in several
distributions (tensorflow, tensorflow-cpu, tensorflow-macos, ...) and the user's own must stay.
The extras `sm3-tf[tensorflow]` and `sm3-tf[tensorflow-cpu]` install one in TENSORFLOW_RANGE.
setup.py reads the two requirement strings below from this file, so they are stated once.

Below the oldest supported TensorFlow or Keras, importing sm3_tf raises an ImportError naming the
installed and the supported versions. A TensorFlow newer than the newest tested one gets one
warning (it may well work; nobody has tried it).
"""

import re
import warnings

# PEP 440 specifiers, read by setup.py (keep them plain string literals).
TENSORFLOW_RANGE = ">=2.15,<2.22"
# Keras 2.15 (TF 2.15's own), or a Keras 3 that has what sm3_tf.SM3 uses (3.10 added
# `Optimizer._overwrite_variable_with_gradient`). Keras 3.0-3.9 would be replaced, Keras 2 kept.
KERAS_RANGE = (
    ">=2.15,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*,!=3.5.*,!=3.6.*,!=3.7.*,!=3.8.*,!=3.9.*"
)

OLDEST_TENSORFLOW = (2, 15)
NEWEST_TENSORFLOW = (2, 21)
OLDEST_KERAS_2 = (2, 15)
OLDEST_KERAS_3 = (3, 10)


def release(version):
    """(major, minor) of a version string such as "2.21.0" or "2.16.0rc1"; (0, 0) if unreadable."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def supported_range():
    """The supported TensorFlow versions, in words."""
    oldest, newest = (".".join(map(str, v)) for v in (OLDEST_TENSORFLOW, NEWEST_TENSORFLOW))
    return f"TensorFlow {oldest} to {newest}"


def tensorflow_problem(version):
    """(error, warning): why `version` of TensorFlow cannot be used, or why it is untested."""
    if release(version) < OLDEST_TENSORFLOW:
        return (
            f"sm3_tf needs {supported_range()}; TensorFlow {version} is installed. "
            f"Upgrade it (pip install 'tensorflow{TENSORFLOW_RANGE}') or use an older sm3-tf.",
            None,
        )
    if release(version) > NEWEST_TENSORFLOW:
        return None, (
            f"sm3_tf is tested with {supported_range()}; TensorFlow {version} is newer and "
            f"untested. Please report what fails."
        )
    return None, None


def keras_problem(version):
    """Why this Keras cannot be used (None when it can)."""
    major_minor = release(version)
    too_old = OLDEST_KERAS_3 if major_minor[0] >= 3 else OLDEST_KERAS_2
    if major_minor < too_old:
        return (
            f"sm3_tf needs Keras 2.15 (with TensorFlow 2.15) or Keras >= 3.10; Keras {version} "
            f"is installed. Upgrade it: pip install 'keras{KERAS_RANGE}'."
        )
    return None


def check():
    """Raises ImportError naming the versions when TensorFlow or Keras cannot be used."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(
            f"sm3_tf needs TensorFlow ({supported_range()}), which could not be imported "
            f"({error}). Install one, e.g. pip install 'sm3-tf[tensorflow-cpu]' (or "
            f"'sm3-tf[tensorflow]' for the GPU build)."
        ) from error
    error, warning = tensorflow_problem(tf.version.VERSION)
    if error:
        raise ImportError(error)
    if warning:
        warnings.warn(warning, RuntimeWarning, stacklevel=3)
    import keras

    error = keras_problem(keras.__version__)
    if error:
        raise ImportError(error)
