/* Per-tile partial maxima of nu (or g^2) for the dense step, and where a tile sits.

Tiles run in parallel and each must find the maxima of its elements over every axis but one
without touching another tile's. The last axis gets one array of `cols` per row block (the column
blocks of a row block write disjoint columns of it); axes 0..p-2 get one array per tile, the
axis-0 one spanning only the tile's rows. Reduce() combines them once every tile is done. Maxima
are exact, so the result does not depend on the tiling (1 and 7 threads agree bit for bit).
*/
#ifndef SM3_TF_KERNELS_TILE_PARTIALS_H_
#define SM3_TF_KERNELS_TILE_PARTIALS_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "scalar_math.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"
#include "tiling.h"

namespace sm3 {

// Per-tile partial maxima of a rows x cols view of a rank-p parameter (see the file comment); a
// tile's rows cover a contiguous range of axis-0 indices, so its axis-0 array only spans that range.
template <typename C>
class TilePartials {
 public:
  absl::Status Allocate(tensorflow::OpKernelContext* ctx, const TilePlan& plan,
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

}  // namespace sm3

#endif  // SM3_TF_KERNELS_TILE_PARTIALS_H_
