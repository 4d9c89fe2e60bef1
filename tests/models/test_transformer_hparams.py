"""Tests of the transformer_* hparams sets and of --hparams overrides."""

import pathlib
import re

import keras
import pytest

from sm3_t2t import (
    optimizers,
    registry,
    trainer,
    transformer_hparams,  # noqa: F401  (registers the sets)
)
from sm3_tf import SM3

SETS = (
    "transformer_tiny",
    "transformer_small",
    "transformer_demo",
    "transformer_base",
    "transformer_big",
)
MAKEFILE = pathlib.Path(__file__).resolve().parents[2] / "Makefile"


@pytest.mark.parametrize("name", SETS)
def test_every_set_is_registered_and_trains_with_sm3(name):
    hparams = registry.hparams_set(name)
    assert hparams.optimizer == "sm3"
    assert hparams.optimizer_sm3_momentum == 0.9
    assert hparams.learning_rate_warmup_steps > 0
    assert hparams.hidden_size % hparams.num_heads == 0
    assert hparams.shared_embedding_and_softmax_weights is True
    # Every model field the Transformer reads is present.
    for field in (
        "filter_size",
        "num_hidden_layers",
        "layer_prepostprocess_dropout",
        "attention_dropout",
        "relu_dropout",
        "label_smoothing",
        "initializer_gain",
        "norm_epsilon",
        "batch_size",
        "max_length",
    ):
        assert field in hparams.values(), field


def test_transformer_big_is_the_papers_big_model():
    hparams = registry.hparams_set("transformer_big")
    assert (
        hparams.hidden_size,
        hparams.filter_size,
        hparams.num_heads,
        hparams.num_hidden_layers,
    ) == (1024, 4096, 16, 6)
    assert hparams.layer_prepostprocess_dropout == 0.3
    assert hparams.label_smoothing == 0.1


def test_sets_are_fresh_objects():
    first = registry.hparams_set("transformer_small")
    first.set_hparam("hidden_size", 8)
    assert registry.hparams_set("transformer_small").hidden_size == 256


def test_t2t_override_syntax_keeps_types():
    hparams = registry.hparams_set("transformer_base")
    hparams.parse("learning_rate=0.2,num_heads=16,optimizer=adam")
    assert hparams.learning_rate == 0.2
    assert hparams.num_heads == 16 and isinstance(hparams.num_heads, int)
    assert hparams.optimizer == "adam"


def _options(**overrides):
    values = dict(
        problem="algorithmic_reverse_binary40",
        hparams_set="transformer_tiny",
        data_dir="/nonexistent",
        output_dir="/nonexistent",
    )
    values.update(overrides)
    return trainer.TrainerOptions(**values)


@pytest.mark.parametrize(
    "overrides, named",
    [
        ("no_such_knob=1", "no_such_knob"),
        ("num_heads=four", "num_heads"),
        ("learning_rate=fast", "learning_rate"),
        ("shared_embedding_and_softmax_weights=maybe", "shared_embedding_and_softmax_weights"),
        ("hidden_size", "hidden_size"),
    ],
)
def test_bad_overrides_are_errors_naming_the_key(overrides, named):
    with pytest.raises(ValueError, match=named) as error:
        trainer.resolve_hparams(_options(hparams=overrides))
    assert "--hparams" in str(error.value)


def test_unknown_set_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="transformer_tiny"):
        trainer.resolve_hparams(_options(hparams_set="transformer_huge"))


def test_xla_switches_to_fixed_shapes():
    assert not trainer.resolve_hparams(_options()).fixed_shapes
    assert trainer.resolve_hparams(_options(xla=True)).fixed_shapes
    assert trainer.resolve_hparams(_options(), use_xla=True).fixed_shapes


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sm3", SM3),
        ("adam", keras.optimizers.Adam),
        ("adagrad", keras.optimizers.Adagrad),
        ("adafactor", keras.optimizers.Adafactor),
    ],
)
def test_optimizer_is_selectable(name, expected):
    hparams = trainer.resolve_hparams(_options(hparams=f"optimizer={name}"))
    optimizer = optimizers.make_optimizer(hparams, total_steps=10)
    assert isinstance(optimizer, expected)
    if name == "sm3":
        assert optimizer.momentum == pytest.approx(0.9)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("train_steps", -1, "--train_steps"),
        ("save_checkpoints_steps", 0, "--save_checkpoints_steps"),
        ("strategy", "parameter_server", "--strategy"),
        ("schedule", "forever", "--schedule"),
        ("output_dir", "", "--output_dir"),
    ],
)
def test_bad_trainer_options_are_errors_naming_the_flag(field, value, message):
    with pytest.raises(ValueError, match=message):
        _options(**{field: value}).validate()


def test_xla_with_mirrored_is_refused():
    with pytest.raises(ValueError, match="--xla"):
        _options(xla=True, strategy="mirrored").validate()


def test_a_run_shorter_than_the_cooldown_cools_down_over_all_of_it():
    hparams = registry.hparams_set("transformer_small")
    hparams.parse("learning_rate_cooldown_steps=450")
    schedule = optimizers.make_learning_rate(hparams, total_steps=150)
    assert float(schedule(150)) == 0.0
    assert float(schedule(125)) == pytest.approx(hparams.learning_rate / 6)  # (150 - 125) / 150
    # Runs longer than the cool-down keep it as set: flat until the last 450 steps.
    schedule = optimizers.make_learning_rate(hparams, total_steps=900)
    assert float(schedule(450)) == pytest.approx(hparams.learning_rate)
    assert float(schedule(675)) == pytest.approx(hparams.learning_rate / 2)


def test_the_demo_set_is_transformer_small_with_the_sm3_recipe():
    demo = registry.hparams_set("transformer_demo")
    small = registry.hparams_set("transformer_small")
    recipe = {"optimizer_sm3_beta2", "learning_rate", "learning_rate_cooldown_steps"}
    # The same model, data and warm-up: only the recipe's fields differ.
    assert {k: v for k, v in demo.values().items() if k not in recipe} == {
        k: v for k, v in small.values().items() if k not in recipe
    }
    optimizer = optimizers.make_optimizer(demo, total_steps=transformer_hparams.DEMO_TRAIN_STEPS)
    assert isinstance(optimizer, SM3)  # the demo is SM3's
    assert optimizer.beta_2 == pytest.approx(0.999) and optimizer.momentum == pytest.approx(0.9)


def test_the_demo_schedule_warms_up_holds_and_cools_down_to_zero_at_its_last_step():
    demo = registry.hparams_set("transformer_demo")
    steps = transformer_hparams.DEMO_TRAIN_STEPS
    schedule = optimizers.make_learning_rate(demo, total_steps=steps)
    peak = demo.learning_rate
    assert float(schedule(demo.learning_rate_warmup_steps // 2)) == pytest.approx(peak / 4)
    assert float(schedule(steps - demo.learning_rate_cooldown_steps)) == pytest.approx(peak)
    assert float(schedule(steps - demo.learning_rate_cooldown_steps // 2)) == pytest.approx(
        peak / 2
    )
    assert float(schedule(steps)) == 0.0


def test_make_demo_trains_the_demo_set_for_its_step_count():
    text = MAKEFILE.read_text(encoding="utf-8")
    demo = re.search(r"^demo:.*?(?=^\S)", text, re.S | re.M).group(0)
    assert "--hparams_set=transformer_demo" in demo
    default_steps = re.search(r"TRAIN_STEPS:-(\d+)", demo).group(1)
    assert int(default_steps) == transformer_hparams.DEMO_TRAIN_STEPS
