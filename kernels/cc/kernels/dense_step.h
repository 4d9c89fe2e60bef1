/* The dense SM3 step on locked, checked state: one pass over the parameter-sized data.

Axes of size 1 have one-entry covers that every element shares; the step lays them aside
(factored_step.h), so what it streams depends on the axes longer than 1:
- none or one (rank 0/1, and shapes like (d, 1) or (1, 1, d)): element-wise covers, diagonal
  Adagrad capped by the one-entry covers, one pass (dense_step.cc);
- two or more: rows x cols tiles with per-tile partial maxima (factored_step.cc): SM3-II in one
  pass, SM3-I in a read-only pass over g and one update pass.
Scratch memory is O(tiles * sum of the dims) of partial maxima, never parameter-sized.
*/
#ifndef SM3_TF_KERNELS_DENSE_STEP_H_
#define SM3_TF_KERNELS_DENSE_STEP_H_

#include "absl/status/status.h"
#include "staging.h"
#include "step_state.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tiling.h"

namespace sm3 {

// Applies one dense step with gradient `grad` (any supported float type, the parameter's shape)
// to `state`, computing in C (float for float16/bfloat16/float32 parameters, double for float64).
template <typename C>
absl::Status DenseStep(tensorflow::OpKernelContext* ctx, const Workers& workers,
                       const StepState& state, const TypedArray& grad, bool variant_one);

}  // namespace sm3

#endif  // SM3_TF_KERNELS_DENSE_STEP_H_
