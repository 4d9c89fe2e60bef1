"""BLEU of finished trainer runs on the evaluation's sample, next to the old first-lines sample.

    python -m benchmarks.rescore_bleu RUN_DIR [RUN_DIR ...] [--samples=100] [--name=NAME]

`sm3_t2t.evaluation` scores BLEU on `eval_bleu_samples` test sentences evenly spread over the
test split. Runs evaluated before that change took the split's first lines, and the
translate_enfr_wesnoth split is in alphabetical order: its first lines (titles and sentences
starting with "A") were easier than the rest. This restores each run's newest intact
checkpoint (`sm3_t2t.decoder.load_trained`, so nothing in the run directory is written),
translates both samples with the evaluation's settings (the trainer's default
`eval_beam_size` and `eval_alpha`, the run's input limit) and scores them with the same
sacrebleu call. Results go to docs/results/<name>.{md,json}.
"""

import argparse
import os

from benchmarks import docs_output


def _existing_run_dir(path):
    from sm3_t2t import run_dir

    if not run_dir.has_run_info(path):
        raise argparse.ArgumentTypeError(
            f"{path} is not a trainer run (no {run_dir.RUN_INFO_FILE})"
        )
    return path


def evaluation_settings():
    """(beam size, alpha) of sm3-trainer's end-of-training evaluation, its defaults."""
    from sm3_t2t.trainer_options import TrainerOptions

    return TrainerOptions.eval_beam_size, TrainerOptions.eval_alpha


def rescore(run_dir, samples):
    """{"first": BLEU on the first `samples` test lines, "spread": on `samples` spread ones}."""
    from sm3_t2t import decoder, evaluation, input_pipeline, metrics, problems

    beam_size, alpha = evaluation_settings()

    trained = decoder.load_trained(run_dir)
    pairs = trained.problem.text_pairs(problems.TEST, trained.run_info["data_dir"])
    chosen = {
        "first": pairs[:samples],
        "spread": [pairs[i] for i in evaluation.spread_indices(len(pairs), samples)],
    }
    scores = {"run": os.path.basename(os.path.normpath(run_dir)), "step": trained.step}
    for sample, sample_pairs in chosen.items():
        hypotheses = decoder.translate_texts(
            trained.model,
            trained.encoders,
            [source for source, _ in sample_pairs],
            beam_size=beam_size,
            alpha=alpha,
            max_input_length=input_pipeline.max_input_length(trained.hparams),
            on_truncated=lambda truncated: None,  # counted the same way for both samples
        )
        scores[sample] = metrics.bleu(hypotheses, [reference for _, reference in sample_pairs])
    scores["test_sentences"] = len(pairs)
    return scores


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=_existing_run_dir, metavar="RUN_DIR")
    parser.add_argument("--samples", type=int, default=100, help="test sentences per sample")
    parser.add_argument("--name", default="bleu_rescored", help="docs/results/<name>.{md,json}")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"argument --samples: must be >= 1, got {args.samples}")
    made_by = _results_made_by(args.name)
    if made_by is not None and "benchmarks.rescore_bleu" not in made_by:
        parser.error(
            f"argument --name: docs/results/{args.name}.json holds the results of `{made_by}`, "
            "which this would overwrite; choose another name"
        )
    return args


def _results_made_by(name):
    """The command that wrote docs/results/<name>.json; None when there is no such file, and
    "(unreadable)" when it is damaged (a typo must not replace it either)."""
    try:
        raw = docs_output.read_results(name, with_provenance=True)
    except FileNotFoundError:
        return None
    except ValueError:
        return "(unreadable)"
    return raw.get(docs_output.PROVENANCE_KEY, {}).get("command", "(unknown)")


def main():
    args = parse_args()
    stopwatch = docs_output.Stopwatch()
    results = []
    for run_dir in args.run_dirs:
        try:
            results.append(rescore(run_dir, args.samples))
        except (FileNotFoundError, ValueError, RuntimeError) as error:
            # No checkpoint, a damaged run description, damaged checkpoints (load_trained's
            # DamagedCheckpointsError, a RuntimeError), a model the checkpoint does not fit.
            raise SystemExit(f"rescore_bleu: {run_dir}: {error}; nothing written") from None
        print(results[-1], flush=True)
    rows = [[r["run"], str(r["step"]), f"{r['first']:.2f}", f"{r['spread']:.2f}"] for r in results]
    table = docs_output.format_table(
        ["run", "step", f"BLEU, first {args.samples} lines", f"BLEU, {args.samples} spread"],
        rows,
    )
    docs_output.publish(
        args.name,
        "BLEU re-scored on the evenly spread test sample",
        [
            (
                "Newest checkpoint of each run; beam {}, alpha {}:".format(*evaluation_settings()),
                table,
            )
        ],
        {"samples": args.samples, "runs": results},
        stopwatch,
    )


if __name__ == "__main__":
    main()
