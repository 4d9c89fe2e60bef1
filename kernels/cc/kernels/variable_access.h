/* Locking and in-place access to the resource variables of one SM3 step.

Mirrors TF's own training ops (training_op_helpers.h, used by ResourceApplyAdagrad and
ResourceSparseApplyAdagrad): mutexes are taken in address order so two steps sharing variables
cannot deadlock; a dense step holds them exclusively and first makes each buffer unshared (copying
it only if a reader still holds it); a sparse step puts the variables it writes in copy-on-read
mode and, unless `use_locking`, holds shared locks (TF's lock-free sparse updates).

TF's helpers are templated on one element type for all the variables; an SM3 step mixes types
(a bfloat16 weight, float32 covers, a bfloat16 buffer), so the type-dependent calls are dispatched
per variable here.
*/
#ifndef SM3_TF_KERNELS_VARIABLE_ACCESS_H_
#define SM3_TF_KERNELS_VARIABLE_ACCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tsl/platform/mutex.h"

namespace sm3 {

// One resource input of the op: its position in the flat input list and the name used in errors.
struct VariableInput {
  int index;
  std::string name;
};

// Holds the locks and references of a step's variables until destroyed.
class LockedVariables {
 public:
  LockedVariables() = default;
  LockedVariables(const LockedVariables&) = delete;
  LockedVariables& operator=(const LockedVariables&) = delete;
  ~LockedVariables();

  // Looks the variables up, locks them and fetches their tensors (in `inputs` order), ready for
  // in-place updates. Fails with InvalidArgument/FailedPrecondition naming the input.
  absl::Status Acquire(tensorflow::OpKernelContext* ctx, const std::vector<VariableInput>& inputs,
                       bool sparse, bool use_locking);

  // The tensor of the i-th input given to Acquire; writes go to the variable's buffer.
  tensorflow::Tensor& tensor(int i) { return tensors_[i]; }

 private:
  std::vector<tensorflow::Var*> vars_;
  std::unique_ptr<std::vector<tsl::mutex_lock>> exclusive_;
  std::unique_ptr<std::vector<tsl::tf_shared_lock>> shared_;
  std::vector<tensorflow::Tensor> tensors_;
};

}  // namespace sm3

#endif  // SM3_TF_KERNELS_VARIABLE_ACCESS_H_
