"""SM3 behaves as a Keras 3 optimizer: the expectations of Keras's own `optimizer_test.py` that do
not depend on SGD's or Adam's maths, held for SM3; its help renders; a file saved with fused=True
loads where there are no kernels; which path a step takes is public."""

import ast
import inspect
import os
import pathlib
import pickle
import pydoc
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf

import sm3_tf
from sm3_tf import kernel_loader

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_auto_naming_follows_keras():
    keras.backend.clear_session(free_memory=False)  # as Keras's own tests do: fresh name counters
    first, second = sm3_tf.SM3(), sm3_tf.SM3()
    assert (first.name, second.name) == ("sm3", "sm3_1")
    assert sm3_tf.SM3(name="my_sm3").name == "my_sm3"
    for optimizer in (second, sm3_tf.SM3(name="my_sm3")):
        restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
        assert restored.name == optimizer.name


def test_pickle_keeps_the_config():
    optimizer = sm3_tf.SM3(momentum=0.5, variant="I")
    assert pickle.loads(pickle.dumps(optimizer)).get_config() == optimizer.get_config()


def test_iterations_and_callable_learning_rate():
    var = keras.Variable([[1.0, 2.0], [3.0, 4.0]])
    optimizer = sm3_tf.SM3(learning_rate=lambda: 0.1, momentum=0.0)
    for step in (1, 2):
        optimizer.apply_gradients([(tf.ones((2, 2)), var)])
        assert int(optimizer.iterations) == step
    reference, expected = ref.SM3Reference((2, 2)), np.array([[1.0, 2.0], [3.0, 4.0]])
    for _ in range(2):
        expected = reference.step(expected, np.ones((2, 2)), 0.1)
    assert ref.relative_error(var.numpy(), expected) <= 1e-6


def test_empty_gradients():
    with pytest.raises(ValueError, match="No gradients provided for any variable."):
        sm3_tf.SM3().apply_gradients([(None, keras.Variable(tf.ones((2, 2))))])
    kept, trained = keras.Variable(tf.ones((2, 2))), keras.Variable(tf.ones((2, 2)))
    with pytest.warns(UserWarning):
        sm3_tf.SM3().apply_gradients([(None, kept), (tf.ones((2, 2)), trained)])
    np.testing.assert_array_equal(kept.numpy(), np.ones((2, 2)))
    assert np.all(trained.numpy() < 1.0)


def test_only_one_clipping_argument():
    with pytest.raises(
        ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"
    ):
        sm3_tf.SM3(clipnorm=0.1, clipvalue=0.1)


