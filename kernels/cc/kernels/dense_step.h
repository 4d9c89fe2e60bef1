/* The dense SM3 step on locked, checked state: one pass over the parameter-sized data.

SM3-II (rank >= 2), one parallel pass over the tiles: each element's nu comes from the old covers,
p/momentum/weight are updated in place, and nu is folded into per-tile partial maxima (per row
block for the last axis, per tile for the others). After the pass, and so after every read of the
old covers, the partials are reduced into the new covers.
SM3-I (rank >= 2): a read-only pass over g takes the per-axis maxima of g^2, the covers are
updated, then one pass updates p/momentum/weight with nu = min of the new covers.
Rank 0/1: elementwise diagonal Adagrad, both variants.
The partial maxima are the only scratch memory: O(tiles * sum of the dims), never parameter-sized.
*/
#ifndef SM3_TF_KERNELS_DENSE_STEP_H_
#define SM3_TF_KERNELS_DENSE_STEP_H_

#include "absl/status/status.h"
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
