/* CPU kernel of Sm3>KernelIsa (../ops/sm3_ops.cc): which SIMD loops the SM3 kernels run here.

`python -m sm3_tf` reports it, so it lives in the product library.
*/
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "loops.h"

namespace sm3 {
namespace {

class Sm3KernelIsaOp : public tensorflow::OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(tensorflow::OpKernelContext* ctx) override {
    tensorflow::Tensor* isa = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({}), &isa));
    isa->scalar<tensorflow::tstring>()() = Loops<float>().isa;
  }
};

REGISTER_KERNEL_BUILDER(Name("Sm3>KernelIsa").Device(tensorflow::DEVICE_CPU), Sm3KernelIsaOp);

}  // namespace
}  // namespace sm3
