/* The dense step of a parameter with two or more axes longer than 1 (see factored_step.h). */
#define EIGEN_USE_THREADS

#include "factored_step.h"

#include <algorithm>
#include <vector>

#include "loops.h"
#include "scalar_math.h"
#include "tile_partials.h"

namespace sm3 {

template <typename C>
CoverLayout<C> CoverLayout<C>::Of(const StepState& state) {
  CoverLayout layout;
  const std::vector<int64_t> dims = state.dims();
  const std::vector<C*> covers = state.cover_arrays<C>();
  for (size_t axis = 0; axis < dims.size(); ++axis) {
    if (dims[axis] != 1) {
      layout.dims.push_back(dims[axis]);
      layout.covers.push_back(covers[axis]);
    } else {
      layout.scalar_covers.push_back(covers[axis]);
    }
  }
  if (layout.dims.empty()) {  // every axis has size 1: the last one stands for the element
    layout.dims.push_back(1);
    layout.covers.push_back(covers.back());
    layout.scalar_covers.pop_back();
  }
  return layout;
}

template <typename C>
C CoverLayout<C>::ScalarMin() const {
  C smallest = kPlusInfinity<C>;
  for (const C* cover : scalar_covers) smallest = MinOf(smallest, *cover);
  return smallest;
}

namespace {

// What every tile of one pass reads.
template <typename C>
struct Pass {
  TypedArray grad, weight, buffer;
  std::vector<int64_t> outer_dims;  // the layout's axes but the last: a row's multi-index
  int64_t cols;
  std::vector<C*> covers;  // the layout's covers: outer axes, then the last
  C scalar_min;
  StepParams<C> params;
  const LoopTable<C>* loops;

  Pass(const StepState& state, const TypedArray& g, const CoverLayout<C>& layout)
      : grad(g), weight(state.weight_array()), buffer(state.buffer_array()),
        outer_dims(layout.dims.begin(), layout.dims.end() - 1), cols(layout.dims.back()),
        covers(layout.covers), scalar_min(layout.ScalarMin()), params(state.params<C>()),
        loops(&Loops<C>()) {}

  const C* last_cover() const { return covers.back(); }

  // min over the covers at the row's outer indices and the scalar covers.
  C RowMin(const RowCursor& cursor) const {
    C smallest = scalar_min;
    for (int axis = 0; axis < cursor.size(); ++axis) {
      smallest = MinOf(smallest, covers[axis][cursor[axis]]);
    }
    return smallest;
  }

