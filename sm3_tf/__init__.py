"""sm3-tf: the SM3 optimizer (Anil et al., NeurIPS 2019) for TensorFlow and Keras.

    import sm3_tf
    model.compile(optimizer=sm3_tf.SM3(learning_rate=0.1, momentum=0.9), ...)

`sm3_tf.SM3` is the Keras 3 optimizer, `sm3_tf.v1.SM3Optimizer` the tf.compat.v1 one,
`sm3_tf.schedules` the authors' warm-up, `sm3_tf.memory` the optimizer-state accounting.
`python -m sm3_tf` says which versions, kernel library and step paths this installation has.
"""

from sm3_tf import versions

# Before anything else uses TensorFlow or Keras: an unsupported version gets an error naming it.
versions.check()

from sm3_tf import schedules  # noqa: E402
from sm3_tf.sm3 import SM3  # noqa: E402
from sm3_tf.step_config import StepConfig  # noqa: E402

__version__ = "0.1.0"

__all__ = ["SM3", "StepConfig", "schedules", "__version__"]
