"""Whole-file writes that a crash or kill cannot leave half done, on any `tf.io.gfile` path.

    write_atomically("gs://bucket/run/run_info.json", text)   # also local paths and ram://

The contents go to a temporary file in the same directory, which is then renamed over the
destination: a reader sees the old file or the complete new one, never a mix. The rename is
`tf.io.gfile.rename(..., overwrite=True)`, so the same code serves local disks, `gs://` (where a
rename is a copy and a delete, still never a partial object) and the `ram://` file system tests
use in its place.
"""

import os
import uuid

import tensorflow as tf


def _is_local(path):
    return "://" not in path


def write_atomically(path, contents):
    """Writes `contents` (str: UTF-8 text, bytes: as they are) to `path` through a rename.

    Raises:
      tf.errors.OpError / OSError: when the directory is missing or not writable; `path` is then
        untouched and no temporary file is left behind.
    """
    path = os.fspath(path)
    # Unique per call: two processes writing the same file never share a temporary.
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    mode = "wb" if isinstance(contents, (bytes, bytearray)) else "w"
    try:
        with tf.io.gfile.GFile(temporary, mode) as output:
            output.write(contents)
        if _is_local(temporary):
            _sync(temporary)
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
        raise


def _sync(path):
    """Flushes a local file to the disk, so that a power cut after the rename keeps the data."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
