"""sm3-decoder's flags, and the checks they pass before any input is read or model loaded."""

import math
import os

import tensorflow as tf
from absl import flags

# Source tokens per decoding batch: 32 sentences of 128 tokens, or 16 of 256.
DEFAULT_BATCH_TOKENS = 4096


def define_flags(flag_values=flags.FLAGS):
    """Defines the decoder's flags (kept out of import so modules compose)."""
    f = flag_values
    flags.DEFINE_string("output_dir", None, "Directory of a sm3-trainer run.", flag_values=f)
    flags.DEFINE_string(
        "data_dir", None, "Vocabulary directory; default: the trainer's.", flag_values=f
    )
    flags.DEFINE_string(
        "checkpoint_path",
        None,
        "Checkpoint to use; default: the newest intact one.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "t2t_usr_dir",
        None,
        "Package directory registering the run's problem or model; default: the trainer's.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "decode_from_file",
        None,
        "Source sentences, one a line, UTF-8; default: stdin.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "decode_to_file", None, "Where translations go (UTF-8); default: stdout.", flag_values=f
    )
    flags.DEFINE_integer("beam_size", 4, "Beam size; 1 is greedy.", lower_bound=1, flag_values=f)
    flags.DEFINE_float("alpha", 0.6, "Length penalty exponent (finite).", flag_values=f)
    flags.DEFINE_integer(
        "extra_length",
        50,
        "Translate at most source length + this many tokens.",
        lower_bound=1,
        flag_values=f,
    )
    flags.DEFINE_integer(
        "decode_batch_size", 32, "Sentences per batch at most.", lower_bound=1, flag_values=f
    )
    flags.DEFINE_integer(
        "decode_batch_tokens",
        DEFAULT_BATCH_TOKENS,
        "Source tokens per batch at most, padding included (one sentence always fits).",
        lower_bound=1,
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_input_length",
        None,
        "Truncate (and report) inputs longer than this many tokens; 0: no limit; default: the "
        "run's max_input_seq_length, else its max_length.",
        lower_bound=0,
        flag_values=f,
    )
    flags.mark_flag_as_required("output_dir", flag_values=f)


def check_flags(flag_values):
    """Raises ValueError / FileNotFoundError naming the first flag that cannot work.

    Run before the input is read and the model loaded, so that a typo costs nothing, and a
    missing output directory is not found only after all the decoding.
    """
    if not math.isfinite(flag_values.alpha):
        raise ValueError(f"--alpha must be a finite number, got {flag_values.alpha}")
    source = flag_values.decode_from_file
    if source and (not tf.io.gfile.exists(source) or tf.io.gfile.isdir(source)):
        raise FileNotFoundError(f"--decode_from_file={source}: no such file")
    target = flag_values.decode_to_file
    if target:
        if tf.io.gfile.isdir(target):
            raise ValueError(f"--decode_to_file={target} is a directory; give a file name")
        directory = os.path.dirname(target)
        if directory and not tf.io.gfile.isdir(directory):
            raise FileNotFoundError(
                f"--decode_to_file={target}: directory {directory} does not exist"
            )
    checkpoint = flag_values.checkpoint_path
    if checkpoint and not tf.io.gfile.exists(checkpoint + ".index"):
        raise FileNotFoundError(f"--checkpoint_path={checkpoint}: no {checkpoint}.index")
