"""The installed wheel's fused path, where no compiler is (run by .ci/wheel_check.sh).

    python wheel_check.py TESTS_DIR CACHE_DIR

Asserts that sm3_tf comes from site-packages (not a checkout), that no compiler is in sight, that
one SM3 step on a CPU variable runs the fused kernel (fused=True fails otherwise) and equals the
numpy reference (TESTS_DIR/sm3_reference.py), and that nothing was built into CACHE_DIR.
"""

import os
import shutil
import sys

import numpy as np
import tensorflow as tf

import sm3_tf
from sm3_tf import kernel_loader, step

tests_dir, cache_dir = sys.argv[1:3]
sys.path.append(tests_dir)
from sm3_reference import SM3Reference, relative_error  # noqa: E402

assert "site-packages" in sm3_tf.__file__, sm3_tf.__file__
assert not any(shutil.which(c) for c in ("g++", "c++", "clang++", "gcc", "cc")), os.environ["PATH"]
assert kernel_loader.unavailable_reason() is None, kernel_loader.unavailable_reason()
library = kernel_loader.default_library()
assert library.path.parent.name == "_kernel_build", library.path

variable = tf.Variable(np.ones((5, 3), np.float32))
gradient = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
optimizer = sm3_tf.SM3(learning_rate=0.1, momentum=0.9, fused=True)
optimizer.apply([tf.constant(gradient)], [variable])
assert optimizer.step_path(variable).kind == step.FUSED, optimizer.step_path(variable)
expected = SM3Reference((5, 3), momentum=0.9).step(np.ones((5, 3)), gradient, 0.1)
error = relative_error(variable.numpy(), expected)
assert error <= 1e-5, error
assert os.listdir(cache_dir) == [], os.listdir(cache_dir)
print(f"wheel_check: fused SM3 step from {library.path} (relative error {error:.1e}); passed")
