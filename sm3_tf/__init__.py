"""sm3-tf: the SM3 optimizer (Anil et al., NeurIPS 2019) for TensorFlow and Keras.

    import sm3_tf
    model.compile(optimizer=sm3_tf.SM3(learning_rate=0.1, momentum=0.9), ...)

`sm3_tf.SM3` is the Keras 3 optimizer, `sm3_tf.v1.SM3Optimizer` the tf.compat.v1 one,
`sm3_tf.schedules` the authors' warm-up, `sm3_tf.memory` the optimizer-state accounting.
`python -m sm3_tf` says which versions, kernel library and step paths this installation has.

This library knows nothing of Tensor2Tensor: the hparams -> optimizer glue is
`sm3_t2t.optimizers`, and tests/test_layering.py checks that nothing here imports `sm3_t2t` or
`benchmarks`. Note for whoever adds `sm3_tf/t2t.py` (the planned registration of SM3 with real
tensor2tensor's `registry.register_optimizer`): it is the only module here allowed to know T2T
hparams names (`optimizer_sm3_*`, `clip_grad_norm`, ...); it must still import nothing from
`sm3_t2t`, and should read the same names as `sm3_t2t.optimizers` so that one hparams set means
the same optimizer in both.
"""

from sm3_tf import versions

# Before anything else uses TensorFlow or Keras: an unsupported version gets an error naming it.
versions.check()

from sm3_tf import schedules  # noqa: E402
from sm3_tf.sm3 import SM3  # noqa: E402
from sm3_tf.step_config import StepConfig  # noqa: E402

__version__ = "0.1.0"

__all__ = ["SM3", "StepConfig", "schedules", "__version__"]
