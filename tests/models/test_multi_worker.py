"""MultiWorkerMirroredStrategy with two local worker processes (loopback).

Each worker runs the trainer's `train` under TF_CONFIG and writes a digest of
its final weights; collective all-reduce must leave both with identical
weights, and only the chief keeps checkpoints.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from sm3_t2t import registry

PROBLEM = "algorithmic_reverse_binary40"

# Runs in each worker process: train on this worker's shard of the data,
# then write a digest of the final weights.
WORKER = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    from sm3_t2t import trainer

    def digest(variables):
        data = b"".join(np.ascontiguousarray(v.numpy()).tobytes()
                        for v in variables)
        return hashlib.sha256(data).hexdigest()

    data_dir, output_dir, result_file = sys.argv[1:4]
    options = trainer.TrainerOptions(
        problem=PROBLEM_NAME, hparams_set="transformer_tiny",
        hparams="hidden_size=32,filter_size=64,batch_size=256",
        data_dir=data_dir, output_dir=output_dir, train_steps=4,
        save_checkpoints_steps=2, iterations_per_loop=1,
        strategy="multi_worker", schedule="train")
    run = trainer.train(options)
    with open(result_file, "w") as f:
        f.write(digest(run.model.trainable_variables))
""".replace("PROBLEM_NAME", repr(PROBLEM))
)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    # Generated once up front, so the workers do not race to write it.
    path = str(tmp_path_factory.mktemp("multi_worker_data"))
    registry.problem(PROBLEM).generate_data(path)
    return path


def test_two_workers_finish_with_identical_weights(data_dir, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    output_dir = str(tmp_path / "run")
    processes, results = [], []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        results.append(tmp_path / f"worker_{index}.sha256")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, data_dir, output_dir, str(results[-1])],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=240)[0].decode())
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "2 replica(s)" in outputs[0]

    digests = [path.read_text() for path in results]
    assert digests[0] == digests[1]
    # The chief (worker 0) keeps the checkpoints; worker 1's scratch copy,
    # needed only for the collective save, is gone.
    assert tf.train.latest_checkpoint(output_dir).endswith("model.ckpt-4")
    assert not os.path.exists(os.path.join(output_dir, "workers", "worker_1"))
