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

Every flag and the whole input are checked before the model loads: input that is not UTF-8 is
reported with its file and line, a missing `--decode_to_file` directory at once. Output is UTF-8
whatever the locale. Inputs longer than the run's `max_input_seq_length` (else `max_length`; or
`--max_input_length`) are truncated and reported, and batches hold at most `--decode_batch_tokens`
source tokens, so one overlong line costs no more than its own share. A damaged latest
checkpoint is skipped with a warning naming its files (`sm3_t2t.checkpoint_recovery`).
"""

import dataclasses
import math
import sys
import weakref

import tensorflow as tf
from absl import flags

# Imported for their registrations: the "transformer" model and its hparams.
from sm3_t2t import (
    checkpoint_recovery,
    command_line,
    decoder_options,
    input_pipeline,
    model_builder,
    registry,
    run_dir,
    transformer,  # noqa: F401
    transformer_hparams,  # noqa: F401
    usr_dir,
)
from sm3_t2t.atomic_write import write_atomically
from sm3_t2t.problems.shards import DataError
from sm3_t2t.problems.tsv import decode_utf8_line
from sm3_t2t.special_ids import EOS_ID, PAD_ID

PROGRAM = "sm3-decoder"
DEFAULT_BATCH_TOKENS = decoder_options.DEFAULT_BATCH_TOKENS


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
      checkpoint_path: a specific checkpoint prefix; default the newest intact one (a damaged
        newer one is skipped with a warning naming its files).
      t2t_usr_dir: the package registering the run's problem or model;
        defaults to the trainer's `--t2t_usr_dir` recorded in `run_info.json`.

    Raises:
      FileNotFoundError: if there is no run, no checkpoint or no usr dir.
      ValueError: the run's problem or model is not registered (naming it), its description
        is damaged (`run_dir.RunInfoError`) or the checkpoint does not fit the model.
      DamagedCheckpointsError: the checkpoint(s) are damaged (naming the files).
    """
    run_info, hparams = run_dir.read_run_info(output_dir)
    usr_dir.import_usr_dir(t2t_usr_dir or run_info.get("t2t_usr_dir", ""))
    data_dir = data_dir or run_info["data_dir"]
    problem = command_line.look_up("problem", run_info["problem"], registry.problem)
    command_line.look_up("model", run_info["model"], registry.model)
    encoders = problem.feature_encoders(data_dir)
    model = model_builder.build_model(run_info["model"], hparams, encoders)
    model_builder.build_variables(model)
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(model=model, step=step)
    # partial: the checkpoint also holds optimizer slots, which decoding ignores.
    if checkpoint_path:
        checkpoint_recovery.restore_path(checkpoint, checkpoint_path, partial=True)
    elif not checkpoint_recovery.restore_newest_intact(checkpoint, output_dir, partial=True):
        raise FileNotFoundError(f"no checkpoint in --output_dir={output_dir}")
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


def encode_inputs(encoders, texts, max_input_length=0):
    """EOS-terminated ids of `texts`, cut to `max_input_length` tokens (0: no limit).

    Returns (ids per text, [(index, original length)] of the texts that were cut).

    Raises:
      DataError: naming the input (1-based) that the vocabulary cannot encode.
    """
    encoded, truncated = [], []
    for index, text in enumerate(texts):
        try:
            ids = list(encoders["inputs"].encode(text)) + [EOS_ID]
        except ValueError as error:  # e.g. a word that is no symbol of an algorithmic problem
            raise DataError(f"input {index + 1}: {error}") from None
        if max_input_length and len(ids) > max_input_length:
            truncated.append((index, len(ids)))
            ids = ids[: max_input_length - 1] + [EOS_ID]
        encoded.append(ids)
    return encoded, truncated


def describe_truncated(truncated, total, max_input_length, what="input line"):
    """One line saying which inputs were cut, e.g. for a warning."""
    shown = ", ".join(f"{index + 1} ({length} tokens)" for index, length in truncated[:5])
    more = f" and {len(truncated) - 5} more" if len(truncated) > 5 else ""
    return (
        f"{len(truncated)} of {total} inputs are longer than {max_input_length} tokens and were "
        f"truncated to it: {what} {shown}{more}"
    )


def length_batches(lengths, batch_size, batch_tokens):
    """Index lists, shortest inputs first: each batch holds at most `batch_size` inputs and at
    most `batch_tokens` tokens once padded to its longest (one input always fits)."""
    batches, batch = [], []
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        # Sorted by length, so the new input is the batch's longest.
        if batch and (len(batch) == batch_size or (len(batch) + 1) * lengths[index] > batch_tokens):
            batches.append(batch)
            batch = []
        batch.append(index)
    return batches + [batch] if batch else batches


