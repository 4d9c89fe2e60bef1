/* The dense SM3 step: tiles, partial maxima and their reduction (see dense_step.h). */
#define EIGEN_USE_THREADS

#include "dense_step.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"
#include "loops.h"
#include "scalar_math.h"

namespace sm3 {
namespace {

using tensorflow::OpKernelContext;

template <typename C>
constexpr C kMinusInfinity = -std::numeric_limits<C>::infinity();
template <typename C>
constexpr C kPlusInfinity = std::numeric_limits<C>::infinity();

// Per-tile partial maxima of a rows x cols view of a rank-p parameter.
//
// The last axis gets one array of `cols` per row block (the column blocks of a row block write
// disjoint columns of it). Axes 0..p-2 get one array per tile; a tile's rows cover a contiguous
// range of axis-0 indices, so its axis-0 array only spans that range.
template <typename C>
class TilePartials {
 public:
  absl::Status Allocate(OpKernelContext* ctx, const TilePlan& plan,
                        const std::vector<int64_t>& dims) {
    plan_ = plan;
    dims_ = dims;
    const int rank = static_cast<int>(dims.size());
    const int64_t rows_per_index0 = plan.rows / dims[0];
    int64_t other_outer = 0;  // axes 1..p-2
    for (int axis = 1; axis < rank - 1; ++axis) other_outer += dims[axis];
    int64_t total = plan.row_blocks * plan.cols;
    for (int64_t tile = 0; tile < plan.num_tiles(); ++tile) {
      const int64_t block = tile / plan.col_blocks;
      const int64_t first = plan.row_begin(block) / rows_per_index0;
      const int64_t last = (plan.row_begin(block + 1) - 1) / rows_per_index0;
      first_index0_.push_back(first);
      index0_count_.push_back(last - first + 1);
      tile_offset_.push_back(total);
      total += last - first + 1 + other_outer;
    }
    TF_RETURN_IF_ERROR(ctx->allocate_temp(tensorflow::DataTypeToEnum<C>::value,
                                          tensorflow::TensorShape({total}), &storage_));
    data_ = storage_.flat<C>().data();
    std::fill(data_, data_ + total, kMinusInfinity<C>);
    return absl::OkStatus();
  }

  C* column(int64_t row_block) { return data_ + row_block * plan_.cols; }

  // Folds a row's maximum into the tile's maxima of every axis but the last.
  void Fold(int64_t tile, const RowCursor& cursor, C row_max) {
    C* axis_data = data_ + tile_offset_[tile];
    C& slot0 = axis_data[cursor[0] - first_index0_[tile]];
    slot0 = MaxOf(slot0, row_max);
    axis_data += index0_count_[tile];
    for (int axis = 1; axis < cursor.size(); ++axis) {
      C& slot = axis_data[cursor[axis]];
      slot = MaxOf(slot, row_max);
      axis_data += dims_[axis];
    }
  }

  // Writes the maxima over all tiles into `out[axis]` (d_axis entries each).
  void Reduce(const std::vector<C*>& out) const {
    const int rank = static_cast<int>(dims_.size());
    for (int axis = 0; axis < rank; ++axis) {
      std::fill(out[axis], out[axis] + dims_[axis], kMinusInfinity<C>);
    }
    C* last = out[rank - 1];
    for (int64_t block = 0; block < plan_.row_blocks; ++block) {
      const C* column_max = data_ + block * plan_.cols;
      for (int64_t j = 0; j < plan_.cols; ++j) last[j] = MaxOf(last[j], column_max[j]);
    }
    for (int64_t tile = 0; tile < plan_.num_tiles(); ++tile) {
      const C* axis_data = data_ + tile_offset_[tile];
      for (int64_t i = 0; i < index0_count_[tile]; ++i) {
        C& slot = out[0][first_index0_[tile] + i];
        slot = MaxOf(slot, axis_data[i]);
      }
      axis_data += index0_count_[tile];
      for (int axis = 1; axis < rank - 1; ++axis) {
        for (int64_t i = 0; i < dims_[axis]; ++i) out[axis][i] = MaxOf(out[axis][i], axis_data[i]);
        axis_data += dims_[axis];
      }
    }
  }

