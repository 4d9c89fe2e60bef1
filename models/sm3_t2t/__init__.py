"""sm3_t2t: a small Tensor2Tensor-style layer (registries, hparams, problems, input pipelines)
for training with the SM3 optimizer on TensorFlow 2, where tensor2tensor no longer imports.

    import sm3_t2t
    problem = sm3_t2t.registry.problem("translate_enfr_wesnoth")
    problem.generate_data(data_dir)          # embedded corpus, nothing to download
    hparams = sm3_t2t.hparams.basic_params1()
    batches = problem.dataset(sm3_t2t.problems.TRAIN, data_dir, hparams)
"""

# ---- Modules that register models and hparams sets --------------------------------------
# Importing sm3_t2t registers everything; add each registering module here (no try/except:
# a broken module should fail loudly). The lead adds e.g. `from sm3_t2t import transformer`.
from sm3_t2t import (
    hparams,
    problems,
    registry,
    transformer,  # registers the model `transformer`
    transformer_hparams,  # registers transformer_tiny/small/base/big
)

# (end of registering modules) ---------------------------------------------------------------

__all__ = ["hparams", "problems", "registry", "transformer", "transformer_hparams"]
