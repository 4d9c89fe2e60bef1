"""sm3_tf.SM3 on Keras 2 (TF 2.15's tf.keras, tf_keras) against the float64 numpy reference:
ranks 0-3, both variants, momentum off / on / bfloat16, beta_2 < 1, epsilon, sparse rows with
duplicate indices, a schedule, weight decay, skip_nonfinite; eager and tf.function; TF ops and
the fused kernel."""

import environments

environments.require_keras_2()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sm3_reference as ref  # noqa: E402
import tensorflow as tf  # noqa: E402

import sm3_tf  # noqa: E402
from sm3_tf import keras2  # noqa: E402

LR = 0.1
SHAPES = [(), (7,), (5, 3), (2, 3, 4), (0, 4)]
MOMENTA = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, momentum_dtype="bfloat16")]


def gradients(shape, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    grads = [rng.normal(size=shape).astype(np.float32) for _ in range(steps)]
    if len(shape) >= 1 and shape[0]:
        grads[0][0] = 0.0  # a zero row on fresh covers: the 0/0 = 0 rule
    return grads


def fused_choice(fused):
    if fused:
        environments.require_kernels()
    return fused


def train(shape, grads, in_function=False, **options):
    """One variable trained by sm3_tf.SM3 on `grads`: (initial value, variable, optimizer)."""
    w0 = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    var = tf.Variable(w0)
    optimizer = sm3_tf.SM3(**{"learning_rate": LR, **options})

    def apply(gradient):
        optimizer.apply_gradients([(gradient, var)])

    if in_function:
        apply = tf.function(apply)
    for g in grads:
        apply(g if isinstance(g, tf.IndexedSlices) else tf.constant(g))
    return w0, var, optimizer


def reference(shape, w0, grads, lr=LR, **options):
    model = ref.SM3Reference(shape, **options)
    w = w0.astype(np.float64)
    for g in grads:
        w = model.step(w, g, lr)
    return w


def test_sm3_is_the_keras_2_optimizer():
    assert sm3_tf.SM3 is keras2.SM3
    assert isinstance(sm3_tf.SM3(), tf.keras.optimizers.Optimizer)


@pytest.mark.parametrize("fused", [False, None, True], ids=["tf_ops", "auto", "fused"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("variant", ["II", "I"])
@pytest.mark.parametrize("momentum", MOMENTA, ids=["m0", "m.9", "m.9bf16"])
def test_dense_steps_match_the_reference(shape, variant, momentum, fused):
    grads = gradients(shape)
    options = dict(variant=variant, beta_2=0.9 if variant == "I" else 1.0, **momentum)
    w0, var, optimizer = train(shape, grads, fused=fused_choice(fused), **options)
    assert ref.relative_error(var.numpy(), reference(shape, w0, grads, **options)) <= 1e-5
    if fused:
        assert optimizer.step_path(var).kind == "fused"


@pytest.mark.parametrize("fused", [False, True], ids=["tf_ops", "fused"])
def test_in_a_tf_function_with_epsilon(fused):
    shape, options = (4, 5), dict(momentum=0.9, epsilon=0.5, variant="I")
    grads = gradients(shape)
    w0, var, _ = train(shape, grads, in_function=True, fused=fused_choice(fused), **options)
    assert ref.relative_error(var.numpy(), reference(shape, w0, grads, **options)) <= 1e-5


@pytest.mark.parametrize("fused", [False, True], ids=["tf_ops", "fused"])
@pytest.mark.parametrize("shape", [(6,), (6, 3)], ids=str)
def test_sparse_rows_with_duplicate_indices(shape, fused):
    rng = np.random.default_rng(3)
    steps = [
        (np.array(indices), rng.normal(size=(len(indices),) + shape[1:]).astype(np.float32))
        for indices in ([1, 4, 1], [0, 5], [4, 4, 2])
    ]
    grads = [
        tf.IndexedSlices(tf.constant(values), tf.constant(indices), tf.constant(shape))
        for indices, values in steps
    ]
    w0, var, _ = train(shape, grads, in_function=True, fused=fused_choice(fused), momentum=0.9)
    model, expected = ref.SM3Reference(shape, momentum=0.9), w0.astype(np.float64)
    for indices, values in steps:
        expected = model.sparse_step(expected, indices, values, LR)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5


def test_a_keras_schedule_sets_each_steps_learning_rate():
    schedule = tf.keras.optimizers.schedules.ExponentialDecay(0.2, decay_steps=1, decay_rate=0.5)
    shape, grads = (3, 4), gradients((3, 4))
    w0, var, _ = train(shape, grads, learning_rate=schedule)
    model, expected = ref.SM3Reference(shape, momentum=0.9), w0.astype(np.float64)
    for step, g in enumerate(grads):
        expected = model.step(expected, g, 0.2 * 0.5**step)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5


def test_weight_decay_is_decoupled_before_the_step():
    shape, grads = (3, 4), gradients((3, 4))
    w0, var, _ = train(shape, grads, weight_decay=0.01, momentum=0.0)
    model, expected = ref.SM3Reference(shape), w0.astype(np.float64)
    for g in grads:
        expected = model.step(expected * (1.0 - LR * 0.01), g, LR)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5


def test_live_hyperparameters_take_effect_at_the_next_step():
    shape, grads = (3, 4), gradients((3, 4))
    w0 = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    var, optimizer = tf.Variable(w0), sm3_tf.SM3(LR, momentum=0.9)
    model, expected = ref.SM3Reference(shape, momentum=0.9), w0.astype(np.float64)
    for step, g in enumerate(grads):
        if step == 1:
            optimizer.momentum, model.momentum = 0.5, 0.5
            optimizer.learning_rate = 0.05
        optimizer.apply_gradients([(tf.constant(g), var)])
        expected = model.step(expected, g, 0.05 if step else LR)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5
    with pytest.raises(ValueError, match="`momentum` cannot change"):
        optimizer.momentum = 0.0
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = -1.0


@pytest.mark.parametrize("in_function", [False, True], ids=["eager", "function"])
def test_skip_nonfinite_leaves_weights_and_state_untouched(in_function):
    shape = (3, 4)
    grads = gradients(shape)
    grads.insert(1, np.full(shape, np.nan, np.float32))
    w0, var, optimizer = train(
        shape, grads, in_function=in_function, skip_nonfinite=True, weight_decay=0.01
    )
    model, expected = ref.SM3Reference(shape, momentum=0.9), w0.astype(np.float64)
    for g in grads:
        if np.all(np.isfinite(g)):
            expected = model.step(expected * (1.0 - LR * 0.01), g, LR)
    assert ref.relative_error(var.numpy(), expected) <= 1e-5
    assert int(optimizer.nonfinite_steps) == 1
    assert int(optimizer.iterations) == len(grads)
    assert all(np.all(np.isfinite(v.numpy())) for v in optimizer.variables)


def test_skip_nonfinite_under_mirrored_strategy(mirrored_strategy):
    """The all-finite flag travels with each gradient to every replica's update."""
    shape = (3, 4)
    grads = gradients(shape)
    grads.insert(1, np.full(shape, np.inf, np.float32))
    w0 = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    with mirrored_strategy.scope():
        var = tf.Variable(w0)
        optimizer = sm3_tf.SM3(LR, skip_nonfinite=True)

    @tf.function
    def step(gradient):
        def replica_step():
            optimizer.apply_gradients([(tf.identity(gradient), var)])

        mirrored_strategy.run(replica_step)

    for g in grads:
        step(tf.constant(g))
    # Each of the 2 replicas contributes the same gradient: SM3 sees their sum.
    finite = [2.0 * g for g in grads if np.all(np.isfinite(g))]
    assert ref.relative_error(var.numpy(), reference(shape, w0, finite, momentum=0.9)) <= 1e-5
    assert optimizer.nonfinite_steps.numpy() == 1
