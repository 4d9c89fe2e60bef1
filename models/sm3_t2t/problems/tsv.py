"""Reading parallel text stored one pair per line as `source<TAB>target` (optionally gzipped)."""

import gzip
import os

from sm3_t2t.problems.shards import DataError


def find_tsv(directory, stem):
    """Path of `directory/stem.tsv` or `directory/stem.tsv.gz`, or None if neither exists."""
    for path in (os.path.join(directory, stem + ".tsv"), os.path.join(directory, stem + ".tsv.gz")):
        if os.path.isfile(path):
            return path
    return None


def read_tsv_pairs(path):
    """Yields (source, target) from a TSV file, checking every line.

    Raises:
      FileNotFoundError: `path` does not exist.
      DataError: the file is empty, is not UTF-8, or a line does not hold exactly one tab
        between two non-empty sides (the message gives file and line number).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"parallel text file {path} does not exist")
    opener = gzip.open if path.endswith(".gz") else open
    line_number = 0
    try:
        with opener(path, "rb") as lines:  # bytes, decoded per line: exact line numbers
            for line_number, raw_line in enumerate(lines, start=1):
                try:
                    line = raw_line.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(
                        f"{path}:{line_number}: not UTF-8 text "
                        f"({error.reason} at byte {error.start})"
                    ) from None
                yield _split_line(line, path, line_number)
    except (OSError, EOFError) as error:  # e.g. a truncated or non-gzip .gz file
        raise DataError(f"{path}: cannot read ({error})") from error
    if line_number == 0:
        raise DataError(f"{path} is empty; expected lines of source<TAB>target")


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
