/* The sparse SM3 step: touched rows of the weight, the axis-0 cover and the momentum buffer.

The gradient is k rows (`values`, shape [k] + var.shape[1:]) at unique axis-0 `rows`. As in the
authors' implementation the rows alone cover the touched entries (acc_0[row] stands for the min of
the covers); the covers of the other axes are neither read nor written. Each touched row is then
independent of the others, so rows are spread over the thread pool without partial maxima.
*/
#ifndef SM3_TF_KERNELS_SPARSE_STEP_H_
#define SM3_TF_KERNELS_SPARSE_STEP_H_

#include <cstdint>
#include <vector>

#include "step_state.h"
#include "tiling.h"

namespace sm3 {

// Applies one sparse step; `rows` are unique and within [0, var.dim_size(0)) (checked by caller).
// `state.covers` holds the axis-0 cover alone.
template <typename C>
void SparseStep(const Workers& workers, const StepState& state, const TypedArray& values,
                const std::vector<int64_t>& rows, bool variant_one);

}  // namespace sm3

#endif  // SM3_TF_KERNELS_SPARSE_STEP_H_
