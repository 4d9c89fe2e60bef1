"""sm3-trainer: train a registered model on a registered problem, T2T style.

    sm3-trainer --problem=translate_enfr_wesnoth --model=transformer \\
      --hparams_set=transformer_small --hparams='learning_rate=0.2' \\
      --data_dir=$DATA --output_dir=$OUT --train_steps=2000

The trainer generates the problem's data when missing, trains with a
progress bar, writes TensorBoard summaries (`$OUT/train`, `$OUT/eval`) and
checkpoints (`$OUT/model.ckpt-N`), then evaluates loss, token accuracy and BLEU
(beam search, sacrebleu) on the test split and prints `BLEU = x`, a few
sample translations and the optimizer's memory next to Adam's.

Re-running the same command resumes from the latest checkpoint ("resuming
from step N"). Checkpoints are written to temporary files and renamed into
place, and `run_info.json`/`hparams.json` likewise, so a process killed at
any moment loses at most the steps since the last checkpoint.

`--strategy` picks the distribution: `default`, `mirrored` (local devices;
`--cpu_replicas=N` splits the CPU into N devices), `multi_worker`
(TF_CONFIG) or `tpu` (`--tpu=NAME`; fixed shapes and XLA).

`--t2t_usr_dir=DIR` imports your own package first, so that `--problem`, `--model` and
`--hparams_set` can name what it registers (see `sm3_t2t.model_protocol` for what a model needs).
A mistyped name fails at once, before anything is written, with the registry's close matches.
"""

import dataclasses
import math
import os
import shutil
import sys
import time

import keras
import tensorflow as tf
from absl import app, flags

from sm3_t2t import (
    command_line,
    evaluation,
    metrics,
    model_builder,
    optimizers,
    problems,
    registry,
    run_dir,
    strategies,
    summaries,
    usr_dir,
)
from sm3_t2t.trainer_options import (  # noqa: F401  (SCHEDULES: part of the trainer's API)
    SCHEDULES,
    TrainerOptions,
    define_flags,
    options_from_flags,
)

PROGRAM = "sm3-trainer"


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
    hparams = command_line.look_up("hparams_set", options.hparams_set, registry.hparams_set)
    try:
        hparams.parse(options.hparams)
    except ValueError as error:
        raise ValueError(f"--hparams={options.hparams!r}: {error}") from None
    if options.xla or use_xla:
        # XLA compiles one program per input shape; fixed shapes mean one.
        hparams.set_hparam("fixed_shapes", True)
    return hparams


def check_names(options):
    """Imports `--t2t_usr_dir`, then looks up the problem, model and hparams set.

    Returns (problem, resolved hparams). Nothing is written, so a typo costs nothing.

    Raises:
      ValueError: an unknown name (with the registry's close matches) or a bad `--hparams`.
      FileNotFoundError: `--t2t_usr_dir` is not a directory.
    """
    usr_dir.import_usr_dir(options.t2t_usr_dir)
    problem = command_line.look_up("problem", options.problem, registry.problem)
    command_line.look_up("model", options.model, registry.model)
    return problem, resolve_hparams(options)


def _check_same_run(output_dir, options, hparams):
    """Refuses to resume a different problem/model; reports hparams changes."""
    if not run_dir.has_run_info(output_dir):
        return
    run_info, saved = run_dir.read_run_info(output_dir)
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
    run_info = {
        "problem": options.problem,
        "model": options.model,
        "hparams_set": options.hparams_set,
        "data_dir": run_dir.absolute(options.data_dir),
        # The decoder imports it again to find a model or problem registered there.
        "t2t_usr_dir": usr_dir.absolute_path(options.t2t_usr_dir),
    }
    run_dir.write_run_info(output_dir, run_info, hparams)


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
        model = model_builder.build_model(options.model, hparams, encoders)
        model_builder.build_variables(model)
        optimizer = optimizers.make_optimizer(hparams, total_steps=options.train_steps)
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
            manager.save(checkpoint_number=step)  # run_dir.checkpoint_manager: kill-safe
    writer.flush()


def train(options, strategy=None):
    """Trains (or resumes) per `options`; returns a `TrainingRun`.

    Args:
      options: a `TrainerOptions`.
      strategy: a ready strategy; default: made from `options.strategy`.

    Raises:
      ValueError: for bad options (naming the flag), including unknown names.
      FileNotFoundError: `schedule="evaluate"` without a checkpoint, or a missing
        `--t2t_usr_dir`.
      FloatingPointError: if the training loss stops being finite.
    """
    options.validate()
    problem, _ = check_names(options)
    strategy = strategy or strategies.make_strategy(options.strategy, options.tpu)
    hparams = resolve_hparams(options, strategies.needs_xla(strategy))
    chief = strategies.is_chief(strategy)
    own_dir = strategies.worker_output_dir(options.output_dir, strategy)
    if chief:
        _check_same_run(options.output_dir, options, hparams)
        _save_run_info(options.output_dir, options, hparams)
    problem.generate_data(options.data_dir, options.tmp_dir)
    encoders = problem.feature_encoders(options.data_dir)
    keras.utils.set_random_seed(hparams.seed)

    model, optimizer, step_var = _build_model_and_optimizer(options, hparams, encoders, strategy)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    manager = run_dir.checkpoint_manager(checkpoint, own_dir, options.keep_checkpoint_max)
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    strategies.split_host_cpu(flags.FLAGS.cpu_replicas)
    options = options_from_flags()
    try:
        options.validate()
        check_names(options)  # unknown names and bad --hparams fail here, before any work
    except (ValueError, FileNotFoundError) as error:
        command_line.exit_with_usage_error(PROGRAM, error)
    run = train(options)
    if options.schedule != "train":
        evaluation.evaluate(run)
        if strategies.is_chief(run.strategy):
            print(evaluation.memory_report(run))


def run():
    """Console-script entry point `sm3-trainer`."""
    define_flags()
    command_line.list_flags_in_help(["sm3_t2t.trainer_options"], __doc__)
    app.run(main)


if __name__ == "__main__":
    run()
