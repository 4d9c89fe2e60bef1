/* Locking, shape/dtype checks and hyper-parameter reading shared by both SM3 kernels. */
#define EIGEN_USE_THREADS

#include "step_state.h"

#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"

namespace sm3 {
namespace {

using tensorflow::OpKernelContext;
using tensorflow::Tensor;

bool IsSupportedFloat(tensorflow::DataType dtype) {
  return dtype == tensorflow::DT_FLOAT || dtype == tensorflow::DT_DOUBLE ||
         dtype == tensorflow::DT_HALF || dtype == tensorflow::DT_BFLOAT16;
}

// The arithmetic type of a parameter: float64 stays, every other float type computes in float32.
tensorflow::DataType ComputeDtypeOf(tensorflow::DataType dtype) {
  return dtype == tensorflow::DT_DOUBLE ? tensorflow::DT_DOUBLE : tensorflow::DT_FLOAT;
}

absl::Status ReadScalar(OpKernelContext* ctx, const char* name, double* value) {
  const Tensor* tensor = nullptr;
  TF_RETURN_IF_ERROR(ctx->input(name, &tensor));
  if (!tensorflow::TensorShapeUtils::IsScalar(tensor->shape())) {
    return absl::InvalidArgumentError(absl::StrCat("`", name, "` must be a scalar, got shape ",
                                                   tensor->shape().DebugString(), "."));
  }
  *value = tensor->scalar<double>()();
  return absl::OkStatus();
}

absl::Status CheckHyperParameters(const StepState& state) {
  if (!(state.momentum >= 0.0 && state.momentum < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("`momentum` must be in [0, 1), got ", state.momentum, "."));
  }
  if (!(state.beta_2 > 0.0 && state.beta_2 <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("`beta_2` must be in (0, 1], got ", state.beta_2, "."));
  }
  if (!(state.epsilon >= 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("`epsilon` must be non-negative, got ", state.epsilon, "."));
  }
  return absl::OkStatus();
}

// Covers: rank >= 2 -> one vector per axis, (d_i,); rank 0/1 -> one entry per element. A sparse
// step gets the axis-0 cover alone, shape (d_0,) for every rank >= 1.
absl::Status CheckCovers(const StepState& state, bool sparse) {
  const tensorflow::TensorShape& shape = state.var->shape();
  const int rank = shape.dims();
  const size_t expected = rank >= 2 && !sparse ? static_cast<size_t>(rank) : 1;
  if (state.covers.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`accumulators` must hold ", expected, " variables for a parameter of shape ",
        shape.DebugString(), ", got ", state.covers.size(), "."));
  }
  for (size_t axis = 0; axis < state.covers.size(); ++axis) {
    const Tensor& cover = *state.covers[axis];
    const std::string name =
        sparse ? "row_accumulator" : absl::StrCat("accumulators[", axis, "]");
    const tensorflow::TensorShape wanted =
        rank >= 2 || sparse ? tensorflow::TensorShape({shape.dim_size(axis)}) : shape;
    if (cover.shape() != wanted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`", name, "` must have shape ", wanted.DebugString(),
          " for a parameter of shape ", shape.DebugString(), ", got ",
          cover.shape().DebugString(), "."));
    }
    if (cover.dtype() != state.compute_dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`", name, "` must be ", tensorflow::DataTypeString(state.compute_dtype),
          " for a ", tensorflow::DataTypeString(state.var->dtype()), " parameter, got ",
          tensorflow::DataTypeString(cover.dtype()), "."));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status StepAttributes::Read(tensorflow::OpKernelConstruction* ctx,
                                  StepAttributes* attributes) {
  std::string variant;
  TF_RETURN_IF_ERROR(ctx->GetAttr("sm3_variant", &variant));
  if (variant != "I" && variant != "II") {
    return absl::InvalidArgumentError(
        absl::StrCat("`sm3_variant` must be \"I\" or \"II\", got \"", variant, "\"."));
  }
  attributes->variant_one = variant == "I";
  TF_RETURN_IF_ERROR(ctx->GetAttr("use_locking", &attributes->use_locking));
  return absl::OkStatus();
}

std::vector<int64_t> StepState::dims() const {
  std::vector<int64_t> result;
  for (int axis = 0; axis < var->dims(); ++axis) result.push_back(var->dim_size(axis));
  return result;
}

absl::Status AcquireStepState(OpKernelContext* ctx, bool sparse, bool use_locking,
                              StepState* state) {
  int covers_begin = 0, covers_end = 0, buffers_begin = 0, buffers_end = 0;
  TF_RETURN_IF_ERROR(ctx->op_kernel().InputRange(sparse ? "row_accumulator" : "accumulators",
                                                 &covers_begin, &covers_end));
  TF_RETURN_IF_ERROR(
      ctx->op_kernel().InputRange("momentum_buffer", &buffers_begin, &buffers_end));
  if (buffers_end - buffers_begin > 1) {
    return absl::InvalidArgumentError("`momentum_buffer` must hold zero or one variable.");
  }
  std::vector<VariableInput> inputs = {{0, "var"}};
  for (int i = covers_begin; i < covers_end; ++i) {
    inputs.push_back({i, sparse ? std::string("row_accumulator")
                                : absl::StrCat("accumulators[", i - covers_begin, "]")});
  }
  if (buffers_end > buffers_begin) inputs.push_back({buffers_begin, "momentum_buffer"});
  TF_RETURN_IF_ERROR(state->locked.Acquire(ctx, inputs, sparse, use_locking));

  state->var = &state->locked.tensor(0);
  for (int i = 1; i <= covers_end - covers_begin; ++i) {
    state->covers.push_back(&state->locked.tensor(i));
  }
  if (buffers_end > buffers_begin) {
    state->buffer = &state->locked.tensor(static_cast<int>(inputs.size()) - 1);
  }
  if (!IsSupportedFloat(state->var->dtype())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`var` must be float16, bfloat16, float32 or float64, got ",
        tensorflow::DataTypeString(state->var->dtype()), "."));
  }
  state->compute_dtype = ComputeDtypeOf(state->var->dtype());
  if (sparse && state->var->dims() < 1) {
    return absl::InvalidArgumentError(
        "`var` must have rank >= 1 for a sparse step, got a scalar.");
  }
  TF_RETURN_IF_ERROR(CheckCovers(*state, sparse));
  if (state->buffer != nullptr) {
    if (state->buffer->shape() != state->var->shape()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`momentum_buffer` must have the parameter's shape ",
          state->var->shape().DebugString(), ", got ", state->buffer->shape().DebugString(),
          "."));
    }
    if (!IsSupportedFloat(state->buffer->dtype())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`momentum_buffer` must be float16, bfloat16, float32 or float64, got ",
          tensorflow::DataTypeString(state->buffer->dtype()), "."));
    }
  }
  TF_RETURN_IF_ERROR(ReadScalar(ctx, "lr", &state->lr));
  TF_RETURN_IF_ERROR(ReadScalar(ctx, "momentum", &state->momentum));
  TF_RETURN_IF_ERROR(ReadScalar(ctx, "beta_2", &state->beta_2));
  TF_RETURN_IF_ERROR(ReadScalar(ctx, "epsilon", &state->epsilon));
  return CheckHyperParameters(*state);
}

}  // namespace sm3
