"""Hyper-parameter sets for the Transformer, named as in Tensor2Tensor.

Each set is a function registered with `registry.register_hparams`; it starts
from `hparams.basic_params1()` (data and optimizer fields) and adds the model
fields under T2T's names (`hidden_size`, `filter_size`, `num_heads`, ...), so
T2T-style overrides such as `--hparams='learning_rate=0.2,num_heads=8'` work
unchanged. Every set trains with SM3 by default (momentum 0.9, warm-up to a
constant rate), the optimizer of Anil et al. (2019); `optimizer=adam`,
`adagrad` or `adafactor` switch to the comparison optimizers.

The sets:

* `transformer_tiny`: 2+2 layers of width 128, for tests and smoke runs.
* `transformer_small`: 2+2 layers of width 256, a few minutes on CPU.
* `transformer_demo`: `transformer_small` with the SM3 recipe of docs/recipes.md, for
    `make demo` (`DEMO_TRAIN_STEPS` steps).
* `transformer_base`: the paper's base model (512 wide, 6+6 layers).
* `transformer_big`: the paper's big model (1024 wide, 4096 filter,
    16 heads, 6+6 layers, dropout 0.3).
"""

from sm3_t2t import hparams as hparams_lib
from sm3_t2t import registry


def _set_or_add(hparams, name, value):
    """Sets `name` whether or not `basic_params1()` already defines it.

    `basic_params1()` may or may not carry generic model fields (T2T's own does:
    `hidden_size`, `label_smoothing`, ...); this keeps the sets independent of
    that choice.
    """
    if name in hparams.values():
        hparams.set_hparam(name, value)
    else:
        hparams.add_hparam(name, value)


def _update(hparams, **values):
    for name, value in values.items():
        _set_or_add(hparams, name, value)
    return hparams


@registry.register_hparams
def transformer_base():
    """The base Transformer of "Attention Is All You Need" (T2T v2+ layout).

    Pre-norm residual blocks (layer norm before each sub-layer, dropout then
    residual add after it), shared source/target embeddings and softmax
    weights, sinusoidal positions, label smoothing 0.1.
    """
    hparams = hparams_lib.basic_params1()
    return _update(
        hparams,
        # Data: T2T's batch_size counts tokens per batch (per replica).
        batch_size=4096,
        max_length=256,
        # Model shape.
        hidden_size=512,
        filter_size=2048,
        num_heads=8,
        num_hidden_layers=6,
        # 0 means "use num_hidden_layers", as in T2T.
        num_encoder_layers=0,
        num_decoder_layers=0,
        # Regularisation.
        layer_prepostprocess_dropout=0.1,
        attention_dropout=0.1,
        relu_dropout=0.1,
        label_smoothing=0.1,
        # Embeddings: one matrix for source, target and softmax when the
        # vocabularies match (always true for the shared-vocab translate
        # problems); otherwise only target embedding and softmax are shared.
        shared_embedding_and_softmax_weights=True,
        # T2T's "uniform_unit_scaling" initializer: variance scaling with
        # fan_avg and a uniform distribution, scaled by this gain.
        initializer_gain=1.0,
        norm_epsilon=1e-6,
        # Optimizer: SM3 with momentum and a warm-up to a constant rate
        # (basic_params1's warm-up power), as in the SM3 paper's
        # translation experiments.
        optimizer="sm3",
        learning_rate=0.1,
        learning_rate_warmup_steps=8000,
        optimizer_sm3_momentum=0.9,
        # Adam settings of T2T's transformer_base, used with optimizer=adam.
        optimizer_adam_beta1=0.9,
        optimizer_adam_beta2=0.997,
        optimizer_adam_epsilon=1e-9,
        clip_grad_norm=0.0,
    )


@registry.register_hparams
def transformer_big():
    """The big Transformer: 1024 wide, 4096 filter, 16 heads, dropout 0.3."""
    return _update(
        transformer_base(),
        hidden_size=1024,
        filter_size=4096,
        num_heads=16,
        batch_size=2048,
        layer_prepostprocess_dropout=0.3,
    )


