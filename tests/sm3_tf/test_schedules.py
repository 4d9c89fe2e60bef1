"""sm3_tf.schedules.WarmupSchedule against the formula, and driving SM3 step by step."""

import numpy as np
import pytest
import sm3_reference as ref
import tensorflow as tf

import sm3_tf
from sm3_tf.schedules import WarmupSchedule


def expected_rate(step, lr, warmup, power, cooldown=0, total=None):
    rate = lr * min(1.0, (step / warmup) ** power) if warmup else lr
    if cooldown:
        rate *= min(1.0, max(total - step, 0) / cooldown)
    return rate


@pytest.mark.parametrize(
    "warmup,power,cooldown,total",
    [(10, 2.0, 0, None), (10, 1.0, 0, None), (0, 2.0, 0, None), (4, 2.0, 5, 20)],
)
def test_schedule_values(warmup, power, cooldown, total):
    schedule = WarmupSchedule(
        0.5, warmup_steps=warmup, power=power, cooldown_steps=cooldown, total_steps=total
    )
    for step in [0, 1, 3, 4, 9, 10, 15, 19, 20, 25]:
        assert float(schedule(step)) == pytest.approx(
            expected_rate(step, 0.5, warmup, power, cooldown, total), rel=1e-6, abs=1e-9
        )


def test_sm3_follows_the_schedule():
    schedule = WarmupSchedule(0.2, warmup_steps=3)
    var = tf.Variable(np.full((3, 2), 0.5, np.float32))
    optimizer = sm3_tf.SM3(learning_rate=schedule, momentum=0.9)
    model = ref.SM3Reference((3, 2), momentum=0.9)
    w = var.numpy().astype(np.float64)
    rng = np.random.default_rng(0)
    for step in range(5):
        g = rng.normal(size=(3, 2)).astype(np.float32)
        optimizer.apply_gradients([(tf.constant(g), var)])
        w = model.step(w, g, expected_rate(step, 0.2, 3, 2.0))
    assert ref.relative_error(var.numpy(), w) <= 1e-5


@pytest.mark.parametrize(
    "arguments,named",
    [
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(learning_rate=1.0, warmup_steps=-1), "warmup_steps"),
        (dict(learning_rate=1.0, power=0.0), "power"),
        (dict(learning_rate=1.0, cooldown_steps=5), "total_steps"),
        (dict(learning_rate=1.0, cooldown_steps=50, total_steps=10), "cooldown_steps"),
    ],
)
def test_bad_schedule_arguments_are_named(arguments, named):
    with pytest.raises(ValueError, match=f"`{named}`"):
        WarmupSchedule(**arguments)
