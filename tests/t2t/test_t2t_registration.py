"""`sm3_tf.t2t` in real tensor2tensor 1.15.7 (TF 2.15): `optimizer=sm3` is registered, SM3's
options are hparams of every set, and T2T's own train-op builder (`optimize.optimize`: its
ConditionalOptimizer's TF 2 path, then tf_slim) trains with SM3 exactly as the numpy reference."""

import environments

environments.require_t2t()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sm3_reference as ref  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensor2tensor.models import basic, transformer  # noqa: E402, F401 (register hparams)
from tensor2tensor.utils import hparams_lib, optimize, registry  # noqa: E402

import sm3_tf.t2t  # noqa: E402

TRANSFORMER_HPARAMS = "transformer_tiny"


def hparams(overrides):
    return hparams_lib.create_hparams(TRANSFORMER_HPARAMS, overrides)


def test_sm3_is_in_the_optimizer_registry():
    assert sm3_tf.t2t.T2T_AVAILABLE
    assert registry.optimizer("sm3") is sm3_tf.t2t.sm3_optimizer
    sm3_tf.t2t.register()  # a second registration changes nothing
    assert registry.optimizer("sm3") is sm3_tf.t2t.sm3_optimizer


def test_every_hparams_set_has_the_sm3_options_with_sm3_defaults():
    for name in (TRANSFORMER_HPARAMS, "transformer_base", "basic_fc_small"):
        values = registry.hparams(name).values()
        assert {hparam: values[hparam] for hparam in sm3_tf.t2t.HPARAMS} == {
            hparam: default for hparam, (_, default, _) in sm3_tf.t2t.HPARAMS.items()
        }


def test_hparams_reach_the_optimizer():
    chosen = hparams(
        "optimizer=sm3,optimizer_sm3_momentum=0.5,optimizer_sm3_beta2=0.99,"
        "optimizer_sm3_epsilon=1e-6,optimizer_sm3_variant=I,optimizer_sm3_momentum_dtype=bfloat16,"
        "optimizer_sm3_skip_nonfinite=true,optimizer_sm3_fused=false"
    )
    assert sm3_tf.t2t.sm3_arguments(chosen) == dict(
        momentum=0.5,
        beta_2=0.99,
        epsilon=1e-6,
        variant="I",
        momentum_dtype="bfloat16",
        skip_nonfinite=True,
        fused=False,
    )
    with tf.Graph().as_default():
        optimizer = registry.optimizer("sm3")(tf.constant(0.1), chosen)
        assert isinstance(optimizer, sm3_tf.t2t.T2TSM3Optimizer)


@pytest.mark.parametrize(
    "overrides,named",
    [
        ("optimizer_sm3_momentum=1.5", "`momentum`"),
        ("optimizer_sm3_variant=III", "`variant`"),
        ("optimizer_sm3_fused=maybe", "`fused`"),
    ],
)
def test_a_bad_hparam_is_refused_naming_it(overrides, named):
    with tf.Graph().as_default(), pytest.raises(ValueError) as error:
        registry.optimizer("sm3")(tf.constant(0.1), hparams(overrides))
    assert named in str(error.value)
    assert overrides.split("=")[0] in str(error.value)


def test_t2t_train_op_matches_the_reference():
    """T2T builds the train op (ConditionalOptimizer.get_gradients, tf_slim's optimize_loss with
    its `ops.Tensor` checks); SM3 then steps as the reference, step after step."""
    chosen = hparams(
        "optimizer=sm3,optimizer_sm3_momentum=0.5,optimizer_sm3_variant=I,"
        "weight_decay=0.0,clip_grad_norm=0.0,summarize_grads=false"
    )
    rng = np.random.default_rng(0)
    shapes = {"matrix": (4, 3), "vector": (5,)}
    initial = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    steps = [{name: rng.normal(size=shape) for name, shape in shapes.items()} for _ in range(3)]
    with tf.Graph().as_default() as graph:
        variables = {
            name: tf.compat.v1.get_variable(name, initializer=value)
            for name, value in initial.items()
        }
        feeds = {
            name: tf.compat.v1.placeholder(tf.float32, shape) for name, shape in shapes.items()
        }
        # d loss / d variable = its feed: the gradients are the steps' arrays.
        loss = tf.add_n([tf.reduce_sum(variables[n] * feeds[n]) for n in shapes])
        train_op = optimize.optimize(loss, tf.constant(0.1), chosen)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for gradients in steps:
                session.run(train_op, {feeds[n]: gradients[n] for n in shapes})
            actual = session.run(variables)
    for name, shape in shapes.items():
        reference = ref.SM3Reference(shape, variant="I", momentum=0.5)
        expected = initial[name].astype(np.float64)
        for gradients in steps:
            expected = reference.step(expected, gradients[name], 0.1)
        assert ref.relative_error(actual[name], expected) <= 1e-5
