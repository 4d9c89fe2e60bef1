"""sm3-trainer: train a registered model on a registered problem, T2T style.

    sm3-trainer --problem=translate_enfr_wesnoth --model=transformer \\
      --hparams_set=transformer_small --hparams='learning_rate=0.2' \\
      --data_dir=$DATA --output_dir=$OUT --train_steps=2000

The trainer generates the problem's data when missing, trains with a
progress bar, writes TensorBoard summaries (`$OUT/train`, `$OUT/eval`) and
checkpoints (`$OUT/ckpt-N`), then evaluates loss, token accuracy and BLEU
(beam search, sacrebleu) on the test split and prints `BLEU = x`, a few
sample translations and the optimizer's memory next to Adam's.

Re-running the same command resumes from the latest checkpoint ("resuming
from step N"). Checkpoints are written to temporary files and renamed into
place, and `run_info.json`/`hparams.json` likewise, so a process killed at
any moment loses at most the steps since the last checkpoint.

`--strategy` picks the distribution: `default`, `mirrored` (local devices;
`--cpu_replicas=N` splits the CPU into N devices), `multi_worker`
(TF_CONFIG) or `tpu` (`--tpu=NAME`; fixed shapes and XLA).
"""

import dataclasses
import json
import math
import os
import shutil
import sys
import time

import keras
import tensorflow as tf
from absl import app, flags

from sm3_t2t import decoder, evaluation, metrics, problems, registry, strategies, summaries
from sm3_tf import factory as optimizer_factory

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


@dataclasses.dataclass
class TrainingRun:
    """The state `train` leaves behind, for `evaluate` and callers."""

    options: TrainerOptions
    strategy: object
    hparams: object
    problem: object
    encoders: dict
    model: object
    optimizer: object
    step: int


def resolve_hparams(options, use_xla=False):
    """The hparams set with `--hparams` overrides applied.

    `use_xla` (or `options.xla`) switches to fixed-shape batches.

    Raises:
      ValueError: for an unknown set, key or value (naming it).
    """
    try:
        hparams = registry.hparams_set(options.hparams_set)
    except KeyError:
        raise ValueError(
            f"--hparams_set={options.hparams_set!r} is not registered; "
            f"known: {', '.join(registry.list_hparams())}"
        ) from None
    try:
        hparams.parse(options.hparams)
    except ValueError as error:
        raise ValueError(f"--hparams={options.hparams!r}: {error}") from None
    if options.xla or use_xla:
        # XLA compiles one program per input shape; fixed shapes mean one.
        hparams.set_hparam("fixed_shapes", True)
    return hparams


def _check_same_run(output_dir, options, hparams):
    """Refuses to resume a different problem/model; reports hparams changes."""
    if not os.path.exists(os.path.join(output_dir, decoder.RUN_INFO_FILE)):
        return
    run_info, saved = decoder.read_run_info(output_dir)
    for key in ("problem", "model"):
        if run_info[key] != getattr(options, key):
            raise ValueError(
                f"--output_dir={output_dir} holds a run of {key} "
                f"{run_info[key]!r}, not {getattr(options, key)!r}; use "
                f"another --output_dir"
            )
    old, new = saved.values(), hparams.values()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        print(
            "hparams differ from the saved run (using the new values): "
            + ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        )


def _save_run_info(output_dir, options, hparams):
    os.makedirs(output_dir, exist_ok=True)
    run_info = {
        "problem": options.problem,
        "model": options.model,
        "hparams_set": options.hparams_set,
        "data_dir": os.path.abspath(options.data_dir),
    }
    decoder.write_text_atomically(
        os.path.join(output_dir, decoder.RUN_INFO_FILE),
        json.dumps(run_info, indent=2, sort_keys=True) + "\n",
    )
    decoder.write_text_atomically(os.path.join(output_dir, decoder.HPARAMS_FILE), hparams.to_json())


