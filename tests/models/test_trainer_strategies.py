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


def test_tpu_without_a_tpu_names_the_flag():
    # No TPU is reachable here: TPUClusterResolver finds none without a name.
    with pytest.raises(ValueError, match="--tpu"):
        strategies.make_strategy("tpu", tpu=None)


class _FakeTPUStrategy:
    def __init__(self, resolver):
        self.resolver = resolver


def test_tpu_resolves_connects_initialises_then_builds_tpu_strategy(monkeypatch):
    """The TPU wiring, with TF's TPU entry points replaced by recorders.

    No TPU is reachable from this machine (and a fake grpc address makes
    initialize_tpu_system wait forever), so this checks the calls and their
    order; the fixed-shape XLA training a TPU runs is tested on CPU in
    test_trainer.py::test_xla_training_with_fixed_shapes.
    """
    calls = []

    def resolver(tpu):
        calls.append(("resolve", tpu))
        return "resolver-for-" + tpu

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", resolver)
    monkeypatch.setattr(
        tf.config, "experimental_connect_to_cluster", lambda r: calls.append(("connect", r))
    )
    monkeypatch.setattr(
        tf.tpu.experimental, "initialize_tpu_system", lambda r: calls.append(("initialize", r))
    )
    monkeypatch.setattr(tf.distribute, "TPUStrategy", _FakeTPUStrategy)

    strategy = strategies.make_strategy("tpu", tpu="my-tpu")

    assert calls == [
        ("resolve", "my-tpu"),
        ("connect", "resolver-for-my-tpu"),
        ("initialize", "resolver-for-my-tpu"),
    ]
    assert isinstance(strategy, _FakeTPUStrategy)
    assert strategy.resolver == "resolver-for-my-tpu"
    # A TPU strategy makes the trainer compile with XLA and use fixed shapes.
    assert strategies.needs_xla(strategy)
