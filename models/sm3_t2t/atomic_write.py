"""Files that a crash or kill cannot leave half done, on any `tf.io.gfile` path.

    write_atomically("gs://bucket/run/run_info.json", text)   # also local paths and ram://

    with AtomicFile(path) as pending:                         # a streaming writer of any kind
        writer = tf.io.TFRecordWriter(pending.temporary)      # (or a GFile)
        ...
        writer.close()
        pending.commit()                                      # not reached: nothing changes

The contents go to a temporary file in the same directory, which is renamed over the destination
only once it is complete: a reader sees the old file or the complete new one, never a mix. The
rename is `tf.io.gfile.rename(..., overwrite=True)`, so the same code serves local disks, `gs://`
(where a rename is a copy and a delete, still never a partial object) and the `ram://` file system
the tests use in its place. A process killed before the rename leaves a `<name>.tmp-<hex>` file,
which `is_leftover` recognises so that the next run can remove it.
"""

import os
import re
import uuid

import tensorflow as tf

_LEFTOVER_RE = re.compile(r".+\.tmp-[0-9a-f]{32}")


def _is_local(path):
    return "://" not in path


def temporary_path(path):
    """A fresh temporary name beside `path`: two writers of one file never share one."""
    return f"{os.fspath(path)}.tmp-{uuid.uuid4().hex}"


def is_leftover(name):
    """Whether the file name `name` is the temporary of a write that never finished."""
    return bool(_LEFTOVER_RE.fullmatch(name))


class AtomicFile:
    """A file written under a temporary name and renamed over `path` by `commit()`.

    Use it as a context manager: leaving the block without `commit()` (an exception, a
    KeyboardInterrupt) removes the temporary and leaves `path` untouched. Whatever writes
    `temporary` (a GFile, a TFRecordWriter) must be closed before `commit()`.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.temporary = temporary_path(self.path)
        self.committed = False

    def commit(self):
        """Renames the finished temporary over `path` (synced to the disk first when local)."""
        if _is_local(self.temporary):
            _sync(self.temporary)
        tf.io.gfile.rename(self.temporary, self.path, overwrite=True)
        self.committed = True

    def discard(self):
        """Removes the temporary, unless it was committed."""
        if not self.committed and tf.io.gfile.exists(self.temporary):
            tf.io.gfile.remove(self.temporary)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.discard()


def write_atomically(path, contents):
    """Writes `contents` (str: UTF-8 text, bytes: as they are) to `path` through a rename.

    Raises:
      tf.errors.OpError / OSError: when the directory is missing or not writable; `path` is then
        untouched and no temporary file is left behind.
    """
    mode = "wb" if isinstance(contents, (bytes, bytearray)) else "w"
    with AtomicFile(path) as pending:
        with tf.io.gfile.GFile(pending.temporary, mode) as output:
            output.write(contents)
        pending.commit()


def _sync(path):
    """Flushes a local file to the disk, so that a power cut after the rename keeps the data."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
