"""Tests of sm3_t2t.hparams: typed access, parsing overrides, JSON, and basic_params1."""

import copy
import pickle

import numpy as np
import pytest

from sm3_t2t.hparams import HParams, basic_params1


@pytest.fixture
def hparams():
    return HParams(
        steps=10, rate=0.5, name="adam", flag=False, sizes=[1, 2], words=["a"], anything=None
    )


def test_attribute_access_and_values(hparams):
    assert hparams.steps == 10 and hparams.name == "adam" and hparams.get("missing", 7) == 7
    values = hparams.values()
    values["sizes"].append(3)  # values() is a copy
    assert hparams.sizes == [1, 2]
    assert "rate" in hparams and "missing" not in hparams
    with pytest.raises(AttributeError, match="no hparam 'missing'"):
        _ = hparams.missing


def test_parse_keeps_types(hparams):
    hparams.parse("steps=3, rate=2,name=sm3,flag=true,sizes=[4, 5,6],words=[x,y]")
    assert hparams.values() == {
        "steps": 3,
        "rate": 2.0,
        "name": "sm3",
        "flag": True,
        "sizes": [4, 5, 6],
        "words": ["x", "y"],
        "anything": None,
    }
    assert isinstance(hparams.rate, float) and isinstance(hparams.steps, int)
    hparams.parse("flag=False,anything=1.5,sizes=[]")
    assert hparams.flag is False and hparams.anything == 1.5 and hparams.sizes == []
    assert hparams.parse("") is hparams


@pytest.mark.parametrize(
    "overrides, key",
    [
        ("steps=1.5", "steps"),
        ("rate=fast", "rate"),
        ("flag=maybe", "flag"),
        ("sizes=3", "sizes"),
        ("sizes=[1,x]", "sizes"),
        ("name=[a,b]", "name"),
        ("unknown=1", "unknown"),
        ("steps=1,steps=2", "steps"),
    ],
)
def test_parse_errors_name_the_key_and_change_nothing(hparams, overrides, key):
    before = hparams.values()
    with pytest.raises(ValueError, match=f"'{key}'"):
        hparams.parse("rate=0.25," + overrides)
    assert hparams.values() == before  # the valid rate=0.25 before the error was not applied


def test_parse_is_not_eval(hparams):
    hparams.parse("name=__import__('os').getcwd()")
    assert hparams.name == "__import__('os').getcwd()"
    with pytest.raises(ValueError, match="cannot parse"):
        hparams.parse("steps")


def test_set_hparam_checks_types(hparams):
    hparams.set_hparam("rate", 3)
    assert hparams.rate == 3.0 and isinstance(hparams.rate, float)
    hparams.steps = np.int64(4)  # numpy integers are accepted and stored as int
    assert type(hparams.steps) is int and hparams.steps == 4
    for name, value in (
        ("steps", 1.0),
        ("steps", True),
        ("flag", 1),
        ("name", 3),
        ("sizes", 5),
        ("sizes", ["a"]),
    ):
        with pytest.raises(ValueError, match=f"'{name}'"):
            hparams.set_hparam(name, value)
    with pytest.raises(ValueError, match="unknown hparam 'nope'"):
        hparams.set_hparam("nope", 1)
    with pytest.raises(AttributeError, match="add_hparam"):
        hparams.nope = 1


def test_add_hparam(hparams):
    hparams.add_hparam("hidden_size", 512)
    assert hparams.hidden_size == 512
    with pytest.raises(ValueError, match="'hidden_size' already exists"):
        hparams.add_hparam("hidden_size", 1)
    with pytest.raises(ValueError, match="hide the HParams method"):
        hparams.add_hparam("values", 1)
    with pytest.raises(ValueError, match="identifier"):
        hparams.add_hparam("not a name", 1)
    hparams.del_hparam("hidden_size")
    assert "hidden_size" not in hparams


def test_override_from_dict_and_json_round_trip(hparams):
    hparams.override_from_dict({"steps": 20, "words": ["p", "q"]})
    restored = HParams.from_json(hparams.to_json())
    assert restored == hparams and restored.values()["words"] == ["p", "q"]
    assert isinstance(restored.rate, float)
    other = HParams(steps=1, rate=0.1)
    other.parse_json('{"steps": 5}')
    assert other.values() == {"steps": 5, "rate": 0.1}
    with pytest.raises(ValueError, match="'steps'"):
        other.parse_json('{"steps": "five"}')
    with pytest.raises(ValueError, match="JSON must be an object"):
        HParams.from_json("[1, 2]")


def test_copies_are_independent(hparams):
    for clone in (copy.deepcopy(hparams), pickle.loads(pickle.dumps(hparams))):
        clone.sizes = [9]
        assert clone != hparams and hparams.sizes == [1, 2]


def test_basic_params1_has_the_t2t_fields_and_defaults():
    hparams = basic_params1()
    assert hparams.values() == {
        "batch_size": 4096,
        "max_length": 256,
        "min_length_bucket": 8,
        "length_bucket_step": 1.1,
        "fixed_shapes": False,
        "max_input_seq_length": 0,
        "optimizer": "sm3",
        "learning_rate": 0.1,
        "learning_rate_warmup_steps": 1000,
        "learning_rate_warmup_power": 2.0,
        "learning_rate_cooldown_steps": 0,
        "optimizer_sm3_momentum": 0.9,
        "optimizer_sm3_beta2": 1.0,
        "optimizer_sm3_variant": "II",
        "optimizer_sm3_epsilon": 0.0,
        "optimizer_sm3_momentum_dtype": "",
        "optimizer_sm3_skip_nonfinite": False,
        "optimizer_sm3_fused": "auto",
        "optimizer_adam_beta1": 0.9,
        "optimizer_adam_beta2": 0.997,
        "optimizer_adam_epsilon": 1e-9,
        "clip_grad_norm": 0.0,
        "seed": 1234,
    }
    assert basic_params1() is not basic_params1()
    hparams.parse("batch_size=2048,optimizer_sm3_variant=I,learning_rate_warmup_power=1")
    assert (hparams.batch_size, hparams.optimizer_sm3_variant) == (2048, "I")
