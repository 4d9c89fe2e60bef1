"""@local_config_tf: the installed TensorFlow's headers and library, and its Python, for Bazel.

Like TF Addons' configure step, this asks the Python that has TensorFlow (`PYTHON_BIN_PATH`, else
`python3` on PATH) for `tf.sysconfig`, then exposes:
  :tensorflow_headers    the wheel's include directory, with TF's -D flags as defines
  :tensorflow_framework  libtensorflow_framework.so.2, linked by the op library
  :python_toolchain      that Python as Bazel's Python 3 toolchain, so py_tests import TF
and `defs.bzl` with TF_VERSION and TF_CXXOPTS (TF's other compile flags, e.g. -std=c++17).
Re-run when PYTHON_BIN_PATH changes: `bazel sync --configure` or a clean.
"""

_QUERY = """
import json, tensorflow as tf
print(json.dumps(dict(
    include=tf.sysconfig.get_include(), lib=tf.sysconfig.get_lib(),
    compile_flags=tf.sysconfig.get_compile_flags(), version=tf.version.VERSION)))
"""

_BUILD = """
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

package(default_visibility = ["//visibility:public"])

cc_library(
    name = "tensorflow_headers",
    hdrs = glob(["include/**"]),
    defines = {defines},
    includes = ["include"],
)

cc_library(
    name = "tensorflow_framework",
    srcs = ["libtensorflow_framework.so.2"],
)

py_runtime(
    name = "python3_runtime",
    interpreter_path = "{python}",
    python_version = "PY3",
    stub_shebang = "#!{python}",
)

py_runtime_pair(
    name = "python_runtimes",
    py3_runtime = ":python3_runtime",
)

toolchain(
    name = "python_toolchain",
    toolchain = ":python_runtimes",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

def _tf_configure_impl(ctx):
    python = ctx.os.environ.get("PYTHON_BIN_PATH") or ctx.which("python3")
    if not python:
        fail("tf_configure: set PYTHON_BIN_PATH to a Python with TensorFlow installed")
    result = ctx.execute([str(python), "-c", _QUERY], environment = {"TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.return_code != 0:
        fail("tf_configure: {} cannot import tensorflow:\n{}".format(python, result.stderr))
    info = json.decode(result.stdout.strip().splitlines()[-1])
    ctx.symlink(info["include"], "include")
    ctx.symlink(info["lib"] + "/libtensorflow_framework.so.2", "libtensorflow_framework.so.2")
    defines = [flag[2:] for flag in info["compile_flags"] if flag.startswith("-D")]
    cxxopts = [flag for flag in info["compile_flags"]
               if not flag.startswith("-D") and not flag.startswith("-I")]
    ctx.file("BUILD", _BUILD.format(defines = repr(defines), python = str(python)))
    ctx.file("defs.bzl", "TF_VERSION = {}\nTF_CXXOPTS = {}\n".format(
        repr(info["version"]),
        repr(cxxopts),
    ))

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)
