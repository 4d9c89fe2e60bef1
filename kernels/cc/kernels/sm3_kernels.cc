/* CPU kernels of Sm3ResourceApplyDense and Sm3ResourceApplySparse (ops in ../ops/sm3_ops.cc).

Each op checks its inputs, locks the variables (step_state.h) and runs the step in the compute
type: double for float64 parameters, float for every other type.
*/
#define EIGEN_USE_THREADS

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dense_step.h"
#include "sparse_step.h"
#include "step_state.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tiling.h"

namespace sm3 {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;

class Sm3ResourceApplyDenseOp : public OpKernel {
 public:
  explicit Sm3ResourceApplyDenseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, StepAttributes::Read(ctx, &attributes_));
  }

  void Compute(OpKernelContext* ctx) override {
    StepState state;
    OP_REQUIRES_OK(ctx, AcquireStepState(ctx, /*sparse=*/false, attributes_.use_locking, &state));
    const Tensor* grad = nullptr;
    OP_REQUIRES_OK(ctx, ctx->input("grad", &grad));
    OP_REQUIRES(ctx, grad->shape() == state.var->shape(),
                absl::InvalidArgumentError(absl::StrCat(
                    "`grad` must have the shape of `var` ", state.var->shape().DebugString(),
                    ", got ", grad->shape().DebugString(), ".")));
    const Workers workers(ctx);
    const TypedArray grad_array = TypedArray::Of(*grad);
    if (state.compute_dtype == tensorflow::DT_DOUBLE) {
      OP_REQUIRES_OK(ctx, DenseStep<double>(ctx, workers, state, grad_array,
                                            attributes_.variant_one));
    } else {
      OP_REQUIRES_OK(ctx, DenseStep<float>(ctx, workers, state, grad_array,
                                           attributes_.variant_one));
    }
  }

 private:
  StepAttributes attributes_;
};

// Reads `indices` as int64 rows, checking they are in range and unique: two tasks updating the
// same row would race, so duplicates must be summed before the op (fused_step.py does).
template <typename Index>
absl::Status ReadRows(const Tensor& indices, int64_t num_rows, std::vector<int64_t>* rows) {
  const auto flat = indices.flat<Index>();
  rows->reserve(flat.size());
  for (int64_t i = 0; i < flat.size(); ++i) {
    const int64_t row = static_cast<int64_t>(flat(i));
    if (row < 0 || row >= num_rows) {
      return absl::InvalidArgumentError(absl::StrCat("`indices[", i, "]` = ", row,
                                                     " is not in [0, ", num_rows, ")."));
    }
    rows->push_back(row);
  }
  std::vector<int64_t> sorted = *rows;
  std::sort(sorted.begin(), sorted.end());
  const auto repeated = std::adjacent_find(sorted.begin(), sorted.end());
  if (repeated != sorted.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`indices` must be unique (sum the rows of duplicate indices first); ", *repeated,
        " appears more than once."));
  }
  return absl::OkStatus();
}

// `var` has rank >= 1 here (AcquireStepState checks it for sparse steps).
absl::Status CheckSparseShapes(const Tensor& var, const Tensor& values, const Tensor& indices) {
  if (indices.dims() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("`indices` must be a vector, got shape ",
                                                   indices.shape().DebugString(), "."));
  }
  tensorflow::TensorShape wanted = var.shape();
  wanted.set_dim(0, indices.dim_size(0));
  if (values.shape() != wanted) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`values` must have shape ", wanted.DebugString(), " ([len(indices)] + var.shape[1:]), got ",
        values.shape().DebugString(), "."));
  }
  return absl::OkStatus();
}

class Sm3ResourceApplySparseOp : public OpKernel {
 public:
  explicit Sm3ResourceApplySparseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, StepAttributes::Read(ctx, &attributes_));
  }

  void Compute(OpKernelContext* ctx) override {
    StepState state;
    OP_REQUIRES_OK(ctx, AcquireStepState(ctx, /*sparse=*/true, attributes_.use_locking, &state));
    const Tensor* values = nullptr;
    const Tensor* indices = nullptr;
    OP_REQUIRES_OK(ctx, ctx->input("values", &values));
    OP_REQUIRES_OK(ctx, ctx->input("indices", &indices));
    OP_REQUIRES_OK(ctx, CheckSparseShapes(*state.var, *values, *indices));
    std::vector<int64_t> rows;
    const int64_t num_rows = state.var->dim_size(0);
    if (indices->dtype() == tensorflow::DT_INT32) {
      OP_REQUIRES_OK(ctx, ReadRows<int32_t>(*indices, num_rows, &rows));
    } else {
      OP_REQUIRES_OK(ctx, ReadRows<int64_t>(*indices, num_rows, &rows));
    }
    const Workers workers(ctx);
    const TypedArray values_array = TypedArray::Of(*values);
    if (state.compute_dtype == tensorflow::DT_DOUBLE) {
      SparseStep<double>(workers, state, values_array, rows, attributes_.variant_one);
    } else {
      SparseStep<float>(workers, state, values_array, rows, attributes_.variant_one);
    }
  }

 private:
  StepAttributes attributes_;
};

REGISTER_KERNEL_BUILDER(Name("Sm3>ResourceApplyDense").Device(tensorflow::DEVICE_CPU),
                        Sm3ResourceApplyDenseOp);
REGISTER_KERNEL_BUILDER(Name("Sm3>ResourceApplySparse").Device(tensorflow::DEVICE_CPU),
                        Sm3ResourceApplySparseOp);

}  // namespace
}  // namespace sm3
