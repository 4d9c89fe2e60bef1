/* The dense step of a parameter with at least two axes longer than 1 (see dense_step.h).

The parameter is seen as rows x cols, cols its last axis longer than 1. Axes of size 1 are left
out of that view: their one-entry covers are shared by every element ("scalar covers"), so they
enter nu as one constant and take the maximum over the whole parameter. A (d, 1, e) parameter
therefore streams like a (d, e) matrix, and (d, 1) is handled element-wise by dense_step.cc.

SM3-II: one parallel pass over the tiles; each element's nu comes from the old covers, the weight
and buffer are updated, and nu is folded into per-tile partial maxima (tile_partials.h), reduced
into the new covers after the pass.
SM3-I: a read-only pass over g takes the maxima of g^2, the covers are updated, then one pass
updates the weight and buffer with nu = min of the new covers.
Rows narrower than kNarrowColumns are processed a few hundred elements at a time: the covers'
minima are staged per element and nu's maxima folded from a staged copy, so the per-row cost of
a loop call is paid once per chunk.
*/
#ifndef SM3_TF_KERNELS_FACTORED_STEP_H_
#define SM3_TF_KERNELS_FACTORED_STEP_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "staging.h"
#include "step_state.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tiling.h"

namespace sm3 {

// Rows narrower than this go through the chunked path: below it, the per-row cost of a loop call
// (padded tail, weight lag, reductions; about 100 ns) outweighs staging the covers per element.
constexpr int64_t kNarrowColumns = 64;

// The covers of a rank >= 2 parameter as the dense step lays them out.
template <typename C>
struct CoverLayout {
  std::vector<int64_t> dims;      // the axes longer than 1 (the last axis when none is)
  std::vector<C*> covers;         // their covers, d_i entries each
  std::vector<C*> scalar_covers;  // the one-entry covers of the other axes

  static CoverLayout Of(const StepState& state);
  // The minimum of the scalar covers (+inf when there are none).
  C ScalarMin() const;
};

// One dense step of a parameter whose layout has at least two axes.
template <typename C>
absl::Status FactoredStep(tensorflow::OpKernelContext* ctx, const Workers& workers,
                          const StepState& state, const TypedArray& grad,
                          const CoverLayout<C>& layout, bool variant_one);

}  // namespace sm3

#endif  // SM3_TF_KERNELS_FACTORED_STEP_H_
