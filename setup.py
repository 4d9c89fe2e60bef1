"""Packaging of sm3-tf: the SM3 optimizer, its fused C++ kernels and the T2T-style Transformer.

    pip install sm3-tf                    # keeps your TensorFlow and Keras (TF 2.15 to 2.21)
    pip install 'sm3-tf[tensorflow-cpu]'  # or [tensorflow]: also installs a supported TensorFlow
    pip install -e '.[test,models]'       # a checkout: python -m sm3_tf.kernel_loader --build

As in TF Addons, TensorFlow is not an install requirement: it comes in several distributions
(tensorflow, tensorflow-cpu, tensorflow-macos, ...) and installing sm3-tf must not swap the user's
for another. The extras name the supported range, and `import sm3_tf` checks the versions
(sm3_tf/versions.py, where both ranges are written once). The requirements are static: the same
for every build.

A wheel (`pip wheel .`, `python -m build`) carries the fused kernel compiled for the TensorFlow the
build sees (tools/build_backend says which) and is then tagged for the platform (py3-none-<plat>:
the library depends on TensorFlow's C++ ABI and the machine, not on Python's). The kernel's name is
its key (TensorFlow version and ABI, sources, flags), so with another TensorFlow the loader says
so once and builds one into the cache, or takes the TF-ops path without a compiler. The C++
sources ship too (`sm3_tf/_kernel_sources`). An editable install builds nothing.
"""

import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tools" / "build_backend"))

from sm3_build_backend import package_constant  # noqa: E402

TENSORFLOW_RANGE = package_constant("sm3_tf/versions.py", "TENSORFLOW_RANGE")
KERAS_RANGE = package_constant("sm3_tf/versions.py", "KERAS_RANGE")
KERNEL_DIR = pathlib.Path("sm3_tf") / "_kernel_build"


class BuildPyWithKernels(build_py):
    """build_py that ships the kernels' sources and, for a wheel, a kernel library built now."""

    def run(self):
        super().run()
        package = pathlib.Path(self.build_lib) / "sm3_tf"
        self.copy_tree(str(HERE / "kernels" / "cc"), str(package / "_kernel_sources" / "cc"))
        # Editable installs run from the checkout, whose kernels/ the loader finds by itself.
        if not getattr(self, "editable_mode", False):
            self.build_kernels(pathlib.Path(self.build_lib) / KERNEL_DIR)

    def build_kernels(self, output_dir):
        """Compiles (or takes from the cache, same key) the library for the TensorFlow in sight;
        on any failure the wheel carries the sources only and says so."""
        shutil.rmtree(output_dir, ignore_errors=True)  # a reused build/ may hold another TF's
        command = [sys.executable, "-m", "sm3_tf.kernel_loader", "--build", "--output-dir"]
        # Without pip's PYTHONPATH, whose sitecustomize hides the site-packages of the environment
        # being installed into: the interpreter is that environment's, so its TF is in sight.
        result = subprocess.run(
            [*command, str(output_dir)],
            env={**os.environ, "PYTHONPATH": str(HERE)},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            print(result.stdout.strip())
        else:
            print(
                "sm3-tf: no kernel library in this build (it will be built on first use where "
                "a compiler exists): "
                + (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            )


class PlatformWheel(bdist_wheel):
    """A wheel tagged for the platform when it carries a kernel library, pure Python otherwise."""

    def run(self):
        self.run_command("build")
        build_lib = pathlib.Path(self.get_finalized_command("build_py").build_lib)
        self.root_is_pure = not any((build_lib / KERNEL_DIR).glob("*.so"))
        if not self.root_is_pure:  # install into platlib, the wheel's root
            self.distribution.has_ext_modules = lambda: True
        super().run()

    def get_tag(self):
        python, abi, plat = super().get_tag()
        return (python, abi, plat) if self.root_is_pure else ("py3", "none", plat)


setup(
    name="sm3-tf",
    version=package_constant("sm3_tf/__init__.py", "__version__"),
    description="SM3 memory-efficient adaptive optimizer (Anil et al., NeurIPS 2019) for "
    "TensorFlow and Keras, with fused C++ kernels",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    # The code is Apache-2.0; the Wesnoth corpus shipped in sm3_t2t/data/wesnoth is GPL-2.0+.
    license_expression="Apache-2.0 AND GPL-2.0-or-later",
    license_files=["LICENSE", "models/sm3_t2t/data/wesnoth/COPYING"],
    python_requires=">=3.9",
    packages=find_packages(include=["sm3_tf", "sm3_tf.*"])
    + find_packages("models", include=["sm3_t2t", "sm3_t2t.*"]),
    package_dir={"sm3_t2t": "models/sm3_t2t"},
    package_data={"sm3_t2t": ["data/wesnoth/*"]},
    cmdclass={"build_py": BuildPyWithKernels, "bdist_wheel": PlatformWheel},
    install_requires=["numpy", f"keras{KERAS_RANGE}"],
    extras_require={
        "tensorflow": [f"tensorflow{TENSORFLOW_RANGE}"],
        "tensorflow-cpu": [f"tensorflow-cpu{TENSORFLOW_RANGE}"],
        "test": ["pytest", "ml_dtypes", "ruff==0.17.6"],
        "models": ["sentencepiece", "sacrebleu", "absl-py", "tensorflow-datasets", "tensorboard"],
        "plots": ["matplotlib"],
        "bench": ["matplotlib", "psutil"],
    },
    entry_points={
        "console_scripts": [
            "sm3-trainer=sm3_t2t.trainer:run",
            "sm3-decoder=sm3_t2t.decoder:run",
        ],
    },
)
