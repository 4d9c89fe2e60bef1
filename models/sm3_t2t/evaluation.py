"""Evaluation at the end of training: test loss, token accuracy, BLEU, memory.

`evaluate` takes the `TrainingRun` that `trainer.train` returns (model,
encoders, problem, options), so it also serves tools that train in code, such
as benchmarks/convergence_run.py.

Both parts are bounded by the run's input limit (`input_pipeline.max_input_length`: the
`max_input_seq_length` hparam, else `max_length`): test examples longer than it are left out of
loss and accuracy, and longer sources are truncated for BLEU, as sm3-decoder does; both are
counted in the results and reported. One overlong test line therefore costs no more than its
share, instead of running out of memory after training.
"""

import json
import os

import tensorflow as tf

from sm3_t2t import decoder, input_pipeline, metrics, problems, strategies, summaries
from sm3_t2t.atomic_write import write_atomically
from sm3_tf import memory as optimizer_memory


def loss_and_accuracy(run, max_length=0):
    """Mean loss and token accuracy over `eval_steps` test batches (0: all), leaving out examples
    longer than `max_length` (0: none left out)."""
    options, hparams = run.options, run.hparams
    dataset = run.problem.dataset(
        problems.TEST, options.data_dir, hparams, repeat=False, max_example_length=max_length
    )
    if options.eval_steps:
        dataset = dataset.take(options.eval_steps)

    @tf.function(input_signature=[dataset.element_spec])
    def eval_step(features):
        logits = run.model(features, training=False)
        loss_sum, weight = metrics.padded_cross_entropy(
            logits, features["targets"], hparams.label_smoothing
        )
        correct, _ = metrics.padded_accuracy(logits, features["targets"])
        return loss_sum, correct, weight

    totals = [0.0, 0.0, 0.0]
    try:
        for features in dataset:
            totals = [t + float(v) for t, v in zip(totals, eval_step(features))]
    except tf.errors.DataLossError as error:  # tf.data does not say which file
        raise run.problem.name_corrupt_shard(problems.TEST, options.data_dir, error) from None
    loss_sum, correct, weight = totals
    if not weight:
        raise ValueError(f"the test split of {options.problem} is empty")
    return loss_sum / weight, correct / weight


def spread_indices(total, count):
    """`count` indices of `range(total)` evenly spread: the middle of each of `count` equal parts
    (all of them when `count >= total`)."""
    count = min(count, total)
    return [(2 * k + 1) * total // (2 * count) for k in range(count)]


def evaluate(run):
    """Evaluates a `TrainingRun` on the test split; prints and returns results.

    Reports loss and token accuracy (teacher forcing), then translates
    `eval_bleu_samples` test sources (0: all) with beam search and scores them
    with sacrebleu; `num_samples_to_print` sample translations follow. Both are
    taken evenly over the whole test split (`spread_indices`), not from its start:
    a split's first lines need not be typical (the Wesnoth split is in
    alphabetical order; its first 200 lines scored 12.86 where 200 spread over it
    scored 10.11, same checkpoint). The chief writes `eval` summaries and
    `eval_results.json`.
    """
    options = run.options
    limit = input_pipeline.max_input_length(run.hparams)
    skipped = run.problem.count_longer(problems.TEST, options.data_dir, limit) if limit else 0
    if skipped:
        print(
            f"eval: {skipped} test example(s) longer than {limit} tokens (hparam "
            f"max_input_seq_length, else max_length) are left out of loss and accuracy"
        )
    loss, accuracy = loss_and_accuracy(run, limit)
    print(
        f"eval on the test split at step {run.step}: loss = {loss:.4f}, accuracy = {accuracy:.4f}"
    )
    test_pairs = run.problem.text_pairs(problems.TEST, options.data_dir)
    pairs = [
        test_pairs[line]
        for line in spread_indices(len(test_pairs), options.eval_bleu_samples or len(test_pairs))
    ]
    sources = [source for source, _ in pairs]
    references = [reference for _, reference in pairs]
    lines = spread_indices(len(test_pairs), options.num_samples_to_print)
    samples = [test_pairs[line] for line in lines]
    truncated = []
    # The samples go through the same call, so they share its batches (and traced shapes).
    translations = decoder.translate_texts(
        run.model,
        run.encoders,
        sources + [source for source, _ in samples],
        beam_size=options.eval_beam_size,
        alpha=options.eval_alpha,
        max_input_length=limit,
        on_truncated=truncated.extend,
    )
    hypotheses = translations[: len(sources)]
    truncated = [entry for entry in truncated if entry[0] < len(sources)]
    if truncated:
        print("eval: " + decoder.describe_truncated(truncated, len(sources), limit, "test pair"))
    bleu = metrics.bleu(hypotheses, references)
    print(
        f"BLEU = {bleu:.2f} ({len(pairs)} of {len(test_pairs)} test sentences, evenly spread; "
        f"beam {options.eval_beam_size}, alpha {options.eval_alpha})"
    )
    if samples:
        print(
            f"samples: test lines {', '.join(str(line + 1) for line in lines)} of "
            f"{len(test_pairs)}, evenly spread:"
        )
        for (source, reference), hypothesis in zip(samples, translations[len(sources) :]):
            print(f"  source:      {source}")
            print(f"  reference:   {reference}")
            print(f"  translation: {hypothesis}")
    results = {
        "step": run.step,
        "loss": loss,
        "accuracy": accuracy,
        "bleu": bleu,
        "bleu_sentences": len(pairs),
        "bleu_sample": "spread",  # over the whole split (the first lines, before 2026-11-30)
        "loss_examples_left_out": skipped,
        "bleu_sources_truncated": len(truncated),
    }
    if strategies.is_chief(run.strategy):
        writer = tf.summary.create_file_writer(os.path.join(options.output_dir, "eval"))
        with writer.as_default():
            for name in ("loss", "accuracy", "bleu"):
                summaries.write_scalar(name, results[name], run.step)
        writer.flush()
        write_atomically(
            os.path.join(options.output_dir, "eval_results.json"),
            json.dumps(results, indent=2, sort_keys=True) + "\n",
        )
    return results


def memory_report(run):
    """The optimizer's state memory next to Adam's, as a printable table."""
    return optimizer_memory.comparison_table(run.model.trainable_variables, run.optimizer)
