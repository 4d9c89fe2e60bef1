"""sm3_tf.SM3 as a user of this process's Keras backend meets it: `compile`/`fit` with jit on and
off, a custom training loop, `.keras` save and load that resumes bit for bit, what the backend
cannot do said at construction, and (JAX) a train step that XLA compiles with no host callback
(without TensorFlow: test_without_tensorflow.py).
Numbers are checked against the float64 numpy reference with the loss gradient worked out in numpy.
"""

import os

import backend_support as support
import keras
import numpy as np
import pytest

import sm3_tf

OPTIONS = dict(momentum=0.9, beta_2=0.99, variant="I")


@pytest.mark.parametrize("jit_compile", [False, True], ids=["no_jit", "jit"])
def test_fit_matches_the_reference(jit_compile):
    """fit, with skip_nonfinite and a NaN in the second batch's targets: that step changes
    nothing, the three others match the reference."""
    model = support.linear_model()
    x, y = support.linear_data(batches=4)
    y[support.BATCH + 1, 1] = np.nan
    expected = support.linear_reference(model, x, y, **OPTIONS)
    optimizer = sm3_tf.SM3(learning_rate=support.LR, skip_nonfinite=True, **OPTIONS)
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    model.fit(x, y, batch_size=support.BATCH, epochs=1, shuffle=False, verbose=0)
    support.assert_linear_matches(model, expected)
    assert int(support.as_numpy(optimizer.nonfinite_steps)) == 1


def test_custom_training_loop_matches_the_reference():
    model = support.linear_model()
    x, y = support.linear_data()
    expected = support.linear_reference(model, x, y, **OPTIONS)
    optimizer = sm3_tf.SM3(learning_rate=support.LR, **OPTIONS)
    support.custom_loop(model, optimizer, x, y)
    support.assert_linear_matches(model, expected)


def _embedding_model():
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((3,), dtype="int32"),
            keras.layers.Embedding(10, 4),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )


def test_keras_file_resumes_bit_for_bit(tmp_path):
    """Two steps, save, load; two more steps on the original and on the loaded model agree in
    every bit of the weights and of the optimizer's state (covers, bfloat16 buffers, counters)."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 10, size=(16, 3)).astype("int32")
    y = rng.normal(size=(16, 2)).astype(np.float32)
    model = _embedding_model()
    model.compile(
        optimizer=sm3_tf.SM3(
            learning_rate=support.LR,
            momentum=0.9,
            momentum_dtype="bfloat16",
            beta_2=0.99,
            skip_nonfinite=True,
        ),
        loss="mse",
    )
    model.fit(x[:8], y[:8], batch_size=4, shuffle=False, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, sm3_tf.SM3)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for m in (model, loaded):
        m.fit(x[8:], y[8:], batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(support.as_numpy(a), support.as_numpy(b))
    assert len(model.optimizer.variables) == len(loaded.optimizer.variables)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(support.as_numpy(a), support.as_numpy(b))
    assert int(support.as_numpy(loaded.optimizer.iterations)) == 4


@pytest.mark.skipif(support.BACKEND == "tensorflow", reason="the TF paths have their own tests")
def test_what_this_backend_cannot_do_is_said_at_construction():
    with pytest.raises(ValueError, match=f"TensorFlow backend.*{support.BACKEND} backend"):
        sm3_tf.SM3(fused=True)
    optimizer = sm3_tf.SM3(fused=False)
    with pytest.raises(ValueError, match=f"{support.BACKEND} backend"):
        optimizer.fused = True
    variable = keras.Variable(np.ones((2, 3), np.float32))
    optimizer.build([variable])
    path = optimizer.step_path(variable)
    assert path.kind == "keras_ops"
    assert support.BACKEND in path.reason


@pytest.mark.skipif(support.BACKEND == "tensorflow", reason="the TF paths have their own tests")
def test_a_file_saved_with_fused_true_loads_with_a_warning():
    config = dict(sm3_tf.SM3(fused=None).get_config(), fused=True)
    with pytest.warns(UserWarning, match=f"fused=True.*{support.BACKEND} backend.*fused=None"):
        optimizer = sm3_tf.SM3.from_config(config)
    assert optimizer.fused is None


def _primitives(jaxpr):
    """Every primitive name in `jaxpr` and the jaxprs nested in it (cond branches, pjit, ...)."""
    names = set()
    for equation in jaxpr.eqns:
        names.add(equation.primitive.name)
        for param in equation.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds its Jaxpr
                if hasattr(sub, "eqns"):
                    names |= _primitives(sub)
    return names


@pytest.mark.skipif(support.BACKEND != "jax", reason="JAX's jit is the Keras-on-TPU path")
def test_jax_train_step_is_one_xla_computation_without_host_callbacks():
    """The stateless train step that `fit` jit-compiles (SM3 with skip_nonfinite and weight decay)
    lowers to StableHLO that XLA compiles: no callback to the host in its jaxpr or its HLO, and the
    finite-or-skip decision is a device-side conditional."""
    import jax

    model = support.linear_model()
    x, y = support.linear_data(batches=1)
    model.compile(
        optimizer=sm3_tf.SM3(skip_nonfinite=True, weight_decay=0.01, **OPTIONS),
        loss="mse",
        jit_compile=True,
    )
    model.fit(x, y, batch_size=support.BATCH, verbose=0)  # builds the optimizer and metrics
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    data = (x, y)
    primitives = _primitives(jax.make_jaxpr(model.train_step)(state, data).jaxpr)
    assert not {p for p in primitives if "callback" in p}, primitives
    assert "cond" in primitives  # skip_nonfinite's decision, taken on the device
    lowered = jax.jit(model.train_step).lower(state, data)
    hlo = lowered.as_text()
    assert "callback" not in hlo
    assert "stablehlo.case" in hlo or "stablehlo.if" in hlo
    lowered.compile()
