"""Which step runs where: the fused kernel wherever the variable really is on CPU, and one
aggregated warning per optimizer for the variables that fall back to TF ops.

T2T asks for variables on "gpu:0"; with soft placement on a machine without a GPU they live on
CPU although a graph variable's device string still says GPU. This machine has no GPU, so a GPU
is simulated (tf.config.list_physical_devices) where a test needs one.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from sm3_reference import SM3Reference, relative_error

import sm3_tf
from sm3_tf import fallbacks, fused_step, kernel_loader, step, tf_step
from sm3_tf import v1 as sm3_v1
from sm3_tf.step_config import StepConfig

LEARNING_RATE = 0.1


def fallback_warnings(caught):
    return [str(w.message) for w in caught if "SM3 fused kernel not used" in str(w.message)]


@pytest.fixture
def pretend_a_gpu(monkeypatch):
    """Makes tf.config.list_physical_devices report one GPU."""
    real = tf.config.list_physical_devices

    def list_physical_devices(device_type=None):
        if device_type == "GPU":
            return [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]
        return real(device_type)

    monkeypatch.setattr(tf.config, "list_physical_devices", list_physical_devices)


def test_an_eager_variable_asked_on_gpu_lives_on_cpu_and_takes_the_fused_path():
    with tf.device("/gpu:0"):  # soft placement: there is no GPU here
        variable = tf.Variable(np.ones((4, 3), np.float32))
    assert fused_step.resolved_device_type(variable) == "CPU"
    assert step.select(None, variable, StepConfig()) is fused_step
    optimizer = sm3_tf.SM3(LEARNING_RATE, momentum=0.9, fused=True)  # True: the kernel or an error
    reference = SM3Reference((4, 3), momentum=0.9)
    expected = np.ones((4, 3))
    for i in range(2):
        gradient = np.full((4, 3), 0.5 * (i + 1), np.float32)
        gradient[0, 0] = -1.0
        optimizer.apply([tf.constant(gradient)], [variable])
        expected = reference.step(expected, gradient, LEARNING_RATE)
    assert relative_error(variable.numpy(), expected) <= 1e-5


def test_a_graph_variable_asked_on_gpu_takes_the_fused_path_on_a_cpu_only_machine():
    reference = SM3Reference((4, 3), momentum=0.9)
    expected = np.ones((4, 3))
    gradients = [np.full((4, 3), 0.5 * (i + 1), np.float32) for i in range(2)]
    for gradient in gradients:
        expected = reference.step(expected, gradient, LEARNING_RATE)
    graph = tf.Graph()
    with graph.as_default():
        with tf.device("/gpu:0"):  # what T2T does
            variable = tf.compat.v1.get_variable(
                "w", initializer=np.ones((4, 3), np.float32), use_resource=True
            )
        assert variable.device.endswith("GPU:0")
        assert fused_step.resolved_device_type(variable) == "CPU"
        gradient = tf.compat.v1.placeholder(tf.float32, (4, 3))
        optimizer = sm3_v1.SM3Optimizer(LEARNING_RATE, momentum=0.9)
        train_op = optimizer.apply_gradients([(gradient, variable)])
        op_types = {op.type for op in graph.get_operations()}
        assert "Sm3>ResourceApplyDense" in op_types, sorted(op_types)
        config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        with tf.compat.v1.Session(config=config) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for g in gradients:
                session.run(train_op, {gradient: g})
            result = session.run(variable)
    assert relative_error(result, expected) <= 1e-5


def test_a_variable_really_on_gpu_falls_back_with_one_warning_naming_it(pretend_a_gpu):
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tf.device("/gpu:0"):
            on_gpu = tf.compat.v1.get_variable("on_gpu", [3, 2], use_resource=True)
        with tf.device("/cpu:0"):
            on_cpu = tf.compat.v1.get_variable("on_cpu", [3, 2], use_resource=True)
        assert fused_step.resolved_device_type(on_gpu) == "GPU"
        optimizer = sm3_v1.SM3Optimizer(LEARNING_RATE, name="SM3_gpu_test")
        for _ in range(2):  # two updates built: still one warning
            optimizer.apply_gradients([(tf.ones([3, 2]), on_gpu), (tf.ones([3, 2]), on_cpu)])
        assert step.select(None, on_gpu, StepConfig()) is tf_step
        assert step.select(None, on_cpu, StepConfig()) is fused_step
    (message,) = fallback_warnings(caught)
    assert "1 of 2 variables" in message and "'SM3_gpu_test'" in message
    assert "runs on CPU only and the variable is on GPU" in message


def test_fallbacks_are_counted_and_said_once_per_optimizer(monkeypatch):
    monkeypatch.setattr(kernel_loader, "unavailable_reason", lambda: "simulated: no library")
    variables = [tf.Variable(tf.ones(shape)) for shape in [(3, 2), (4,), (2, 2, 2)]]
    gradients = [tf.ones_like(v) for v in variables]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = sm3_tf.SM3(LEARNING_RATE, name="SM3_count_test")
        for _ in range(3):
            first.apply(gradients, variables)
        # Another optimizer with the same story (whatever its name) does not tell it again...
        sm3_tf.SM3(LEARNING_RATE, name="SM3_same_story").apply(gradients, variables)
        assert len(fallback_warnings(caught)) == 1
        # ... one with another story does.
        sm3_tf.SM3(LEARNING_RATE, name="SM3_other_story").apply(gradients[:2], variables[:2])
    messages = fallback_warnings(caught)
    assert len(messages) == 2
    assert "3 of 3 variables" in messages[0] and "simulated: no library" in messages[0]
    assert "'SM3_count_test'" in messages[0]
    assert "2 of 2 variables" in messages[1] and "'SM3_other_story'" in messages[1]


def test_no_warning_when_every_variable_is_fused_or_under_xla():
    variable = tf.Variable(tf.ones((3, 2)))
    optimizer = sm3_tf.SM3(LEARNING_RATE, name="SM3_quiet_test")
    xla_optimizer = sm3_tf.SM3(LEARNING_RATE, name="SM3_xla_test")
    xla_optimizer.build([variable])

    @tf.function(jit_compile=True)
    def xla_apply():
        xla_optimizer.apply([tf.ones((3, 2))], [variable])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer.apply([tf.ones((3, 2))], [variable])
        xla_apply()
    assert fallback_warnings(caught) == []


def test_the_message_groups_the_reasons():
    report = fallbacks.FallbackReport("SM3")
    variables = [tf.Variable(0.0) for _ in range(4)]
    for variable, reason in zip(variables, ["reason one", "reason one", "reason two", None]):
        report.record(variable, reason)
    report.record(variables[0], "reason one")  # the same variable again: counted once
    message = report.message()
    assert "3 of 4 variables" in message
    assert "2 because reason one; 1 because reason two" in message