def _restore(checkpoint, output_dir, own_dir):
    """Restores the newest checkpoint; returns its path or None.

    Workers other than the chief restore from the chief's directory when
    they can see it (shared file system), else from their own.
    """
    path = tf.train.latest_checkpoint(output_dir) or tf.train.latest_checkpoint(own_dir)
    if path:
        checkpoint.restore(path).assert_existing_objects_matched()
    return path


def _make_train_loop(model, optimizer, strategy, hparams, use_xla):
    """A tf.function running `steps` training steps; returns the last loss."""
    replicas = strategy.num_replicas_in_sync

    def replica_step(features):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            loss_sum, weight = metrics.padded_cross_entropy(
                logits, features["targets"], hparams.label_smoothing
            )
            loss = loss_sum / tf.maximum(weight, 1.0)
            # Keras optimizers all-reduce by SUM across replicas, so scale
            # the per-replica mean to make the update that of the global mean.
            scaled_loss = loss / replicas
        grads = tape.gradient(scaled_loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    if use_xla and not strategies.needs_xla(strategy):
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def train_loop(iterator, steps):
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            per_replica = strategy.run(replica_step, args=(next(iterator),))
            loss = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
        return loss

    return train_loop


def _progress_bar(target):
    # Without a terminal, redraw rarely: each redraw is a line in the log.
    interval = 0.5 if sys.stdout.isatty() else 30.0
    return keras.utils.Progbar(target, interval=interval, stateful_metrics=["loss", "lr"])


def _build_model_and_optimizer(options, hparams, encoders, strategy):
    """Creates model, optimizer (with its slots) and step counter in scope.

    Everything is built before any restore, so that a checkpoint restores
    into existing variables and `assert_existing_objects_matched` can check
    that nothing was left out.
    """
    with strategy.scope():
        model = decoder.build_model(options.model, hparams, encoders)
        decoder.build_variables(model)
        optimizer = optimizer_factory.make_optimizer(hparams, total_steps=options.train_steps)
        optimizer.build(model.trainable_variables)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    return model, optimizer, step_var


def _train_iterator(run):
    """This worker's distributed iterator over the training split."""
    options = run.options
    # A fresh shuffle seed per resume point, so a resumed run does not
    # replay the batches the first run already trained on.
    seed = run.hparams.seed + run.step

    def dataset_fn(context):
        return run.problem.dataset(
            problems.TRAIN,
            options.data_dir,
            run.hparams,
            shard_index=context.input_pipeline_id,
            num_shards=context.num_input_pipelines,
            seed=seed,
        )

    return iter(run.strategy.distribute_datasets_from_function(dataset_fn))


def _next_stop(step, options):
    """The next checkpoint, log point or loop end, whichever comes first."""

    def next_multiple(every):
        return (step // every + 1) * every

    return min(
        options.train_steps,
        next_multiple(options.save_checkpoints_steps),
        next_multiple(options.log_step_count_steps),
        step + options.iterations_per_loop,
    )


def _train_steps(run, manager, step_var, writer):
    """Trains `run` to `train_steps`, logging and checkpointing on the way."""
    options = run.options
    iterator = _train_iterator(run)
    train_loop = _make_train_loop(run.model, run.optimizer, run.strategy, run.hparams, options.xla)
    progress = _progress_bar(options.train_steps)
    progress.update(run.step)
    last_log_time, last_log_step = time.time(), run.step
    while run.step < options.train_steps:
        stop = _next_stop(run.step, options)
        loss = float(train_loop(iterator, tf.constant(stop - run.step)))
        run.step = step = stop
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss} at step {step}; the last "
                f"checkpoint is {manager.latest_checkpoint}"
            )
        learning_rate = float(run.optimizer.learning_rate)
        progress.update(step, [("loss", loss), ("lr", learning_rate)])
        last = step == options.train_steps
        if step % options.log_step_count_steps == 0 or last:
            now = time.time()
            with writer.as_default():
                summaries.write_scalar("loss", loss, step)
                summaries.write_scalar("learning_rate", learning_rate, step)
                summaries.write_scalar(
                    "global_step/sec", (step - last_log_step) / max(now - last_log_time, 1e-9), step
                )
            last_log_time, last_log_step = now, step
        if step % options.save_checkpoints_steps == 0 or last:
            step_var.assign(step)
            # CheckpointManager writes to temporary files, renames them into
            # place and only then updates its state file: a kill at any
            # moment leaves the previous checkpoints intact and listed.
            manager.save(checkpoint_number=step)
    writer.flush()


