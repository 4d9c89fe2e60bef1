/* The data of one SM3 step as the SIMD loops see it: hyper-parameters and a contiguous run.

Plain structs only: this header is included by the per-instruction-set loop files, which must
not share any inline function or template instantiation with the rest of the library (the
linker would be free to pick an AVX-512 copy for a CPU without it).
*/
#ifndef SM3_TF_KERNELS_STEP_PARAMS_H_
#define SM3_TF_KERNELS_STEP_PARAMS_H_

#include <cstdint>

namespace sm3 {

// Whether SM3-II's loops run the weight stream behind the others (loop_templates.h, WeightLag):
// where a buffer of the weights' type sits near them (kAuto, WeightsNeedLag), or always / never
// ($SM3_TF_WEIGHT_LAG=always|never: the tests run both ways; the results are the same).
enum class WeightLagMode { kAuto, kAlways, kNever };

// The hyper-parameters of one step in the compute type C (float or double); see scalar_math.h.
template <typename C>
struct StepParams {
  C lr;
  C momentum;
  C one_minus_momentum;  // computed in C, as tf_step does with (1.0 - momentum) on a C tensor
  C beta_2;
  C new_weight;  // weight of the new g^2: 1 for running sums, else 1 - beta_2 (rounded once to C)
  C epsilon;
  bool decays;        // beta_2 != 1: the past is multiplied by beta_2
  bool has_momentum;  // a momentum buffer is read and written
  WeightLagMode weight_lag = WeightLagMode::kAuto;
};

// How a run's momentum buffer is stored. The loops read and write it in that type and compute in
// C; bfloat16 is rounded to nearest even (as Eigen and tf.cast do) when stored.
enum class BufferType { kNone, kCompute, kBfloat16 };

// One contiguous run of the step's parameter-sized data: gradient and weight in the compute type,
// the momentum buffer as `buffer_type` says (nullptr for kNone).
template <typename C>
struct Run {
  const C* grad;
  C* weight;
  void* buffer;
  int64_t size;
  BufferType buffer_type;
};

}  // namespace sm3

#endif  // SM3_TF_KERNELS_STEP_PARAMS_H_
