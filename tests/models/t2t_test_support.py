"""What the T2T layer's tests share: options for a few quick steps of the tiny Transformer."""

from sm3_t2t import trainer

TINY_HPARAMS = "hidden_size=32,filter_size=64,batch_size=256"


def tiny_options(root, **overrides):
    """`TrainerOptions` training the tiny Transformer on the reversal problem, data and run in
    `root` (a local path or a gfile URL such as ram://), `schedule="train"`; `overrides` replace
    any field."""
    fields = dict(
        problem="algorithmic_reverse_binary40",
        hparams_set="transformer_tiny",
        hparams=TINY_HPARAMS,
        data_dir=f"{root}/data",
        output_dir=f"{root}/run",
        train_steps=2,
        save_checkpoints_steps=2,
        schedule="train",
    )
    fields.update(overrides)
    return trainer.TrainerOptions(**fields)
