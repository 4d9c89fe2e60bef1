"""`--t2t_usr_dir`: the user's own problems, models and hparams sets, as in T2T.

    sm3-trainer --t2t_usr_dir=~/my_t2t --problem=my_problem --model=my_model ...

The directory is a Python package (or a module directory) whose import registers things with
`sm3_t2t.registry`; T2T's `usr_dir.import_usr_dir` semantics: its parent directory goes on the
import path for the import, and the module is imported by the directory's name, so its own
modules import each other as `from my_t2t import my_problem` or relatively.
"""

import importlib
import os
import sys


def import_usr_dir(usr_dir):
    """Imports the package at `usr_dir` ('' or None: nothing); returns its absolute path or ''.

    Raises:
      FileNotFoundError: `usr_dir` is not a directory.
      ImportError: the package fails to import (the error is the package's own).
    """
    if not usr_dir:
        return ""
    path = absolute_path(usr_dir)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--t2t_usr_dir={usr_dir}: no such directory")
    containing_dir, module_name = os.path.split(path)
    loaded = sys.modules.get(module_name)
    if loaded is not None and not _comes_from(loaded, path):
        raise ImportError(
            f"--t2t_usr_dir={usr_dir}: a module named {module_name!r} is already imported from "
            f"{getattr(loaded, '__file__', None) or 'elsewhere'}; rename the directory"
        )
    # T2T's import_usr_dir: the directory's parent on the path just for this import.
    sys.path.insert(0, containing_dir)
    try:
        importlib.import_module(module_name)
    finally:
        sys.path.remove(containing_dir)
    return path


def absolute_path(usr_dir):
    """`usr_dir` with `~` expanded, made absolute, without a trailing slash ('' stays '')."""
    return os.path.abspath(os.path.expanduser(usr_dir).rstrip("/")) if usr_dir else ""


def _comes_from(module, path):
    files = [getattr(module, "__file__", None) or ""] + list(getattr(module, "__path__", []))
    return any(os.path.abspath(f).startswith(path + os.sep) or f == path for f in files if f)
