"""The PEP 517 backend of sm3-tf: setuptools', plus a TensorFlow to compile the kernel against.

A wheel carries the fused kernel built for one TensorFlow (see setup.py). pip's isolated build
still runs the interpreter of the environment it installs into, so the kernel is compiled for
that environment's TensorFlow when it has one. A wheel built where no TensorFlow is in sight
(`python -m build`, whose isolated environment is a new one) asks for the newest supported
TensorFlow as a build requirement instead. This only decides what the kernel is compiled
against; the package's own requirements are static (setup.py).
"""

import ast
import pathlib
import sysconfig

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (the hooks this backend does not change)

HERE = pathlib.Path(__file__).resolve().parents[2]


def package_constant(relative_path, name):
    """The string assigned to `name` at the top level of a source file (read, not imported)."""
    tree = ast.parse((HERE / relative_path).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"{relative_path} assigns no {name}")


def target_site_packages():
    """The site-packages of the environment being built for (an isolated build hides them from
    `import`, but the interpreter's prefix is still the target's)."""
    paths = sysconfig.get_paths()
    return [pathlib.Path(p) for p in dict.fromkeys([paths["purelib"], paths["platlib"]])]


def tensorflow_in_sight():
    """Whether the build can compile against a TensorFlow of the target environment."""
    return any((site / "tensorflow" / "__init__.py").is_file() for site in target_site_packages())


def build_tensorflow():
    """The TensorFlow to compile against when none is in sight: the CPU wheel where one exists."""
    supported = package_constant("sm3_tf/versions.py", "TENSORFLOW_RANGE")
    x86_linux = 'sys_platform == "linux" and platform_machine == "x86_64"'
    return [
        f"tensorflow-cpu{supported}; {x86_linux}",
        f'tensorflow{supported}; sys_platform != "linux" or platform_machine != "x86_64"',
    ]


def get_requires_for_build_wheel(config_settings=None):
    requires = _setuptools.get_requires_for_build_wheel(config_settings)
    return requires + ([] if tensorflow_in_sight() else build_tensorflow())
