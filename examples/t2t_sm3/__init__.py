"""A tensor2tensor user directory (`t2t-trainer --t2t_usr_dir=examples/t2t_sm3`): registers
`optimizer=sm3` and the `optimizer_sm3_*` hparams (see sm3_tf/t2t.py and docs/t2t.md)."""

import sm3_tf.t2t  # noqa: F401
