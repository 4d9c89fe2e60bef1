"""The kernels' approximate and rounding arithmetic over its whole range, on every instruction set.

p = g * rsqrt(nu) uses a hardware estimate (rsqrt14 on AVX-512, rsqrtps on SSE2/AVX, a division on
the portable loops) refined by one Newton step, fused multiply-adds on AVX-512. The other kernel
tests use gradients of order one; here nu spans float32's normal range and p must stay within
1e-5 of the float64 reference element by element. The SIMD loops also round a bfloat16 momentum
buffer in registers: its bits must be those of tf.cast (Eigen: nearest, ties to even; NaN stays
NaN).
"""

import kernel_test_support as support
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from sm3_reference import SM3Reference

from sm3_tf import fused_step, kernel_loader, tf_step
from sm3_tf.step_config import StepConfig

ISAS = ["portable", "sse2", "avx", "avx512"]
SIZE = 4099  # leaves a partial packet on every instruction set


@pytest.fixture(scope="module", autouse=True)
def kernels():
    support.require_kernels()


def use_isa(isa, monkeypatch):
    monkeypatch.setenv("SM3_TF_KERNEL_ISA", isa)
    active = kernel_loader.ops().sm3_kernel_isa().numpy().decode()
    if active != isa:
        pytest.skip(f"this CPU or build has no {isa} loops (running {active})")


@pytest.mark.parametrize("isa", ISAS)
def test_preconditioner_over_the_float32_range(isa, monkeypatch):
    """nu from 1e-37 to 1e38: each p = g / sqrt(nu) within 1e-5 of float64."""
    use_isa(isa, monkeypatch)
    rng = np.random.default_rng(7)
    # Old covers log-uniform over float32's normal range, with both ends pinned; |g| is 0.5 to 2
    # times sqrt(cover), so g^2 stays a normal number and nu = cover + g^2 below 1.3e38.
    covers = 10.0 ** rng.uniform(-37.0, 37.4, SIZE)
    covers[:4] = [1e-37, 2e-37, 1e37, 2.5e37]
    covers = covers.astype(np.float32)
    magnitude = rng.uniform(0.5, 2.0, SIZE) * rng.choice([-1.0, 1.0], SIZE)
    g = (magnitude * np.sqrt(covers.astype(np.float64))).astype(np.float32)
    var = tf.Variable(np.zeros(SIZE, np.float32))
    accumulator = tf.Variable(covers)
    fused_step.dense_update(var, tf.constant(g), [accumulator], None, 1.0, StepConfig("II", 0.0))
    reference = SM3Reference((SIZE,), "II")
    reference.accumulators = [covers.astype(np.float64)]
    expected = reference.step(np.zeros(SIZE), g, 1.0)  # -p, rounded to float32
    error = np.abs(var.numpy() - expected) / np.abs(expected)
    assert error.max() <= 1e-5, (isa, float(error.max()), covers[error.argmax()])


def test_denormal_nu_takes_the_tf_ops_path_value():
    """g^2 below float32's normal range: TF flushes it, so both paths take nu = 0 and p = 0."""
    g = np.full(SIZE, 3e-20, np.float32) * np.random.default_rng(1).choice([-1, 1], SIZE)
    results = []
    for module in (fused_step, tf_step):
        var = tf.Variable(np.ones(SIZE, np.float32))
        accumulator = tf.Variable(np.zeros(SIZE, np.float32))
        module.dense_update(var, tf.constant(g), [accumulator], None, 1.0, StepConfig("II", 0.0))
        results.append(var.numpy())
    np.testing.assert_array_equal(results[0], results[1])


def _bfloat16_patterns(rng, size):
    """Random bfloat16 values of every exponent (no subnormals), with NaN, infinities and zeros."""
    bits = rng.integers(0, 2**16, size, dtype=np.uint32).astype(np.uint16)
    exponent = (bits >> 7) & 0xFF
    bits = np.where((exponent == 0) & ((bits & 0x7F) != 0), bits | 0x0080, bits)  # no subnormals
    bits[:6] = [0x7FC0, 0xFFC1, 0x7F80, 0xFF80, 0x0000, 0x8000]
    return bits.view(ml_dtypes.bfloat16)


# buf = m * buf for a bfloat16 buf (8 significant bits): with m = 257/512 a power of two gives
# an exact tie whose lower neighbour is even, with m = 259/512 one whose lower neighbour is odd;
# 0.9 leaves ordinary roundings.
MOMENTA = [257 / 512, 259 / 512, 0.9]


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("isa", ISAS)
def test_bfloat16_buffer_rounds_like_tf_cast(isa, momentum, monkeypatch):
    use_isa(isa, monkeypatch)
    buffer0 = _bfloat16_patterns(np.random.default_rng(11), 20011)
    size = buffer0.size
    var = tf.Variable(np.zeros(size, np.float32))
    buffer = tf.Variable(tf.constant(buffer0, tf.bfloat16))
    accumulator = tf.Variable(np.zeros(size, np.float32))
    config = StepConfig("II", momentum)
    fused_step.dense_update(var, tf.zeros(size), [accumulator], buffer, 0.0, config)
    product = tf.constant(momentum, tf.float32) * tf.cast(tf.constant(buffer0), tf.float32)
    expected = tf.cast(product + tf.constant(1 - momentum, tf.float32) * 0.0, tf.bfloat16)
    actual, expected = buffer.numpy(), expected.numpy()
    # Every value must be tf.cast's exactly. Signs carry no meaning on a NaN (TF's vectorized
    # cast drops it, Eigen's scalar one and the kernels keep it) nor on a zero (an underflowing
    # negative product is -0 after AVX-512's fused multiply-add, +0 after a multiply and an add).
    actual, expected = actual.astype(np.float32), expected.astype(np.float32)
    nan = np.isnan(expected)
    assert np.isnan(actual[nan]).all()
    np.testing.assert_array_equal(actual[~nan], expected[~nan])
    if momentum != 0.9:
        ties = (product.numpy().view(np.uint32) & 0xFFFF) == 0x8000
        assert ties.sum() > 20, "the data must exercise ties to even"