  // Stages min(row_min, last cover) for `rows` rows from `cursor` on (left unmoved).
  void StageSmallest(RowCursor cursor, int64_t rows, C* smallest) const {
    for (int64_t r = 0; r < rows; ++r, cursor.Next()) {
      const C row_min = RowMin(cursor);
      for (int64_t j = 0; j < cols; ++j) smallest[r * cols + j] = MinOf(row_min, last_cover()[j]);
    }
  }
};

// Rows per chunk of the narrow path.
int64_t NarrowChunkRows(int64_t cols) { return std::max<int64_t>(1, kStageSize / cols); }

// The maximum of n values, NaN-propagating, in four independent chains (a max is exact, so the
// order is free; one chain would wait on the compare of the previous element).
template <typename C>
C MaxOfArray(const C* values, int64_t n) {
  C chains[4] = {kMinusInfinity<C>, kMinusInfinity<C>, kMinusInfinity<C>, kMinusInfinity<C>};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    for (int k = 0; k < 4; ++k) chains[k] = MaxOf(chains[k], values[j + k]);
  }
  for (; j < n; ++j) chains[0] = MaxOf(chains[0], values[j]);
  return MaxOf(MaxOf(chains[0], chains[1]), MaxOf(chains[2], chains[3]));
}

// Folds `rows` staged rows of `values` (cols each) into the column maxima and the tile's
// partial maxima of the other axes, advancing `cursor` past them.
template <typename C>
void FoldStagedRows(const C* values, int64_t rows, int64_t cols, int64_t tile, C* column_max,
                    RowCursor* cursor, TilePartials<C>* partials) {
  for (int64_t r = 0; r < rows; ++r, cursor->Next()) {
    const C* row = values + r * cols;
    for (int64_t j = 0; j < cols; ++j) column_max[j] = MaxOf(column_max[j], row[j]);
    partials->Fold(tile, *cursor, MaxOfArray(row, cols));
  }
}

// SM3-II on one tile of rows at least kNarrowColumns wide, one loop call per row.
template <typename C>
void WideTileII(const Pass<C>& p, const TileBounds& t, int64_t tile, TilePartials<C>* partials) {
  C* column_max = partials->column(t.row_block) + t.col_begin;
  const C* cover = p.last_cover() + t.col_begin;
  RowCursor cursor(p.outer_dims, t.row_begin);
  for (int64_t row = t.row_begin; row < t.row_end; ++row, cursor.Next()) {
    const C row_min = p.RowMin(cursor);
    C row_max = kMinusInfinity<C>;
    const int64_t offset = row * p.cols + t.col_begin;
    ForEachRun<C>(p.grad, offset, p.weight, p.buffer, offset, t.col_end - t.col_begin,
                  [&](const Run<C>& run, int64_t done) {
                    row_max = MaxOf(row_max, p.loops->covered_ii(p.params, run, cover + done,
                                                                 row_min, column_max + done));
                  });
    partials->Fold(tile, cursor, row_max);
  }
}

// SM3-II on one tile of narrow rows (all columns): chunks of rows through one loop call each.
template <typename C>
void NarrowTileII(const Pass<C>& p, const TileBounds& t, int64_t tile, TilePartials<C>* partials) {
  C* column_max = partials->column(t.row_block);
  const int64_t chunk_rows = NarrowChunkRows(p.cols);
  alignas(64) C smallest[kStageSize];
  alignas(64) C nu[kStageSize];
  RowCursor cursor(p.outer_dims, t.row_begin);
  for (int64_t row = t.row_begin; row < t.row_end; row += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, t.row_end - row);
    const int64_t n = rows * p.cols;
    p.StageSmallest(cursor, rows, smallest);
    std::fill(nu, nu + n, kMinusInfinity<C>);  // the loop's running maxima of one element: nu
    ForEachRun<C>(p.grad, row * p.cols, p.weight, p.buffer, row * p.cols, n,
                  [&](const Run<C>& run, int64_t done) {
                    p.loops->covered_ii(p.params, run, smallest + done, kPlusInfinity<C>,
                                        nu + done);
                  });
    FoldStagedRows(nu, rows, p.cols, tile, column_max, &cursor, partials);
  }
}

// SM3-I's first pass on one tile: the maxima of g^2 per column and per row.
template <typename C>
void SquareMaxTile(const Pass<C>& p, const TileBounds& t, int64_t tile,
                   TilePartials<C>* partials) {
  C* column_max = partials->column(t.row_block) + t.col_begin;
  RowCursor cursor(p.outer_dims, t.row_begin);
  if (p.cols >= kNarrowColumns) {
    for (int64_t row = t.row_begin; row < t.row_end; ++row, cursor.Next()) {
      C row_max = kMinusInfinity<C>;
      ForEachGradChunk<C>(p.grad, row * p.cols + t.col_begin, t.col_end - t.col_begin,
                          [&](const C* g, int64_t size, int64_t done) {
                            row_max = MaxOf(row_max, p.loops->square_max(g, size,
                                                                          column_max + done));
                          });
      partials->Fold(tile, cursor, row_max);
    }
    return;
  }
  const int64_t chunk_rows = NarrowChunkRows(p.cols);
  alignas(64) C squares[kStageSize];
  for (int64_t row = t.row_begin; row < t.row_end; row += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, t.row_end - row);
    const int64_t n = rows * p.cols;
    ForEachGradChunk<C>(p.grad, row * p.cols, n, [&](const C* g, int64_t, int64_t) {
      for (int64_t i = 0; i < n; ++i) squares[i] = g[i] * g[i];
    });
    FoldStagedRows(squares, rows, p.cols, tile, column_max, &cursor, partials);
  }
}

