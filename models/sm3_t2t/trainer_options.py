"""The trainer's options: one dataclass, and the absl flags that fill it.

`TrainerOptions` is what `trainer.train` runs from; `define_flags` declares the same fields as
command-line flags (named as t2t-trainer names them where it has them) and `options_from_flags`
reads them back. Names of problems, models and hparams sets are checked against the registries
by the trainer, after `--t2t_usr_dir` is imported.
"""

import dataclasses
import math

import tensorflow as tf
from absl import flags

from sm3_t2t import strategies

SCHEDULES = ("train_and_evaluate", "train", "evaluate")


@dataclasses.dataclass
class TrainerOptions:
    """Everything a training run is configured by; mirrors the CLI flags."""

    problem: str
    hparams_set: str
    data_dir: str
    output_dir: str
    model: str = "transformer"
    hparams: str = ""
    t2t_usr_dir: str = ""
    tmp_dir: str = "/tmp/t2t_datagen"
    train_steps: int = 1000
    eval_steps: int = 0
    save_checkpoints_steps: int = 500
    keep_checkpoint_max: int = 3
    iterations_per_loop: int = 10
    log_step_count_steps: int = 50
    schedule: str = "train_and_evaluate"
    strategy: str = "default"
    tpu: str = ""
    xla: bool = False
    eval_bleu_samples: int = 200
    eval_beam_size: int = 4
    eval_alpha: float = 0.6
    num_samples_to_print: int = 3

    def validate(self):
        """Raises ValueError naming the first bad option."""
        for name in ("problem", "hparams_set", "data_dir", "output_dir"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        for name in ("train_steps", "eval_steps", "eval_bleu_samples", "num_samples_to_print"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "save_checkpoints_steps",
            "keep_checkpoint_max",
            "iterations_per_loop",
            "log_step_count_steps",
            "eval_beam_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not math.isfinite(self.eval_alpha):
            raise ValueError(f"--eval_alpha must be a finite number, got {self.eval_alpha}")
        for name in ("data_dir", "output_dir"):
            path = getattr(self, name)
            if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
                raise ValueError(f"--{name}={path} is a file, not a directory")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"--schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.strategy not in strategies.STRATEGIES:
            raise ValueError(
                f"--strategy must be one of {strategies.STRATEGIES}, got {self.strategy!r}"
            )
        if self.xla and self.strategy in ("mirrored", "multi_worker"):
            # XLA-compiled steps under MirroredStrategy fail in TF 2.21
            # (even for Keras' own Adam); TPUs compile by themselves.
            raise ValueError(f"--xla is not supported with --strategy={self.strategy}")


def define_flags(flag_values=flags.FLAGS):
    """Defines the trainer's flags, named as t2t-trainer's where they exist."""
    defaults = TrainerOptions(problem="", hparams_set="", data_dir="", output_dir="")
    f = flag_values
    flags.DEFINE_string("problem", None, "Registered problem name.", flag_values=f)
    flags.DEFINE_string("model", defaults.model, "Registered model name.", flag_values=f)
    flags.DEFINE_string("hparams_set", None, "Registered hparams set.", flag_values=f)
    flags.DEFINE_string(
        "hparams", "", "Overrides, e.g. 'learning_rate=0.2,num_heads=8'.", flag_values=f
    )
    flags.DEFINE_string("data_dir", None, "Where the problem's data lives.", flag_values=f)
    flags.DEFINE_string(
        "t2t_usr_dir",
        defaults.t2t_usr_dir,
        "A package directory of your own problems, models and hparams sets, imported before the "
        "look-up (T2T's --t2t_usr_dir).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "tmp_dir", defaults.tmp_dir, "Scratch space for data generation.", flag_values=f
    )
    flags.DEFINE_string("output_dir", None, "Checkpoints, summaries and run info.", flag_values=f)
    flags.DEFINE_integer(
        "train_steps", defaults.train_steps, "Total number of training steps.", flag_values=f
    )
    flags.DEFINE_integer(
        "eval_steps",
        defaults.eval_steps,
        "Test batches for loss/accuracy; 0 means all.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "save_checkpoints_steps",
        defaults.save_checkpoints_steps,
        "Save a checkpoint every this many steps.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "keep_checkpoint_max",
        defaults.keep_checkpoint_max,
        "How many recent checkpoints to keep.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "iterations_per_loop",
        defaults.iterations_per_loop,
        "Steps per call into the compiled training loop.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "log_step_count_steps",
        defaults.log_step_count_steps,
        "Write training summaries every this many steps.",
        flag_values=f,
    )
    flags.DEFINE_enum("schedule", defaults.schedule, SCHEDULES, "What to run.", flag_values=f)
    flags.DEFINE_enum(
        "strategy",
        defaults.strategy,
        strategies.STRATEGIES,
        "Distribution strategy.",
        flag_values=f,
    )
    flags.DEFINE_string("tpu", defaults.tpu, "TPU name for --strategy=tpu.", flag_values=f)
    flags.DEFINE_bool(
        "xla", defaults.xla, "Compile training steps with XLA (fixed shapes).", flag_values=f
    )
    flags.DEFINE_integer(
        "cpu_replicas",
        1,
        "Split the CPU into this many devices (for --strategy=mirrored without GPUs).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "eval_bleu_samples",
        defaults.eval_bleu_samples,
        "Test sentences translated for BLEU, evenly spread over the test split; 0 means all.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "eval_beam_size",
        defaults.eval_beam_size,
        "Beam size for the BLEU evaluation.",
        flag_values=f,
    )
    flags.DEFINE_float(
        "eval_alpha",
        defaults.eval_alpha,
        "Length penalty exponent for the BLEU evaluation.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "num_samples_to_print",
        defaults.num_samples_to_print,
        "Sample translations printed after BLEU.",
        flag_values=f,
    )
    for name in ("problem", "hparams_set", "data_dir", "output_dir"):
        flags.mark_flag_as_required(name, flag_values=f)


def options_from_flags(flag_values=flags.FLAGS):
    """A `TrainerOptions` from parsed flags."""
    fields = {field.name for field in dataclasses.fields(TrainerOptions)}
    return TrainerOptions(**{name: flag_values[name].value for name in fields})
