"""One training run of the convergence benchmark, in its own process: train, then measure.

    python -m benchmarks.convergence_run --optimizer=sm3 --learning_rate=0.2 --seed=1 \\
        --train_steps=300 --output_dir=/tmp/conv/sm3_lr0.2_s1 [--bleu_samples=100]

Trains transformer_small on translate_enfr_wesnoth through the trainer's own `train()` (the code
behind `sm3-trainer`), checkpointing every `--eval_every` steps, then
  * reads the training loss and its wall-clock times back from the TensorBoard events;
  * restores every checkpoint and computes the loss on the validation split (the trainer itself
    only evaluates at the end, on the test split);
  * with `--bleu_samples > 0`, runs `sm3_t2t.evaluation.evaluate()` (test loss, accuracy,
    beam-search BLEU on that many test sentences).
Prints one JSON line prefixed with RESULT_PREFIX; `bench_convergence` runs many of these.
"""

import argparse
import glob
import json
import os
import time

RESULT_PREFIX = "CONVERGENCE_RUN_RESULT "
PROBLEM = "translate_enfr_wesnoth"
HPARAMS_SET = "transformer_small"


def hparams_overrides(optimizer, learning_rate, seed, batch_size, warmup_steps, extra=""):
    """The `--hparams` string of a run: optimizer, rate, seed, batch, warm-up, then `extra`.

    A `batch_size` or `warmup_steps` of 0 keeps the hparams set's own value.
    """
    overrides = [f"optimizer={optimizer}", f"learning_rate={learning_rate}", f"seed={seed}"]
    if batch_size:
        overrides.append(f"batch_size={batch_size}")
    if warmup_steps:
        overrides.append(f"learning_rate_warmup_steps={warmup_steps}")
    return ",".join(overrides + ([extra] if extra else []))


def read_scalars(event_dir, tag):
    """[(step, wall_time, value)] of scalar `tag` in the TensorBoard events under `event_dir`."""
    import tensorflow as tf

    points = []
    for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    points.append(
                        (
                            int(event.step),
                            float(event.wall_time),
                            float(tf.make_ndarray(value.tensor)),
                        )
                    )
    return sorted(points)


def validation_losses(run, output_dir):
    """[(step, loss per target token on the validation split)] for every checkpoint."""
    import tensorflow as tf

    from sm3_t2t import metrics, problems, run_dir

    dataset = run.problem.dataset(problems.EVAL, run.options.data_dir, run.hparams, repeat=False)

    @tf.function(input_signature=[dataset.element_spec])
    def loss_and_weight(features):
        logits = run.model(features, training=False)
        return metrics.padded_cross_entropy(
            logits, features["targets"], run.hparams.label_smoothing
        )

    checkpoint = tf.train.Checkpoint(model=run.model)
    losses = []
    for step, prefix in run_dir.checkpoint_steps(output_dir).items():
        checkpoint.restore(prefix).expect_partial()
        total, weight = 0.0, 0.0
        for features in dataset:
            loss_sum, weight_sum = loss_and_weight(features)
            total, weight = total + float(loss_sum), weight + float(weight_sum)
        losses.append((step, total / weight))
    return losses


def train_and_measure(args):
    """The whole run; returns the result dict."""
    import tensorflow as tf

    if args.threads:
        # Two runs share the 2 cores as 1 thread each: more steps per second in total than two
        # 2-thread runs fighting over them, and both runs see the same conditions.
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from sm3_t2t import evaluation, trainer
    from sm3_tf import memory

    if args.approx_vocab_size:
        from sm3_t2t import registry

        # The vocabulary is the problem's (as in T2T); a study of its size sets the class's.
        registry.PROBLEMS[PROBLEM].approx_vocab_size = args.approx_vocab_size
    if args.adafactor:
        from benchmarks import adafactor_ablation

        adafactor_ablation.patch_factory(args.adafactor)

    overrides = hparams_overrides(
        args.optimizer,
        args.learning_rate,
        args.seed,
        args.batch_size,
        args.warmup_steps,
        args.hparams,
    )
    options = trainer.TrainerOptions(
        problem=PROBLEM,
        hparams_set=args.hparams_set,
        hparams=overrides,
        data_dir=args.data_dir,
        output_dir=args.output_dir,
        train_steps=args.train_steps,
        save_checkpoints_steps=args.eval_every,
        keep_checkpoint_max=10_000,
        log_step_count_steps=args.log_every,
        iterations_per_loop=args.log_every,
        eval_bleu_samples=args.bleu_samples,
        eval_alpha=args.alpha,
        num_samples_to_print=args.print_samples,
    )
    load_before = os.getloadavg()
    start = time.time()
    run = trainer.train(options)
    train_seconds = time.time() - start
    result = {
        "optimizer": args.optimizer,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "train_steps": args.train_steps,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup_steps,
        "threads": args.threads,
        "hparams_set": args.hparams_set,
        "adafactor": args.adafactor,
        "approx_vocab_size": args.approx_vocab_size,
        "hparams": overrides,
        "train_seconds_with_setup": train_seconds,
        # The machine is shared: the 1-minute load average when training started and ended.
        "load_average": [load_before[0], os.getloadavg()[0]],
        "state_bytes": memory.state_bytes(run.optimizer),
        # The hparams set can change between versions of the code: record what this run used.
        "resolved_hparams": run.hparams.values(),
        # (step, wall time, value) triples as the trainer logged them.
        "train_loss": read_scalars(os.path.join(args.output_dir, "train"), "loss"),
    }
    start = time.time()
    if args.bleu_samples:
        result["test"] = evaluation.evaluate(run)
    result["test_seconds"] = time.time() - start
    start = time.time()
    result["validation_loss"] = validation_losses(run, args.output_dir)
    result["validation_seconds"] = time.time() - start
    return result


def main():
    from sm3_t2t import optimizers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizer", required=True, choices=optimizers.OPTIMIZERS)
    parser.add_argument("--learning_rate", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train_steps", type=int, default=300)
    parser.add_argument(
        "--batch_size", type=int, default=1024, help="tokens per batch (0: the set's own)"
    )
    parser.add_argument(
        "--warmup_steps", type=int, default=30, help="warm-up steps (0: the set's own)"
    )
    parser.add_argument("--hparams_set", default=HPARAMS_SET)
    parser.add_argument(
        "--hparams", default="", help="further overrides, e.g. 'learning_rate_cooldown_steps=300'"
    )
    parser.add_argument(
        "--adafactor",
        default="",
        help="for optimizer=adafactor: an ablation of adafactor_ablation.ABLATIONS (e.g. no_clip)",
    )
    parser.add_argument(
        "--approx_vocab_size",
        type=int,
        default=0,
        help="the problem's sentencepiece vocabulary size (0: its own); use a data_dir per size",
    )
    parser.add_argument("--alpha", type=float, default=0.6, help="beam-search length penalty")
    parser.add_argument(
        "--print_samples", type=int, default=0, help="sample translations printed after BLEU"
    )
    parser.add_argument(
        "--eval_every",
        type=int,
        default=50,
        help="checkpoint (and so validation loss) every this many steps",
    )
    parser.add_argument("--log_every", type=int, default=10, help="training-loss logging interval")
    parser.add_argument(
        "--bleu_samples",
        type=int,
        default=0,
        help="test sentences for BLEU after training (0: skip the test evaluation)",
    )
    parser.add_argument("--threads", type=int, default=0, help="TF threads (0: TF's default)")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args()
    result = train_and_measure(args)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
