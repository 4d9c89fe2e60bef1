/* Scalar helpers of the kernels' bookkeeping code (not the SIMD loops, see loops.h). */
#ifndef SM3_TF_KERNELS_SCALAR_MATH_H_
#define SM3_TF_KERNELS_SCALAR_MATH_H_

#include <cstdlib>
#include <cstring>
#include <limits>

#include "step_params.h"

namespace sm3 {

template <typename C>
constexpr C kMinusInfinity = -std::numeric_limits<C>::infinity();
template <typename C>
constexpr C kPlusInfinity = std::numeric_limits<C>::infinity();

// $SM3_TF_WEIGHT_LAG (see WeightLagMode); read once per pass, like SM3_TF_KERNEL_ISA.
inline WeightLagMode WeightLagModeFromEnvironment() {
  const char* mode = std::getenv("SM3_TF_WEIGHT_LAG");
  if (mode == nullptr) return WeightLagMode::kAuto;
  if (std::strcmp(mode, "always") == 0) return WeightLagMode::kAlways;
  if (std::strcmp(mode, "never") == 0) return WeightLagMode::kNever;
  return WeightLagMode::kAuto;
}

// Builds StepParams<C> from the double-precision inputs exactly as the Python side rounds them:
// tf_step converts Python floats to C when it meets a C tensor, and computes 1 - beta_2 in Python.
template <typename C>
StepParams<C> MakeStepParams(double lr, double momentum, double beta_2, double epsilon,
                             bool has_momentum) {
  StepParams<C> params;
  params.lr = static_cast<C>(lr);
  params.momentum = static_cast<C>(momentum);
  params.one_minus_momentum = C(1) - params.momentum;
  params.beta_2 = static_cast<C>(beta_2);
  params.new_weight = static_cast<C>(beta_2 == 1.0 ? 1.0 : 1.0 - beta_2);
  params.epsilon = static_cast<C>(epsilon);
  params.decays = beta_2 != 1.0;
  params.has_momentum = has_momentum;
  params.weight_lag = WeightLagModeFromEnvironment();
  return params;
}

// SM3-I's cover update from the maximum of g^2 over the cover's slice, rounded as the SIMD loops'
// DecayedPlusSquare: beta_2 * past + w_new * square_max, or past + square_max for running sums.
template <typename C>
inline C DecayedPlus(const StepParams<C>& params, C past, C square_max) {
  return (params.decays ? params.beta_2 * past : past) + params.new_weight * square_max;
}

// max and min that return NaN when either operand is NaN, like the SIMD loops, tf.maximum and
// tf.reduce_max: a NaN gradient poisons the covers on either path instead of vanishing on one.
template <typename C>
inline C MaxOf(C a, C b) { return (a != a || a > b) ? a : b; }
template <typename C>
inline C MinOf(C a, C b) { return (a != a || a < b) ? a : b; }

}  // namespace sm3

#endif  // SM3_TF_KERNELS_SCALAR_MATH_H_
