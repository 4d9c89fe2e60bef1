"""Evaluation at the end of training: test loss, token accuracy, BLEU, memory.

`evaluate` takes the `TrainingRun` that `trainer.train` returns (model,
encoders, problem, options), so it also serves tools that train in code, such
as benchmarks/convergence_run.py.
"""

import json
import os

import tensorflow as tf

from sm3_t2t import decoder, metrics, problems, strategies, summaries
from sm3_t2t.atomic_write import write_atomically
from sm3_tf import memory as optimizer_memory


def loss_and_accuracy(run):
    """Mean loss and token accuracy over `eval_steps` test batches (0: all)."""
    options, hparams = run.options, run.hparams
    dataset = run.problem.dataset(problems.TEST, options.data_dir, hparams, repeat=False)
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
    for features in dataset:
        totals = [t + float(v) for t, v in zip(totals, eval_step(features))]
    loss_sum, correct, weight = totals
    if not weight:
        raise ValueError(f"the test split of {options.problem} is empty")
    return loss_sum / weight, correct / weight


def evaluate(run):
    """Evaluates a `TrainingRun` on the test split; prints and returns results.

    Reports loss and token accuracy (teacher forcing), then translates up to
    `eval_bleu_samples` test sources with beam search and scores them with
    sacrebleu. The chief writes `eval` summaries and `eval_results.json`.
    """
    options = run.options
    loss, accuracy = loss_and_accuracy(run)
    print(
        f"eval on the test split at step {run.step}: loss = {loss:.4f}, accuracy = {accuracy:.4f}"
    )
    pairs = run.problem.text_pairs(problems.TEST, options.data_dir)
    if options.eval_bleu_samples:
        pairs = pairs[: options.eval_bleu_samples]
    sources = [source for source, _ in pairs]
    references = [reference for _, reference in pairs]
    hypotheses = decoder.translate_texts(
        run.model, run.encoders, sources, beam_size=options.eval_beam_size, alpha=options.eval_alpha
    )
    bleu = metrics.bleu(hypotheses, references)
    print(
        f"BLEU = {bleu:.2f} ({len(pairs)} test sentences, beam "
        f"{options.eval_beam_size}, alpha {options.eval_alpha})"
    )
    for source, reference, hypothesis in list(zip(sources, references, hypotheses))[
        : options.num_samples_to_print
    ]:
        print(f"  source:      {source}\n  reference:   {reference}\n  translation: {hypothesis}")
    results = {
        "step": run.step,
        "loss": loss,
        "accuracy": accuracy,
        "bleu": bleu,
        "bleu_sentences": len(pairs),
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
