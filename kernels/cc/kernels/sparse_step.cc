/* The sparse SM3 step, one touched row at a time (see sparse_step.h). */
#define EIGEN_USE_THREADS

#include "sparse_step.h"

#include "loops.h"
#include "scalar_math.h"

namespace sm3 {
namespace {

// Updates touched row `t` of `values` into parameter row `row`, covered by `cover` = acc_0[row].
// SM3-II: nu = beta_2 * acc_0[row] + w_new * g^2, acc_0[row] = max of nu over the row.
// SM3-I:  acc_0[row] = beta_2 * acc_0[row] + w_new * max of g^2 over the row, nu = acc_0[row].
// For a rank-1 parameter the row is one element and both are diagonal Adagrad.
template <typename C>
void UpdateRow(const StepParams<C>& params, const LoopTable<C>& loops, int64_t row_size,
               const TypedArray& values, const TypedArray& weight, const TypedArray& buffer,
               int64_t t, int64_t row, bool variant_one, C& cover) {
  if (variant_one) {
    C squared_max = kMinusInfinity<C>;
    ForEachGradChunk<C>(values, t * row_size, row_size, [&](const C* g, int64_t size, int64_t) {
      squared_max = MaxOf(squared_max, loops.square_max(g, size, nullptr));
    });
    cover = (params.decays ? params.beta_2 * cover : cover) + params.new_weight * squared_max;
    ForEachRun<C>(values, t * row_size, weight, buffer, row * row_size, row_size,
                  [&](const Run<C>& run, int64_t) { loops.covered_i(params, run, nullptr, cover); });
    return;
  }
  const C old_cover = cover;
  C row_max = kMinusInfinity<C>;
  ForEachRun<C>(values, t * row_size, weight, buffer, row * row_size, row_size,
                [&](const Run<C>& run, int64_t) {
                  row_max = MaxOf(row_max, loops.covered_ii(params, run, nullptr, old_cover,
                                                            nullptr));
                });
  cover = row_max;  // only this task reads or writes this row's entry
}

}  // namespace

template <typename C>
void SparseStep(const Workers& workers, const StepState& state, const TypedArray& values,
                const std::vector<int64_t>& rows, bool variant_one) {
  if (rows.empty() || state.var->NumElements() == 0) return;
  const int64_t row_size = state.var->NumElements() / state.var->dim_size(0);
  C* row_cover = state.cover_arrays<C>()[0];
  const StepParams<C> params = state.params<C>();
  const LoopTable<C>& loops = Loops<C>();
  const TypedArray weight = state.weight_array(), buffer = state.buffer_array();
  // About 20 operations per element, for TF's cost model.
  workers.ForRange(static_cast<int64_t>(rows.size()), 20 * row_size,
                   [&](int64_t begin, int64_t end) {
                     for (int64_t t = begin; t < end; ++t) {
                       UpdateRow(params, loops, row_size, values, weight, buffer, t, rows[t],
                                 variant_one, row_cover[rows[t]]);
                     }
                   });
}

template void SparseStep<float>(const Workers&, const StepState&, const TypedArray&,
                                const std::vector<int64_t>&, bool);
template void SparseStep<double>(const Workers&, const StepState&, const TypedArray&,
                                 const std::vector<int64_t>&, bool);

}  // namespace sm3
