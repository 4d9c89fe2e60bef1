"""sm3-tf: the SM3 optimizer (Anil et al., NeurIPS 2019) for TensorFlow and Keras.

    import sm3_tf
    model.compile(optimizer=sm3_tf.SM3(learning_rate=0.1, momentum=0.9), ...)

`sm3_tf.SM3` is the Keras optimizer: the Keras 3 one (`sm3_tf.sm3.SM3`), or the Keras 2 one
(`sm3_tf.keras2.SM3`) where `tf.keras` is Keras 2 (TensorFlow 2.15, or tf_keras with
TF_USE_LEGACY_KERAS=1). `sm3_tf.v1.SM3Optimizer` is the tf.compat.v1 one, `sm3_tf.schedules` the
authors' warm-up, `sm3_tf.memory` the optimizer-state accounting.
`python -m sm3_tf` says which versions, kernel library and step paths this installation has.

This library knows nothing of the T2T-style layer: the hparams -> optimizer glue is
`sm3_t2t.optimizers`, and tests/test_layering.py checks that nothing here imports `sm3_t2t` or
`benchmarks`. `sm3_tf.t2t`, the registration of SM3 with real tensor2tensor, is the only module
here that knows T2T hparams names (`optimizer_sm3_*`); it reads the same names, with the same
defaults, as `sm3_t2t.optimizers` (tests/t2t/test_t2t_import.py compares them).
"""

from sm3_tf import versions

# Before anything else uses TensorFlow or Keras: an unsupported version gets an error naming it.
versions.check()

from sm3_tf import schedules, which_keras  # noqa: E402
from sm3_tf.step_config import StepConfig  # noqa: E402

if which_keras.tf_keras_is_keras_2():
    from sm3_tf.keras2 import SM3
else:
    from sm3_tf.sm3 import SM3

__version__ = "0.1.0"

__all__ = ["SM3", "StepConfig", "schedules", "__version__"]
