/* The op of benchmarks/bench_step.py, in its own library (_sm3_benchmark_ops); the optimizer's
library does not contain it.

Sm3>StreamTriad is the memory-bandwidth probe: STREAM's triad, a = b + scale * c, in place on a
resource variable on TF's intra-op thread pool: the same threads and memory path as the SM3
kernels, so "fraction of bandwidth" compares like with like. (The instruction set of the SM3 loops,
Sm3>KernelIsa, is in the product library: `python -m sm3_tf` reports it.)
*/
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"

REGISTER_OP("Sm3>StreamTriad")
    .Input("a: resource")
    .Input("b: float")
    .Input("c: float")
    .Input("scale: float")
    .SetShapeFn(tensorflow::shape_inference::NoOutputs)
    .Doc(R"doc(
STREAM triad in place: a = b + scale * c (float32, a is a resource variable of b's shape).
)doc");
