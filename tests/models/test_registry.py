"""Tests of sm3_t2t.registry: T2T names, decorator forms, look-ups and their errors."""

import pytest

import sm3_t2t  # noqa: F401  registers the built-in problems
from sm3_t2t import registry
from sm3_t2t.hparams import HParams
from sm3_t2t.problems import Problem
from sm3_t2t.problems.translate import TranslateEnfrWesnoth


@pytest.fixture
def cleanup():
    """Unregisters, after the test, every (registry, name) the test appends."""
    added = []
    yield added
    for table, name in added:
        if name in table:
            table.unregister(name)


@pytest.mark.parametrize(
    "class_name, expected",
    [
        ("TranslateEnfrWmt32k", "translate_enfr_wmt32k"),
        ("AlgorithmicReverseBinary40", "algorithmic_reverse_binary40"),
        ("Transformer", "transformer"),
        ("LanguagemodelLm1b32k", "languagemodel_lm1b32k"),
    ],
)
def test_default_class_names_follow_t2t(class_name, expected):
    assert registry.default_name(type(class_name, (), {})) == expected


def test_builtin_problems_are_registered_on_import():
    expected = {
        "translate_enfr_wmt32k",
        "translate_ende_wmt32k",
        "translate_enfr_wesnoth",
        "translate_ende_wesnoth",
        "translate_tsv",
        "algorithmic_reverse_binary40",
    }
    assert expected <= set(registry.list_problems())
    for name in expected:
        instance = registry.problem(name)
        assert isinstance(instance, Problem) and instance.name == name


def test_decorator_forms(cleanup):
    @registry.register_problem
    class ZzBareProblem(Problem):
        pass

    @registry.register_problem("zz_named_problem")
    class ZzOther(Problem):
        pass

    @registry.register_model(name="zz_keyword_model")
    class ZzModel:
        pass

    @registry.register_hparams()
    def zz_hparams():
        return HParams(a=1)

    cleanup += [
        (registry.PROBLEMS, "zz_bare_problem"),
        (registry.PROBLEMS, "zz_named_problem"),
        (registry.MODELS, "zz_keyword_model"),
        (registry.HPARAMS, "zz_hparams"),
    ]
    # The decorators hand back what they decorate, so classes/functions stay usable.
    assert isinstance(ZzBareProblem(), ZzBareProblem) and zz_hparams().a == 1
    assert type(registry.problem("zz_bare_problem")) is ZzBareProblem
    assert registry.problem("zz_named_problem").name == "zz_named_problem"
    assert registry.model("zz_keyword_model") is ZzModel
    assert registry.hparams_set("zz_hparams").values() == {"a": 1}
    assert "zz_hparams" in registry.list_hparams()
    assert registry.list_problems() == sorted(registry.list_problems())


def test_lookups_return_fresh_objects(cleanup):
    @registry.register_hparams
    def zz_fresh():
        return HParams(batch_size=10)

    cleanup.append((registry.HPARAMS, "zz_fresh"))
    first = registry.hparams_set("zz_fresh")
    first.batch_size = 99
    assert registry.hparams_set("zz_fresh").batch_size == 10
    assert registry.problem("translate_tsv") is not registry.problem("translate_tsv")


def test_unregistered_subclass_gets_its_own_name():
    class SmallWesnothCopy(TranslateEnfrWesnoth):
        pass

    assert SmallWesnothCopy().name == "small_wesnoth_copy"
    assert TranslateEnfrWesnoth().name == "translate_enfr_wesnoth"


def test_duplicate_name_is_an_error(cleanup):
    @registry.register_model("zz_twice")
    class First:
        pass

    cleanup.append((registry.MODELS, "zz_twice"))
    with pytest.raises(registry.DuplicateNameError, match="zz_twice.*already registered"):
        registry.register_model("zz_twice")(type("Second", (), {}))
    assert registry.model("zz_twice") is First
    with pytest.raises(ValueError, match="already registered"):
        registry.register_problem(type("TranslateTsv", (Problem,), {}))


def test_unknown_name_lists_close_matches():
    with pytest.raises(KeyError) as raised:
        registry.problem("translate_enfr_wesnot")
    message = str(raised.value)
    assert message.startswith("Unknown problem 'translate_enfr_wesnot'")
    assert "Did you mean: translate_enfr_wesnoth" in message
    assert "algorithmic_reverse_binary40" in message  # the full list follows
    with pytest.raises(KeyError, match="Unknown hparams 'no_such_set'"):
        registry.hparams_set("no_such_set")
    with pytest.raises(KeyError, match="Unknown model 'no_such_model'"):
        registry.model("no_such_model")


def test_wrong_kinds_are_rejected(cleanup):
    with pytest.raises(TypeError, match="expects a class"):
        registry.register_problem("zz_function")(lambda: None)
    with pytest.raises(TypeError, match="expects a function"):
        registry.register_hparams("zz_class")(type("NotAFunction", (), {}))

    @registry.register_hparams
    def zz_not_hparams():
        return {"batch_size": 1}

    cleanup.append((registry.HPARAMS, "zz_not_hparams"))
    with pytest.raises(TypeError, match="returned dict, expected HParams"):
        registry.hparams_set("zz_not_hparams")
    with pytest.raises(ValueError, match="non-empty string"):
        registry.register_model("")(type("Empty", (), {}))


def test_help_string_lists_every_section(cleanup):
    @registry.register_model
    class ZzHelpModel:
        pass

    cleanup.append((registry.MODELS, "zz_help_model"))
    text = registry.help_string()
    assert "Problems:" in text and "HParams sets:" in text and "Models:" in text
    assert "  translate_enfr_wesnoth" in text and "  zz_help_model" in text
