"""Bad input: clear errors naming the argument; skip_nonfinite protects the state from NaN/Inf."""

import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf

import sm3_tf


@pytest.mark.parametrize(
    "arguments,named",
    [
        (dict(learning_rate=-0.1), "learning_rate"),
        (dict(learning_rate=float("nan")), "learning_rate"),
        (dict(momentum=1.0), "momentum"),
        (dict(momentum=-0.1), "momentum"),
        (dict(beta_2=0.0), "beta_2"),
        (dict(beta_2=1.5), "beta_2"),
        (dict(epsilon=-1e-8), "epsilon"),
        (dict(epsilon=float("nan")), "epsilon"),
        (dict(variant="III"), "variant"),
        (dict(momentum_dtype="int8"), "momentum_dtype"),
        (dict(fused="yes"), "fused"),
        (dict(learning_rate=float("inf")), "learning_rate"),
        (dict(epsilon=float("inf")), "epsilon"),
    ],
)
def test_bad_arguments_are_named(arguments, named):
    with pytest.raises(ValueError, match=f"`{named}`"):
        sm3_tf.SM3(**arguments)


@pytest.mark.parametrize(
    "arguments,named",
    [
        (dict(momentum=None), "momentum"),
        (dict(beta_2=None), "beta_2"),
        (dict(epsilon=None), "epsilon"),
        (dict(learning_rate=None), "learning_rate"),
        (dict(momentum="0.9"), "momentum"),
        (dict(skip_nonfinite="no"), "skip_nonfinite"),
        (dict(skip_nonfinite=1), "skip_nonfinite"),
    ],
)
def test_arguments_of_the_wrong_type_are_named(arguments, named):
    with pytest.raises(TypeError, match=f"`{named}`"):
        sm3_tf.SM3(**arguments)


@pytest.mark.parametrize("dtype", [tf.int32, tf.complex64])
def test_non_float_variables_are_rejected_by_name(dtype):
    var = tf.Variable(tf.zeros((2, 2), dtype), name="counts")
    with pytest.raises(ValueError, match="counts"):
        sm3_tf.SM3().build([var])


def test_fused_true_under_xla_says_why():
    var = tf.Variable(tf.ones((3, 3)))
    optimizer = sm3_tf.SM3(fused=True)
    step = tf.function(
        lambda: optimizer.apply_gradients([(tf.ones((3, 3)), var)]), jit_compile=True
    )
    with pytest.raises(RuntimeError, match="XLA"):
        step()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("compiled", [False, True])
def test_skip_nonfinite_leaves_everything_untouched(bad, compiled):
    weights = tf.Variable(np.ones((4, 3), np.float32))
    bias = tf.Variable(np.ones((3,), np.float32))
    optimizer = sm3_tf.SM3(learning_rate=0.1, skip_nonfinite=True)

    def apply(gw, gb):
        return optimizer.apply_gradients([(gw, weights), (gb, bias)])

    if compiled:
        apply = tf.function(apply, jit_compile=True)
    apply(tf.ones((4, 3)), tf.ones((3,)))
    before = [v.numpy().copy() for v in (weights, bias)]
    state = [v.numpy().copy() for v in optimizer.variables]
    poisoned = np.ones((4, 3), np.float32)
    poisoned[2, 1] = bad
    apply(tf.constant(poisoned), tf.ones((3,)))  # only one gradient is bad: the whole step skips
    for old, var in zip(before, (weights, bias)):
        np.testing.assert_array_equal(var.numpy(), old)
    for old, var in zip(state, optimizer.variables):
        if var.name not in ("iteration", "nonfinite_steps"):  # the counters do move
            np.testing.assert_array_equal(var.numpy(), old)
    assert int(optimizer.nonfinite_steps.numpy()) == 1
    apply(tf.ones((4, 3)), tf.ones((3,)))
    assert np.all(np.isfinite(weights.numpy())) and np.all(weights.numpy() < before[0])


@pytest.mark.parametrize("compiled", [False, True])
def test_skip_nonfinite_skips_the_weight_decay_too(compiled):
    """Keras applies weight decay before the step; a skipped step must not decay the weights."""
    var = tf.Variable(np.ones((4, 3), np.float32))
    optimizer = sm3_tf.SM3(learning_rate=0.1, weight_decay=0.1, skip_nonfinite=True)

    def apply(g):
        return optimizer.apply_gradients([(g, var)])

    if compiled:
        apply = tf.function(apply, jit_compile=True)
    grads = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    reference, expected = ref.SM3Reference((4, 3), momentum=0.9), np.ones((4, 3))
    apply(tf.constant(grads[0]))
    expected = reference.step(expected - 0.1 * 0.1 * expected, grads[0], 0.1)
    before = var.numpy().copy()
    apply(tf.constant(np.full((4, 3), np.nan, np.float32)))
    np.testing.assert_array_equal(var.numpy(), before)
    apply(tf.constant(grads[1]))
    expected = reference.step(expected - 0.1 * 0.1 * expected, grads[1], 0.1)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5
    assert int(optimizer.nonfinite_steps.numpy()) == 1


def test_without_skip_an_inf_poisons_the_state_for_good():
    """Why skip_nonfinite exists: a running max that once saw Inf keeps it, freezing that row."""
    var = tf.Variable(np.ones((2, 2), np.float32))
    optimizer = sm3_tf.SM3(learning_rate=0.1, momentum=0.0, fused=False)
    optimizer.apply_gradients([(tf.constant([[np.inf, 1.0], [1.0, 1.0]]), var)])
    for _ in range(3):
        optimizer.apply_gradients([(tf.ones((2, 2)), var)])
    covers = [v.numpy() for v in optimizer.variables if "accumulator" in v.name]
    assert all(np.isinf(c).any() for c in covers)
    assert np.isnan(var.numpy()[0, 0])
