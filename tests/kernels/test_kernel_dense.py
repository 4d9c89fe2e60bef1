"""Dense fused-kernel steps == TF-ops steps == numpy reference, on every shape and option.

Shapes include odd and size-1 dimensions, rank 0 to 4, parameters that the kernel cuts into
several row and column tiles, rows narrower than the chunked path's threshold, and an empty
parameter.
"""

import kernel_test_support as support
import numpy as np
import pytest
import tensorflow as tf
from sm3_reference import relative_error

from sm3_tf import fused_step, kernel_loader
from sm3_tf.step_config import StepConfig

SHAPES = [
    (),
    (1,),
    (7,),
    (70001,),
    (1, 1),
    (7, 5),
    (1, 9),
    (9, 1),
    (3, 4, 5),
    (2, 1, 3, 1),
    (300, 257),
    (3, 40000),
    (6, 5, 4, 3),
    # Size-1 axes set aside (one-entry covers): element-wise with a cap, in several chunks...
    (70001, 1),
    (1, 1, 70001),
    # ... or rows of the axes longer than 1, narrow (chunked) and wide.
    (40000, 1, 3),
    (2, 40001, 1),
    # Rows narrower than kNarrowColumns in several tiles, and wide rows with partial packets.
    (2500, 33),
    (301, 65),
]


@pytest.fixture(scope="module", autouse=True)
def kernels():
    support.require_kernels()


@pytest.mark.parametrize("options", support.OPTION_CASES, ids=support.option_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fused_matches_tf_ops_and_reference(shape, options):
    support.assert_close(support.run_dense(shape, options), options.tolerance)


# One rounding of a low-precision weight may fall on either side of a boundary when float32
# maths and the float64 reference differ in the last float32 bits: allow one unit there.
LOW_PRECISION_TOLERANCE = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float64": 1e-5}


@pytest.mark.parametrize("param_dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("variant", ["II", "I"])
@pytest.mark.parametrize("shape", [(5,), (33, 17)], ids=str)
def test_parameter_dtypes(shape, variant, param_dtype):
    options = support.Options(variant, momentum=0.9, param_dtype=param_dtype)
    errors = support.run_dense(shape, options)
    for name, (weight_error, cover_error) in errors.items():
        assert weight_error <= LOW_PRECISION_TOLERANCE[param_dtype], (name, weight_error)
        assert cover_error <= support.TOLERANCE, (name, cover_error)
    if param_dtype == "float64":  # the kernel computes float64 parameters in double
        assert max(errors["sm3_tf.fused_step"]) <= 1e-12, errors


@pytest.mark.parametrize("isa", ["portable", "sse2", "avx", "avx512"])
def test_every_instruction_set_matches_the_reference(isa, monkeypatch):
    monkeypatch.setenv("SM3_TF_KERNEL_ISA", isa)
    active = kernel_loader.ops().sm3_kernel_isa().numpy().decode()
    if active != isa:
        pytest.skip(f"this CPU or build has no {isa} loops (running {active})")
    for variant in ("II", "I"):
        for shape in [(37,), (13, 19), (3, 5, 21)]:  # lengths that leave partial SIMD packets
            options = support.Options(variant, momentum=0.9, beta_2=0.999, epsilon=1e-6)
            support.assert_close(support.run_dense(shape, options, modules=(fused_step,)))


def test_empty_parameter_is_left_alone():
    state = support.PathState(np.zeros((0, 5), np.float32), support.Options(momentum=0.9))
    state.accumulators[1].assign(np.arange(5, dtype=np.float32))
    fused_step.dense_update(
        state.var, tf.zeros((0, 5)), state.accumulators, state.buffer, 0.1, StepConfig("II", 0.9)
    )
    np.testing.assert_array_equal(state.accumulators[1].numpy(), np.arange(5))


def test_zero_gradient_gives_zero_step_not_nan():
    """0/0 = 0: a parameter that never saw a gradient does not move."""
    state = support.PathState(np.ones((4, 6), np.float32), support.Options(momentum=0.9))
    fused_step.dense_update(
        state.var, tf.zeros((4, 6)), state.accumulators, state.buffer, 0.1, StepConfig("II", 0.9)
    )
    np.testing.assert_array_equal(state.var.numpy(), np.ones((4, 6)))
    np.testing.assert_array_equal(state.buffer.numpy(), np.zeros((4, 6)))


def test_inside_tf_function_with_a_tensor_learning_rate_and_momentum():
    options = support.Options(momentum=0.9)
    w0 = support.initial_weights((20, 30), options)
    grads = support.dense_gradients((20, 30), 3)
    reference = support.reference_for((20, 30), options)
    state = support.PathState(w0, options)
    config = StepConfig("II", tf.constant(0.9), 1.0, 0.0)  # v1 may pass a tensor momentum

    @tf.function
    def step(g, lr):
        fused_step.dense_update(state.var, g, state.accumulators, state.buffer, lr, config)

    expected = w0.astype(np.float64)
    for g in grads:
        step(tf.constant(g), tf.constant(0.1))
        expected = reference.step(expected, g, 0.1)
    assert relative_error(state.weights(), expected) <= support.TOLERANCE


def test_graph_mode_session_runs_the_same_op():
    """tf.compat.v1 graph mode (what sm3_tf.v1 runs): the op is one node run by a session."""
    options = support.Options(momentum=0.9, variant="I")
    w0 = support.initial_weights((8, 3), options)
    grads = support.dense_gradients((8, 3), 2)
    reference = support.reference_for((8, 3), options)
    expected = w0.astype(np.float64)
    for g in grads:
        expected = reference.step(expected, g, 0.1)
    with tf.Graph().as_default():
        state = support.PathState(w0, options)
        feed = tf.compat.v1.placeholder(tf.float32, (8, 3))
        update = fused_step.dense_update(
            state.var, feed, state.accumulators, state.buffer, 0.1, options.config
        )
        assert isinstance(update, tf.Operation)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for g in grads:
                session.run(update, {feed: g})
            weights = session.run(state.var)
    assert relative_error(weights, expected) <= support.TOLERANCE


def test_keras_sm3_uses_the_kernel_and_matches_tf_ops():
    """Through the Keras optimizer: fused=True and fused=False train a model identically."""
    import keras

    import sm3_tf

    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.standard_normal((32, 2)).astype(np.float32)
    weights = {}
    for fused in (True, False):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(2)]
        )
        model.compile(
            optimizer=sm3_tf.SM3(0.1, momentum=0.9, fused=fused), loss="mse", jit_compile=False
        )
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        weights[fused] = model.get_weights()
    for fused_weight, tf_weight in zip(weights[True], weights[False]):
        assert relative_error(fused_weight, tf_weight) <= support.TOLERANCE