 private:
  TilePlan plan_;
  std::vector<int64_t> dims_;
  std::vector<int64_t> first_index0_, index0_count_, tile_offset_;
  tensorflow::Tensor storage_;
  C* data_ = nullptr;
};

// Where one tile sits in the rows x cols view.
struct TileBounds {
  int64_t row_block, row_begin, row_end, col_begin, col_end;

  static TileBounds Of(const TilePlan& plan, int64_t tile) {
    const int64_t row_block = tile / plan.col_blocks;
    const int64_t col_block = tile % plan.col_blocks;
    return {row_block, plan.row_begin(row_block), plan.row_begin(row_block + 1),
            plan.col_begin(col_block), plan.col_begin(col_block + 1)};
  }
};

// min over the covers of axes 0..p-2 at the row's indices.
template <typename C>
C RowMin(const std::vector<C*>& covers, const RowCursor& cursor) {
  C smallest = kPlusInfinity<C>;
  for (int axis = 0; axis < cursor.size(); ++axis) {
    smallest = MinOf(smallest, covers[axis][cursor[axis]]);
  }
  return smallest;
}

std::vector<int64_t> OuterDims(const std::vector<int64_t>& dims) {
  return std::vector<int64_t>(dims.begin(), dims.end() - 1);
}

template <typename C>
absl::Status FactoredII(OpKernelContext* ctx, const Workers& workers, const StepState& state,
                        const TypedArray& grad) {
  const std::vector<int64_t> dims = state.dims();
  const int64_t cols = dims.back();
  const TilePlan plan = PlanTiles(state.var->NumElements() / cols, cols, workers.num_threads());
  TilePartials<C> partials;
  TF_RETURN_IF_ERROR(partials.Allocate(ctx, plan, dims));
  const std::vector<C*> covers = state.cover_arrays<C>();
  const C* last_cover = covers.back();
  const StepParams<C> params = state.params<C>();
  const LoopTable<C>& loops = Loops<C>();
  const TypedArray weight = state.weight_array(), buffer = state.buffer_array();
  workers.ForEachUnit(plan.num_tiles(), [&](int64_t tile) {
    const TileBounds t = TileBounds::Of(plan, tile);
    C* column_max = partials.column(t.row_block);
    RowCursor cursor(OuterDims(dims), t.row_begin);
    for (int64_t row = t.row_begin; row < t.row_end; ++row, cursor.Next()) {
      const C row_min = RowMin(covers, cursor);
      const int64_t offset = row * cols + t.col_begin;
      C row_max = kMinusInfinity<C>;
      ForEachRun<C>(grad, offset, weight, buffer, offset, t.col_end - t.col_begin,
                    [&](const Run<C>& run, int64_t done) {
                      const int64_t col = t.col_begin + done;
                      row_max = MaxOf(row_max, loops.covered_ii(params, run, last_cover + col,
                                                                row_min, column_max + col));
                    });
      partials.Fold(tile, cursor, row_max);
    }
  });
  // Every read of the old covers is done: the maxima of nu become the new covers.
  partials.Reduce(covers);
  return absl::OkStatus();
}

template <typename C>
absl::Status FactoredI(OpKernelContext* ctx, const Workers& workers, const StepState& state,
                       const TypedArray& grad) {
  const std::vector<int64_t> dims = state.dims();
  const int64_t cols = dims.back();
  const TilePlan plan = PlanTiles(state.var->NumElements() / cols, cols, workers.num_threads());
  TilePartials<C> partials;
  TF_RETURN_IF_ERROR(partials.Allocate(ctx, plan, dims));
  const LoopTable<C>& loops = Loops<C>();
  // Pass 1 reads g only: the maxima of g^2 over every axis but one.
  workers.ForEachUnit(plan.num_tiles(), [&](int64_t tile) {
    const TileBounds t = TileBounds::Of(plan, tile);
    C* column_max = partials.column(t.row_block);
    RowCursor cursor(OuterDims(dims), t.row_begin);
    for (int64_t row = t.row_begin; row < t.row_end; ++row, cursor.Next()) {
      C row_max = kMinusInfinity<C>;
      ForEachGradChunk<C>(grad, row * cols + t.col_begin, t.col_end - t.col_begin,
                          [&](const C* g, int64_t size, int64_t done) {
                            row_max = MaxOf(row_max,
                                            loops.square_max(g, size, column_max + t.col_begin + done));
                          });
      partials.Fold(tile, cursor, row_max);
    }
  });
  int64_t cover_total = 0;
  for (int64_t d : dims) cover_total += d;
  tensorflow::Tensor maxima_storage;
  TF_RETURN_IF_ERROR(ctx->allocate_temp(tensorflow::DataTypeToEnum<C>::value,
                                        tensorflow::TensorShape({cover_total}), &maxima_storage));
  std::vector<C*> maxima;
  for (size_t axis = 0, offset = 0; axis < dims.size(); offset += dims[axis], ++axis) {
    maxima.push_back(maxima_storage.flat<C>().data() + offset);
  }
  partials.Reduce(maxima);
  const std::vector<C*> covers = state.cover_arrays<C>();
  const StepParams<C> params = state.params<C>();
  for (size_t axis = 0; axis < dims.size(); ++axis) {
    for (int64_t i = 0; i < dims[axis]; ++i) {
      const C past = params.decays ? params.beta_2 * covers[axis][i] : covers[axis][i];
      covers[axis][i] = past + params.new_weight * maxima[axis][i];
    }
  }
  // Pass 2: nu = min of the new covers.
  const C* last_cover = covers.back();
  const TypedArray weight = state.weight_array(), buffer = state.buffer_array();
  workers.ForEachUnit(plan.num_tiles(), [&](int64_t tile) {
    const TileBounds t = TileBounds::Of(plan, tile);
    RowCursor cursor(OuterDims(dims), t.row_begin);
    for (int64_t row = t.row_begin; row < t.row_end; ++row, cursor.Next()) {
      const C row_min = RowMin(covers, cursor);
      const int64_t offset = row * cols + t.col_begin;
      ForEachRun<C>(grad, offset, weight, buffer, offset, t.col_end - t.col_begin,
                    [&](const Run<C>& run, int64_t done) {
                      loops.covered_i(params, run, last_cover + t.col_begin + done, row_min);
                    });
    }
  });
  return absl::OkStatus();
}

template <typename C>
absl::Status DiagonalStep(const Workers& workers, const StepState& state, const TypedArray& grad) {
  const int64_t n = state.var->NumElements();
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(n / kMinTileElements, kTilesPerThread * workers.num_threads()));
  C* acc = state.cover_arrays<C>()[0];
  const LoopTable<C>& loops = Loops<C>();
  const StepParams<C> params = state.params<C>();
  const TypedArray weight = state.weight_array(), buffer = state.buffer_array();
  workers.ForEachUnit(chunks, [&](int64_t chunk) {
    const int64_t begin = n * chunk / chunks, end = n * (chunk + 1) / chunks;
    ForEachRun<C>(grad, begin, weight, buffer, begin, end - begin,
                  [&](const Run<C>& run, int64_t done) {
                    loops.diagonal(params, run, acc + begin + done);
                  });
  });
  return absl::OkStatus();
}

}  // namespace

template <typename C>
absl::Status DenseStep(OpKernelContext* ctx, const Workers& workers, const StepState& state,
                       const TypedArray& grad, bool variant_one) {
  // An empty parameter has nothing to update; its covers keep their values.
  if (state.var->NumElements() == 0) return absl::OkStatus();
  if (state.var->dims() < 2) return DiagonalStep<C>(workers, state, grad);
  return variant_one ? FactoredI<C>(ctx, workers, state, grad)
                     : FactoredII<C>(ctx, workers, state, grad);
}

template absl::Status DenseStep<float>(OpKernelContext*, const Workers&, const StepState&,
                                       const TypedArray&, bool);
template absl::Status DenseStep<double>(OpKernelContext*, const Workers&, const StepState&,
                                        const TypedArray&, bool);

}  // namespace sm3