def translate_texts(
    model,
    encoders,
    texts,
    beam_size=4,
    alpha=0.6,
    extra_length=50,
    batch_size=32,
    max_input_length=0,
    batch_tokens=DEFAULT_BATCH_TOKENS,
    on_truncated=None,
):
    """Translates a list of strings; returns translations in the same order.

    Sentences are sorted by length and batched by `batch_size` sentences and `batch_tokens`
    padded source tokens, so that padding stays small and one long input shares its batch with
    few others; the search itself is `model.translate` (batched beam search).

    Args:
      max_input_length: inputs longer than this many tokens (EOS included) are truncated to it;
        0 means no limit. See `input_pipeline.max_input_length` for a run's limit.
      on_truncated: called with [(index, original length)] when inputs were truncated;
        default: a warning on stderr.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_tokens < 1:
        raise ValueError(f"batch_tokens must be >= 1, got {batch_tokens}")
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha}")
    encoded, truncated = encode_inputs(encoders, texts, max_input_length)
    if truncated:
        if on_truncated is None:
            _warn(describe_truncated(truncated, len(texts), max_input_length))
        else:
            on_truncated(truncated)
    translate_batch = _translate_function(model, beam_size, alpha, extra_length)
    results = [None] * len(encoded)
    for batch_ids in length_batches([len(ids) for ids in encoded], batch_size, batch_tokens):
        width = max(len(encoded[i]) for i in batch_ids)
        padded = [encoded[i] + [PAD_ID] * (width - len(encoded[i])) for i in batch_ids]
        output_ids, _ = translate_batch(tf.constant(padded, tf.int64))
        for i, ids in zip(batch_ids, output_ids.numpy().tolist()):
            results[i] = encoders["targets"].decode(_strip_after_eos(ids))
    return results


def _warn(message):
    print(f"{PROGRAM}: warning: {message}", file=sys.stderr, flush=True)


def read_source_lines(path=None):
    """The lines of `path` (any tf.io.gfile path; None: stdin), checked to be UTF-8 first.

    A BOM at the start is dropped, as are line ends ("\\n", "\\r\\n").

    Raises:
      DataError: `<file>:<line>: not UTF-8 text (...)`, before anything else happens.
    """
    if path:
        with tf.io.gfile.GFile(path, "rb") as source:
            data = source.read()
    else:
        data = sys.stdin.buffer.read()
    name = path or "<stdin>"
    raw_lines = data.split(b"\n")
    if raw_lines and not raw_lines[-1]:
        raw_lines.pop()  # the final line end does not start another line
    return [
        decode_utf8_line(raw, name, number).rstrip("\r")
        for number, raw in enumerate(raw_lines, start=1)
    ]


def write_translations(translations, path=None):
    """Writes one translation a line as UTF-8 to `path` (atomically) or to stdout.

    stdout gets bytes, so a non-UTF-8 locale (LANG=C, latin-1 consoles) cannot fail the write.
    """
    text = "".join(t + "\n" for t in translations)
    if path:
        write_atomically(path, text)
    else:
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()


def main(argv):
    flag_values = flags.FLAGS
    try:
        if len(argv) > 1:
            raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
        decoder_options.check_flags(flag_values)
        lines = read_source_lines(flag_values.decode_from_file)
        trained = load_trained(
            flag_values.output_dir,
            flag_values.data_dir,
            flag_values.checkpoint_path,
            flag_values.t2t_usr_dir,
        )
    except (ValueError, FileNotFoundError) as error:
        command_line.exit_with_usage_error(PROGRAM, error)
    except checkpoint_recovery.DamagedCheckpointsError as error:
        command_line.exit_with_error(PROGRAM, error)
    print(
        f"{PROGRAM}: {trained.run_info['model']} on "
        f"{trained.run_info['problem']}, step {trained.step}",
        file=sys.stderr,
    )
    max_input_length = flag_values.max_input_length
    if max_input_length is None:
        max_input_length = input_pipeline.max_input_length(trained.hparams)
    try:
        translations = translate_texts(
            trained.model,
            trained.encoders,
            lines,
            beam_size=flag_values.beam_size,
            alpha=flag_values.alpha,
            extra_length=flag_values.extra_length,
            batch_size=flag_values.decode_batch_size,
            max_input_length=max_input_length,
            batch_tokens=flag_values.decode_batch_tokens,
        )
    except DataError as error:
        command_line.exit_with_usage_error(PROGRAM, error)
    write_translations(translations, flag_values.decode_to_file)


def run():
    """Console-script entry point `sm3-decoder`."""
    decoder_options.define_flags()
    command_line.list_flags_in_help(["sm3_t2t.decoder_options"], __doc__)
    command_line.run(main, PROGRAM)


if __name__ == "__main__":
    run()