def test_set_weights_needs_a_built_optimizer_and_copies_the_state():
    var = keras.Variable([[1.0, 2.0], [3.0, 4.0]])
    trained = sm3_tf.SM3()
    trained.apply_gradients([(tf.constant([[1.0, 2.0], [3.0, 4.0]]), var)])
    fresh = sm3_tf.SM3()
    with pytest.raises(ValueError, match="You are calling"):
        fresh.set_weights(trained.variables)
    fresh.build([var])
    fresh.set_weights(trained.variables)
    for a, b in zip(trained.variables, fresh.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_setting_a_schedule_untracks_the_learning_rate_variable():
    optimizer = sm3_tf.SM3(learning_rate=0.001)
    assert len(optimizer.variables) == 2
    optimizer.learning_rate = keras.optimizers.schedules.PolynomialDecay(0.001, 4)
    assert len(optimizer.variables) == 1


def test_constraints_overwrite_with_gradient_and_plain_tf_variables():
    constrained = keras.Variable(np.random.default_rng(0).random((2, 2)) - 1.0)
    constrained.constraint = keras.constraints.NonNeg()
    overwritten = keras.Variable([[1.0, 2.0], [3.0, 4.0]])
    overwritten.overwrite_with_gradient = True
    plain = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    sm3_tf.SM3().apply_gradients(
        [
            (tf.zeros((2, 2)), constrained),
            (tf.fill((2, 2), 7.0), overwritten),
            (tf.ones((2, 2)), plain),
        ]
    )
    assert np.min(constrained.numpy()) == 0.0
    np.testing.assert_array_equal(overwritten.numpy(), np.full((2, 2), 7.0))
    assert np.all(plain.numpy() < [[1.0, 2.0], [3.0, 4.0]])


def test_gradient_accumulation_with_weight_decay_equals_averaged_gradients():
    every_step = sm3_tf.SM3(weight_decay=0.05)
    accumulating = sm3_tf.SM3(weight_decay=0.05, gradient_accumulation_steps=3)
    var_1, var_3 = keras.Variable([[0.9], [0.5]]), keras.Variable([[0.9], [0.5]])
    rng = np.random.default_rng(0)
    for _ in range(4):
        grads = rng.random((3, 2, 1)).astype(np.float32)
        every_step.apply_gradients([(tf.constant(grads.mean(axis=0)), var_1)])
        for g in grads:
            accumulating.apply_gradients([(tf.constant(g), var_3)])
    np.testing.assert_allclose(var_1.numpy(), var_3.numpy(), rtol=1e-6)


def documented_arguments(docstring):
    """{name: indentation} of the entries of the Args section of a cleaned docstring."""
    section = docstring.split("\nArgs:\n", 1)[1].split("\n\n", 1)[0]
    entries = {}
    for line in section.splitlines():
        match = re.match(r"( *)(\w+): ", line)
        indent = len(line) - len(line.lstrip())
        if match and indent == 2:
            assert match.group(2) not in entries, f"{match.group(2)} documented twice"
            entries[match.group(2)] = indent
        else:
            assert indent == 4, f"continuation line not indented by 4: {line!r}"
    return entries


def test_help_renders_every_argument_once_at_one_indentation():
    text = pydoc.render_doc(sm3_tf.SM3, renderer=pydoc.plaintext)
    assert "{{" not in text and "}}" not in text
    documented = documented_arguments(inspect.cleandoc(sm3_tf.SM3.__doc__))
    parameters = inspect.signature(sm3_tf.SM3.__init__).parameters
    assert set(documented) == set(parameters) - {"self", "kwargs"}


def test_step_path_is_public_and_says_why():
    var = keras.Variable(tf.ones((3, 2)))
    optimizer = sm3_tf.SM3(fused=False)
    assert optimizer.step_path(var) == ("tf_ops", "fused=False")
    optimizer.fused = None
    path = optimizer.step_path(var)
    if kernel_loader.unavailable_reason() is None:
        assert path == ("fused", None) and str(path) == "fused"
    else:
        assert path.kind == "tf_ops" and "kernel library is unavailable" in path.reason

    seen = []

    @tf.function(jit_compile=True)
    def traced():
        seen.append(optimizer.step_path(var))
        optimizer.apply_gradients([(tf.ones((3, 2)), var)])

    traced()
    assert seen[0].kind == "xla" and "XLA" in seen[0].reason


LOAD_WITHOUT_KERNELS = textwrap.dedent(
    """
    import sys, warnings
    import keras, numpy as np
    import sm3_tf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.models.load_model(sys.argv[1])
    assert model.optimizer.fused is None, model.optimizer.fused
    assert any("saved with fused=True" in str(w.message) for w in caught), caught
    model.fit(np.ones((8, 4), np.float32), np.ones((8, 1), np.float32), verbose=0)
    print("PATH", model.optimizer.step_path(model.trainable_variables[0]).kind)
    """
)


def test_a_file_saved_with_fused_true_loads_and_trains_without_kernels(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=sm3_tf.SM3(), loss="mse")
    model.fit(np.ones((8, 4), np.float32), np.ones((8, 1), np.float32), verbose=0)
    model.optimizer.fused = True  # as saved on a machine with kernels
    path = str(tmp_path / "fused.keras")
    model.save(path)
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="2",
        **{kernel_loader.DISABLE_ENV: "1"},
    )
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_KERNELS, path],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PATH tf_ops" in result.stdout


def imported_modules(path):
    tree = ast.parse(pathlib.Path(path).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_v1_does_not_import_the_keras_optimizer_both_import_the_guards():
    v1_imports = imported_modules(REPO / "sm3_tf" / "v1.py")
    assert not any(name.startswith("sm3_tf.sm3") for name in v1_imports)
    assert "sm3_tf.guards" in v1_imports
    assert "sm3_tf.guards" in imported_modules(REPO / "sm3_tf" / "sm3.py")
