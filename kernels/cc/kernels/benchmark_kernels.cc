/* CPU kernel of the benchmark op Sm3>StreamTriad (../ops/benchmark_ops.cc). */
#define EIGEN_USE_THREADS

#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tiling.h"
#include "variable_access.h"

namespace sm3 {
namespace {

using tensorflow::OpKernelContext;
using tensorflow::Tensor;

class Sm3StreamTriadOp : public tensorflow::OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* ctx) override {
    LockedVariables locked;
    OP_REQUIRES_OK(ctx, locked.Acquire(ctx, {{0, "a"}}, /*sparse=*/false,
                                       /*use_locking=*/true));
    Tensor& a = locked.tensor(0);
    const Tensor& b = ctx->input(1);
    const Tensor& c = ctx->input(2);
    OP_REQUIRES(ctx, a.dtype() == tensorflow::DT_FLOAT && a.shape() == b.shape() &&
                         a.shape() == c.shape(),
                absl::InvalidArgumentError("`a`, `b` and `c` must be float32 of one shape."));
    const float scale = ctx->input(3).scalar<float>()();
    float* out = a.flat<float>().data();
    const float* left = b.flat<float>().data();
    const float* right = c.flat<float>().data();
    const int64_t n = a.NumElements();
    const Workers workers(ctx);
    const int64_t chunks = std::max<int64_t>(
        1, std::min<int64_t>(n / kMinTileElements, kTilesPerThread * workers.num_threads()));
    workers.ForEachUnit(chunks, [&](int64_t chunk) {
      const int64_t end = n * (chunk + 1) / chunks;
      for (int64_t i = n * chunk / chunks; i < end; ++i) out[i] = left[i] + scale * right[i];
    });
  }
};

REGISTER_KERNEL_BUILDER(Name("Sm3>StreamTriad").Device(tensorflow::DEVICE_CPU), Sm3StreamTriadOp);

}  // namespace
}  // namespace sm3
