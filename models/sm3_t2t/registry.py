"""Registries of problems, hyper-parameter sets and models, named as Tensor2Tensor names them.

Usage mirrors `tensor2tensor.utils.registry`:

    @register_problem                      # registered as "translate_enfr_wesnoth"
    class TranslateEnfrWesnoth(Text2TextProblem): ...

    @register_hparams("transformer_tiny")  # or bare: registered under the function's name
    def my_tiny_hparams(): ...

    problem("translate_enfr_wesnoth")      # -> a fresh Problem instance
    hparams_set("transformer_base")        # -> a fresh HParams (the function is called again)
    model("transformer")                   # -> the registered class

Classes default to their snake_cased name with digits attached to the word before them
(`TranslateEnfrWmt32k` -> `translate_enfr_wmt32k`); functions default to their own name.
"""

import difflib
import re

from sm3_t2t.hparams import HParams

# T2T's (and tfds') rule: a capital starts a word, digits stick to the word before them.
_FIRST_CAP_RE = re.compile(r"(.)([A-Z][a-z0-9]+)")
_ALL_CAP_RE = re.compile(r"([a-z0-9])([A-Z])")


def default_name(obj):
    """The name `obj` is registered under when no name is given (T2T's rule)."""
    if isinstance(obj, type):
        spaced = _FIRST_CAP_RE.sub(r"\1_\2", obj.__name__)
        return _ALL_CAP_RE.sub(r"\1_\2", spaced).lower()
    return obj.__name__


class UnknownNameError(KeyError):
    """A look-up of a name nobody registered; the message lists close matches."""

    def __str__(self):
        # KeyError would show the message with quotes around it.
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(ValueError):
    """A second registration under a name already taken."""


class Registry:
    """One name -> object table; `kind` ("problem", ...) appears in error messages.

    Args:
      kind: what the registry holds, for messages.
      check: raises TypeError for objects this registry cannot hold.
      name_attribute: if set, a registered class gets its name in this class attribute.
    """

    def __init__(self, kind, check, name_attribute=None):
        self.kind = kind
        self._check = check
        self._name_attribute = name_attribute
        self._entries = {}

    def register(self, name, obj):
        """Adds `obj` under `name`; a name can be registered once only."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        self._check(obj, self.kind)
        if name in self._entries:
            raise DuplicateNameError(
                f"{self.kind} {name!r} is already registered (by {self._entries[name]!r}); "
                f"pick another name"
            )
        self._entries[name] = obj
        if self._name_attribute and self._name_attribute not in vars(obj):
            setattr(obj, self._name_attribute, name)  # first name wins if registered twice
        return obj

    def unregister(self, name):
        """Removes `name` (for tests and interactive re-definitions)."""
        self[name]  # raises the helpful error for unknown names
        del self._entries[name]

    def __getitem__(self, name):
        if name not in self._entries:
            names = self.names()
            close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}.{hint} "
                f"Registered {self.kind}s: {', '.join(names) or '(none)'}"
            )
        return self._entries[name]

    def __contains__(self, name):
        return name in self._entries

    def names(self):
        """Sorted registered names."""
        return sorted(self._entries)


def _must_be_class(obj, kind):
    if not isinstance(obj, type):
        raise TypeError(f"register_{kind} expects a class, got {obj!r}")


def _must_be_callable(obj, kind):
    if isinstance(obj, type) or not callable(obj):
        raise TypeError(f"register_{kind} expects a function returning HParams, got {obj!r}")


# Problem.name reads this attribute from the class itself, not from a registered base class.
PROBLEM_NAME_ATTRIBUTE = "_t2t_problem_name"
PROBLEMS = Registry("problem", _must_be_class, name_attribute=PROBLEM_NAME_ATTRIBUTE)
HPARAMS = Registry("hparams", _must_be_callable)
MODELS = Registry("model", _must_be_class)


def _decorator(registry, name_or_obj, name):
    """Supports `@register_x`, `@register_x("name")`, `@register_x()` and `@register_x(name=..)`."""
    if name_or_obj is not None and not isinstance(name_or_obj, str):
        if name is not None:
            raise TypeError("give the name either positionally or as name=, not both")
        return registry.register(default_name(name_or_obj), name_or_obj)
    chosen = name_or_obj if name_or_obj is not None else name

    def decorate(obj):
        return registry.register(chosen if chosen is not None else default_name(obj), obj)

    return decorate


def register_problem(name_or_cls=None, name=None):
    """Registers a Problem class; look it up with `problem(name)`."""
    return _decorator(PROBLEMS, name_or_cls, name)


def register_hparams(name_or_fn=None, name=None):
    """Registers a function returning HParams; look it up with `hparams_set(name)`."""
    return _decorator(HPARAMS, name_or_fn, name)


def register_model(name_or_cls=None, name=None):
    """Registers a model class; look it up with `model(name)`."""
    return _decorator(MODELS, name_or_cls, name)


def problem(name):
    """A new instance of the problem registered as `name`."""
    return PROBLEMS[name]()


def hparams_set(name):
    """A fresh HParams from the function registered as `name` (each call builds a new one)."""
    hparams = HPARAMS[name]()
    if not isinstance(hparams, HParams):
        raise TypeError(f"hparams set {name!r} returned {type(hparams).__name__}, expected HParams")
    return hparams


def model(name):
    """The model class registered as `name`."""
    return MODELS[name]


def list_problems():
    """Sorted registered problem names."""
    return PROBLEMS.names()


def list_hparams():
    """Sorted registered hparams set names."""
    return HPARAMS.names()


def list_models():
    """Sorted registered model names."""
    return MODELS.names()


def help_string():
    """Everything registered, formatted for a command line's --help."""
    sections = (
        ("Problems", list_problems()),
        ("HParams sets", list_hparams()),
        ("Models", list_models()),
    )
    return "\n".join(
        f"{title}:\n  " + ("\n  ".join(names) or "(none)") for title, names in sections
    )
