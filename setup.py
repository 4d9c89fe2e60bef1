"""Packaging of sm3-tf: the SM3 optimizer, its fused C++ kernels and the T2T-style Transformer.

    pip install .                       # also compiles the kernels when TensorFlow is installed
    pip install -e '.[test,models]'     # then: python -m sm3_tf.kernel_loader --build
    pip install -e '.[bench]'           # PyTorch, the step benchmark's fused-Adam reference

TensorFlow comes in several distributions that all provide the `tensorflow` package
(tensorflow, tensorflow-cpu, tensorflow-macos, tf-nightly, ...). When one of them is already
installed, nothing more is required; otherwise `tensorflow>=2.16` is. Install tensorflow-cpu first
(as the `test` extra and the Makefile do) to keep the CPU-only wheel, or set
SM3_TF_TENSORFLOW_REQUIREMENT to the requirement you want ('' for none).

The kernels' C++ sources ship inside the package (`sm3_tf/_kernel_sources`), so an installed copy
can build them on first use. A wheel build compiles them too when the target environment's
TensorFlow can be imported, into `sm3_tf/_kernel_build`; the library is named by TensorFlow
version and source hash, so a later TensorFlow upgrade ignores it and rebuilds into the cache.
"""

import os
import pathlib
import re
import subprocess
import sys
import sysconfig

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
TENSORFLOW_DISTRIBUTIONS = {
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "tensorflow-aarch64",
    "intel-tensorflow",
    "tf-nightly",
    "tf-nightly-cpu",
}
REQUIREMENT_ENV = "SM3_TF_TENSORFLOW_REQUIREMENT"


def version():
    text = (HERE / "sm3_tf" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE).group(1)


def target_site_packages():
    """The site-packages of the environment being installed into.

    pip builds in an isolated environment that hides them from `import`, but the interpreter's
    prefix (and so these paths) is still the target's.
    """
    paths = sysconfig.get_paths()
    return [pathlib.Path(p) for p in dict.fromkeys([paths["purelib"], paths["platlib"]])]


def installed_tensorflow():
    """The name of the TensorFlow distribution installed in the target environment, or None."""
    for site in target_site_packages():
        for info in site.glob("*.dist-info"):
            name = re.sub(r"[-_.]+", "-", info.name.split("-")[0]).lower()
            if name in TENSORFLOW_DISTRIBUTIONS:
                return name
    return None


def tensorflow_requirement():
    """[] when a TensorFlow distribution is present, else ['tensorflow>=2.16'] (or the override)."""
    if REQUIREMENT_ENV in os.environ:
        requirement = os.environ[REQUIREMENT_ENV].strip()
        return [requirement] if requirement else []
    return [] if installed_tensorflow() else ["tensorflow>=2.16"]


class BuildPyWithKernels(build_py):
    """build_py that ships the kernels' sources and, when it can, a kernel library built now."""

    def run(self):
        super().run()
        package = pathlib.Path(self.build_lib) / "sm3_tf"
        self.copy_tree(str(HERE / "kernels" / "cc"), str(package / "_kernel_sources" / "cc"))
        # Editable installs run from the checkout, whose kernels/ the loader finds by itself.
        if not getattr(self, "editable_mode", False):
            self.build_kernels(package / "_kernel_build")

    def build_kernels(self, output_dir):
        """Compiles the library against the target's TensorFlow; on any failure, leaves it for
        later."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE)]
            + [str(p) for p in target_site_packages()]
            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        command = [
            sys.executable,
            "-m",
            "sm3_tf.kernel_loader",
            "--build",
            "--output-dir",
            str(output_dir),
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            print(result.stdout.strip())
        else:
            print(
                "sm3-tf: kernels not built now, they will be on first use: "
                + (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            )


setup(
    name="sm3-tf",
    version=version(),
    description="SM3 memory-efficient adaptive optimizer (Anil et al., NeurIPS 2019) for "
    "TensorFlow and Keras, with fused C++ kernels",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["sm3_tf", "sm3_tf.*"])
    + find_packages("models", include=["sm3_t2t", "sm3_t2t.*"]),
    package_dir={"sm3_t2t": "models/sm3_t2t"},
    package_data={"sm3_t2t": ["data/wesnoth/*"]},
    cmdclass={"build_py": BuildPyWithKernels},
    install_requires=tensorflow_requirement() + ["keras>=3", "numpy"],
    extras_require={
        "test": ["pytest", "tensorflow-cpu==2.21.0", "ml_dtypes", "ruff==0.17.6"],
        "models": ["sentencepiece", "sacrebleu", "absl-py", "tensorflow-datasets", "matplotlib"],
        # benchmarks/bench_step.py's reference contender, PyTorch's fused CPU Adam. For the CPU
        # wheel alone: pip install torch --index-url https://download.pytorch.org/whl/cpu
        "bench": ["torch>=2.4", "psutil"],
    },
    entry_points={
        "console_scripts": [
            "sm3-trainer=sm3_t2t.trainer:run",
            "sm3-decoder=sm3_t2t.decoder:run",
        ],
    },
)