def train(options, strategy=None):
    """Trains (or resumes) per `options`; returns a `TrainingRun`.

    Args:
      options: a `TrainerOptions`.
      strategy: a ready strategy; default: made from `options.strategy`.

    Raises:
      ValueError: for bad options (naming the flag).
      FileNotFoundError: `schedule="evaluate"` without a checkpoint.
      FloatingPointError: if the training loss stops being finite.
    """
    options.validate()
    strategy = strategy or strategies.make_strategy(options.strategy, options.tpu)
    hparams = resolve_hparams(options, strategies.needs_xla(strategy))
    chief = strategies.is_chief(strategy)
    own_dir = strategies.worker_output_dir(options.output_dir, strategy)
    try:
        problem = registry.problem(options.problem)
    except KeyError:
        raise ValueError(
            f"--problem={options.problem!r} is not registered; known: "
            f"{', '.join(registry.list_problems())}"
        ) from None
    if chief:
        _check_same_run(options.output_dir, options, hparams)
        _save_run_info(options.output_dir, options, hparams)
    problem.generate_data(options.data_dir, options.tmp_dir)
    encoders = problem.feature_encoders(options.data_dir)
    keras.utils.set_random_seed(hparams.seed)

    model, optimizer, step_var = _build_model_and_optimizer(options, hparams, encoders, strategy)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    manager = tf.train.CheckpointManager(
        checkpoint, own_dir, max_to_keep=options.keep_checkpoint_max
    )
    restored = _restore(checkpoint, options.output_dir, own_dir)
    run = TrainingRun(
        options, strategy, hparams, problem, encoders, model, optimizer, int(step_var.numpy())
    )
    if restored:
        print(f"resuming from step {run.step} ({restored})")
    if options.schedule == "evaluate":
        if not restored:
            raise FileNotFoundError(
                f"--schedule=evaluate: no checkpoint in --output_dir={options.output_dir}"
            )
        return run
    if run.step >= options.train_steps:
        print(f"already trained to step {run.step} (--train_steps={options.train_steps})")
        return run
    print(
        f"training {options.model}/{options.hparams_set} on "
        f"{options.problem} with {hparams.optimizer}, strategy "
        f"{options.strategy} ({strategy.num_replicas_in_sync} replica(s)), "
        f"steps {run.step} -> {options.train_steps}"
    )
    writer = (
        tf.summary.create_file_writer(os.path.join(options.output_dir, "train"))
        if chief
        else tf.summary.create_noop_writer()
    )
    _train_steps(run, manager, step_var, writer)
    if not chief:
        # Other workers' copies are only needed for the collective save.
        shutil.rmtree(own_dir, ignore_errors=True)
    print(
        f"\ntrained to step {run.step}; checkpoint "
        f"{manager.latest_checkpoint or '(kept by the chief)'}"
    )
    return run


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
        "Test sentences translated for BLEU; 0 means all.",
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    strategies.split_host_cpu(flags.FLAGS.cpu_replicas)
    options = options_from_flags()
    try:
        options.validate()
        resolve_hparams(options)  # bad --hparams fail here, before any work
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    run = train(options)
    if options.schedule != "train":
        evaluation.evaluate(run)
        if strategies.is_chief(run.strategy):
            print(evaluation.memory_report(run))


def run():
    """Console-script entry point `sm3-trainer`."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