@registry.register_hparams
def transformer_small():
    """A 2+2-layer Transformer of width 256 that learns within minutes on CPU.

    The README demo's model (`transformer_demo` adds its SM3 recipe), sized for
    `translate_enfr_wesnoth` on 2 cores: small batches give many updates per
    minute, and the short warm-up lets SM3 reach its full rate early. Measured
    on that problem over 600 steps: learning rate 0.1 beats 0.2 and 0.5, and
    without dropout test BLEU is 6.5 against 2.3 with T2T's 0.1 (a run this
    short sees the data ~3 times and cannot overfit). Train longer? Put dropout
    back with `--hparams=layer_prepostprocess_dropout=0.1,attention_dropout=0.1,...`.
    """
    return _update(
        transformer_base(),
        num_hidden_layers=2,
        hidden_size=256,
        filter_size=1024,
        num_heads=4,
        batch_size=2048,
        max_length=64,
        learning_rate=0.1,
        learning_rate_warmup_steps=100,
        layer_prepostprocess_dropout=0.0,
        attention_dropout=0.0,
        relu_dropout=0.0,
    )


# The run length transformer_demo is tuned for, and `make demo`'s TRAIN_STEPS default: ~8 min of
# training on the idle 2-core machine (0.48 s per 2048-token step), 10 min with data and BLEU.
DEMO_TRAIN_STEPS = 1000


@registry.register_hparams
def transformer_demo():
    """`transformer_small` with the SM3 recipe of docs/recipes.md, for `DEMO_TRAIN_STEPS` steps.

    Three fields change (translate_enfr_wesnoth, 2048-token batches; 1000 steps are ~6 passes
    over its 19k pairs):

    * `optimizer_sm3_beta2=0.999`: SM3's accumulators become moving averages that forget the
      large gradients of the first hundred steps. With the paper's running sums those stay in
      the denominator and every later step is too small; forgetting is what makes Adafactor
      lead early (docs/recipes.md's ablation).
    * `learning_rate=0.002`: at step ~300 the average holds ~1/1000 of the running sum, so a
      rate ~30x below the running sums' 0.1 (0.003) trains alike for 400 steps; at the end
      0.002 is better and steadier across seeds than 0.003 (below).
    * `learning_rate_cooldown_steps=500`: linear decay to 0 over the last 500 steps, after
      the authors' quadratic warm-up (100 steps) and a constant rate.

    Measured over 1000 steps, seeds 1 / 1234 (this set's, `make demo`'s) / 2, one thread each
    (docs/recipes.md; BLEU on 200 test sentences spread over the split, beam 4): validation
    loss 2.976 / 2.935 / 2.956, BLEU 10.67 / 10.58 / 11.29. lr 0.0015: 2.973 / 2.967 / 2.987,
    BLEU 9.43 / 11.25 / 11.02; lr 0.003 (this set's rate before): 3.082 (seed 1) and 3.120
    (seed 2), and 0.0045 collapses (3.591). Against 3.121 for Adam at lr 0.003 with this
    schedule and 3.241 for `transformer_small` (running sums, 900 steps; seed 1 each). Not
    better: a 900-step cool-down, 1024-token batches for 1800 steps, dropout 0.1.
    """
    return _update(
        transformer_small(),
        optimizer_sm3_beta2=0.999,
        learning_rate=0.002,
        learning_rate_cooldown_steps=500,
    )


@registry.register_hparams
def transformer_tiny():
    """A 2+2-layer Transformer of width 128, for tests and smoke runs."""
    return _update(
        transformer_base(),
        num_hidden_layers=2,
        hidden_size=128,
        filter_size=512,
        num_heads=4,
        batch_size=1024,
        max_length=64,
        learning_rate=0.1,
        learning_rate_warmup_steps=100,
    )


def check_hparams(hparams):
    """Raises ValueError naming the first Transformer hparam it cannot be built or trained with.

    Checked before anything is written, so that `hidden_size=0` or `relu_dropout=1.5` is one line
    naming the hparam, not a Keras traceback from deep inside the model seconds later.
    """

    def need(condition, name, requirement):
        if not condition:
            raise ValueError(f"hparam `{name}` {requirement}, got {hparams.get(name)!r}.")

    for name in ("hidden_size", "filter_size", "num_heads"):
        need(hparams.get(name, 0) >= 1, name, "must be a positive integer")
    need(
        hparams.hidden_size % hparams.num_heads == 0,
        "num_heads",
        f"must divide hidden_size={hparams.hidden_size}",
    )
    for name in ("num_hidden_layers", "num_encoder_layers", "num_decoder_layers"):
        need(hparams.get(name, 0) >= 0, name, "must be >= 0")
    for name in ("layer_prepostprocess_dropout", "attention_dropout", "relu_dropout"):
        need(0.0 <= hparams.get(name, 0.0) < 1.0, name, "must be a dropout rate in [0, 1)")
    for name in ("initializer_gain", "norm_epsilon"):
        need(0.0 < hparams.get(name, 1.0) < float("inf"), name, "must be a positive number")
