/* Ops for benchmarks/bench_step.py; the optimizer uses none of them.

Sm3StreamProbe is the memory-bandwidth probe: the optimizers' own access mixes (k streams read,
m streams read and written back in place), on TF's intra-op thread pool like the SM3 kernels.
Sm3StreamTriad is STREAM's triad, a = b + scale * c, kept for comparison: it reaches less than
the read-write mixes on this kind of machine. Sm3KernelIsa says which SIMD loops the SM3 kernels
run (see kernels/loops.h).
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

REGISTER_OP("Sm3StreamProbe")
    .Input("memory: resource")
    .Attr("reads: int >= 0")
    .Attr("writes: int >= 1")
    .Attr("elements: int >= 1")
    .Attr("skew: int >= 0 = 0")
    .Attr("prefetch: bool = true")
    .Attr("non_temporal: bool = false")
    .Attr("adam: bool = false")
    .SetShapeFn(tensorflow::shape_inference::NoOutputs)
    .Doc(R"doc(
Streams `reads + writes` float32 arrays of `elements` each, laid out one after another in the
float32 variable `memory`, `skew` floats apart beyond 64-byte alignment (0: the streams sit at the
same offset modulo 2 MiB, as TF's allocator places equal-sized tensors). Per element it reads
every stream and writes the last `writes` back in place (x = 0.5 x + 0.25 * sum): 4 * (reads +
2 * writes) bytes. `prefetch` asks for the lines 4 KiB ahead, as the SM3 loops do;
`non_temporal` stores around the caches. `adam` (1 read, 3 written streams only) does Adam's own
arithmetic on them (g; w, m, v), in PyTorch's order: its loads and stores are paced by a square
root and a division, which on some machines streams faster than the bare mix.
)doc");

REGISTER_OP("Sm3KernelIsa")
    .Output("isa: string")
    .SetIsStateful()  // its answer follows SM3_TF_KERNEL_ISA: never constant-fold or cache it
    .SetShapeFn(tensorflow::shape_inference::ScalarShape)
    .Doc(R"doc(
The instruction set of the SM3 kernels' loops here: "avx512", "avx", "sse2" or "portable".
)doc");
