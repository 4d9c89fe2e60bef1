"""The SM3 step as one fused C++ op per variable: same contract as `tf_step`.

`dense_update` and `sparse_update` take exactly `tf_step`'s arguments and run
`Sm3>ResourceApplyDense` / `Sm3>ResourceApplySparse` (kernels/cc; Python names
`sm3_resource_apply_dense` / `_sparse`) on the variables' resource handles:
one in-place pass over the parameter-sized data, no parameter-sized temporary. `step.select` asks
`unavailable_reason` first and falls back to `tf_step` when it returns a sentence.

This path never runs under XLA (the ops have no XLA kernel), so the sparse step may use
`tf.unique` to sum duplicate rows before the op, which requires unique rows.
"""

import numbers

import tensorflow as tf

from sm3_tf import kernel_loader, tf_step

SUPPORTED_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def _handle(variable):
    """The resource handle of a tf.Variable, or of the tf.Variable inside a Keras variable."""
    handle = getattr(variable, "handle", None)
    if handle is None and hasattr(variable, "value"):
        handle = getattr(variable.value, "handle", None)
    return handle


def resolved_device_type(variable):
    """The type of the device the variable really lives on ("CPU", "GPU", ...; "" if unknowable).

    An eager variable's `device` is where it was placed. A graph variable's is what was asked for
    (T2T asks for "gpu:0"): with soft placement, a device type this machine does not have ends on
    CPU, and an unplaced variable goes where the placer prefers (a GPU when there is one).
    """
    try:
        device = variable.device
    except (AttributeError, ValueError, RuntimeError):  # distributed wrappers may refuse here
        return ""
    requested = (tf.DeviceSpec.from_string(device).device_type or "").upper() if device else ""
    if requested == "CPU":
        return requested
    if requested:
        return requested if tf.config.list_physical_devices(requested) else "CPU"
    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def device_reason(device_type):
    """Why the kernel cannot update a variable on `device_type` (None for CPU)."""
    if not device_type or device_type == "CPU":
        return None
    return f"the fused kernel runs on CPU only and the variable is on {device_type}"


def unavailable_reason(var, config):
    """None when the fused kernel can update `var` under `config`, else why not (a sentence)."""
    del config  # every StepConfig is supported: both variants, any momentum, beta_2 and epsilon
    reason = kernel_loader.unavailable_reason()
    if reason is not None:
        return f"the kernel library is unavailable ({reason})"
    dtype = tf.as_dtype(var.dtype).base_dtype
    if dtype not in SUPPORTED_DTYPES:
        return f"the kernels support float16/bfloat16/float32/float64 variables, not {dtype.name}"
    try:
        handle = _handle(var)
    except (AttributeError, ValueError, RuntimeError) as error:
        return f"the variable's resource handle is not accessible here ({error})"
    if handle is None:
        return "the variable is not a resource variable"
    return device_reason(resolved_device_type(var))


def _float64(value):
    """A float64 scalar tensor; Python numbers convert exactly, tensors are cast."""
    if isinstance(value, numbers.Real):
        return tf.constant(float(value), tf.float64)
    return tf.cast(value, tf.float64)


def _common_inputs(momentum_buffer, lr, config):
    has_buffer = momentum_buffer is not None
    return dict(
        momentum_buffer=[_handle(momentum_buffer)] if has_buffer else [],
        lr=_float64(lr),
        momentum=_float64(config.momentum if has_buffer else 0.0),
        beta_2=_float64(config.beta_2),
        epsilon=_float64(config.epsilon),
        sm3_variant=config.variant,
    )


def dense_update(var, grad, accumulators, momentum_buffer, lr, config):
    """One SM3 step on `var` in place with a dense gradient (see `tf_step.dense_update`).

    Returns:
      The op (graph mode) or None (eager).
    """
    return kernel_loader.ops().sm3_resource_apply_dense(
        var=_handle(var),
        accumulators=[_handle(a) for a in accumulators],
        grad=tf.convert_to_tensor(grad),
        **_common_inputs(momentum_buffer, lr, config),
    )


def sum_duplicate_rows(values, indices):
    """(unique rows, their summed gradient rows); sums in the compute dtype, as tf_step does."""
    unique_rows, position = tf.unique(indices)
    summed = tf.math.unsorted_segment_sum(values, position, tf.size(unique_rows))
    return unique_rows, summed


def sparse_update(var, grad_values, grad_indices, accumulators, momentum_buffer, lr, config):
    """One SM3 step on the rows of `var` named by `grad_indices` (see `tf_step.sparse_update`).

    Duplicate indices are summed first; only the touched rows of `var`, of the axis-0 accumulator
    and of the momentum buffer are read and written. As in the authors' implementation the rows
    alone cover the touched entries, so the other accumulators are not even passed to the op.
    """
    values = tf.cast(grad_values, tf_step.compute_dtype(var.dtype))
    rows, summed = sum_duplicate_rows(values, grad_indices)
    return kernel_loader.ops().sm3_resource_apply_sparse(
        var=_handle(var),
        row_accumulator=_handle(accumulators[0]),
        values=summed,
        indices=rows,
        **_common_inputs(momentum_buffer, lr, config),
    )
