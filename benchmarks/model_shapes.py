"""Parameter shapes of standard models, for step-time and memory benchmarks.

Each function returns the model's trainable variables as a list of `(name, shape)` tuples, in the
order the model creates them; nothing here imports TensorFlow.

  transformer_big_shapes    T2T `transformer_big`: hidden 1024, filter 4096, 6 + 6 layers, one
                            embedding shared by inputs, targets and softmax; ~209.8M parameters
                            with a 32k vocabulary.
  transformer_base_shapes   T2T `transformer_base`: hidden 512, filter 2048; ~60.9M (32k vocab).
  bert_large_shapes         BERT-Large (uncased, 30522 wordpieces) with its pre-training heads;
                            ~336M parameters.

Attention projections q, k, v, o have no bias in T2T and one in BERT; feed-forward layers and
layer norms have biases in both. T2T shards the embedding into 16 variables by default
(`symbol_modality_num_shards`); `embedding_shards` reproduces that, 1 keeps one 32k x 1024 matrix.
"""


def parameter_count(shapes):
    """Total number of parameters in a `(name, shape)` list."""
    total = 0
    for _, shape in shapes:
        size = 1
        for d in shape:
            size *= d
        total += size
    return total


def _layer_norm(prefix, hidden):
    return [(f"{prefix}/layer_norm_scale", (hidden,)), (f"{prefix}/layer_norm_bias", (hidden,))]


def _t2t_attention(prefix, hidden):
    return [(f"{prefix}/{name}/kernel", (hidden, hidden)) for name in ("q", "k", "v", "output")]


def _t2t_ffn(prefix, hidden, filter_size):
    return [
        (f"{prefix}/conv1/kernel", (hidden, filter_size)),
        (f"{prefix}/conv1/bias", (filter_size,)),
        (f"{prefix}/conv2/kernel", (filter_size, hidden)),
        (f"{prefix}/conv2/bias", (hidden,)),
    ]


def transformer_shapes(
    vocab, hidden, filter_size, encoder_layers, decoder_layers, embedding_shards=1
):
    """A T2T Transformer with shared input/target/softmax embeddings (pre-norm, no attention bias).

    Args:
      vocab: vocabulary size (rows of the shared embedding).
      hidden: `hidden_size`.
      filter_size: the feed-forward inner size.
      encoder_layers, decoder_layers: numbers of layers.
      embedding_shards: how many row-shards the embedding is split into (T2T default: 16).

    Raises:
      ValueError: a non-positive size, or shards that do not divide `vocab`.
    """
    for name, value in (
        ("vocab", vocab),
        ("hidden", hidden),
        ("filter_size", filter_size),
        ("embedding_shards", embedding_shards),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    for name, value in (("encoder_layers", encoder_layers), ("decoder_layers", decoder_layers)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")
    if vocab % embedding_shards:
        raise ValueError(f"`embedding_shards` ({embedding_shards}) must divide `vocab` ({vocab}).")
    modality = f"transformer/symbol_modality_{vocab}_{hidden}/shared"
    shapes = [
        (f"{modality}/weights_{i}", (vocab // embedding_shards, hidden))
        for i in range(embedding_shards)
    ]
    for layer in range(encoder_layers):
        prefix = f"transformer/body/encoder/layer_{layer}"
        shapes += _layer_norm(f"{prefix}/self_attention", hidden)
        shapes += _t2t_attention(f"{prefix}/self_attention/multihead_attention", hidden)
        shapes += _layer_norm(f"{prefix}/ffn", hidden)
        shapes += _t2t_ffn(f"{prefix}/ffn/dense_relu_dense", hidden, filter_size)
    shapes += _layer_norm("transformer/body/encoder", hidden)
    for layer in range(decoder_layers):
        prefix = f"transformer/body/decoder/layer_{layer}"
        shapes += _layer_norm(f"{prefix}/self_attention", hidden)
        shapes += _t2t_attention(f"{prefix}/self_attention/multihead_attention", hidden)
        shapes += _layer_norm(f"{prefix}/encdec_attention", hidden)
        shapes += _t2t_attention(f"{prefix}/encdec_attention/multihead_attention", hidden)
        shapes += _layer_norm(f"{prefix}/ffn", hidden)
        shapes += _t2t_ffn(f"{prefix}/ffn/dense_relu_dense", hidden, filter_size)
    shapes += _layer_norm("transformer/body/decoder", hidden)
    return shapes


def transformer_big_shapes(vocab=32768, embedding_shards=1):
    """T2T `transformer_big`: hidden 1024, filter 4096, 6 encoder + 6 decoder layers."""
    return transformer_shapes(vocab, 1024, 4096, 6, 6, embedding_shards)


def transformer_base_shapes(vocab=32768, embedding_shards=1):
    """T2T `transformer_base`: hidden 512, filter 2048, 6 encoder + 6 decoder layers."""
    return transformer_shapes(vocab, 512, 2048, 6, 6, embedding_shards)


def _dense(prefix, fan_in, fan_out):
    return [(f"{prefix}/kernel", (fan_in, fan_out)), (f"{prefix}/bias", (fan_out,))]


def _bert_layer_norm(prefix, hidden):
    return [(f"{prefix}/LayerNorm/gamma", (hidden,)), (f"{prefix}/LayerNorm/beta", (hidden,))]


def bert_large_shapes(
    vocab=30522, hidden=1024, layers=24, intermediate=4096, max_positions=512, type_vocab=2
):
    """BERT-Large with the masked-LM and next-sentence heads (output embedding tied to the
    input)."""
    shapes = [
        ("bert/embeddings/word_embeddings", (vocab, hidden)),
        ("bert/embeddings/token_type_embeddings", (type_vocab, hidden)),
        ("bert/embeddings/position_embeddings", (max_positions, hidden)),
    ]
    shapes += _bert_layer_norm("bert/embeddings", hidden)
    for layer in range(layers):
        prefix = f"bert/encoder/layer_{layer}"
        for name in ("query", "key", "value"):
            shapes += _dense(f"{prefix}/attention/self/{name}", hidden, hidden)
        shapes += _dense(f"{prefix}/attention/output/dense", hidden, hidden)
        shapes += _bert_layer_norm(f"{prefix}/attention/output", hidden)
        shapes += _dense(f"{prefix}/intermediate/dense", hidden, intermediate)
        shapes += _dense(f"{prefix}/output/dense", intermediate, hidden)
        shapes += _bert_layer_norm(f"{prefix}/output", hidden)
    shapes += _dense("bert/pooler/dense", hidden, hidden)
    shapes += _dense("cls/predictions/transform/dense", hidden, hidden)
    shapes += _bert_layer_norm("cls/predictions/transform", hidden)
    shapes += [
        ("cls/predictions/output_bias", (vocab,)),
        ("cls/seq_relationship/output_weights", (2, hidden)),
        ("cls/seq_relationship/output_bias", (2,)),
    ]
    return shapes


MODELS = {
    "transformer_big": transformer_big_shapes,
    "transformer_base": transformer_base_shapes,
    "bert_large": bert_large_shapes,
}
