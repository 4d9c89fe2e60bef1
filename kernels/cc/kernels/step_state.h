/* What the dense and the sparse SM3 kernels share: the variables of one step, locked and checked.

`AcquireStepState` locks the parameter, its covers and its momentum buffer, checks their shapes
and dtypes against each other (errors name the op argument), and reads the four scalar
hyper-parameters. The checks happen before anything is written, so a bad call changes nothing.
*/
#ifndef SM3_TF_KERNELS_STEP_STATE_H_
#define SM3_TF_KERNELS_STEP_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "scalar_math.h"
#include "staging.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "variable_access.h"

namespace sm3 {

// Attributes common to both ops.
struct StepAttributes {
  bool variant_one = false;  // "I"; else "II"
  bool use_locking = false;

  // Reads `sm3_variant` and `use_locking`, failing the construction on an unknown variant.
  static absl::Status Read(tensorflow::OpKernelConstruction* ctx, StepAttributes* attributes);
};

// The locked, checked state of one step.
struct StepState {
  LockedVariables locked;
  tensorflow::Tensor* var = nullptr;
  std::vector<tensorflow::Tensor*> covers;
  tensorflow::Tensor* buffer = nullptr;  // nullptr without momentum
  tensorflow::DataType compute_dtype = tensorflow::DT_FLOAT;
  double lr = 0, momentum = 0, beta_2 = 1, epsilon = 0;

  std::vector<int64_t> dims() const;
  TypedArray weight_array() const { return TypedArray::Of(*var); }
  TypedArray buffer_array() const { return buffer ? TypedArray::Of(*buffer) : TypedArray{}; }

  // The covers as compute-type arrays (checked to be of compute_dtype).
  template <typename C>
  std::vector<C*> cover_arrays() const {
    std::vector<C*> arrays;
    for (tensorflow::Tensor* cover : covers) arrays.push_back(cover->flat<C>().data());
    return arrays;
  }

  template <typename C>
  StepParams<C> params() const {
    return MakeStepParams<C>(lr, momentum, beta_2, epsilon, buffer != nullptr);
  }
};

// Locks and checks the op's `var`, `accumulators` (sparse: `row_accumulator`, the axis-0 cover)
// and `momentum_buffer` inputs and reads `lr`, `momentum`, `beta_2`, `epsilon`. `sparse` selects
// TF's sparse locking (see variable_access.h).
absl::Status AcquireStepState(tensorflow::OpKernelContext* ctx, bool sparse, bool use_locking,
                              StepState* state);

}  // namespace sm3

#endif  // SM3_TF_KERNELS_STEP_STATE_H_