def test_unknown_isa_override_falls_back_to_the_automatic_choice(monkeypatch):
    monkeypatch.setenv("SM3_TF_KERNEL_ISA", "no-such-isa")
    active = kernel_loader.ops().sm3_kernel_isa().numpy().decode()
    assert active in ("avx512", "avx", "sse2", "portable")
    options = support.Options(momentum=0.9)
    support.assert_close(support.run_dense((9, 33), options, modules=(fused_step,)))


@pytest.mark.parametrize("momentum_dtype", [None, "float32", "bfloat16"])
def test_weight_lag_on_and_off_give_identical_results(momentum_dtype, monkeypatch):
    """The weight stream runs behind the others only where streams would collide (a memory-system
    measure): both ways give the same bits, and both match the reference. Rows of 1000 columns
    span two 2 KiB lag chunks and end in a partial SIMD packet; 2000 columns three chunks."""
    results = {}
    for mode in ("always", "never"):
        monkeypatch.setenv("SM3_TF_WEIGHT_LAG", mode)
        for shape in [(7, 1000), (3, 2000), (2, 3, 100)]:
            options = support.Options(
                momentum=0.9 if momentum_dtype else 0.0,
                momentum_dtype=momentum_dtype,
                beta_2=0.999,
                epsilon=1e-6,
            )
            w0 = support.initial_weights(shape, options)
            state = support.PathState(w0, options)
            for g in support.dense_gradients(shape, 3):
                fused_step.dense_update(
                    state.var,
                    tf.constant(g),
                    state.accumulators,
                    state.buffer,
                    support.LEARNING_RATE,
                    options.config,
                )
            buffer = None if state.buffer is None else state.buffer.numpy()
            results[(mode, shape)] = (
                state.var.numpy(),
                buffer,
                [a.numpy() for a in state.accumulators],
            )
            support.assert_close(
                support.run_dense(shape, options, modules=(fused_step,)), options.tolerance
            )
    for shape in [(7, 1000), (3, 2000), (2, 3, 100)]:
        lagged, direct = results[("always", shape)], results[("never", shape)]
        np.testing.assert_array_equal(lagged[0], direct[0])
        if lagged[1] is not None:
            np.testing.assert_array_equal(
                lagged[1].astype(np.float32), direct[1].astype(np.float32)
            )
        for a, b in zip(lagged[2], direct[2]):
            np.testing.assert_array_equal(a, b)
