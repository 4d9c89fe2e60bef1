"""What the Keras-backend tests share: seeded cases, the numpy reference, and one way per backend
to run a step compiled (jit) and a custom training loop.

These tests run under whichever Keras backend the process has (KERAS_BACKEND): the main suite runs
them on TensorFlow, `tools/backends_ci.sh` on JAX and on PyTorch, each in its own venv without
TensorFlow. Nothing here imports TensorFlow, JAX or torch unless that is the backend.
"""

import keras
import numpy as np
import sm3_reference as ref

import sm3_tf

BACKEND = keras.backend.backend()
if BACKEND == "jax":
    import jax

    # On GPUs and TPUs, JAX multiplies float32 matrices at reduced precision (TF32, bfloat16
    # passes) by default; the models' forward passes here are checked against float64 numpy.
    jax.config.update("jax_default_matmul_precision", "highest")
LR = 0.1
TOLERANCE = 1e-5
# Ranks 0 to 4, with a size-1 axis.
SHAPES = [(), (7,), (5, 3), (2, 3, 4), (3, 1, 2, 5)]
# How far a low-precision weight may be from the reference, relative to max |w|: one rounding of
# its type (the reference rounds the same way, so most entries agree bit for bit).
LOW_PRECISION_TOLERANCE = {"float16": 2.0**-10, "bfloat16": 2.0**-7}


def initial_weights(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def reference_weights(shape, w0, grads, param_dtype="float32", weight_decay=None, **options):
    """The float64 reference's weights after `grads` (None entries: skipped steps)."""
    model = ref.SM3Reference(shape, param_dtype=param_dtype, **options)
    w = w0.astype(np.float64)
    if param_dtype != "float32":
        w = ref._round_to(w, param_dtype)
    for g in grads:
        if g is None:
            continue
        if weight_decay:
            w = ref._round_to(w - w * weight_decay * LR, param_dtype)
        w = model.step(w, g, LR)
    return w


def as_numpy(value):
    """A variable's or tensor's value as a float64 numpy array, on any backend."""
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(value, "float32")), np.float64)


def jit_modes():
    """The modes the optimizer-level tests run on this backend: eagerly, and under JAX's jit.

    TensorFlow's compiled paths (tf.function, XLA, the fused kernel) have their own tables in
    tests/sm3_tf; PyTorch's compiler (torch.compile) takes about a minute per case on 2 cores.
    Both compile in `fit(jit_compile=True)` in test_backend_training.py.
    """
    return ["eager", "jit"] if BACKEND == "jax" else ["eager"]


def stepper(optimizer, variables, mode):
    """A function `apply(grads)` that runs one optimizer step on `variables`, eagerly or jit.

    jit (JAX): jax.jit around the optimizer's `stateless_apply`, as Keras trains on JAX (and on
    TPUs); its results are then written back to the variables.
    """
    if mode == "eager":
        return lambda grads: optimizer.apply(grads, variables)
    import jax

    optimizer.build(variables)
    compiled = jax.jit(optimizer.stateless_apply)

    def apply(grads):
        new_weights, new_state = compiled(
            [v.value for v in optimizer.variables], list(grads), [v.value for v in variables]
        )
        for variable, value in zip(variables, new_weights):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, new_state):
            variable.assign(value)

    return apply


def run_steps(shapes, grads_per_step, mode="eager", dtype="float32", **options):
    """Trains one variable per shape from seeded weights; returns (w0s, final weights,
    optimizer)."""
    w0s = [initial_weights(shape, seed=i + 1) for i, shape in enumerate(shapes)]
    variables = [keras.Variable(w0, dtype=dtype, name=f"w{i}") for i, w0 in enumerate(w0s)]
    optimizer = sm3_tf.SM3(learning_rate=LR, **options)
    apply = stepper(optimizer, variables, mode)
    for grads in grads_per_step:
        apply([keras.ops.cast(g, dtype) for g in grads])
    return w0s, [as_numpy(v) for v in variables], optimizer


# A linear model whose loss gradient the reference computes itself (no autodiff of the backend
# under test): y = x @ kernel + bias, Keras's "mse" = mean over the batch and the outputs.
IN_FEATURES, OUT_FEATURES, BATCH = 4, 3, 4


