"""sm3-decoder: translate text with a model trained by sm3-trainer.

Reads one sentence per line from `--decode_from_file` (default: stdin) and
writes one translation per line to `--decode_to_file` (default: stdout).
Everything else — problem, model, hparams, vocabulary location — comes from
the trainer's `--output_dir`, which holds `run_info.json`, `hparams.json` and
the checkpoints:

    sm3-decoder --output_dir=$OUT --beam_size=4 --alpha=0.6 < source.txt

A run trained with `--t2t_usr_dir` records it, and the decoder imports it again
(or the `--t2t_usr_dir` given here) before it looks up the run's problem and model.
The Python helpers here (`load_trained`, `translate_texts`) are also what
the trainer uses for its BLEU evaluation.
"""

import dataclasses
import sys
import weakref

import tensorflow as tf
from absl import app, flags

# Imported for their registrations: the "transformer" model and its hparams.
from sm3_t2t import (
    command_line,
    model_builder,
    registry,
    run_dir,
    transformer,  # noqa: F401
    transformer_hparams,  # noqa: F401
    usr_dir,
)
from sm3_t2t.atomic_write import write_atomically
from sm3_t2t.special_ids import EOS_ID, PAD_ID

PROGRAM = "sm3-decoder"


@dataclasses.dataclass
class TrainedModel:
    """A restored model and everything needed to feed it text."""

    model: object
    problem: object
    hparams: object
    encoders: dict
    step: int
    run_info: dict


def load_trained(output_dir, data_dir=None, checkpoint_path=None, t2t_usr_dir=None):
    """Restores the latest (or the given) checkpoint of a trainer run.

    Args:
      output_dir: the trainer's `--output_dir`.
      data_dir: where the problem's vocabulary lives; defaults to the
        trainer's `--data_dir` recorded in `run_info.json`.
      checkpoint_path: a specific checkpoint prefix; default the latest.
      t2t_usr_dir: the package registering the run's problem or model;
        defaults to the trainer's `--t2t_usr_dir` recorded in `run_info.json`.

    Raises:
      FileNotFoundError: if there is no run, no checkpoint or no usr dir.
      ValueError: the run's problem or model is not registered (naming it).
    """
    run_info, hparams = run_dir.read_run_info(output_dir)
    usr_dir.import_usr_dir(t2t_usr_dir or run_info.get("t2t_usr_dir", ""))
    data_dir = data_dir or run_info["data_dir"]
    problem = command_line.look_up("problem", run_info["problem"], registry.problem)
    command_line.look_up("model", run_info["model"], registry.model)
    encoders = problem.feature_encoders(data_dir)
    model = model_builder.build_model(run_info["model"], hparams, encoders)
    model_builder.build_variables(model)
    checkpoint_path = checkpoint_path or tf.train.latest_checkpoint(output_dir)
    if not checkpoint_path:
        raise FileNotFoundError(f"no checkpoint in --output_dir={output_dir}")
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(model=model, step=step)
    # The checkpoint also holds optimizer slots, which decoding ignores.
    checkpoint.restore(checkpoint_path).expect_partial().assert_existing_objects_matched()
    return TrainedModel(model, problem, hparams, encoders, int(step.numpy()), run_info)


def _strip_after_eos(ids):
    ids = list(ids)
    if EOS_ID in ids:
        ids = ids[: ids.index(EOS_ID)]
    return [i for i in ids if i != PAD_ID]


# model -> {(beam_size, alpha, extra_length): tf.function}; traced once and
# reused across calls (tracing a beam search costs seconds).
_TRANSLATE_FUNCTIONS = weakref.WeakKeyDictionary()


def _translate_function(model, beam_size, alpha, extra_length):
    functions = _TRANSLATE_FUNCTIONS.setdefault(model, {})
    key = (beam_size, float(alpha), extra_length)
    if key not in functions:

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64)])
        def translate_batch(inputs):
            return model.translate(
                inputs,
                beam_size=beam_size,
                alpha=alpha,
                extra_length=extra_length,
                eos_id=EOS_ID,
            )

        functions[key] = translate_batch
    return functions[key]


def translate_texts(model, encoders, texts, beam_size=4, alpha=0.6, extra_length=50, batch_size=32):
    """Translates a list of strings; returns translations in the same order.

    Sentences are sorted by length and batched so that padding stays small;
    the search itself is `model.translate` (batched beam search).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    encoded = [encoders["inputs"].encode(text) + [EOS_ID] for text in texts]
    translate_batch = _translate_function(model, beam_size, alpha, extra_length)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        batch_ids = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in batch_ids)
        padded = [encoded[i] + [PAD_ID] * (width - len(encoded[i])) for i in batch_ids]
        output_ids, _ = translate_batch(tf.constant(padded, tf.int64))
        for i, ids in zip(batch_ids, output_ids.numpy().tolist()):
            results[i] = encoders["targets"].decode(_strip_after_eos(ids))
    return results


def define_flags(flag_values=flags.FLAGS):
    """Defines the decoder's flags (kept out of import so modules compose)."""
    flags.DEFINE_string(
        "output_dir", None, "Directory of a sm3-trainer run.", flag_values=flag_values
    )
    flags.DEFINE_string(
        "data_dir", None, "Vocabulary directory; default: the trainer's.", flag_values=flag_values
    )
    flags.DEFINE_string(
        "checkpoint_path", None, "Checkpoint to use; default: the latest.", flag_values=flag_values
    )
    flags.DEFINE_string(
        "t2t_usr_dir",
        None,
        "Package directory registering the run's problem or model; default: the trainer's.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "decode_from_file",
        None,
        "Source sentences, one a line; default: stdin.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "decode_to_file", None, "Where translations go; default: stdout.", flag_values=flag_values
    )
    flags.DEFINE_integer(
        "beam_size", 4, "Beam size; 1 is greedy.", lower_bound=1, flag_values=flag_values
    )
    flags.DEFINE_float("alpha", 0.6, "Length penalty exponent.", flag_values=flag_values)
    flags.DEFINE_integer(
        "extra_length",
        50,
        "Translate at most source length + this many tokens.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "decode_batch_size", 32, "Sentences per batch.", lower_bound=1, flag_values=flag_values
    )
    flags.mark_flag_as_required("output_dir", flag_values=flag_values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    flag_values = flags.FLAGS
    if flag_values.decode_from_file:
        with open(flag_values.decode_from_file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        lines = sys.stdin.read().splitlines()
    try:
        trained = load_trained(
            flag_values.output_dir,
            flag_values.data_dir,
            flag_values.checkpoint_path,
            flag_values.t2t_usr_dir,
        )
    except (ValueError, FileNotFoundError) as error:
        command_line.exit_with_usage_error(PROGRAM, error)
    print(
        f"sm3-decoder: {trained.run_info['model']} on "
        f"{trained.run_info['problem']}, step {trained.step}",
        file=sys.stderr,
    )
    translations = translate_texts(
        trained.model,
        trained.encoders,
        lines,
        beam_size=flag_values.beam_size,
        alpha=flag_values.alpha,
        extra_length=flag_values.extra_length,
        batch_size=flag_values.decode_batch_size,
    )
    text = "".join(t + "\n" for t in translations)
    if flag_values.decode_to_file:
        write_atomically(flag_values.decode_to_file, text)
    else:
        sys.stdout.write(text)


def run():
    """Console-script entry point `sm3-decoder`."""
    define_flags()
    command_line.list_flags_in_help(["sm3_t2t.decoder"], __doc__)
    app.run(main)


if __name__ == "__main__":
    run()
