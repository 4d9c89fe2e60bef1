"""sm3_t2t: a small Tensor2Tensor-style layer (registries, hparams, problems, input pipelines)
for training with the SM3 optimizer on TensorFlow 2, where tensor2tensor no longer imports.

    import sm3_t2t
    problem = sm3_t2t.registry.problem("translate_enfr_wesnoth")
    problem.generate_data(data_dir)          # embedded corpus, nothing to download
    hparams = sm3_t2t.hparams.basic_params1()
    batches = problem.dataset(sm3_t2t.problems.TRAIN, data_dir, hparams)

Importing the package registers the built-in problems, models and hparams sets. Your own register
the same way from a package given to `--t2t_usr_dir` (`sm3_t2t.usr_dir`); a model implements
`sm3_t2t.model_protocol.Model`.
"""

# Modules that register problems, models and hparams sets; a broken one fails the import loudly.
from sm3_t2t import (
    hparams,
    problems,
    registry,
    transformer,  # registers the model `transformer`
    transformer_hparams,  # registers transformer_tiny/small/base/big
)

__all__ = ["hparams", "problems", "registry", "transformer", "transformer_hparams"]
