"""sm3_t2t.atomic_write: one whole-file writer for local paths and gs:// (ram:// stands in)."""

import os
import uuid

import pytest
import tensorflow as tf

from sm3_t2t.atomic_write import write_atomically


@pytest.fixture(params=["local", "ram"])
def directory(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    path = f"ram://atomic-{uuid.uuid4().hex}"
    tf.io.gfile.makedirs(path)
    return path


def _read(path, mode="r"):
    with tf.io.gfile.GFile(path, mode) as f:
        return f.read()


def test_writes_text_and_bytes_and_replaces_an_existing_file(directory):
    path = os.path.join(directory, "run_info.json")
    write_atomically(path, "first\n")
    assert _read(path) == "first\n"
    write_atomically(path, "ünïcode second\n")
    assert _read(path) == "ünïcode second\n"
    binary = os.path.join(directory, "vocab.model")
    write_atomically(binary, b"\x00\x01\xff")
    assert _read(binary, "rb") == b"\x00\x01\xff"
    # Nothing but the two files: no temporary left behind.
    assert sorted(tf.io.gfile.listdir(directory)) == ["run_info.json", "vocab.model"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(directory):
    path = os.path.join(directory, "hparams.json")
    write_atomically(path, "old")

    class Unwritable:  # GFile.write raises on it, after the temporary file was opened
        pass

    with pytest.raises(Exception):  # noqa: B017  (TypeError locally, another error elsewhere)
        write_atomically(path, Unwritable())
    assert _read(path) == "old"
    assert tf.io.gfile.listdir(directory) == ["hparams.json"]


def test_a_missing_directory_is_an_error_and_writes_nothing(tmp_path):
    path = str(tmp_path / "missing" / "out.txt")
    with pytest.raises((tf.errors.NotFoundError, OSError)):
        write_atomically(path, "text")
    assert not os.path.exists(tmp_path / "missing")
