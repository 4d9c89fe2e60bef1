/* Implementation of LockedVariables: TF's training-op locking protocol, per-variable dtype. */
#define EIGEN_USE_THREADS

#include "variable_access.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/kernels/training_op_helpers.h"

namespace sm3 {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;
using tensorflow::Var;

// Calls `fn(T{})` with T the C++ type of `dtype`, for the float types SM3 supports.
template <typename Fn>
absl::Status DispatchFloatType(tensorflow::DataType dtype, const std::string& name, Fn fn) {
  switch (dtype) {
    case tensorflow::DT_FLOAT:
      return fn(float{});
    case tensorflow::DT_DOUBLE:
      return fn(double{});
    case tensorflow::DT_HALF:
      return fn(Eigen::half{});
    case tensorflow::DT_BFLOAT16:
      return fn(Eigen::bfloat16{});
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("`", name, "` must be a float16, bfloat16, float32 or float64 variable, "
                       "got ", tensorflow::DataTypeString(dtype), "."));
  }
}

}  // namespace

LockedVariables::~LockedVariables() {
  // Locks first: each mutex belongs to a Var that the Unref below may free.
  exclusive_.reset();
  shared_.reset();
  for (Var* var : vars_) var->Unref();
}

absl::Status LockedVariables::Acquire(tensorflow::OpKernelContext* ctx,
                                      const std::vector<VariableInput>& inputs, bool sparse,
                                      bool use_locking) {
  for (const VariableInput& input : inputs) {
    if (ctx->input_dtype(input.index) != tensorflow::DT_RESOURCE) {
      return absl::InvalidArgumentError(
          absl::StrCat("`", input.name, "` must be a resource variable handle."));
    }
    Var* var = nullptr;
    absl::Status found = tensorflow::LookupResource(
        ctx, tensorflow::HandleFromInput(ctx, input.index), &var);
    if (!found.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "`", input.name, "` is not an existing resource variable: ", found.message()));
    }
    vars_.push_back(var);
  }

  if (sparse) {
    // Readers must copy from now on, so updating under a shared lock cannot tear their values.
    for (size_t i = 0; i < inputs.size(); ++i) {
      Var* var = vars_[i];
      TF_RETURN_IF_ERROR(DispatchFloatType(var->tensor()->dtype(), inputs[i].name, [&](auto t) {
        return tensorflow::EnsureSparseVariableAccess<CPUDevice, decltype(t)>(ctx, var);
      }));
    }
  }

  // Distinct mutexes (the same variable may be passed twice); exclusive wins over shared.
  std::vector<std::pair<tsl::mutex*, bool>> mutexes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool exclusive = !sparse || use_locking;
    tsl::mutex* mu = vars_[i]->mu();
    auto same = std::find_if(mutexes.begin(), mutexes.end(),
                             [mu](const auto& entry) { return entry.first == mu; });
    if (same == mutexes.end()) {
      mutexes.emplace_back(mu, exclusive);
    } else {
      same->second = same->second || exclusive;
    }
  }
  std::sort(mutexes.begin(), mutexes.end());
  exclusive_ = std::make_unique<std::vector<tsl::mutex_lock>>();
  shared_ = std::make_unique<std::vector<tsl::tf_shared_lock>>();
  exclusive_->reserve(mutexes.size());
  shared_->reserve(mutexes.size());
  for (const auto& [mu, exclusive] : mutexes) {
    if (exclusive) {
      exclusive_->emplace_back(*mu);
    } else {
      shared_->emplace_back(*mu);
    }
  }

  tensors_.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    Var* var = vars_[i];
    if (!var->is_initialized || !var->tensor()->IsInitialized()) {
      return absl::FailedPreconditionError(
          absl::StrCat("`", inputs[i].name, "` is not initialized."));
    }
    if (!sparse) {
      // Dense steps write every element: take the buffer from any reader still holding it.
      TF_RETURN_IF_ERROR(DispatchFloatType(var->tensor()->dtype(), inputs[i].name, [&](auto t) {
        return tensorflow::PrepareToUpdateVariable<CPUDevice, decltype(t)>(
            ctx, var->tensor(), var->copy_on_read_mode.load());
      }));
    }
    tensors_[i] = *var->tensor();
  }
  return absl::OkStatus();
}

}  // namespace sm3
