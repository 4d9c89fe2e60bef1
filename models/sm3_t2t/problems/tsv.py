"""Reading parallel text stored one pair per line as `source<TAB>target` (optionally gzipped).

Files are read through `tf.io.gfile`, so they may live on gs://.
"""

import gzip
import os

import tensorflow as tf

from sm3_t2t.problems.shards import DataError

_BOM = "\ufeff"  # editors on Windows start UTF-8 files with it; it is not part of the text


def find_tsv(directory, stem):
    """Path of `directory/stem.tsv` or `directory/stem.tsv.gz`, or None if neither exists."""
    for path in (os.path.join(directory, stem + ".tsv"), os.path.join(directory, stem + ".tsv.gz")):
        if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
            return path
    return None


def read_tsv_pairs(path):
    """Yields (source, target) from a TSV file, checking every line.

    A UTF-8 byte order mark at the start of the file is dropped.

    Raises:
      FileNotFoundError: `path` does not exist.
      DataError: the file is empty, is not UTF-8, or a line does not hold exactly one tab
        between two non-empty sides (the message gives file and line number).
    """
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"parallel text file {path} does not exist")
    line_number = 0
    try:
        with tf.io.gfile.GFile(path, "rb") as raw:
            # Bytes, decoded per line: exact line numbers.
            lines = gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw
            for line_number, raw_line in enumerate(lines, start=1):
                line = decode_utf8_line(raw_line, path, line_number)
                yield _split_line(line, path, line_number)
    except (OSError, EOFError, tf.errors.OpError) as error:  # e.g. a truncated or non-gzip .gz
        raise DataError(f"{path}: cannot read ({error})") from error
    if line_number == 0:
        raise DataError(f"{path} is empty; expected lines of source<TAB>target")


def decode_utf8_line(raw_line, path, line_number):
    """`raw_line` (bytes) as text; a BOM on line 1 is dropped; DataError naming path:line.

    Raises:
      DataError: `path:line: not UTF-8 text (<reason> at byte N)`.
    """
    try:
        line = raw_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}:{line_number}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    if line_number == 1 and line.startswith(_BOM):
        line = line[len(_BOM) :]
    return line


def _split_line(line, path, line_number):
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 2:
        raise DataError(
            f"{path}:{line_number}: expected 'source<TAB>target' (one tab), found "
            f"{len(fields) - 1} tabs in {line[:80]!r}"
        )
    source, target = (field.strip() for field in fields)
    if not source or not target:
        side = "source" if not source else "target"
        raise DataError(f"{path}:{line_number}: empty {side} text")
    return source, target
