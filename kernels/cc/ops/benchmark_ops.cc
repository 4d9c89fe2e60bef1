/* Ops for benchmarks/bench_step.py; the optimizer uses neither.

Sm3StreamTriad is the memory-bandwidth probe: STREAM's triad, a = b + scale * c, in place on a resource variable on TF's intra-op thread pool:
the same threads and memory path as the SM3 kernels, so "fraction of bandwidth" compares like
with like. Sm3KernelIsa says which SIMD loops the SM3 kernels run (see kernels/loops.h).
*/
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"

REGISTER_OP("Sm3StreamTriad")
    .Input("a: resource")
    .Input("b: float")
    .Input("c: float")
    .Input("scale: float")
    .SetShapeFn(tensorflow::shape_inference::NoOutputs)
    .Doc(R"doc(
STREAM triad in place: a = b + scale * c (float32, a is a resource variable of b's shape).
)doc");

REGISTER_OP("Sm3KernelIsa")
    .Output("isa: string")
    .SetIsStateful()  // its answer follows SM3_TF_KERNEL_ISA: never constant-fold or cache it
    .SetShapeFn(tensorflow::shape_inference::ScalarShape)
    .Doc(R"doc(
The instruction set of the SM3 kernels' loops here: "avx512", "avx", "sse2" or "portable".
)doc");
