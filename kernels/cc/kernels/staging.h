/* Presents parameter-sized data of any float storage type as compute-type runs.

The loops (loops.h) work on float (or double) arrays, and convert a bfloat16 momentum buffer in
registers. A variable and gradient in the compute type, with a momentum buffer in that type or in
bfloat16, are therefore handed to them in place. Any other storage type (bfloat16 or float16
weights, a float16 buffer, a float32 buffer beside a float64 variable, ...) is converted in small
chunks through stack buffers that stay in L1, and converted back once: the variable is rounded once
per step, and no parameter-sized temporary is ever allocated.
*/
#ifndef SM3_TF_KERNELS_STAGING_H_
#define SM3_TF_KERNELS_STAGING_H_

#include <algorithm>
#include <cstdint>

#include "step_params.h"
#include "tensorflow/core/framework/numeric_types.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"

namespace sm3 {

// A flat view of a tensor's storage whatever its element type.
struct TypedArray {
  tensorflow::DataType dtype = tensorflow::DT_INVALID;
  void* data = nullptr;

  static TypedArray Of(const tensorflow::Tensor& tensor) {
    return {tensor.dtype(), const_cast<void*>(static_cast<const void*>(tensor.tensor_data().data()))};
  }
  bool empty() const { return data == nullptr; }
};

// Converts `size` elements starting at element `offset` of `source` to C.
template <typename C>
void LoadAs(const TypedArray& source, int64_t offset, int64_t size, C* destination);

// Converts `size` values of C to the storage type of `destination` at element `offset`.
template <typename C>
void StoreAs(const C* source, int64_t size, const TypedArray& destination, int64_t offset);

// The staging chunk: small enough for three chunks to stay in L1, long enough for the SIMD loops.
constexpr int64_t kStageSize = 512;

// True when the loops can work on `grad`, `weight` and `buffer` (optional: `buffer.empty()`) in
// place: gradient and weight in the compute type, the buffer absent, in C or in bfloat16.
template <typename C>
bool RunsInPlace(const TypedArray& grad, const TypedArray& weight, const TypedArray& buffer) {
  const tensorflow::DataType compute = tensorflow::DataTypeToEnum<C>::value;
  return grad.dtype == compute && weight.dtype == compute &&
         (buffer.empty() || buffer.dtype == compute || buffer.dtype == tensorflow::DT_BFLOAT16);
}

// The in-place run of `size` elements (requires RunsInPlace): the gradient at `grad_offset`, the
// weight and the buffer at `var_offset`.
template <typename C>
Run<C> InPlaceRun(const TypedArray& grad, int64_t grad_offset, const TypedArray& weight,
                  const TypedArray& buffer, int64_t var_offset, int64_t size) {
  Run<C> run{static_cast<const C*>(grad.data) + grad_offset,
             static_cast<C*>(weight.data) + var_offset, nullptr, size, BufferType::kNone};
  if (buffer.empty()) return run;
  if (buffer.dtype == tensorflow::DT_BFLOAT16) {
    run.buffer = static_cast<Eigen::bfloat16*>(buffer.data) + var_offset;
    run.buffer_type = BufferType::kBfloat16;
  } else {
    run.buffer = static_cast<C*>(buffer.data) + var_offset;
    run.buffer_type = BufferType::kCompute;
  }
  return run;
}

// Calls `fn(run, done)` for consecutive runs covering `size` elements, where `done` is how many
// elements came before this run. The gradient is read at `grad_offset`, the weight and the buffer
// (optional: `buffer.empty()`) at `var_offset`. In place when RunsInPlace, else staged in C and
// written back after `fn` returns.
template <typename C, typename Fn>
void ForEachRun(const TypedArray& grad, int64_t grad_offset, const TypedArray& weight,
                const TypedArray& buffer, int64_t var_offset, int64_t size, Fn fn) {
  if (RunsInPlace<C>(grad, weight, buffer)) {
    fn(InPlaceRun<C>(grad, grad_offset, weight, buffer, var_offset, size), int64_t{0});
    return;
  }
  const tensorflow::DataType compute = tensorflow::DataTypeToEnum<C>::value;
  const bool has_buffer = !buffer.empty();
  alignas(64) C grad_stage[kStageSize];
  alignas(64) C weight_stage[kStageSize];
  alignas(64) C buffer_stage[kStageSize];
  for (int64_t done = 0; done < size; done += kStageSize) {
    const int64_t n = std::min(kStageSize, size - done);
    Run<C> run{nullptr, nullptr, nullptr, n,
               has_buffer ? BufferType::kCompute : BufferType::kNone};
    if (grad.dtype == compute) {
      run.grad = static_cast<const C*>(grad.data) + grad_offset + done;
    } else {
      LoadAs(grad, grad_offset + done, n, grad_stage);
      run.grad = grad_stage;
    }
    const bool stage_weight = weight.dtype != compute;
    if (stage_weight) {
      LoadAs(weight, var_offset + done, n, weight_stage);
      run.weight = weight_stage;
    } else {
      run.weight = static_cast<C*>(weight.data) + var_offset + done;
    }
    const bool stage_buffer = has_buffer && buffer.dtype != compute;
    if (stage_buffer) {
      LoadAs(buffer, var_offset + done, n, buffer_stage);
      run.buffer = buffer_stage;
    } else if (has_buffer) {
      run.buffer = static_cast<C*>(buffer.data) + var_offset + done;
    }
    fn(run, done);
    if (stage_weight) StoreAs(weight_stage, n, weight, var_offset + done);
    if (stage_buffer) StoreAs(buffer_stage, n, buffer, var_offset + done);
  }
}

// Calls `fn(grad, size, done)` for compute-type chunks of the gradient alone (SM3-I's first pass).
template <typename C, typename Fn>
void ForEachGradChunk(const TypedArray& grad, int64_t grad_offset, int64_t size, Fn fn) {
  if (grad.dtype == tensorflow::DataTypeToEnum<C>::value) {
    fn(static_cast<const C*>(grad.data) + grad_offset, size, int64_t{0});
    return;
  }
  alignas(64) C grad_stage[kStageSize];
  for (int64_t done = 0; done < size; done += kStageSize) {
    const int64_t n = std::min(kStageSize, size - done);
    LoadAs(grad, grad_offset + done, n, grad_stage);
    fn(static_cast<const C*>(grad_stage), n, done);
  }
}

}  // namespace sm3

#endif  // SM3_TF_KERNELS_STAGING_H_
