/* The dense SM3 step: element-wise covers here, two or more axes in factored_step.cc. */
#define EIGEN_USE_THREADS

#include "dense_step.h"

#include <algorithm>
#include <vector>

#include "factored_step.h"
#include "loops.h"
#include "scalar_math.h"

namespace sm3 {
namespace {

// Element-wise covers `acc` (one entry per element), capped by the one-entry `scalar_covers` of
// a parameter whose other axes all have size 1 (none for rank 0/1: plain diagonal Adagrad).
// SM3-II: nu = decayed min(acc, scalars) + g^2, acc = nu, scalars = max of nu. SM3-I: the
// scalars first take max g^2 (a read-only pass, only when there are any), then acc = decayed
// acc + g^2 and nu = min(acc, scalars).
template <typename C>
absl::Status DiagonalStep(const Workers& workers, const StepState& state, const TypedArray& grad,
                          C* acc, const std::vector<C*>& scalar_covers, bool variant_one) {
  const int64_t n = state.var->NumElements();
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(n / kMinTileElements, kTilesPerThread * workers.num_threads()));
  const LoopTable<C>& loops = Loops<C>();
  const StepParams<C> params = state.params<C>();
  const TypedArray weight = state.weight_array(), buffer = state.buffer_array();
  std::vector<C> chunk_max(chunks, kMinusInfinity<C>);
  auto largest = [&chunk_max]() {
    C value = kMinusInfinity<C>;
    for (C m : chunk_max) value = MaxOf(value, m);
    return value;
  };
  if (variant_one && !scalar_covers.empty()) {
    workers.ForEachUnit(chunks, [&](int64_t chunk) {
      const int64_t begin = n * chunk / chunks, end = n * (chunk + 1) / chunks;
      ForEachGradChunk<C>(grad, begin, end - begin, [&](const C* g, int64_t size, int64_t) {
        chunk_max[chunk] = MaxOf(chunk_max[chunk], loops.square_max(g, size, nullptr));
      });
    });
    const C square_max = largest();
    for (C* cover : scalar_covers) *cover = DecayedPlus(params, *cover, square_max);
    std::fill(chunk_max.begin(), chunk_max.end(), kMinusInfinity<C>);
  }
  C cap = kPlusInfinity<C>;
  for (const C* cover : scalar_covers) cap = MinOf(cap, *cover);
  workers.ForEachUnit(chunks, [&](int64_t chunk) {
    const int64_t begin = n * chunk / chunks, end = n * (chunk + 1) / chunks;
    ForEachRun<C>(grad, begin, weight, buffer, begin, end - begin,
                  [&](const Run<C>& run, int64_t done) {
                    chunk_max[chunk] = MaxOf(
                        chunk_max[chunk], loops.diagonal(params, run, acc + begin + done, cap,
                                                         variant_one));
                  });
  });
  if (!variant_one) {
    const C nu_max = largest();
    for (C* cover : scalar_covers) *cover = nu_max;
  }
  return absl::OkStatus();
}

}  // namespace

template <typename C>
absl::Status DenseStep(tensorflow::OpKernelContext* ctx, const Workers& workers,
                       const StepState& state, const TypedArray& grad, bool variant_one) {
  // An empty parameter has nothing to update; its covers keep their values.
  if (state.var->NumElements() == 0) return absl::OkStatus();
  if (state.var->dims() < 2) {
    return DiagonalStep<C>(workers, state, grad, state.cover_arrays<C>()[0], {}, variant_one);
  }
  const CoverLayout<C> layout = CoverLayout<C>::Of(state);
  if (layout.dims.size() == 1) {
    return DiagonalStep<C>(workers, state, grad, layout.covers[0], layout.scalar_covers,
                           variant_one);
  }
  return FactoredStep<C>(ctx, workers, state, grad, layout, variant_one);
}

template absl::Status DenseStep<float>(tensorflow::OpKernelContext*, const Workers&,
                                       const StepState&, const TypedArray&, bool);
template absl::Status DenseStep<double>(tensorflow::OpKernelContext*, const Workers&,
                                        const StepState&, const TypedArray&, bool);

}  // namespace sm3