def linear_data(batches=3, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batches * BATCH, IN_FEATURES)).astype(np.float32)
    y = rng.normal(size=(batches * BATCH, OUT_FEATURES)).astype(np.float32)
    return x, y


def linear_model(seed=3):
    rng = np.random.default_rng(seed)
    model = keras.Sequential(
        [keras.Input((IN_FEATURES,)), keras.layers.Dense(OUT_FEATURES, name="dense")]
    )
    kernel = rng.normal(size=(IN_FEATURES, OUT_FEATURES)).astype(np.float32)
    bias = rng.normal(size=(OUT_FEATURES,)).astype(np.float32)
    model.get_layer("dense").set_weights([kernel, bias])
    return model


def linear_reference(model, x, y, **options):
    """The kernel and bias the reference reaches training `model`'s initial weights on (x, y),
    in order, `BATCH` rows a step, with the mse gradient worked out in float64 (a step whose
    gradient is not finite is skipped)."""
    kernel, bias = (w.astype(np.float64) for w in model.get_layer("dense").get_weights())
    kernel_ref = ref.SM3Reference(kernel.shape, **options)
    bias_ref = ref.SM3Reference(bias.shape, **options)
    for start in range(0, len(x), BATCH):
        xb = x[start : start + BATCH].astype(np.float64)
        yb = y[start : start + BATCH].astype(np.float64)
        d_out = 2.0 * (xb @ kernel + bias - yb) / (BATCH * OUT_FEATURES)
        if not np.all(np.isfinite(d_out)):
            continue  # skip_nonfinite
        kernel, bias = (
            kernel_ref.step(kernel, xb.T @ d_out, LR),
            bias_ref.step(bias, d_out.sum(axis=0), LR),
        )
    return kernel, bias


def assert_linear_matches(model, expected):
    kernel, bias = model.get_layer("dense").get_weights()
    assert ref.relative_error(kernel, expected[0]) <= TOLERANCE
    assert ref.relative_error(bias, expected[1]) <= TOLERANCE


def custom_loop(model, optimizer, x, y):
    """Trains `model` on (x, y), `BATCH` rows a step, with the backend's own autodiff and a
    hand-written loop (Keras's guide "writing a training loop from scratch" for each backend)."""
    loss_fn = keras.losses.MeanSquaredError()
    batches = [(x[s : s + BATCH], y[s : s + BATCH]) for s in range(0, len(x), BATCH)]
    if BACKEND == "jax":
        _jax_loop(model, optimizer, loss_fn, batches)
    elif BACKEND == "torch":
        import torch

        for xb, yb in batches:
            loss = loss_fn(keras.ops.convert_to_tensor(yb), model(xb, training=True))
            model.zero_grad()
            loss.backward()
            grads = [v.value.grad for v in model.trainable_weights]
            with torch.no_grad():
                optimizer.apply(grads, model.trainable_weights)
    else:
        _tensorflow_loop(model, optimizer, loss_fn, batches)


def _tensorflow_loop(model, optimizer, loss_fn, batches):
    import tensorflow as tf

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)

    for xb, yb in batches:
        train_step(xb, yb)


def _jax_loop(model, optimizer, loss_fn, batches):
    import jax

    optimizer.build(model.trainable_variables)

    def compute_loss(trainable, non_trainable, xb, yb):
        y_pred, non_trainable = model.stateless_call(trainable, non_trainable, xb, training=True)
        return loss_fn(yb, y_pred), non_trainable

    grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

    @jax.jit
    def train_step(state, xb, yb):
        trainable, non_trainable, optimizer_values = state
        (_, non_trainable), grads = grad_fn(trainable, non_trainable, xb, yb)
        trainable, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, trainable)
        return trainable, non_trainable, optimizer_values

    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    for xb, yb in batches:
        state = train_step(state, xb, yb)
    for values, variables in zip(
        state, (model.trainable_variables, model.non_trainable_variables, optimizer.variables)
    ):
        for variable, value in zip(variables, values):
            variable.assign(value)
