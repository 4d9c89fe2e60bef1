"""benchmarks/model_shapes.py: the parameter counts of the published models."""

import pytest

from benchmarks import model_shapes


def test_transformer_big_is_209_8_million_parameters():
    shapes = model_shapes.transformer_big_shapes()
    assert model_shapes.parameter_count(shapes) == 209_842_176
    assert shapes[0][1] == (32768, 1024)  # the shared embedding first
    # Encoder layers: 2 norms (scale, bias), q/k/v/o, 2 FFN kernels + biases = 12 variables;
    # decoder layers: 3 norms, 2 x q/k/v/o, the FFN = 18; then 2 final norms.
    assert len(shapes) == 1 + 6 * 12 + 6 * 18 + 2 * 2
    assert not any(name.endswith(("q/bias", "k/bias", "v/bias")) for name, _ in shapes)


def test_sharded_embedding_keeps_the_count():
    sharded = model_shapes.transformer_big_shapes(embedding_shards=16)
    assert model_shapes.parameter_count(sharded) == 209_842_176
    assert [shape for name, shape in sharded if "symbol_modality" in name] == [(2048, 1024)] * 16


def test_transformer_base_and_bert_large():
    assert model_shapes.parameter_count(model_shapes.transformer_base_shapes()) == 60_880_896
    bert = model_shapes.bert_large_shapes()
    assert model_shapes.parameter_count(bert) == 336_226_108
    assert ("bert/embeddings/word_embeddings", (30522, 1024)) in bert


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        (dict(vocab=0), "vocab"),
        (dict(encoder_layers=-1), "encoder_layers"),
        (dict(embedding_shards=3), "embedding_shards"),
    ],
)
def test_bad_sizes_name_the_argument(kwargs, argument):
    arguments = dict(vocab=32768, hidden=8, filter_size=16, encoder_layers=1, decoder_layers=1)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=f"`{argument}`"):
        model_shapes.transformer_shapes(**arguments)