// SM3-I's second pass on one tile: nu = min of the (already updated) covers.
template <typename C>
void UpdateTileI(const Pass<C>& p, const TileBounds& t) {
  RowCursor cursor(p.outer_dims, t.row_begin);
  if (p.cols >= kNarrowColumns) {
    for (int64_t row = t.row_begin; row < t.row_end; ++row, cursor.Next()) {
      const C row_min = p.RowMin(cursor);
      const int64_t offset = row * p.cols + t.col_begin;
      ForEachRun<C>(p.grad, offset, p.weight, p.buffer, offset, t.col_end - t.col_begin,
                    [&](const Run<C>& run, int64_t done) {
                      p.loops->covered_i(p.params, run, p.last_cover() + t.col_begin + done,
                                         row_min);
                    });
    }
    return;
  }
  const int64_t chunk_rows = NarrowChunkRows(p.cols);
  alignas(64) C smallest[kStageSize];
  for (int64_t row = t.row_begin; row < t.row_end; row += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, t.row_end - row);
    p.StageSmallest(cursor, rows, smallest);
    for (int64_t r = 0; r < rows; ++r) cursor.Next();
    ForEachRun<C>(p.grad, row * p.cols, p.weight, p.buffer, row * p.cols, rows * p.cols,
                  [&](const Run<C>& run, int64_t done) {
                    p.loops->covered_i(p.params, run, smallest + done, kPlusInfinity<C>);
                  });
  }
}

template <typename C>
absl::Status FactoredII(tensorflow::OpKernelContext* ctx, const Workers& workers,
                        const StepState& state, const TypedArray& grad,
                        const CoverLayout<C>& layout) {
  const Pass<C> pass(state, grad, layout);
  const TilePlan plan =
      PlanTiles(state.var->NumElements() / pass.cols, pass.cols, workers.num_threads());
  TilePartials<C> partials;
  TF_RETURN_IF_ERROR(partials.Allocate(ctx, plan, layout.dims));
  const bool narrow = pass.cols < kNarrowColumns;  // then plan.col_blocks == 1
  workers.ForEachUnit(plan.num_tiles(), [&](int64_t tile) {
    const TileBounds t = TileBounds::Of(plan, tile);
    narrow ? NarrowTileII(pass, t, tile, &partials) : WideTileII(pass, t, tile, &partials);
  });
  // Every read of the old covers is done: the maxima of nu become the new covers, and the
  // maximum over everything the new scalar covers.
  partials.Reduce(layout.covers);
  const C largest = MaxOfArray(layout.covers.back(), pass.cols);
  for (C* cover : layout.scalar_covers) *cover = largest;
  return absl::OkStatus();
}

template <typename C>
absl::Status FactoredI(tensorflow::OpKernelContext* ctx, const Workers& workers,
                       const StepState& state, const TypedArray& grad,
                       const CoverLayout<C>& layout) {
  const Pass<C> squares(state, grad, layout);
  const std::vector<int64_t>& dims = layout.dims;
  const TilePlan plan =
      PlanTiles(state.var->NumElements() / squares.cols, squares.cols, workers.num_threads());
  TilePartials<C> partials;
  TF_RETURN_IF_ERROR(partials.Allocate(ctx, plan, dims));
  workers.ForEachUnit(plan.num_tiles(), [&](int64_t tile) {
    SquareMaxTile(squares, TileBounds::Of(plan, tile), tile, &partials);
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
  const StepParams<C> params = state.params<C>();
  for (size_t axis = 0; axis < dims.size(); ++axis) {
    for (int64_t i = 0; i < dims[axis]; ++i) {
      layout.covers[axis][i] = DecayedPlus(params, layout.covers[axis][i], maxima[axis][i]);
    }
  }
  const C square_max = MaxOfArray(maxima.back(), squares.cols);
  for (C* cover : layout.scalar_covers) *cover = DecayedPlus(params, *cover, square_max);
  const Pass<C> update(state, grad, layout);  // reads the new scalar covers
  workers.ForEachUnit(plan.num_tiles(),
                      [&](int64_t tile) { UpdateTileI(update, TileBounds::Of(plan, tile)); });
  return absl::OkStatus();
}

}  // namespace

template <typename C>
absl::Status FactoredStep(tensorflow::OpKernelContext* ctx, const Workers& workers,
                          const StepState& state, const TypedArray& grad,
                          const CoverLayout<C>& layout, bool variant_one) {
  return variant_one ? FactoredI<C>(ctx, workers, state, grad, layout)
                     : FactoredII<C>(ctx, workers, state, grad, layout);
}

template struct CoverLayout<float>;
template struct CoverLayout<double>;
template absl::Status FactoredStep<float>(tensorflow::OpKernelContext*, const Workers&,
                                          const StepState&, const TypedArray&,
                                          const CoverLayout<float>&, bool);
template absl::Status FactoredStep<double>(tensorflow::OpKernelContext*, const Workers&,
                                           const StepState&, const TypedArray&,
                                           const CoverLayout<double>&, bool);

}  // namespace sm3
