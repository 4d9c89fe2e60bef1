"""TensorBoard scalars without the tensorboard package."""

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

# What tensorboard's `scalar` summary writes; TF 2.21's tf.summary.scalar
# needs the tensorboard package, tf.summary.write with this does not.
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
)


def write_scalar(name, value, step):
    """Writes a TensorBoard scalar to the default summary writer."""
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=_SCALAR_METADATA)
