/* How a step's parameter-sized work is cut for TF's intra-op thread pool.

A rank >= 2 parameter of shape (d_0, ..., d_{p-1}) is seen as `rows` x `cols` with cols = d_{p-1}
(contiguous) and rows = d_0 * ... * d_{p-2}. Tiles are rectangles of that matrix: row blocks for
tall parameters, column blocks too when there are fewer rows than tiles (a [2, 10^6] matrix still
uses every thread). Each tile is one task; there are a few more tiles than threads so a thread
slowed by other work does not hold the step up.
*/
#ifndef SM3_TF_KERNELS_TILING_H_
#define SM3_TF_KERNELS_TILING_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "tensorflow/core/framework/op_kernel.h"

namespace sm3 {

// Below this many elements a tile costs more to schedule than to compute.
constexpr int64_t kMinTileElements = int64_t{1} << 15;
// Tiles per thread: balances load without multiplying the per-tile partial maxima.
constexpr int64_t kTilesPerThread = 4;
// Narrowest column block worth a task of its own.
constexpr int64_t kMinColumnBlock = 256;

struct TilePlan {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_blocks = 1;
  int64_t col_blocks = 1;

  int64_t num_tiles() const { return row_blocks * col_blocks; }
  int64_t row_begin(int64_t block) const { return rows * block / row_blocks; }
  int64_t col_begin(int64_t block) const { return cols * block / col_blocks; }
};

// Cuts a rows x cols parameter into tiles for `num_threads` threads.
inline TilePlan PlanTiles(int64_t rows, int64_t cols, int num_threads) {
  TilePlan plan;
  plan.rows = rows;
  plan.cols = cols;
  const int64_t wanted = std::max<int64_t>(
      1, std::min<int64_t>(rows * cols / kMinTileElements, kTilesPerThread * num_threads));
  plan.row_blocks = std::max<int64_t>(1, std::min(rows, wanted));
  const int64_t more = (wanted + plan.row_blocks - 1) / plan.row_blocks;
  plan.col_blocks = std::max<int64_t>(1, std::min(more, cols / kMinColumnBlock));
  return plan;
}

// Walks the multi-index (i_0, ..., i_{k-1}) of consecutive flattened rows, without divisions.
class RowCursor {
 public:
  // `dims` are the sizes of the axes that make up a row index; starts at flattened `row`.
  RowCursor(std::vector<int64_t> dims, int64_t row) : dims_(std::move(dims)), index_(dims_.size()) {
    for (int axis = static_cast<int>(dims_.size()) - 1; axis >= 0; --axis) {
      index_[axis] = row % dims_[axis];
      row /= dims_[axis];
    }
  }
  int64_t operator[](int axis) const { return index_[axis]; }
  int size() const { return static_cast<int>(index_.size()); }
  void Next() {
    for (int axis = static_cast<int>(dims_.size()) - 1; axis >= 0; --axis) {
      if (++index_[axis] < dims_[axis]) return;
      index_[axis] = 0;
    }
  }

 private:
  std::vector<int64_t> dims_;
  std::vector<int64_t> index_;
};

// The op's share of TF's intra-op thread pool.
class Workers {
 public:
  explicit Workers(tensorflow::OpKernelContext* ctx)
      : pool_(ctx->device()->tensorflow_cpu_worker_threads()->workers) {}

  int num_threads() const { return pool_ == nullptr ? 1 : pool_->NumThreads(); }

  // Calls fn(unit) for every unit in [0, n), each unit one task; inline when n == 1.
  void ForEachUnit(int64_t n, const std::function<void(int64_t)>& fn) const {
    if (n <= 1 || pool_ == nullptr) {
      for (int64_t unit = 0; unit < n; ++unit) fn(unit);
      return;
    }
    pool_->ParallelFor(n, Scheduling(Strategy::kFixedBlockSize, std::nullopt, 1),
                       [&fn](int64_t begin, int64_t end) {
                         for (int64_t unit = begin; unit < end; ++unit) fn(unit);
                       });
  }

  // Calls fn(begin, end) over [0, n) in blocks sized by `cost_per_unit` (TF's cost model).
  void ForRange(int64_t n, int64_t cost_per_unit,
                const std::function<void(int64_t, int64_t)>& fn) const {
    if (n <= 0) return;
    if (pool_ == nullptr || n * cost_per_unit < kMinTileElements) {
      fn(0, n);
      return;
    }
    pool_->ParallelFor(n, Scheduling(Strategy::kAdaptive, cost_per_unit, std::nullopt), fn);
  }

 private:
  // The explicit constructor: TF 2.15-2.19 headers lack SchedulingParams::Fixed / ::Adaptive.
  using Scheduling = tsl::thread::ThreadPool::SchedulingParams;
  using Strategy = tsl::thread::ThreadPool::SchedulingStrategy;

  tsl::thread::ThreadPool* pool_;
};

}  // namespace sm3

#endif  // SM3_TF_KERNELS_TILING_H_
