"""Tests of the --strategy flag's strategies and chief/worker roles."""

import pytest
import tensorflow as tf

from sm3_t2t import strategies


def test_default_and_mirrored_strategies():
    assert strategies.make_strategy("default") is tf.distribute.get_strategy()
    mirrored = strategies.make_strategy("mirrored")
    # tests/conftest.py splits the CPU into two logical devices.
    assert mirrored.num_replicas_in_sync == 2
    assert strategies.is_chief(mirrored)
    assert strategies.worker_output_dir("/runs/a", mirrored) == "/runs/a"
    assert not strategies.needs_xla(mirrored)


def test_unknown_strategy_is_an_error_listing_the_choices():
    with pytest.raises(ValueError, match="multi_worker"):
        strategies.make_strategy("parameter_server")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        strategies.make_strategy("multi_worker")


def test_cpu_replicas_must_be_positive():
    with pytest.raises(ValueError, match="cpu_replicas"):
        strategies.split_host_cpu(0)

