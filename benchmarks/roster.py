"""The optimizers every benchmark compares, with the label, colour and marker every table and
figure shows them with.

One place defines them, so that "sm3_bf16" means the same optimizer, and Adagrad the same colour,
in every table and figure. Each entry builds its optimizer through a public API (`sm3_tf.SM3`,
`keras.optimizers.*`) with its defaults; keyword arguments override them (learning rates do not
matter for memory, and the step benchmark sets its own). The convergence benchmark trains the
entries whose name is also a value of the trainer's `optimizer` hparam (`trainer_names`), through
the trainer's own optimizer construction.

SM3 runs its fused in-place kernel when the kernels are built (`fused=None`); the `*_tf_ops`
entries force the plain-TF-ops step (`fused=False`, the path used without a compiler and under
XLA), whose state is the same but whose step allocates full-size temporaries.
"""

import dataclasses
from typing import Callable

import keras

import sm3_tf


@dataclasses.dataclass(frozen=True)
class Entry:
    """One optimizer of the comparisons."""

    name: str  # short name: tables' keys, JSON keys, command lines
    label: str  # what tables and legends print
    color: str  # a matplotlib colour, the same in every figure
    marker: str  # a matplotlib marker, distinct per entry
    make: Callable[..., keras.optimizers.Optimizer]  # keyword arguments override the defaults
    tf_ops: bool = False  # same state as a fused entry: measured for peak memory only


def _sm3(**defaults):
    return lambda **overrides: sm3_tf.SM3(**{**defaults, **overrides})


# In the order of every table.
ENTRIES = (
    Entry("adam", "Adam", "tab:blue", "o", keras.optimizers.Adam),
    Entry("adagrad", "Adagrad", "tab:green", "s", keras.optimizers.Adagrad),
    Entry("adafactor", "Adafactor", "tab:purple", "^", keras.optimizers.Adafactor),
    Entry("sm3", "SM3 (momentum f32)", "tab:red", "D", _sm3(momentum=0.9)),
    Entry(
        "sm3_bf16",
        "SM3 (momentum bf16)",
        "tab:orange",
        "v",
        _sm3(momentum=0.9, momentum_dtype="bfloat16"),
    ),
    Entry("sm3_nomom", "SM3 (no momentum)", "tab:brown", "P", _sm3(momentum=0.0)),
    Entry(
        "sm3_tf_ops",
        "SM3 (momentum f32, TF ops)",
        "tab:pink",
        "X",
        _sm3(momentum=0.9, fused=False),
        tf_ops=True,
    ),
    Entry(
        "sm3_nomom_tf_ops",
        "SM3 (no momentum, TF ops)",
        "tab:olive",
        "*",
        _sm3(momentum=0.0, fused=False),
        tf_ops=True,
    ),
)
_BY_NAME = {entry.name: entry for entry in ENTRIES}

# Not an optimizer: forward and backward pass only, the model's own share of peak memory.
MODEL_ONLY = "none"
MODEL_ONLY_LABEL = "model only (no optimizer)"
MODEL_ONLY_COLOR = "0.45"


def entry(name):
    """The `Entry` called `name`.

    Raises:
      ValueError: an unknown name, listing the known ones.
    """
    if name not in _BY_NAME:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def names(with_tf_ops=False):
    """Short names of the optimizers, in table order (optionally with the TF-ops SM3 entries)."""
    return [e.name for e in ENTRIES if with_tf_ops or not e.tf_ops]


def trainer_names():
    """The names that are also values of the trainer's `optimizer` hparam, in table order."""
    from sm3_t2t import optimizers

    return [name for name in names() if name in optimizers.OPTIMIZERS]


def label(name):
    """The human-readable label of `name` (MODEL_ONLY included)."""
    return MODEL_ONLY_LABEL if name == MODEL_ONLY else entry(name).label


def color(name):
    """The colour of `name` in every figure (MODEL_ONLY included)."""
    return MODEL_ONLY_COLOR if name == MODEL_ONLY else entry(name).color


def make(name, **overrides):
    """A fresh, unbuilt optimizer for `name`, with `overrides` of its constructor's defaults."""
    return entry(name).make(**overrides)
