"""The optimizers the memory and batch-headroom benchmarks compare, by short name.

One place defines them so that every table and figure means the same thing by "sm3_bf16".
Learning rates do not matter for memory, so every optimizer gets its Keras/SM3 default; the
convergence benchmark builds its optimizers through `sm3_tf.factory` instead (as the trainer does).

SM3 runs its fused in-place kernel when the kernels are built (`fused=None`); the `*_tf_ops`
variants force the plain-TF-ops step (`fused=False`, the path used without a compiler and under
XLA), whose state is the same but whose step allocates full-size temporaries.
"""

import keras

import sm3_tf

# Short name -> (label for tables and plots, constructor). Order is the order of every table.
VARIANTS = {
    "adam": ("Adam", keras.optimizers.Adam),
    "adagrad": ("Adagrad", keras.optimizers.Adagrad),
    "adafactor": ("Adafactor", keras.optimizers.Adafactor),
    "sm3": ("SM3 (momentum f32)", lambda: sm3_tf.SM3(momentum=0.9)),
    "sm3_bf16": (
        "SM3 (momentum bf16)",
        lambda: sm3_tf.SM3(momentum=0.9, momentum_dtype="bfloat16"),
    ),
    "sm3_nomom": ("SM3 (no momentum)", lambda: sm3_tf.SM3(momentum=0.0)),
}

# Same state as "sm3" / "sm3_nomom", different step: measured for peak memory only.
TF_OPS_VARIANTS = {
    "sm3_tf_ops": ("SM3 (momentum f32, TF ops)", lambda: sm3_tf.SM3(momentum=0.9, fused=False)),
    "sm3_nomom_tf_ops": (
        "SM3 (no momentum, TF ops)",
        lambda: sm3_tf.SM3(momentum=0.0, fused=False),
    ),
}
_ALL = {**VARIANTS, **TF_OPS_VARIANTS}

# Not an optimizer: forward and backward pass only, the model's own share of peak memory.
MODEL_ONLY = "none"


def names(with_tf_ops=False):
    """Short names of the optimizers, in table order (optionally with the TF-ops SM3 variants)."""
    return list(_ALL if with_tf_ops else VARIANTS)


def label(name):
    """The human-readable label of short name `name` (MODEL_ONLY included)."""
    if name == MODEL_ONLY:
        return "model only (no optimizer)"
    return _ALL[name][0]


def make(name):
    """A fresh, unbuilt optimizer for short name `name`."""
    if name not in _ALL:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(_ALL)}")
    return _ALL[name][1]()
