"""The layers' import rules, read from the source with `ast` (nothing is imported):

- `sm3_tf`, the optimizer library, imports nothing from the T2T layer `sm3_t2t` or from
  `benchmarks`: the hparams -> optimizer glue lives in `sm3_t2t.optimizers`. (`sm3_tf/t2t.py`,
  the registration for real tensor2tensor, reads T2T hparams names, and still imports nothing
  from `sm3_t2t`.)
- Neither tests nor benchmarks edit `sys.path`: pyproject.toml's pytest `pythonpath` and the
  editable install make everything importable, and benchmarks run as `python -m benchmarks.x`.
- No module of `models/` is over 400 lines.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN_IN_SM3_TF = ("sm3_t2t", "benchmarks")


def _python_files(*directories):
    return sorted(p for d in directories for p in (ROOT / d).rglob("*.py"))


def imported_modules(path):
    """Every absolute module name `path` imports, at any depth (also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    return names


def test_the_checker_sees_imports_at_any_depth(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nfrom sm3_t2t import registry\n"
        "def f():\n    import benchmarks.roster\n    importlib.import_module('sm3_t2t.x')\n"
    )
    assert imported_modules(sample) == ["os", "sm3_t2t", "benchmarks.roster", "sm3_t2t.x"]


@pytest.mark.parametrize("path", _python_files("sm3_tf"), ids=lambda p: p.name)
def test_sm3_tf_imports_nothing_from_the_t2t_layer_or_benchmarks(path):
    offending = [
        name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN_IN_SM3_TF
    ]
    assert not offending, f"{path.relative_to(ROOT)} imports {offending}"


def _edits_sys_path(tree):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            return node.lineno
    return None


@pytest.mark.parametrize("path", _python_files("tests", "benchmarks"), ids=lambda p: p.name)
def test_tests_and_benchmarks_leave_sys_path_alone(path):
    line = _edits_sys_path(ast.parse(path.read_text(encoding="utf-8")))
    assert line is None, f"{path.relative_to(ROOT)}:{line} touches sys.path"
    assert not (ROOT / "conftest.py").exists(), "a root conftest.py would be a sys.path edit"


@pytest.mark.parametrize("path", _python_files("models"), ids=lambda p: p.name)
def test_no_module_of_models_is_over_400_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"
