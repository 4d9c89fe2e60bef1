"""Distribution strategy from the trainer's `--strategy` flag.

* `default`: the default strategy (one device, no distribution).
* `mirrored`: `tf.distribute.MirroredStrategy` over the local devices.
* `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster
  and this process's role come from the `TF_CONFIG` environment variable.
* `tpu`: resolves the TPU named by `--tpu` with `TPUClusterResolver`,
  connects to it, initialises the TPU system and returns a `TPUStrategy`.
  TPUs compile every step with XLA and need fixed input shapes.

Only the chief writes checkpoints and summaries; the other workers of a
multi-worker job still take part in saving (the save is collective) but
write into a scratch directory, which `worker_output_dir` names.
"""

import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def split_host_cpu(num_devices):
    """Splits the host CPU into `num_devices` logical devices.

    Lets `mirrored` run with several replicas on a machine without GPUs
    (tests, debugging). Must run before TensorFlow initialises its devices.

    Raises:
      ValueError: if `num_devices < 1`.
      RuntimeError: if TensorFlow's devices are already initialised.
    """
    if num_devices < 1:
        raise ValueError(f"cpu_replicas must be >= 1, got {num_devices}")
    if num_devices == 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
    )


def make_strategy(name, tpu=None):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
      name: one of `STRATEGIES`.
      tpu: TPU name or address for `name="tpu"` (`None`/"" lets
        `TPUClusterResolver` find a local or environment-configured TPU).

    Raises:
      ValueError: for an unknown name, or `multi_worker` without TF_CONFIG.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        if not resolver.cluster_spec().as_dict():
            raise ValueError(
                "strategy=multi_worker needs the TF_CONFIG environment "
                "variable (cluster spec and this worker's task)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        except ValueError as error:  # TF's message does not name our flag
            raise ValueError(
                f"strategy=tpu found no TPU (tpu={tpu!r}): pass --tpu=NAME "
                f"or --tpu=grpc://HOST:PORT ({error})"
            ) from error
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


def needs_xla(strategy):
    """True for strategies that compile every step with XLA (TPUs)."""
    return isinstance(strategy, tf.distribute.TPUStrategy)


def is_chief(strategy):
    """True if this process writes checkpoints, summaries and results (TF's `should_checkpoint`:
    the chief of a multi-worker job, or worker 0 when the cluster has no chief)."""
    return strategy.extended.should_checkpoint


def worker_output_dir(output_dir, strategy):
    """Where this process writes: `output_dir` for the chief, else `workers/<type>_<id>` there.

    The role comes from the strategy's cluster resolver, which read TF_CONFIG.
    """
    if is_chief(strategy):
        return output_dir
    resolver = strategy.cluster_resolver
    return os.path.join(output_dir, "workers", f"{resolver.task_type}_{resolver.task_id}")
