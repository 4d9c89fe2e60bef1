"""`HParams`, the typed bag of hyper-parameters T2T code passes around, and `basic_params1`.

A small re-implementation of `tf.contrib.training.HParams` (gone from TensorFlow 2):

    hparams = basic_params1()
    hparams.parse("batch_size=2048,learning_rate=0.5,optimizer_sm3_variant=I")
    hparams.batch_size            # 2048 (still an int)
    hparams.add_hparam("hidden_size", 512)

Every value keeps the type it was created with, so a typo'd or mistyped override fails loudly
instead of silently training something else. Parsing is a small grammar, never `eval`.
"""

import json
import numbers
import re

# One assignment of `parse`: `name=value` or `name=[v1, v2]`, separated by commas (the grammar
# of tf.contrib's HParams, minus indexed assignment).
_ASSIGNMENT_RE = re.compile(
    r"""
    \s*(?P<name>[A-Za-z_][\w.]*)\s*=\s*
    (?:\[(?P<values>[^\]]*)\]|(?P<value>[^,\[\]]*))
    \s*(?:,|$)""",
    re.VERBOSE,
)
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def _type_name(value):
    return type(value).__name__


def _coerce(name, value, current):
    """`value` converted to the type of `current` (the existing value), or ValueError."""

    def fail(why=""):
        raise ValueError(
            f"hparam {name!r}: cannot set {value!r} on a {_type_name(current)} "
            f"hparam (current value {current!r}){why}"
        )

    if current is None or value is None:
        return value  # untyped: a None default accepts anything, anything may be reset to None
    if isinstance(current, bool):
        if not isinstance(value, bool):
            fail()
        return value
    if isinstance(current, int):
        # numbers.Integral admits numpy integers; they are stored as plain ints for JSON.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            fail()
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            fail()
        return float(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            fail()
        return value
    if isinstance(current, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            fail(": expected a list")
        if current:  # the existing elements give the element type
            return [_coerce(name, item, current[0]) for item in value]
        return list(value)
    if not isinstance(value, type(current)):
        fail()
    return value


def _parse_scalar(name, text, current):
    """Parses one textual value into the type of `current` (inferring it when current is None)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if isinstance(current, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"hparam {name!r}: expected true or false, got {text!r}")
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"hparam {name!r}: expected an integer, got {text!r}") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"hparam {name!r}: expected a number, got {text!r}") from None
    if isinstance(current, str):
        return text
    for convert in (int, float):  # untyped (None) default: the most specific reading wins
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


class HParams:
    """Named hyper-parameters with attribute access and type-checked updates.

    Args:
      **values: the initial hparams, as `add_hparam` would add them.
    """

    def __init__(self, **values):
        object.__setattr__(self, "_values", {})
        for name, value in values.items():
            self.add_hparam(name, value)

    def add_hparam(self, name, value):
        """Adds a new hparam; its type is fixed by `value`. Existing names are an error."""
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"hparam name must be an identifier, got {name!r}")
        if name in self._values:
            raise ValueError(
                f"hparam {name!r} already exists (value {self._values[name]!r}); "
                f"use set_hparam to change it"
            )
        if hasattr(type(self), name):
            raise ValueError(f"hparam name {name!r} would hide the HParams method of that name")
        self._values[name] = list(value) if isinstance(value, tuple) else value

    def set_hparam(self, name, value):
        """Sets an existing hparam, converting int -> float where that is lossless."""
        if name not in self._values:
            raise ValueError(
                f"unknown hparam {name!r}; add it with add_hparam first "
                f"(known: {', '.join(sorted(self._values))})"
            )
        self._values[name] = _coerce(name, value, self._values[name])

    def del_hparam(self, name):
        """Removes an hparam (no error if absent, as in tf.contrib)."""
        self._values.pop(name, None)

    def get(self, name, default=None):
        """The value of `name`, or `default` when there is no such hparam."""
        return self._values.get(name, default)

    def values(self):
        """A copy of all hparams as a plain dict."""
        return {
            name: list(value) if isinstance(value, list) else value
            for name, value in self._values.items()
        }

    def parse(self, text):
        """Overrides from `"a=1,b=0.5,c=name,d=true,e=[1,2]"`; returns self.

        Every name must already exist and keep its type; the whole string is checked before
        anything changes, so a bad override leaves the hparams untouched.
        """
        if not isinstance(text, str):
            raise ValueError(f"hparams overrides must be a string, got {text!r}")
        updates, position = {}, 0
        text = text.strip()
        while position < len(text):
            match = _ASSIGNMENT_RE.match(text, position)
            if not match or match.end() == position:
                raise ValueError(
                    f"cannot parse hparams overrides {text!r} at {text[position:]!r}"
                    f" (expected name=value or name=[v1,v2], comma-separated)"
                )
            name = match.group("name")
            if name not in self._values:
                raise ValueError(f"unknown hparam {name!r} in overrides {text!r}")
            if name in updates:
                raise ValueError(f"hparam {name!r} is assigned twice in {text!r}")
            updates[name] = self._parse_value(name, match)
            position = match.end()
        for name, value in updates.items():
            self.set_hparam(name, value)
        return self

    def _parse_value(self, name, match):
        current = self._values[name]
        if match.group("values") is None:
            if isinstance(current, list):
                raise ValueError(f"hparam {name!r} is a list: write {name}=[v1,v2]")
            return _parse_scalar(name, match.group("value"), current)
        if current is not None and not isinstance(current, list):
            raise ValueError(f"hparam {name!r} is a {_type_name(current)}, not a list")
        element = current[0] if current else None
        items = [item for item in match.group("values").split(",") if item.strip()]
        return [_parse_scalar(name, item, element) for item in items]

    def override_from_dict(self, values):
        """Sets every (existing) hparam in the dict `values`; returns self."""
        for name, value in values.items():
            self.set_hparam(name, value)
        return self

    def to_json(self, indent=None, sort_keys=True):
        """The hparams as a JSON object string."""
        return json.dumps(self._values, indent=indent, sort_keys=sort_keys)

    @classmethod
    def from_json(cls, text):
        """A new HParams holding the JSON object `text` (as written by `to_json`)."""
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("hparams JSON must be an object of name: value")
        return cls(**values)

    def parse_json(self, text):
        """Overrides existing hparams from a JSON object string (tf.contrib's name); returns
        self."""
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("hparams JSON must be an object of name: value")
        return self.override_from_dict(values)

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"HParams has no hparam {name!r}")

    def __setattr__(self, name, value):
        if name not in self._values:
            raise AttributeError(f"unknown hparam {name!r}: use add_hparam({name!r}, value)")
        self.set_hparam(name, value)

    def __contains__(self, name):
        return name in self._values

    def __eq__(self, other):
        return isinstance(other, HParams) and self._values == other._values

    def __repr__(self):
        items = ", ".join(f"{name}={value!r}" for name, value in sorted(self._values.items()))
        return f"HParams({items})"

    def __getstate__(self):
        return self._values

    def __setstate__(self, state):
        object.__setattr__(self, "_values", dict(state))


def basic_params1():
    """The hparams every problem and optimizer reads, with T2T's names and defaults.

    Data (read by `Problem.dataset`): `batch_size` counts tokens per batch (of the longer of
    inputs/targets, padding included); `max_length` drops longer training examples (0: no
    limit); `min_length_bucket` and `length_bucket_step` shape the length buckets;
    `fixed_shapes=True` makes every batch `[batch_size // max_length, max_length]` (XLA/TPU).
    Optimizer fields are read by `sm3_t2t.optimizers`, never here.
    """
    return HParams(
        batch_size=4096,
        max_length=256,
        min_length_bucket=8,
        length_bucket_step=1.1,
        fixed_shapes=False,
        optimizer="sm3",
        learning_rate=0.1,
        learning_rate_warmup_steps=1000,
        learning_rate_warmup_power=2.0,
        learning_rate_cooldown_steps=0,
        optimizer_sm3_momentum=0.9,
        optimizer_sm3_beta2=1.0,
        optimizer_sm3_variant="II",
        optimizer_sm3_epsilon=0.0,
        optimizer_sm3_momentum_dtype="",
        optimizer_sm3_skip_nonfinite=False,
        optimizer_sm3_fused="auto",
        optimizer_adam_beta1=0.9,
        optimizer_adam_beta2=0.997,
        optimizer_adam_epsilon=1e-9,
        clip_grad_norm=0.0,
        seed=1234,
    )
